// The node agents in the lab: real netlink in node namespaces, real gossip between them,
// a real API server, and a client namespace that asks the addresses.
import t from 'tap';
import { LAB_VIRTUAL_LINK_KIND, LAN, PURELB_NAMESPACE, ip, run, startAgent, waitFor, withLab } from '@purelb/lab';
import { addressesOf, annotations, answeredBy, startCluster, waitForHolders } from './e2e-helpers.ts';

const lab = await withLab(t, { nodes: 3 });
const admin = lab.controlPlane.admin;
const cluster = await startCluster(lab, t);
const macs = await lab.nodeMacs();

/** valid_lft and preferred_lft of an address on a node, seconds (4294967295: forever), as `ip -j addr` reports them. */
async function lifetimes(node: string, link: string, address: string): Promise<{ valid: number; preferred: number } | undefined> {
  const netns = lab.nodes.find((n) => n.name === node)!.netns;
  const links = JSON.parse(await ip('-n', netns, '-j', 'addr', 'show', 'dev', link)) as { addr_info: { local: string; valid_life_time: number; preferred_life_time: number }[] }[];
  const a = links.flatMap((l) => l.addr_info).find((x) => x.local === address);
  return a && { valid: a.valid_life_time, preferred: a.preferred_life_time };
}

async function validLifetime(node: string, link: string, address: string): Promise<number | undefined> {
  return (await lifetimes(node, link, address))?.valid;
}

/** The source address the node's kernel picks for its own traffic to `destination` (`ip route get`). */
async function sourceFor(node: string, destination: string): Promise<string | undefined> {
  const netns = lab.nodes.find((n) => n.name === node)!.netns;
  const routes = JSON.parse(await ip('-n', netns, '-j', 'route', 'get', destination)) as { prefsrc?: string }[];
  return routes[0]?.prefsrc;
}

t.test('a local v4 address: one node holds it on its LAN interface, and it answers', async (t) => {
  await lab.createDemoService('web4');
  const [a] = await addressesOf(lab, 'web4', 1);
  const [h] = await waitForHolders(lab, a!, (x) => x.length === 1, 'one holder');
  t.same([h!.link, h!.prefixLength], ['eth0', 24], 'on eth0 with the subnet prefix');
  t.equal(await answeredBy(lab, a!), h!.node, 'the client reaches that node');
  const ann = await annotations(lab, 'web4');
  t.equal(ann['purelb.io/announcing-IPv4'], `${h!.node},eth0`, 'the winner writes announcing-IPv4');
  t.same(await lab.arpWhoHas(a!), [macs.get(h!.node)], 'exactly one MAC answers ARP: the holder\'s');
  const lft = await validLifetime(h!.node, 'eth0', a!);
  t.ok(lft !== undefined && lft > 0 && lft <= 10, `a local address carries the agent's lifetime (valid_lft ${lft} s)`);
});

t.test('local v6 and dual stack: each family has one holder, possibly different nodes', async (t) => {
  await lab.createDemoService('web6', { families: ['IPv6'] });
  const [a6] = await addressesOf(lab, 'web6', 1);
  const [h6] = await waitForHolders(lab, a6!, (x) => x.length === 1, 'one holder');
  t.equal(await answeredBy(lab, a6!), h6!.node);
  t.equal((await annotations(lab, 'web6'))['purelb.io/announcing-IPv6'], `${h6!.node},eth0`);
  // Deprecated from the start: it answers, but the node never uses it as a source.
  const lft = await lifetimes(h6!.node, 'eth0', a6!);
  t.ok(lft && lft.valid > 0 && lft.valid <= 10, `a local v6 address carries the agent's lifetime (valid_lft ${lft?.valid} s)`);
  t.equal(lft?.preferred, 0, 'a local v6 address is deprecated (preferred_lft 0)');
  const src = await sourceFor(h6!.node, LAN.clientV6);
  t.ok(src !== undefined && src !== a6, `the holder's own traffic to the client leaves from its node address (${src}), not from ${a6}`);

  await lab.createDemoService('dual', { families: ['IPv4', 'IPv6'] });
  const [d4, d6] = await addressesOf(lab, 'dual', 2);
  const [x4] = await waitForHolders(lab, d4!, (x) => x.length === 1, 'one v4 holder');
  const [x6] = await waitForHolders(lab, d6!, (x) => x.length === 1, 'one v6 holder');
  t.equal(await answeredBy(lab, d4!), x4!.node);
  t.equal(await answeredBy(lab, d6!), x6!.node);
  const ann = await annotations(lab, 'dual');
  t.equal(ann['purelb.io/announcing-IPv4'], `${x4!.node},eth0`);
  t.equal(ann['purelb.io/announcing-IPv6'], `${x6!.node},eth0`);
});

t.test('a virtual address: every node holds it on the virtual interface with the aggregation', async (t) => {
  await lab.createDemoService('virt', { families: ['IPv4', 'IPv6'], annotations: { 'purelb.io/service-group': 'virtual' } });
  const [v4, v6] = await addressesOf(lab, 'virt', 2);
  const h4 = await waitForHolders(lab, v4!, (x) => x.length === 3, 'all three nodes');
  const h6 = await waitForHolders(lab, v6!, (x) => x.length === 3, 'all three nodes');
  t.same([...new Set(h4.map((h) => `${h.link}/${h.prefixLength}`))], ['kube-lb0/32']);
  t.same([...new Set(h6.map((h) => `${h.link}/${h.prefixLength}`))], ['kube-lb0/128']);
  for (const [a, hs] of [[v4!, h4], [v6!, h6]] as const) for (const h of hs) t.equal(await validLifetime(h.node, 'kube-lb0', a), 4294967295, `${h.node}: ${a} is permanent (virtual addresses carry no lifetime)`);
  for (const h of h6) t.equal((await lifetimes(h.node, 'kube-lb0', v6!))?.preferred, 0, `${h.node}: ${v6} is deprecated (preferred_lft 0), so never a source address`);
  const ann = await annotations(lab, 'virt');
  t.equal(ann['purelb.io/announcing-IPv4'], undefined, 'no single node announces a virtual address');
});

t.test('externalTrafficPolicy Local on a virtual address: only nodes with a ready endpoint', async (t) => {
  await lab.createDemoService('etp-local', { annotations: { 'purelb.io/service-group': 'virtual' }, externalTrafficPolicy: 'Local', endpointNodes: ['node-2'] });
  const [a] = await addressesOf(lab, 'etp-local', 1);
  const h = await waitForHolders(lab, a!, (x) => x.join() === 'node-2', 'only node-2');
  t.same(h.map((x) => x.node), ['node-2']);
  // The endpoint moves: node-3 becomes ready, node-2 does not.
  await admin.mergePatch(`/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/etp-local-ipv4`, {
    endpoints: [{ addresses: ['192.0.2.13'], nodeName: 'node-3', conditions: { ready: true } }],
  });
  const moved = await waitForHolders(lab, a!, (x) => x.join() === 'node-3', 'only node-3');
  t.same(moved.map((x) => x.node), ['node-3'], 'follows the ready endpoints');
});

t.test('two Services sharing an address: one holder, both announced', async (t) => {
  const share = { 'purelb.io/allow-shared-ip': 'pair' };
  await lab.createDemoService('pair-a', { annotations: share });
  const [a] = await addressesOf(lab, 'pair-a', 1);
  await lab.controlPlane.admin.create('/api/v1/namespaces/default/services', {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'pair-b', annotations: share },
    spec: { type: 'LoadBalancer', ports: [{ port: 8443, protocol: 'TCP' }], allocateLoadBalancerNodePorts: false },
  });
  const [b] = await addressesOf(lab, 'pair-b', 1);
  t.equal(b, a, 'the same address');
  const [h] = await waitForHolders(lab, a!, (x) => x.length === 1, 'one holder');
  await t.resolves(
    (async () => {
      for (let i = 0; i < 200; i++) {
        const x = await annotations(lab, 'pair-b');
        if (x['purelb.io/announcing-IPv4'] === `${h!.node},eth0`) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error('pair-b was never announced');
    })(),
    'both Services carry the holder\'s announcing annotation',
  );
});

t.test('deleting a Service withdraws its address from every node', async (t) => {
  await lab.createDemoService('gone', { annotations: { 'purelb.io/service-group': 'virtual' } });
  const [a] = await addressesOf(lab, 'gone', 1);
  await waitForHolders(lab, a!, (x) => x.length === 3, 'everywhere');
  await admin.delete('/api/v1/namespaces/default/services/gone');
  t.same(await waitForHolders(lab, a!, (x) => x.length === 0, 'nowhere'), []);
});

t.test('an LBNodeAgent edit is applied: a new virtual interface', async (t) => {
  await admin.mergePatch(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/lbnodeagents/default`, { spec: { local: { extlbint: 'kube-lb1' } } });
  const [v4] = await addressesOf(lab, 'virt', 2);
  const h = await waitForHolders(lab, v4!, (x) => x.length === 3, 'on all nodes again');
  await t.resolves(
    (async () => {
      for (let i = 0; i < 400; i++) {
        const now = await lab.holders(v4!);
        if (now.length === 3 && now.every((x) => x.link === 'kube-lb1')) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`still on ${JSON.stringify(await lab.holders(v4!))}`);
    })(),
    'virtual addresses moved to kube-lb1',
  );
  t.equal(h.length, 3);
  for (const n of lab.nodes) t.same(await lab.links(n).then((l) => l.filter((x) => x === 'kube-lb0')), [], `${n.name}: the agent removed the kube-lb0 it had created`);
});

t.test('a restarted agent keeps the addresses it holds: no flap', async (t) => {
  await lab.createDemoService('steady', { annotations: { 'purelb.io/service-group': 'virtual' } });
  const [a] = await addressesOf(lab, 'steady', 1);
  await waitForHolders(lab, a!, (x) => x.length === 3, 'everywhere');
  const node = lab.nodes[1]!;
  const old = cluster.agents.get(node.name)!;
  let missing = 0;
  let sampling = true;
  const sampler = (async () => {
    for (let i = 0; sampling && i < 5000; i++) {
      if (!(await lab.holders(a!)).some((h) => h.node === node.name)) missing++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  old.child.kill('SIGKILL');
  await old.exited();
  const fresh = await startAgent(lab.controlPlane, node);
  cluster.agents.set(node.name, fresh);
  await new Promise((r) => setTimeout(r, 3000));
  sampling = false;
  await sampler;
  t.equal(missing, 0, `${a} never left ${node.name} while its agent was killed and restarted`);
  t.equal((await lab.holders(a!)).length, 3);
});

t.test('an address removed behind the agent\'s back is restored', async (t) => {
  await lab.createDemoService('restore');
  const [a] = await addressesOf(lab, 'restore', 1);
  const [h] = await waitForHolders(lab, a!, (x) => x.length === 1, 'one holder');
  const node = lab.nodes.find((n) => n.name === h!.node)!;
  const t0 = Date.now();
  await run('ip', ['-n', node.netns, 'addr', 'del', `${a}/24`, 'dev', 'eth0']);
  const back = await waitForHolders(lab, a!, (x) => x.length === 1, 'restored', 5_000);
  t.equal(back[0]!.node, h!.node, `restored on ${h!.node} in ${Date.now() - t0} ms`);
  t.ok(Date.now() - t0 < 2_000, 'within two seconds, not at the next periodic pass');
});

t.test('kube-proxy in IPVS mode: a Service address kube-proxy put on kube-ipvs0 of every node is still announced, by one node', async (t) => {
  // As kube-proxy does in IPVS mode with strictARP (which MetalLB and PureLB users must set):
  // arp_ignore 1 and arp_announce 2, and every Service address on the dummy link kube-ipvs0,
  // here before the Service is even allocated.
  const address = '192.0.2.231';
  const sysctls = ['net.ipv4.conf.all.arp_ignore', 'net.ipv4.conf.all.arp_announce'];
  const before = new Map<string, string[]>();
  t.teardown(async () => {
    for (const n of lab.nodes) {
      await run('ip', ['-n', n.netns, 'link', 'del', 'kube-ipvs0']).catch(() => undefined);
      const old = before.get(n.name);
      if (old) for (const [i, key] of sysctls.entries()) await run('ip', ['netns', 'exec', n.netns, 'sysctl', '-qw', `${key}=${old[i]}`]).catch(() => undefined);
    }
  });
  for (const n of lab.nodes) {
    before.set(n.name, await Promise.all(sysctls.map(async (key) => (await run('ip', ['netns', 'exec', n.netns, 'sysctl', '-n', key])).trim())));
    await run('ip', ['netns', 'exec', n.netns, 'sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2']);
    // kube-proxy makes a dummy link; the lab's kernel may lack the dummy driver, and the agent
    // reads the link's name, not its kind.
    await run('ip', ['-n', n.netns, 'link', 'add', 'kube-ipvs0', 'type', LAB_VIRTUAL_LINK_KIND]);
    await run('ip', ['-n', n.netns, 'addr', 'add', `${address}/32`, 'dev', 'kube-ipvs0']);
  }
  await lab.createDemoService('ipvs', { annotations: { 'purelb.io/addresses': address } });
  t.same(await addressesOf(lab, 'ipvs', 1), [address]);
  const onLan = await waitFor(`${address} held on eth0 by one node`, async () => {
    const all = await lab.holders(address);
    return all.filter((x) => x.link === 'eth0').length === 1 ? all : undefined;
  }, 10_000, 20);
  const [h] = onLan.filter((x) => x.link === 'eth0');
  t.equal(onLan.filter((x) => x.link === 'kube-ipvs0').length, 3, 'kube-proxy\'s copies stay where they are');
  t.same(await lab.arpWhoHas(address), [macs.get(h!.node)], 'exactly one MAC answers ARP: the holder\'s');
  t.equal(await answeredBy(lab, address), h!.node, 'the client reaches the holder');
  const events = await admin.get<{ items: { reason: string }[] }>('/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dipvs');
  t.notOk(events.items.some((e) => e.reason === 'AddressInUseByNode'), 'no node takes kube-proxy\'s copy for an address of its own');
});
