// tools/bundle.ts: a bundle runs on its own, away from the repository's node_modules,
// and native addons travel next to it.
import { copyFileSync, cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { APP_BUNDLES, bundleApp, nodeFlagsOf } from '../../../tools/bundle.ts';
import { runTool } from '../../../tools/manifest.ts';
import { REPO_ROOT, tempDir } from './helpers.ts';

t.test('the allocator bundle is one file that runs outside the repository', async (t) => {
  const r = await bundleApp('allocator');
  t.equal(r.outfile, join(REPO_ROOT, APP_BUNDLES.allocator.outfile));
  t.same(r.copied, [], 'nothing to copy next to it');
  t.ok(r.inlined.includes('yaml') && r.inlined.includes('ipaddr.js'), 'npm dependencies of the workspace packages are inlined');
  t.ok(r.bytes > 100_000 && r.bytes < 5_000_000, `a sane size (${r.bytes} bytes)`);
  const text = readFileSync(r.outfile, 'utf8');
  t.notMatch(text, /^import .* from ["'](?!node:)[^"']+["'];?$/m, 'no import of anything but Node built-ins');
  // No node_modules anywhere above this directory: only the file itself can resolve.
  const dir = tempDir(t, 'plb-bundle-');
  t.notOk(existsSync('/node_modules') || existsSync(join(dir, '..', 'node_modules')), 'the temp dir has no node_modules above it');
  copyFileSync(r.outfile, join(dir, 'allocator.mjs'));
  const help = await runTool(process.execPath, [join(dir, 'allocator.mjs'), '--help'], { timeoutMs: 20_000 });
  t.match(help, /--kubeconfig/);
  t.match(help, /--lease-name/);
  const bad = await runTool(process.execPath, [join(dir, 'allocator.mjs'), '--lease-duration=soon'], { timeoutMs: 20_000 }).then(
    () => '',
    (e: Error) => e.message,
  );
  t.match(bad, /exit 2[\s\S]*lease-duration/, 'flag errors exit 2 naming the flag');
});

t.test('a native addon is left external and copied, with its dependencies, next to the bundle', async (t) => {
  const work = tempDir(t, 'plb-bundle-native-');
  const r = await bundleApp('native-fixture', { entry: 'charts/purelb/test/fixtures/native-entry.ts', outfile: join(work, 'dist', 'fixture.mjs'), external: ['koffi'] });
  t.same(r.copied.map((c) => c.name), ['koffi']);
  t.ok(r.inlined.includes('yaml'), 'the pure-JS dependency is inlined');
  const report = JSON.parse(readFileSync(join(work, 'dist', 'fixture.bundle.json'), 'utf8')) as { copy: { name: string; path: string }[] };
  t.same(report.copy.map((c) => c.path), ['node_modules/koffi'], 'the report lists what was copied');
  // Move the bundle and its node_modules elsewhere, as the Dockerfile does.
  const app = tempDir(t, 'plb-bundle-app-');
  copyFileSync(r.outfile, join(app, 'fixture.mjs'));
  cpSync(join(work, 'dist', 'node_modules'), join(app, 'node_modules'), { recursive: true });
  const out = parse(await runTool(process.execPath, [join(app, 'fixture.mjs')], { timeoutMs: 20_000 })) as { pid: number; koffi: string };
  t.ok(Number.isInteger(out.pid) && out.pid > 1, `the addon loaded and called libc (getpid = ${out.pid})`);
  t.ok(out.koffi.startsWith(join(app, 'node_modules', 'koffi')), `koffi came from next to the bundle (${out.koffi})`);
  const size = Number((await runTool('du', ['-sb', join(app, 'node_modules')])).split('\t')[0]);
  t.ok(size < 20_000_000, `other platforms' binaries and sources are pruned (${(size / 1e6).toFixed(1)} MB copied)`);
});

t.test('the agent bundle is declared with koffi and netlink external', async (t) => {
  t.same([...APP_BUNDLES.lbnodeagent.external].sort(), ['koffi', 'netlink']);
  t.equal(APP_BUNDLES.lbnodeagent.outfile, 'apps/lbnodeagent/dist/lbnodeagent.mjs');
  const err = await bundleApp('nope').then(
    () => '',
    (e: Error) => e.message,
  );
  t.match(err, /unknown app "nope"/);
});

t.test('each image runs its bundle with the Node flags written in the app\'s package.json', async (t) => {
  for (const app of Object.keys(APP_BUNDLES)) {
    const flags = nodeFlagsOf(app);
    t.ok(flags.length > 0, `${app}: purelb.nodeFlags is set`);
    const dockerfile = readFileSync(join(REPO_ROOT, 'apps', app, 'Dockerfile'), 'utf8');
    const m = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile);
    t.ok(m, `${app}: the Dockerfile has an exec-form ENTRYPOINT`);
    t.same(JSON.parse(m?.[1] ?? '[]'), ['/nodejs/bin/node', ...flags, `/app/${app}.mjs`], `${app}: ENTRYPOINT is node, the flags, the bundle`);
    // Node refuses unknown flags at start: run it with them for real.
    // execArgv also holds -e and its script, so compare the whole list.
    const script = 'console.log(JSON.stringify(process.execArgv))';
    const out = await runTool(process.execPath, [...flags, '-e', script], { timeoutMs: 20_000 });
    t.same(JSON.parse(out), [...flags, '-e', script], `${app}: this Node accepts the flags`);
  }
  const report = JSON.parse(readFileSync(join(REPO_ROOT, 'apps', 'allocator', 'dist', 'allocator.bundle.json'), 'utf8')) as { nodeFlags: string[] };
  t.same(report.nodeFlags, nodeFlagsOf('allocator'), 'the bundle report carries the flags');
});
