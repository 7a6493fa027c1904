// Signals: SIGTERM drains in-flight calls (readyz 503, no new work, answers still accepted)
// and exits 0; calls still running after http.shutdown_grace are cancelled; a second
// SIGTERM/SIGINT skips the grace period; SIGHUP re-reads auth.token_file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHttpServer, waitFor } from './lib/server.mjs';
import { request, openStream, openSession, post, initializeMessage, ACCEPT_BOTH } from './lib/http.mjs';

async function slowCall(url, sid, id) {
  const s = await openStream(url, { method: 'POST', headers: { Accept: ACCEPT_BOTH, 'Mcp-Session-Id': sid },
    body: { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'test_elicitation', arguments: { message: 'wait' } } } });
  const { message } = await s.nextMessage();
  assert.equal(message.method, 'elicitation/create');
  return { s, elicitId: message.id };
}

test('SIGTERM drains: in-flight calls finish, new work is refused, exit code 0', async () => {
  const srv = await startHttpServer({ args: ['--set', 'http.shutdown_grace=30s'] });
  try {
    const { sid } = await openSession(srv.url, { capabilities: { elicitation: {} } });
    const { s, elicitId } = await slowCall(srv.url, sid, 7);
    srv.proc.kill('SIGTERM');
    await waitFor(() => /http\.drain inflight=1/.test(srv.stderr()), 10000, 'http.drain in the log');
    const ready = await request(srv.url.replace('/mcp', '/readyz'), { method: 'GET' });
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.json, { status: 'draining' });
    assert.equal((await request(srv.url.replace('/mcp', '/healthz'), { method: 'GET' })).status, 200);
    const init = await request(srv.url, { headers: { Accept: ACCEPT_BOTH }, body: initializeMessage() });
    assert.equal(init.status, 503);
    assert.ok(init.headers['retry-after']);
    const ping = await post(srv.url, sid, { jsonrpc: '2.0', id: 1, method: 'ping' });
    assert.equal(ping.status, 503);
    assert.equal(srv.exited(), null, 'still running while the call is in flight');
    // The client's answer is still accepted, and the result is delivered.
    const a = await post(srv.url, sid, { jsonrpc: '2.0', id: elicitId, result: { action: 'accept', content: { username: 'late', email: 'l@x' } } });
    assert.equal(a.status, 202);
    const done = await s.nextMessage();
    assert.equal(done.message.id, 7);
    assert.match(done.message.result.content[0].text, /"username":"late"/);
    const e = await srv.waitExit(20000);
    assert.deepEqual(e, { code: 0, signal: null });
  } finally {
    await srv.stop().catch(() => {});
  }
});

test('calls still running after http.shutdown_grace are cancelled; the exit code is 0', async () => {
  const srv = await startHttpServer({ args: ['--set', 'http.shutdown_grace=1s'] });
  const { sid } = await openSession(srv.url, { capabilities: { elicitation: {} } });
  const { s } = await slowCall(srv.url, sid, 8);
  srv.proc.kill('SIGTERM');
  const e = await srv.waitExit(20000);
  assert.deepEqual(e, { code: 0, signal: null });
  assert.match(srv.stderr(), /call\.done .*tool=test_elicitation .*cancelled=yes/);
  const rest = await s.rest(5000).catch(() => []);
  assert.ok(!rest.some((ev) => ev.data && JSON.parse(ev.data).id === 8), 'no result for a cancelled call');
});

test('a second SIGTERM/SIGINT skips the grace period', async () => {
  const srv = await startHttpServer({ args: ['--set', 'http.shutdown_grace=300s'] });
  const { sid } = await openSession(srv.url, { capabilities: { elicitation: {} } });
  await slowCall(srv.url, sid, 9);
  srv.proc.kill('SIGTERM');
  await waitFor(() => /http\.drain /.test(srv.stderr()), 10000, 'http.drain');
  srv.proc.kill('SIGINT');
  const e = await srv.waitExit(20000);
  assert.deepEqual(e, { code: 0, signal: null });
  assert.match(srv.stderr(), /http\.drain\.forced/);
});

test('SIGHUP re-reads auth.token_file; a broken file keeps the old tokens', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentbox-tokens-'));
  const file = path.join(dir, 'tokens');
  const t1 = 'first-token-0123456789abcdef';
  const t2 = 'second-token-0123456789abcdef';
  fs.writeFileSync(file, `# agentbox tokens\n${t1} alice\n`, { mode: 0o600 });
  const srv = await startHttpServer({ args: ['--set', `auth.token_file=${file}`] });
  try {
    const init = (tok) => request(srv.url, { headers: { Accept: ACCEPT_BOTH, Authorization: `Bearer ${tok}` }, body: initializeMessage() });
    assert.equal((await init(t1)).status, 200);
    assert.equal((await init(t2)).status, 401);
    fs.writeFileSync(file, `${t2} bob\n`);
    srv.proc.kill('SIGHUP');
    await waitFor(async () => (await init(t2)).status === 200, 10000, 'the new token to work');
    assert.equal((await init(t1)).status, 401);
    fs.writeFileSync(file, 'short\n');
    srv.proc.kill('SIGHUP');
    await waitFor(() => /http\.auth\.reload_failed/.test(srv.stderr()), 10000, 'reload_failed');
    assert.equal((await init(t2)).status, 200, 'old tokens stay in force');
    assert.ok(!srv.stderr().includes(t1) && !srv.stderr().includes(t2));
  } finally {
    assert.equal((await srv.stop()).code, 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
