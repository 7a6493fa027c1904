// Helpers for the examples' tests: paths, temporary state directories, and agentbox HTTP
// servers on a kernel-chosen loopback port (read from the `http.listening url=` log line),
// killed when the test process exits whatever happens, so no test leaves a process behind.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const bin = process.env.AGENTBOX_BIN;
export const src = process.env.AGENTBOX_SOURCE_DIR;
if (!bin || !src) throw new Error('AGENTBOX_BIN and AGENTBOX_SOURCE_DIR must be set (ctest sets them)');

const live = new Set();
const dirs = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

// A fresh directory removed at exit (sandbox workspaces included).
export function tmpDir(prefix = 'ab-examples-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.add(d);
  return d;
}

export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120000, ...opts });
  if (r.error) throw r.error;
  return r;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Start `agentbox serve --http 127.0.0.1:0 ...args` with a private state directory.
// Returns {url (the MCP endpoint), base, stateDir, log(), stop()}.
export async function startHttp({ args = [], env = {}, timeoutMs = 20000 } = {}) {
  const stateDir = tmpDir('ab-examples-state-');
  const proc = spawn(bin, ['serve', '--http', '127.0.0.1:0', '--log-level', 'info', ...args], {
    env: { ...process.env, AGENTBOX_STATE_DIR: stateDir, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  live.add(proc);
  let log = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => { live.delete(proc); resolve({ code, signal }); }));
  proc.stderr.setEncoding('utf8');
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agentbox did not start in ${timeoutMs} ms:\n${log}`)), timeoutMs);
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /http\.listening url=(\S+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    exited.then((e) => { clearTimeout(timer); reject(new Error(`agentbox exited ${JSON.stringify(e)}:\n${log}`)); });
  });
  const base = new URL(url).origin;
  return {
    url, base, stateDir,
    log: () => log,
    async stop() {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 20000);
      const e = await exited;
      clearTimeout(t);
      return e;
    },
  };
}

// The host directory of a local sandbox's workspace: the one sandbox under stateDir whose
// metadata names this thread key (or the only one when key is omitted).
export function workspaceOf(stateDir, threadKey) {
  const root = path.join(stateDir, 'sandboxes');
  const names = fs.existsSync(root) ? fs.readdirSync(root) : [];
  const found = names.filter((n) => {
    if (threadKey === undefined) return true;
    try {
      return JSON.parse(fs.readFileSync(path.join(root, n, 'meta.json'), 'utf8')).thread_key === threadKey;
    } catch { return false; }
  });
  if (found.length !== 1) throw new Error(`expected one sandbox for ${threadKey ?? '(any)'} in ${root}, found ${found.length}: ${names}`);
  return path.join(root, found[0], 'workspace');
}
