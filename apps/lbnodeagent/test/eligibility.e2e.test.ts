// Which nodes may announce, in the lab: a node labelled
// node.kubernetes.io/exclude-from-external-load-balancers, or whose NetworkUnavailable
// condition is True, gives its local address to another node (it withdraws first: never
// two MACs answering) and removes its virtual addresses; without the label or the
// condition it is eligible again.
import t from 'tap';
import { type Lab, withLab } from '@purelb/lab';
import { addressesOf, answeredBy, startCluster, waitForHolders } from './e2e-helpers.ts';
import { EXCLUDE_LABEL } from '@purelb/api';

const lab: Lab = await withLab(t, { nodes: 3 });
const cluster = await startCluster(lab, t);
const macs = await lab.nodeMacs();
const admin = lab.controlPlane.admin;
const all = lab.nodes.map((n) => n.name).sort();

/** The agent's purelb_node_excluded gauge for one reason on one node. */
async function excludedGauge(node: string, reason: string): Promise<string | undefined> {
  const n = lab.nodes.find((x) => x.name === node)!;
  const [r] = await lab.probe(n.netns, [`http://127.0.0.1:${cluster.agents.get(node)!.metricsPort}/metrics`], 2000);
  return new RegExp(`^purelb_node_excluded\\{reason="${reason}"\\} (\\S+)$`, 'm').exec(r?.body ?? '')?.[1];
}

async function waitGauge(node: string, reason: string, want: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await excludedGauge(node, reason)) === want) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${node}: purelb_node_excluded{reason="${reason}"} never became ${want} (now ${await excludedGauge(node, reason)})`);
}

const setLabel = (node: string, on: boolean): Promise<unknown> => admin.mergePatch(`/api/v1/nodes/${node}`, { metadata: { labels: { [EXCLUDE_LABEL]: on ? '' : null } } });
const setNetworkUnavailable = (node: string, on: boolean): Promise<unknown> =>
  admin.mergePatch(`/api/v1/nodes/${node}/status`, { status: { conditions: [{ type: 'NetworkUnavailable', status: on ? 'True' : 'False', reason: 'PureLBTest', message: 'set by the eligibility test', lastTransitionTime: new Date().toISOString() }] } });

t.test('exclusion label and NetworkUnavailable: the address moves, break before make; virtual addresses leave; eligible again after', async (t) => {
  // Whatever happens, no node is left excluded for the suites that share nothing with this
  // one but the lab's teardown.
  t.teardown(async () => {
    for (const n of all) {
      await setLabel(n, false).catch(() => undefined);
      await setNetworkUnavailable(n, false).catch(() => undefined);
    }
  });
  await lab.createDemoService('excl');
  await lab.createDemoService('excl-virt', { annotations: { 'purelb.io/service-group': 'virtual' } });
  const [a] = await addressesOf(lab, 'excl', 1);
  const [v] = await addressesOf(lab, 'excl-virt', 1);
  const [first] = await waitForHolders(lab, a!, (x) => x.length === 1, 'one holder');
  await waitForHolders(lab, v!, (x) => x.join() === all.join(), 'the virtual address on every node');
  for (const n of all) t.equal(await excludedGauge(n, 'ExcludedByLabel'), '0', `${n}: not excluded at the start`);

  const arp = lab.watchArp(a!);
  t.teardown(() => arp.stop());
  await arp.ready;
  await arp.waitFor(`${first!.node} answering`, (s) => s.macs.join() === macs.get(first!.node), 5_000);
  const t0 = Date.now();

  // 1. The label on the holder's Node: another node takes the address; the virtual one leaves the labelled node.
  await setLabel(first!.node, true);
  const [second] = await waitForHolders(lab, a!, (x) => x.length === 1 && x[0] !== first!.node, 'another holder after the label', 10_000);
  t.not(second!.node, first!.node, `${second!.node} holds ${a} after ${first!.node} was labelled (${Date.now() - t0} ms)`);
  t.equal(await answeredBy(lab, a!), second!.node, 'the new holder answers HTTP');
  await waitForHolders(lab, v!, (x) => x.join() === all.filter((n) => n !== first!.node).join(), `the virtual address gone from ${first!.node} only`);
  await waitGauge(first!.node, 'ExcludedByLabel', '1');
  t.pass(`${first!.node} reports ExcludedByLabel`);
  // While labelled, a new Service's local address never goes to it.
  await lab.createDemoService('excl-new');
  const [b] = await addressesOf(lab, 'excl-new', 1);
  const [bHolder] = await waitForHolders(lab, b!, (x) => x.length === 1, 'one holder of the new address');
  t.not(bHolder!.node, first!.node, 'a new address does not go to the labelled node');

  // 2. Label removed: the node is eligible again (gauge 0, the virtual address back); the local address stays where it is.
  await setLabel(first!.node, false);
  await waitGauge(first!.node, 'ExcludedByLabel', '0');
  await waitForHolders(lab, v!, (x) => x.join() === all.join(), 'the virtual address back on every node');
  t.same((await lab.holders(a!)).map((h) => h.node), [second!.node], 'the local address stays with its holder (no move back)');

  // 3. NetworkUnavailable=True on the holder: the address moves again; cleared: eligible.
  await setNetworkUnavailable(second!.node, true);
  const [third] = await waitForHolders(lab, a!, (x) => x.length === 1 && x[0] !== second!.node, 'another holder after NetworkUnavailable', 10_000);
  t.not(third!.node, second!.node, `${third!.node} holds ${a} after ${second!.node} lost its network`);
  await waitForHolders(lab, v!, (x) => x.join() === all.filter((n) => n !== second!.node).join(), `the virtual address gone from ${second!.node} only`);
  await waitGauge(second!.node, 'NetworkUnavailable', '1');
  t.equal(await answeredBy(lab, a!), third!.node, 'the third holder answers HTTP');
  await setNetworkUnavailable(second!.node, false);
  await waitGauge(second!.node, 'NetworkUnavailable', '0');
  await waitForHolders(lab, v!, (x) => x.join() === all.join(), 'the virtual address back on every node');

  await new Promise((r) => setTimeout(r, 500));
  await arp.stop();
  const dup = arp.duplicateSamples()[0];
  t.ok(arp.sampleCount() > 50, `the ARP watch sampled throughout (${arp.sampleCount()} samples)`);
  t.equal(arp.duplicateSampleCount(), 0, `never two MACs answering ${a}${dup ? ` (first ${Math.round(dup.atMs - t0)} ms after the first label)` : ''}`);
  const gaps = arp.unavailability().filter((g) => g.fromMs >= t0);
  const longest = Math.max(0, ...gaps.map((g) => g.durationMs));
  t.ok(longest < 5_000, `each handover left ${a} unanswered for less than 5 s (longest ${longest} ms)`);
  t.same(await lab.arpWhoHas(a!), [macs.get(third!.node)], 'one MAC answers at the end');
});
