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

// An isolated "pod" (opts.pod): the runtime runs in mount and PID namespaces of its own,
// whose root is a fresh tmpfs holding the host's system directories (bound), a fresh /proc,
// a private /tmp, and the pod's volume (opts.baseDir on the host) at opts.pod.mountPath, as
// the user opts.pod.runAsUser: what a container with a volumeMount and a securityContext
// sees. So absolute paths in commands (/workspace/x) mean the same as in a real pod, a
// non-root user meets file permissions, and when the pod ends (its runtime exits, or its
// unshare is stopped: --kill-child), the kernel kills every process the pod's commands left
// behind, as a container runtime does (pid_namespaces(7): PID 1 of the namespace exits).
// Needs root (mount(2), CLONE_NEWPID); util-linux unshare, coreutils chroot.
const POD_SCRIPT = `set -e
R=$1; VOL=$2; MNT=$3; BINDIR=$4; PORTDIR=$5; U=$6; shift 6
mount -t tmpfs -o mode=0755 pod-root "$R"
for d in /usr /bin /sbin /lib /lib32 /lib64 /libx32 /etc; do
  if [ -L "$d" ]; then ln -s "$(readlink "$d")" "$R$d"
  elif [ -d "$d" ]; then mkdir -p "$R$d"; mount --rbind "$d" "$R$d"; fi
done
mkdir -p "$R/proc" "$R/dev" "$R/tmp" "$R$MNT" "$R/.agentbox-runtime" "$R/.agentbox-port"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=1777 pod-tmp "$R/tmp"
mount --bind "$VOL" "$R$MNT"
mount --bind "$BINDIR" "$R/.agentbox-runtime"
mount --bind "$PORTDIR" "$R/.agentbox-port"
# This shell stays PID 1 of the pod (root, so unshare's --kill-child signal reaches it: a
# change of credentials clears the parent-death signal, prctl(2)); when it dies, or the
# runtime exits, the namespace ends and every process left in it is killed.
chroot --userspec="$U:$U" "$R" "$@" &
wait $!
`;

// Start a runtime; resolves once it listens. opts: baseDir, host ('127.0.0.1'), port (0 =
// free), timeout (seconds, string), bin, pod ({rootDir, mountPath, runAsUser}: isolated).
export async function startRuntime(opts) {
  const host = opts.host || '127.0.0.1';
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'abrt-port-'));
  const portFile = path.join(tmp, 'port');
  const bin = opts.bin || runtimeBin();
  let cmd = bin;
  let args = ['--listen', `${host}:${opts.port || 0}`, '--base-dir', opts.baseDir, '--port-file', portFile];
  if (opts.timeout) args.push('--timeout', String(opts.timeout));
  if (opts.pod) {
    const uid = opts.pod.runAsUser ?? 0;
    fs.mkdirSync(opts.pod.rootDir, { recursive: true });
    fs.chownSync(opts.baseDir, uid, uid);
    fs.chownSync(tmp, uid, uid);
    args[args.indexOf('--base-dir') + 1] = opts.pod.mountPath;
    args[args.indexOf('--port-file') + 1] = '/.agentbox-port/port';
    args = ['--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', '--', 'sh', '-c', POD_SCRIPT, 'pod',
      opts.pod.rootDir, opts.baseDir, opts.pod.mountPath, path.dirname(path.resolve(bin)), tmp, String(uid),
      `/.agentbox-runtime/${path.basename(bin)}`, ...args];
    cmd = 'unshare';
  }
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', opts.quiet === false ? 'inherit' : 'pipe'] });
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
