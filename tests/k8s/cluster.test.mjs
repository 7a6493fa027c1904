// cluster.test.mjs - the test cluster's own behaviour (a harness that lies makes every
// provider test worthless): API semantics, controller behaviour, router contract, faults.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';

let c, api, H;
const GE = '/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default';
const GA = '/apis/agents.x-k8s.io/v1beta1/namespaces/default';

before(async () => {
  c = await startCluster({ warmReplicas: 1, bookmarkMs: 200 });
  api = c.info.api;
  H = { authorization: `Bearer ${c.info.token}`, 'content-type': 'application/json' };
});
after(async () => { await c.stop(); });

async function k(method, p, body, headers = {}) {
  const r = await fetch(api + p, { method, headers: { ...H, ...headers }, body: body ? JSON.stringify(body) : undefined });
  const t = await r.text();
  return { status: r.status, json: t ? JSON.parse(t) : null };
}
const claim = (name, pool = 'warm-pool', extra = {}) => ({ apiVersion: 'extensions.agents.x-k8s.io/v1beta1', kind: 'SandboxClaim', metadata: { name, labels: { team: 'a' } }, spec: { warmPoolRef: { name: pool }, ...extra } });
async function waitClaim(name, pred) {
  let last;
  await c.waitFor(async () => { last = (await k('GET', `${GE}/sandboxclaims/${name}`)).json; return pred(last); }, 15000);
  return last;
}
const readyCond = (o) => o?.status?.conditions?.find((x) => x.type === 'Ready');

test('auth, discovery and Status objects', async () => {
  let r = await fetch(api + GE + '/sandboxclaims');
  assert.equal(r.status, 401);
  r = await k('GET', '/apis/extensions.agents.x-k8s.io');
  assert.deepEqual(r.json.versions.map((v) => v.version), ['v1beta1', 'v1alpha1']);
  r = await k('GET', '/apis/extensions.agents.x-k8s.io/v1beta1');
  assert.ok(r.json.resources.some((x) => x.name === 'sandboxclaims'));
  r = await k('GET', `${GE}/sandboxclaims/nope`);
  assert.equal(r.status, 404);
  assert.equal(r.json.kind, 'Status');
  assert.equal(r.json.reason, 'NotFound');
  assert.equal(r.json.message, 'sandboxclaims.extensions.agents.x-k8s.io "nope" not found');
  r = await k('POST', `${GE}/sandboxclaims`, { apiVersion: 'extensions.agents.x-k8s.io/v1beta1', kind: 'SandboxClaim', metadata: { name: 'bad' }, spec: {} });
  assert.equal(r.status, 422);
  assert.equal(r.json.reason, 'Invalid');
});

test('create, 409, generateName, label selectors, pagination, 410 on an expired continue', async () => {
  for (let i = 0; i < 5; i++) assert.equal((await k('POST', `${GE}/sandboxtemplates`, { apiVersion: 'extensions.agents.x-k8s.io/v1beta1', kind: 'SandboxTemplate', metadata: { generateName: 'gen-', labels: { i: String(i % 2) } }, spec: { podTemplate: { spec: { containers: [] } } } })).status, 201);
  let r = await k('POST', `${GE}/sandboxtemplates`, { apiVersion: 'extensions.agents.x-k8s.io/v1beta1', kind: 'SandboxTemplate', metadata: { name: 'agentbox-template' }, spec: { podTemplate: { spec: {} } } });
  assert.equal(r.status, 409);
  assert.equal(r.json.reason, 'AlreadyExists');
  r = await k('GET', `${GE}/sandboxtemplates?labelSelector=i%3D1`);
  assert.equal(r.json.items.length, 2);
  r = await k('GET', `${GE}/sandboxtemplates?labelSelector=i`);
  assert.equal(r.json.items.length, 5);
  const names = [];
  let cont = '';
  for (let page = 0; page < 10; page++) {
    r = await k('GET', `${GE}/sandboxtemplates?limit=2${cont ? '&continue=' + cont : ''}`);
    names.push(...r.json.items.map((x) => x.metadata.name));
    cont = r.json.metadata.continue;
    if (!cont) break;
  }
  assert.equal(names.length, 6);
  assert.equal(new Set(names).size, 6);
  r = await k('GET', `${GE}/sandboxtemplates?limit=2`);
  await fetch(api + '/_admin/faults', { method: 'POST', body: JSON.stringify({ compact: true }) });
  r = await k('GET', `${GE}/sandboxtemplates?limit=2&continue=${r.json.metadata.continue}`);
  assert.equal(r.status, 410);
  assert.equal(r.json.reason, 'Expired');
});

test('watch: resume from resourceVersion, bookmarks, 410 ERROR after compaction', async () => {
  const r0 = await k('GET', `${GE}/sandboxtemplates`);
  const rv = r0.json.metadata.resourceVersion;
  await k('POST', `${GE}/sandboxtemplates`, { apiVersion: 'extensions.agents.x-k8s.io/v1beta1', kind: 'SandboxTemplate', metadata: { name: 'watched' }, spec: { podTemplate: { spec: {} } } });
  const res = await fetch(`${api}${GE}/sandboxtemplates?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true&timeoutSeconds=1`, { headers: H });
  const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines[0].type, 'ADDED');
  assert.equal(lines[0].object.metadata.name, 'watched');
  assert.ok(lines.some((l) => l.type === 'BOOKMARK'));
  await fetch(api + '/_admin/faults', { method: 'POST', body: JSON.stringify({ compact: true }) });
  const res2 = await fetch(`${api}${GE}/sandboxtemplates?watch=true&resourceVersion=${rv}&timeoutSeconds=1`, { headers: H });
  const l2 = (await res2.text()).trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(l2[0].type, 'ERROR');
  assert.equal(l2[0].object.code, 410);
});

test('warm adoption, pool replenishment, cold fallback, GC on delete', async () => {
  await c.waitFor(async () => (await k('GET', `${GE}/sandboxwarmpools/warm-pool`)).json.status?.readyReplicas === 1);
  assert.equal((await k('POST', `${GE}/sandboxclaims`, claim('w1'))).status, 201);
  const w1 = await waitClaim('w1', (o) => readyCond(o)?.status === 'True');
  assert.notEqual(w1.status.sandbox.name, 'w1');
  assert.equal(w1.metadata.annotations['agents.x-k8s.io/sandbox-name'], w1.status.sandbox.name);
  const sb = (await k('GET', `${GA}/sandboxes/${w1.status.sandbox.name}`)).json;
  assert.equal(sb.metadata.labels['agents.x-k8s.io/launch-type'], 'warm');
  assert.equal(readyCond(w1).reason, 'DependenciesReady');
  assert.equal((await k('POST', `${GE}/sandboxclaims`, claim('c1', 'cold-pool'))).status, 201);
  const c1 = await waitClaim('c1', (o) => readyCond(o)?.status === 'True');
  assert.equal(c1.status.sandbox.name, 'c1');
  assert.equal((await k('GET', `${GA}/sandboxes/c1`)).json.metadata.labels['agents.x-k8s.io/launch-type'], 'cold');
  // the runtime answers on the pod IP, through the router with the X-Sandbox headers
  const ip = c1.status.sandbox.podIPs[0];
  let r = await fetch(`http://${ip}:8888/`);
  assert.equal(r.status, 200);
  r = await fetch(`${c.info.router}/execute`, { method: 'POST', headers: { 'X-Sandbox-ID': 'c1', 'X-Sandbox-Namespace': 'default', 'X-Sandbox-Port': '8888', 'X-Sandbox-Pod-IP': ip }, body: JSON.stringify({ command: 'echo hi' }) });
  assert.deepEqual(await r.json(), { stdout: 'hi\n', stderr: '', exit_code: 0 });
  r = await fetch(`${c.info.router}/execute`, { method: 'POST', headers: { 'X-Sandbox-ID': 'c1' }, body: '{}' });
  assert.equal(r.status, 502, 'no Service and no pod IP: not routable');
  assert.deepEqual(await r.json(), { detail: 'Could not connect to the backend sandbox: c1' });
  r = await fetch(`${c.info.router}/execute`, { method: 'POST', body: '{}' });
  assert.equal(r.status, 400);
  assert.equal((await k('DELETE', `${GE}/sandboxclaims/c1`)).status, 200);
  await c.waitFor(async () => (await k('GET', `${GA}/sandboxes/c1`)).status === 404);
  await c.waitFor(async () => (await k('GET', `${GE}/sandboxwarmpools/warm-pool`)).json.status?.readyReplicas === 1);
});

test('terminal reasons', async () => {
  await k('POST', `${GE}/sandboxclaims`, claim('t1', 'no-such-pool'));
  let o = await waitClaim('t1', (x) => readyCond(x));
  assert.equal(readyCond(o).reason, 'WarmPoolNotFound');
  assert.equal(readyCond(o).message, 'SandboxWarmPool "no-such-pool" not found');
  await k('POST', `${GE}/sandboxclaims`, claim('t2', 'cold-pool', { additionalPodMetadata: { labels: { app: 'sandbox-router' } } }));
  o = await waitClaim('t2', (x) => readyCond(x));
  assert.equal(readyCond(o).reason, 'InvalidMetadata');
  await k('POST', `${GE}/sandboxclaims`, claim('t3', 'cold-pool', { lifecycle: { shutdownTime: '2020-01-01T00:00:00Z', shutdownPolicy: 'Retain' } }));
  o = await waitClaim('t3', (x) => readyCond(x));
  assert.equal(readyCond(o).reason, 'ClaimExpired');
});

test('router auth: the shipped router\'s 401 texts, rotation through the admin API', async () => {
  const hdr = { 'X-Sandbox-ID': 'nope', 'content-type': 'application/json' };
  const post = (extra) => fetch(`${c.info.router}/execute`, { method: 'POST', headers: { ...hdr, ...extra }, body: '{}' });
  const rotate = (t) => k('POST', '/_admin/faults', { routerToken: t });
  try {
    await rotate('tok-1');
    let r = await post({});
    assert.equal(r.status, 401);
    assert.deepEqual(await r.json(), { detail: 'Missing or invalid Authorization header.' });
    r = await post({ authorization: 'Bearer tok-2' });
    assert.equal(r.status, 401);
    assert.deepEqual(await r.json(), { detail: 'Invalid token.' });
    r = await post({ authorization: 'Bearer tok-1' });
    assert.equal(r.status, 502); // authenticated: on to routing (no such sandbox)
    assert.equal((await fetch(`${c.info.router}/healthz`)).status, 200); // never needs the token
    await rotate('tok-2');
    assert.equal((await post({ authorization: 'Bearer tok-1' })).status, 401);
    assert.equal((await post({ authorization: 'Bearer tok-2' })).status, 502);
  } finally {
    await rotate(null);
  }
  assert.equal((await post({})).status, 502);
});
