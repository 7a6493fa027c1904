// examples/k8s/agentbox.yaml: the agentbox configuration its ConfigMap carries is one that
// agentbox accepts (every key known, every value valid), as is the router variant its
// comment describes; the Deployment runs the image's binary with that file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { bin, run, src, tmpDir } from './lib.mjs';

const manifest = fs.readFileSync(path.join(src, 'examples', 'k8s', 'agentbox.yaml'), 'utf8');

// The block scalar under `agentbox.yaml: |`, de-indented.
function embeddedConfig(text) {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => /^\s+agentbox\.yaml: \|\s*$/.test(l));
  assert.ok(at >= 0, 'no agentbox.yaml block in the ConfigMap');
  const body = [];
  for (const l of lines.slice(at + 1)) {
    if (l.trim() && !/^ {4}/.test(l)) break;
    body.push(l.slice(4));
  }
  return body.join('\n');
}

function check(config, name) {
  const dir = tmpDir('ab-k8s-example-');
  const file = path.join(dir, name);
  fs.writeFileSync(file, config);
  // The Deployment sets AGENTBOX_TOKEN from a Secret (a non-loopback listener needs one).
  const r = run(bin, ['config', '--config', file], { env: { ...process.env, AGENTBOX_TOKEN: 'mcp-token-0123456789abcdef' } });
  assert.equal(r.status, 0, `${name} is not a valid agentbox configuration:\n${r.stderr}\n${config}`);
  return r.stdout;
}

test('the ConfigMap carries a configuration agentbox accepts', () => {
  const out = check(embeddedConfig(manifest), 'in-cluster.yaml');
  assert.match(out, /^sandbox\.provider: "agent-sandbox"$/m);
  assert.match(out, /^k8s\.connection: "in-cluster"$/m);
});

test('the router variant in its comment is valid too', () => {
  const base = embeddedConfig(manifest);
  // Uncomment the `#   key: value` lines of the variant in place of `connection: in-cluster`.
  const variant = [...base.matchAll(/^(\s+)#   (\w+: \S+)/gm)].map((m) => `${m[1]}${m[2]}`);
  assert.equal(variant.length, 3, 'connection, router_url and router_token_file');
  const dir = tmpDir('ab-k8s-token-');
  const token = path.join(dir, 'token');
  fs.writeFileSync(token, 'router-token-0123456789abcdef\n', { mode: 0o600 });
  const config = base.replace(/^(\s+)connection: in-cluster$/m,
    variant.join('\n').replace('/var/run/secrets/router/token', token));
  const out = check(config, 'router.yaml');
  assert.match(out, /^k8s\.connection: "direct"$/m);
  assert.match(out, /^k8s\.router_url: "http:\/\/sandbox-router-svc\.agent-sandbox-system\.svc:8080"$/m);
  assert.ok(out.includes(`k8s.router_token_file: "${token}"`), out);
  assert.ok(!out.includes('router-token-0123456789abcdef'), 'agentbox config printed the token');
});

test('the Deployment serves with that file', () => {
  assert.match(manifest, /args: \["serve", "--http", "0\.0\.0\.0:8080", "--config", "\/etc\/agentbox\/agentbox\.yaml"\]/);
  assert.match(manifest, /mountPath: \/etc\/agentbox\b/);
});
