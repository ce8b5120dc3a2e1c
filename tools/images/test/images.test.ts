// The real images, built once for this file: what buildImages() returns and writes, that
// a rebuild of the same input is byte-identical, that they agree with the Dockerfiles
// (entrypoint, Node flags, user, ports, working directory), and that they run: each
// image's layers are unpacked into a root directory and its entrypoint started there
// under chroot, as the image's user with the image's environment, so node, its shared
// libraries and the agent's native addons must all come from the image.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { nodeFlagsOf } from '../../bundle.ts';
import { type BuiltImage, DEFAULT_OUT_DIR, buildImages, chartAppVersion } from '../src/build.ts';
import { IMAGE_NAMES, IMAGE_SPECS } from '../src/specs.ts';
import { run, runOk, tempDir } from './helpers.ts';

const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');
const CHROOT = ['/usr/sbin/chroot', '/usr/bin/chroot', '/sbin/chroot'].find((p) => existsSync(p));

interface ImageConfig {
  created: string;
  os: string;
  architecture: string;
  config: { User: string; Entrypoint: string[]; Env: string[]; WorkingDir: string; ExposedPorts: Record<string, object>; Labels: Record<string, string> };
  rootfs: { diff_ids: string[] };
}
const configOf = (i: BuiltImage): ImageConfig => i.config as unknown as ImageConfig;

const work = tempDir(t, 'plb-images-test-');
const started = Date.now();
const images = await buildImages({ outDir: join(work, 'out') });
const buildSeconds = (Date.now() - started) / 1000;
const byName = new Map(images.map((i) => [i.name, i]));
const image = (name: string): BuiltImage => {
  const i = byName.get(name as BuiltImage['name']);
  if (!i) throw new Error(`no image ${name} was built`);
  return i;
};

t.test('buildImages writes the three images under the output directory, named purelb.local/<name>:<appVersion>', async (t) => {
  t.comment(`built ${images.length} images (bundles included) in ${buildSeconds.toFixed(1)} s: ${images.map((i) => `${i.name} ${(i.size / 1e6).toFixed(1)} MB`).join(', ')}`);
  t.same(images.map((i) => i.name), [...IMAGE_NAMES]);
  const version = chartAppVersion();
  for (const i of images) {
    t.equal(i.ref, `purelb.local/${i.name}:${version}`);
    t.equal(i.tarPath, join(work, 'out', `${i.name}.oci.tar`));
    t.match(i.digest, /^sha256:[0-9a-f]{64}$/);
    t.ok(i.size > 50e6 && i.size < 250e6, `${i.name}: ${(i.size / 1e6).toFixed(1)} MB, the Node runtime and the app`);
    const c = configOf(i);
    t.equal(c.os, 'linux');
    t.equal(c.architecture, process.arch === 'x64' ? 'amd64' : process.arch);
    t.same(Object.keys(c.config.Labels).filter((k) => /\.(source|version|revision|created)$/.test(k)).sort(), ['org.opencontainers.image.created', 'org.opencontainers.image.revision', 'org.opencontainers.image.source', 'org.opencontainers.image.version']);
    t.equal(c.config.Labels['org.opencontainers.image.version'], version);
    t.match(c.config.Labels['org.opencontainers.image.revision'], /^([0-9a-f]{40}(-dirty)?|unknown)$/);
    t.equal(c.config.Labels['org.opencontainers.image.created'], c.created, 'the created label is the config time (from git or SOURCE_DATE_EPOCH, never the clock)');
    t.ok(c.config.Env.some((e) => e.startsWith('PATH=/nodejs/bin:')));
  }
  const runtimes = new Set(images.map((i) => configOf(i).rootfs.diff_ids[0]));
  t.equal(runtimes.size, 1, 'the Node runtime is one layer shared by all three (a node stores it once)');
  t.equal(DEFAULT_OUT_DIR, join(REPO_ROOT, 'dist', 'images'), 'by default, images go to dist/images (ignored by git)');
});

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

t.test('the same input gives the same bytes and digest (a changed input: test/oci.test.ts)', async (t) => {
  const again = await buildImages({ outDir: join(work, 'out'), bundle: false });
  t.same(again.map((i) => i.digest), images.map((i) => i.digest), 'a rebuild gives the same digests');
  t.ok(again.every((i) => i.cached), 'and leaves the tarballs as they were');
  const elsewhere = await buildImages({ outDir: join(work, 'again'), bundle: false, images: ['demo'] });
  t.equal(elsewhere[0]!.cached, false, 'written afresh in another directory');
  t.equal(await sha256File(elsewhere[0]!.tarPath), await sha256File(image('demo').tarPath), 'byte-identical tarball');
  await t.rejects(buildImages({ images: ['nope' as 'demo'], outDir: join(work, 'none') }), /unknown image "nope"/);
});

/** The runtime stage of a Dockerfile: its instructions, continuation lines joined, comments dropped. */
function runtimeStage(path: string): { op: string; args: string }[] {
  const lines = readFileSync(path, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages = lines.map((l, i) => (/^FROM /i.test(l) ? i : -1)).filter((i) => i >= 0);
  return lines.slice(stages[stages.length - 1]).map((l) => {
    const m = /^(\S+)\s+(.*)$/.exec(l)!;
    return { op: m[1]!.toUpperCase(), args: m[2]! };
  });
}

/** The layers' file lists, in order. */
async function layerListings(i: BuiltImage): Promise<string[][]> {
  const manifest = await manifestOf(i);
  return Promise.all(manifest.layers.map(async (l) => (await runOk('sh', ['-c', 'tar -xOf "$1" "$2" | tar -tf -', 'sh', i.tarPath, blobPath(l.digest)])).trim().split('\n')));
}

const blobPath = (digest: string): string => `blobs/sha256/${digest.slice('sha256:'.length)}`;

async function manifestOf(i: BuiltImage): Promise<{ layers: { digest: string }[] }> {
  const index = JSON.parse(await runOk('tar', ['-xOf', i.tarPath, 'index.json'])) as { manifests: { digest: string }[] };
  return JSON.parse(await runOk('tar', ['-xOf', i.tarPath, blobPath(index.manifests[0]!.digest)])) as { layers: { digest: string }[] };
}

t.test('the images agree with the Dockerfiles and with purelb.nodeFlags', async (t) => {
  for (const app of ['allocator', 'lbnodeagent'] as const) {
    const stage = runtimeStage(join(REPO_ROOT, 'apps', app, 'Dockerfile'));
    const one = (op: string): string => {
      const found = stage.filter((s) => s.op === op);
      t.equal(found.length, 1, `${app}: one ${op} in the runtime stage`);
      return found[0]?.args ?? '';
    };
    const c = configOf(image(app)).config;
    t.same(c.Entrypoint, JSON.parse(one('ENTRYPOINT')) as unknown, `${app}: Entrypoint is the Dockerfile's ENTRYPOINT`);
    t.same(c.Entrypoint, ['/nodejs/bin/node', ...nodeFlagsOf(app), `/app/${app}.mjs`], `${app}: node, the app's purelb.nodeFlags, the bundle`);
    t.equal(c.User, one('USER'), `${app}: User is the Dockerfile's USER`);
    t.equal(c.User, IMAGE_SPECS[app].user);
    t.equal(c.WorkingDir, one('WORKDIR'), `${app}: WorkingDir is the Dockerfile's WORKDIR`);
    const exposed = stage
      .filter((s) => s.op === 'EXPOSE')
      .flatMap((s) => s.args.split(/\s+/))
      .map((p) => (p.includes('/') ? p : `${p}/tcp`))
      .sort();
    t.same(Object.keys(c.ExposedPorts).sort(), exposed, `${app}: ExposedPorts are the Dockerfile's EXPOSE`);
    const files = (await layerListings(image(app))).flat();
    for (const copy of stage.filter((s) => s.op === 'COPY')) {
      const dest = copy.args.split(/\s+/).pop()!.replace(/^\//, '');
      t.ok(files.includes(dest) || files.includes(`${dest}/`), `${app}: the image has ${dest}, as the Dockerfile copies it`);
    }
  }
  t.equal(configOf(image('allocator')).config.User, '65532:65532', 'the allocator runs as nonroot');
  t.equal(configOf(image('lbnodeagent')).config.User, '0:0', 'the agent runs as root (capabilities NET_ADMIN/NET_RAW need UID 0 in Kubernetes)');
  t.equal(configOf(image('demo')).config.User, '65532:65532', 'the demo runs as nonroot');
});

const layersDir = join(work, 'layers');
mkdirSync(layersDir);

/** Unpacks an image's layers, in order, into a new root directory (each distinct layer is extracted once, then hard-linked). */
async function unpack(i: BuiltImage): Promise<string> {
  const root = join(work, 'roots', i.name);
  mkdirSync(root, { recursive: true });
  for (const l of (await manifestOf(i)).layers) {
    const dir = join(layersDir, l.digest.slice('sha256:'.length));
    if (!existsSync(dir)) {
      mkdirSync(dir);
      await runOk('sh', ['-c', 'tar -xOf "$1" "$2" | tar --numeric-owner -xpf - -C "$3"', 'sh', i.tarPath, blobPath(l.digest), dir], { timeoutMs: 120_000 });
    }
    await runOk('cp', ['-a', '--link', `${dir}/.`, root]);
  }
  return root;
}

/**
 * The command line that runs argv in the unpacked root as the image's user, with the
 * image's environment and nothing of this process's: `env -i` clears what tap adds to
 * every child's environment (NODE_OPTIONS with its coverage hooks, which do not exist in
 * the image).
 */
function inImage(i: BuiltImage, root: string, argv: readonly string[], extraEnv: Record<string, string> = {}): [string, string[]] {
  if (!CHROOT) throw new Error('chroot (coreutils) is not on this machine: the image tests run the images under it');
  const env = [...configOf(i).config.Env, ...Object.entries(extraEnv).map(([k, v]) => `${k}=${v}`)];
  return ['env', ['-i', ...env, CHROOT, `--userspec=${configOf(i).config.User}`, root, ...argv]];
}

const LOADER_ERRORS = /error while loading shared libraries|cannot open shared object|No such file or directory|ERR_DLOPEN_FAILED|Cannot find module/;

t.test('each daemon image starts its entrypoint under chroot, as its user, from its own files', async (t) => {
  t.equal(process.getuid?.(), 0, 'the tests run as root (chroot needs it)');
  for (const app of ['allocator', 'lbnodeagent'] as const) {
    const i = image(app);
    const c = configOf(i).config;
    const root = await unpack(i);
    const help = await run(...inImage(i, root, [...c.Entrypoint, '--help']), { timeoutMs: 60_000 });
    t.equal(help.code, 0, `${app}: --help exits 0 (${help.stderr.trim().slice(0, 300)})`);
    t.match(help.stdout, new RegExp(`^${app}: `), `${app}: the app's own help text`);
    t.match(help.stdout, /--kubeconfig/);
    t.notMatch(help.stderr, LOADER_ERRORS, `${app}: no loader or module error`);
    const id = await run(...inImage(i, root, [c.Entrypoint[0]!, '-e', 'console.log(`${process.getuid()}:${process.getgid()} ${process.execPath} ${process.env.NODE_OPTIONS ?? "no NODE_OPTIONS"}`)']));
    t.equal(id.stdout.trim(), `${c.User} /nodejs/bin/node no NODE_OPTIONS`, `${app}: node runs as ${c.User} from /nodejs/bin/node, with the image's environment only`);
  }
  // The agent's native addons: netlink is imported when the bundle loads (above, by --help);
  // koffi only when the first raw socket opens, so load it and call libc through it here.
  const agent = image('lbnodeagent');
  const c = configOf(agent).config;
  const script = [
    "import { createRequire } from 'node:module';",
    "const require = createRequire('/app/lbnodeagent.mjs');",
    "const koffi = require('koffi');",
    "const getpid = koffi.load('libc.so.6').func('int getpid()');",
    "const netlink = require('netlink');",
    "console.log(JSON.stringify({ pid: getpid(), koffi: require.resolve('koffi'), netlink: require.resolve('netlink'), exports: Object.keys(netlink).length }));",
  ].join('\n');
  const addons = await run(...inImage(agent, join(work, 'roots', 'lbnodeagent'), [c.Entrypoint[0]!, '--input-type=module', '-e', script]));
  t.equal(addons.code, 0, `the addons load (${addons.stderr.trim().slice(0, 300)})`);
  const out = JSON.parse(addons.stdout || '{}') as { pid?: number; koffi?: string; netlink?: string; exports?: number };
  t.ok(Number.isInteger(out.pid) && out.pid! > 1, `koffi called libc's getpid in the image (${out.pid})`);
  t.match(out.koffi, /^\/app\/node_modules\/koffi\//, 'koffi from /app/node_modules');
  t.match(out.netlink, /^\/app\/node_modules\/netlink\//, 'netlink from /app/node_modules');
  t.ok((out.exports ?? 0) > 0, 'netlink loaded its prebuilt binary');
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

t.test('the demo image answers with its pod, its node and the client address', async (t) => {
  const demo = image('demo');
  const c = configOf(demo).config;
  t.same(c.ExposedPorts, { '8080/tcp': {} });
  t.ok(c.Env.includes('PORT=8080'), 'listens on 8080 unless told');
  const root = await unpack(demo);
  const port = await freePort();
  const child = spawn(...inImage(demo, root, c.Entrypoint, { POD_NAME: 'demo-7c9f6-x2kq4', NODE_NAME: 'node-b', HOST: '127.0.0.1', PORT: String(port) }), { stdio: ['ignore', 'pipe', 'pipe'] });
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<void>((resolve) => child.on('exit', (code, signal) => resolve(void (exited = { code, signal }))));
  t.teardown(() => {
    if (!exited) child.kill('SIGKILL');
  });
  let output = '';
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not start within 30 s: ${output}`)), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exit.then(() => {
      clearTimeout(timer);
      reject(new Error(`the demo exited: ${JSON.stringify(exited)} ${output}`));
    });
  });
  t.match(output, `demo: pod demo-7c9f6-x2kq4 on node node-b listening on 127.0.0.1:${port}`);
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) });
  t.equal(res.status, 200);
  t.equal(await res.text(), 'pod=demo-7c9f6-x2kq4 node=node-b client=127.0.0.1\n', 'names the pod, the node and the client as seen');
  t.equal(res.headers.get('x-pod-name'), 'demo-7c9f6-x2kq4');
  t.equal(res.headers.get('x-node-name'), 'node-b');
  t.equal(res.headers.get('x-client-address'), '127.0.0.1');
  const health = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(10_000) });
  t.equal(await health.text(), 'ok\n');
  child.kill('SIGTERM');
  await Promise.race([exit, new Promise((r) => setTimeout(r, 10_000))]);
  t.same(exited, { code: 0, signal: null }, 'SIGTERM stops it at once with exit 0 (it runs as PID 1 in a pod)');
});
