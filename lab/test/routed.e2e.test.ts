// The routed lab, end to end: PureLB's virtual addresses reached by a client behind a
// real router (FRR), advertised by real BIRD 2 on every node over BGP with BFD, and a
// local address reached through that router after its node is lost. One lab for all.
import t from 'tap';
import {
  type DaemonProcess,
  HttpProber,
  ROUTED,
  applyRoutedServiceGroup,
  installPureLB,
  monotonicMs,
  startAgent,
  startAllocator,
  waitFor,
  withLab,
} from '../src/index.ts';

const lab = await withLab(t, { nodes: 3, routed: true });
const routed = lab.routed!;
const admin = lab.controlPlane.admin;
await installPureLB(admin, { sendgarp: true });
await applyRoutedServiceGroup(admin);
const daemons: DaemonProcess[] = [];
t.teardown(async () => {
  for (const d of daemons.reverse()) await d.stop(3000);
});
daemons.push(await startAllocator(lab.controlPlane, { identity: 'allocator' }));
for (const n of lab.nodes) daemons.push(await startAgent(lab.controlPlane, n));
const macs = await lab.nodeMacs();
const prober = new HttpProber(routed.clientNetns);
t.teardown(() => prober.stop());
await prober.ready;

const ROUTED_GROUP = { 'purelb.io/service-group': ROUTED.serviceGroup };
const ALL = lab.nodes.map((n) => n.name);
/** Nodes whose link a test cut (their BFD sessions went down on purpose). */
const cut = new Set<string>();
const same = (want: readonly string[]) => (got: readonly string[]) => got.join() === [...want].sort().join();

async function addresses(name: string, count: number): Promise<string[]> {
  return waitFor(`${name} to get ${count} address(es)`, async () => {
    const s = await admin.get<{ status?: { loadBalancer?: { ingress?: { ip: string }[] } } }>(`/api/v1/namespaces/default/services/${name}`);
    const ips = (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
    return ips.length === count ? ips : undefined;
  }, 20_000, 25);
}

/** Waits until every node's BGP sessions are up again (after a link came back). */
async function allSessionsUp(): Promise<void> {
  await waitFor('every node\'s BGP sessions', async () => ((await routed.establishedNodes()).length === lab.nodes.length ? true : undefined), 30_000, 200);
}

t.test('a virtual address answers from the routed client, spread over the nodes (ECMP)', async (t) => {
  await lab.createDemoService('web', { families: ['IPv4', 'IPv6'], annotations: ROUTED_GROUP });
  const [v4, v6] = await addresses('web', 2);
  t.match(v4, /^203\.0\.113\./, 'an address of the routed pool');
  t.match(v6, /^2001:db8:1::/);
  for (const a of [v4!, v6!]) {
    const r = await routed.waitForPaths(a, same(ALL), 15_000, 'every node');
    t.same(r.nodes, ALL, `the router sends ${a} to every node`);
    t.match(await routed.birdc(lab.nodes[0]!, 'show route protocol purelb'), a, `node-1's BIRD carries ${a}`);
  }
  t.match(await routed.vtysh('show ip route 203.0.113.0/24 longer-prefixes'), new RegExp(`${v4!.replace(/\./g, '\\.')}/32[\\s\\S]*via 192\\.0\\.2\\.11[\\s\\S]*via 192\\.0\\.2\\.12[\\s\\S]*via 192\\.0\\.2\\.13`), 'FRR installed three equal-cost paths');
  for (const a of [v4!, v6!]) {
    const counts = await routed.spread(a, 150);
    const answered = [...counts].filter(([who]) => who !== 'failed');
    t.equal(counts.get('failed') ?? 0, 0, `every connection to ${a} was answered (${JSON.stringify(Object.fromEntries(counts))})`);
    t.ok(answered.length >= 2, `connections to ${a} from distinct source ports reached ${answered.length} nodes`);
    for (const [who] of answered) t.ok(ALL.includes(who), `${who} is a node`);
  }
});

t.test('externalTrafficPolicy Local: only nodes with a ready endpoint get traffic, and it follows the endpoint', async (t) => {
  await lab.createDemoService('local', { families: ['IPv4'], annotations: ROUTED_GROUP, externalTrafficPolicy: 'Local', endpointNodes: ['node-2'] });
  const [a] = await addresses('local', 1);
  t.same((await routed.waitForPaths(a!, same(['node-2']), 15_000, 'node-2 only')).nodes, ['node-2'], 'only node-2 is a path');
  let counts = await routed.spread(a!, 60);
  t.same(Object.fromEntries(counts), { 'node-2': 60 }, 'every connection reached node-2');
  await admin.mergePatch('/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/local-ipv4', {
    endpoints: [{ addresses: [lab.nodes[2]!.v4], nodeName: 'node-3', conditions: { ready: true, serving: true, terminating: false } }],
  });
  t.same((await routed.waitForPaths(a!, same(['node-3']), 15_000, 'node-3 only')).nodes, ['node-3'], 'the endpoint moved: only node-3 is a path');
  counts = await routed.spread(a!, 60);
  t.same(Object.fromEntries(counts), { 'node-3': 60 }, 'every connection reached node-3');
  await admin.delete('/api/v1/namespaces/default/services/local');
  await admin.delete('/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/local-ipv4');
});

t.test('a node lost: BFD withdraws its route and the address keeps answering from the others', async (t) => {
  const [a] = await addresses('web', 2);
  await routed.waitForPaths(a!, same(ALL), 15_000, 'every node');
  const lost = lab.nodes[0]!;
  cut.add(lost.name);
  const cutAt = monotonicMs();
  await lab.setLinkUp(lost, false);
  try {
    const r = await routed.waitForPaths(a!, (n) => !n.includes(lost.name) && n.length > 0, 10_000, `${lost.name} withdrawn`);
    const ms = monotonicMs() - cutAt;
    t.same(r.nodes, ['node-2', 'node-3'], `${lost.name}'s path withdrawn ${Math.round(ms)} ms after its link was cut`);
    // BFD: 3 x 200 ms; the bound leaves room for a loaded machine.
    t.ok(ms < 3000, `withdrawn within 3 s (${Math.round(ms)} ms)`);
    const counts = await routed.spread(a!, 60);
    t.equal(counts.get('failed') ?? 0, 0, `every connection answered (${JSON.stringify(Object.fromEntries(counts))})`);
    t.notOk(counts.has(lost.name), `none reached ${lost.name}`);
  } finally {
    await lab.setLinkUp(lost, true);
  }
  await allSessionsUp();
  t.same((await routed.waitForPaths(a!, same(ALL), 15_000, 'every node again')).nodes, ALL, 'the node is back in the route once its link returns');
});

t.test('a Service deleted: its route leaves the router', async (t) => {
  const [v4, v6] = await addresses('web', 2);
  await admin.delete('/api/v1/namespaces/default/services/web');
  for (const a of [v4!, v6!]) t.same((await routed.waitForPaths(a, (n) => n.length === 0, 15_000, 'no route')).nodes, [], `the router has no route to ${a}`);
  for (const n of lab.nodes) t.notMatch(await routed.birdc(n, 'show route protocol purelb'), v4!, `${n.name}'s BIRD no longer carries ${v4}`);
});

t.test('a local address seen from the routed client keeps answering after its node is lost', async (t) => {
  await lab.createDemoService('lan', { families: ['IPv4'] });
  const [a] = await addresses('lan', 1);
  t.match(a, /^192\.0\.2\./, 'a LAN (local) address');
  const first = await prober.probe(a!);
  const holder = first.body;
  t.ok(ALL.includes(holder), `${holder} answers ${a} through the router`);
  t.same(await routed.neighbour(a!).then((e) => e?.mac), macs.get(holder), 'the router\'s neighbour entry is the holder\'s MAC');
  const node = lab.nodes.find((n) => n.name === holder)!;
  // Who answers ARP on the LAN, from before the cut until after the link is back.
  const arp = lab.watchArp(a!, { intervalMs: 50 });
  await arp.ready;
  cut.add(holder);
  const cutAt = monotonicMs();
  await lab.setLinkUp(node, false);
  try {
    const next = await prober.probe(a!, holder);
    const ms = next.at - cutAt;
    t.not(next.body, holder, `${next.body} answers ${Math.round(ms)} ms after ${holder}'s link was cut`);
    t.ok(ms < 5000, `within 5 s (${Math.round(ms)} ms)`);
    const e = await routed.neighbour(a!);
    t.equal(e?.mac, macs.get(next.body), `the router's neighbour entry follows the new holder (${e?.state})`);
    const counts = await routed.spread(a!, 20);
    t.same(Object.fromEntries(counts), { [next.body]: 20 }, 'every connection reaches the new holder');
  } finally {
    await lab.setLinkUp(node, true);
  }
  await new Promise((r) => setTimeout(r, 2000));
  await arp.stop();
  t.equal(arp.duplicateSampleCount(), 0, `never two MACs answering ${a} on the LAN, through the cut and after the link came back (${arp.sampleCount()} samples)`);
});

t.test('no BFD session of a node that was never cut went down (no flap on a busy machine)', async (t) => {
  const downs = await routed.bfdDownCounts();
  t.equal(downs.size, lab.nodes.length * 2, `one BFD session per node and family: ${JSON.stringify(Object.fromEntries(downs))}`);
  // node-1 was cut in "a node lost", and the holder of the local address in the last test.
  for (const n of lab.nodes.filter((x) => !cut.has(x.name))) {
    for (const a of [n.v4, n.v6]) t.equal(downs.get(a), 0, `${n.name} (${a}): no session-down event`);
  }
});
