// GET /metrics: parsed by the official Prometheus Python client's text-format parser
// (Debian's python3-prometheus-client), named by Prometheus conventions, protected by the
// bearer token like the MCP endpoint, and moving as tool calls, sandboxes and HTTP sessions
// come and go.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { run, startHttp } from './lib.mjs';

// The parser turns the exposition text into [{name, type, help, samples: [{name, labels,
// value}]}]; it raises on anything that is not the text format.
const PARSE = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [{"name": s.name, "labels": s.labels,
                             "value": s.value if math.isfinite(s.value) else str(s.value)} for s in f.samples]})
print(json.dumps(out))
`;

function parse(text) {
  const r = run('/usr/bin/python3', ['-c', PARSE], { input: text });
  assert.equal(r.status, 0, `the Prometheus parser rejected /metrics:\n${r.stderr}\n${text}`);
  return JSON.parse(r.stdout);
}

async function scrape(srv, token) {
  const res = await fetch(`${srv.base}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const families = parse(await res.text());
  const value = (sample, labels = {}) => {
    const s = families.flatMap((f) => f.samples).find((x) => x.name === sample &&
      Object.entries(labels).every(([k, v]) => x.labels[k] === v));
    return s ? s.value : undefined;
  };
  return { families, value };
}

function checkConventions(families) {
  const seen = new Set();
  for (const f of families) {
    assert.match(f.name, /^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
    assert.ok(f.name.startsWith('agentbox_') || f.name.startsWith('process_'), `${f.name}: no agentbox_ prefix`);
    assert.ok(f.help && f.help.length > 10, `${f.name}: no # HELP`);
    assert.ok(['counter', 'gauge', 'histogram'].includes(f.type), `${f.name}: type ${f.type}`);
    for (const s of f.samples) {
      const key = `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
      assert.ok(!seen.has(key), `duplicate series ${key}`);
      seen.add(key);
      if (f.type === 'counter') assert.ok(s.name.endsWith('_total'), `counter sample ${s.name} without _total`);
    }
    if (f.type === 'histogram') {
      assert.match(f.name, /_seconds$/, `${f.name}: a histogram of time is in seconds`);
      // buckets cumulative and ending at +Inf == _count, per label set
      const byTool = new Map();
      for (const s of f.samples.filter((x) => x.name.endsWith('_bucket'))) {
        const k = s.labels.tool;
        if (!byTool.has(k)) byTool.set(k, []);
        byTool.get(k).push(s);
      }
      for (const [tool, buckets] of byTool) {
        for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, `${tool}: buckets not cumulative`);
        assert.equal(buckets.at(-1).labels.le, '+Inf');
        const count = f.samples.find((x) => x.name === `${f.name}_count` && x.labels.tool === tool);
        assert.equal(buckets.at(-1).value, count.value);
      }
    }
  }
}

async function connect(url, token) {
  const client = new Client({ name: 'metrics-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return { client, transport };
}

test('/metrics parses as Prometheus text, follows the naming conventions, and moves with the calls', { timeout: 120000 }, async () => {
  const token = 'metrics-test-token-0123456789abcdef';
  const srv = await startHttp({ env: { AGENTBOX_TOKEN: token }, args: ['--set', 'sandbox.pool.size=1'] });
  try {
    // The token protects /metrics as it does /mcp (the figures name tools and load).
    assert.equal((await fetch(`${srv.base}/metrics`)).status, 401);

    const before = await scrape(srv, token);
    checkConventions(before.families);
    const names = before.families.map((f) => f.name);
    for (const n of ['agentbox_tool_calls', 'agentbox_tool_call_duration_seconds', 'agentbox_sandboxes',
      'agentbox_sandbox_creates', 'agentbox_sandbox_create_failures', 'agentbox_sandboxes_reaped',
      'agentbox_pool_target', 'agentbox_pool_ready', 'agentbox_pool_acquisitions', 'agentbox_pool_hit_ratio',
      'agentbox_http_sessions', 'agentbox_http_sessions_created', 'agentbox_build_info']) {
      assert.ok(names.includes(n), `no metric family ${n}: ${names.join(', ')}`);
    }
    assert.equal(before.value('agentbox_pool_target', { provider: 'local' }), 1);
    assert.equal(before.value('agentbox_http_sessions'), 0);
    const created0 = before.value('agentbox_sandbox_creates_total', { provider: 'local' });

    const { client, transport } = await connect(srv.url, token);
    const ok1 = await client.callTool({ name: 'execute', arguments: { command: 'echo one' } });
    const ok2 = await client.callTool({ name: 'execute', arguments: { command: 'sleep 0.2; echo two' } });
    assert.ok(!ok1.isError && !ok2.isError);
    const missing = await client.callTool({ name: 'read', arguments: { path: 'no-such-file.txt' } });
    assert.equal(missing.isError, true);
    const bad = await client.callTool({ name: 'execute', arguments: { command: 42 } }).catch((e) => e);
    assert.ok(bad instanceof Error || bad.isError, 'an invalid argument is refused');

    const during = await scrape(srv, token);
    checkConventions(during.families);
    const v = during.value;
    assert.equal(v('agentbox_tool_calls_total', { tool: 'execute', result: 'ok' }), 2);
    assert.equal(v('agentbox_tool_calls_total', { tool: 'read', result: 'error' }), 1);
    assert.equal(v('agentbox_tool_calls_total', { tool: 'execute', result: 'invalid_arguments' }), 1);
    assert.equal(v('agentbox_tool_call_duration_seconds_count', { tool: 'execute' }), 3);
    assert.ok(v('agentbox_tool_call_duration_seconds_sum', { tool: 'execute' }) >= 0.2, 'the sleep is in the latency sum');
    assert.equal(v('agentbox_tool_call_duration_seconds_bucket', { tool: 'execute', le: '0.1' }) < 3, true);
    assert.equal(v('agentbox_sandboxes', { provider: 'local' }), 1);
    assert.equal(v('agentbox_sandbox_creates_total', { provider: 'local' }), created0 + 1);
    assert.equal(v('agentbox_pool_acquisitions_total', { provider: 'local', start: 'warm' }) +
      v('agentbox_pool_acquisitions_total', { provider: 'local', start: 'cold' }), 1);
    assert.equal(v('agentbox_http_sessions'), 1);
    assert.equal(v('agentbox_http_sessions_created_total'), before.value('agentbox_http_sessions_created_total') + 1);
    assert.equal(v('agentbox_tool_calls_in_flight'), 0);

    // Ending the session (DELETE) closes it; sandbox_delete removes the sandbox.
    const del = await client.callTool({ name: 'sandbox_delete', arguments: {} });
    assert.ok(!del.isError, JSON.stringify(del));
    await transport.terminateSession();
    await client.close();
    const after = await scrape(srv, token);
    assert.equal(after.value('agentbox_http_sessions'), 0);
    assert.equal(after.value('agentbox_sandboxes', { provider: 'local' }), 0);
    assert.equal(after.value('agentbox_sandboxes_deleted_total', { provider: 'local' }), 1);
    assert.equal(after.value('agentbox_tool_calls_total', { tool: 'sandbox_delete', result: 'ok' }), 1);
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});

test('/metrics counts the sandboxes the reaper deletes', { timeout: 120000 }, async () => {
  const token = 'metrics-test-token-0123456789abcdef';
  const srv = await startHttp({
    env: { AGENTBOX_TOKEN: token },
    args: ['--set', 'sandbox.pool.size=0', '--set', 'sandbox.idle_ttl=1s', '--set', 'sandbox.reap_interval=1s'],
  });
  try {
    const before = await scrape(srv, token);
    assert.equal(before.value('agentbox_sandboxes_reaped_total', { provider: 'local' }), 0);
    const { client, transport } = await connect(srv.url, token);
    const r = await client.callTool({ name: 'execute', arguments: { command: 'true' } });
    assert.ok(!r.isError, JSON.stringify(r));
    assert.equal((await scrape(srv, token)).value('agentbox_sandboxes', { provider: 'local' }), 1);
    // Idle for a second, then found by the reaper (it looks every second): bounded wait.
    let now;
    for (let i = 0; i < 100; i++) {
      now = await scrape(srv, token);
      if (now.value('agentbox_sandboxes_reaped_total', { provider: 'local' }) === 1) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(now.value('agentbox_sandboxes_reaped_total', { provider: 'local' }), 1);
    assert.equal(now.value('agentbox_sandboxes', { provider: 'local' }), 0);
    await transport.terminateSession();
    await client.close();
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});
