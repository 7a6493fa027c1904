// SSE resumption (transports.mdx "Resumability and Redelivery") over raw HTTP: Last-Event-ID
// replays exactly what followed on the same stream, continues it live, refuses ids from
// other sessions; plus keep-alive comments and session expiry/eviction.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHttpServer, sleep, waitFor } from './lib/server.mjs';
import { request, openStream, openSession, post, ACCEPT_BOTH } from './lib/http.mjs';

let server;
let url;
before(async () => {
  server = await startHttpServer({ args: ['--set', 'http.sse_keepalive=1s', '--set', 'http.shutdown_grace=2s'] });
  url = server.url;
});
after(async () => {
  const e = await server.stop();
  assert.equal(e.code, 0, `server exit after SIGTERM:\n${server.stderr()}`);
});

const ELICIT = (id, message = 'hello') => ({ jsonrpc: '2.0', id, method: 'tools/call',
  params: { name: 'test_elicitation', arguments: { message } } });
const ANSWER = (reqId, username = 'ada') => ({ jsonrpc: '2.0', id: reqId,
  result: { action: 'accept', content: { username, email: `${username}@example.com` } } });

function resume(sid, lastEventId) {
  return openStream(url, { headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sid, 'Last-Event-ID': lastEventId } });
}

async function startElicitation(sid, id) {
  const s = await openStream(url, { method: 'POST', headers: { Accept: ACCEPT_BOTH, 'Mcp-Session-Id': sid }, body: ELICIT(id) });
  assert.equal(s.status, 200);
  const priming = await s.next();
  assert.equal(priming.data, '');
  const { event, message } = await s.nextMessage();
  assert.equal(message.method, 'elicitation/create');
  return { s, priming, event, message };
}

test('a result produced while the client was away is replayed after its Last-Event-ID', async () => {
  const { sid } = await openSession(url, { capabilities: { elicitation: {} } });
  const { s, event, message } = await startElicitation(sid, 10);
  s.close(); // the client loses the connection mid-call
  const a = await post(url, sid, ANSWER(message.id));
  assert.equal(a.status, 202);
  await sleep(100); // the result is produced with no connection attached
  const r = await resume(sid, event.id);
  assert.equal(r.status, 200);
  const events = await r.rest();
  const msgs = events.filter((e) => e.data).map((e) => JSON.parse(e.data));
  assert.equal(msgs.length, 1, JSON.stringify(events));
  assert.equal(msgs[0].id, 10);
  assert.equal(msgs[0].result.content[0].text, 'User response: action=accept, content={"username":"ada","email":"ada@example.com"}');
  assert.ok(r.ended, 'the resumed stream ends after the response');
  // Replaying again from the priming event gives the whole stream once more, same ids.
  const again = await resume(sid, events[0].id.replace(/-\d+$/, (m) => `-${Number(m.slice(1)) - 2}`));
  const all = (await again.rest()).filter((e) => e.data);
  assert.deepEqual(all.map((e) => e.id), [event.id, events[0].id]);
});

test('resuming a live stream replays, then continues it on the new connection', async () => {
  const { sid } = await openSession(url, { capabilities: { elicitation: {} } });
  const { s, priming, message } = await startElicitation(sid, 11);
  s.close();
  const r = await resume(sid, priming.id);
  const replayed = await r.nextMessage();
  assert.equal(replayed.message.method, 'elicitation/create', 'the elicitation request is replayed');
  assert.equal(replayed.message.id, message.id);
  const a = await post(url, sid, ANSWER(message.id, 'bob'));
  assert.equal(a.status, 202);
  const live = await r.nextMessage();
  assert.equal(live.message.id, 11);
  assert.match(live.message.result.content[0].text, /"username":"bob"/);
  assert.equal(await r.next(), null, 'then the stream ends');
});

test('Last-Event-ID must name an event of this session; a connected stream cannot be taken over', async () => {
  const a = await openSession(url, { capabilities: { elicitation: {} } });
  const b = await openSession(url);
  const { s, event, message } = await startElicitation(a.sid, 12);
  // B presents A's event id: never replayed across sessions.
  const x = await request(url, { method: 'GET', headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': b.sid, 'Last-Event-ID': event.id } });
  assert.equal(x.status, 400);
  for (const bad of ['garbage', '', '00000000-1-1', `${event.id}0`, event.id.replace(/-\d+-/, '-999-')]) {
    const y = await request(url, { method: 'GET', headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': a.sid, 'Last-Event-ID': bad } });
    assert.ok(y.status === 400 || (bad === '' && y.status === 200), `Last-Event-ID "${bad}": ${y.status}`);
  }
  // The POST stream is still connected: 409.
  const c = await request(url, { method: 'GET', headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': a.sid, 'Last-Event-ID': event.id } });
  assert.equal(c.status, 409);
  await post(url, a.sid, ANSWER(message.id));
  const done = await s.nextMessage();
  assert.equal(done.message.id, 12);
  s.close();
});

test('event ids are unique across the streams of a session and increase', async () => {
  const { sid } = await openSession(url);
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const r = await post(url, sid, { jsonrpc: '2.0', id: 100 + i, method: 'tools/call',
      params: { name: 'test_tool_with_progress', arguments: {}, _meta: { progressToken: i } } });
    ids.push(...r.events.map((e) => e.id));
  }
  assert.equal(new Set(ids).size, ids.length);
  const seqs = ids.map((id) => Number(id.split('-').pop()));
  assert.deepEqual([...seqs].sort((x, y) => x - y), seqs);
  const streams = new Set(ids.map((id) => id.split('-')[1]));
  assert.equal(streams.size, 3, 'each POST is its own stream');
});

test('idle SSE streams get keep-alive comments', async () => {
  const { sid } = await openSession(url);
  const s = await openStream(url, { headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sid } });
  const prime = await s.next();
  assert.equal(prime.data, '');
  const ka = await s.next(5000);
  assert.equal(ka.comment, 'keepalive');
  s.close();
});

test('idle sessions expire (404), but not while a call runs or a stream is open', async () => {
  const srv = await startHttpServer({ args: ['--set', 'http.session_idle_timeout=1s', '--set', 'http.shutdown_grace=2s'] });
  try {
    const idle = await openSession(srv.url);
    const busy = await openSession(srv.url, { capabilities: { elicitation: {} } });
    const watching = await openSession(srv.url);
    const call = await openStream(srv.url, { method: 'POST', headers: { Accept: ACCEPT_BOTH, 'Mcp-Session-Id': busy.sid }, body: ELICIT(1) });
    const { message } = await call.nextMessage();
    const g = await openStream(srv.url, { headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': watching.sid } });
    // (Polling the idle session would keep it alive: watch the log instead.)
    await waitFor(() => /http\.session\.close .*reason=idle/.test(srv.stderr()), 10000, 'the idle session to expire');
    assert.equal((await post(srv.url, idle.sid, { jsonrpc: '2.0', id: 1, method: 'ping' })).status, 404);
    await sleep(1500);
    // still alive: answering completes the call
    assert.equal((await post(srv.url, busy.sid, ANSWER(message.id))).status, 202);
    const done = await call.nextMessage();
    assert.equal(done.message.id, 1);
    assert.equal((await post(srv.url, watching.sid, { jsonrpc: '2.0', id: 2, method: 'ping' })).status, 200);
    g.close();
    call.close();
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});

test('http.max_sessions: the least recently used quiet session is evicted; busy ones are kept', async () => {
  const srv = await startHttpServer({ args: ['--set', 'http.max_sessions=2', '--set', 'http.shutdown_grace=2s'] });
  try {
    const a = await openSession(srv.url, { capabilities: { elicitation: {} } });
    const b = await openSession(srv.url);
    const call = await openStream(srv.url, { method: 'POST', headers: { Accept: ACCEPT_BOTH, 'Mcp-Session-Id': a.sid }, body: ELICIT(1) });
    const { message } = await call.nextMessage();
    const c = await openSession(srv.url, { capabilities: { elicitation: {} } }); // evicts b (a is busy)
    assert.equal((await post(srv.url, b.sid, { jsonrpc: '2.0', id: 1, method: 'ping' })).status, 404);
    assert.equal((await post(srv.url, c.sid, { jsonrpc: '2.0', id: 1, method: 'ping' })).status, 200);
    // a and c both busy: no room
    const call2 = await openStream(srv.url, { method: 'POST', headers: { Accept: ACCEPT_BOTH, 'Mcp-Session-Id': c.sid }, body: ELICIT(2) });
    const m2 = await call2.nextMessage();
    const d = await request(srv.url, { headers: { Accept: ACCEPT_BOTH }, body: { jsonrpc: '2.0', id: 0, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '0' } } } });
    assert.equal(d.status, 503);
    assert.ok(d.headers['retry-after']);
    await post(srv.url, a.sid, ANSWER(message.id));
    await post(srv.url, c.sid, ANSWER(m2.message.id));
    await call.rest();
    await call2.rest();
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});
