// Helpers for the security tests: servers with tokens, SDK clients per principal, tool calls.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { agentboxBin, isolationArgs, startHttpServer, withTimeout } from '../http/lib/server.mjs';

export { startHttpServer };

// Tokens of at least 16 characters (config.c); distinctive, so a leak is easy to grep for.
export const TOKENS = {
  alice: 'tok-alice-7f3a9c1e5b2d4f60',
  bob: 'tok-bob-c4e8a2f6d0b9e7a135',
};

const tmpDirs = [];
process.on('exit', () => { for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true }); });

export function tmpDir(prefix = 'agentbox-sec-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

// Server args for the two principals, plus extra --set pairs.
export function tokenArgs() {
  return ['--set', `auth.tokens=${TOKENS.alice}:alice,${TOKENS.bob}:bob`];
}

export function sets(obj) {
  return Object.entries(obj).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
}

// An SDK client authenticated with token; headers are added to every request.
export async function connect(url, token, { capabilities = {}, headers = {} } = {}) {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers } },
  });
  const client = new Client({ name: 'agentbox-security', version: '1.0.0' }, { capabilities });
  await client.connect(transport);
  return { client, transport, close: () => client.close() };
}

// Call a tool; returns {text, isError, structured, raw}.
export async function call(c, name, args = {}, opts = {}) {
  const r = await c.client.callTool({ name, arguments: args }, undefined, { timeout: 120000, ...opts });
  const text = (r.content ?? []).filter((b) => b.type === 'text').map((b) => b.text).join('\n');
  return { text, isError: r.isError === true, structured: r.structuredContent, raw: r };
}

export function readAudit(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

// Spawn `agentbox serve --http 127.0.0.1:0` with full control of its environment and of the
// descriptors it inherits (stdio: node's spawn stdio array; index 3 and up are extra fds).
// Returns {url, proc, stderr(), stop()}.
export async function startRawServer({ args = [], env = {}, stdio = ['ignore', 'ignore', 'pipe'] } = {}) {
  const proc = spawn(agentboxBin(), ['serve', '--http', '127.0.0.1:0', ...isolationArgs(), ...args],
    { env, stdio });
  let log = '';
  let exited = null;
  const exitP = new Promise((resolve) => proc.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); }));
  process.on('exit', () => { if (!exited) proc.kill('SIGKILL'); });
  proc.stderr.setEncoding('utf8');
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 15000);
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /http\.listening url=(\S+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    exitP.then((e) => { clearTimeout(timer); reject(new Error(`server exited ${JSON.stringify(e)}:\n${log}`)); });
  });
  return {
    url, proc, stderr: () => log,
    async stop() {
      if (exited) return exited;
      proc.kill('SIGTERM');
      return withTimeout(exitP, 20000, 'server did not stop');
    },
  };
}
