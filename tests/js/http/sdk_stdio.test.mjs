// The official TypeScript SDK client over stdio: agentbox spawned as a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { agentboxBin, isolationArgs, waitFor } from './lib/server.mjs';
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

test('stdio: closing stdin ends the server cleanly', async () => {
  const c = await connect();
  const pid = c.transport.pid;
  assert.ok(pid > 0);
  await c.client.ping();
  await c.close();
  await waitFor(() => /server\.exit code=0/.test(c.log()), 10000, 'server.exit code=0');
});
