// The lab's cluster mode: real nodes (containerd, runc, kubelet, kube-proxy in namespaces),
// PureLB installed with `helm install` of charts/purelb from our images, the demo
// Deployment behind LoadBalancer Services, asked from the client namespace through
// kube-proxy. Never skipped: a missing prerequisite fails with what is missing.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import t from 'tap';
import {
  CHART_DIR,
  CLUSTER_ADDRESSES,
  HttpProber,
  CLUSTER_PURELB_NAMESPACE,
  type ClusterLab,
  LAN,
  createDemoLoadBalancer,
  deployDemo,
  installPureLBChart,
  labNamespaces,
  loadBalancerAddresses,
  parseDemoAnswer,
  pods,
  run,
  urlOf,
  waitFor,
  withClusterLab,
} from '../src/index.ts';

// The first run on a machine builds the binaries (about 6 min on 2 cores, more when busy).
t.setTimeout(30 * 60_000);
const NS = CLUSTER_PURELB_NAMESPACE;
const started = Date.now();
const hostSysctls = (): string => ['vm/overcommit_memory', 'kernel/panic', 'kernel/panic_on_oops'].map((k) => readFileSync(`/proc/sys/${k}`, 'utf8').trim()).join(' ');
const hostSysctlsBefore = hostSysctls();
let lab: ClusterLab;
try {
  lab = await withClusterLab(t, { nodes: 3, onProgress: (l) => t.comment(l) });
} catch (e) {
  t.fail(`the cluster lab did not start: ${e instanceof Error ? e.message : String(e)}`);
  t.end();
  process.exit(1);
}
t.comment(`cluster lab ${lab.id}: ${lab.nodes.length} nodes Ready in ${(lab.bootMs / 1000).toFixed(1)} s`);
const admin = lab.admin;

/** The answers of `count` GETs of a URL from the client, parsed (unanswered ones left out). */
async function ask(url: string, count: number, timeoutMs = 1000): Promise<{ pod: string; node: string; client: string }[]> {
  const r = await lab.probe(Array.from({ length: count }, () => url), timeoutMs);
  return r.flatMap((x) => {
    const a = x.ok ? parseDemoAnswer(x.body) : undefined;
    return a ? [a] : [];
  });
}

t.test('the nodes are real: Ready, each with its own kubelet, containerd and kube-proxy', async (t) => {
  const nodes = await admin.get<{ items: { metadata: { name: string }; status: { nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string } } }[] }>('/api/v1/nodes');
  t.same(nodes.items.map((n) => n.metadata.name).sort(), lab.nodes.map((n) => n.name));
  for (const n of nodes.items) {
    t.match(n.status.nodeInfo.kubeletVersion, /^v1\.34\./, `${n.metadata.name}: kubelet`);
    t.match(n.status.nodeInfo.containerRuntimeVersion, /^containerd:\/\/v?2\./, `${n.metadata.name}: containerd`);
  }
  for (const n of lab.nodes) {
    t.equal((await lab.inNode(n, 'hostname', [])).trim(), n.name, `${n.name} has its own UTS namespace`);
    t.equal((await lab.inNode(n, 'cat', ['/proc/sys/vm/overcommit_memory'])).trim(), '1', `${n.name} sees the fake sysctl`);
    t.match(await lab.inNode(n, 'nft', ['list', 'tables']), /ip kube-proxy/, `${n.name}: kube-proxy's nftables table is in the node's namespace`);
  }
  t.equal(hostSysctls(), hostSysctlsBefore, 'the host\'s own vm.overcommit_memory, kernel.panic and kernel.panic_on_oops are unchanged');
});

t.test('(a) helm install of charts/purelb: both daemons Ready through their probes, the allocator elects a leader', async (t) => {
  const out = await installPureLBChart(lab);
  t.match(out, /STATUS: deployed/, 'helm install deployed the release');
  const agents = await waitFor(
    'an agent Pod Ready on every node and both allocator replicas Ready',
    async () => {
      const a = await pods(admin, NS, 'app.kubernetes.io/name=lbnodeagent');
      const l = await pods(admin, NS, 'app.kubernetes.io/name=allocator');
      return a.length === lab.nodes.length && a.every((p) => p.ready) && l.length === 2 && l.every((p) => p.ready) ? { a, l } : undefined;
    },
    150_000,
    500,
  ).catch(async (e: unknown) => {
    t.comment(await lab.kubectl(['get', 'pods', '-A', '-o', 'wide']).catch(() => ''));
    t.comment(await lab.kubectl(['describe', 'pods', '-n', NS]).catch(() => ''));
    throw e;
  });
  t.same(agents.a.map((p) => p.node).sort(), lab.nodes.map((n) => n.name), 'one agent per node');
  const lease = await waitFor(
    'the allocator Lease to have a holder',
    async () => {
      const l = await admin.get<{ spec?: { holderIdentity?: string } }>(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/purelb-allocator`).catch(() => undefined);
      return l?.spec?.holderIdentity ? l.spec.holderIdentity : undefined;
    },
    60_000,
    250,
  );
  t.ok(agents.l.some((p) => p.name === lease), `the Lease is held by an allocator Pod (${lease})`);
  // The agent runs with NET_ADMIN and NET_RAW only, not privileged (the chart's securityContext, under a real runc).
  const ds = await admin.get<{ spec: { template: { spec: { containers: { securityContext: { privileged?: boolean; capabilities?: { add?: string[] } } }[] } } } }>(`/apis/apps/v1/namespaces/${NS}/daemonsets/lbnodeagent`);
  const sc = ds.spec.template.spec.containers[0]!.securityContext;
  t.equal(sc.privileged, false);
  t.same(sc.capabilities?.add, ['NET_ADMIN', 'NET_RAW']);
  // What runc made of it: the agent process holds exactly CAP_NET_ADMIN (12) and CAP_NET_RAW (13).
  for (const n of lab.nodes) {
    const pids = (await run('ip', ['netns', 'pids', n.netns])).split('\n').filter(Boolean);
    const agent = pids.find((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('lbnodeagent');
      } catch {
        return false;
      }
    });
    t.ok(agent, `${n.name}: the agent process is in the node's network namespace`);
    if (!agent) continue;
    const status = readFileSync(`/proc/${agent}/status`, 'utf8');
    t.match(status, /^CapEff:\s+0000000000003000$/m, `${n.name}: effective capabilities NET_ADMIN and NET_RAW only`);
    t.match(status, /^CapBnd:\s+0000000000003000$/m, `${n.name}: and nothing more in the bounding set`);
    t.match(status, /^NoNewPrivs:\s+1$/m, `${n.name}: no privilege escalation`);
    t.match(status, /^Seccomp:\s+2$/m, `${n.name}: a seccomp filter (RuntimeDefault)`);
  }
});

let local: { v4: string; v6: string };
let virtual: { v4: string; v6: string };

t.test('(b) a local and a virtual address, dual stack, answer from the client through kube-proxy, from pods on other nodes', async (t) => {
  await deployDemo(lab, { replicas: lab.nodes.length });
  await createDemoLoadBalancer(lab, 'demo');
  await createDemoLoadBalancer(lab, 'demo-virtual', { serviceGroup: 'virtual' });
  await waitFor('the demo Pods to be Ready', async () => {
    const p = await pods(admin, 'default', 'app=demo');
    return p.length === lab.nodes.length && p.every((x) => x.ready) ? p : undefined;
  }, 90_000, 250);
  local = await loadBalancerAddresses(admin, 'demo');
  virtual = await loadBalancerAddresses(admin, 'demo-virtual');
  t.match(local.v4, /^192\.0\.2\.(2[0-3]\d)$/, `local IPv4 ${local.v4} from the local pool`);
  t.match(local.v6, /^2001:db8::2[0-3][0-9a-f]$/, `local IPv6 ${local.v6}`);
  t.match(virtual.v4, /^198\.51\.100\.2[01]\d$/, `virtual IPv4 ${virtual.v4} from the virtual pool`);
  t.match(virtual.v6, /^2001:db8:200::/, `virtual IPv6 ${virtual.v6}`);

  for (const address of [local.v4, local.v6, virtual.v4, virtual.v6]) {
    const url = urlOf(address);
    await waitFor(`${url} to answer`, async () => ((await ask(url, 1)).length === 1 ? true : undefined), 60_000, 250);
    // Cluster policy: kube-proxy spreads connections over every pod, whichever node got them.
    const answers = await ask(url, 12);
    t.ok(answers.length >= 10, `${url}: ${answers.length}/12 answered`);
    const nodes = new Set(answers.map((a) => a.node));
    t.ok(nodes.size >= 2, `${url}: answered by pods on ${[...nodes].join(', ')}`);
  }
  const holders = await lab.holders(local.v4);
  t.equal(holders.length, 1, `${local.v4} is on one node (${holders.map((h) => `${h.node} ${h.link}`).join(', ')})`);
  t.equal(holders[0]?.link, 'eth0');
  const vh = await lab.holders(virtual.v4);
  t.equal(vh.length, lab.nodes.length, `${virtual.v4} is on every node`);
  t.ok(vh.every((h) => h.link === 'kube-lb0'), 'on kube-lb0');
});

t.test('(b2) a node never uses one of our addresses as the source of its own traffic (IPv6 addresses deprecated)', async (t) => {
  t.ok(local && virtual, 'needs (b)');
  if (!local || !virtual) return;
  const ours = new Set([local.v4, local.v6, virtual.v4, virtual.v6]);
  // kube-proxy masquerades a connection it forwards to a pod on another node: the source it
  // picks is what that pod sees as the client. It must be the holder's own address. (Each
  // family's address is elected on its own: the two may be on different nodes.)
  for (const [address, family] of [[local.v4, 'v4'], [local.v6, 'v6']] as const) {
    const holders = await lab.holders(address);
    t.equal(holders.length, 1, `${address} has one holder`);
    const holder = holders[0]?.node;
    const own = lab.nodes.find((n) => n.name === holder)?.[family];
    const answers = await ask(urlOf(address), 24);
    const remote = answers.filter((a) => a.node !== holder);
    t.ok(remote.length > 0, `${address}: some of ${answers.length} answers came from pods on other nodes than ${holder}`);
    t.same([...new Set(remote.map((a) => a.client))], [own], `${address}: pods on other nodes saw ${holder}'s own address ${own} as the client (kube-proxy's masquerade source)`);
    t.notOk(answers.some((a) => ours.has(a.client)), `${address}: no pod saw one of our addresses as the client`);
  }
  for (const address of [virtual.v4, virtual.v6]) {
    const answers = await ask(urlOf(address), 24);
    t.ok(answers.length >= 20, `${address}: ${answers.length}/24 answered`);
    t.notOk(answers.some((a) => ours.has(a.client)), `${address}: no pod saw one of our addresses as the client (${[...new Set(answers.map((a) => a.client))].join(', ')})`);
  }
  // The kernel's own choice, on every node: toward the client and toward another node.
  for (const n of lab.nodes) {
    const v6 = await lab.inNode(n, 'ip', ['-6', '-o', 'addr', 'show']);
    const line = v6.split('\n').find((l) => l.includes(` ${virtual.v6}/`));
    t.match(line ?? '', /kube-lb0.*preferred_lft 0sec/, `${n.name}: the virtual ${virtual.v6} is on kube-lb0, deprecated (preferred_lft 0)`);
    const other = lab.nodes.find((x) => x !== n)!;
    for (const [to, own] of [[LAN.clientV6, n.v6], [other.v6, n.v6], [LAN.clientV4, n.v4], [other.v4, n.v4]] as const) {
      const route = await lab.inNode(n, 'ip', ['route', 'get', to]);
      t.match(route, new RegExp(`\\bsrc ${own.replace(/[.]/g, '\\.')}\\b`), `${n.name}: traffic to ${to} leaves from ${own}`);
    }
  }
  const v6HolderName = (await lab.holders(local.v6))[0]?.node;
  const v6Holder = lab.nodes.find((n) => n.name === v6HolderName);
  t.ok(v6Holder, `${local.v6} has a holder`);
  if (!v6Holder) return;
  const onHolder = (await lab.inNode(v6Holder, 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth0'])).split('\n').find((l) => l.includes(` ${local.v6}/`));
  t.match(onHolder ?? '', /preferred_lft 0sec/, `${v6Holder.name}: the local ${local.v6} on eth0 is deprecated`);
});

// PureLB supports externalTrafficPolicy Local on virtual addresses (only nodes with a
// ready endpoint hold them); on local addresses it reports TrafficPolicyNotSupported and
// elects a holder as for Cluster. So the virtual Service is the one switched to Local.
t.test('(c) externalTrafficPolicy Local follows the real endpoints and keeps the client address', async (t) => {
  t.ok(virtual, 'needs (b)');
  if (!virtual) return;
  await admin.mergePatch('/api/v1/namespaces/default/services/demo-virtual', { spec: { externalTrafficPolicy: 'Local' } });
  await admin.mergePatch('/apis/apps/v1/namespaces/default/deployments/demo', { spec: { replicas: 1 } });
  const only = await waitFor('one demo Pod left', async () => {
    const all = await pods(admin, 'default', 'app=demo');
    return all.length === 1 && all[0]!.ready && !all[0]!.deleting ? all[0]! : undefined;
  }, 60_000, 250);
  t.comment(`the demo pod left: ${only.name} on ${only.node}`);
  for (const address of [virtual.v4, virtual.v6]) {
    await waitFor(`${address} to be held by ${only.node} only`, async () => {
      const h = await lab.holders(address);
      return h.length === 1 && h[0]!.node === only.node ? true : undefined;
    }, 60_000, 250);
    t.pass(`${address} is on ${only.node} only (kube-lb0), the node of the one ready endpoint`);
  }
  const urls = [urlOf(virtual.v4), urlOf(virtual.v6)];
  const holder = lab.nodes.find((n) => n.name === only.node)!;
  const answers = await waitFor('both addresses to answer through ' + holder.name, async () => {
    const r = await lab.probeVia(holder, urls, 1000);
    return r.every((x) => x.ok) ? r : undefined;
  }, 30_000, 250);
  for (const [i, r] of answers.entries()) {
    const a = parseDemoAnswer(r.body);
    t.equal(a?.pod, only.name, `${r.url} through ${holder.name}: answered by ${only.name}`);
    t.equal(a?.client, i === 0 ? LAN.clientV4 : LAN.clientV6, `${r.url}: the demo saw the client's own address (no SNAT)`);
  }
  for (const n of lab.nodes.filter((x) => x !== holder)) {
    const r = await lab.probeVia(n, urls, 700);
    t.ok(r.every((x) => !x.ok), `${n.name}, with no local endpoint, does not answer (kube-proxy drops it): ${r.map((x) => (x.ok ? x.body.trim() : 'no answer')).join('; ')}`);
  }
});

t.test('(d) deleting the agent Pod on the holder node hands the local address over, never two MACs answering', async (t) => {
  t.ok(local, 'needs (b)');
  if (!local) return;
  const address = local.v4;
  const before = await lab.holders(address);
  t.equal(before.length, 1, `${address} is held by one node`);
  const holder = before[0]!.node;
  const macs = await lab.nodeMacs();
  const watch = lab.watchArp(address);
  await watch.ready;
  await watch.waitFor(`${address} to answer ARP from ${holder}`, (s) => s.macs.length === 1 && s.macs[0] === macs.get(holder), 10_000);
  const agent = (await pods(admin, NS, 'app.kubernetes.io/name=lbnodeagent')).find((p) => p.node === holder)!;
  const deletedAt = Date.now();
  await lab.kubectl(['delete', 'pod', `--namespace=${NS}`, agent.name, '--wait=false']);
  const moved = await watch.waitFor(`${address} to answer from another node`, (s) => s.macs.length === 1 && s.macs[0] !== macs.get(holder), 60_000, deletedAt);
  const to = [...macs].find(([, m]) => m === moved.macs[0])?.[0];
  t.comment(`${address}: ${holder} -> ${to} ${(moved.atMs - deletedAt).toFixed(0)} ms after the delete`);
  await waitFor('the replacement agent Pod to be Ready', async () => {
    const a = await pods(admin, NS, 'app.kubernetes.io/name=lbnodeagent');
    return a.length === lab.nodes.length && a.every((p) => p.ready && p.name !== agent.name) ? true : undefined;
  }, 90_000, 500);
  // Let the replacement settle in with the address where it is now.
  await new Promise((r) => setTimeout(r, 3000));
  await watch.stop();
  const sum = watch.summary();
  t.comment(`ARP samples ${sum.samples}, answered ${sum.answered}, longest unanswered ${sum.longestUnavailableMs.toFixed(0)} ms, transitions ${sum.transitions}`);
  t.ok(sum.samples > 50, 'the sampler sampled');
  t.equal(sum.duplicateSamples, 0, 'no sample had two MACs answering');
  t.ok(moved.macs[0] !== macs.get(holder), 'another node answers');
});

t.test('(d2) helm upgrade with a changed value restarts the agents one by one; the local address answers throughout', async (t) => {
  t.ok(local, 'needs (b)');
  if (!local) return;
  const address = local.v4;
  const selector = 'app.kubernetes.io/name=lbnodeagent';
  const before = await pods(admin, NS, selector);
  t.equal(before.length, lab.nodes.length, 'one agent Pod per node before the upgrade');
  const watch = lab.watchArp(address);
  await watch.waitFor(`${address} to answer ARP`, (s) => s.macs.length === 1, 10_000);
  const prober = new HttpProber(lab.network.clientNetns);
  try {
    await prober.ready;
    // A fresh connection every 100 ms, each allowed 3 s (a SYN lost to a handover is resent after 1 s).
    const http = prober.watch(address, 100, 3000);
    // Poll the agent Pods through the rollout: never more than one node without a Ready agent.
    let sampling = true;
    let worst = 0;
    let samples = 0;
    const seenNames = new Set(before.map((p) => p.name));
    const sampler = (async () => {
      while (sampling) {
        const now = await pods(admin, NS, selector);
        for (const p of now) seenNames.add(p.name);
        const readyNodes = new Set(now.filter((p) => p.ready && !p.deleting).map((p) => p.node));
        worst = Math.max(worst, lab.nodes.filter((n) => !readyNodes.has(n.name)).length);
        samples++;
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const out = await lab.helm(
      ['upgrade', 'purelb', CHART_DIR, `--namespace=${NS}`, '--reuse-values', '--set-string=lbnodeagent.podAnnotations.purelb-lab/rollout=1', '--wait', '--timeout=300s'],
      360_000,
    );
    t.match(out, /STATUS: deployed/, 'helm upgrade deployed revision 2');
    const after = await waitFor('every agent Pod replaced and Ready', async () => {
      const now = await pods(admin, NS, selector);
      const fresh = now.filter((p) => p.ready && !p.deleting && !before.some((b) => b.name === p.name));
      return fresh.length === lab.nodes.length && now.length === lab.nodes.length ? now : undefined;
    }, 120_000, 250);
    // Let the last handover settle, then stop watching.
    await new Promise((r) => setTimeout(r, 3000));
    sampling = false;
    await sampler;
    const requests = await http.stop();
    await watch.stop();
    t.same(after.map((p) => p.node).sort(), lab.nodes.map((n) => n.name), 'a new agent Pod on every node');
    t.equal(seenNames.size, 2 * lab.nodes.length, `each node's agent was replaced once (${seenNames.size} Pod names seen)`);
    t.ok(samples > 10, `the Pods were sampled through the rollout (${samples} samples)`);
    t.equal(worst, 1, 'at every sample at most one node was without a Ready agent, and the rollout did take one down (maxUnavailable 1)');
    const failed = requests.filter((r) => !r.ok);
    const slowest = Math.max(...requests.map((r) => r.elapsedMs));
    t.comment(`HTTP: ${requests.length} requests through the rollout, ${failed.length} unanswered, slowest ${slowest.toFixed(0)} ms`);
    t.ok(requests.length > 50, 'the address was asked throughout');
    t.same(failed.map((r) => `${r.startMs.toFixed(0)}+${r.elapsedMs.toFixed(0)}`), [], `${address} answered every request through the rollout`);
    const sum = watch.summary();
    t.comment(`ARP samples ${sum.samples}, answered ${sum.answered}, longest unanswered ${sum.longestUnavailableMs.toFixed(0)} ms, transitions ${sum.transitions}`);
    t.equal(sum.duplicateSamples, 0, 'no ARP sample had two MACs answering');
  } finally {
    prober.stop();
    await watch.stop();
  }
});

t.test('(e) helm uninstall withdraws every address and removes kube-lb0 on every node', async (t) => {
  t.ok(local && virtual, 'needs (b)');
  if (!local || !virtual) return;
  await lab.helm(['uninstall', 'purelb', `--namespace=${NS}`, '--wait', '--timeout=90s'], 150_000);
  await waitFor(
    'no node to hold any of the addresses, and no kube-lb0',
    async () => {
      for (const a of [local.v4, local.v6, virtual.v4, virtual.v6]) if ((await lab.holders(a)).length > 0) return undefined;
      for (const n of lab.nodes) if ((await lab.links(n)).includes('kube-lb0')) return undefined;
      return true;
    },
    60_000,
    250,
  );
  t.pass('every address withdrawn, kube-lb0 gone from every node');
});

t.test('teardown removes namespaces, cgroups, mounts and processes', async (t) => {
  const id = lab.id;
  const dir = lab.dir;
  await lab.stop();
  t.same(await labNamespaces(id), [], 'no network namespace left');
  t.notOk(existsSync(dir), 'the state directory is gone');
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  t.notOk(mounts.includes(dir), 'no mount under the state directory');
  const cgroups = await run('sh', ['-c', `ls -d /sys/fs/cgroup/*/plb-${id}-* 2>/dev/null || true`]);
  t.equal(cgroups.trim(), '', 'no node cgroup left');
  const procs = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`${dir}/`);
    } catch {
      return false;
    }
  });
  t.same(procs, [], 'no process mentions the lab directory');
  t.comment(`whole file: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  t.comment(`pools: local ${CLUSTER_ADDRESSES.localPool.v4pools[0].pool}, virtual ${CLUSTER_ADDRESSES.virtualPool.v4pools[0].pool}`);
});
