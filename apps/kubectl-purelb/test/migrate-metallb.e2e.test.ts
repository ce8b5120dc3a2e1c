// Moving from MetalLB, step by step as docs/migrating-from-metallb.md says, on a process
// lab (real kube-apiserver, node network namespaces on a LAN, a client namespace, an HTTP
// backend on every node): MetalLB's kinds are defined by small schema-less CRDs of our
// own, the Services' status is set as MetalLB's controller sets it; the migration runs
// (first without, then with --apply), then the real allocator and node agents start: no
// address changes, every Service is ours, and every local address answers HTTP from the
// client, one MAC answering ARP for each and never two, watched from before the agents start.
import t from 'tap';
import { type DaemonProcess, LAN, PURELB_NAMESPACE, installPureLB, startAgent, startAllocator, waitFor, withLab } from '@purelb/lab';
import { ExitCode } from '../src/index.ts';
import { runPlugin } from './fixtures.ts';
import type { MigrationPlan } from '../src/migrate-metallb.ts';
import type { ElectionReport } from '../src/election.ts';
import type { ServicesReport } from '../src/services.ts';
import type { StatusReport } from '../src/status.ts';

const METALLB_NS = 'metallb-system';
const NS = 'apps';

// Two nodes on the LAN 192.0.2.0/24 and 2001:db8::/64 (node addresses from .10, the
// client .100, the ARP sampler's own addresses .101-.116): MetalLB's pool lies in the
// LAN's free part, so its addresses are local ones in PureLB.
const lab = await withLab(t, { nodes: 2 });
const cp = lab.controlPlane;
const admin = cp.admin;

/** A schema-less CRD standing in for one of MetalLB's kinds. */
async function metallbCrd(plural: string, kind: string, version: string): Promise<void> {
  await admin.create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.metallb.io` },
    spec: {
      group: 'metallb.io',
      scope: 'Namespaced',
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [{ name: version, served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  });
}

// Step 0: the cluster as MetalLB left it.
for (const [plural, kind, version] of [['ipaddresspools', 'IPAddressPool', 'v1beta1'], ['l2advertisements', 'L2Advertisement', 'v1beta1'], ['bgpadvertisements', 'BGPAdvertisement', 'v1beta1'], ['bgppeers', 'BGPPeer', 'v1beta2']] as const) await metallbCrd(plural, kind, version);
for (const ns of [METALLB_NS, NS]) await admin.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
await waitFor('metallb.io/v1beta1 to be served', async () => ((await admin.raw('GET', `/apis/metallb.io/v1beta1/namespaces/${METALLB_NS}/ipaddresspools`)).status === 200 ? true : undefined), 30_000, 100);
await waitFor('metallb.io/v1beta2 to be served', async () => ((await admin.raw('GET', `/apis/metallb.io/v1beta2/namespaces/${METALLB_NS}/bgppeers`)).status === 200 ? true : undefined), 30_000, 100);
const mlb = (plural: string, version = 'v1beta1') => `/apis/metallb.io/${version}/namespaces/${METALLB_NS}/${plural}`;
await admin.create(mlb('ipaddresspools'), { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'default', namespace: METALLB_NS }, spec: { addresses: ['192.0.2.200-192.0.2.219', '2001:db8::200/124'] } });
await admin.create(mlb('ipaddresspools'), { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'special', namespace: METALLB_NS }, spec: { addresses: ['198.51.100.10-198.51.100.19'], autoAssign: false } });
await admin.create(mlb('l2advertisements'), { apiVersion: 'metallb.io/v1beta1', kind: 'L2Advertisement', metadata: { name: 'l2', namespace: METALLB_NS }, spec: { ipAddressPools: ['default', 'special'] } });
await admin.create(mlb('bgpadvertisements'), { apiVersion: 'metallb.io/v1beta1', kind: 'BGPAdvertisement', metadata: { name: 'uplink', namespace: METALLB_NS }, spec: { ipAddressPools: ['special'], communities: ['64512:100'] } });

/** A Service as MetalLB served it: the annotations its users set, the status its controller wrote. */
async function metallbService(name: string, ips: string[], annotations: Record<string, string> = {}, ports: { port: number; protocol?: 'TCP' | 'UDP' }[] = [{ port: 80 }]): Promise<void> {
  const families = ips.map((ip) => (ip.includes(':') ? 'IPv6' : 'IPv4'));
  await admin.create(`/api/v1/namespaces/${NS}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS, annotations },
    spec: { type: 'LoadBalancer', ipFamilies: families, ipFamilyPolicy: families.length > 1 ? 'RequireDualStack' : 'SingleStack', ports: ports.map((p) => ({ name: `p${p.port}`, port: p.port, protocol: p.protocol ?? 'TCP' })), allocateLoadBalancerNodePorts: false },
  });
  await admin.mergePatch(`/api/v1/namespaces/${NS}/services/${name}/status`, { status: { loadBalancer: { ingress: ips.map((ip) => ({ ip, ipMode: 'VIP' })) } } });
}
const BEFORE: Record<string, string[]> = {
  auto: ['192.0.2.203'],
  pinned: ['192.0.2.210'],
  'dns-tcp': ['192.0.2.205'],
  'dns-udp': ['192.0.2.205'],
  special: ['198.51.100.12'],
  dual: ['192.0.2.207', '2001:db8::203'],
};
await metallbService('auto', BEFORE.auto!);
await metallbService('pinned', BEFORE.pinned!, { 'metallb.io/loadBalancerIPs': '192.0.2.210' });
await metallbService('dns-tcp', BEFORE['dns-tcp']!, { 'metallb.universe.tf/allow-shared-ip': 'dns' }, [{ port: 53 }]);
await metallbService('dns-udp', BEFORE['dns-udp']!, { 'metallb.universe.tf/allow-shared-ip': 'dns' }, [{ port: 53, protocol: 'UDP' }]);
await metallbService('special', BEFORE.special!, { 'metallb.io/address-pool': 'special' });
await metallbService('dual', BEFORE.dual!);

const plugin = (args: string[]): ReturnType<typeof runPlugin> => runPlugin(cp.kubeconfigPath, args);
async function addresses(): Promise<Record<string, string[]>> {
  const l = await admin.get<{ items: { metadata: { name: string }; status?: { loadBalancer?: { ingress?: { ip: string }[] } } }[] }>(`/api/v1/namespaces/${NS}/services`);
  return Object.fromEntries(l.items.map((s) => [s.metadata.name, (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip)]));
}
// The nodes' LAN subnets, as the walk-through names them: 198.51.100.0/24 is none of them.
const MIGRATE = ['migrate', 'metallb', '--subnet', '192.0.2.0/24', '--subnet', '2001:db8::/64'];

t.test('step 1: PureLB\'s CRDs; step 2: the migration, printed; nothing written', async (t) => {
  await installPureLB(admin, { defaults: false });
  const r = await plugin(MIGRATE);
  t.equal(r.code, ExitCode.ok, r.err);
  t.match(r.out, /SERVICEGROUPS \(namespace purelb\)/);
  t.same([LAN.v4Subnet, LAN.v6Subnet], MIGRATE.filter((_, i) => MIGRATE[i - 1] === '--subnet'), 'the subnets named are the lab LAN\'s');
  t.match(r.out, /default\s+192\.0\.2\.200-192\.0\.2\.219\s+192\.0\.2\.0\/24\s+default/);
  t.match(r.out, /special\s+198\.51\.100\.10-198\.51\.100\.19\s+198\.51\.100\.0\/27\s+default/);
  t.match(r.out, /IPAddressPool metallb-system\/special spec\.addresses\[0\]: no --subnet contains 198\.51\.100\.10-198\.51\.100\.19; its subnet is set to 198\.51\.100\.0\/27\. An address outside every node's LAN subnet is a virtual address/);
  t.match(r.out, /BGPAdvertisement uplink: no equivalent: PureLB does not speak BGP/);
  t.match(r.out, /Nothing was written: run again with --apply/);
  const json = await plugin([...MIGRATE, '-o', 'json']);
  const plan = JSON.parse(json.out) as MigrationPlan;
  t.same(plan.services.map((s) => s.name), ['auto', 'dns-tcp', 'dns-udp', 'dual', 'pinned', 'special']);
  // Just after the CRDs were applied the API server may answer 429 (storage initializing) for a moment.
  const groups = await waitFor('the ServiceGroup list', async () => {
    const r = await admin.raw('GET', `/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups`);
    return r.status === 200 ? (JSON.parse(r.body) as { items: unknown[] }) : undefined;
  }, 10_000, 100);
  t.same(groups.items, [], 'no ServiceGroup written without --apply');
  const svc = await admin.get<{ metadata: { annotations?: Record<string, string> } }>(`/api/v1/namespaces/${NS}/services/auto`);
  t.equal(svc.metadata.annotations?.['purelb.io/allocated-by'], undefined, 'no Service touched');
});

t.test('step 3: --apply writes the ServiceGroups and the annotations; a second run changes nothing', async (t) => {
  const r = await plugin([...MIGRATE, '--apply']);
  t.equal(r.code, ExitCode.ok, r.out + r.err);
  t.match(r.out, /- ServiceGroup purelb\/default created/);
  t.match(r.out, /- Service apps\/dns-udp annotated/);
  const sg = await admin.get<{ spec: unknown }>(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups/special`);
  t.same(sg.spec, { local: { v4pools: [{ pool: '198.51.100.10-198.51.100.19', subnet: '198.51.100.0/27', aggregation: 'default' }] } });
  const pinned = await admin.get<{ metadata: { annotations: Record<string, string> } }>(`/api/v1/namespaces/${NS}/services/pinned`);
  t.equal(pinned.metadata.annotations['purelb.io/addresses'], '192.0.2.210');
  t.equal(pinned.metadata.annotations['purelb.io/allocated-by'], 'PureLB');
  const again = await plugin([...MIGRATE, '--apply']);
  t.equal(again.code, ExitCode.ok, 'the ServiceGroups are there already, identical');
  t.notMatch(again.out, /created/);
  t.same(await addresses(), BEFORE, 'no address changed');
});

// Every address a migrated Service holds on the LAN (one elected node answers for each),
// and the new Service's; 198.51.100.12 is outside the LAN: virtual, on every node.
const CHART = '192.0.2.215';
const LOCAL = [...new Set([...Object.values(BEFORE).flat().filter((a) => a !== BEFORE.special![0]), CHART])];
const VIRTUAL = BEFORE.special![0]!;
const url = (a: string): string => (a.includes(':') ? `http://[${a}]/` : `http://${a}/`);

t.test('step 4: MetalLB removed (its controller no longer runs), PureLB starts: zero addresses change, every Service is ours, the addresses answer from the client', async (t) => {
  // Watched from before the agents start: never two MACs for one address, throughout.
  const arp = lab.watchArpAll(LOCAL, { intervalMs: 50 });
  t.teardown(() => arp.stop());
  await arp.ready;
  const before = await lab.probe(lab.network.clientNetns, LOCAL.map(url), 300);
  t.same(before.filter((r) => r.ok).map((r) => r.url), [], 'nothing answers before PureLB runs (no MetalLB speaker in the lab)');

  // helm install: the default LBNodeAgent as the chart creates it, the allocator, an agent per node.
  await admin.apply(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/lbnodeagents/default`, { apiVersion: 'purelb.io/v1', kind: 'LBNodeAgent', metadata: { name: 'default', namespace: PURELB_NAMESPACE }, spec: { local: { extlbint: 'kube-lb0', localint: 'default', sendgarp: false } } });
  const allocator = await startAllocator(cp, { identity: 'migrated' });
  t.teardown(() => allocator.stop());
  const agents: DaemonProcess[] = [];
  t.teardown(async () => {
    for (const a of agents) await a.stop(3000);
  });
  for (const a of await Promise.all(lab.nodes.map((n) => startAgent(cp, n)))) agents.push(a);
  // A Service a chart still writes for MetalLB, and one with no annotation at all.
  await admin.create(`/api/v1/namespaces/${NS}/services`, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'chart', namespace: NS, annotations: { 'metallb.io/loadBalancerIPs': CHART } }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }], allocateLoadBalancerNodePorts: false } });
  const got = await waitFor('the new Service to get its address', async () => {
    const a = await addresses();
    return a.chart?.length === 1 ? a : undefined;
  }, 15_000, 50);
  t.same(got.chart, [CHART], 'metallb.io/loadBalancerIPs is honoured');
  const alias = await waitFor('the MetalLBAnnotation Event', async () => {
    const events = await admin.get<{ items: { reason: string; message: string; count?: number }[] }>(`/api/v1/namespaces/${NS}/events?fieldSelector=involvedObject.name%3Dchart`);
    const found = events.items.filter((e) => e.reason === 'MetalLBAnnotation');
    return found.length > 0 ? found : undefined;
  }, 10_000, 100);
  t.equal(alias.length, 1, 'one Event');
  t.match(alias[0]?.message, /metallb\.io\/loadBalancerIPs is read as purelb\.io\/addresses/);
  delete got.chart;
  t.same(got, BEFORE, 'every migrated Service kept its addresses');
  const report = await plugin(['services', '-o', 'json']);
  t.equal(report.code, ExitCode.ok, report.out);
  const served = (JSON.parse(report.out) as ServicesReport).services;
  t.same(served.map((s) => [s.name, s.addresses, s.group, s.sharingKey]).sort(), [
    ['auto', BEFORE.auto, 'default', undefined],
    ['chart', [CHART], 'default', undefined],
    ['dns-tcp', BEFORE['dns-tcp'], 'default', 'dns'],
    ['dns-udp', BEFORE['dns-udp'], 'default', 'dns'],
    ['dual', BEFORE.dual, 'default', undefined],
    ['pinned', BEFORE.pinned, 'default', undefined],
    ['special', BEFORE.special, 'special', undefined],
  ].sort(), 'every Service is ours');
  // Settled: a while later still nothing moved, and no Service was written for nothing.
  await new Promise((r) => setTimeout(r, 1500));
  const later = await addresses();
  delete later.chart;
  t.same(later, BEFORE);
  const pools = await plugin(['pools', '-o', 'json']);
  t.equal(pools.code, ExitCode.ok, pools.out);

  // Step 5 of the walk-through, once the agents have settled: status finds nothing wrong
  // (every agent in swim mode reaching both), election finds each local address announced
  // by the node that should hold it.
  const n = lab.nodes.length;
  const settled = await waitFor('status and election to find nothing wrong', async () => {
    const st = await plugin(['status', '-o', 'json']);
    const el = await plugin(['election', '-o', 'json']);
    if (st.code !== ExitCode.ok || el.code !== ExitCode.ok) return undefined;
    const nodes = (JSON.parse(st.out) as StatusReport).nodes;
    if (nodes.length !== n || !nodes.every((x) => x.agent === 'running' && x.mode === 'swim' && x.membership === `${n}/${n}`)) return undefined;
    return JSON.parse(el.out) as ElectionReport;
  }, 30_000, 250);
  t.same(settled.addresses.map((a) => a.address).sort(), [...LOCAL].sort(), 'election: every local address, and only those');
  const holderOf = new Map(settled.addresses.map((a) => [a.address, a.shouldHold]));

  // The addresses answer: HTTP from the client reaches the node that holds each one.
  const macs = await lab.nodeMacs();
  for (const a of LOCAL) {
    const body = await waitFor(`${a} to answer HTTP from the client`, async () => {
      const [r] = await lab.probe(lab.network.clientNetns, [url(a)], 500);
      return r?.ok ? r.body.trim() : undefined;
    }, 30_000, 50);
    const holders = await lab.holders(a);
    t.same(holders.map((h) => [h.node, h.link]), [[body, 'eth0']], `${a}: answered by ${body}, the one node holding it, on its LAN interface`);
    t.equal(body, holderOf.get(a), `${a}: the node election names`);
    const since = Date.now();
    const s = await arp.get(a).waitFor(`${a} answered by one MAC`, (x) => x.macs.length > 0, 10_000, since);
    t.same(s.macs, [macs.get(body)], `${a}: ARP answered by ${body}'s MAC alone`);
  }
  const virtual = await waitFor(`${VIRTUAL} on every node`, async () => {
    const h = await lab.holders(VIRTUAL);
    return h.length === lab.nodes.length ? h : undefined;
  }, 15_000, 50);
  t.same(virtual.map((h) => h.link), lab.nodes.map(() => 'kube-lb0'), `${VIRTUAL} (outside the LAN) is virtual: on kube-lb0 of every node`);

  t.same(await addresses(), { ...BEFORE, chart: [CHART] }, 'still no address moved');
  for (const a of LOCAL) t.equal(arp.get(a).duplicateSampleCount(), 0, `${a}: never two MACs in ${arp.get(a).sampleCount()} samples`);
});
