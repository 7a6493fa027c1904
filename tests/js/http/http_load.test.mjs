// 1,000 concurrent sessions, each with a slow tool call in flight (blocked on the client),
// must still answer ping on every session, serve new sessions, and deliver every result to
// the right session once the client answers. Asserts correctness only, within generous
// deadlines; the latency figures go to bench/ (bench/http_sessions.mjs).
// AGENTBOX_LOAD_SESSIONS overrides the count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHttpServer } from './lib/server.mjs';
import { runLoad } from './lib/load.mjs';

test('1,000 sessions with slow calls in flight still answer ping', { timeout: 300000 }, async () => {
  const n = Number(process.env.AGENTBOX_LOAD_SESSIONS || 1000);
  const server = await startHttpServer({ args: ['--set', 'http.shutdown_grace=5s'] });
  try {
    const r = await runLoad(server.url, { sessions: n, log: (m) => console.log(`# ${m}`) });
    assert.equal(r.sessions, n);
    assert.equal(r.timings.pingConcurrent.n, n);
    console.log(`# timings (informational): ${JSON.stringify(r.timings)}`);
    assert.doesNotMatch(server.stderr(), /^\S+ (error|warn) +http\./m, 'no transport errors or warnings in the log');
  } finally {
    const e = await server.stop(30000);
    assert.equal(e.code, 0, server.stderr().slice(-2000));
  }
});
