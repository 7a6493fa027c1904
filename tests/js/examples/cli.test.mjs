// The command line and its manual page agree: every command and long option that
// `agentbox --help` prints is documented in agentbox.1 (COMMANDS, OPTIONS), every one the
// page documents is in --help, every short option the page documents is accepted by the
// binary, and the page's version is the binary's. Also: the page renders without warnings.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { bin, src, run } from './lib.mjs';

const help = run(bin, ['--help']).stdout;
const page = fs.readFileSync(path.join(src, 'agentbox.1'), 'utf8');

// roff -> words: "\-\-log\-level" is "--log-level".
const unroff = (s) => s.replace(/\\-/g, '-').replace(/\\f[BIRP]/g, '');

// The body of a .SH section, as lines.
function section(name) {
  const lines = page.split('\n');
  const start = lines.findIndex((l) => l === `.SH ${name}`);
  assert.ok(start >= 0, `agentbox.1 has no section ${name}`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith('.SH '));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

// The tag line after each .TP of a section (what the entry documents).
function tags(name) {
  const body = section(name);
  return body.flatMap((l, i) => (l === '.TP' ? [unroff(body[i + 1])] : []));
}

const longOpts = (text) => new Set([...text.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((m) => m[0]));

test('every command of --help is documented in COMMANDS, and no other', () => {
  const fromHelp = new Set([...help.matchAll(/^ {2}agentbox ([a-z]+)/gm)].map((m) => m[1]));
  const fromPage = new Set(tags('COMMANDS').map((t) => t.replace(/^\.B /, '').trim()));
  assert.ok(fromHelp.size >= 4, `too few commands parsed from --help: ${[...fromHelp]}`);
  assert.deepEqual([...fromPage].sort(), [...fromHelp].sort());
  // and the synopsis shows each of them
  const synopsis = unroff(section('SYNOPSIS').join('\n'));
  for (const c of fromHelp) assert.match(synopsis, new RegExp(`^\\.B agentbox ${c}$`, 'm'));
});

test('every long option of --help is documented in OPTIONS, and no other', () => {
  const fromHelp = longOpts(help);
  const fromPage = longOpts(tags('OPTIONS').join('\n'));
  assert.ok(fromHelp.has('--http') && fromHelp.has('--log-format'), `parsed: ${[...fromHelp]}`);
  assert.deepEqual([...fromPage].sort(), [...fromHelp].sort());
  // the synopsis uses no option the page does not document
  for (const o of longOpts(unroff(section('SYNOPSIS').join('\n')))) assert.ok(fromPage.has(o), o);
});

test('the short options the page documents work', () => {
  const shorts = new Set([...tags('OPTIONS').join('\n').matchAll(/(?<![\w-])-[a-zA-Z]\b/g)].map((m) => m[0]));
  assert.deepEqual([...shorts].sort(), ['-V', '-c', '-h']);
  assert.equal(run(bin, ['-h']).stdout, help);
  assert.match(run(bin, ['-V']).stdout, /^agentbox \d+\.\d+\.\d+\n$/);
  const cfg = run(bin, ['config', '-c', path.join(src, 'config', 'agentbox.yaml')]);
  assert.equal(cfg.status, 0, cfg.stderr);
});

test('the page names the version of the binary', () => {
  const version = run(bin, ['--version']).stdout.trim(); // "agentbox 0.1.0"
  assert.match(page, new RegExp(`^\\.TH AGENTBOX 1 "[^"]*" "${version}"`, 'm'));
});

test('the page renders without warnings', () => {
  const r = run('groff', ['-man', '-ww', '-z', path.join(src, 'agentbox.1')]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
});

test('every environment variable and file the page names is one the code knows', () => {
  const env = unroff(section('ENVIRONMENT').join('\n'));
  const mainC = fs.readFileSync(path.join(src, 'src', 'main.c'), 'utf8');
  const configC = fs.readFileSync(path.join(src, 'src', 'config', 'config.c'), 'utf8');
  for (const v of ['AGENTBOX_CONFIG', 'AGENTBOX_TOKEN', 'AGENTBOX_HTTP_LISTEN']) {
    assert.match(env, new RegExp(v));
  }
  assert.match(mainC, /getenv\("AGENTBOX_CONFIG"\)/);
  assert.match(configC, /"AGENTBOX_TOKEN"/);
  // the metrics section lists names the renderer emits
  const metricsC = fs.readFileSync(path.join(src, 'src', 'core', 'metrics.c'), 'utf8');
  for (const m of unroff(section('METRICS').join('\n')).matchAll(/\b(agentbox_[a-z_]+|process_[a-z_]+)/g)) {
    assert.ok(metricsC.includes(`"${m[1]}`) || metricsC.includes(`${m[1]}{`) || metricsC.includes(`${m[1]} `),
      `agentbox.1 lists ${m[1]}, which src/core/metrics.c does not render`);
  }
});
