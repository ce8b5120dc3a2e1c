// The tar writer: what it writes, the system's GNU tar reads back (names, modes, owners,
// times, contents, links, long and non-ASCII names); the same entries always give the
// same bytes; bad entries are refused before anything is written.
import { lstatSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { type TarEntry, TarEntryError, tarChunks } from '../src/tar.ts';
import { runOk, tempDir } from './helpers.ts';

const text = (s: string): Buffer => Buffer.from(s, 'utf8');
const LONG_DIR = `deep/${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(60)}`;
// More than 155 + 100 bytes with no split that fits ustar: needs a pax header.
const VERY_LONG = `${'x'.repeat(120)}/${'y'.repeat(150)}.txt`;

const ENTRIES: TarEntry[] = [
  { type: 'directory', path: '/app' },
  { type: 'file', path: '/app/main.mjs', data: text('console.log("hi")\n') },
  { type: 'file', path: '/app/run', data: [text('#!/bin/sh\n'), text('exit 0\n')], mode: 0o755 },
  { type: 'directory', path: '/tmp', mode: 0o1777 },
  { type: 'directory', path: '/home' },
  { type: 'directory', path: '/home/nonroot', mode: 0o700, uid: 65532, gid: 65532 },
  { type: 'file', path: '/home/nonroot/owned', data: text('mine'), uid: 65532, gid: 65532, mode: 0o600 },
  { type: 'symlink', path: '/app/link', target: 'main.mjs' },
  { type: 'file', path: '/app/empty', data: new Uint8Array(0) },
  { type: 'directory', path: 'deep' },
  { type: 'directory', path: `deep/${'d'.repeat(60)}` },
  { type: 'directory', path: `deep/${'d'.repeat(60)}/${'e'.repeat(60)}` },
  { type: 'directory', path: LONG_DIR },
  { type: 'file', path: `${LONG_DIR}/${'g'.repeat(90)}.txt`, data: text('split into prefix and name') },
  { type: 'directory', path: 'x'.repeat(120) },
  { type: 'file', path: VERY_LONG, data: Buffer.alloc(70_000, 0x61) },
  { type: 'file', path: 'grüße.txt', data: text('non-ASCII name') },
  { type: 'symlink', path: 'far', target: `/${'t'.repeat(150)}` },
];

function archive(entries: readonly TarEntry[], options?: { mtime?: number }): Buffer {
  return Buffer.concat(tarChunks(entries, options));
}

t.test('GNU tar lists and extracts what the writer wrote', async (t) => {
  const dir = tempDir(t);
  const tarPath = join(dir, 'a.tar');
  writeFileSync(tarPath, archive(ENTRIES));
  const env = { ...process.env, TZ: 'UTC', LC_ALL: 'C.UTF-8' };
  const listing = (await runOk('tar', ['--numeric-owner', '-tvf', tarPath], { env })).trim().split('\n');
  const byName = new Map(listing.map((l) => [l.split(/\s+/).slice(5).join(' ').replace(/ -> .*$/, ''), l]));
  t.equal(listing.length, ENTRIES.length, 'one member per entry, no extra headers listed');
  t.match(byName.get('app/'), /^drwxr-xr-x 0\/0 +0 1970-01-01 00:00 app\/$/, 'a directory: 0755, root, mtime 0');
  t.match(byName.get('app/run'), /^-rwxr-xr-x 0\/0 +17 1970-01-01 00:00 app\/run$/, 'an executable file made of two buffers');
  t.match(byName.get('app/main.mjs'), /^-rw-r--r-- 0\/0 +18 /, 'a file defaults to 0644');
  t.match(byName.get('tmp/'), /^drwxrwxrwt /, '/tmp keeps its sticky bit');
  t.match(byName.get('home/nonroot/'), /^drwx------ 65532\/65532 /, 'numeric owner 65532');
  t.match(byName.get('app/link'), /^lrwxrwxrwx 0\/0 +0 1970-01-01 00:00 app\/link -> main\.mjs$/, 'a symbolic link');
  t.ok(byName.has(VERY_LONG), 'a 270-byte path, through a pax header');
  t.ok(byName.has(`${LONG_DIR}/${'g'.repeat(90)}.txt`), 'a long path split into prefix and name');
  t.ok(byName.has('grüße.txt'), 'a non-ASCII name, through a pax header');
  t.same(
    listing.map((l) => l.split(/\s+/).slice(5).join(' ').replace(/ -> .*$/, '')),
    [...byName.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    'members are in byte order of their names',
  );

  const out = join(dir, 'out');
  await runOk('mkdir', [out]);
  await runOk('tar', ['--numeric-owner', '-xpf', tarPath, '-C', out], { env });
  t.equal(readFileSync(join(out, 'app/run'), 'utf8'), '#!/bin/sh\nexit 0\n');
  t.equal(statSync(join(out, 'app/run')).mode & 0o7777, 0o755);
  t.equal(statSync(join(out, 'tmp')).mode & 0o7777, 0o1777);
  const owned = statSync(join(out, 'home/nonroot/owned'));
  t.same([owned.uid, owned.gid, owned.mode & 0o777], [65532, 65532, 0o600], 'owner and mode survive extraction (we run as root)');
  t.equal(statSync(join(out, 'app/main.mjs')).mtimeMs, 0, 'mtime 0');
  t.equal(readlinkSync(join(out, 'app/link')), 'main.mjs');
  t.ok(lstatSync(join(out, 'far')).isSymbolicLink());
  t.equal(readlinkSync(join(out, 'far')), `/${'t'.repeat(150)}`, 'a 151-byte link target, through a pax header');
  t.same(readFileSync(join(out, VERY_LONG)), Buffer.alloc(70_000, 0x61), 'contents of a file spanning many blocks');
  t.equal(readFileSync(join(out, 'grüße.txt'), 'utf8'), 'non-ASCII name');
  t.equal(statSync(join(out, 'app/empty')).size, 0);
});

t.test('the same entries give the same bytes, in any order; a change changes them', async (t) => {
  const a = archive(ENTRIES);
  t.ok(a.equals(archive(ENTRIES)), 'two writes are byte-identical');
  t.ok(a.equals(archive([...ENTRIES].reverse())), 'input order does not matter (entries are sorted)');
  t.equal(a.length % 512, 0, 'whole blocks');
  t.ok(a.subarray(a.length - 1024).equals(Buffer.alloc(1024)), 'ends with two zero blocks');
  t.notOk(a.equals(archive(ENTRIES, { mtime: 1 })), 'the mtime is written');
  const changed = ENTRIES.map((e) => (e.path === '/app/main.mjs' ? { ...e, data: text('console.log("ho")\n') } : e));
  t.notOk(a.equals(archive(changed)), 'a changed byte of content changes the archive');
  t.equal(archive([]).length, 1024, 'an empty archive is the two end blocks');
  t.ok(a.subarray(265, 329).equals(Buffer.alloc(64)), 'no user or group names in the header (uname, gname empty)');
});

t.test('bad entries are refused', async (t) => {
  const bad: [TarEntry[], RegExp][] = [
    [[{ type: 'file', path: 'a', data: text('1') }, { type: 'file', path: '/a', data: text('2') }], /"\/a": appears twice/],
    [[{ type: 'directory', path: 'd' }, { type: 'file', path: 'd', data: text('') }], /appears twice/],
    [[{ type: 'file', path: 'a/../b', data: text('') }], /contains "\." or "\.\." components/],
    [[{ type: 'file', path: '/', data: text('') }], /empty path/],
    [[{ type: 'file', path: 'a', data: text(''), uid: -1 }], /uid -1 out of range/],
    [[{ type: 'file', path: 'a', data: text(''), mode: 0o10000 }], /mode 10000 out of range/],
    [[{ type: 'symlink', path: 'l', target: '' }], /symlink without a target/],
  ];
  for (const [entries, message] of bad) t.throws(() => tarChunks(entries), message);
  t.throws(() => tarChunks(ENTRIES, { mtime: -1 }), RangeError);
  t.throws(() => tarChunks([{ type: 'file', path: 'a', data: text(''), gid: 0o10000000 }]), TarEntryError);
});
