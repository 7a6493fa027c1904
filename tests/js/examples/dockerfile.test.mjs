// The Dockerfile agrees with the build it packages. There is no container engine on the test
// machine, so this checks what a build would otherwise find out late: the runtime stage
// installs the Debian package of every shared library the binaries link, the build stage
// every development package the build needs, every file it copies exists (and is not
// ignored), the image runs as a non-root user, its health check uses `agentbox health` on the
// port it serves, the paths it names are where `cmake --install` puts things for its prefix,
// and `agentbox health` itself answers as a HEALTHCHECK needs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { bin, src, run, startHttp } from './lib.mjs';

const text = fs.readFileSync(path.join(src, 'Dockerfile'), 'utf8');
// Instructions with continuation lines joined and comments dropped.
const instructions = text.replace(/\\\n/g, ' ').split('\n')
  .map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  .map((l) => { const i = l.indexOf(' '); return { op: l.slice(0, i).toUpperCase(), arg: l.slice(i + 1).trim() }; });
const stages = [];
for (const ins of instructions) {
  if (ins.op === 'FROM') stages.push({ from: ins.arg, ins: [] });
  else stages.at(-1).ins.push(ins);
}
const [buildStage, runtime] = [stages[0], stages.at(-1)];
const aptPackages = (stage) => stage.ins.filter((i) => i.op === 'RUN')
  .flatMap((i) => [...i.arg.matchAll(/apt-get install ((?:-\S+\s+)*)([^&]+)/g)])
  .flatMap((m) => m[2].trim().split(/\s+/));
const one = (stage, op) => {
  const found = stage.ins.filter((i) => i.op === op);
  assert.equal(found.length, 1, `one ${op} in the stage from ${stage.from}`);
  return found[0].arg;
};
const prefix = /-DCMAKE_INSTALL_PREFIX=(\S+)/.exec(text)?.[1] ?? '/usr/local';
const etc = prefix === '/usr' ? '/etc' : `${prefix}/etc`;

test('two stages: a Debian build, a slim Debian runtime', () => {
  assert.equal(stages.length, 2);
  assert.match(buildStage.from, /^debian:bookworm AS build$/);
  assert.match(runtime.from, /^debian:bookworm-slim$/);
});

test('the build stage installs what scripts/deps.sh installs for a build', () => {
  const deps = fs.readFileSync(path.join(src, 'scripts', 'deps.sh'), 'utf8');
  const want = /want=\(([^)]*)\)/.exec(deps)[1].split(/\s+/).filter(Boolean);
  const have = new Set(aptPackages(buildStage));
  for (const p of want) {
    const covered = have.has(p) || (['make', 'gcc'].includes(p) && have.has('build-essential'));
    assert.ok(covered, `the build stage does not install ${p}`);
  }
});

test('every file the build stage copies exists and is not excluded by .dockerignore', () => {
  const ignore = fs.readFileSync(path.join(src, '.dockerignore'), 'utf8').split('\n')
    .map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const ins of buildStage.ins.filter((i) => i.op === 'COPY')) {
    const parts = ins.arg.split(/\s+/);
    for (const s of parts.slice(0, -1)) {
      assert.ok(fs.existsSync(path.join(src, s)), `COPY ${s}: not in the repository`);
      for (const pat of ignore) {
        const re = new RegExp(`^${pat.replace(/\*\*\//g, '(.*/)?').replace(/\*/g, '[^/]*')}(/|$)`);
        assert.ok(!re.test(s), `COPY ${s} is excluded by .dockerignore (${pat})`);
      }
    }
  }
  // and everything the top-level CMakeLists.txt needs to configure is copied
  const copied = buildStage.ins.filter((i) => i.op === 'COPY').flatMap((i) => i.arg.split(/\s+/).slice(0, -1));
  for (const need of ['CMakeLists.txt', 'src', 'schemas', 'config', 'scripts', 'agentbox.1']) {
    assert.ok(copied.includes(need), `the build stage does not copy ${need}`);
  }
});

// Direct dependencies (DT_NEEDED) of a binary, each with the Debian package that ships it.
function neededPackages(file) {
  const needed = [...run('readelf', ['-d', file]).stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const paths = Object.fromEntries([...run('ldd', [file]).stdout.matchAll(/^\s*(\S+) => (\S+)/gm)].map((m) => [m[1], m[2]]));
  return needed.map((lib) => {
    assert.ok(paths[lib], `ldd does not resolve ${lib} of ${file}`);
    const real = fs.realpathSync(paths[lib]);
    const owner = run('dpkg', ['-S', real]);
    const pkg = owner.status === 0 ? owner.stdout.split(':')[0] : run('dpkg', ['-S', paths[lib]]).stdout.split(':')[0];
    assert.ok(pkg, `no Debian package ships ${real}`);
    return { lib, pkg };
  });
}

test('the runtime stage installs the package of every library the binaries link', () => {
  const have = new Set(aptPackages(runtime));
  for (const b of [bin, path.join(path.dirname(bin), 'agentbox-runtime')]) {
    for (const { lib, pkg } of neededPackages(b)) {
      if (pkg === 'libc6') continue; // in every Debian image
      if (/^lib(asan|ubsan|lsan|tsan)\.so/.test(lib)) continue; // a sanitizer build's runtime: the image is a release build
      assert.ok(have.has(pkg), `${path.basename(b)} needs ${lib} from ${pkg}, which the runtime stage does not install`);
    }
  }
  assert.ok(have.has('python3'), 'execute_python needs python3 in the image');
});

test('the image runs as a non-root user it creates', () => {
  const user = one(runtime, 'USER');
  assert.doesNotMatch(user, /^(root|0)(:|$)/);
  assert.ok(runtime.ins.some((i) => i.op === 'RUN' && new RegExp(`useradd .*\\b${user}$`).test(i.arg)), `USER ${user} is not created`);
});

test('HEALTHCHECK runs `agentbox health` on the port the server listens on', () => {
  const hc = one(runtime, 'HEALTHCHECK');
  const cmd = JSON.parse(/CMD (\[.*\])$/.exec(hc)[1]);
  assert.deepEqual(cmd.slice(0, 2), ['agentbox', 'health']);
  const url = new URL(cmd[2]);
  assert.equal(url.pathname, '/healthz');
  const serve = JSON.parse(one(runtime, 'CMD'));
  const listen = serve[serve.indexOf('--http') + 1];
  assert.equal(listen.split(':').at(-1), url.port);
  assert.ok(one(runtime, 'EXPOSE').split(/\s+/).includes(url.port));
});

test('the paths the image names are where the install puts them for its prefix', () => {
  const serve = JSON.parse(one(runtime, 'CMD'));
  assert.equal(serve[serve.indexOf('--config') + 1], `${etc}/agentbox/agentbox.yaml`);
  const strip = /strip (.+)$/m.exec(text)[1].trim().split(/\s+/);
  assert.deepEqual(strip, [`/out${prefix}/bin/agentbox`, `/out${prefix}/bin/agentbox-runtime`]);
  const entry = JSON.parse(one(runtime, 'ENTRYPOINT'));
  assert.deepEqual(entry, ['/usr/bin/tini', '--', 'agentbox']);
  assert.ok(aptPackages(runtime).includes('tini'));
  assert.ok(`${prefix}/bin`.startsWith('/usr/local') || `${prefix}/bin` === '/usr/bin', 'binaries on the default PATH');
  // the SandboxTemplate example runs agentbox-runtime from this image
  const tmpl = fs.readFileSync(path.join(src, 'examples', 'k8s', 'sandbox-template.yaml'), 'utf8');
  const command = /command: \["([^"]+)"/.exec(tmpl)[1];
  assert.equal(command, `${prefix}/bin/agentbox-runtime`);
});

test('agentbox health: 0 for a healthy server, 1 when nothing answers, 2 for a bad URL', async () => {
  const srv = await startHttp();
  try {
    const ok = run(bin, ['health', `${srv.base}/healthz`]);
    assert.equal(ok.status, 0, ok.stderr);
  } finally {
    await srv.stop();
  }
  // a port nobody listens on: bind one, close it, ask it
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  const down = run(bin, ['health', `http://127.0.0.1:${port}/healthz`]);
  assert.equal(down.status, 1);
  assert.match(down.stderr, /cannot connect/);
  assert.equal(run(bin, ['health', 'https://127.0.0.1/healthz']).status, 2);
});
