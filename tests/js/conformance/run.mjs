// Run the official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
// tests/js/package.json) against `agentbox serve --http 127.0.0.1:PORT --conformance-fixtures`.
//
//   node run.mjs [--suite active|pending] [--out DIR]     (by hand; Node >= 22)
//   import { runConformance } from './run.mjs'             (active.test.mjs, pending.test.mjs)
//
// The suite's own exit code (with --expected-failures) is necessary but not sufficient:
// docs/reference/mcp.md 16.3 shows scenarios that "pass" against a server lacking the
// fixture. So this runner also reads every checks.json and requires, per scenario, at least
// one SUCCESS check and no FAILURE or WARNING (unless the scenario is an expected failure),
// and checks the details of the scenarios known to give false positives.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHttpServer } from '../http/lib/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const baseline = path.join(here, 'expected-failures.yml');
const pkgDir = path.join(here, '..', 'node_modules', '@modelcontextprotocol', 'conformance');

// The CLI's entry point, run with this very Node (>= 22: the suite uses fs.globSync), not
// with whatever `node` its #! line would find on PATH.
function cliEntry() {
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin.conformance;
  return path.join(pkgDir, bin);
}

export function expectedFailures() {
  // The file is tiny and flat: collect "- name" entries under "server:".
  const names = [];
  let inServer = false;
  for (const raw of fs.readFileSync(baseline, 'utf8').split('\n')) {
    const line = raw.replace(/#.*/, '').trimEnd();
    if (!line.trim()) continue;
    if (/^server:/.test(line)) { inServer = true; continue; }
    if (/^\S/.test(line)) { inServer = false; continue; }
    const m = /^\s*-\s*(\S+)/.exec(line);
    if (inServer && m) names.push(m[1]);
  }
  return new Set(names);
}

// Known false positives: what a SUCCESS check's details must actually contain.
const detailChecks = {
  'tools-call-simple-text': (c) => JSON.stringify(c.details).includes('This is a simple text response for testing.'),
  'tools-call-error': (c) => JSON.stringify(c.details).includes('This tool intentionally returns an error for testing'),
  'tools-call-with-progress': (c) => c.details?.progressCount === 3,
  'tools-call-with-logging': (c) => c.details?.logCount === 3,
  'tools-call-elicitation': (c) => JSON.stringify(c.details).includes('User response: action=accept'),
  'tools-call-sampling': (c) => JSON.stringify(c.details).includes('LLM response: '),
  'server-sse-polling': (c) => c.id !== 'server-sse-disconnect-resume' || c.details?.receivedToolResponse === true,
};

function runCli(url, suite, out, log) {
  const args = [cliEntry(), 'server', '--url', url, '-o', out, '--expected-failures', baseline];
  if (suite !== 'active') args.push('--suite', suite);
  log(`$ conformance ${args.slice(1).join(' ')}`);
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (c) => { text += c; });
    p.stderr.on('data', (c) => { text += c; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 240000);
    p.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, text }); });
  });
}

function inspect(out, expected, log) {
  const problems = [];
  const seen = new Set();
  for (const dir of fs.readdirSync(out).sort()) {
    const file = path.join(out, dir, 'checks.json');
    if (!fs.existsSync(file)) continue;
    const scenario = dir.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT.*$/, '');
    seen.add(scenario);
    const checks = JSON.parse(fs.readFileSync(file, 'utf8'));
    const bad = checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING');
    const ok = checks.filter((c) => c.status === 'SUCCESS');
    const fp = detailChecks[scenario];
    const fpBad = fp ? ok.filter((c) => !fp(c)) : [];
    const failed = bad.length > 0 || ok.length === 0 || fpBad.length > 0;
    if (failed && !expected.has(scenario)) {
      for (const c of bad) problems.push(`${scenario}: ${c.status} ${c.id}: ${c.errorMessage || ''} ${JSON.stringify(c.details || {}).slice(0, 400)}`);
      if (ok.length === 0 && bad.length === 0) problems.push(`${scenario}: no SUCCESS check at all`);
      for (const c of fpBad) problems.push(`${scenario}: ${c.id} reported SUCCESS but its details are wrong: ${JSON.stringify(c.details).slice(0, 400)}`);
    }
    if (!failed && expected.has(scenario)) problems.push(`${scenario}: passes but is listed in ${path.basename(baseline)}; remove it`);
    log(`${failed ? 'x ' : 'ok'} ${scenario}: ${ok.length} success, ${bad.length} failure/warning`);
  }
  if (seen.size === 0) problems.push(`no checks.json under ${out}`);
  return { problems, seen };
}

// Start a server, run one suite against it, inspect the results, stop the server (which
// must exit 0). Returns {problems, scenarios, out}; problems is empty on success.
export async function runConformance({ suite = 'active', out, log = (m) => console.log(m) } = {}) {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22) throw new Error(`the conformance suite needs Node >= 22 (this is ${process.version}); run it with tests/js/node_modules/.bin/node`);
  const dir = path.resolve(out || fs.mkdtempSync(path.join(os.tmpdir(), `agentbox-conformance-${suite}-`)));
  fs.rmSync(dir, { recursive: true, force: true }); /* results of an earlier run would mislead */
  fs.mkdirSync(dir, { recursive: true });
  const server = await startHttpServer();
  let problems = [];
  let scenarios = 0;
  try {
    const res = await runCli(server.url, suite, dir, log);
    log(res.text.split('\n').filter((l) => !/^(Running|Results saved|=== Running)/.test(l) && l.trim()).join('\n'));
    const r = inspect(dir, expectedFailures(), log);
    problems = r.problems;
    scenarios = r.seen.size;
    // Every scenario the suite announced left its checks (none crashed before writing them).
    const planned = /Running \w+ suite \((\d+) scenarios\)/.exec(res.text);
    if (!planned) problems.push('the conformance CLI did not say how many scenarios it would run');
    else if (Number(planned[1]) !== scenarios) problems.push(`the suite announced ${planned[1]} scenarios, ${scenarios} left results`);
    if (res.code !== 0) problems.push(`the conformance CLI exited with ${res.code ?? res.signal}`);
  } finally {
    const e = await server.stop();
    if (e.code !== 0) problems.push(`the server exited with ${JSON.stringify(e)} after SIGTERM; its log:\n${server.stderr()}`);
  }
  if (!problems.length && !out) fs.rmSync(dir, { recursive: true, force: true });
  else log(`results in ${dir}`);
  return { problems, scenarios, out: dir };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
  const r = await runConformance({ suite: opt('--suite', 'active'), out: opt('--out') });
  if (r.problems.length) {
    console.log(`\nFAILED (${r.problems.length} problem(s)):`);
    for (const p of r.problems) console.log(`  - ${p}`);
    process.exit(1);
  }
  console.log(`\nPASSED: ${r.scenarios} scenario(s)`);
}
