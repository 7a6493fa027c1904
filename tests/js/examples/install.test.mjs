// `make install DESTDIR=...` puts the binaries, the man page, the default configuration and
// the schemas where README.md says, and what it installed works: the binary runs, loads the
// installed configuration, and the page renders.
//
// It installs from the build directory ctest runs in (the directory of $AGENTBOX_BIN) with
// that directory's install prefix, so `make`'s configure step changes nothing there. A
// sanitizer build is installed with `cmake --install` directly, which is what the make
// target runs after configuring: re-configuring it as the Makefile's release build would
// rebuild everything.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { bin, src, run, tmpDir } from './lib.mjs';

const build = path.dirname(bin);
const cache = fs.readFileSync(path.join(build, 'CMakeCache.txt'), 'utf8');
const cached = (key) => (new RegExp(`^${key}:[A-Z]+=(.*)$`, 'm').exec(cache) || [])[1];
const prefix = cached('CMAKE_INSTALL_PREFIX') || '/usr/local';
const sanitized = cached('AGENTBOX_SANITIZE') === 'ON';

test(`make install DESTDIR=... PREFIX=${prefix}`, { timeout: 600000 }, () => {
  const dest = tmpDir('ab-install-');
  const r = sanitized
    ? run('cmake', ['--install', build, '--prefix', prefix], { env: { ...process.env, DESTDIR: dest } })
    : run('make', ['-C', src, 'install', `DESTDIR=${dest}`, `BUILD=${build}`, `PREFIX=${prefix}`, 'JOBS=2'],
      { timeout: 600000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);

  const root = path.join(dest, prefix);
  // GNUInstallDirs: /usr and /usr/local keep etc under the prefix except /usr -> /etc.
  const etc = prefix === '/usr' ? path.join(dest, 'etc') : path.join(root, 'etc');
  const want = {
    'bin/agentbox': path.join(root, 'bin', 'agentbox'),
    'bin/agentbox-runtime': path.join(root, 'bin', 'agentbox-runtime'),
    'man page': path.join(root, 'share', 'man', 'man1', 'agentbox.1'),
    'default configuration': path.join(etc, 'agentbox', 'agentbox.yaml'),
    'schemas': path.join(root, 'share', 'agentbox', 'schemas', 'tools', 'execute.json'),
  };
  for (const [what, file] of Object.entries(want)) assert.ok(fs.existsSync(file), `${what}: ${file} is missing`);
  // ... which is where README.md's install table says: each row's `PREFIX/...` exists and
  // holds (or is) one of the files above.
  const readme = fs.readFileSync(path.join(src, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('`make install` installs'));
  const rows = [...table.matchAll(/^\| (.+?) \| `PREFIX\/([^`]+)`/gm)].map((m) => [m[1], m[2]]);
  assert.equal(rows.length, 4, 'README.md: the install table has one row per installed kind');
  for (const [what, rel] of rows) {
    const where = rel.startsWith('etc/') ? path.join(etc, rel.slice(4)) : path.join(root, rel);
    assert.ok(fs.existsSync(where), `README.md says ${what} go to PREFIX/${rel}: ${where} is missing`);
    const found = Object.values(want).some((f) => f === where || f.startsWith(where.replace(/\/?$/, '/')));
    assert.ok(found, `README.md's PREFIX/${rel} (${what}) holds none of the installed files`);
  }
  for (const b of ['agentbox', 'agentbox-runtime']) {
    const mode = fs.statSync(path.join(root, 'bin', b)).mode;
    assert.ok(mode & 0o111, `${b} is not executable`);
  }

  // Every schema of the source tree, byte for byte.
  const schemas = fs.readdirSync(path.join(src, 'schemas', 'tools'));
  assert.ok(schemas.length >= 14);
  for (const s of schemas) {
    assert.deepEqual(fs.readFileSync(path.join(root, 'share', 'agentbox', 'schemas', 'tools', s)),
      fs.readFileSync(path.join(src, 'schemas', 'tools', s)), s);
  }
  assert.deepEqual(fs.readFileSync(want['man page']), fs.readFileSync(path.join(src, 'agentbox.1')));

  // The installed binary works and accepts the installed configuration.
  const installed = want['bin/agentbox'];
  assert.equal(run(installed, ['--version']).stdout, run(bin, ['--version']).stdout);
  const cfg = run(installed, ['config', '--config', want['default configuration']]);
  assert.equal(cfg.status, 0, cfg.stderr);
  assert.match(cfg.stdout, /^sandbox\.provider: "local"$/m);
  const man = run('groff', ['-man', '-ww', '-z', want['man page']]);
  assert.equal(man.status, 0, man.stderr);
});
