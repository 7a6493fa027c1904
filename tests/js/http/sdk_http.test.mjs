// The official TypeScript SDK client over Streamable HTTP: the common checks, plus session
// deletion (and the 404 after it), SSE resumption with Last-Event-ID, JSON response mode
// and bearer tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { startHttpServer, waitFor, withTimeout } from './lib/server.mjs';
import { post } from './lib/http.mjs';
import { sdkSuite } from './lib/sdk_suite.mjs';

let server;
before(async () => { server = await startHttpServer(); });
after(async () => {
  const e = await server.stop();
  assert.equal(e.code, 0, `server exit after SIGTERM:\n${server.stderr()}`);
});

// A fetch that records what the transport sends (to prove resumption really happened).
function recordingFetch(log) {
  return async (url, init = {}) => {
    const headers = new Headers(init.headers);
    log.push({ method: init.method ?? 'GET', lastEventId: headers.get('last-event-id'), sid: headers.get('mcp-session-id') });
    return fetch(url, init);
  };
}

async function connect(capabilities = {}, { url = server.url, requestInit, fetchLog, srv = server } = {}) {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit, fetch: fetchLog ? recordingFetch(fetchLog) : undefined,
  });
  const client = new Client({ name: 'agentbox-e2e', version: '1.0.0' }, { capabilities });
  await client.connect(transport);
  return { client, transport, log: () => srv.stderr(), close: () => client.close() };
}

sdkSuite('http', connect);

test('http: the session id is a 128-bit hex token and the version header follows negotiation', async () => {
  const c = await connect();
  try {
    assert.match(c.transport.sessionId, /^[0-9a-f]{32}$/);
    assert.equal(c.transport.protocolVersion, '2025-11-25');
  } finally {
    await c.close();
  }
});

test('http: DELETE ends the session; its id then gets 404', async () => {
  const c = await connect();
  const sid = c.transport.sessionId;
  await c.client.ping();
  await c.transport.terminateSession();
  assert.equal(c.transport.sessionId, undefined);
  const r = await post(server.url, sid, { jsonrpc: '2.0', id: 1, method: 'ping' });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, -32001);
  await c.close();
  // A client that gets 404 starts over; a new session works.
  const d = await connect();
  await d.client.ping();
  assert.notEqual(d.transport.sessionId, sid);
  await d.close();
});

test('http: a call whose stream the server closes mid-call completes through Last-Event-ID', async () => {
  const fetchLog = [];
  const c = await connect({}, { fetchLog });
  try {
    const r = await withTimeout(c.client.callTool({ name: 'test_reconnection', arguments: {} }), 20000,
      'test_reconnection did not complete');
    assert.equal(r.content[0].text, 'Reconnection test completed successfully');
    const resumed = fetchLog.filter((f) => f.method === 'GET' && f.lastEventId);
    assert.ok(resumed.length >= 1, `the SDK resumed with Last-Event-ID: ${JSON.stringify(fetchLog)}`);
  } finally {
    await c.close();
  }
});

test('http: resumeStream replays what followed an event id on its stream', async () => {
  const c = await connect();
  try {
    const tokens = [];
    const progress = [];
    const result = await c.client.request(
      { method: 'tools/call', params: { name: 'test_tool_with_progress', arguments: {}, _meta: { progressToken: 77 } } },
      (await import('@modelcontextprotocol/sdk/types.js')).CallToolResultSchema,
      { onresumptiontoken: (t) => tokens.push(t), onprogress: (p) => progress.push(p) });
    assert.equal(result.content[0].text, 'Tool with progress executed successfully');
    // priming event, 3 progress notifications, the result
    assert.equal(tokens.length, 5, `event ids: ${tokens}`);
    // A second client on the same session resumes after the first progress notification.
    const t2 = new StreamableHTTPClientTransport(new URL(server.url), { sessionId: c.transport.sessionId });
    t2.setProtocolVersion('2025-11-25');
    const got = [];
    t2.onmessage = (m) => got.push(m);
    await t2.start();
    await t2.resumeStream(tokens[1]);
    await waitFor(() => got.some((m) => m.result), 10000, 'the replayed result');
    assert.deepEqual(got.filter((m) => m.method === 'notifications/progress').map((m) => m.params.progress), [50, 100]);
    assert.equal(got.find((m) => m.result).result.content[0].text, 'Tool with progress executed successfully');
    await t2.close();
  } finally {
    await c.close();
  }
});

test('http: JSON response mode (http.json_response) serves the SDK client', async () => {
  const js = await startHttpServer({ args: ['--set', 'http.json_response=true'] });
  try {
    const c = await connect({ elicitation: {} }, { url: js.url, srv: js });
    const r = await c.client.callTool({ name: 'test_simple_text', arguments: {} });
    assert.equal(r.content[0].text, 'This is a simple text response for testing.');
    const p = await c.client.callTool({ name: 'test_tool_with_progress', arguments: {} });
    assert.equal(p.content[0].text, 'Tool with progress executed successfully');
    // A server->client request cannot ride a JSON response: it goes out on the standalone
    // GET stream that the SDK opened after initialize.
    c.client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { username: 'json', email: 'j@example.com' } }));
    const e = await c.client.callTool({ name: 'test_elicitation', arguments: { message: 'json mode' } });
    assert.match(e.content[0].text, /"username":"json"/);
    await c.close();
  } finally {
    assert.equal((await js.stop()).code, 0);
  }
});

test('http: bearer tokens are required when configured', async () => {
  const token = 'e2e-token-0123456789abcdef';
  const sec = await startHttpServer({ env: { AGENTBOX_TOKEN: token } });
  try {
    const c = await connect({}, { url: sec.url, srv: sec, requestInit: { headers: { Authorization: `Bearer ${token}` } } });
    const r = await c.client.callTool({ name: 'test_simple_text', arguments: {} });
    assert.equal(r.content[0].text, 'This is a simple text response for testing.');
    await c.close();
    await assert.rejects(connect({}, { url: sec.url, srv: sec }), /401|Unauthorized/);
    await assert.rejects(connect({}, { url: sec.url, srv: sec, requestInit: { headers: { Authorization: 'Bearer wrong-token-000000000' } } }), /401|Unauthorized/);
    assert.ok(!sec.stderr().includes(token), 'the token never appears in the log');
  } finally {
    assert.equal((await sec.stop()).code, 0);
  }
});
