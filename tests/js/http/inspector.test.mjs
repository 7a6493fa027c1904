// The MCP Inspector CLI (@modelcontextprotocol/inspector-cli, pinned) against agentbox over
// stdio (spawned) and Streamable HTTP (with a bearer token): the client people use to poke
// at a server by hand must work with it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentboxBin, isolationArgs, startHttpServer } from './lib/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'node_modules', '@modelcontextprotocol', 'inspector-cli', 'build', 'cli.js');
const token = 'inspector-token-0123456789';

// Run the CLI; its JSON output is what follows the deprecation banner. The working directory
// is a subdirectory of tests/js: inspector-cli 1.0.3 looks for ../package.json relative to it.
function inspector(args, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [cli, '--cli', ...args], { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => { out += c; });
    p.stderr.on('data', (c) => { err += c; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`inspector timed out: ${err}`)); }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      const start = out.indexOf('{');
      let json;
      try { json = start >= 0 ? JSON.parse(out.slice(start)) : undefined; } catch { /* left undefined */ }
      resolve({ code, out, err, json });
    });
  });
}

let server;
before(async () => { server = await startHttpServer({ env: { AGENTBOX_TOKEN: token } }); });
after(async () => { assert.equal((await server.stop()).code, 0); });

const stdioServer = () => [agentboxBin(), 'serve', '--stdio', '--conformance-fixtures', ...isolationArgs()];

test('inspector over stdio: tools/list and tools/call', async () => {
  const list = await inspector([...stdioServer(), '--method', 'tools/list']);
  assert.equal(list.code, 0, list.err);
  assert.ok(list.json.tools.some((t) => t.name === 'test_simple_text'), list.out);
  const call = await inspector([...stdioServer(), '--method', 'tools/call', '--tool-name', 'test_simple_text']);
  assert.equal(call.code, 0, call.err);
  assert.deepEqual(call.json.content, [{ type: 'text', text: 'This is a simple text response for testing.' }]);
});

test('inspector over HTTP with a bearer token: tools/call, resources, prompts', async () => {
  const base = [server.url, '--transport', 'http', '--header', `Authorization: Bearer ${token}`];
  const call = await inspector([...base, '--method', 'tools/call', '--tool-name', 'test_error_handling']);
  assert.equal(call.json?.isError, true, call.out + call.err);
  const res = await inspector([...base, '--method', 'resources/read', '--uri', 'test://static-text']);
  assert.equal(res.code, 0, res.err);
  assert.equal(res.json.contents[0].text, 'This is the content of the static text resource.');
  const pr = await inspector([...base, '--method', 'prompts/get', '--prompt-name', 'test_prompt_with_arguments',
    '--prompt-args', 'arg1=a', 'arg2=b']);
  assert.equal(pr.code, 0, pr.err);
  assert.equal(pr.json.messages[0].content.text, "Prompt with arguments: arg1='a', arg2='b'");
  const denied = await inspector([server.url, '--transport', 'http', '--method', 'tools/list']);
  assert.notEqual(denied.code, 0, 'no token: the server refuses');
  assert.ok(!server.stderr().includes(token));
});
