// npm run bench [-- suite ...]: runs benchmark suites and writes bench-results/<suite>.json.
// Suites live beside their code as <package>/bench/*.bench.ts and default-export a BenchSuite.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BenchSuite, machine } from './lib.ts';

const root = join(import.meta.dirname, '..');
const outDir = join(root, 'bench-results');

function findSuiteFiles(): string[] {
  const files: string[] = [];
  for (const parent of ['packages', 'apps', '.']) {
    const base = join(root, parent);
    const dirs = parent === '.' ? ['lab'] : existsSync(base) ? readdirSync(base) : [];
    for (const d of dirs) {
      const benchDir = join(base, d, 'bench');
      if (!existsSync(benchDir)) continue;
      for (const f of readdirSync(benchDir).sort()) if (f.endsWith('.bench.ts')) files.push(join(benchDir, f));
    }
  }
  return files;
}

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const suites: { file: string; suite: BenchSuite }[] = [];
for (const file of findSuiteFiles()) {
  const mod = (await import(pathToFileURL(file).href)) as { default: BenchSuite };
  suites.push({ file, suite: mod.default });
}
const known = suites.map((s) => s.suite.suite);
for (const w of wanted) {
  if (!known.includes(w)) {
    console.error(`unknown suite "${w}"; known: ${known.join(', ')}`);
    process.exit(2);
  }
}
mkdirSync(outDir, { recursive: true });
let failed = 0;
for (const { file, suite } of suites) {
  if (wanted.length > 0 && !wanted.includes(suite.suite)) continue;
  console.log(`\n== ${suite.suite} (${relative(root, file)})`);
  try {
    const out = await suite.run();
    const result = { suite: suite.suite, metrics: out.metrics, env: { ...machine(), ...out.notes } };
    writeFileSync(join(outDir, `${suite.suite}.json`), JSON.stringify(result, null, 2) + '\n');
    if (out.samples) {
      const names = Object.keys(out.samples);
      const rows = Math.max(...names.map((n) => out.samples![n]!.length));
      const lines = [names.join(',')];
      for (let i = 0; i < rows; i++) lines.push(names.map((n) => out.samples![n]![i] ?? '').join(','));
      writeFileSync(join(outDir, `${suite.suite}-samples.csv`), lines.join('\n') + '\n');
    }
    const table = Object.entries(out.metrics).map(([metric, value]) => {
      const target = suite.targets?.[metric];
      const meets = target ? (target[0] === '<=' ? value <= target[1] : value >= target[1]) : undefined;
      return { metric, value: Number(value.toPrecision(6)), target: target ? `${target[0]} ${target[1]}` : '', meets: meets === undefined ? '' : meets ? 'yes' : 'NO' };
    });
    console.table(table);
  } catch (e) {
    failed++;
    console.error(`suite ${suite.suite} could not run: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
}
// A benchmark reports; a suite that could not run at all is still an error worth an exit code.
process.exit(failed > 0 ? 1 : 0);
