// The node checks, in the lab (one lab for all of them): a kube-ipvs0 holding a local
// address with the kernel's default ARP settings makes a node answer ARP for an address
// another node holds (seen from the client), and its agent reports it (metric, one
// Warning Event on the Node, a log line naming strictARP and the sysctls); arp_ignore 8 on
// another node is reported too; fixed, both report safe again and one MAC answers. With
// setARPSysctls the agents write the strict values themselves. A node labelled out of load
// balancing gets one Event, and one more when the label goes.
import t from 'tap';
import { type Lab, LAB_VIRTUAL_LINK_KIND, PURELB_NAMESPACE, run, waitFor, withLab } from '@purelb/lab';
import { addressesOf, startCluster, waitForHolders } from './e2e-helpers.ts';
import { EXCLUDE_LABEL } from '@purelb/api';

const lab: Lab = await withLab(t, { nodes: 3 });
// A short check period: a sysctl change is seen within about a second (there is no notification for it).
const cluster = await startCluster(lab, t, { agentArgs: ['--arp-check-period=1s'] });
const admin = lab.controlPlane.admin;
const macs = await lab.nodeMacs();
const netnsOf = (node: string): string => lab.nodes.find((n) => n.name === node)!.netns;

// Through /proc/sys inside the node's namespace (coreutils only; no procps needed).
const procPath = (key: string): string => `/proc/sys/${key.replaceAll('.', '/')}`;
async function sysctl(node: string, ...kv: string[]): Promise<void> {
  for (const item of kv) {
    const [key, value] = item.split('=');
    await run('ip', ['netns', 'exec', netnsOf(node), 'tee', procPath(key!)], { input: `${value}\n` });
  }
}
const readSysctl = async (node: string, key: string): Promise<string> => (await run('ip', ['netns', 'exec', netnsOf(node), 'cat', procPath(key)])).trim();
const DEFAULTS = ['net.ipv4.conf.all.arp_ignore=0', 'net.ipv4.conf.all.arp_announce=0', 'net.ipv4.conf.eth0.arp_ignore=0', 'net.ipv4.conf.eth0.arp_announce=0'];

async function metrics(node: string): Promise<string> {
  const [r] = await lab.probe(netnsOf(node), [`http://127.0.0.1:${cluster.agents.get(node)!.metricsPort}/metrics`], 2000);
  return r?.body ?? '';
}
const sample = (body: string, series: string): string | undefined => new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(body)?.[1];

/** Waits until the node's purelb_node_arp_config_safe is `want`; returns the last scrape. */
async function waitSafe(node: string, want: '0' | '1', timeoutMs = 10_000): Promise<string> {
  let body = '';
  await waitFor(`${node}: purelb_node_arp_config_safe ${want}`, async () => {
    body = await metrics(node);
    return sample(body, 'purelb_node_arp_config_safe') === want ? true : undefined;
  }, timeoutMs, 100).catch((e: unknown) => {
    throw new Error(`${e instanceof Error ? e.message : String(e)}; last scrape:\n${body.split('\n').filter((l) => l.includes('arp_config')).join('\n')}`);
  });
  return body;
}

interface EventView {
  reason: string;
  type: string;
  message: string;
  count?: number;
  involvedObject: { kind: string; name: string };
}
/** The Events with this reason on a Node, as the API server has them. */
async function nodeEvents(node: string, reason: string): Promise<EventView[]> {
  const sel = encodeURIComponent(`involvedObject.kind=Node,involvedObject.name=${node},reason=${reason}`);
  return (await admin.get<{ items: EventView[] }>(`/api/v1/namespaces/default/events?fieldSelector=${sel}`)).items;
}
const total = (evs: EventView[]): number => evs.reduce((n, e) => n + (e.count ?? 1), 0);
const waitEvent = (node: string, reason: string): Promise<EventView[]> =>
  waitFor(`${reason} Event on Node ${node}`, async () => {
    const evs = await nodeEvents(node, reason);
    return evs.length > 0 ? evs : undefined;
  }, 10_000, 100);

/** Waits (up to 20 s: on a loaded machine an agent that stalls withdraws its local addresses until contact is fresh) until exactly these MACs answer ARP for the address. */
async function waitArp(address: string, nodes: readonly string[]): Promise<string[]> {
  const want = nodes.map((n) => macs.get(n)!).sort();
  let last: string[] = [];
  return waitFor(`${nodes.join(' and ')} answering ARP for ${address}`, async () => {
    last = (await lab.arpWhoHas(address)).sort();
    return last.join() === want.join() ? last : undefined;
  }, 20_000, 50).catch((e: unknown) => {
    throw new Error(`${e instanceof Error ? e.message : String(e)} (last answer: ${last.join(', ') || 'none'})`);
  });
}

const setLabel = (node: string, on: boolean): Promise<unknown> => admin.mergePatch(`/api/v1/nodes/${node}`, { metadata: { labels: { [EXCLUDE_LABEL]: on ? '' : null } } });
const setOption = (on: boolean): Promise<unknown> => admin.mergePatch(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/lbnodeagents/default`, { spec: { local: { setARPSysctls: on } } });

t.test('ARP settings: checked, reported once per change, fixed by hand or by setARPSysctls; exclusion Events', async (t) => {
  t.teardown(async () => {
    await setOption(false).catch(() => undefined);
    for (const n of lab.nodes) {
      await run('ip', ['-n', n.netns, 'link', 'del', 'kube-ipvs0']).catch(() => undefined);
      await sysctl(n.name, ...DEFAULTS).catch(() => undefined);
      await setLabel(n.name, false).catch(() => undefined);
    }
  });
  await lab.createDemoService('arp');
  const [a] = await addressesOf(lab, 'arp', 1);
  const [holder] = await waitForHolders(lab, a!, (x) => x.length === 1, 'one holder', 30_000);
  const [ipvsNode, silentNode] = lab.nodes.map((n) => n.name).filter((n) => n !== holder!.node);
  // The kernel's defaults (0, 0) with no kube-ipvs0 are safe: no other node has the address.
  for (const n of lab.nodes) {
    const body = await waitSafe(n.name, '1');
    t.equal(sample(body, 'purelb_node_arp_config_problem{reason="ArpIgnore"}'), '0', `${n.name}: safe with the kernel's defaults and no kube-ipvs0`);
  }
  await waitArp(a!, [holder!.node]);
  t.pass(`only ${holder!.node} answers ARP for ${a}`);

  // 1. kube-ipvs0 (kube-proxy in IPVS mode) on a node that does not hold the address, empty
  // at first (before any Service): unsafe already, with the kernel's defaults.
  const t0 = Date.now();
  await run('ip', ['-n', netnsOf(ipvsNode!), 'link', 'add', 'kube-ipvs0', 'type', LAB_VIRTUAL_LINK_KIND]);
  await sysctl(silentNode!, 'net.ipv4.conf.all.arp_ignore=8');
  const unsafe = await waitSafe(ipvsNode!, '0');
  t.equal(sample(unsafe, 'purelb_node_arp_config_problem{reason="ArpIgnore"}'), '1', `${ipvsNode}: ArpIgnore`);
  t.equal(sample(unsafe, 'purelb_node_arp_config_problem{reason="ArpAnnounce"}'), '1', `${ipvsNode}: ArpAnnounce`);
  t.equal(sample(unsafe, 'purelb_node_arp_config_problem{reason="ArpNoReply"}'), '0', `${ipvsNode}: not ArpNoReply`);
  const [first] = await waitEvent(ipvsNode!, 'UnsafeARPConfig');
  t.equal(first!.type, 'Warning');
  t.match(first!.message, 'kube-ipvs0 is there', 'the Event names kube-ipvs0');
  // Then it holds the local address, as kube-proxy makes it: the hazard is real, that node
  // answers ARP for an address it does not hold.
  await run('ip', ['-n', netnsOf(ipvsNode!), 'addr', 'add', `${a}/32`, 'dev', 'kube-ipvs0']);
  await waitArp(a!, [holder!.node, ipvsNode!]);
  t.pass(`with kube-ipvs0 and arp_ignore 0, ${ipvsNode} answers ARP for ${a} too`);
  const warn = await waitFor('the Event naming the address', async () => (await nodeEvents(ipvsNode!, 'UnsafeARPConfig')).find((e) => e.message.includes(`(${a})`)), 10_000, 100);
  t.equal(warn.type, 'Warning');
  t.match(warn.message, `kube-ipvs0 holds 1 address(es) of PureLB's Services (${a}) and arp_ignore on eth0 is 0 (all=0, eth0=0)`, 'the Event names kube-ipvs0, the address and the values read');
  t.match(warn.message, 'net.ipv4.conf.all.arp_ignore=1 and net.ipv4.conf.all.arp_announce=2', 'the Event names the sysctls to set');
  t.match(warn.message, 'ipvs.strictARP: true', 'the Event names kube-proxy\'s setting');
  const line = cluster.agents.get(ipvsNode!)!.tail(400).split('\n').find((l) => l.includes('ARP settings unsafe') && l.includes(a!));
  t.ok(line, `${ipvsNode} logs the problem, naming ${a}`);
  t.match(line ?? '', /ipvs\.strictARP: true[^"]*--ipvs-strict-arp/, 'the log line names strictARP and the flag');
  t.match(line ?? '', 'net.ipv4.conf.all.arp_ignore=1', 'the log line names the sysctl');
  const silent = await waitSafe(silentNode!, '0');
  t.equal(sample(silent, 'purelb_node_arp_config_problem{reason="ArpNoReply"}'), '1', `${silentNode}: arp_ignore 8 is ArpNoReply`);
  t.match((await waitEvent(silentNode!, 'UnsafeARPConfig'))[0]!.message, 'arp_ignore on eth0 is 8 (all=8, eth0=0)', `${silentNode}: the Event says what was read`);
  t.equal(sample(await metrics(holder!.node), 'purelb_node_arp_config_safe'), '1', `${holder!.node} (neither) stays safe`);

  // 2. The exclusion label on a node (not the holder): one Event, and one when it goes.
  await setLabel(silentNode!, true);
  const [excluded] = await waitEvent(silentNode!, 'ExcludedFromLoadBalancing');
  t.match(excluded!.message, EXCLUDE_LABEL, 'the exclusion Event names the label');
  await setLabel(silentNode!, false);
  await waitEvent(silentNode!, 'IncludedInLoadBalancing');

  // 3. Fixed by hand: safe again (metric, a Normal Event), and one MAC answers.
  await sysctl(ipvsNode!, 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2');
  await sysctl(silentNode!, 'net.ipv4.conf.all.arp_ignore=0');
  await waitSafe(ipvsNode!, '1');
  await waitSafe(silentNode!, '1');
  t.pass('both nodes report safe after the fix');
  t.equal((await waitEvent(ipvsNode!, 'ARPConfigSafe'))[0]!.type, 'Normal', 'a Normal Event when it is safe again');
  await waitArp(a!, [holder!.node]);
  t.pass(`with arp_ignore 1, only ${holder!.node} answers ARP for ${a}, kube-ipvs0 or not`);

  // 4. Back to the defaults, then setARPSysctls: every agent writes the strict values.
  await sysctl(ipvsNode!, ...DEFAULTS);
  await waitSafe(ipvsNode!, '0');
  await setOption(true);
  await waitSafe(ipvsNode!, '1');
  for (const n of lab.nodes) {
    await waitFor(`${n.name}: the strict values written`, async () => ((await readSysctl(n.name, 'net.ipv4.conf.all.arp_ignore')) === '1' ? true : undefined), 10_000, 100);
    t.equal(await readSysctl(n.name, 'net.ipv4.conf.all.arp_ignore'), '1', `${n.name}: net.ipv4.conf.all.arp_ignore read back 1`);
    t.equal(await readSysctl(n.name, 'net.ipv4.conf.all.arp_announce'), '2', `${n.name}: net.ipv4.conf.all.arp_announce read back 2`);
  }
  const set = await waitEvent(ipvsNode!, 'ARPSysctlsSet');
  t.ok(set.some((e) => e.message.startsWith('set net.ipv4.conf.all.arp_ignore=1 (was 0)')), 'the agent reports what it changed on the Node');
  t.match(cluster.agents.get(ipvsNode!)!.tail(400), 'set net.ipv4.conf.all.arp_announce=2 (was 0)', 'and in its log');
  await waitArp(a!, [holder!.node]);
  t.pass(`only ${holder!.node} answers ARP for ${a}`);

  // Once per change, not per check (a check every second, for several seconds): two
  // unsafe verdicts on the kube-ipvs0 node in step 1 (empty, then holding the address) and
  // one in step 4; one exclusion, one inclusion.
  t.equal(total(await nodeEvents(ipvsNode!, 'UnsafeARPConfig')), 3, `${ipvsNode}: UnsafeARPConfig three times (${Math.round((Date.now() - t0) / 1000)} s of checks)`);
  t.equal(total(await nodeEvents(silentNode!, 'UnsafeARPConfig')), 1, `${silentNode}: UnsafeARPConfig once`);
  t.equal(total(await nodeEvents(holder!.node, 'UnsafeARPConfig')), 0, `${holder!.node}: none`);
  t.equal(total(await nodeEvents(silentNode!, 'ExcludedFromLoadBalancing')), 1, 'one exclusion Event');
  t.equal(total(await nodeEvents(silentNode!, 'IncludedInLoadBalancing')), 1, 'one inclusion Event');
});
