// runtime.mjs - start and stop one agentbox-runtime process (the binary under test) on a
// loopback address with a free port. Used by the compatibility test and by the emulated
// controller (one runtime per Sandbox, each on its own 127.0.0.N "pod IP").
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Every runtime this process started: killed synchronously if we exit without stopping them
// (a test runner that calls process.exit, an uncaught error), so none outlives its test.
const live = new Set();
process.on('exit', () => { for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

export function runtimeBin() {
  const b = process.env.RUNTIME_BIN;
  if (!b) throw new Error('RUNTIME_BIN must name the agentbox-runtime binary');
  return b;
}

// Start a runtime; resolves once it listens. opts: baseDir, host ('127.0.0.1'), port (0 =
// free), timeout (seconds, string), bin.
export async function startRuntime(opts) {
  const host = opts.host || '127.0.0.1';
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'abrt-port-'));
  const portFile = path.join(tmp, 'port');
  const args = ['--listen', `${host}:${opts.port || 0}`, '--base-dir', opts.baseDir, '--port-file', portFile];
  if (opts.timeout) args.push('--timeout', String(opts.timeout));
  const proc = spawn(opts.bin || runtimeBin(), args, { stdio: ['ignore', 'ignore', opts.quiet === false ? 'inherit' : 'pipe'] });
  let stderr = '';
  if (proc.stderr) proc.stderr.on('data', (d) => { if (stderr.length < 65536) stderr += d; });
  live.add(proc);
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => { live.delete(proc); resolve({ code, sig }); }));
  let alive = true;
  exited.then(() => { alive = false; });
  const deadline = Date.now() + 10000;
  let port = 0;
  while (!port) {
    if (!alive) throw new Error(`agentbox-runtime exited at start: ${stderr}`);
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error('agentbox-runtime did not start within 10s'); }
    try {
      const t = fs.readFileSync(portFile, 'utf8');
      if (t.endsWith('\n')) port = parseInt(t, 10);
    } catch { /* not yet */ }
    if (!port) await new Promise((r) => setTimeout(r, 10));
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  return {
    proc, host, port,
    url: `http://${host}:${port}`,
    get alive() { return alive; },
    kill(sig = 'SIGKILL') { if (alive) proc.kill(sig); return exited; },
    async stop() {
      if (!alive) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => { if (alive) proc.kill('SIGKILL'); }, 3000);
      await exited;
      clearTimeout(t);
    },
  };
}
