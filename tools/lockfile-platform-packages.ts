// Records the other-platform builds of native packages (nx's @nx/nx-<os>-<cpu>[-<libc>])
// in package-lock.json when the registry could not serve them, so that `npm ci` accepts
// the lockfile. npm leaves an optional dependency it cannot fetch out of the lockfile and
// `npm ci` then reports the lockfile out of sync. The entries carry os/cpu/libc, so npm
// skips them on every other platform and never fetches them.
//   node tools/lockfile-platform-packages.ts          add the missing entries
//   node tools/lockfile-platform-packages.ts --check  exit 1 if any is missing
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const path = join(import.meta.dirname, '..', 'package-lock.json');
const lock = JSON.parse(readFileSync(path, 'utf8')) as { packages: Record<string, Record<string, unknown>> };
const OS = new Set(['darwin', 'linux', 'win32', 'freebsd']);
const missing: string[] = [];
for (const [key, entry] of Object.entries(lock.packages)) {
  const optional = (entry.optionalDependencies ?? {}) as Record<string, string>;
  for (const [name, version] of Object.entries(optional)) {
    if (lock.packages[`node_modules/${name}`] || lock.packages[`${key}/node_modules/${name}`]) continue;
    const m = /-(darwin|linux|win32|freebsd)-(x64|arm64|arm|ia32)(?:-(gnu|musl|gnueabihf|msvc))?$/.exec(name);
    if (!m || !OS.has(m[1]!)) continue;
    missing.push(name);
    const libc = m[3] === 'gnu' ? 'glibc' : m[3] === 'musl' ? 'musl' : undefined;
    lock.packages[`node_modules/${name}`] = {
      version,
      cpu: [m[2]],
      dev: entry.dev ?? true,
      optional: true,
      os: [m[1]],
      ...(libc ? { libc: [libc] } : {}),
    };
  }
}
if (missing.length === 0) process.exit(0);
if (process.argv.includes('--check')) {
  console.error(`package-lock.json lacks platform builds: ${missing.join(', ')}\nrun: node tools/lockfile-platform-packages.ts`);
  process.exit(1);
}
writeFileSync(path, JSON.stringify(lock, null, 2) + '\n');
console.log(`recorded ${missing.length} platform builds: ${missing.join(', ')}`);
