// Start and stop agentbox servers for the JS tests.
//
// Every server listens on 127.0.0.1 with a kernel-chosen port (`--http 127.0.0.1:0`); the
// URL is read from its `http.listening` log line. Servers are killed when the test process
// exits, whatever happens, so no test leaves a process behind.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const live = new Set();
const stateDirs = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
  for (const d of stateDirs) fs.rmSync(d, { recursive: true, force: true });
});

// Every server gets its own state directory (the local provider locks it) and no warm
// pool: these tests exercise the protocol, not sandboxes.
export function isolationArgs() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentbox-test-state-'));
  stateDirs.add(dir);
  return ['--set', `state_dir=${dir}`, '--set', 'sandbox.pool.size=0'];
}

export function agentboxBin() {
  const bin = process.env.AGENTBOX_BIN;
  if (!bin) throw new Error('AGENTBOX_BIN is not set (ctest sets it to the built binary)');
  return bin;
}

// Start `agentbox serve --http 127.0.0.1:0 --conformance-fixtures ...extra`.
// Returns {url, port, proc, stderr(), stop(), waitExit()}.
export async function startHttpServer({ args = [], env = {}, timeoutMs = 15000 } = {}) {
  const proc = spawn(agentboxBin(),
    ['serve', '--http', '127.0.0.1:0', '--conformance-fixtures', '--log-level', 'info', ...isolationArgs(), ...args],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(proc);
  let log = '';
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      live.delete(proc);
      resolve(exited);
    });
  });
  proc.stderr.setEncoding('utf8');
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${log}`)), timeoutMs);
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /http\.listening url=(\S+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    exitPromise.then((e) => { clearTimeout(timer); reject(new Error(`server exited (${JSON.stringify(e)}):\n${log}`)); });
  });
  const port = Number(new URL(url).port);
  return {
    url, port, proc,
    stderr: () => log,
    exited: () => exited,
    waitExit: (ms = 20000) => withTimeout(exitPromise, ms, `server did not exit within ${ms} ms`),
    async stop(ms = 20000) {
      if (exited) return exited;
      proc.kill('SIGTERM');
      try {
        return await withTimeout(exitPromise, ms, `server did not stop within ${ms} ms after SIGTERM; log tail:\n${log.split('\n').slice(-15).join('\n')}`);
      } catch (e) {
        proc.kill('SIGKILL');
        await exitPromise;
        throw e;
      }
    },
  };
}

export async function withTimeout(promise, ms, what) {
  let timer;
  try {
    return await Promise.race([promise, new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    })]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Wait until pred() is truthy (polling), or fail after ms.
export async function waitFor(pred, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
