// Builds the package, packs it, installs the tarball into a throwaway project and uses it
// the way another tool would: from plain JavaScript, from type-checked TypeScript, and by
// running the README's example verbatim.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const pkgDir = join(import.meta.dirname, '..');
const repoRoot = join(pkgDir, '..', '..');
const tsc = join(repoRoot, 'node_modules', '.bin', 'tsc');
// Plain output whatever the parent runner forces (nx sets FORCE_COLOR).
const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
delete env.FORCE_COLOR;
// A build, a pack, an install and two compiles: about 30 s alone on two cores, longer on a
// busy machine. Each step has its own 180 s bound (below); the file gets the sum of its steps.
t.setTimeout(600_000);
const run = (cmd: string, args: string[], cwd: string): string =>
  execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 });

t.test('the packed package works from JavaScript and TypeScript', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'purelb-ipam-consumer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  run(tsc, ['-b', 'tsconfig.lib.json'], pkgDir);
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir], pkgDir)) as { filename: string; files: { path: string }[] }[];
  const files = packed[0]!.files.map((f) => f.path);
  t.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts'), 'the tarball has the built code and its types');
  t.same(files.filter((f) => /(^|\/)test\/|\.test\.|(^|\/)src\/|(^|\/)bench\//.test(f)), [], 'the tarball has no tests, sources or benchmarks');
  t.same(files.filter((f) => f.endsWith('.map')), [], 'no source maps (they would point at sources the tarball does not carry)');
  t.ok(files.includes('LICENSE'), 'the tarball carries the license');
  const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; repository?: { url?: string } };
  t.same(Object.entries(manifest.dependencies ?? {}).filter(([, v]) => v === '*'), [], 'no dependency published as "*"');
  t.match(manifest.repository?.url ?? '', /^git\+https:\/\//, 'a repository to find the sources');

  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, packed[0]!.filename)], dir);

  writeFileSync(
    join(dir, 'plain.mjs'),
    `import { Ipam, IpamError } from '@purelb/ipam-core';
const ipam = new Ipam();
ipam.setGroups([{ name: 'default', v4pools: [{ pool: '192.0.2.10-192.0.2.20', subnet: '192.0.2.0/24', aggregation: 'default' }], v6pools: [] }]);
const got = ipam.allocate({ service: 'ns/web', group: 'default', families: ['IPv4', 'IPv6'], policy: 'PreferDualStack', addresses: [], sharingKey: undefined, ports: [{ protocol: 'TCP', port: 80 }] });
let code;
try { ipam.allocate({ service: 'ns/x', families: ['IPv4'], addresses: ['192.0.2.10'] }); } catch (e) { code = e instanceof IpamError ? e.code : 'not an IpamError'; }
ipam.release('ns/web');
const stats = ipam.stats('default');
console.log(JSON.stringify({ got, code, size: String(stats.IPv4.size), inUse: String(stats.IPv4.inUse) }));
`,
  );
  t.same(JSON.parse(run(process.execPath, ['plain.mjs'], dir)), {
    got: { group: 'default', addresses: ['192.0.2.10'] },
    code: 'IPAM_ADDRESS_IN_USE',
    size: '11',
    inUse: '0',
  });

  writeFileSync(
    join(dir, 'typed.ts'),
    `import { Ipam, IpamError, type Allocation, type GroupStats } from '@purelb/ipam-core';
const ipam = new Ipam();
ipam.setGroups([{ name: 'default', v6pools: [{ pool: '2001:db8::/64', subnet: '2001:db8::/64', aggregation: 'default' }] }]);
const a: Allocation = ipam.allocate({ service: 'ns/a', families: ['IPv6'] });
const s: GroupStats = ipam.stats('default');
const e = new IpamError('IPAM_POOL_EXHAUSTED', 'x');
console.log(a.addresses[0], String(s.IPv6.size), e.code);
`,
  );
  writeFileSync(join(dir, 'bad.ts'), `import { Ipam } from '@purelb/ipam-core';\nnew Ipam().allocate({ service: 'x', families: ['IPv7'] });\n`);
  const tsconfig = { compilerOptions: { module: 'nodenext', target: 'es2023', strict: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, noEmit: true, skipLibCheck: false, types: [] } };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ ...tsconfig, files: ['typed.ts'] }));
  t.doesNotThrow(() => run(tsc, ['-p', 'tsconfig.json'], dir), 'type-checks against the published declarations');
  writeFileSync(join(dir, 'tsconfig.bad.json'), JSON.stringify({ ...tsconfig, files: ['bad.ts'] }));
  t.throws(() => run(tsc, ['-p', 'tsconfig.bad.json'], dir), 'a wrong family is a type error for consumers');
  t.equal(run(process.execPath, ['typed.ts'], dir).trim(), '2001:db8:: 18446744073709551616 IPAM_POOL_EXHAUSTED');

  const readme = readFileSync(join(pkgDir, 'README.md'), 'utf8');
  const example = /## Example\s+```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  t.ok(example, 'the README has an example');
  writeFileSync(join(dir, 'readme.ts'), example ?? '');
  const out = run(process.execPath, ['readme.ts'], dir);
  const expected = [...(example ?? '').matchAll(/console\.log\(.*\); \/\/ (.*)$/gm)].map((m) => m[1]);
  t.ok(expected.length >= 5, 'the example states what it prints');
  t.same(
    out.trim().split('\n').map((l) => l.replace(/\s+/g, '').replace(/"/g, "'")),
    expected.map((l) => (l ?? '').replace(/\s+/g, '')),
    'the README example prints what it says',
  );
});
