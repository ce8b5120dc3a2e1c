// `npm run images`: the OCI image tarballs of the allocator, the node agent and the lab's
// demo backend, without a Docker engine or a registry.
//   node tools/images/src/build.ts                 all three, into dist/images/
//   node tools/images/src/build.ts demo allocator  some of them
//   node tools/images/src/build.ts --no-bundle     use the bundles already in apps/*/dist
//   node tools/images/src/build.ts --out-dir DIR
// Each image is two layers: the Node runtime (node, its shared libraries, /etc/passwd,
// /etc/group, /tmp), the same in every image so a node stores it once, and the app.
// Load one into a node's containerd with `ctr -n k8s.io images import dist/images/<name>.oci.tar`.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { transformSync } from 'esbuild';
import { parse as parseYaml } from 'yaml';
import { type Layer, makeLayer, writeOciImage } from './oci.ts';
import { ImageInputError, NODE_PATH, elfFilesUnder, hostFile, hostTree, runtimeEntries, sharedLibraries, withParentDirectories } from './rootfs.ts';
import { APP_DIR, IMAGE_NAMES, IMAGE_PATH, IMAGE_SPECS, type ImageName, type ImageSpec } from './specs.ts';
import { type TarEntry, chunksLength } from './tar.ts';

/** The repository's root directory. */
export const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');

/** Where images go unless told otherwise (under dist/, which git ignores). */
export const DEFAULT_OUT_DIR = join(REPO_ROOT, 'dist', 'images');

/**
 * The registry part of every reference. A name that resolves nowhere: the images exist
 * only where they were imported, and a node that lacks one fails to pull it at once
 * instead of fetching something else.
 */
export const DEFAULT_REGISTRY = 'purelb.local';

/**
 * The source label when git names no `origin` remote: the repository behind the
 * ghcr.io/purelb-ts image names the chart pulls by default.
 */
export const DEFAULT_SOURCE = 'https://github.com/purelb-ts/purelb-ts';

/** What buildImages() may be told. Every field is optional. */
export interface BuildImagesOptions {
  /** Which images (default: all of IMAGE_NAMES). */
  readonly images?: readonly ImageName[];
  /** Output directory (default dist/images at the repository root). */
  readonly outDir?: string;
  /** Registry part of the references (default purelb.local). */
  readonly registry?: string;
  /** Tag and org.opencontainers.image.version (default the chart's appVersion, which the chart deploys). */
  readonly version?: string;
  /** org.opencontainers.image.revision (default git HEAD, with "-dirty" if tracked files changed). */
  readonly revision?: string;
  /** org.opencontainers.image.source (default git's origin remote, else DEFAULT_SOURCE). */
  readonly source?: string;
  /** Image creation time, seconds since the epoch (default SOURCE_DATE_EPOCH, else HEAD's commit time). */
  readonly created?: number;
  /** Run tools/bundle.ts for the apps first (default true); false uses the bundles in apps/<app>/dist. */
  readonly bundle?: boolean;
  /** The Node binary to ship (default the project's node_modules/node/bin/node). */
  readonly nodeBinary?: string;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

/** One image written. */
export interface BuiltImage {
  readonly name: ImageName;
  /** e.g. purelb.local/allocator:0.1.0 */
  readonly ref: string;
  /** The OCI image-layout tarball. */
  readonly tarPath: string;
  /** The manifest's digest ("sha256:..."), as `ctr images ls` shows it. */
  readonly digest: string;
  /** Tarball size in bytes. */
  readonly size: number;
  /** True when the tarball on disk already held this digest and was left as it was. */
  readonly cached: boolean;
  /** The image config as written (os, architecture, config.Entrypoint, config.User, ...). */
  readonly config: Record<string, unknown>;
}

/** The report tools/bundle.ts writes next to a bundle. */
interface BundleReport {
  readonly bundle: string;
  readonly nodeFlags: readonly string[];
  readonly copy: readonly { name: string; path: string }[];
}

/** OCI architecture name of this machine's CPU (the runtime is copied from this machine). */
export function ociArchitecture(arch: string = process.arch): string {
  const names: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };
  const name = names[arch];
  if (!name) throw new ImageInputError(`no OCI architecture name for CPU ${arch}`);
  return name;
}

function git(args: readonly string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** The chart's appVersion: the tag the chart deploys by default. */
export function chartAppVersion(): string {
  const chart = parseYaml(readFileSync(join(REPO_ROOT, 'charts', 'purelb', 'Chart.yaml'), 'utf8')) as { appVersion?: unknown };
  if (typeof chart.appVersion !== 'string' || chart.appVersion === '') throw new ImageInputError('charts/purelb/Chart.yaml has no appVersion');
  return chart.appVersion;
}

/** git HEAD, "-dirty" appended when tracked files differ from it; "unknown" outside git. */
export function gitRevision(): string {
  const head = git(['rev-parse', 'HEAD']);
  if (!head) return 'unknown';
  const dirty = git(['status', '--porcelain', '--untracked-files=no']);
  return dirty ? `${head}-dirty` : head;
}

/** The creation time: SOURCE_DATE_EPOCH, else HEAD's commit time, else 0. Never the clock. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = env.SOURCE_DATE_EPOCH;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!/^\d+$/.test(fromEnv)) throw new ImageInputError(`SOURCE_DATE_EPOCH=${fromEnv} is not a number of seconds`);
    return Number(fromEnv);
  }
  const commit = git(['log', '-1', '--format=%ct']);
  return commit && /^\d+$/.test(commit) ? Number(commit) : 0;
}

function sourceUrl(): string {
  const origin = git(['remote', 'get-url', 'origin']);
  if (!origin) return DEFAULT_SOURCE;
  // git@host:owner/repo(.git) -> https://host/owner/repo
  const ssh = /^[\w.-]+@([^:]+):(.+?)(\.git)?$/.exec(origin);
  if (ssh) return `https://${ssh[1]}/${ssh[2]}`;
  return origin.replace(/\.git$/, '').replace(/^(https?:\/\/)[^@/]+@/, '$1');
}

function readBundleReport(app: string): BundleReport {
  const path = join(REPO_ROOT, 'apps', app, 'dist', `${app}.bundle.json`);
  if (!existsSync(path)) throw new ImageInputError(`${relative(REPO_ROOT, path)} does not exist: run node tools/bundle.ts ${app} (or build without --no-bundle)`);
  const r = JSON.parse(readFileSync(path, 'utf8')) as Partial<BundleReport>;
  if (typeof r.bundle !== 'string' || !Array.isArray(r.nodeFlags) || !Array.isArray(r.copy)) throw new ImageInputError(`${relative(REPO_ROOT, path)} is not a bundle report of tools/bundle.ts`);
  return r as BundleReport;
}

/** The app's files (under /app) and its entrypoint. */
function appFiles(spec: ImageSpec, runtimeLibs: ReadonlySet<string>): { entries: TarEntry[]; entrypoint: string[] } {
  if (spec.from.kind === 'demo') {
    const source = readFileSync(join(REPO_ROOT, spec.from.source), 'utf8');
    const js = transformSync(source, { loader: 'ts', format: 'esm', target: 'node24', sourcefile: spec.from.source }).code;
    return { entries: [{ type: 'directory', path: APP_DIR }, { type: 'file', path: `${APP_DIR}/demo.mjs`, data: Buffer.from(js, 'utf8') }], entrypoint: [NODE_PATH, `${APP_DIR}/demo.mjs`] };
  }
  const app = spec.from.app;
  const dist = join(REPO_ROOT, 'apps', app, 'dist');
  const report = readBundleReport(app);
  const entries: TarEntry[] = [{ type: 'directory', path: APP_DIR }, hostFile(join(dist, report.bundle), `${APP_DIR}/${report.bundle}`)];
  if (report.copy.length > 0) {
    const modules = join(dist, 'node_modules');
    entries.push(...hostTree(modules, `${APP_DIR}/node_modules`));
    // Libraries the native addons load beyond node's own go into the app's layer.
    const extra = new Map<string, string>();
    for (const elf of elfFilesUnder(modules)) for (const l of sharedLibraries(elf)) if (!runtimeLibs.has(l.imagePath)) extra.set(l.imagePath, l.hostPath);
    for (const [imagePath, hostPath] of [...extra].sort()) entries.push(hostFile(hostPath, imagePath));
  }
  return { entries, entrypoint: [NODE_PATH, ...report.nodeFlags, `${APP_DIR}/${report.bundle}`] };
}

/** Writes the chunks to a temporary file beside `path`, then renames it: readers never see half a tarball. */
async function writeChunks(path: string, chunks: readonly Uint8Array[]): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const file = await open(tmp, 'w', 0o644);
  try {
    // writev takes at most IOV_MAX (1024) buffers per call.
    for (let i = 0; i < chunks.length; i += 1024) {
      const batch = chunks.slice(i, i + 1024);
      const { bytesWritten } = await file.writev(batch);
      if (bytesWritten !== chunksLength(batch)) throw new Error(`${tmp}: short write (${bytesWritten} of ${chunksLength(batch)} bytes)`);
    }
    await file.close();
  } catch (e) {
    await file.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await rename(tmp, path);
}

/**
 * Builds the images (all three unless told) and writes each to
 * `<outDir>/<name>.oci.tar`, named `<registry>/<name>:<version>`. The same inputs give
 * the same bytes and digest; a tarball already holding the digest is not rewritten.
 */
export async function buildImages(options: BuildImagesOptions = {}): Promise<BuiltImage[]> {
  const log = options.log ?? ((): void => {});
  const names = options.images ?? IMAGE_NAMES;
  for (const n of names) if (!(n in IMAGE_SPECS)) throw new ImageInputError(`unknown image "${n}"; known: ${IMAGE_NAMES.join(', ')}`);
  const outDir = options.outDir ?? DEFAULT_OUT_DIR;
  const registry = options.registry ?? DEFAULT_REGISTRY;
  const version = options.version ?? chartAppVersion();
  const revision = options.revision ?? gitRevision();
  const source = options.source ?? sourceUrl();
  const createdEpoch = options.created ?? sourceDateEpoch();
  const created = new Date(createdEpoch * 1000).toISOString().replace('.000Z', 'Z');
  const nodeBinary = options.nodeBinary ?? join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(nodeBinary)) throw new ImageInputError(`${nodeBinary} does not exist: run npm ci`);

  const apps = names.flatMap((n) => (IMAGE_SPECS[n].from.kind === 'bundle' ? [(IMAGE_SPECS[n].from as { app: string }).app] : []));
  if (apps.length > 0 && options.bundle !== false) {
    log(`bundling ${apps.join(', ')} (tools/bundle.ts)`);
    const { stdout: out } = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'tools', 'bundle.ts'), ...apps], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 300_000 });
    for (const line of out.trim().split('\n')) if (line) log(`  ${line}`);
  }

  const nodeVersion = execFileSync(nodeBinary, ['--version'], { encoding: 'utf8' }).trim();
  const runtime = withParentDirectories(runtimeEntries(nodeBinary));
  const runtimeLibs = new Set(runtime.map((e) => e.path));
  const runtimeLayer: Layer = makeLayer(runtime, `purelb tools/images: Node ${nodeVersion} runtime (${NODE_PATH} and its shared libraries), /etc/passwd, /etc/group, /tmp`);
  mkdirSync(outDir, { recursive: true });

  const built: BuiltImage[] = [];
  for (const name of names) {
    const spec = IMAGE_SPECS[name];
    const ref = `${registry}/${name}:${version}`;
    const files = appFiles(spec, runtimeLibs);
    const appLayer = makeLayer(withParentDirectories(files.entries).filter((e) => !runtimeLibs.has(e.path)), `purelb tools/images: ${name} (${spec.from.kind === 'bundle' ? `tools/bundle.ts ${spec.from.app}` : spec.from.source})`);
    const image = writeOciImage({
      ref,
      created,
      os: 'linux',
      architecture: ociArchitecture(),
      config: {
        entrypoint: files.entrypoint,
        user: spec.user,
        env: [IMAGE_PATH, ...spec.env],
        workingDir: APP_DIR,
        exposedPorts: spec.exposedPorts,
        labels: {
          'org.opencontainers.image.created': created,
          'org.opencontainers.image.description': spec.description,
          'org.opencontainers.image.revision': revision,
          'org.opencontainers.image.source': source,
          'org.opencontainers.image.title': `purelb-${name}`,
          'org.opencontainers.image.version': version,
        },
      },
      layers: [runtimeLayer, appLayer],
    });
    const tarPath = join(outDir, `${name}.oci.tar`);
    const recordPath = join(outDir, `${name}.oci.json`);
    let cached = false;
    try {
      const record = JSON.parse(readFileSync(recordPath, 'utf8')) as { ref?: string; digest?: string; size?: number };
      cached = record.ref === ref && record.digest === image.digest && record.size === image.size && statSync(tarPath).size === image.size;
    } catch {
      cached = false;
    }
    if (!cached) {
      rmSync(recordPath, { force: true });
      await writeChunks(tarPath, image.chunks);
      writeFileSync(recordPath, JSON.stringify({ ref, digest: image.digest, size: image.size, config: image.configJson }, null, 2) + '\n');
    }
    built.push({ name, ref, tarPath, digest: image.digest, size: image.size, cached, config: image.configJson });
  }
  return built;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { 'out-dir': { type: 'string' }, 'no-bundle': { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
  });
  if (values.help) {
    console.log(`usage: npm run images -- [${IMAGE_NAMES.join('|')}]... [--no-bundle] [--out-dir DIR]`);
    process.exit(0);
  }
  const unknown = positionals.filter((p) => !(IMAGE_NAMES as readonly string[]).includes(p));
  if (unknown.length > 0) {
    console.error(`unknown image ${unknown.map((u) => `"${u}"`).join(', ')}; known: ${IMAGE_NAMES.join(', ')}`);
    process.exit(2);
  }
  const started = Date.now();
  try {
    const images = await buildImages({
      ...(positionals.length > 0 ? { images: positionals as ImageName[] } : {}),
      ...(values['out-dir'] ? { outDir: values['out-dir'] } : {}),
      bundle: !values['no-bundle'],
      log: (line) => console.log(line),
    });
    for (const i of images) {
      console.log(`${i.ref}  ${i.digest}  ${(i.size / 1e6).toFixed(1)} MB  ${relative(process.cwd(), i.tarPath) || i.tarPath}${i.cached ? '  (unchanged)' : ''}`);
    }
    console.log(`${images.length} images in ${((Date.now() - started) / 1000).toFixed(1)} s; load one into a node: ctr -n k8s.io images import <tarball>`);
  } catch (e) {
    if (e instanceof ImageInputError) {
      console.error(`images: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
}
