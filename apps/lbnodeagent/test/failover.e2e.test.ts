// Failover in the lab: the announcing agent killed, its node's LAN cut, a graceful stop,
// and the gossip path blocked on every node. Each time: another node answers, and never
// two at once.
import t from 'tap';
import { type DaemonProcess, startAgent, withLab } from '@purelb/lab';
import { addressesOf, annotations, answeredBy, startCluster, waitForHolders } from './e2e-helpers.ts';

const lab = await withLab(t, { nodes: 3 });
const cluster = await startCluster(lab, t);
const macs = await lab.nodeMacs();
const nodeOf = (name: string) => lab.nodes.find((n) => n.name === name)!;

/** Restarts the agent of a node (after a kill or a stop) and waits until it runs. */
async function restart(node: string): Promise<DaemonProcess> {
  const p = await startAgent(lab.controlPlane, nodeOf(node));
  cluster.agents.set(node, p);
  return p;
}

t.test('the announcing agent killed with -9: another node answers, and the client hears its GARP', async (t) => {
  await lab.createDemoService('kill');
  const [a] = await addressesOf(lab, 'kill', 1);
  const [before] = await waitForHolders(lab, a!, (x) => x.length === 1, 'one holder');
  t.equal(await answeredBy(lab, a!), before!.node);
  const watch = lab.watchGratuitousArp(a!, 20_000);
  t.teardown(() => watch.stop());
  await watch.ready;
  // Who answers ARP for the address, every 20 ms, from before the kill until only the new
  // holder has it: never two MACs for one request.
  const arp = lab.watchArp(a!);
  t.teardown(() => arp.stop());
  await arp.ready;
  await arp.waitFor(`${before!.node} answering`, (s) => s.macs.join() === macs.get(before!.node), 5_000);
  const victim = cluster.agents.get(before!.node)!;
  victim.child.kill('SIGKILL');
  await victim.exited();
  const t0 = Date.now();
  const next = await answeredBy(lab, a!, 10_000).then(async (n) => (n === before!.node ? await waitForOther(a!, before!.node) : n));
  const ms = Date.now() - t0;
  t.not(next, before!.node, `${next} answers now (${ms} ms after the kill)`);
  const heard = await waitForGarp(watch, macs.get(next)!);
  t.ok(heard, `the client heard a gratuitous ARP from ${next}`);
  t.equal((await annotations(lab, 'kill'))['purelb.io/announcing-IPv4'], `${next},eth0`, 'the new winner announces');
  // Another node answering means the killed agent's address is gone already (it expired
  // by its lifetime before anyone took over): one holder now, and it stays so.
  const single = await waitForHolders(lab, a!, (x) => x.length === 1 && x[0] === next, 'only the new holder', 5_000).then(() => true, () => false);
  await new Promise((r) => setTimeout(r, 1000));
  await arp.stop();
  const first = arp.duplicateSamples()[0];
  t.equal(arp.duplicateSampleCount(), 0, `at most one MAC ever answered (${arp.sampleCount()} samples${first ? `; two MACs first ${Math.round(first.atMs - t0)} ms after the kill` : ''})`);
  t.ok(single, `only ${next} holds the address`);
  t.same(await lab.arpWhoHas(a!), [macs.get(next)], 'one MAC answers');
  await restart(before!.node);
});

async function waitForOther(address: string, not: string): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const [r] = await lab.probe(lab.network.clientNetns, [`http://${address}/`], 500);
    if (r?.ok && r.body !== not) return r.body;
    await new Promise((res) => setTimeout(res, 25));
  }
  return not;
}

async function waitForGarp(watch: ReturnType<typeof lab.watchGratuitousArp>, mac: string): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (watch.heard().some((h) => h.mac === mac)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

t.test('the announcer\'s LAN link cut: another node answers', async (t) => {
  await lab.createDemoService('cut');
  const [a] = await addressesOf(lab, 'cut', 1);
  const [before] = await waitForHolders(lab, a!, (x) => x.length === 1, 'one holder');
  await lab.setLinkUp(nodeOf(before!.node), false);
  t.teardown(() => lab.setLinkUp(nodeOf(before!.node), true));
  const next = await waitForOther(a!, before!.node);
  t.not(next, before!.node, `${next} answers with ${before!.node}'s link down`);
  await lab.setLinkUp(nodeOf(before!.node), true);
  // Back on the LAN, the node rejoins the membership at SWIM's next full sync (up to tens
  // of seconds) and may then win the address again. Throughout: never two holders, never
  // two MACs answering ARP, and the address keeps answering.
  let mostHolders = 0;
  let mostMacs = 0;
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    mostHolders = Math.max(mostHolders, (await lab.holders(a!)).length);
    mostMacs = Math.max(mostMacs, (await lab.arpWhoHas(a!, 200)).length);
  }
  t.ok(mostHolders <= 1, `never two holders after the link came back (max ${mostHolders})`);
  t.ok(mostMacs <= 1, `never two MACs answering ARP (max ${mostMacs})`);
  t.ok(await answeredBy(lab, a!), 'the address answers');
});

t.test('a graceful stop hands over', async (t) => {
  await lab.createDemoService('graceful');
  const [a] = await addressesOf(lab, 'graceful', 1);
  const [before] = await waitForHolders(lab, a!, (x) => x.length === 1, 'one holder');
  const agent = cluster.agents.get(before!.node)!;
  const t0 = Date.now();
  await agent.stop();
  const after = await waitForHolders(lab, a!, (x) => x.length === 1 && x[0] !== before!.node, 'another holder', 5_000);
  t.ok(Date.now() - t0 < 5_000, `handed over in ${Date.now() - t0} ms`);
  t.equal(await answeredBy(lab, a!), after[0]!.node);
  t.same(await lab.holders(a!).then((h) => h.filter((x) => x.node === before!.node)), [], 'the stopped node withdrew the address');
  await restart(before!.node);
});

t.test('gossip blocked between every node: still exactly one node answers ARP', async (t) => {
  await lab.createDemoService('blocked');
  const [a] = await addressesOf(lab, 'blocked', 1);
  await waitForHolders(lab, a!, (x) => x.length === 1, 'one holder');
  await lab.setNodeToNodeBlocked(lab.nodes, true);
  t.teardown(() => lab.setNodeToNodeBlocked(lab.nodes, false));
  // Every agent loses gossip, learns from the Leases that the others did too, and all
  // elect over the same Lease view. Sample for a while: never two holders, and one at the end.
  let most = 0;
  const deadline = Date.now() + 8_000;
  while (Date.now() < deadline) {
    most = Math.max(most, (await lab.holders(a!)).length);
    await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(most <= 1, `never more than one holder while blocked (max ${most})`);
  const [h] = await waitForHolders(lab, a!, (x) => x.length === 1, 'one holder while blocked', 15_000);
  t.same(await lab.arpWhoHas(a!), [macs.get(h!.node)], 'exactly one MAC answers ARP');
  t.equal(await answeredBy(lab, a!), h!.node);
});
