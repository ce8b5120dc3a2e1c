// Every published library as its users get it: built, packed with `npm pack`, installed
// from the tarballs into a fresh project without the network, and every ```ts/```js
// example of every README run there with Node's type stripping, importing the installed
// packages (not the workspace sources). Examples that touch the kernel make their own
// network namespace (the test runs as root); the controller example of k8s-glue runs
// against a real kube-apiserver and is stopped with SIGTERM once it did its work.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t, { type Test } from 'tap';
import { startControlPlane, waitFor } from '@purelb/lab';
import { assertNetnsPrerequisites } from '@purelb/linux-net/testing';
import { LIBRARIES, installOffline, missingOutput, readmeExamples, statedOutput } from '../src/index.ts';

const repoRoot = join(import.meta.dirname, '..', '..', '..');
const tsc = join(repoRoot, 'node_modules', '.bin', 'tsc');
// Build, pack, install: about 60 s on two busy cores; each example has its own bound below.
t.setTimeout(360_000);
const EXAMPLE_TIMEOUT_MS = 60_000;
/** Examples a README may leave out (with a visible reason); more means the READMEs drifted from runnable. */
const MAX_NOT_RUN = 2;

// The children run as a user's project would: no source condition, no tap loader.
const childEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extra };
  delete env.FORCE_COLOR;
  delete env.NODE_OPTIONS;
  return env;
};

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `node file` in the consumer project; resolves when it exits (SIGKILL after `timeoutMs`). */
function runNode(dir: string, file: string, timeoutMs: number, env = childEnv(), onStart?: (child: ChildProcess) => void): Promise<Exit> {
  const started = performance.now();
  const child = spawn(process.execPath, [file], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  onStart?.(child);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Math.round(performance.now() - started) });
    });
  });
}

assertNetnsPrerequisites(); // linux-net's example makes a namespace: root and `ip` are needed

const t0 = performance.now();
execFileSync(tsc, ['-b', ...LIBRARIES.map((l) => join(repoRoot, 'packages', l, 'tsconfig.lib.json'))], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
const dir = mkdtempSync(join(tmpdir(), 'plb-consumer-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const t1 = performance.now();
const project = installOffline(repoRoot, dir);
t.comment(`build ${Math.round(t1 - t0)} ms, pack and install ${Math.round(performance.now() - t1)} ms`);

t.test('each tarball ships its built code, types, README and license, and nothing else', async (t) => {
  t.equal(project.packed.length, LIBRARIES.length, 'one tarball per library');
  for (const p of project.packed) {
    const manifest = JSON.parse(readFileSync(join(dir, 'node_modules', p.name, 'package.json'), 'utf8')) as {
      exports: Record<string, unknown>;
      dependencies?: Record<string, string>;
      sideEffects?: boolean;
      repository?: { url?: string };
    };
    for (const sub of Object.keys(manifest.exports).filter((k) => k !== './package.json')) {
      const base = sub === '.' ? 'dist/index' : `dist/${sub.slice(2)}/index`;
      t.ok(p.files.includes(`${base}.js`) && p.files.includes(`${base}.d.ts`), `${p.name}: ${sub} has its code and types`);
    }
    t.ok(p.files.includes('README.md') && p.files.includes('LICENSE'), `${p.name}: README and LICENSE`);
    t.same(p.files.filter((f) => /(^|\/)test\/|\.test\.|(^|\/)src\/|(^|\/)bench\/|\.map$|\.tsbuildinfo$/.test(f)), [], `${p.name}: no tests, sources, benchmarks or maps`);
    t.same(Object.entries(manifest.dependencies ?? {}).filter(([, v]) => v === '*'), [], `${p.name}: no dependency published as "*"`);
    t.equal(manifest.sideEffects, false, `${p.name}: sideEffects false`);
    t.match(manifest.repository?.url ?? '', /^git\+https:\/\//, `${p.name}: a repository to find the sources`);
  }
  t.ok(project.thirdParty.some((p) => p.name === 'ipaddr.js'), 'third-party dependencies came from the repository (ipaddr.js among them)');
});

t.test('imports resolve to the installed tarballs, not the workspace', async (t) => {
  const probe = join(dir, 'resolve.mjs');
  const specifiers = ['@purelb/api', '@purelb/election', '@purelb/election/testing', '@purelb/ipam-core', '@purelb/ipam-netbox', '@purelb/ipam-netbox/testing', '@purelb/k8s-glue', '@purelb/k8s-glue/testing', '@purelb/linux-net', '@purelb/linux-net/testing'];
  writeFileSync(probe, `console.log(JSON.stringify(${JSON.stringify(specifiers)}.map((s) => import.meta.resolve(s))));\n`);
  const got = await runNode(dir, probe, 20_000);
  t.equal(got.code, 0, got.stderr);
  const urls = JSON.parse(got.stdout) as string[];
  const installed = pathToFileURL(join(dir, 'node_modules')).href + '/@purelb/';
  t.same(urls.filter((u) => !(u.startsWith(installed) && u.includes('/dist/'))), [], `every specifier resolves under ${installed}*/dist/`);
});

t.test('ipam-core from plain JavaScript, and from TypeScript type-checked against its published declarations', async (t) => {
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
  const plain = await runNode(dir, join(dir, 'plain.mjs'), 20_000);
  t.equal(plain.code, 0, plain.stderr);
  t.same(JSON.parse(plain.stdout), { got: { group: 'default', addresses: ['192.0.2.10'] }, code: 'IPAM_ADDRESS_IN_USE', size: '11', inUse: '0' });

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
  const compilerOptions = { module: 'nodenext', target: 'es2023', strict: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, noEmit: true, skipLibCheck: false, types: [] };
  const tscIn = (config: string): void => void execFileSync(tsc, ['-p', config], { cwd: dir, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 });
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['typed.ts'] }));
  t.doesNotThrow(() => tscIn('tsconfig.json'), 'type-checks against the published declarations');
  writeFileSync(join(dir, 'tsconfig.bad.json'), JSON.stringify({ compilerOptions, files: ['bad.ts'] }));
  t.throws(() => tscIn('tsconfig.bad.json'), 'a wrong family is a type error for consumers');
  const typed = await runNode(dir, join(dir, 'typed.ts'), 20_000);
  t.equal(typed.stdout.trim(), '2001:db8:: 18446744073709551616 IPAM_POOL_EXHAUSTED', typed.stderr);
});

const examples = LIBRARIES.map((lib) => ({
  lib,
  blocks: readmeExamples(readFileSync(join(dir, 'node_modules', '@purelb', lib, 'README.md'), 'utf8'), `packages/${lib}/README.md`),
}));

t.test('the READMEs have examples, and skip few with a reason', async (t) => {
  for (const { lib, blocks } of examples) t.ok(blocks.length >= 1, `${lib}: its README has an example`);
  const skipped = examples.flatMap(({ lib, blocks }) => blocks.filter((b) => b.notRun !== undefined).map((b) => `${lib}:${b.line}: ${b.notRun ?? ''}`));
  const stated = examples.flatMap(({ blocks }) => blocks.flatMap((b) => statedOutput(b.code)));
  const ipamCore = examples.find((e) => e.lib === 'ipam-core')?.blocks.find((b) => b.heading === 'Example');
  t.ok(statedOutput(ipamCore?.code ?? '').length >= 5, 'ipam-core: the main example states what it prints');
  t.ok(stated.length >= 30, `the examples state what they print (${stated.length} comments)`);
  t.ok(skipped.length <= MAX_NOT_RUN, `at most ${MAX_NOT_RUN} examples are not run: ${JSON.stringify(skipped)}`);
});

/**
 * Examples that run until they are stopped, with what shows that they did their work.
 * Keyed by package and the heading above the block.
 */
const SERVED: Record<string, (t: Test, file: string) => Promise<void>> = {
  'k8s-glue/Example': async (t, file) => {
    const cpDir = join(dir, 'kube');
    mkdirSync(cpDir);
    const cp = await startControlPlane({ dir: cpDir });
    try {
      await cp.admin.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'purelb' } });
      await cp.admin.create('/api/v1/namespaces/default/services', {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web' },
        spec: { type: 'LoadBalancer', ports: [{ port: 80 }] },
      });
      let child: ChildProcess | undefined;
      const exit = runNode(dir, file, EXAMPLE_TIMEOUT_MS, childEnv({ KUBECONFIG: cp.kubeconfigPath, POD_NAME: 'example-0', HEALTH_PORT: '0' }), (c) => (child = c));
      const ingress = await waitFor(
        'the example to write the Service status',
        async () => {
          const svc = await cp.admin.get<{ status?: { loadBalancer?: { ingress?: { ip: string }[] } } }>('/api/v1/namespaces/default/services/web');
          return svc.status?.loadBalancer?.ingress;
        },
        30_000,
      );
      t.match(ingress, [{ ip: '192.0.2.10' }], 'k8s-glue: the controller example wrote the Service status');
      t.equal(ingress.length, 1, 'k8s-glue: one ingress entry');
      const event = await waitFor(
        'the AddressAssigned Event',
        async () => (await cp.admin.get<{ items: { reason: string; message: string }[] }>('/api/v1/namespaces/default/events')).items.find((e) => e.reason === 'AddressAssigned'),
        15_000,
      );
      t.equal(event.message, 'assigned 192.0.2.10', 'k8s-glue: and recorded an Event');
      const lease = await cp.admin.get<{ spec: { holderIdentity?: string } }>('/apis/coordination.k8s.io/v1/namespaces/purelb/leases/example');
      t.equal(lease.spec.holderIdentity, 'example-0', 'k8s-glue: as the leader');
      child?.kill('SIGTERM');
      const done = await exit;
      t.equal(done.code, 0, `k8s-glue: the controller example exits 0 on SIGTERM\n${done.stderr}`);
      const released = await cp.admin.get<{ spec: { holderIdentity?: string } }>('/apis/coordination.k8s.io/v1/namespaces/purelb/leases/example');
      t.not(released.spec.holderIdentity, 'example-0', 'k8s-glue: and released the Lease on the way out');
    } finally {
      await cp.stop();
    }
  },
};

// The plain examples start at once, three at a time (most of their time is Node starting
// up); each subtest below waits for its own.
let running = 0;
const queued: (() => void)[] = [];
const limited = async <T>(fn: () => Promise<T>): Promise<T> => {
  if (running >= 3) await new Promise<void>((r) => queued.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    queued.shift()?.();
  }
};

for (const { lib, blocks } of examples) {
  for (const [i, block] of blocks.entries()) {
    const where = `packages/${lib}/README.md:${block.line} (${block.heading})`;
    if (block.notRun !== undefined) {
      t.test(`${where}: not run: ${block.notRun}`, async (t) => t.pass('skipped with a reason in the README'));
      continue;
    }
    const file = join(dir, `${lib}-${i + 1}.${block.lang === 'ts' ? 'ts' : 'mjs'}`);
    writeFileSync(file, block.code);
    const served = SERVED[`${lib}/${block.heading}`];
    const run = served ? undefined : limited(() => runNode(dir, file, EXAMPLE_TIMEOUT_MS));
    run?.catch(() => undefined); // reported by its subtest
    t.test(`${where} runs against the installed packages`, async (t) => {
      if (!run) return served?.(t, file);
      const got = await run;
      t.equal(got.signal, null, `${where}: finished within ${EXAMPLE_TIMEOUT_MS} ms`);
      t.equal(got.code, 0, `${where}: exits 0\n${got.stderr}`);
      t.same(missingOutput(got.stdout, statedOutput(block.code)), [], `${where}: prints what its comments say\n${got.stdout}`);
      t.comment(`${where}: ${got.ms} ms`);
    });
  }
}
