// The conformance suite's pending scenarios (json-schema-2020-12, server-sse-polling).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runConformance } from './run.mjs';

test('conformance: every scenario of the pending suite passes', { timeout: 280000 }, async () => {
  const r = await runConformance({ suite: 'pending' });
  assert.deepEqual(r.problems, []);
  assert.ok(r.scenarios >= 2, `only ${r.scenarios} scenarios ran`);
});
