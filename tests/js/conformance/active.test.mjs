// The conformance suite's active scenarios (30 in 0.1.16) against agentbox over HTTP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runConformance } from './run.mjs';

test('conformance: every scenario of the active suite passes', { timeout: 280000 }, async () => {
  const r = await runConformance({ suite: 'active' });
  assert.deepEqual(r.problems, []);
  assert.ok(r.scenarios >= 30, `only ${r.scenarios} scenarios ran`);
});
