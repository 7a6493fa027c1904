// server.mjs - start the agentbox binary under test and connect the official MCP TypeScript
// SDK client to it, on the local provider or on the agent-sandbox provider against the
// emulated Kubernetes cluster of tests/k8s (API server + agent-sandbox controller + router +
// agentbox-runtime pods).
//
//   const srv = await startServer({ provider: 'local' | 'agent-sandbox', sets: {...} });
//   const r = await srv.call('read', { path: '/workspace/a' }, { thread: 't1' });
//   await srv.stop();
//
// Each server gets its own state directory (and, on agent-sandbox, its own cluster unless
// one is passed in), and stop() ends everything it started: the client closes the server's
// stdin (the stdio transport's EOF ends the server), the cluster process exits when its
// stdin closes. Nothing outlives a test even when it crashes: the cluster's stdin is a pipe
// from this process, and the server is our child on a pipe too.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

export const SOURCE_DIR = process.env.AGENTBOX_SOURCE_DIR || path.resolve(import.meta.dirname, '../../../..');

export function agentboxBin() {
  const b = process.env.AGENTBOX_BIN;
  if (!b) throw new Error('AGENTBOX_BIN must name the agentbox binary (run through ctest)');
  return b;
}

export function runtimeBin() {
  return process.env.AGENTBOX_RUNTIME_BIN || path.join(path.dirname(agentboxBin()), 'agentbox-runtime');
}

export function tmpDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the emulated cluster ----

// Start tests/k8s/cluster.mjs as a child process; resolves with { info, stop() } once it
// listens. opts.args: extra CLI arguments (e.g. ['--warm', '2', '--run-as-user', '1000']).
export async function startCluster(opts = {}) {
  const dir = tmpDir('abjs-k8s-');
  const infoFile = path.join(dir, 'info.json');
  const script = path.join(SOURCE_DIR, 'tests/k8s/cluster.mjs');
  const proc = spawn(process.execPath, [script, '--info-file', infoFile, ...(opts.args || [])], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...process.env, RUNTIME_BIN: runtimeBin() },
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { if (stderr.length < 65536) stderr += d; });
  let exited = false;
  const gone = new Promise((r) => proc.on('exit', () => { exited = true; r(); }));
  const deadline = Date.now() + 30000;
  let info = null;
  while (!info) {
    if (exited) throw new Error(`the test cluster exited during start:\n${stderr}`);
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`the test cluster did not start in 30 s:\n${stderr}`); }
    try { info = JSON.parse(fs.readFileSync(infoFile, 'utf8')); } catch { await sleep(20); }
  }
  return {
    info,
    get stderr() { return stderr; },
    async admin(method, p, body) {
      const res = await fetch(info.api + p, {
        method,
        headers: { authorization: `Bearer ${info.token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const t = await res.text();
      return t ? JSON.parse(t) : null;
    },
    async stop() {
      if (!exited) {
        proc.stdin.end();
        const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
        await gone;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// The --set values that point a server at the emulated cluster (as tests/unit/support/
// k8s_cluster.c's tk8s_config does for the C tests): direct connection through the router,
// the cluster's warm pool, the workspace at /workspace.
export function clusterSets(info) {
  return {
    'sandbox.provider': 'agent-sandbox',
    'k8s.kubeconfig': info.kubeconfig,
    'k8s.warm_pool': 'warm-pool',
    'k8s.template': info.template,
    'k8s.connection': 'direct',
    'k8s.router_url': info.router,
    'k8s.workspace': '/workspace',
    'k8s.ready_timeout': '30s',
    'k8s.request_timeout': '10s',
  };
}

// ---- the server ----

function setArgs(sets) {
  const a = [];
  for (const [k, v] of Object.entries(sets)) a.push('--set', `${k}=${v}`);
  return a;
}

// The argv and state directory of a server for provider (local | agent-sandbox).
export function serverArgs(opts, stateDir) {
  const sets = { state_dir: stateDir, 'log.level': opts.logLevel || 'warn', ...(opts.sets || {}) };
  if (opts.provider === 'agent-sandbox') Object.assign(sets, clusterSets(opts.cluster.info), opts.sets || {});
  return ['serve', ...(opts.http ? ['--http', opts.http] : ['--stdio']), ...setArgs(sets)];
}

// Start `agentbox serve --stdio` and connect an SDK client.
//   opts.provider   'local' (default) or 'agent-sandbox'
//   opts.cluster    a startCluster() result (agent-sandbox; started here when absent)
//   opts.clusterArgs  extra arguments when the cluster is started here
//   opts.sets       extra --set key=value pairs
//   opts.stateDir   reuse a state directory (a restarted server finds its sandboxes)
export async function startServer(opts = {}) {
  opts = { provider: 'local', ...opts };
  let ownCluster = null;
  if (opts.provider === 'agent-sandbox' && !opts.cluster) {
    ownCluster = await startCluster({ args: opts.clusterArgs });
    opts.cluster = ownCluster;
  }
  const stateDir = opts.stateDir || tmpDir('abjs-state-');
  const transport = new StdioClientTransport({
    command: agentboxBin(),
    args: serverArgs(opts, stateDir),
    env: { ...process.env, ...(opts.env || {}) },
    stderr: 'pipe',
    // The SDK's stdio client drops the connection on a message over 10 MiB by default
    // (STDIO_DEFAULT_MAX_BUFFER_SIZE); a 10 MiB download is ~14 MB of base64.
    maxBufferSize: 128 * 1024 * 1024,
  });
  let stderr = '';
  transport.stderr.on('data', (d) => { stderr += d; if (stderr.length > 262144) stderr = stderr.slice(-131072); });
  const client = new Client({ name: 'agentbox-tools-e2e', version: '1.0.0' }, { capabilities: opts.capabilities || {} });
  // Every JSON-RPC message in both directions, in wire order ({dir: 'in'|'out', msg}), for
  // tests that check ordering below the SDK. (The SDK runs notification handlers in a
  // microtask but response handlers at once, so a progress notification that arrives in the
  // same read as its response reaches onprogress after the handler is gone and is dropped
  // with "unknown token"; the wire order is what the server controls.)
  const wire = [];
  try {
    await client.connect(transport);
    const onmessage = transport.onmessage;
    transport.onmessage = (msg, extra) => { wire.push({ dir: 'in', msg }); onmessage?.(msg, extra); };
    const send = transport.send.bind(transport);
    transport.send = (msg, o) => { wire.push({ dir: 'out', msg }); return send(msg, o); };
    // Listing the tools makes the SDK validate every structuredContent against its
    // outputSchema from now on (Client.callTool).
    await client.listTools();
  } catch (e) {
    await client.close().catch(() => {});
    if (ownCluster) await ownCluster.stop();
    throw new Error(`the server did not start: ${e.message}\n${stderr}`);
  }
  const srv = {
    client,
    transport,
    stateDir,
    cluster: opts.cluster,
    provider: opts.provider,
    get stderr() { return stderr; },
    get pid() { return transport.pid; },
    wire,
    call: toolCaller(client),
    // Close the client (the server sees EOF on stdin and exits) and check how the server
    // ended: anything but exit code 0 (a crash, a sanitizer report: LeakSanitizer exits
    // non-zero at the end) fails the test that stops it.
    async stop() {
      const proc = transport._process; // the SDK keeps the child private; no public accessor
      const exited = proc && proc.exitCode === null && proc.signalCode === null
        ? new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })))
        : Promise.resolve({ code: proc?.exitCode, signal: proc?.signalCode });
      await client.close().catch(() => {});
      const { code, signal } = await exited;
      if (!opts.stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
      if (ownCluster) await ownCluster.stop();
      if (code !== 0 || /Sanitizer|runtime error:/.test(stderr)) {
        throw new Error(`the server ended with ${signal ? `signal ${signal}` : `exit code ${code}`}:\n${stderr.slice(-8000)}`);
      }
    },
  };
  return srv;
}

// tools/call through client; meta.thread sets _meta["agentbox/thread_id"]. Extra request
// options (signal, onprogress, timeout) go in reqOpts.
export function toolCaller(client) {
  return (name, args, meta = {}, reqOpts = {}) => {
    const params = { name, arguments: args };
    const m = { ...(meta.extra || {}) };
    if (meta.thread !== undefined) m['agentbox/thread_id'] = meta.thread;
    if (Object.keys(m).length) params._meta = m;
    return client.callTool(params, undefined, { timeout: 120000, ...reqOpts });
  };
}

// Start `agentbox serve --http 127.0.0.1:0` (the kernel picks the port; the URL comes from
// the server's http.listening log line). Options as startServer. Returns {url, connect(),
// stop()}: connect({headers}) opens an MCP session with the SDK's
// StreamableHTTPClientTransport and returns {client, call, sessionId, close()}. stop()
// sends SIGTERM and checks the exit status like the stdio server's stop().
export async function startHttpServer(opts = {}) {
  opts = { provider: 'local', ...opts };
  const stateDir = opts.stateDir || tmpDir('abjs-state-');
  const args = serverArgs({ ...opts, http: '127.0.0.1:0', logLevel: 'info' }, stateDir);
  const proc = spawn(agentboxBin(), args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...(opts.env || {}) } });
  let stderr = '';
  let exit = null;
  const exited = new Promise((r) => proc.on('exit', (code, signal) => { exit = { code, signal }; r(exit); }));
  // Never outlive the test process.
  const killer = () => { if (!exit) proc.kill('SIGKILL'); };
  process.on('exit', killer);
  proc.stderr.setEncoding('utf8');
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the HTTP server did not start in 30 s:\n${stderr}`)), 30000);
    proc.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.length > 262144) stderr = stderr.slice(-131072);
      const m = /http\.listening url=(\S+)/.exec(stderr);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    exited.then((e) => { clearTimeout(t); reject(new Error(`the HTTP server exited (${JSON.stringify(e)}):\n${stderr}`)); });
  });
  const clients = new Set();
  return {
    url,
    stateDir,
    provider: opts.provider,
    get stderr() { return stderr; },
    async connect({ headers = {} } = {}) {
      const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
      const client = new Client({ name: 'agentbox-tools-e2e', version: '1.0.0' }, { capabilities: {} });
      await client.connect(transport);
      await client.listTools();
      const c = {
        client,
        transport,
        call: toolCaller(client),
        get sessionId() { return transport.sessionId; },
        // End the MCP session (DELETE) and close the client.
        async close() {
          clients.delete(c);
          await transport.terminateSession().catch(() => {});
          await client.close().catch(() => {});
        },
      };
      clients.add(c);
      return c;
    },
    async stop() {
      for (const c of [...clients]) await c.close();
      if (!exit) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 30000);
      const { code, signal } = await exited;
      clearTimeout(t);
      process.off('exit', killer);
      if (!opts.stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
      if (code !== 0 || /Sanitizer|runtime error:/.test(stderr)) {
        throw new Error(`the HTTP server ended with ${signal ? `signal ${signal}` : `exit code ${code}`}:\n${stderr.slice(-8000)}`);
      }
    },
  };
}

// The one text block of a result (throws when the result is not text-first).
export function textOf(r) {
  const b = r.content?.[0];
  if (!b || b.type !== 'text') throw new Error(`result has no leading text block: ${JSON.stringify(r).slice(0, 500)}`);
  return b.text;
}
