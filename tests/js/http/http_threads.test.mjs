// Thread scoping over HTTP (design.md "Thread-scoped get-or-create"): the Agentbox-Thread-Id
// header pins one sandbox across MCP sessions (LangChain's adapters open a session per tool
// call), params._meta["agentbox/thread_id"] overrides it, a session without either gets a
// key derived from (not equal to) its session id, and sandboxes outlive sessions. Uses the
// real tools and the local provider.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHttpServer } from './lib/server.mjs';
import { openSession, post, request } from './lib/http.mjs';

let server;
before(async () => { server = await startHttpServer(); });
after(async () => {
  const e = await server.stop();
  assert.equal(e.code, 0, `server exit after SIGTERM:\n${server.stderr()}`);
});

async function call(sid, name, args, { headers = {}, meta } = {}) {
  const params = { name, arguments: args };
  if (meta) params._meta = meta;
  const r = await post(server.url, sid, { jsonrpc: '2.0', id: 1, method: 'tools/call', params }, { headers, timeoutMs: 120000 });
  assert.equal(r.status, 200, r.text);
  const m = r.messages.find((x) => x.id === 1);
  assert.ok(m && m.result, `${name}: ${r.text}`);
  return m.result;
}

const info = async (sid, opts) => (await call(sid, 'sandbox_info', {}, opts)).structuredContent;

test('Agentbox-Thread-Id shares one sandbox across sessions; it outlives the sessions', { timeout: 180000 }, async () => {
  const thread = `conv-${process.pid}-${Date.now()}`;
  const h = { headers: { 'Agentbox-Thread-Id': thread } };
  const a = await openSession(server.url);
  const b = await openSession(server.url);
  const w = await call(a.sid, 'write', { path: 'notes.txt', content: 'written by session a\n' }, h);
  assert.ok(!w.isError, JSON.stringify(w));
  const ia = await info(a.sid, h);
  const ib = await info(b.sid, h);
  assert.equal(ia.thread_id, thread);
  assert.equal(ib.sandbox_id, ia.sandbox_id);
  const rd = await call(b.sid, 'read', { path: 'notes.txt' }, h);
  assert.match(rd.content[0].text, /written by session a/);
  // The session ends; the sandbox stays (its lifetime is the thread's, with TTLs).
  assert.equal((await request(server.url, { method: 'DELETE', headers: { 'Mcp-Session-Id': a.sid } })).status, 200);
  const c = await openSession(server.url);
  assert.match((await call(c.sid, 'read', { path: 'notes.txt' }, h)).content[0].text, /written by session a/);
  const d = await call(c.sid, 'sandbox_delete', {}, h);
  assert.ok(!d.isError, JSON.stringify(d));
});

test('_meta agentbox/thread_id beats the header; no header means a per-session key', { timeout: 180000 }, async () => {
  const s1 = await openSession(server.url);
  const s2 = await openSession(server.url);
  const own1 = await info(s1.sid);
  const own2 = await info(s2.sid);
  assert.match(own1.thread_id, /^http-[0-9a-f]{24}$/);
  assert.ok(!own1.thread_id.includes(s1.sid.slice(0, 24)), 'the key does not reveal the session id');
  assert.notEqual(own1.thread_id, own2.thread_id);
  assert.notEqual(own1.sandbox_id, own2.sandbox_id);
  const m = await info(s1.sid, { headers: { 'Agentbox-Thread-Id': 'from-header' }, meta: { 'agentbox/thread_id': 'from-meta' } });
  assert.equal(m.thread_id, 'from-meta');
  for (const [sid, opts] of [[s1.sid, {}], [s2.sid, {}], [s1.sid, { meta: { 'agentbox/thread_id': 'from-meta' } }]]) {
    await call(sid, 'sandbox_delete', {}, opts);
  }
});
