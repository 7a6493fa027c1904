// Raw HTTP tests of the Streamable HTTP transport: every row of the status table in
// docs/reference/mcp.md 13.8, DNS-rebinding protection (Origin/Host), bearer auth, sessions,
// protocol-version headers, batches, response modes and the health endpoints.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHttpServer } from './lib/server.mjs';
import { request, openStream, openSession, post, initializeMessage, ACCEPT_BOTH } from './lib/http.mjs';

let server;
let url;
before(async () => {
  server = await startHttpServer({ args: ['--set', 'http.allowed_origins=https://app.example.com',
    '--set', 'http.allowed_hosts=mcp.example.com:8443,alias.example'] });
  url = server.url;
});
after(async () => {
  const e = await server.stop();
  assert.equal(e.code, 0, `server exit after SIGTERM:\n${server.stderr()}`);
});

const PING = { jsonrpc: '2.0', id: 1, method: 'ping' };

function assertRpcError(r, status, code) {
  assert.equal(r.status, status, `HTTP status (body ${r.text})`);
  assert.match(r.headers['content-type'], /^application\/json/);
  assert.equal(r.json.jsonrpc, '2.0');
  assert.equal(r.json.id, null);
  assert.equal(r.json.error.code, code, `error code (body ${r.text})`);
  assert.ok(r.json.error.message.length > 0);
}

test('Origin: a foreign Origin is 403 (even on initialize); loopback and listed origins pass', async () => {
  for (const origin of ['http://evil.example.com', 'null', 'http://localhost.evil.com', 'file://', 'https://app.example.com.evil.com']) {
    const r = await request(url, { headers: { Accept: ACCEPT_BOTH, Origin: origin }, body: initializeMessage() });
    assertRpcError(r, 403, -32000);
  }
  for (const origin of ['http://localhost:3000', 'http://127.0.0.1', 'https://[::1]:8080', 'https://app.example.com']) {
    const r = await request(url, { headers: { Accept: ACCEPT_BOTH, Origin: origin }, body: initializeMessage() });
    assert.equal(r.status, 200, `${origin}: ${r.text}`);
    assert.equal(r.headers['access-control-allow-origin'], origin);
    assert.match(r.headers['access-control-expose-headers'], /Mcp-Session-Id/);
  }
});

test('Host: a foreign Host is 403 on a loopback listener; loopback names and listed hosts pass', async () => {
  for (const host of ['evil.example.com', 'evil.example.com:80', 'mcp.example.com:9999', '127.0.0.2', 'localhost:xyz']) {
    const r = await request(url, { headers: { Accept: ACCEPT_BOTH, Host: host }, body: initializeMessage() });
    assertRpcError(r, 403, -32000);
  }
  for (const host of ['localhost', `localhost:${server.port}`, '127.0.0.1:1', '[::1]:8080', 'mcp.example.com:8443', 'alias.example:1234']) {
    const r = await request(url, { headers: { Accept: ACCEPT_BOTH, Host: host }, body: initializeMessage() });
    assert.equal(r.status, 200, `${host}: ${r.text}`);
  }
});

test('health endpoints need no token and no session; unknown paths are 404', async () => {
  const h = await request(url.replace('/mcp', '/healthz'), { method: 'GET' });
  assert.equal(h.status, 200);
  assert.deepEqual(h.json, { status: 'ok' });
  const r = await request(url.replace('/mcp', '/readyz'), { method: 'GET' });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: 'ready' });
  const n = await request(url.replace('/mcp', '/nope'), { method: 'GET' });
  assert.equal(n.status, 404);
});

test('GET /metrics: Prometheus text with the HTTP session counts', async () => {
  await openSession(url);
  const m = await request(url.replace('/mcp', '/metrics'), { method: 'GET' });
  assert.equal(m.status, 200);
  assert.match(m.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  assert.match(m.text, /^agentbox_build_info\{/m);
  assert.match(m.text, /^agentbox_http_sessions(_open)? [1-9]/m);
});

test('405 with Allow for methods the endpoint does not serve; OPTIONS answers CORS preflight', async () => {
  for (const method of ['PUT', 'PATCH']) {
    const r = await request(url, { method, headers: { Accept: ACCEPT_BOTH }, body: PING });
    assertRpcError(r, 405, -32000);
    assert.match(r.headers.allow, /GET, POST, DELETE/);
  }
  const o = await request(url, { method: 'OPTIONS', headers: { Origin: 'http://localhost:6274',
    'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type, mcp-session-id' } });
  assert.equal(o.status, 204);
  assert.equal(o.headers['access-control-allow-origin'], 'http://localhost:6274');
  assert.match(o.headers['access-control-allow-headers'], /Mcp-Session-Id/);
  assert.match(o.headers['access-control-allow-methods'], /POST/);
  const bad = await request(url, { method: 'OPTIONS', headers: { Origin: 'http://evil.example.com' } });
  assert.equal(bad.status, 403);
});

test('415 unless Content-Type is application/json; 406 for an Accept without JSON or SSE', async () => {
  const t = await request(url, { headers: { Accept: ACCEPT_BOTH, 'Content-Type': 'text/plain' }, body: JSON.stringify(initializeMessage()) });
  assertRpcError(t, 415, -32000);
  const ok = await request(url, { headers: { Accept: ACCEPT_BOTH, 'Content-Type': 'application/json; charset=utf-8' }, body: initializeMessage() });
  assert.equal(ok.status, 200);
  const a = await request(url, { headers: { Accept: 'text/html' }, body: initializeMessage() });
  assertRpcError(a, 406, -32000);
  // Lenient Accept (mcp.md 13.2): absent, one of the two, or a wildcard are all fine.
  for (const accept of [undefined, 'application/json', 'text/event-stream', '*/*']) {
    const r = await request(url, { headers: accept ? { Accept: accept } : {}, body: initializeMessage() });
    assert.equal(r.status, 200, `Accept ${accept}`);
  }
});

test('413 for bodies over http.max_body_bytes, declared or streamed', async () => {
  const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(17 * 1024 * 1024) } });
  // chunked: refused after reading past the limit
  const r = await request(url, { headers: { Accept: ACCEPT_BOTH }, body: big, timeoutMs: 30000 });
  assertRpcError(r, 413, -32000);
  // declared: refused on the headers, before the body is sent
  const d = await request(url, { headers: { Accept: ACCEPT_BOTH, 'Content-Length': String(Buffer.byteLength(big)) },
    body: big, timeoutMs: 30000 }).catch((e) => e);
  if (d instanceof Error) {
    assert.match(d.message, /EPIPE|ECONNRESET|socket hang up/); // the server answered and closed first
  } else {
    assertRpcError(d, 413, -32000);
  }
  // the server is fine afterwards
  const ok = await request(url, { headers: { Accept: ACCEPT_BOTH }, body: initializeMessage() });
  assert.equal(ok.status, 200);
});

test('400 for invalid JSON (-32700) and for JSON that is not JSON-RPC (-32600)', async () => {
  const { sid } = await openSession(url);
  const p = await post(url, sid, '{"jsonrpc":"2.0","id":1,');
  assertRpcError(p, 400, -32700);
  const p2 = await request(url, { headers: { Accept: ACCEPT_BOTH }, body: 'not json' });
  assertRpcError(p2, 400, -32700);
  const q = await post(url, sid, { hello: 'world' });
  assert.equal(q.status, 400);
  assert.equal(q.json.error.code, -32600);
  const q2 = await post(url, sid, { jsonrpc: '1.0', id: 5, method: 'ping' });
  assert.equal(q2.status, 400);
  assert.equal(q2.json.error.code, -32600);
});

test('sessions: 400 without Mcp-Session-Id, 404 for unknown ids, ids are 32 hex chars', async () => {
  const r = await request(url, { headers: { Accept: ACCEPT_BOTH }, body: PING });
  assertRpcError(r, 400, -32000);
  assert.match(r.json.error.message, /Mcp-Session-Id/);
  for (const sid of ['0123456789abcdef0123456789abcdef', 'nonsense', 'A'.repeat(32)]) {
    const u = await post(url, sid, PING);
    assertRpcError(u, 404, -32001);
  }
  const s = await openSession(url);
  assert.match(s.sid, /^[0-9a-f]{32}$/);
  const t = await openSession(url);
  assert.notEqual(s.sid, t.sid);
  const g = await request(url, { method: 'GET', headers: { Accept: 'text/event-stream' } });
  assertRpcError(g, 400, -32000);
  const d = await request(url, { method: 'DELETE' });
  assertRpcError(d, 400, -32000);
});

test('notifications and responses get 202 with no body; requests get 200', async () => {
  const { sid } = await openSession(url);
  const n = await post(url, sid, { jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
  assert.equal(n.status, 202);
  assert.equal(n.text, '');
  const resp = await post(url, sid, { jsonrpc: '2.0', id: 'not-ours', result: {} });
  assert.equal(resp.status, 202);
  assert.equal(resp.text, '');
  const c = await post(url, sid, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 99 } });
  assert.equal(c.status, 202);
  const p = await post(url, sid, PING);
  assert.equal(p.status, 200);
  assert.deepEqual(p.messages, [{ jsonrpc: '2.0', id: 1, result: {} }]);
});

test('MCP-Protocol-Version: unsupported values are 400, supported ones pass, initialize is exempt', async () => {
  const { sid } = await openSession(url);
  const bad = await post(url, sid, PING, { headers: { 'MCP-Protocol-Version': '1999-01-01' } });
  assertRpcError(bad, 400, -32000);
  assert.match(bad.json.error.message, /1999-01-01.*2025-11-25/);
  for (const v of ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05']) {
    const ok = await post(url, sid, PING, { headers: { 'MCP-Protocol-Version': v } });
    assert.equal(ok.status, 200, v);
  }
  const g = await request(url, { method: 'GET', headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': 'x' } });
  assertRpcError(g, 400, -32000);
  const i = await request(url, { headers: { Accept: ACCEPT_BOTH, 'MCP-Protocol-Version': 'garbage' }, body: initializeMessage() });
  assert.equal(i.status, 200);
});

test('response modes: SSE by default, application/json when the client accepts only JSON', async () => {
  const { sid } = await openSession(url);
  const s = await post(url, sid, PING);
  assert.match(s.headers['content-type'], /^text\/event-stream/);
  assert.equal(s.headers['mcp-session-id'], sid);
  const j = await post(url, sid, PING, { headers: { Accept: 'application/json' } });
  assert.match(j.headers['content-type'], /^application\/json/);
  assert.deepEqual(j.json, { jsonrpc: '2.0', id: 1, result: {} });
  // JSON mode for a slow call waits for the result.
  const t = await post(url, sid, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'test_tool_with_progress', arguments: {}, _meta: { progressToken: 1 } } },
    { headers: { Accept: 'application/json' } });
  assert.equal(t.json.id, 2);
  assert.equal(t.json.result.content[0].text, 'Tool with progress executed successfully');
});

test('priming events: sent (id, retry, empty data) to 2025-11-25 sessions only', async () => {
  const n = await openSession(url, { version: '2025-11-25' });
  const r = await post(url, n.sid, PING);
  assert.equal(r.events[0].data, '');
  assert.ok(r.events[0].id);
  assert.equal(r.events[0].retry, '1000');
  assert.ok(r.events[1].id && r.events[1].event === 'message');
  for (const version of ['2025-06-18', '2025-03-26']) {
    const o = await openSession(url, { version });
    assert.equal(o.version, version);
    const r2 = await post(url, o.sid, PING);
    assert.equal(r2.events.length, 1, `${version}: ${r2.text}`);
    assert.ok(r2.events[0].data, 'the first event carries the response');
  }
  // An unknown version in initialize is answered with our latest.
  const u = await openSession(url, { version: '1999-01-01' });
  assert.equal(u.version, '2025-11-25');
});

test('batches: only on 2025-03-26 sessions; others get 400 -32600', async () => {
  const batch = [{ jsonrpc: '2.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', method: 'notifications/roots/list_changed' },
    { jsonrpc: '2.0', id: 2, method: 'tools/list' }];
  const n = await openSession(url, { version: '2025-06-18' });
  const r = await post(url, n.sid, batch);
  assertRpcError(r, 400, -32600);
  const o = await openSession(url, { version: '2025-03-26' });
  const ok = await post(url, o.sid, batch);
  assert.equal(ok.status, 200);
  const arr = ok.messages[0];
  assert.ok(Array.isArray(arr), ok.text);
  assert.deepEqual(arr.map((m) => m.id).sort(), [1, 2]);
  const j = await post(url, o.sid, batch, { headers: { Accept: 'application/json' } });
  assert.ok(Array.isArray(j.json) && j.json.length === 2, j.text);
  const onlyNotes = await post(url, o.sid, [{ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }]);
  assert.equal(onlyNotes.status, 202);
  const empty = await post(url, o.sid, []);
  assertRpcError(empty, 400, -32600);
  const init = await request(url, { headers: { Accept: ACCEPT_BOTH }, body: [initializeMessage()] });
  assertRpcError(init, 400, -32600);
  // An invalid element of an allowed batch is answered in the array.
  const mixed = await post(url, o.sid, [{ jsonrpc: '2.0', id: 7, method: 'ping' }, { bogus: true }], { headers: { Accept: 'application/json' } });
  assert.equal(mixed.status, 200);
  assert.equal(mixed.json.length, 2);
  assert.ok(mixed.json.some((m) => m.error && m.error.code === -32600));
});

test('GET: 406 without text/event-stream; one standalone stream per session (409)', async () => {
  const { sid } = await openSession(url);
  const a = await request(url, { method: 'GET', headers: { Accept: 'application/json', 'Mcp-Session-Id': sid } });
  assertRpcError(a, 406, -32000);
  const s1 = await openStream(url, { headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sid } });
  assert.equal(s1.status, 200);
  assert.match(s1.headers['content-type'], /^text\/event-stream/);
  const prime = await s1.next();
  assert.equal(prime.data, '');
  const s2 = await request(url, { method: 'GET', headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sid } });
  assertRpcError(s2, 409, -32000);
  // Once the first stream's client is gone, a new GET takes over.
  s1.close();
  const deadline = Date.now() + 5000;
  let s3;
  for (;;) {
    s3 = await openStream(url, { headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sid } });
    if (s3.status === 200 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(s3.status, 200);
  s3.close();
});

test('DELETE: 200, then the session is gone (404) for every method', async () => {
  const { sid } = await openSession(url);
  const d = await request(url, { method: 'DELETE', headers: { 'Mcp-Session-Id': sid } });
  assert.equal(d.status, 200);
  assertRpcError(await post(url, sid, PING), 404, -32001);
  assertRpcError(await request(url, { method: 'GET', headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sid } }), 404, -32001);
  assertRpcError(await request(url, { method: 'DELETE', headers: { 'Mcp-Session-Id': sid } }), 404, -32001);
});

test('DELETE cancels the session\'s in-flight calls and ends their streams', async () => {
  const { sid } = await openSession(url, { capabilities: { elicitation: {} } });
  const call = await openStream(url, { method: 'POST', headers: { Accept: ACCEPT_BOTH, 'Mcp-Session-Id': sid },
    body: { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'test_elicitation', arguments: { message: 'x' } } } });
  const { message } = await call.nextMessage();
  assert.equal(message.method, 'elicitation/create');
  const d = await request(url, { method: 'DELETE', headers: { 'Mcp-Session-Id': sid } });
  assert.equal(d.status, 200);
  const rest = await call.rest(10000);
  assert.ok(!rest.some((e) => e.data && JSON.parse(e.data).id === 5 && JSON.parse(e.data).result), 'no result after DELETE');
  assert.ok(call.ended);
});

test('Agentbox-Thread-Id must be visible ASCII', async () => {
  const { sid } = await openSession(url);
  const ok = await post(url, sid, PING, { headers: { 'Agentbox-Thread-Id': 'conversation-42' } });
  assert.equal(ok.status, 200);
  const bad = await post(url, sid, PING, { headers: { 'Agentbox-Thread-Id': 'x'.repeat(300) } });
  assertRpcError(bad, 400, -32000);
});

test('auth: 401 + WWW-Authenticate without a valid bearer token; sessions are bound to their principal', async () => {
  const alice = 'alice-token-0123456789abcdef';
  const bob = 'bob-token-0123456789abcdef00';
  const sec = await startHttpServer({ args: ['--set', `auth.tokens=${alice}:alice,${bob}:bob`] });
  try {
    const none = await request(sec.url, { headers: { Accept: ACCEPT_BOTH }, body: initializeMessage() });
    assertRpcError(none, 401, -32000);
    assert.match(none.headers['www-authenticate'], /^Bearer /);
    assert.doesNotMatch(none.headers['www-authenticate'], /invalid_token/);
    for (const auth of [`Bearer ${alice}x`, `Basic ${Buffer.from('a:b').toString('base64')}`, `Bearer ${alice.slice(0, -1)}`, 'Bearer']) {
      const bad = await request(sec.url, { headers: { Accept: ACCEPT_BOTH, Authorization: auth }, body: initializeMessage() });
      assertRpcError(bad, 401, -32000);
      assert.match(bad.headers['www-authenticate'], /^Bearer /);
    }
    const wrong = await request(sec.url, { headers: { Accept: ACCEPT_BOTH, Authorization: 'Bearer not-a-token-at-all-0000' }, body: initializeMessage() });
    assert.match(wrong.headers['www-authenticate'], /error="invalid_token"/);
    const h = await request(sec.url.replace('/mcp', '/healthz'), { method: 'GET' });
    assert.equal(h.status, 200);
    const m = await request(sec.url.replace('/mcp', '/metrics'), { method: 'GET' });
    assert.equal(m.status, 401, 'metrics need the token');
    const m2 = await request(sec.url.replace('/mcp', '/metrics'), { method: 'GET', headers: { Authorization: `Bearer ${alice}` } });
    assert.equal(m2.status, 200);
    const s = await openSession(sec.url, { headers: { Authorization: `Bearer ${alice}` } });
    const mine = await post(sec.url, s.sid, PING, { headers: { Authorization: `bearer ${alice}` } });
    assert.equal(mine.status, 200);
    const theirs = await post(sec.url, s.sid, PING, { headers: { Authorization: `Bearer ${bob}` } });
    assertRpcError(theirs, 404, -32001);
    const del = await request(sec.url, { method: 'DELETE', headers: { 'Mcp-Session-Id': s.sid, Authorization: `Bearer ${bob}` } });
    assert.equal(del.status, 404);
    const noauth = await post(sec.url, s.sid, PING);
    assert.equal(noauth.status, 401);
    assert.ok(!sec.stderr().includes(alice) && !sec.stderr().includes(bob), 'tokens never appear in the log');
  } finally {
    assert.equal((await sec.stop()).code, 0);
  }
});

test('a non-loopback listener needs a token (or http.allow_insecure_bind)', async () => {
  await assert.rejects(startHttpServer({ args: ['--http', '0.0.0.0:0'] }), /refusing to listen/);
});

test('JSON mode: a server->client request waits for the standalone GET stream, then the call answers', async () => {
  const js = await startHttpServer({ args: ['--set', 'http.json_response=true', '--set', 'http.shutdown_grace=2s'] });
  try {
    const { sid } = await openSession(js.url, { capabilities: { elicitation: {} } });
    const call = post(js.url, sid, { jsonrpc: '2.0', id: 3, method: 'tools/call',
      params: { name: 'test_elicitation', arguments: { message: 'late GET' } } }, { timeoutMs: 30000 });
    await new Promise((r) => setTimeout(r, 200)); // the request is queued before any GET is open
    const g = await openStream(js.url, { headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sid } });
    const { message } = await g.nextMessage();
    assert.equal(message.method, 'elicitation/create');
    assert.equal(message.params.message, 'late GET');
    const a = await post(js.url, sid, { jsonrpc: '2.0', id: message.id, result: { action: 'decline' } });
    assert.equal(a.status, 202);
    const r = await call;
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.equal(r.json.id, 3);
    assert.match(r.json.result.content[0].text, /action=decline/);
    g.close();
  } finally {
    assert.equal((await js.stop()).code, 0);
  }
});
