// Keeps TypeScript project references in step with workspace dependencies.
//   node tools/sync-tsconfig-references.ts          rewrite references
//   node tools/sync-tsconfig-references.ts --check  exit 1 and list what is out of step
// Each workspace has tsconfig.json (solution: lib + test), tsconfig.lib.json (references
// the lib configs of the workspaces in its dependencies) and tsconfig.test.json (its own
// lib, plus the workspaces in its devDependencies, which only tests and benches use).
// The root tsconfig.json references every workspace and tsconfig.tools.json.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const check = process.argv.includes('--check');

interface Workspace {
  dir: string;
  name: string;
  deps: string[];
  devDeps: string[];
}

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

function workspaces(): Workspace[] {
  const globs = (readJson(join(root, 'package.json')).workspaces as string[]) ?? [];
  const dirs: string[] = [];
  for (const g of globs) {
    if (g.endsWith('/*')) {
      const base = join(root, g.slice(0, -2));
      if (!existsSync(base)) continue;
      for (const d of readdirSync(base).sort()) if (existsSync(join(base, d, 'package.json'))) dirs.push(join(base, d));
    } else if (existsSync(join(root, g, 'package.json'))) dirs.push(join(root, g));
  }
  return dirs.map((dir) => {
    const pkg = readJson(join(dir, 'package.json'));
    const deps = Object.keys({ ...(pkg.dependencies as object), ...(pkg.peerDependencies as object) });
    const devDeps = Object.keys({ ...(pkg.devDependencies as object) });
    return { dir, name: pkg.name as string, deps, devDeps };
  });
}

const problems: string[] = [];

function sync(path: string, references: string[]): void {
  if (!existsSync(path)) {
    problems.push(`${relative(root, path)} is missing`);
    return;
  }
  const config = readJson(path);
  const want = references.map((p) => ({ path: p }));
  if (JSON.stringify(config.references ?? []) === JSON.stringify(want)) return;
  problems.push(`${relative(root, path)}: references should be ${JSON.stringify(references)}`);
  if (!check) writeFileSync(path, JSON.stringify({ ...config, references: want }, null, 2) + '\n');
}

const all = workspaces();
const byName = new Map(all.map((w) => [w.name, w]));
for (const w of all) {
  const refs = (names: readonly string[]): string[] =>
    names
      .filter((d) => byName.has(d))
      .sort()
      .map((d) => relative(w.dir, join(byName.get(d)!.dir, 'tsconfig.lib.json')));
  sync(join(w.dir, 'tsconfig.lib.json'), refs(w.deps));
  sync(join(w.dir, 'tsconfig.test.json'), ['./tsconfig.lib.json', ...refs(w.devDeps.filter((d) => !w.deps.includes(d)))]);
}
sync(join(root, 'tsconfig.json'), [...all.map((w) => `./${relative(root, w.dir)}`), './tsconfig.tools.json']);

if (problems.length > 0) {
  console.error(`${check ? 'out of step' : 'rewrote'}:\n  ${problems.join('\n  ')}`);
  if (check) {
    console.error('run: node tools/sync-tsconfig-references.ts');
    process.exit(1);
  }
}
