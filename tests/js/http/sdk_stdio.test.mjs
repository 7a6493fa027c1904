// The official TypeScript SDK client over stdio: agentbox spawned as a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { agentboxBin, isolationArgs } from './lib/server.mjs';
import { sdkSuite } from './lib/sdk_suite.mjs';

async function connect(capabilities = {}) {
  const transport = new StdioClientTransport({
    command: agentboxBin(),
    args: ['serve', '--stdio', '--conformance-fixtures', '--log-level', 'info', ...isolationArgs()],
    stderr: 'pipe',
  });
  let log = '';
  transport.stderr.setEncoding('utf8');
  transport.stderr.on('data', (c) => { log += c; });
  const client = new Client({ name: 'agentbox-e2e', version: '1.0.0' }, { capabilities });
  await client.connect(transport);
  return { client, transport, log: () => log, close: () => client.close() };
}

sdkSuite('stdio', connect);

test('stdio: closing stdin ends the server cleanly, with exit status 0', async () => {
  const c = await connect();
  const pid = c.transport.pid;
  assert.ok(pid > 0);
  await c.client.ping();
  // End stdin ourselves and wait for the exit (the SDK's close() sends SIGTERM after 2 s,
  // which would hide a slow or failing exit, e.g. a LeakSanitizer report under ASan).
  const proc = c.transport._process;
  assert.ok(proc, 'the SDK keeps the child process in _process');
  const closed = new Promise((resolve) => proc.once('close', (code, signal) => resolve({ code, signal })));
  proc.stdin.end();
  const timeout = new Promise((resolve) => setTimeout(() => resolve({ timeout: true }), 60000).unref());
  const r = await Promise.race([closed, timeout]);
  assert.deepEqual(r, { code: 0, signal: null }, `server exit: ${JSON.stringify(r)}\n${c.log().slice(-4000)}`);
  assert.match(c.log(), /server\.exit code=0/);
  await c.close();
});
