// The daemons as their images run them: the bundles tools/bundle.ts makes, started with the
// Node flags of the Dockerfiles' ENTRYPOINT (from the apps' package.json), in the lab.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { run, shippedCommand, withLab } from '@purelb/lab';
import { addressesOf, answeredBy, startCluster, waitForHolders } from './e2e-helpers.ts';

const repoRoot = join(import.meta.dirname, '..', '..', '..');
await run(process.execPath, [join(repoRoot, 'tools', 'bundle.ts'), 'allocator', 'lbnodeagent'], { timeoutMs: 300_000 });
const lab = await withLab(t, { nodes: 2 });
const cluster = await startCluster(lab, t, { shipped: true });

/** The node process's command line (an agent is started through `ip netns exec`, which execs node in place). */
function commandLine(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
}

t.test('each daemon runs its bundle with the image\'s Node flags', async (t) => {
  for (const [app, p] of [['allocator', cluster.allocator], ...[...cluster.agents.values()].map((a) => ['lbnodeagent', a] as const)] as const) {
    const expected = shippedCommand(app);
    t.ok(expected.length >= 2 && expected.at(-1)!.endsWith(`${app}.mjs`), `${app}: flags then the bundle (${expected.join(' ')})`);
    const argv = commandLine(p.pid!);
    t.same(argv.slice(1, 1 + expected.length), expected, `${app} (pid ${p.pid}) runs node ${expected.map((a) => a.replace(`${repoRoot}/`, '')).join(' ')}`);
  }
});

t.test('a local and a virtual address answer from the shipped daemons', async (t) => {
  await lab.createDemoService('web');
  const [a] = await addressesOf(lab, 'web', 1);
  const [h] = await waitForHolders(lab, a!, (x) => x.length === 1, 'one holder');
  t.equal(await answeredBy(lab, a!), h!.node, 'the local address answers from its holder');
  await lab.createDemoService('virt', { families: ['IPv4'], annotations: { 'purelb.io/service-group': 'virtual' } });
  const [v] = await addressesOf(lab, 'virt', 1);
  const hv = await waitForHolders(lab, v!, (x) => x.length === lab.nodes.length, 'every node');
  t.same([...new Set(hv.map((x) => x.link))], ['kube-lb0'], 'on the virtual interface of every node');
});

t.test('SIGTERM: the holder withdraws and the other node takes the address over', async (t) => {
  const [a] = await addressesOf(lab, 'web', 1);
  const [h] = await waitForHolders(lab, a!, (x) => x.length === 1, 'one holder');
  const holder = cluster.agents.get(h!.node)!;
  await holder.stop(10_000);
  const [next] = await waitForHolders(lab, a!, (x) => x.length === 1 && x[0] !== h!.node, 'the other node', 15_000);
  t.not(next!.node, h!.node);
  t.equal(await answeredBy(lab, a!), next!.node, 'it answers from the other node');
});
