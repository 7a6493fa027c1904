// Multi-tenancy over Streamable HTTP with the official SDK: a principal sees and touches only
// its own sandboxes, on every tool (the lifecycle tools included), and gets the same "not
// found" for another principal's sandbox as for one that does not exist; sessions are bound
// to their principal; the token file is re-read on SIGHUP; tokens never appear in the logs
// or the audit log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { request, ACCEPT_BOTH } from '../http/lib/http.mjs';
import { waitFor } from '../http/lib/server.mjs';
import { TOKENS, call, connect, readAudit, sets, startHttpServer, tmpDir, tokenArgs } from './lib.mjs';

const dir = tmpDir();
const tokenFile = path.join(dir, 'tokens');
const auditFile = path.join(dir, 'audit.log');
const CAROL = 'tok-carol-0a1b2c3d4e5f6071';
const DAVE = 'tok-dave-9e8d7c6b5a4f3e2d1c';
let server;

before(async () => {
  fs.writeFileSync(tokenFile, `# principals from a file\n${CAROL} carol\n`, { mode: 0o600 });
  server = await startHttpServer({
    args: ['--log-level', 'debug', ...tokenArgs(),
      ...sets({ 'auth.token_file': tokenFile, 'audit.path': auditFile })],
  });
});

after(async () => {
  const e = await server.stop();
  assert.equal(e.code, 0, `server exit:\n${server.stderr().slice(-3000)}`);
  // No token ever reached a log line or the audit log.
  const logs = server.stderr() + fs.readFileSync(auditFile, 'utf8');
  for (const t of [TOKENS.alice, TOKENS.bob, CAROL, DAVE]) {
    assert.ok(!logs.includes(t), `a token appears in the logs: ${t}`);
    assert.ok(!logs.includes(t.slice(4, 16)), `part of a token appears in the logs: ${t}`);
  }
});

// Minimal valid arguments for every tool that takes a sandbox_id.
const TOOL_ARGS = {
  execute: { command: 'cat /workspace/secret.txt' },
  execute_python: { code: 'print(open("/workspace/secret.txt").read())' },
  read: { path: 'secret.txt' },
  write: { path: 'secret.txt', content: 'overwritten by bob' },
  edit: { path: 'secret.txt', old_string: 'alice', new_string: 'bob' },
  ls: { path: '/workspace' },
  grep: { pattern: 'alice' },
  glob: { pattern: '*' },
  upload: { files: [{ path: 'planted.txt', content: 'bob was here' }] },
  download: { paths: ['secret.txt'] },
  sandbox_info: {},
  sandbox_delete: {},
};

test('tenants: another principal gets "not found" for my sandbox on every tool', async () => {
  const alice = await connect(server.url, TOKENS.alice);
  const bob = await connect(server.url, TOKENS.bob);
  try {
    const created = await call(alice, 'sandbox_create', { labels: { owner: 'alice' } });
    assert.equal(created.isError, false, created.text);
    const id = created.structured.sandbox_id;
    assert.match(id, /^ab-[0-9a-f]{20}$/);
    const w = await call(alice, 'write', { path: 'secret.txt', content: 'alice-secret\n', sandbox_id: id });
    assert.equal(w.isError, false, w.text);

    // A well-formed id that exists nowhere, for comparison: the answers must not differ.
    const ghost = 'ab-00000000000000000000';
    for (const [tool, args] of Object.entries(TOOL_ARGS)) {
      const theirs = await call(bob, tool, { ...args, sandbox_id: id });
      const none = await call(bob, tool, { ...args, sandbox_id: ghost });
      assert.equal(theirs.isError, true, `${tool}: bob reached alice's sandbox: ${theirs.text}`);
      assert.match(theirs.text, /not found/, `${tool}: ${theirs.text}`);
      assert.equal(theirs.text.replaceAll(id, '<id>'), none.text.replaceAll(ghost, '<id>'),
        `${tool}: the refusal tells alice's sandbox apart from a missing one`);
      assert.ok(!theirs.text.includes('alice-secret'), `${tool}: ${theirs.text}`);
    }

    // bob's listing does not show it (bob has no sandbox yet; sandbox_list creates none).
    const bl = await call(bob, 'sandbox_list', {});
    assert.equal(bl.isError, false, bl.text);
    assert.ok(!JSON.stringify(bl.structured).includes(id), `bob lists alice's sandbox: ${bl.text}`);
    assert.ok(!bl.structured.sandboxes.some((s) => s.labels?.owner === 'alice'));

    // alice's sandbox and file are untouched, and hers to list.
    const r = await call(alice, 'read', { path: 'secret.txt', sandbox_id: id });
    assert.match(r.text, /alice-secret/);
    const ls = await call(alice, 'ls', { path: '/workspace', sandbox_id: id });
    assert.ok(!ls.text.includes('planted'), ls.text);
    const al = await call(alice, 'sandbox_list', {});
    assert.ok(al.structured.sandboxes.some((s) => s.sandbox_id === id), al.text);
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('tenants: the same thread id names different sandboxes for different principals', async () => {
  const headers = { 'Agentbox-Thread-Id': 'shared-conversation-42' };
  const alice = await connect(server.url, TOKENS.alice, { headers });
  const bob = await connect(server.url, TOKENS.bob, { headers });
  try {
    await call(alice, 'write', { path: 'mine.txt', content: 'alice thread file' });
    const a = await call(alice, 'sandbox_info', {});
    const b = await call(bob, 'sandbox_info', {});
    assert.notEqual(a.structured.sandbox_id, b.structured.sandbox_id);
    assert.equal(a.structured.thread_id, 'shared-conversation-42');
    assert.equal(b.structured.thread_id, 'shared-conversation-42');
    const r = await call(bob, 'read', { path: 'mine.txt' });
    assert.equal(r.isError, true, `bob read alice's thread file: ${r.text}`);
    const x = await call(bob, 'execute', { command: 'ls -A /workspace; cat /workspace/mine.txt 2>&1' });
    assert.ok(!x.text.includes('alice thread file'), x.text);
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('tenants: a session belongs to the principal that opened it', async () => {
  const alice = await connect(server.url, TOKENS.alice);
  try {
    const sid = alice.transport.sessionId;
    const r = await request(server.url, {
      headers: { Authorization: `Bearer ${TOKENS.bob}`, 'Mcp-Session-Id': sid, Accept: ACCEPT_BOTH,
        'MCP-Protocol-Version': '2025-11-25' },
      body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'sandbox_list', arguments: {} } },
    });
    assert.equal(r.status, 404, r.text);
    const d = await request(server.url, {
      method: 'DELETE', headers: { Authorization: `Bearer ${TOKENS.bob}`, 'Mcp-Session-Id': sid },
    });
    assert.equal(d.status, 404, d.text);
    await alice.client.ping(); // still alice's, still open
  } finally {
    await alice.close();
  }
});

test('tenants: the token file is re-read on SIGHUP (added and removed principals)', async () => {
  const carol = await connect(server.url, CAROL);
  const mine = await call(carol, 'sandbox_list', {});
  assert.equal(mine.isError, false, mine.text);
  await carol.close();
  const noauth = await request(server.url, {
    headers: { Authorization: `Bearer ${DAVE}`, Accept: ACCEPT_BOTH },
    body: { jsonrpc: '2.0', id: 1, method: 'ping' },
  });
  assert.equal(noauth.status, 401);
  assert.match(noauth.headers['www-authenticate'] ?? '', /^Bearer/);

  fs.writeFileSync(tokenFile, `${DAVE} dave\n`);
  const before = (server.stderr().match(/auth\.reload/g) ?? []).length;
  server.proc.kill('SIGHUP');
  await waitFor(() => (server.stderr().match(/auth\.reload/g) ?? []).length > before, 10000, 'the reload');

  const dave = await connect(server.url, DAVE);
  const d = await call(dave, 'sandbox_create', {});
  assert.equal(d.isError, false, d.text);
  await dave.close();
  await assert.rejects(connect(server.url, CAROL), /401|Unauthorized/);
  // The configured tokens are unaffected by the file.
  const alice = await connect(server.url, TOKENS.alice);
  await alice.client.ping();
  await alice.close();
});

test('tenants: the audit log names the principal of every call, and never its token', async () => {
  const lines = readAudit(auditFile);
  assert.ok(lines.length > 10, `audit lines: ${lines.length}`);
  const principals = new Set(lines.map((l) => l.principal));
  for (const p of ['alice', 'bob', 'carol', 'dave']) assert.ok(principals.has(p), `no audit line for ${p}`);
  // bob's refused attempts on alice's sandbox are recorded as errors of bob's.
  const bobOnAlice = lines.filter((l) => l.principal === 'bob' && l.tool === 'write' && l.result === 'error');
  assert.ok(bobOnAlice.length >= 1);
});
