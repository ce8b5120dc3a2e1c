// Which nodes announce, in the lab (one lab, three nodes, real API server, netlink and
// gossip): a ServiceGroup's spec.local.nodeSelector, and what a drain does to a holder.
// - nodeSelector matching no node: nobody holds the group's addresses, and the agents say
//   so (purelb_servicegroup_selected_nodes 0); matching one node: the local address goes
//   to it (not to the node the hash would pick) and the virtual one to its kube-lb0 only;
//   relabelled to another node: both move, never two MACs answering.
// - cordon (spec.unschedulable): nothing moves.
// - the agent's Pod deleted as a drain does (SIGTERM, with a grace period): the holder
//   removes the address from its NIC before the process exits, another node takes it,
//   never two MACs answering, and the address answers again.
import t from 'tap';
import { once } from 'node:events';
import { AddressMonitor, type Lab, PURELB_NAMESPACE, monotonicMs, startAgent, withLab } from '@purelb/lab';
import { winner } from '@purelb/election';
import { addressesOf, answeredBy, startCluster, waitForHolders } from './e2e-helpers.ts';

const lab: Lab = await withLab(t, { nodes: 3 });
const cluster = await startCluster(lab, t);
const macs = await lab.nodeMacs();
const admin = lab.controlPlane.admin;
const all = lab.nodes.map((n) => n.name).sort();
const EDGE = 'purelb.io/e2e-edge';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** How many times the node's agent logged that it withdrew `address` since `sinceMs` (wall clock). */
const withdrewSince = (node: string, address: string, sinceMs: number): number =>
  cluster.agents
    .get(node)!
    .tail(5000)
    .split('\n')
    .filter((l) => l.includes('"withdrew"') && l.includes(`"address":"${address}"`) && (JSON.parse(l) as { time: number }).time >= sinceMs).length;
/** How many "event loop stalled" lines the node's agent logged since `sinceMs` (wall clock, from its log tail). */
const stallsSince = (node: string, sinceMs: number): number =>
  cluster.agents.get(node)!.tail(5000).split('\n').filter((l) => l.includes('event loop stalled') && (JSON.parse(l) as { time: number }).time >= sinceMs).length;

const setEdge = (node: string, on: boolean): Promise<unknown> => admin.mergePatch(`/api/v1/nodes/${node}`, { metadata: { labels: { [EDGE]: on ? 'yes' : null } } });

/** The agent's purelb_servicegroup_selected_nodes for a group, on one node. */
async function selectedGauge(node: string, group: string): Promise<string | undefined> {
  const n = lab.nodes.find((x) => x.name === node)!;
  // A probe that fails (a loaded machine) reads as "not yet": the caller asks again.
  const [r] = await lab.probe(n.netns, [`http://127.0.0.1:${cluster.agents.get(node)!.metricsPort}/metrics`], 2000).catch(() => []);
  return new RegExp(`^purelb_servicegroup_selected_nodes\\{group="${group}"\\} (\\S+)$`, 'm').exec(r?.body ?? '')?.[1];
}

/** Waits until one node's agent reports `want` for the group (one probe process per try: they are costly on a loaded machine). */
async function waitGauge(node: string, group: string, want: string): Promise<void> {
  let got: string | undefined;
  for (let i = 0, deadline = Date.now() + 60_000; i < 600 && Date.now() < deadline; i++) {
    got = await selectedGauge(node, group);
    if (got === want) return;
    await sleep(100);
  }
  throw new Error(`${node}: purelb_servicegroup_selected_nodes{group="${group}"} never became ${want} (last: ${got})`);
}

/** Waits until every agent has logged that the group's selector matches no eligible node. */
async function waitNoMatchLogged(group: string): Promise<void> {
  const logged = (node: string): boolean =>
    cluster.agents
      .get(node)!
      .tail(5000)
      .split('\n')
      .some((l) => l.includes('node selector matches no eligible node') && l.includes(`"group":"${group}"`));
  for (let deadline = Date.now() + 30_000; Date.now() < deadline; ) {
    if (all.every(logged)) return;
    await sleep(100);
  }
  throw new Error(`not every agent logged that ${group}'s node selector matches no eligible node (${all.filter(logged).join(', ') || 'none'} did)`);
}

t.test('nodeSelector: no match, then one node (local and virtual), then relabelled to another: break before make', async (t) => {
  t.teardown(async () => {
    for (const n of all) await setEdge(n, false).catch(() => undefined);
  });
  const nodeSelector = { matchLabels: { [EDGE]: 'yes' } };
  for (const [name, pool] of [
    ['edge', { pool: '192.0.2.240-192.0.2.243', subnet: '192.0.2.0/24' }],
    ['edge-virtual', { pool: '203.0.113.64/30', subnet: '203.0.113.0/24', aggregation: '/32' }],
  ] as const) {
    await admin.apply(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups/${name}`, {
      apiVersion: 'purelb.io/v1',
      kind: 'ServiceGroup',
      metadata: { name, namespace: PURELB_NAMESPACE },
      spec: { local: { v4pools: [pool], nodeSelector } },
    });
  }
  await lab.createDemoService('edge', { annotations: { 'purelb.io/service-group': 'edge' } });
  await lab.createDemoService('edge-virt', { annotations: { 'purelb.io/service-group': 'edge-virtual' } });
  const [a] = await addressesOf(lab, 'edge', 1);
  const [v] = await addressesOf(lab, 'edge-virt', 1);

  // 1. No node labelled: nobody announces either address, and every agent says so (a log
  // line each; the gauge, read on one node).
  await waitNoMatchLogged('edge');
  await waitNoMatchLogged('edge-virtual');
  t.pass('every agent logged that no eligible node matches either group');
  await waitGauge(all[0]!, 'edge', '0');
  await waitGauge(all[0]!, 'edge-virtual', '0');
  t.pass(`${all[0]} reports purelb_servicegroup_selected_nodes 0 for both groups`);
  await sleep(1500);
  t.same(await lab.holders(a!), [], `${a}: held by no node while the selector matches none`);
  t.same(await lab.holders(v!), [], `${v}: on no kube-lb0 while the selector matches none`);
  t.same(await lab.arpWhoHas(a!), [], 'and nothing answers ARP for it');

  // 2. One node labelled, not the one the hash picks among all three: the local address
  // goes to it all the same, the virtual one only to its kube-lb0.
  const hashWinner = winner(a!, all.map((name) => ({ name, subnets: ['192.0.2.0/24'] })))!;
  const [first, second] = all.filter((n) => n !== hashWinner) as [string, string];
  await setEdge(first, true);
  const [h] = await waitForHolders(lab, a!, (x) => x.join() === first, `on ${first} only`, 10_000);
  t.equal(h!.link, 'eth0', `${a} on ${first}'s LAN interface (the hash alone would pick ${hashWinner})`);
  const hv = await waitForHolders(lab, v!, (x) => x.join() === first, `${v} on ${first} only`, 10_000);
  t.same(hv.map((x) => x.link), ['kube-lb0'], `${v} on ${first}'s kube-lb0 only`);
  t.equal(await answeredBy(lab, a!, 30_000), first, `${a} answers from ${first}`);
  await waitGauge(second, 'edge', '1');
  t.pass(`${second} reports one selected node for the group`);
  await sleep(1000);
  t.same((await lab.holders(a!)).map((x) => x.node), [first], 'and it stays there');

  // 3. Relabel: the label moves from the holder to another node; the address follows,
  // the old holder withdraws before the new one adds (ARP sampled throughout).
  const arp = lab.watchArp(a!);
  t.teardown(() => arp.stop());
  await arp.ready;
  await arp.waitFor(`${first} answering`, (s) => s.macs.join() === macs.get(first), 15_000);
  const t0 = Date.now();
  await setEdge(second, true);
  await setEdge(first, false);
  await waitForHolders(lab, a!, (x) => x.join() === second, `moved to ${second}`, 10_000);
  const moveMs = Date.now() - t0;
  await waitForHolders(lab, v!, (x) => x.join() === second, `${v} moved to ${second}'s kube-lb0`, 10_000);
  t.equal(await answeredBy(lab, a!, 30_000), second, `${a} answers from ${second} (moved in ${moveMs} ms)`);
  await sleep(500);
  await arp.stop();
  const dup = arp.duplicateSamples()[0];
  t.ok(arp.sampleCount() > 50, `the ARP watch sampled throughout (${arp.sampleCount()} samples)`);
  t.equal(arp.duplicateSampleCount(), 0, `never two MACs answering ${a}${dup ? ` (first ${Math.round(dup.atMs - t0)} ms after the relabel)` : ''}`);
  const longest = Math.max(0, ...arp.unavailability().filter((g) => g.fromMs >= t0).map((g) => g.durationMs));
  t.ok(longest < 5_000, `the move left ${a} unanswered for less than 5 s (longest ${longest} ms)`);
  t.same(await lab.arpWhoHas(a!), [macs.get(second)], 'one MAC answers at the end');
});

t.test('cordon (spec.unschedulable): the local address stays on its holder', async (t) => {
  await lab.createDemoService('cordon');
  const [a] = await addressesOf(lab, 'cordon', 1);
  const [h] = await waitForHolders(lab, a!, (x) => x.length === 1, 'one holder');
  const holder = h!.node;
  t.teardown(() => admin.mergePatch(`/api/v1/nodes/${holder}`, { spec: { unschedulable: null } }).catch(() => undefined));
  const arp = lab.watchArp(a!);
  t.teardown(() => arp.stop());
  await arp.ready;
  await arp.waitFor(`${holder} answering`, (s) => s.macs.join() === macs.get(holder), 15_000);
  const t0 = Date.now();
  await admin.mergePatch(`/api/v1/nodes/${holder}`, { spec: { unschedulable: true } });
  // Several seconds: longer than a pass, a Lease renewal and many address refreshes.
  let elsewhere = 0;
  let absent = 0;
  let samples = 0;
  for (let deadline = Date.now() + 5_000; Date.now() < deadline; samples++) {
    const h = (await lab.holders(a!)).map((x) => x.node);
    if (h.some((n) => n !== holder)) elsewhere++;
    if (!h.includes(holder)) absent++;
    await sleep(100);
  }
  await arp.stop();
  const stalls = stallsSince(holder, t0);
  t.equal(elsewhere, 0, `no other node held ${a} in ${samples} samples over ${Date.now() - t0} ms after the cordon`);
  const others = arp.samples().filter((s) => s.atMs >= t0 && s.macs.some((m) => m !== macs.get(holder))).length;
  t.equal(others, 0, `no other MAC answered (${arp.sampleCount()} ARP samples)`);
  // The cordon makes the holder withdraw nothing (it would log "withdrew" for the
  // address). On a loaded machine the address may still drop for a moment by itself: a
  // stall (logged), or a renewal that came after its lifetime ran out, which the agent
  // repairs at once; those are reported here, and are not the cordon's doing.
  const withdrawals = withdrewSince(holder, a!, t0);
  const longest = Math.max(0, ...arp.unavailability().filter((g) => g.fromMs >= t0).map((g) => g.durationMs));
  // A stall withdraws too (and is logged): only then may a withdrawal show here.
  t.ok(withdrawals === 0 || stalls > 0, `${holder} withdrew nothing after the cordon but for stalls (${withdrawals} withdrawals, ${stalls} stalls logged; ${a} absent in ${absent} of ${samples} samples, longest ARP gap ${longest} ms)`);
  // At the end it is on the holder (after a stall, once contact is fresh again: stickiness).
  t.same((await waitForHolders(lab, a!, (x) => x.length > 0, 'a holder', 10_000)).map((x) => x.node), [holder], `${holder} holds ${a} at the end`);
  t.equal(await answeredBy(lab, a!, 30_000), holder, `${a} answers from ${holder}`);
});

t.test('the agent Pod deleted as a drain does (SIGTERM, grace period): the holder withdraws before it exits, another node takes over', async (t) => {
  await lab.createDemoService('drain');
  const [a] = await addressesOf(lab, 'drain', 1);
  const [h] = await waitForHolders(lab, a!, (x) => x.length === 1, 'one holder');
  const holder = h!.node;
  const monitor = new AddressMonitor();
  monitor.start(lab.nodes);
  t.teardown(() => monitor.stop());
  const arp = lab.watchArp(a!);
  t.teardown(() => arp.stop());
  await arp.ready;
  await arp.waitFor(`${holder} answering`, (s) => s.macs.join() === macs.get(holder), 15_000);
  const agent = cluster.agents.get(holder)!;
  // The monitor sees events only from its start: wait until it has seen the holder's
  // address (renewed every quarter of its lifetime), so that "gone from the holder" is a
  // deletion it saw, not an address it never knew of.
  await monitor.when(a!, (x) => x.join() === holder, 10_000, `the monitor to see ${a} on ${holder}`);
  const gone = monitor.when(a!, (x) => !x.includes(holder), 15_000, `${a} removed from ${holder}`);
  const taken = monitor.when(a!, (x) => x.length === 1 && x[0] !== holder, 15_000, `${a} added on another node`);
  const exited = once(agent.child, 'exit').then(() => monotonicMs());
  const t0 = monotonicMs();
  // What the kubelet does when a drain evicts the Pod: SIGTERM, then SIGKILL after the grace period (30 s by default).
  agent.child.kill('SIGTERM');
  const killer = setTimeout(() => agent.child.kill('SIGKILL'), 30_000);
  const [goneAt, exitAt] = await Promise.all([gone, exited]);
  clearTimeout(killer);
  const takenAt = await taken;
  t.equal(agent.child.exitCode, 0, `the agent exited by itself (code ${agent.child.exitCode}, signal ${agent.child.signalCode})`);
  t.ok(goneAt < exitAt, `${a} left ${holder}'s NIC ${Math.round(goneAt - t0)} ms after SIGTERM, before the process exited (${Math.round(exitAt - t0)} ms)`);
  t.ok(takenAt >= goneAt, `another node added it after (${Math.round(takenAt - t0)} ms), never before`);
  const [next] = await waitForHolders(lab, a!, (x) => x.length === 1 && x[0] !== holder, 'one other holder', 10_000);
  t.equal(await answeredBy(lab, a!, 30_000), next!.node, `${a} answers from ${next!.node}`);
  await sleep(500);
  await arp.stop();
  t.equal(arp.duplicateSampleCount(), 0, `never two MACs answering ${a} (${arp.sampleCount()} samples)`);
  const longest = Math.max(0, ...arp.unavailability().map((g) => g.durationMs));
  t.ok(longest < 5_000, `the handover left ${a} unanswered for less than 5 s (longest ${longest} ms)`);
  cluster.agents.set(holder, await startAgent(lab.controlPlane, lab.nodes.find((n) => n.name === holder)!));
});
