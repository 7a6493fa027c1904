// The Claude Desktop and Claude Code configurations in examples/claude/ are valid JSON that,
// used the way those clients use them, start agentbox (stdio: the command and arguments and
// environment; HTTP: the URL and headers with ${VAR} expanded as Claude Code does) and list
// its tools, and the sandbox behind them runs a command. The official MCP SDK client plays
// the part of Claude; the only substitutions are the binary's path for "agentbox", a private
// state directory, and the test server's port.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { bin, src, startHttp, tmpDir, workspaceOf } from './lib.mjs';

const dir = path.join(src, 'examples', 'claude');
const TOOLS = ['download', 'edit', 'execute', 'execute_python', 'glob', 'grep', 'ls', 'read',
  'sandbox_create', 'sandbox_delete', 'sandbox_info', 'sandbox_list', 'upload', 'write'];

function load(rel) {
  const text = fs.readFileSync(path.join(dir, rel), 'utf8');
  const cfg = JSON.parse(text); // throws on invalid JSON
  assert.deepEqual(Object.keys(cfg), ['mcpServers'], `${rel}: only mcpServers`);
  const server = cfg.mcpServers.agentbox;
  assert.ok(server, `${rel}: no mcpServers.agentbox`);
  return server;
}

// Claude Code's ${VAR} and ${VAR:-default} expansion in .mcp.json.
const expand = (s, env) => s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
  (_, name, def) => env[name] ?? def ?? '');

async function exercise(client) {
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), TOOLS);
  for (const t of tools) assert.equal(t.inputSchema.type, 'object', t.name);
  const r = await client.callTool({ name: 'execute', arguments: { command: 'echo hello from $(uname -s) > hello.txt && cat hello.txt' } });
  assert.ok(!r.isError, JSON.stringify(r));
  assert.match(r.content[0].text, /^hello from Linux\n/);
  return r;
}

async function viaStdio(rel) {
  const server = load(rel);
  if (server.type !== undefined) assert.equal(server.type, 'stdio');
  assert.equal(server.command, 'agentbox', `${rel}: the command is the installed binary's name`);
  assert.equal(server.args[0], 'serve');
  const stateDir = tmpDir();
  const transport = new StdioClientTransport({
    command: bin,
    args: server.args,
    env: { ...process.env, ...(server.env || {}), AGENTBOX_STATE_DIR: stateDir },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (c) => { stderr += c; });
  const client = new Client({ name: 'claude-config-test', version: '1.0.0' });
  await client.connect(transport);
  try {
    assert.equal(client.getServerVersion().name, 'agentbox');
    await exercise(client);
    // the file the command wrote is in the one sandbox's workspace on disk
    assert.match(fs.readFileSync(path.join(workspaceOf(stateDir), 'hello.txt'), 'utf8'), /^hello from Linux/);
  } finally {
    await client.close();
  }
  // --log-level warn: the client's log stays quiet (no info lines)
  assert.doesNotMatch(stderr, / info /, stderr);
  return server;
}

test('claude_desktop_config.json starts agentbox over stdio and lists its tools', async () => {
  const server = await viaStdio('claude_desktop_config.json');
  assert.equal(server.env.AGENTBOX_SANDBOX_IDLE_TTL, '2h');
});

test('Claude Code stdio/.mcp.json starts agentbox over stdio and lists its tools', async () => {
  await viaStdio('stdio/.mcp.json');
});

test('Claude Code http/.mcp.json reaches agentbox over HTTP with its bearer token', async () => {
  const server = load('http/.mcp.json');
  assert.equal(server.type, 'http');
  const configured = new URL(server.url);
  assert.equal(configured.pathname, '/mcp');
  assert.equal(configured.hostname, '127.0.0.1');
  const token = 'claude-code-example-token-0123456789';
  const srv = await startHttp({ env: { AGENTBOX_TOKEN: token } });
  try {
    const url = new URL(expand(server.url, process.env));
    url.port = new URL(srv.url).port; // the test server's port instead of 8080
    const headers = Object.fromEntries(Object.entries(server.headers)
      .map(([k, v]) => [k, expand(v, { ...process.env, AGENTBOX_TOKEN: token })]));
    assert.equal(headers.Authorization, `Bearer ${token}`);

    // Without the header the server refuses: the token in the config is what lets Claude in.
    const bare = new Client({ name: 'no-token', version: '1.0.0' });
    await assert.rejects(bare.connect(new StreamableHTTPClientTransport(url)), /401|Unauthorized/i);

    const client = new Client({ name: 'claude-code-http', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
    try {
      await exercise(client);
    } finally {
      await client.close();
    }
  } finally {
    await srv.stop();
  }
});
