// The OCI image-layout writer on small inputs: the archive holds a valid layout (every
// blob named by its own sha256, the index pointing at the manifest with the containerd
// name and the platform, the config with the runtime settings), the same input gives the
// same bytes and digest, and any change of input changes the digest.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { type OciImageInput, MEDIA_TYPE_CONFIG, MEDIA_TYPE_INDEX, MEDIA_TYPE_LAYER, MEDIA_TYPE_MANIFEST, makeLayer, tagOf, writeOciImage } from '../src/oci.ts';
import { runOk, tempDir } from './helpers.ts';

const text = (s: string): Buffer => Buffer.from(s, 'utf8');

function input(overrides: { file?: string; label?: string; created?: string } = {}): OciImageInput {
  const base = makeLayer([{ type: 'file', path: '/bin/tool', data: text('#!/bin/true\n'), mode: 0o755 }], 'base');
  const app = makeLayer([{ type: 'directory', path: '/app' }, { type: 'file', path: '/app/main.mjs', data: text(overrides.file ?? 'console.log(1)\n') }], 'app');
  return {
    ref: 'purelb.local/sample:1.2.3',
    created: overrides.created ?? '2024-01-02T03:04:05Z',
    os: 'linux',
    architecture: 'amd64',
    config: {
      entrypoint: ['/bin/tool', '--flag'],
      user: '65532:65532',
      env: ['PATH=/bin'],
      workingDir: '/app',
      exposedPorts: ['7934/udp', '7473/tcp'],
      labels: { 'org.opencontainers.image.version': '1.2.3', 'org.opencontainers.image.source': overrides.label ?? 'https://example.invalid/src' },
    },
    layers: [base, app],
  };
}

const bytes = (i: OciImageInput): Buffer => Buffer.concat(writeOciImage(i).chunks);

t.test('the archive is an OCI image layout that names the image for containerd', async (t) => {
  const dir = tempDir(t);
  const image = writeOciImage(input());
  writeFileSync(join(dir, 'image.tar'), Buffer.concat(image.chunks));
  t.equal(Buffer.concat(image.chunks).length, image.size);
  const listing = (await runOk('tar', ['-tf', join(dir, 'image.tar')])).trim().split('\n');
  t.same(listing.slice(0, 2), ['blobs/', 'blobs/sha256/'], 'directories first (sorted)');
  t.ok(listing.includes('oci-layout') && listing.includes('index.json'));
  await runOk('tar', ['-xf', join(dir, 'image.tar'), '-C', dir]);
  t.same(JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });

  const blobs = readdirSync(join(dir, 'blobs', 'sha256'));
  t.equal(blobs.length, 4, 'config, manifest and two layers');
  for (const b of blobs) t.equal(createHash('sha256').update(readFileSync(join(dir, 'blobs', 'sha256', b))).digest('hex'), b, `blob ${b.slice(0, 12)} is named by its sha256`);
  const blob = (digest: string): Buffer => readFileSync(join(dir, 'blobs', 'sha256', digest.replace('sha256:', '')));

  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { schemaVersion: number; mediaType: string; manifests: { mediaType: string; digest: string; size: number; platform: unknown; annotations: Record<string, string> }[] };
  t.equal(index.schemaVersion, 2);
  t.equal(index.mediaType, MEDIA_TYPE_INDEX);
  t.equal(index.manifests.length, 1);
  const m = index.manifests[0]!;
  t.equal(m.mediaType, MEDIA_TYPE_MANIFEST);
  t.equal(m.digest, image.digest, 'the image digest is the manifest digest');
  t.equal(m.size, blob(m.digest).length);
  t.same(m.platform, { architecture: 'amd64', os: 'linux' }, 'platform on the descriptor (ctr import filters images without one)');
  t.same(m.annotations, { 'io.containerd.image.name': 'purelb.local/sample:1.2.3', 'org.opencontainers.image.ref.name': '1.2.3' });

  const manifest = JSON.parse(blob(m.digest).toString()) as { schemaVersion: number; mediaType: string; config: { mediaType: string; digest: string; size: number }; layers: { mediaType: string; digest: string; size: number }[] };
  t.equal(manifest.schemaVersion, 2);
  t.equal(manifest.config.mediaType, MEDIA_TYPE_CONFIG);
  t.equal(manifest.config.size, blob(manifest.config.digest).length);
  t.same(manifest.layers.map((l) => l.mediaType), [MEDIA_TYPE_LAYER, MEDIA_TYPE_LAYER], 'uncompressed layers');
  for (const l of manifest.layers) t.equal(l.size, blob(l.digest).length);
  const appLayer = join(dir, 'app.tar');
  writeFileSync(appLayer, blob(manifest.layers[1]!.digest));
  t.same((await runOk('tar', ['-tf', appLayer])).trim().split('\n'), ['app/', 'app/main.mjs'], 'a layer is a plain tar of its files');

  const config = JSON.parse(blob(manifest.config.digest).toString()) as Record<string, unknown> & { config: Record<string, unknown>; rootfs: { type: string; diff_ids: string[] }; history: unknown[] };
  t.same(config, image.configJson, 'the written config is the one returned');
  t.equal(config.os, 'linux');
  t.equal(config.architecture, 'amd64');
  t.equal(config.created, '2024-01-02T03:04:05Z');
  t.same(config.config, {
    User: '65532:65532',
    ExposedPorts: { '7473/tcp': {}, '7934/udp': {} },
    Env: ['PATH=/bin'],
    Entrypoint: ['/bin/tool', '--flag'],
    WorkingDir: '/app',
    Labels: { 'org.opencontainers.image.source': 'https://example.invalid/src', 'org.opencontainers.image.version': '1.2.3' },
  });
  t.same(config.rootfs, { type: 'layers', diff_ids: manifest.layers.map((l) => l.digest) }, 'uncompressed: diff_ids are the layer digests');
  t.same(config.history, [{ created: '2024-01-02T03:04:05Z', created_by: 'base' }, { created: '2024-01-02T03:04:05Z', created_by: 'app' }]);
});

t.test('same input, same bytes and digest; any change, another digest', async (t) => {
  const a = writeOciImage(input());
  t.ok(bytes(input()).equals(Buffer.concat(a.chunks)), 'two builds are byte-identical');
  t.equal(writeOciImage(input()).digest, a.digest);
  const file = writeOciImage(input({ file: 'console.log(2)\n' }));
  t.not(file.digest, a.digest, 'a changed file changes the digest');
  t.not(file.layers[1]!.digest, a.layers[1]!.digest, '...through its layer');
  t.equal(file.layers[0]!.digest, a.layers[0]!.digest, 'the unchanged layer keeps its digest');
  const label = writeOciImage(input({ label: 'https://example.invalid/other' }));
  t.not(label.digest, a.digest, 'a changed label changes the digest');
  t.same(label.layers, a.layers, '...but no layer');
  t.not(writeOciImage(input({ created: '2024-01-02T03:04:06Z' })).digest, a.digest, 'so does the creation time');
  const renamed = writeOciImage({ ...input(), ref: 'purelb.local/sample:1.2.4' });
  t.equal(renamed.digest, a.digest, 'the reference is not part of the image: same digest under another name');
  t.notOk(Buffer.concat(renamed.chunks).equals(Buffer.concat(a.chunks)), 'but the archive names it differently');
});

t.test('config checks and tags', async (t) => {
  t.throws(() => writeOciImage({ ...input(), config: { ...input().config, user: 'nonroot' } }), /user "nonroot" must be numeric/);
  t.throws(() => writeOciImage({ ...input(), config: { ...input().config, exposedPorts: ['80'] } }), /exposed port "80"/);
  t.equal(tagOf('purelb.local/demo:0.1.0'), '0.1.0');
  t.equal(tagOf('localhost:5000/demo'), 'latest', 'a registry port is not a tag');
  t.equal(tagOf('localhost:5000/demo:v2'), 'v2');
  const twice = makeLayer([{ type: 'file', path: 'a', data: text('x') }], 'same');
  const shared = writeOciImage({ ...input(), layers: [twice, twice] });
  t.equal(shared.layers.length, 2, 'a layer listed twice stays twice in the manifest');
  const dir = tempDir(t);
  writeFileSync(join(dir, 'shared.tar'), Buffer.concat(shared.chunks));
  const blobs = (await runOk('tar', ['-tf', join(dir, 'shared.tar')])).split('\n').filter((l) => /^blobs\/sha256\/[0-9a-f]{64}$/.test(l));
  t.equal(blobs.length, 3, 'but is stored once (config, manifest, one layer)');
});
