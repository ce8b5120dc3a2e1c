// Builds an app into one self-contained ESM file for its container image.
//   node tools/bundle.ts allocator       -> apps/allocator/dist/allocator.mjs
//   node tools/bundle.ts lbnodeagent     -> apps/lbnodeagent/dist/lbnodeagent.mjs (+ dist/node_modules)
//   node tools/bundle.ts --all
// Workspace packages are bundled from their TypeScript sources (the @purelb/source
// condition), npm packages from node_modules. Native addons cannot be inlined: those
// packages stay external and are copied, with their runtime dependencies, into
// dist/node_modules next to the bundle, where Node's resolution finds them. The list of
// what was copied goes to dist/<app>.bundle.json.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { build } from 'esbuild';

const root = join(import.meta.dirname, '..');

/** How one app is bundled. Paths are relative to the repository root. */
export interface AppBundleSpec {
  readonly entry: string;
  readonly outfile: string;
  /** Packages with native addons: left out of the bundle and copied next to it. */
  readonly external: readonly string[];
}

/** The apps and how each is bundled. */
export const APP_BUNDLES = {
  allocator: { entry: 'apps/allocator/src/main.ts', outfile: 'apps/allocator/dist/allocator.mjs', external: [] },
  lbnodeagent: { entry: 'apps/lbnodeagent/src/main.ts', outfile: 'apps/lbnodeagent/dist/lbnodeagent.mjs', external: ['koffi', 'netlink'] },
} as const satisfies Record<string, AppBundleSpec>;

/** A name of an app in APP_BUNDLES. */
export type AppName = keyof typeof APP_BUNDLES;

/**
 * The Node flags an app's image runs it with: `purelb.nodeFlags` in apps/<app>/package.json,
 * the one place they are written down. The Dockerfile's ENTRYPOINT repeats them (a chart
 * test checks that it does) and the lab and the benchmarks start the bundle with them.
 */
export function nodeFlagsOf(app: string): string[] {
  const pkg = JSON.parse(readFileSync(join(root, 'apps', app, 'package.json'), 'utf8')) as { purelb?: { nodeFlags?: unknown } };
  const flags = pkg.purelb?.nodeFlags ?? [];
  if (!Array.isArray(flags) || !flags.every((f) => typeof f === 'string' && f.startsWith('--'))) {
    throw new Error(`apps/${app}/package.json: purelb.nodeFlags must be a list of --flags`);
  }
  return flags as string[];
}

/** A package copied next to a bundle. */
export interface CopiedPackage {
  readonly name: string;
  readonly version: string;
  /** Relative to the bundle's directory. */
  readonly path: string;
}

/** What a bundle build produced. */
export interface BundleResult {
  readonly outfile: string;
  readonly bytes: number;
  /** Every package copied into node_modules next to the bundle (externals and their dependencies). */
  readonly copied: readonly CopiedPackage[];
  /** npm packages inlined into the bundle. */
  readonly inlined: readonly string[];
}

// CommonJS packages (undici, yaml) call require() for Node built-ins; an ESM bundle
// has no require of its own, so one is made for them.
const BANNER = "import { createRequire as __purelbCreateRequire } from 'node:module';\nconst require = __purelbCreateRequire(import.meta.url);";

/** Packages whose files are not needed at run time (types, build-time addon headers). */
const NOT_AT_RUNTIME = /^(@types\/|node-addon-api$|node-gyp$)/;

// koffi's name for this machine's CPU. Images are built per platform (the build stage
// runs on the target's architecture), so only this one's binaries are needed.
const KOFFI_ARCH = ({ x64: 'x64', arm64: 'arm64', arm: 'armhf', ia32: 'ia32', riscv64: 'riscv64d', loong64: 'loong64' } as Record<string, string>)[process.arch] ?? process.arch;

/**
 * Files of a copied package an image never needs: koffi ships prebuilt binaries for
 * every OS and CPU plus its C++ sources (84 MB); only Linux (glibc and musl) builds for
 * this CPU are kept.
 */
const PRUNE: Record<string, RegExp> = {
  koffi: new RegExp(`^(src|vendor|doc)(/|$)|^build/koffi/(?!(linux|musl)_${KOFFI_ARCH}(/|$))[^/]+`),
};

function packageName(path: string): string | undefined {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path.split('\\').join('/'));
  return m?.[1];
}

/** Copies `name` (resolved from `from`) and its runtime dependencies into `dest`/node_modules. */
function copyWithDependencies(name: string, from: string, dest: string, seen: Map<string, CopiedPackage>): void {
  if (seen.has(name) || NOT_AT_RUNTIME.test(name)) return;
  let pkgJson: string;
  try {
    pkgJson = createRequire(join(from, 'noop.js')).resolve(`${name}/package.json`);
  } catch {
    throw new Error(`external package ${name} is not installed (resolving from ${relative(root, from)}); run npm ci`);
  }
  const dir = dirname(pkgJson);
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string; dependencies?: Record<string, string> };
  const target = join(dest, 'node_modules', name);
  const prune = PRUNE[name];
  cpSync(dir, target, {
    recursive: true,
    dereference: true,
    filter: (src) => !/\/node_modules\/\.bin(\/|$)/.test(src) && !(prune && prune.test(relative(dir, src))),
  });
  seen.set(name, { name, version: pkg.version, path: relative(dest, target) });
  for (const dep of Object.keys(pkg.dependencies ?? {})) copyWithDependencies(dep, dir, dest, seen);
}

/**
 * Bundles one app: an AppName, or any name with `spec`, which overrides the entry in
 * APP_BUNDLES (tests bundle fixtures with it). Relative paths are from the repository root.
 */
export async function bundleApp(name: string, spec?: AppBundleSpec): Promise<BundleResult> {
  const s: AppBundleSpec | undefined = spec ?? (APP_BUNDLES as Record<string, AppBundleSpec>)[name];
  if (!s) throw new Error(`unknown app "${name}"; known: ${Object.keys(APP_BUNDLES).join(', ')}`);
  const entry = resolve(root, s.entry);
  const outfile = resolve(root, s.outfile);
  if (!existsSync(entry)) throw new Error(`${name}: entry ${s.entry} does not exist`);
  const outdir = dirname(outfile);
  mkdirSync(outdir, { recursive: true });
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    conditions: ['@purelb/source'],
    external: [...s.external],
    banner: { js: BANNER },
    legalComments: 'eof',
    // Whitespace and syntax minified, names kept: V8 holds every loaded source as a string
    // (half the size, and one byte per character once comments with non-ASCII text are
    // gone) while stack traces still name functions and classes.
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    metafile: true,
    logLevel: 'warning',
  });
  const inlined = new Set<string>();
  for (const input of Object.keys(result.metafile.inputs)) {
    const p = packageName(input);
    if (p) inlined.add(p);
  }
  const nodeModules = join(outdir, 'node_modules');
  rmSync(nodeModules, { recursive: true, force: true });
  const copied = new Map<string, CopiedPackage>();
  for (const ext of s.external) copyWithDependencies(ext, dirname(entry), outdir, copied);
  const base = outfile.slice(0, -'.mjs'.length);
  const nodeFlags = name in APP_BUNDLES ? nodeFlagsOf(name) : [];
  const report = { app: name, bundle: relative(outdir, outfile), node: '>=24', nodeFlags, copy: [...copied.values()], inlined: [...inlined].sort() };
  writeFileSync(`${base}.bundle.json`, JSON.stringify(report, null, 2) + '\n');
  return { outfile, bytes: statSync(outfile).size, copied: report.copy, inlined: report.inlined };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const names = args.includes('--all') ? Object.keys(APP_BUNDLES) : args;
  if (names.length === 0) {
    console.error(`usage: node tools/bundle.ts <${Object.keys(APP_BUNDLES).join('|')}>... | --all`);
    process.exit(2);
  }
  for (const n of names) {
    const r = await bundleApp(n);
    const extra = r.copied.length ? `; copied next to it: ${r.copied.map((c) => `${c.name}@${c.version}`).join(', ')}` : '';
    console.log(`${n}: ${relative(root, r.outfile)} (${(r.bytes / 1024).toFixed(0)} KiB, ${r.inlined.length} npm packages inlined${extra})`);
  }
}
