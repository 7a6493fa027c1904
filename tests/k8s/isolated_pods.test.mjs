// isolated_pods.test.mjs - the emulated pods of `--isolated-pods` / isolatePods (what the
// golden tests on the agent-sandbox provider rely on): each runtime runs as the template's
// runAsUser in a mount namespace of its own, with the pod's volume at its mountPath as the
// runtime's base directory, a private /tmp, its own PID namespace (the runtime is PID 1) and
// no view of the cluster's own files; and it stops with its pod, leaving nothing mounted or
// running, not even what its commands started in the background.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startCluster } from './lib/cluster.mjs';

let c;
const GE = '/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default';

before(async () => { c = await startCluster({ warmReplicas: 1, isolatePods: true }); });
after(async () => { await c.stop(); });

async function k(method, p, body) {
  const r = await fetch(c.info.api + p, { method, headers: { authorization: `Bearer ${c.info.token}`, 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
  const t = await r.text();
  return t ? JSON.parse(t) : null;
}

// Run a shell command in the pod of a claim through agentbox-runtime's exec extension.
async function sh(ip, command) {
  const r = await fetch(`http://${ip}:8888/agentbox/v1/exec`, { method: 'POST', body: JSON.stringify({ shell: command, output_cap: 1 << 20 }) });
  let out = '';
  let code = null;
  for (const line of (await r.text()).split('\n').filter(Boolean)) {
    const ev = JSON.parse(line);
    if (ev.type === 'output' && ev.data) out += Buffer.from(ev.data, 'base64').toString();
    if (ev.type === 'exit') code = ev.exit_code;
  }
  return { out, code };
}

test('the template is a production-like one: non-root user, a workspace volume', async () => {
  const tpl = await k('GET', `${GE}/sandboxtemplates/${c.info.template}`);
  const ctr = tpl.spec.podTemplate.spec.containers[0];
  assert.equal(ctr.securityContext.runAsUser, 1000);
  assert.equal(ctr.volumeMounts[0].mountPath, '/workspace');
});

test('a pod runs as its runAsUser, in its own root, with the volume at /workspace', async () => {
  await k('POST', `${GE}/sandboxclaims`, { apiVersion: 'extensions.agents.x-k8s.io/v1beta1', kind: 'SandboxClaim', metadata: { name: 'iso' }, spec: { warmPoolRef: { name: 'warm-pool' } } });
  let claim;
  await c.waitFor(async () => {
    claim = await k('GET', `${GE}/sandboxclaims/iso`);
    return claim?.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True');
  }, 20000);
  const ip = claim.status.sandbox.podIPs[0];
  const info = await (await fetch(`http://${ip}:8888/agentbox/v1/info`)).json();
  assert.equal(info.base_dir, '/workspace');
  let r = await sh(ip, 'id -u; pwd; echo hi > /workspace/f; cat /workspace/f; touch /tmp/t && echo tmp-ok; touch /usr/x 2>/dev/null || echo usr-ro');
  assert.equal(r.out, '1000\n/workspace\nhi\ntmp-ok\nusr-ro\n');
  assert.equal(r.code, 0);
  // The pod's volume is the pod directory on the host; the cluster's own files are not visible.
  const pod = (await k('GET', '/_admin/state')).pods[claim.status.sandbox.name];
  assert.equal(fs.readFileSync(`${pod.dir}/f`, 'utf8'), 'hi\n');
  assert.equal(fs.statSync(`${pod.dir}/f`).uid, 1000);
  r = await sh(ip, `test -e ${JSON.stringify(pod.dir)} && echo visible || echo hidden; ls -d /proc/[0-9]* | wc -l; grep -l agentbox-runtime /proc/[0-9]*/cmdline | wc -l`);
  const [vis, nproc, nrt] = r.out.split('\n');
  assert.equal(vis, 'hidden');
  assert.ok(Number(nproc) < 10, `the pod sees only its own processes (${nproc})`);
  assert.ok(Number(nrt) >= 1, 'the runtime runs in the pod');
  // A background process outlives its command but not its pod.
  r = await sh(ip, 'sleep 600 >/dev/null 2>&1 & echo $!');
  const bgHostPids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
    try { return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8') === 'sleep\u0000600\u0000' && fs.statSync(`/proc/${d}`).uid === 1000; } catch { return false; }
  });
  assert.ok(bgHostPids.length >= 1, 'the background process runs');
  // Deleting the claim stops the pod: its runtime is gone and nothing stays mounted.
  await k('DELETE', `${GE}/sandboxclaims/iso`);
  await c.waitFor(async () => !(await k('GET', '/_admin/state')).pods[claim.status.sandbox.name], 20000);
  // Gone, or a zombie on its way: the process may exit between any two looks at /proc.
  const ended = (d) => {
    try { return fs.readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1][0] === 'Z'; } catch (e) { if (e.code === 'ENOENT' || e.code === 'ESRCH') return true; throw e; }
  };
  await c.waitFor(() => bgHostPids.every(ended), 10000);
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  assert.ok(!mounts.includes(pod.dir), 'a pod mount leaked into the host namespace');
  // The runtime (the pod's PID 1) is killed asynchronously when its pod stops.
  await c.waitFor(async () => {
    try { await fetch(`http://${ip}:8888/`, { signal: AbortSignal.timeout(2000) }); return false; } catch { return true; }
  }, 10000);
});
