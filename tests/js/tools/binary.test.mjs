// Binary safety through the SDK client, on the local provider and on the agent-sandbox
// provider (emulated cluster): files with NUL bytes, invalid UTF-8 and 10 MiB of random
// bytes, and paths with spaces, quotes, newlines, shell syntax and non-ASCII characters,
// round-trip through write/read/upload/download/ls/glob/grep without corruption, and no
// name is ever interpreted by a shell (files named like command substitutions must not run).
// Every byte is checked twice: by the tools, and independently by the sandbox's own shell
// (sha256sum / od through execute).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startCluster, startServer, textOf } from './lib/server.mjs';

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

// Names that break naive quoting: spaces, both quotes, newline, CR, tab, backslash, shell
// syntax, a leading dash, glob characters, non-ASCII (NFC and NFD), an emoji, U+FFFD's cousin.
const NAMES = [
  'with space.txt',
  "it's \"quoted\".txt",
  'new\nline.txt',
  'car\rriage.txt',
  'tab\there.txt',
  'back\\slash.txt',
  '$(touch INJECTED_1).txt',
  '`touch INJECTED_2`.txt',
  '; touch INJECTED_3 #.txt',
  '-rf.txt',
  '*?[a].txt',
  'ünïcödé ñ.txt',
  'e\u0301 decomposed.txt',
  'emoji 😀.txt',
  '%22 percent%0A.txt',
];

// Paths in a sandbox: the names above as files, and once as a directory name.
const PATHS = [...NAMES.map((n) => `/workspace/names/${n}`), `/workspace/names/dir ${"'"}"\n/inner.txt`];

function suite(provider, clusterArgs) {
  describe(`binary safety on ${provider}`, () => {
    let cluster = null;
    let srv = null;
    const meta = { thread: 'binary' };
    const ok = (r, what) => { if (r.isError) assert.fail(`${what}: ${textOf(r)}`); return r; };
    // sha256 of a file as the sandbox's shell sees it (the path passed in the environment).
    const shellSha = async (p) => {
      const r = ok(await srv.call('execute', { command: 'sha256sum < "$P" | cut -c1-64', env: { P: p } }, meta), 'sha256sum');
      return r.structuredContent.output.trim();
    };
    before(async () => {
      if (provider === 'agent-sandbox') cluster = await startCluster({ args: clusterArgs });
      srv = await startServer({ provider, cluster });
    });
    after(async () => {
      await srv?.stop();
      await cluster?.stop();
    });

    test('NUL bytes and invalid UTF-8 survive upload and download, byte for byte', async () => {
      const files = {
        '/workspace/bin/nul.dat': Buffer.from([0, 1, 2, 0, 0, 255, 0]),
        '/workspace/bin/invalid.txt': Buffer.from([0x61, 0xff, 0xfe, 0x62, 0xc3, 0x28, 0x0a, 0xed, 0xa0, 0x80]),
        '/workspace/bin/all-bytes.bin': Buffer.from([...Array(256).keys()]),
        '/workspace/bin/empty': Buffer.alloc(0),
        '/workspace/bin/crlf.txt': Buffer.from('a\r\nb\rc\n'),
      };
      const up = ok(await srv.call('upload', { files: Object.entries(files).map(([path, b]) => ({ path, content_base64: b.toString('base64') })) }, meta), 'upload');
      assert.deepEqual(up.structuredContent.files.map((f) => f.error ?? null), Object.keys(files).map(() => null));
      for (const [p, b] of Object.entries(files)) assert.equal(await shellSha(p), sha(b), `${p} in the sandbox`);
      const down = ok(await srv.call('download', { paths: Object.keys(files) }, meta), 'download');
      const blocks = down.content.filter((c) => c.type === 'resource');
      assert.equal(blocks.length, Object.keys(files).length);
      for (const [i, [p, b]] of Object.entries(files).entries()) {
        const res = blocks[i].resource;
        const got = res.blob !== undefined ? Buffer.from(res.blob, 'base64') : Buffer.from(res.text, 'utf8');
        assert.ok(Buffer.compare(got, b) === 0, `${p} downloaded as ${got.toString('hex')}`);
        assert.equal(down.structuredContent.files[i].size, b.length);
      }
    });

    test('write keeps NUL characters; read shows invalid UTF-8 as U+FFFD and binary as a blob', async () => {
      ok(await srv.call('write', { path: '/workspace/bin/nul-text.txt', content: 'a\u0000b\nline 2\n' }, meta), 'write');
      assert.equal(await shellSha('/workspace/bin/nul-text.txt'), sha(Buffer.from('a\u0000b\nline 2\n')));
      // NUL is valid UTF-8: a .txt with one is text, and the character comes back as it is.
      const r = ok(await srv.call('read', { path: '/workspace/bin/nul-text.txt' }, meta), 'read');
      assert.equal(textOf(r), '1  a\u0000b\n2  line 2');
      // Bytes that are not UTF-8 at the start of a .dat: a resource blob with the exact bytes.
      const rb = ok(await srv.call('read', { path: '/workspace/bin/nul.dat' }, meta), 'read');
      const blob = rb.content.find((c) => c.type === 'resource')?.resource?.blob;
      assert.ok(blob, JSON.stringify(rb.content).slice(0, 300));
      assert.equal(Buffer.from(blob, 'base64').toString('hex'), '00010200 00ff00'.replace(' ', ''));
      // Invalid UTF-8 past the first 8 KiB (the binary probe) is shown as U+FFFD; the bytes on
      // disk stay as they were.
      const mixed = Buffer.concat([Buffer.from('x'.repeat(9000) + '\nok line\nbad '), Buffer.from([0xff, 0xfe]), Buffer.from(' here\n')]);
      ok(await srv.call('upload', { files: [{ path: '/workspace/bin/mixed.txt', content_base64: mixed.toString('base64') }] }, meta), 'upload');
      const rr = ok(await srv.call('read', { path: '/workspace/bin/mixed.txt', offset: 1, limit: 2 }, meta), 'read');
      assert.ok(textOf(rr).startsWith('2  ok line\n3  bad \ufffd\ufffd here'), textOf(rr));
      assert.equal(await shellSha('/workspace/bin/mixed.txt'), sha(mixed));
    });

    test('a 10 MiB file round-trips through upload, download, write and read', async () => {
      const big = crypto.randomBytes(10 * 1024 * 1024);
      const up = ok(await srv.call('upload', { files: [{ path: '/workspace/big/random.bin', content_base64: big.toString('base64') }] }, meta), 'upload');
      assert.equal(up.structuredContent.files[0].size ?? big.length, big.length);
      assert.equal(await shellSha('/workspace/big/random.bin'), sha(big));
      const down = ok(await srv.call('download', { paths: ['/workspace/big/random.bin'] }, meta), 'download');
      const got = Buffer.from(down.content.find((c) => c.type === 'resource').resource.blob, 'base64');
      assert.equal(got.length, big.length);
      assert.equal(sha(got), sha(big), 'downloaded bytes');
      // 10 MiB of text lines through write, then read pages at both ends.
      const lines = Array.from({ length: 160000 }, (_, i) => `line ${i} ${'é'.repeat(30)}`);
      const text = lines.join('\n') + '\n';
      assert.ok(Buffer.byteLength(text) > 10 * 1024 * 1024);
      ok(await srv.call('write', { path: '/workspace/big/lines.txt', content: text }, meta), 'write');
      assert.equal(await shellSha('/workspace/big/lines.txt'), sha(Buffer.from(text)));
      const head = ok(await srv.call('read', { path: '/workspace/big/lines.txt', limit: 2 }, meta), 'read');
      assert.ok(textOf(head).startsWith(`1  ${lines[0]}\n2  ${lines[1]}\n\n[Read 2 lines`), textOf(head).slice(0, 200));
      const tail = ok(await srv.call('read', { path: '/workspace/big/lines.txt', offset: 159998, limit: 5 }, meta), 'read');
      assert.equal(textOf(tail), `159999  ${lines[159998]}\n160000  ${lines[159999]}`);
      const g = ok(await srv.call('grep', { pattern: 'line 159999 ', path: '/workspace/big', output_mode: 'content' }, meta), 'grep');
      assert.equal(textOf(g), `/workspace/big/lines.txt:\n  160000: ${lines[159999]}`);
    });

    test('awkward names round-trip through every file tool and never reach a shell', async () => {
      for (const [i, p] of PATHS.entries()) {
        const content = `content ${i} of ${JSON.stringify(p)}\n`;
        const w = ok(await srv.call('write', { path: p, content }, meta), `write ${JSON.stringify(p)}`);
        assert.equal(textOf(w), `Updated file ${p}`);
        const r = ok(await srv.call('read', { path: p }, meta), `read ${JSON.stringify(p)}`);
        assert.equal(textOf(r), `1  ${content.slice(0, -1)}`, `read ${JSON.stringify(p)}`);
        assert.equal(await shellSha(p), sha(Buffer.from(content)), `shell sees ${JSON.stringify(p)}`);
        const e = ok(await srv.call('edit', { path: p, old_string: `content ${i}`, new_string: `edited ${i}` }, meta), `edit ${JSON.stringify(p)}`);
        assert.match(textOf(e), /^Successfully replaced 1 instance/);
      }
      // upload / download with binary content under the same names (a second copy: .bin).
      const uploads = PATHS.map((p, i) => ({ path: `${p}.bin`, content_base64: Buffer.from([i, 0, 255, 10, 13]).toString('base64') }));
      const up = ok(await srv.call('upload', { files: uploads }, meta), 'upload');
      assert.deepEqual(up.structuredContent.files.map((f) => [f.path, f.error ?? null]), uploads.map((u) => [u.path, null]));
      const down = ok(await srv.call('download', { paths: uploads.map((u) => u.path) }, meta), 'download');
      const blobs = down.content.filter((c) => c.type === 'resource').map((c) => c.resource.blob);
      assert.deepEqual(blobs, uploads.map((u) => u.content_base64));

      // ls: every name, exactly (the structured entries carry the raw names).
      const ls = ok(await srv.call('ls', { path: '/workspace/names' }, meta), 'ls');
      const want = [...new Set([...NAMES, ...NAMES.map((n) => `${n}.bin`), `dir '"\n`])].map((n) => `/workspace/names/${n}`).sort();
      const gotLs = ls.structuredContent.entries.map((e) => e.path).sort();
      assert.deepEqual(gotLs, want);
      // glob from the top finds them all, by their exact paths.
      const gl = ok(await srv.call('glob', { pattern: '**/*.txt', path: '/workspace/names' }, meta), 'glob');
      assert.deepEqual([...gl.structuredContent.paths].sort(), PATHS.slice().sort());
      // grep: each file's own line, with its exact path.
      const gr = ok(await srv.call('grep', { pattern: 'edited ', path: '/workspace/names', output_mode: 'content' }, meta), 'grep');
      const byPath = new Map(gr.structuredContent.matches.map((m) => [m.path, m.text]));
      for (const [i, p] of PATHS.entries()) assert.equal(byPath.get(p), `edited ${i} of ${JSON.stringify(p)}`, `grep ${JSON.stringify(p)}`);
      assert.equal(byPath.size, PATHS.length);

      // Nothing was executed: no file named INJECTED_* anywhere in the sandbox, on any mount
      // (the legitimate names only contain the word; none starts with it).
      const inj = ok(await srv.call('execute', { command: 'find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -name "INJECTED_*" -print 2>/dev/null; true' }, meta), 'find');
      assert.equal(inj.structuredContent.output, '', 'a file name was run by a shell');
    });

    test('paths that try to leave the workspace or smuggle a NUL are refused', async () => {
      const r1 = await srv.call('read', { path: '/workspace/../etc/passwd' }, meta);
      assert.equal(r1.isError, true);
      const r2 = await srv.call('write', { path: '/workspace/a\u0000b', content: 'x' }, meta);
      assert.equal(r2.isError, true, textOf(r2));
      const r3 = await srv.call('upload', { files: [{ path: '/workspace/x\u0000y', content: 'x' }] }, meta);
      assert.equal(r3.structuredContent.files[0].error, 'invalid_path');
      const ls = ok(await srv.call('execute', { command: 'ls /workspace' }, meta), 'ls');
      assert.ok(!/^a$|^x$/m.test(ls.structuredContent.output), 'a NUL truncated a name instead of refusing it');
    });
  });
}

suite('local');
suite('agent-sandbox', ['--isolated-pods']);
