/**
 * The published libraries as their users get them: `npm pack` of each, and a fresh
 * project that installs the tarballs without the network. Their third-party
 * dependencies are packed from the repository's own node_modules (the versions its
 * lockfile pinned), so the install needs neither the registry nor the npm cache.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The workspace folders of the published libraries, under packages/. */
export const LIBRARIES: readonly string[] = ['api', 'election', 'ipam-core', 'ipam-netbox', 'k8s-glue', 'linux-net'];

export interface PackedPackage {
  readonly name: string;
  readonly version: string;
  /** The tarball's file name, in the pack directory. */
  readonly filename: string;
  /** The paths inside the tarball. */
  readonly files: readonly string[];
}

export interface ConsumerProject {
  readonly dir: string;
  readonly packed: readonly PackedPackage[];
  readonly thirdParty: readonly ThirdPartyPackage[];
}

export interface ThirdPartyPackage {
  readonly name: string;
  readonly version: string;
  /** Its folder relative to the repository root (node_modules/...). */
  readonly location: string;
}

/** A dependency that cannot be installed without the registry. */
export class PackageCheckError extends Error {
  readonly code: 'PACKAGE_CHECK_DEPENDENCY_MISSING' | 'PACKAGE_CHECK_DEPENDENCY_CONFLICT';
  constructor(code: PackageCheckError['code'], message: string) {
    super(message);
    this.name = 'PackageCheckError';
    this.code = code;
  }
}

interface LockEntry {
  readonly name?: string;
  readonly version?: string;
  readonly link?: boolean;
  readonly dependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
}

/**
 * The third-party packages the libraries need at run time, found in package-lock.json
 * the way Node resolves them: a dependency of the package at `node_modules/a` is
 * `node_modules/a/node_modules/d` if there is one, else `node_modules/d`. Workspace
 * packages (`@purelb/...`) are left out: they are installed from their own tarballs.
 * Two versions of one name would need nesting a flat install cannot give: an error.
 */
export function thirdPartyClosure(lock: { packages: Record<string, LockEntry> }, libraries: readonly string[]): ThirdPartyPackage[] {
  const found = new Map<string, ThirdPartyPackage>();
  const resolve = (from: string, dep: string): string | undefined => {
    for (let base = from; ; ) {
      const at = `${base === '' ? '' : `${base}/`}node_modules/${dep}`;
      if (lock.packages[at]) return at;
      if (base === '') return undefined;
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };
  const visit = (from: string, entry: LockEntry, optional: boolean): void => {
    const deps = Object.keys(entry.dependencies ?? {}).map((d) => [d, false] as const);
    const opts = Object.keys(entry.optionalDependencies ?? {}).map((d) => [d, true] as const);
    for (const [dep, isOptional] of [...deps, ...opts]) {
      if (dep.startsWith('@purelb/')) continue;
      const at = resolve(from, dep);
      if (!at) {
        if (isOptional || optional) continue;
        throw new PackageCheckError('PACKAGE_CHECK_DEPENDENCY_MISSING', `package-lock.json: ${from}: dependency ${dep} is not installed`);
      }
      const target = lock.packages[at] ?? {};
      const version = target.version ?? '';
      const seen = found.get(dep);
      if (seen) {
        if (seen.version !== version) {
          throw new PackageCheckError('PACKAGE_CHECK_DEPENDENCY_CONFLICT', `${dep} is needed as ${seen.version} (${seen.location}) and ${version} (${at})`);
        }
        continue;
      }
      found.set(dep, { name: dep, version, location: at });
      visit(at, target, optional || isOptional);
    }
  };
  for (const lib of libraries) {
    const at = `packages/${lib}`;
    const entry = lock.packages[at];
    if (!entry) throw new PackageCheckError('PACKAGE_CHECK_DEPENDENCY_MISSING', `package-lock.json has no workspace ${at}`);
    visit(at, entry, false);
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

const NPM_ENV = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', npm_config_update_notifier: 'false' };
  delete env.FORCE_COLOR;
  delete env.NODE_OPTIONS;
  return env;
};

const npm = (args: string[], cwd: string, timeoutMs: number): string =>
  execFileSync('npm', args, { cwd, env: NPM_ENV(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });

/** `npm pack` of each library (its dist/ must be built) into `dest`. */
export function packLibraries(repoRoot: string, dest: string, libraries: readonly string[] = LIBRARIES): PackedPackage[] {
  const dirs = libraries.map((l) => join(repoRoot, 'packages', l));
  const out = JSON.parse(npm(['pack', '--json', '--pack-destination', dest, ...dirs], repoRoot, 180_000)) as {
    name: string;
    version: string;
    filename: string;
    files: { path: string }[];
  }[];
  return out.map((p) => ({ name: p.name, version: p.version, filename: p.filename, files: p.files.map((f) => f.path) }));
}

/**
 * A fresh ESM project in `dir` with every library installed from its tarball, and their
 * third-party dependencies from tarballs packed out of the repository's node_modules:
 * `npm install --offline`, no install scripts (the native packages ship prebuilt
 * binaries and find them at load time).
 */
export function installOffline(repoRoot: string, dir: string, libraries: readonly string[] = LIBRARIES): ConsumerProject {
  const packed = packLibraries(repoRoot, dir, libraries);
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const thirdParty = thirdPartyClosure(lock, libraries);
  const tarballs = packed.map((p) => p.filename);
  if (thirdParty.length > 0) {
    const out = JSON.parse(
      npm(['pack', '--json', '--ignore-scripts', '--pack-destination', dir, ...thirdParty.map((p) => join(repoRoot, p.location))], repoRoot, 180_000),
    ) as { filename: string }[];
    tarballs.push(...out.map((p) => p.filename));
  }
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'purelb-consumer', private: true, type: 'module' }, null, 2));
  npm(['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', ...tarballs.map((f) => `./${f}`)], dir, 300_000);
  return { dir, packed, thirdParty };
}
