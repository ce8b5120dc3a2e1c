// kubectl purelb against the lab's real kube-apiserver, with our CRDs and the real
// allocator: Services get their addresses from it; the agents' Leases and announcing
// annotations are written as the agents write them. Every subcommand runs, as a table and
// as -o json; one run goes through the bin in a child process.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { winner } from '@purelb/election';
import { EventRecorder, KubeClient, loadKubeConfig } from '@purelb/k8s-glue';
import { PURELB_NAMESPACE, installPureLB, startAllocator, startControlPlane, waitFor } from '@purelb/lab';
import { ExitCode } from '../src/index.ts';
import { runPlugin } from './fixtures.ts';
import type { ElectionReport } from '../src/election.ts';
import type { PoolsReport } from '../src/pools.ts';
import type { ServicesReport } from '../src/services.ts';
import type { StatusReport } from '../src/status.ts';

const NS = 'plugin-e2e';
const SUBNETS = ['192.0.2.0/24', '2001:db8::/64'];
const NODES = ['node-a', 'node-b'];

const dir = mkdtempSync(join(tmpdir(), 'plb-plugin-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const cp = await startControlPlane({ dir });
t.teardown(() => cp.stop());
const admin = cp.admin;
await installPureLB(admin, { defaults: false });
await admin.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
for (const [i, name] of NODES.entries()) {
  await admin.create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name } });
  await admin.mergePatch(`/api/v1/nodes/${name}/status`, { status: { addresses: [{ type: 'InternalIP', address: `192.0.2.${i + 1}` }] } });
}
const groups = `/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups`;
await admin.create(groups, {
  apiVersion: 'purelb.io/v1',
  kind: 'ServiceGroup',
  metadata: { name: 'default' },
  // 192.0.2.1 is node-a's own address: never handed out.
  spec: { local: { v4pools: [{ pool: '192.0.2.1-192.0.2.4', subnet: '192.0.2.0/24', aggregation: 'default' }, { pool: '192.0.2.100-192.0.2.109', subnet: '192.0.2.0/24', aggregation: 'default' }], v6pools: [{ pool: '2001:db8::100-2001:db8::10f', subnet: '2001:db8::/64', aggregation: 'default' }] } },
});
await admin.create(groups, { apiVersion: 'purelb.io/v1', kind: 'ServiceGroup', metadata: { name: 'virtual' }, spec: { local: { v4pools: [{ pool: '198.51.100.0/28', subnet: '198.51.100.0/24', aggregation: '/32' }] } } });
const allocator = await startAllocator(cp, { identity: 'alloc-0' });
t.teardown(() => allocator.stop());

async function createService(name: string, o: { families?: ('IPv4' | 'IPv6')[]; annotations?: Record<string, string>; ports?: { port: number; protocol?: 'TCP' | 'UDP' }[]; etp?: 'Local' } = {}): Promise<void> {
  const families = o.families ?? ['IPv4'];
  await admin.create(`/api/v1/namespaces/${NS}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS, annotations: o.annotations ?? {} },
    spec: {
      type: 'LoadBalancer',
      ipFamilies: families,
      ipFamilyPolicy: families.length > 1 ? 'RequireDualStack' : 'SingleStack',
      ports: (o.ports ?? [{ port: 80 }]).map((p) => ({ name: `p${p.port}`, port: p.port, protocol: p.protocol ?? 'TCP' })),
      allocateLoadBalancerNodePorts: false,
      ...(o.etp ? { externalTrafficPolicy: o.etp } : {}),
    },
  });
}

async function addressesOf(name: string, count: number): Promise<string[]> {
  return waitFor(`${NS}/${name} to get ${count} address(es)`, async () => {
    const s = await admin.get<{ status?: { loadBalancer?: { ingress?: { ip: string }[] } } }>(`/api/v1/namespaces/${NS}/services/${name}`);
    const ips = (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
    return ips.length === count ? ips : undefined;
  }, 15_000, 25);
}

const microNow = (offsetS = 0): string => new Date(Date.now() - offsetS * 1000).toISOString().replace(/Z$/, '000Z');

/** The agent's Lease, as apps/lbnodeagent writes it. */
async function agentLease(node: string, o: { mode?: string; ageS?: number; subnets?: readonly string[] } = {}): Promise<void> {
  await admin.apply(`/apis/coordination.k8s.io/v1/namespaces/${PURELB_NAMESPACE}/leases/purelb-agent-${node}`, {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: `purelb-agent-${node}`,
      namespace: PURELB_NAMESPACE,
      labels: { 'purelb.io/component': 'lbnodeagent' },
      annotations: { 'purelb.io/memberlist-address': `127.0.0.1:7934`, 'purelb.io/gossip-mode': o.mode ?? 'swim', 'purelb.io/subnets': (o.subnets ?? SUBNETS).join(','), 'purelb.io/membership': '2/2' },
    },
    spec: { holderIdentity: node, leaseDurationSeconds: 10, renewTime: microNow(o.ageS ?? 0) },
  });
}

/** The announcing annotation the winning agent writes. */
async function announce(name: string, family: 'IPv4' | 'IPv6', node: string | null, iface = 'eth0'): Promise<void> {
  await admin.mergePatch(`/api/v1/namespaces/${NS}/services/${name}`, { metadata: { annotations: { [`purelb.io/announcing-${family}`]: node === null ? null : `${node},${iface}` } } });
}

const hashWinner = (address: string, nodes = NODES): string => winner(address, nodes.map((name) => ({ name, subnets: SUBNETS })))!;

const plugin = (args: string[]): ReturnType<typeof runPlugin> => runPlugin(cp.kubeconfigPath, args);

async function pluginJson<T>(args: string[]): Promise<{ code: number; data: T }> {
  const r = await plugin([...args, '-o', 'json']);
  t.equal(r.err, '', `${args.join(' ')}: nothing on stderr`);
  return { code: r.code, data: JSON.parse(r.out) as T };
}

// The cluster: a dual-stack Service, two sharing one address, one on a virtual pool.
await createService('web', { families: ['IPv4', 'IPv6'], etp: 'Local' });
await createService('dns-tcp', { annotations: { 'purelb.io/allow-shared-ip': 'dns' }, ports: [{ port: 53 }] });
await createService('dns-udp', { annotations: { 'purelb.io/allow-shared-ip': 'dns' }, ports: [{ port: 53, protocol: 'UDP' }] });
await createService('routed', { annotations: { 'purelb.io/service-group': 'virtual' } });
const [webV4, webV6] = await addressesOf('web', 2);
const [dns] = await addressesOf('dns-tcp', 1);
const [dnsUdp] = await addressesOf('dns-udp', 1);
const [routed] = await addressesOf('routed', 1);
for (const n of NODES) await agentLease(n);
await announce('web', 'IPv4', hashWinner(webV4!));
await announce('web', 'IPv6', hashWinner(webV6!));
await announce('dns-tcp', 'IPv4', hashWinner(dns!));
await announce('dns-udp', 'IPv4', hashWinner(dns!));

t.test('services: every Service we serve, with group, announcers, policy and sharing key', async (t) => {
  const { code, data } = await pluginJson<ServicesReport>(['services']);
  t.equal(code, ExitCode.ok);
  t.equal(dnsUdp, dns, 'the allocator shared the address');
  const mine = data.services.filter((s) => s.namespace === NS);
  t.same(mine.map((s) => [s.name, s.addresses, s.group, s.announcingIPv4?.node, s.announcingIPv6?.node, s.externalTrafficPolicy, s.sharingKey]), [
    ['dns-tcp', [dns], 'default', hashWinner(dns!), undefined, 'Cluster', 'dns'],
    ['dns-udp', [dns], 'default', hashWinner(dns!), undefined, 'Cluster', 'dns'],
    ['routed', [routed], 'virtual', undefined, undefined, 'Cluster', undefined],
    ['web', [webV4, webV6], 'default', hashWinner(webV4!), hashWinner(webV6!), 'Local', undefined],
  ]);
  const table = await plugin(['services']);
  t.equal(table.code, ExitCode.ok);
  t.match(table.out, /^NAMESPACE\s+NAME\s+ADDRESSES\s+GROUP\s+IPV4 ANNOUNCED BY\s+IPV6 ANNOUNCED BY\s+TRAFFIC POLICY\s+SHARING KEY\n/);
  t.match(table.out, new RegExp(`${NS}\\s+web\\s+${webV4},${webV6}\\s+default\\s+${hashWinner(webV4!)}/eth0\\s+${hashWinner(webV6!)}/eth0\\s+Local\\s+<none>`));
});

t.test('pools: the next address shown is the one the allocator hands out next', async (t) => {
  const { code, data } = await pluginJson<PoolsReport>(['pools']);
  t.equal(code, ExitCode.ok);
  const v4 = data.pools.filter((p) => p.group === 'default' && p.family === 'IPv4');
  t.same(v4.map((p) => [p.field, p.size, p.inUse, p.excluded, p.next]), [['v4pools[0]', '4', '2', '2', undefined], ['v4pools[1]', '10', '0', '0', '192.0.2.100']], 'the first pool is full: two Services (one shared address) and the two Nodes\' addresses');
  const next = v4.find((p) => p.nextForGroup)?.next;
  t.ok(next, 'a next address for the group');
  await createService('next-one');
  t.same(await addressesOf('next-one', 1), [next], 'the allocator gave exactly that address');
  const after = await pluginJson<PoolsReport>(['pools']);
  t.not(after.data.pools.find((p) => p.group === 'default' && p.family === 'IPv4' && p.nextForGroup)?.next, next, 'and the next one moved on');
  const table = await plugin(['pools']);
  t.match(table.out, /^GROUP\s+FAMILY\s+POOL\s+SIZE\s+IN USE\s+EXCLUDED\s+FREE\s+NEXT\n/);
  t.match(table.out, /virtual\s+IPv4\s+198\.51\.100\.0\/28 \(v4pools\[0\]\)\s+16\s+1\s+1\s+14\s+198\.51\.100\.2 \*/, 'the network address of the subnet is never handed out; .1 is in use');
  await admin.delete(`/api/v1/namespaces/${NS}/services/next-one`);
});

t.test('election: every local address announced by the node that should hold it; a wrong announcer is a problem; drain', async (t) => {
  const ok = await pluginJson<ElectionReport>(['election']);
  t.equal(ok.code, ExitCode.ok, JSON.stringify(ok.data.problems));
  t.same(Object.keys(ok.data.candidates).sort(), NODES);
  const sorted = (rows: unknown[][]) => rows.map((r) => JSON.stringify(r)).sort();
  t.same(sorted(ok.data.addresses.map((a) => [a.address, a.shouldHold, a.announcedBy, a.state])), sorted([
    [dns, hashWinner(dns!), [hashWinner(dns!)], 'ok'],
    [webV4, hashWinner(webV4!), [hashWinner(webV4!)], 'ok'],
    [webV6, hashWinner(webV6!), [hashWinner(webV6!)], 'ok'],
  ]));
  t.equal(ok.data.virtualAddresses, 1, 'the virtual address is not elected');

  const drain = NODES.find((n) => n === hashWinner(webV4!))!;
  const other = NODES.find((n) => n !== drain)!;
  const drained = await pluginJson<ElectionReport>(['election', '--simulate-drain', drain]);
  t.equal(drained.code, ExitCode.ok);
  for (const a of drained.data.addresses) t.equal(a.afterDrain, other, `${a.address} would be held by ${other}`);
  const table = await plugin(['election', '--simulate-drain', drain]);
  t.match(table.out, new RegExp(`simulating a drain of ${drain}`));
  t.match(table.out, new RegExp(`${webV4!.replace(/\./g, '\\.')}\\s+${NS}/web\\s+default\\s+${drain}\\s+${drain}\\s+${drain}\\s+${other}\\s+ok`));

  // The agent that should not hold it announces it (a stale view): a mismatch, exit 1.
  await announce('web', 'IPv4', other);
  await agentLease(other, { subnets: ['198.51.100.0/24'] });
  const bad = await plugin(['election']);
  t.equal(bad.code, ExitCode.problems);
  t.match(bad.out, new RegExp(`- address ${webV4!.replace(/\./g, '\\.')} \\(Service ${NS}/web\\): announced by ${other}, but ${drain} should hold it \\(${other} publishes no subnet containing it\\)`));
  await agentLease(other);
  await announce('web', 'IPv4', drain);
  t.equal((await plugin(['election'])).code, ExitCode.ok, 'back to healthy');
  t.equal((await plugin(['election', '--simulate-drain', 'no-such-node'])).code, ExitCode.usage);
});

t.test('status: healthy, then a stale agent and a Service the allocator cannot serve', async (t) => {
  const ok = await pluginJson<StatusReport>(['status']);
  t.equal(ok.code, ExitCode.ok, JSON.stringify(ok.data.problems));
  t.equal(ok.data.allocator.leader, 'alloc-0');
  t.ok(ok.data.allocator.fresh);
  t.same(ok.data.nodes.map((n) => [n.node, n.agent, n.mode, n.membership]), NODES.map((n) => [n, 'running', 'swim', '2/2']));
  t.same(ok.data.serviceGroups.map((g) => [g.name, g.valid, g.services]), [['default', true, 3], ['virtual', true, 1]]);
  const table = await plugin(['status']);
  t.match(table.out, /leader:\s+alloc-0 \(renewed \d+s ago, Lease purelb\/purelb-allocator\)/);
  t.match(table.out, /node-a\s+running\s+swim\s+2\/2/);

  await agentLease('node-b', { ageS: 60 });
  await createService('lost', { annotations: { 'purelb.io/service-group': 'nope' } });
  const problems = await waitFor('the allocator\'s Event about lost', async () => {
    const r = await pluginJson<StatusReport>(['status']);
    return r.data.problems.some((p) => p.object === `Service ${NS}/lost` && p.message.includes('AllocationFailed')) ? r : undefined;
  }, 15_000, 200);
  t.equal(problems.code, ExitCode.problems);
  const byObject = Object.fromEntries(problems.data.problems.map((p) => [p.object, p]));
  t.match(byObject[`Service ${NS}/lost`]?.message, /no address: AllocationFailed: .*"nope"/);
  t.equal(byObject['Lease purelb/purelb-agent-node-b']?.field, 'spec.renewTime');
  t.same(problems.data.nodes.find((n) => n.node === 'node-b')?.agent, 'stale');
  const text = await plugin(['status']);
  t.match(text.out, /PROBLEMS \(2\)/);
  await agentLease('node-b');
  await admin.delete(`/api/v1/namespaces/${NS}/services/lost`);
});

t.test('status: a node whose agent reported unsafe ARP settings is a problem until it reports them safe; exclusion from the Node', async (t) => {
  // Written by the recorder the agent uses, with the agent's component, reference and reasons
  // (apps/lbnodeagent main.ts, node-events.ts nodeRef, arp-check.ts).
  const agentClient = new KubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfigPath, env: {} }));
  t.teardown(() => agentClient.close());
  const recorder = new EventRecorder(agentClient, { component: 'purelb-lbnodeagent', host: 'node-a' });
  const ref = { kind: 'Node', apiVersion: 'v1', name: 'node-a', uid: 'node-a' };
  const unsafe = 'net.ipv4.conf.eth0.arp_ignore=0: the node answers ARP for addresses of its other interfaces. To fix: set net.ipv4.conf.all.arp_ignore=1';
  recorder.event(ref, 'Warning', 'UnsafeARPConfig', unsafe);
  await recorder.flush();
  t.equal(recorder.stats().created, 1, 'the Event was written');
  const bad = await pluginJson<StatusReport>(['status']);
  t.equal(bad.code, ExitCode.problems);
  t.same(bad.data.problems.map((p) => [p.object, p.message.replace(/, \d+ s ago/, '')]), [['Node node-a', `ARP settings unsafe for local addresses (its agent's Event UnsafeARPConfig): ${unsafe}`]]);
  t.same(bad.data.nodes.map((n) => [n.node, n.arp.state, n.arp.message]), [['node-a', 'unsafe', unsafe], ['node-b', 'unreported', undefined]]);
  const badTable = await plugin(['status']);
  t.equal(badTable.code, ExitCode.problems);
  t.match(badTable.out, /NODE\s+AGENT\s+MODE\s+MEMBERSHIP\s+LEASE RENEWED\s+ANNOUNCES\s+ARP\s+SUBNETS\n/);
  t.match(badTable.out, /node-a\s+running\s+swim\s+2\/2\s+\d+s ago\s+yes\s+UNSAFE\s/);
  t.match(badTable.out, /PROBLEMS \(1\)\n- Node node-a: ARP settings unsafe for local addresses/);

  // Fixed: the agent's Normal Event, written after the Warning, is the newest.
  recorder.event(ref, 'Normal', 'ARPConfigSafe', 'the ARP settings are safe for local addresses again');
  await recorder.flush();
  // The node's exclusion comes from the Node object: node-b labelled, node-a NetworkUnavailable.
  await admin.mergePatch('/api/v1/nodes/node-b', { metadata: { labels: { 'node.kubernetes.io/exclude-from-external-load-balancers': 'true' } } });
  await admin.mergePatch('/api/v1/nodes/node-a/status', { status: { conditions: [{ type: 'NetworkUnavailable', status: 'True', reason: 'RouteCreated', message: 'test', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] } });
  const ok = await pluginJson<StatusReport>(['status']);
  t.equal(ok.code, ExitCode.ok, JSON.stringify(ok.data.problems));
  t.same(ok.data.nodes.map((n) => [n.node, n.arp.state, n.excluded?.reason]), [['node-a', 'safe', 'NetworkUnavailable'], ['node-b', 'unreported', 'ExcludedByLabel']]);
  const table = await plugin(['status']);
  t.match(table.out, /node-a\s+running\s+swim\s+2\/2\s+\d+s ago\s+no \(NetworkUnavailable\)\s+ok\s/);
  t.match(table.out, /node-b\s+running\s+swim\s+2\/2\s+\d+s ago\s+no \(ExcludedByLabel\)\s+no warning\s/);
  await admin.mergePatch('/api/v1/nodes/node-b', { metadata: { labels: { 'node.kubernetes.io/exclude-from-external-load-balancers': null } } });
  await admin.mergePatch('/api/v1/nodes/node-a/status', { status: { conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: 'RouteCreated', message: 'test', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] } });
});

t.test('a ServiceGroup with a nodeSelector: status and election apply the agents\' candidacy; relabelling moves it', async (t) => {
  const label = 'purelb.io/edge';
  await admin.mergePatch('/api/v1/nodes/node-a', { metadata: { labels: { [label]: 'true' } } });
  await admin.create(groups, { apiVersion: 'purelb.io/v1', kind: 'ServiceGroup', metadata: { name: 'edge' }, spec: { local: { nodeSelector: { matchLabels: { [label]: 'true' } }, v4pools: [{ pool: '192.0.2.150-192.0.2.159', subnet: '192.0.2.0/24', aggregation: 'default' }] } } });
  await createService('edge-web', { annotations: { 'purelb.io/service-group': 'edge' } });
  const [edge] = await addressesOf('edge-web', 1);
  const row = (r: ElectionReport) => r.addresses.find((a) => a.address === edge)!;

  // Selected: node-a only, whatever the hash prefers.
  await announce('edge-web', 'IPv4', 'node-a');
  const st = await pluginJson<StatusReport>(['status']);
  t.equal(st.code, ExitCode.ok, JSON.stringify(st.data.problems));
  const g = st.data.serviceGroups.find((x) => x.name === 'edge');
  t.same([g?.valid, g?.services, g?.nodeSelector, g?.selectedNodes], [true, 1, `${label}=true`, ['node-a']]);
  const ok = await pluginJson<ElectionReport>(['election', '--simulate-drain', 'node-a']);
  t.same([row(ok.data).group, row(ok.data).shouldHold, row(ok.data).hashWinner, row(ok.data).state, row(ok.data).afterDrain], ['edge', 'node-a', 'node-a', 'ok', undefined]);
  t.equal(ok.code, ExitCode.problems, 'draining the only selected node leaves it unanswered');
  t.same(ok.data.problems.map((p) => p.message), [`with node-a drained, no agent could hold it`]);
  await announce('edge-web', 'IPv4', 'node-b');
  const bad = await pluginJson<ElectionReport>(['election']);
  t.equal(bad.code, ExitCode.problems);
  t.same(bad.data.problems.map((p) => [p.object, p.message]), [[`address ${edge} (Service ${NS}/edge-web)`, `announced by node-b, but node-a should hold it (node-b is not selected by ServiceGroup edge's nodeSelector)`]]);

  // Relabelled to node-b: it becomes the holder.
  await admin.mergePatch('/api/v1/nodes/node-a', { metadata: { labels: { [label]: null } } });
  await admin.mergePatch('/api/v1/nodes/node-b', { metadata: { labels: { [label]: 'true' } } });
  const moved = await pluginJson<ElectionReport>(['election']);
  t.equal(moved.code, ExitCode.ok, JSON.stringify(moved.data.problems));
  t.same([row(moved.data).shouldHold, row(moved.data).state], ['node-b', 'ok']);

  // Selecting nobody: status says so (exit 1); the address has no expected holder, a problem only while announced.
  await admin.mergePatch('/api/v1/nodes/node-b', { metadata: { labels: { [label]: null } } });
  const none = await pluginJson<StatusReport>(['status']);
  t.equal(none.code, ExitCode.problems);
  t.same(none.data.problems.map((p) => [p.object, p.field, p.message]), [[`ServiceGroup ${PURELB_NAMESPACE}/edge`, 'spec.local.nodeSelector', `${label}=true selects no eligible Node (of 2): no node announces its local addresses`]]);
  t.match((await plugin(['status'])).out, /edge\s+local\s+yes\s+1\s+\S+\s+\S+\s+purelb\.io\/edge=true\s+NONE\n/);
  const orphan = await pluginJson<ElectionReport>(['election']);
  t.equal(orphan.code, ExitCode.problems);
  t.same([row(orphan.data).shouldHold, row(orphan.data).state], [undefined, 'unselected']);
  t.match(orphan.data.problems[0]?.message, /^announced by node-b, but ServiceGroup edge's nodeSelector accepts no candidate that could hold it: nobody should/);
  await announce('edge-web', 'IPv4', null);
  const quiet = await pluginJson<ElectionReport>(['election']);
  t.equal(quiet.code, ExitCode.ok, JSON.stringify(quiet.data.problems));
  t.equal(row(quiet.data).state, 'unselected');

  await admin.delete(`/api/v1/namespaces/${NS}/services/edge-web`);
  await admin.delete(`${groups}/edge`);
});

t.test('the bin in a child process: KUBECONFIG, exit status, --context, validate', async (t) => {
  const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
  const bin = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(process.execPath, ['--conditions=@purelb/source', main, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 60_000 }, (e, out, err) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, out, err }));
    });
  const s = await bin(['services', '-o', 'yaml'], { KUBECONFIG: cp.kubeconfigPath });
  t.equal(s.code, 0, s.err);
  t.match(s.out, new RegExp(`name: web\\n`));
  const ctx = await bin(['status', '--context', 'nope'], { KUBECONFIG: cp.kubeconfigPath });
  t.equal(ctx.code, ExitCode.unreadable);
  t.match(ctx.err, /nope/);
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'apiVersion: purelb.io/v1\nkind: ServiceGroup\nmetadata: {name: x}\nspec: {local: {v4pools: [{pool: 192.0.2.9-192.0.2.1, subnet: 192.0.2.0/24}]}}\n');
  const v = await bin(['validate', '-f', file]);
  t.equal(v.code, ExitCode.problems);
  t.match(v.out, /spec\.local\.v4pools\[0\]\.pool|v4pools\[0\]\.pool/);
});

t.test('the plugin never wrote: the allocator and this test are the only writers', async (t) => {
  // Every object the plugin reads carries managedFields naming who wrote it.
  const svcs = await admin.get<{ items: { metadata: { managedFields?: { manager: string }[] } }[] }>(`/api/v1/namespaces/${NS}/services`);
  const managers = new Set(svcs.items.flatMap((s) => (s.metadata.managedFields ?? []).map((m) => m.manager)));
  t.notOk([...managers].some((m) => m.includes('kubectl-purelb')), `managers: ${[...managers].join(', ')}`);
});
