// Every MCP Inspector CLI command of README.md ("Trying it by hand") runs as written, in a
// shell, against the built server: `npx @modelcontextprotocol/inspector@V` is the pinned
// Inspector of tests/js/package.json (same version), `agentbox` is the built binary (first on
// PATH), the servers get a private state directory, and the HTTP command's 127.0.0.1:8080 is
// a test server's address. Each command must exit 0 and print one JSON result that says the
// call did what the README implies.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { bin, src, run, startHttp, tmpDir, workspaceOf } from './lib.mjs';

const readme = fs.readFileSync(path.join(src, 'README.md'), 'utf8');
const start = readme.indexOf('## Trying it by hand: the MCP Inspector CLI');
assert.ok(start >= 0, 'README.md has no Inspector section');
const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
const commands = [...section.matchAll(/^npx @modelcontextprotocol\/inspector@(\S+) (.*)$/gm)];
const pkg = JSON.parse(fs.readFileSync(path.join(process.env.AGENTBOX_JS_DIR, 'package.json'), 'utf8'));

// A directory for PATH with `agentbox` (the built binary) and `npx` (runs the pinned
// Inspector for its first argument, as npx would).
const shims = tmpDir('ab-inspector-bin-');
fs.symlinkSync(bin, path.join(shims, 'agentbox'));
const inspector = path.join(process.env.AGENTBOX_JS_DIR, 'node_modules', '.bin', 'mcp-inspector');
fs.writeFileSync(path.join(shims, 'npx'),
  `#!/bin/sh\ncase "$1" in @modelcontextprotocol/inspector@*) shift; exec "${inspector}" "$@";; esac\necho "unexpected npx $*" >&2; exit 99\n`,
  { mode: 0o755 });

function sh(line, env) {
  const r = run('sh', ['-c', line], {
    cwd: tmpDir('ab-inspector-cwd-'),
    env: { ...process.env, PATH: `${shims}:${process.env.PATH}`, HOME: tmpDir('ab-inspector-home-'), ...env },
    timeout: 60000,
  });
  assert.equal(r.status, 0, `${line}\nexit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('the README pins the Inspector the tests install', () => {
  assert.equal(commands.length, 4);
  for (const m of commands) assert.equal(m[1], pkg.dependencies['@modelcontextprotocol/inspector']);
});

test('the stdio commands list the tools, write a file and run it in one sandbox', () => {
  const state = tmpDir('ab-inspector-state-');
  const stdio = commands.filter((m) => m[2].includes(' serve --stdio '));
  assert.equal(stdio.length, 3);
  // The Inspector starts the server with a minimal environment (HOME, PATH, ...), so the
  // test's state directory goes in as the README's own -e does for the log level.
  const [list, write, exec] = stdio.map((m) => sh(m[0].replace(' serve --stdio ', ` serve --stdio -e AGENTBOX_STATE_DIR=${state} `), {}));
  const names = list.result.tools.map((t) => t.name);
  assert.ok(names.includes('execute') && names.includes('write') && names.length === 14, names.join());
  assert.equal(write.result.structuredContent.path, '/workspace/hello.py');
  assert.deepEqual(exec.result.structuredContent, { output: 'hello from the sandbox\n', exit_code: 0, truncated: false, timed_out: false });
  assert.match(exec.result.content[0].text, /\[Command succeeded with exit code 0\]/);
  // three processes, one thread, one sandbox
  assert.equal(fs.readFileSync(path.join(workspaceOf(state, 'demo'), 'hello.py'), 'utf8'), 'print("hello from the sandbox")');
});

test('the HTTP command reaches a server with a token and a thread header', async () => {
  const token = 'inspector-readme-token-0123456789';
  const srv = await startHttp({ env: { AGENTBOX_TOKEN: token } });
  try {
    const http = commands.filter((m) => m[2].startsWith('--cli http'));
    assert.equal(http.length, 1);
    const line = http[0][0].replace('http://127.0.0.1:8080/mcp', srv.url);
    const out = sh(line, { AGENTBOX_TOKEN: token });
    assert.equal(out.result.structuredContent.exit_code, 0);
    assert.match(out.result.structuredContent.output, /^Linux \d/);
    workspaceOf(srv.stateDir, 'demo'); // the header named the sandbox's thread
    // and without the token the server refuses (the command's exit status says so)
    const denied = run('sh', ['-c', line], { env: { ...process.env, PATH: `${shims}:${process.env.PATH}`, AGENTBOX_TOKEN: 'wrong-token-wrong-token' }, timeout: 60000 });
    assert.notEqual(denied.status, 0);
  } finally {
    await srv.stop();
  }
});
