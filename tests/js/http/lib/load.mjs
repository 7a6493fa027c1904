// N concurrent sessions, each with a slow call in flight (the test_elicitation fixture
// blocks until the client answers), then pings on every session while the calls wait.
// Shared by tests/js/http_load.test.mjs (correctness) and bench/http_sessions.mjs (figures).
import { openStream, openSession, post, ACCEPT_BOTH } from './http.mjs';

async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function summarize(ms) {
  const s = [...ms].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s[s.length - 1] };
}

// Returns {sessions, timings, check}; throws on any protocol error.
// atPeak (optional) is awaited while every call is still in flight, after the pings.
export async function runLoad(url, { sessions = 1000, concurrency = 64, log = () => {}, atPeak } = {}) {
  const t0 = performance.now();
  const ids = Array.from({ length: sessions }, (_, i) => i);
  const opened = await pool(ids, concurrency, async () => openSession(url, { capabilities: { elicitation: {} } }));
  const tOpen = performance.now() - t0;
  log(`opened ${sessions} sessions in ${tOpen.toFixed(0)} ms`);

  // One slow call per session, each on its own SSE connection, blocked on the client.
  const t1 = performance.now();
  const calls = await pool(ids, concurrency, async (i) => {
    const s = await openStream(url, { method: 'POST', timeoutMs: 60000,
      headers: { Accept: ACCEPT_BOTH, 'Mcp-Session-Id': opened[i].sid },
      body: { jsonrpc: '2.0', id: 1000 + i, method: 'tools/call',
        params: { name: 'test_elicitation', arguments: { message: `who is ${i}?` } } } });
    if (s.status !== 200) throw new Error(`session ${i}: tools/call HTTP ${s.status}`);
    const m = await s.nextMessage(60000);
    if (!m || m.message.method !== 'elicitation/create' || m.message.params.message !== `who is ${i}?`) {
      throw new Error(`session ${i}: expected its elicitation/create, got ${JSON.stringify(m && m.message)}`);
    }
    return { stream: s, elicitId: m.message.id };
  });
  const tCalls = performance.now() - t1;
  log(`${sessions} calls in flight after ${tCalls.toFixed(0)} ms`);

  // Pings while every call is in flight: all sessions concurrently, then one by one.
  const pingOne = async (i, id) => {
    const a = performance.now();
    const r = await post(url, opened[i].sid, { jsonrpc: '2.0', id, method: 'ping' }, { timeoutMs: 30000 });
    const ms = performance.now() - a;
    if (r.status !== 200 || r.messages.length !== 1 || r.messages[0].id !== id || !r.messages[0].result) {
      throw new Error(`session ${i}: bad ping answer: HTTP ${r.status} ${r.text}`);
    }
    return ms;
  };
  const tp = performance.now();
  const concurrentPing = await pool(ids, 128, (i) => pingOne(i, 5000 + i));
  const tPingAll = performance.now() - tp;
  const serialPing = [];
  for (let k = 0; k < Math.min(200, sessions); k++) serialPing.push(await pingOne((k * 7) % sessions, 9000 + k));
  log(`pinged ${sessions} sessions concurrently in ${tPingAll.toFixed(0)} ms`);

  // A fresh session still gets served while all of that is going on.
  const fresh = await openSession(url);
  const tf = performance.now();
  const quick = await post(url, fresh.sid, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'test_simple_text', arguments: {} } });
  const freshCallMs = performance.now() - tf;
  if (quick.messages[0]?.result?.content?.[0]?.text !== 'This is a simple text response for testing.') {
    throw new Error(`fresh session call failed: ${quick.text}`);
  }

  const peak = atPeak ? await atPeak() : undefined;

  // Answer every elicitation; each session must get its own answer back.
  const ta = performance.now();
  await pool(ids, concurrency, async (i) => {
    const r = await post(url, opened[i].sid, { jsonrpc: '2.0', id: calls[i].elicitId,
      result: { action: 'accept', content: { username: `user-${i}`, email: `u${i}@example.com` } } });
    if (r.status !== 202) throw new Error(`session ${i}: answer HTTP ${r.status}`);
    const m = await calls[i].stream.nextMessage(30000);
    const text = m?.message?.result?.content?.[0]?.text;
    if (m?.message?.id !== 1000 + i || !text?.includes(`"username":"user-${i}"`)) {
      throw new Error(`session ${i}: wrong result ${JSON.stringify(m && m.message)}`);
    }
    if (await calls[i].stream.next(10000) !== null) throw new Error(`session ${i}: stream did not end after the result`);
  });
  const tAnswer = performance.now() - ta;
  await pool(ids, concurrency, async (i) => {
    const { request } = await import('./http.mjs');
    const r = await request(url, { method: 'DELETE', headers: { 'Mcp-Session-Id': opened[i].sid } });
    if (r.status !== 200) throw new Error(`session ${i}: DELETE HTTP ${r.status}`);
  });
  return {
    sessions,
    peak,
    timings: {
      openMs: tOpen, callsInFlightMs: tCalls, pingAllConcurrentMs: tPingAll, answerAllMs: tAnswer,
      freshCallMs, pingConcurrent: summarize(concurrentPing), pingSerial: summarize(serialPing),
    },
  };
}
