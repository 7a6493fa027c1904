// Per-principal quotas over Streamable HTTP with the official SDK: live sandboxes, concurrent
// tool calls and request size. Exceeding one is a clear error that names the quota, and
// never affects another principal. Concurrency is made deterministic by commands that wait
// for a file the test creates from the host, not by sleeping.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { waitFor, withTimeout } from '../http/lib/server.mjs';
import { TOKENS, call, connect, readAudit, sets, startHttpServer, tmpDir, tokenArgs } from './lib.mjs';

const dir = tmpDir();
const stateDir = path.join(dir, 'state');
const auditFile = path.join(dir, 'audit.log');
let server;

before(async () => {
  fs.mkdirSync(stateDir);
  server = await startHttpServer({
    args: [...tokenArgs(), ...sets({
      state_dir: stateDir,
      'quotas.max_sandboxes': 2,
      'quotas.max_concurrent_calls': 2,
      'quotas.max_request_bytes': '64KiB',
      'audit.path': auditFile,
    })],
  });
});

after(async () => {
  const e = await server.stop();
  assert.equal(e.code, 0, `server exit:\n${server.stderr().slice(-3000)}`);
});

const hostWs = (id) => path.join(stateDir, 'sandboxes', id, 'workspace');

test('quotas: concurrent tool calls per principal (quotas.max_concurrent_calls)', async () => {
  const alice = await connect(server.url, TOKENS.alice);
  const bob = await connect(server.url, TOKENS.bob);
  try {
    const s = await call(alice, 'sandbox_create', {});
    assert.equal(s.isError, false, s.text);
    const id = s.structured.sandbox_id;
    // Two calls that announce themselves, then wait (bounded) for the test's go-ahead.
    const slow = (n) => call(alice, 'execute', {
      sandbox_id: id,
      command: `touch /workspace/started-${n}; i=0; while [ ! -e /workspace/go ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; echo slow-${n}-done`,
    });
    const p1 = slow(1);
    const p2 = slow(2);
    await waitFor(() => fs.existsSync(path.join(hostWs(id), 'started-1'))
      && fs.existsSync(path.join(hostWs(id), 'started-2')), 30000, 'both slow calls to start');

    const third = await call(alice, 'execute', { sandbox_id: id, command: 'echo third' });
    assert.equal(third.isError, true, third.text);
    assert.match(third.text, /quotas\.max_concurrent_calls/);
    assert.match(third.text, /^Error: quota exceeded/);
    // bob is not affected by alice's quota.
    const b = await call(bob, 'execute', { command: 'echo bob-runs' });
    assert.equal(b.isError, false, b.text);
    assert.match(b.text, /bob-runs/);

    fs.writeFileSync(path.join(hostWs(id), 'go'), '');
    const [r1, r2] = await withTimeout(Promise.all([p1, p2]), 60000, 'the slow calls to finish');
    assert.match(r1.text, /slow-1-done/);
    assert.match(r2.text, /slow-2-done/);
    // The slots are free again.
    const again = await call(alice, 'execute', { sandbox_id: id, command: 'echo again' });
    assert.equal(again.isError, false, again.text);
    await call(alice, 'sandbox_delete', { sandbox_id: id });
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('quotas: live sandboxes per principal (quotas.max_sandboxes)', async () => {
  const alice = await connect(server.url, TOKENS.alice);
  const bob = await connect(server.url, TOKENS.bob);
  try {
    const listed = await call(alice, 'sandbox_list', {});
    for (const s of listed.structured.sandboxes) await call(alice, 'sandbox_delete', { sandbox_id: s.sandbox_id });
    const a1 = await call(alice, 'sandbox_create', {});
    const a2 = await call(alice, 'sandbox_create', {});
    assert.equal(a1.isError || a2.isError, false, `${a1.text}\n${a2.text}`);
    const a3 = await call(alice, 'sandbox_create', {});
    assert.equal(a3.isError, true, a3.text);
    assert.match(a3.text, /quota exceeded \(quotas\.max_sandboxes\)/);
    assert.match(a3.text, /sandbox_delete/);
    // The thread's own sandbox would be a third one: the same refusal.
    const implicit = await call(alice, 'execute', { command: 'echo hi' });
    assert.equal(implicit.isError, true, implicit.text);
    assert.match(implicit.text, /quotas\.max_sandboxes/);
    // bob is not affected.
    const b1 = await call(bob, 'sandbox_create', {});
    assert.equal(b1.isError, false, b1.text);
    // Deleting one makes room.
    await call(alice, 'sandbox_delete', { sandbox_id: a2.structured.sandbox_id });
    const a4 = await call(alice, 'sandbox_create', {});
    assert.equal(a4.isError, false, a4.text);
    for (const s of [a1, a4]) await call(alice, 'sandbox_delete', { sandbox_id: s.structured.sandbox_id });
    await call(bob, 'sandbox_delete', { sandbox_id: b1.structured.sandbox_id });
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('quotas: request size per principal (quotas.max_request_bytes)', async () => {
  const alice = await connect(server.url, TOKENS.alice);
  const bob = await connect(server.url, TOKENS.bob);
  try {
    const big = 'x'.repeat(100 * 1024);
    await assert.rejects(call(alice, 'write', { path: 'big.txt', content: big }),
      (e) => /Payload Too Large/.test(e.message) && /quotas\.max_request_bytes/.test(e.message),
      'a request over the quota is refused with a message naming it');
    // The session survives, and smaller requests work, for alice and for bob.
    const small = await call(alice, 'write', { path: 'small.txt', content: 'x'.repeat(1024) });
    assert.equal(small.isError, false, small.text);
    const b = await call(bob, 'write', { path: 'small.txt', content: 'y'.repeat(1024) });
    assert.equal(b.isError, false, b.text);
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('quotas: refusals are in the audit log as denied, decision quota', async () => {
  const lines = readAudit(auditFile);
  const q = lines.filter((l) => l.decision === 'quota');
  assert.ok(q.some((l) => l.tool === 'sandbox_create' && l.principal === 'alice'), JSON.stringify(q));
  assert.ok(q.some((l) => l.tool === 'execute' && l.principal === 'alice'), JSON.stringify(q));
  for (const l of q) assert.equal(l.result, 'denied');
  assert.ok(!lines.some((l) => l.principal === 'bob' && l.decision === 'quota'));
});
