// Benchmarks for the node agent (npm run bench -- lbnodeagent), in a 3-node lab with the
// allocator and one agent per node as real processes (GARP on):
//   - Service POST to the address on a node's NIC, and to the first HTTP 200 at the client;
//   - Service DELETE to the address gone from every node;
//   - failover, three ways, each to an HTTP answer from another node: the holder's LAN
//     cable cut (agent alive, API path up: node_lost), its agent SIGKILLed with the node
//     alive (agent_killed), both at once (a dead node: node_dead); an ARP sampler in the
//     client namespace asks who has the address every 20 ms through every trial and
//     counts samples answered by two MACs;
//   - the agents' event-loop lag (purelb_event_loop_lag_seconds) while holding 1,000 addresses;
//   - the agents' resident memory holding 1,000 Services.
// Addresses on the nodes are observed through `ip monitor address` in every node
// namespace (netlink events, timestamped as they reach this process); HTTP through one
// prober process in the client namespace that keeps connections starting every few ms.
// The measured Services come from a one-address ServiceGroup (192.0.2.240 on the LAN)
// so the address is known before the POST.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient as GlueClient, loadKubeConfig } from '@purelb/k8s-glue';
import {
  AddressMonitor,
  HttpProber as Prober,
  type DaemonProcess,
  type LabNode,
  type ManagedProcess,
  PURELB_NAMESPACE,
  installPureLB,
  ip,
  run,
  shippedCommand,
  startAgent,
  startAllocator,
  startLab,
  timeCreateDelete,
  waitFor,
} from '@purelb/lab';
import { AGENT_TIMING_TARGETS, type BenchSuite, cpuSeconds, median, nowMs, percentile, machineLoad, vmRssMb } from '../../../bench/lib.ts';

const REPS = 12; // recorded repetitions of each timing (after one warm-up)
const KILL_REPS = 12;
const BULK_SERVICES = 1000;
const ADDRESS = '192.0.2.240';
const BULK_POOL = '2001:db8:6::/112';
const POST_CONCURRENCY = 16;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const repoRoot = join(import.meta.dirname, '..', '..', '..');

/** utime + stime of a process, in seconds. */
/** The node process of an agent (started through `ip netns exec`, which execs in place). */
function agentPid(p: ManagedProcess): number {
  const pid = p.pid!;
  const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  if (cmd.includes('main')) return pid;
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  if (children.length !== 1) throw new Error(`cannot find the agent process under pid ${pid}`);
  return children[0]!;
}


const p = (values: readonly number[], q: number): number => Number(percentile(values, q).toFixed(1));

/** The cumulative buckets of purelb_event_loop_lag_seconds in a /metrics text, by `le`. */
function lagBuckets(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^purelb_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

/** The smallest bucket bound (ms) holding fraction q of the observations; Infinity past the last. */
function bucketQuantileMs(buckets: ReadonlyMap<string, number>, q: number): number {
  const total = buckets.get('+Inf') ?? 0;
  const bounds = [...buckets].filter(([le]) => le !== '+Inf').map(([le, c]) => [Number(le), c] as const).sort((a, b) => a[0] - b[0]);
  for (const [le, c] of bounds) if (c >= q * total) return le * 1000;
  return Infinity;
}

const suite: BenchSuite = {
  suite: 'lbnodeagent',
  targets: {
    ...AGENT_TIMING_TARGETS,
    agent_rss_mb: ['<=', 90],
    agent_rss_mb_after_restart: ['<=', 90],
  },
  async run() {
    const started = nowMs();
    const notes: Record<string, string | number> = { machine_at_start: machineLoad() };
    // Every daemon here runs as its image runs it: the bundle, with the image's Node flags.
    await run(process.execPath, [join(repoRoot, 'tools', 'bundle.ts'), 'allocator', 'lbnodeagent'], { timeoutMs: 300_000 });
    const lab = await startLab({ nodes: 3 });
    const monitor = new AddressMonitor();
    let prober: Prober | undefined;
    let allocator: DaemonProcess | undefined;
    const agents = new Map<string, ManagedProcess>();
    const client = new GlueClient(loadKubeConfig({ kubeconfig: lab.kubeconfigPath }), { maxSockets: POST_CONCURRENCY + 4 });
    try {
      const admin = lab.controlPlane.admin;
      await installPureLB(admin, { sendgarp: true });
      const group = async (name: string, local: Record<string, unknown>): Promise<void> => {
        await admin.apply(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups/${name}`, { apiVersion: 'purelb.io/v1', kind: 'ServiceGroup', metadata: { name, namespace: PURELB_NAMESPACE }, spec: { local } });
      };
      await group('one', { v4pools: [{ pool: `${ADDRESS}-${ADDRESS}`, subnet: '192.0.2.0/24', aggregation: 'default' }] });
      await group('bulk', { v6pools: [{ pool: BULK_POOL, subnet: '2001:db8:6::/64', aggregation: '/128' }] });
      monitor.start(lab.nodes);
      allocator = await startAllocator(lab.controlPlane, { identity: 'allocator', shipped: true });
      await Promise.all(lab.nodes.map(async (n) => agents.set(n.name, await startAgent(lab.controlPlane, n, { shipped: true }))));
      prober = new Prober(lab.network.clientNetns);
      await prober.ready;
      const nodeOf = (name: string): LabNode => lab.nodes.find((n) => n.name === name)!;
      // A cut cable at the switch: the node's bridge port goes down, so its eth0 loses
      // carrier but stays up. (Setting eth0 itself down, as lab.setLinkUp does, also makes
      // the kernel drop the node's default routes, which do not come back with the link;
      // an agent restarted there then finds no default-route interface.)
      const setCableCut = (name: string, cut: boolean): Promise<string> => ip('-n', lab.network.lanNetns, 'link', 'set', `n${lab.nodes.indexOf(nodeOf(name)) + 1}`, cut ? 'down' : 'up');

      const allSwim = async (): Promise<boolean> => {
        const list = await admin.get<{ items: { metadata: { annotations?: Record<string, string> } }[] }>(`/apis/coordination.k8s.io/v1/namespaces/${PURELB_NAMESPACE}/leases?labelSelector=purelb.io%2Fcomponent%3Dlbnodeagent`);
        return list.items.length === lab.nodes.length && list.items.every((l) => l.metadata.annotations?.['purelb.io/gossip-mode'] === 'swim');
      };
      /** One holder of ADDRESS, every agent in swim mode, and the holder answers HTTP. */
      const settled = async (what: string): Promise<string> => {
        for (let attempt = 0; attempt < 30; attempt++) {
          await waitFor(`${what}: every agent in guard mode swim`, async () => ((await allSwim()) ? true : undefined), 60_000, 100);
          await monitor.when(ADDRESS, (h) => h.length === 1, 30_000, `${what}: one holder`);
          const holder = monitor.holders(ADDRESS)[0]!;
          const answer = await prober!.probe(ADDRESS);
          if (answer.body === holder && monitor.holders(ADDRESS).join() === holder) return holder;
          await sleep(1000);
        }
        throw new Error(`${what}: the cluster did not settle (one holder that answers) in 30 tries`);
      };
      const noHolder = (what: string): Promise<number> => monitor.when(ADDRESS, (h) => h.length === 0, 30_000, what);

      await waitFor('every agent in guard mode swim', async () => ((await allSwim()) ? true : undefined), 60_000, 100);
      notes.agent_rss_mb_idle_0_services = Number(median([...agents.values()].map((a) => vmRssMb(agentPid(a)))).toFixed(1));
      const demo = (name: string): Promise<void> => lab.createDemoService(name, { annotations: { 'purelb.io/service-group': 'one' } });
      const removeDemo = async (name: string): Promise<void> => {
        await client.delete(`/api/v1/namespaces/default/services/${name}`, { ignoreNotFound: true });
        await client.delete(`/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/${name}-ipv4`, { ignoreNotFound: true });
      };

      // 1-3. Create -> on a NIC, create -> HTTP 200 at the client, delete -> gone everywhere.
      const { toNicMs: toNic, toHttpMs: toHttp, toGoneMs: toGone, seen } = await timeCreateDelete({
        monitor,
        prober,
        address: ADDRESS,
        reps: REPS,
        create: demo,
        remove: (name) => client.delete(`/api/v1/namespaces/default/services/${name}`),
        cleanup: removeDemo,
        quietMs: 300,
        nicTimeoutMs: 20_000,
      });
      const holdersSeen = seen.map((x) => `${x.holders.join('+')}/${x.body}`);
      notes.create_delete_reps = `${REPS} (after 1 warm-up); holder/HTTP answerer per rep: ${holdersSeen.join(' ')}`;

      // 4. Failover, three ways, with the ARP sampler running through every trial.
      const failover = { node_lost: [] as number[], agent_killed: [] as number[], node_dead: [] as number[] };
      const killNotes: string[] = [];
      await demo('kill');
      const arp = lab.watchArp(ADDRESS);
      await arp.ready;
      for (let i = 0; i < KILL_REPS; i++) {
        for (const kind of ['node_lost', 'agent_killed', 'node_dead'] as const) {
          const holder = await settled(`${kind} rep ${i}`);
          await sleep(1000);
          const victim = agents.get(holder)!;
          const answered = prober.probe(ADDRESS, holder);
          answered.catch(() => undefined);
          const t0 = nowMs();
          if (kind !== 'node_lost') victim.child.kill('SIGKILL');
          if (kind !== 'agent_killed') await setCableCut(holder, true);
          const { at, body } = await answered;
          failover[kind].push(at - t0);
          killNotes.push(`${kind} ${holder}->${body} ${(at - t0).toFixed(0)}`);
          if (kind !== 'node_lost') await victim.exited();
          // The old holder's address must be gone before its cable comes back or its agent restarts.
          await monitor.when(ADDRESS, (h) => !h.includes(holder), 30_000, `${kind} rep ${i}: ${holder} no longer holds it`);
          if (kind !== 'agent_killed') await setCableCut(holder, false);
          if (kind !== 'node_lost') agents.set(holder, await startAgent(lab.controlPlane, nodeOf(holder), { shipped: true }));
        }
      }
      await settled('after the failovers');
      await arp.stop();
      const arpSummary = arp.summary();
      await removeDemo('kill');
      await noHolder('kill Service deleted');
      notes.failover_reps = `${KILL_REPS} of each: ${killNotes.join(', ')}`;
      notes.arp_samples = `${arpSummary.samples} who-has samples through every failover trial, ${arpSummary.duplicateSamples} answered by two MACs, longest unanswered ${Math.round(arpSummary.longestUnavailableMs)} ms`;

      // 5. 1,000 Services with virtual IPv6 addresses: every node holds all of them.
      let next = 0;
      const b0 = nowMs();
      const worker = async (): Promise<void> => {
        while (next < BULK_SERVICES) {
          const name = `bulk-${next++}`;
          await client.create('/api/v1/namespaces/default/services', {
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name, namespace: 'default', annotations: { 'purelb.io/service-group': 'bulk' } },
            spec: { type: 'LoadBalancer', ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack', allocateLoadBalancerNodePorts: false, ports: [{ name: 'http', protocol: 'TCP', port: 80 }] },
          });
        }
      };
      await Promise.all(Array.from({ length: POST_CONCURRENCY }, worker));
      const postsDone = nowMs();
      const bulkCount = async (n: LabNode): Promise<number> => {
        const links = JSON.parse(await ip('-n', n.netns, '-j', 'addr', 'show', 'dev', 'kube-lb0')) as { addr_info: { local: string }[] }[];
        return links.flatMap((l) => l.addr_info).filter((a) => a.local.startsWith('2001:db8:6:')).length;
      };
      await waitFor(`all nodes to hold ${BULK_SERVICES} virtual addresses`, async () => {
        const counts = await Promise.all(lab.nodes.map(bulkCount));
        return counts.every((c) => c === BULK_SERVICES) ? true : undefined;
      }, 300_000, 500);
      notes.bulk_announced_seconds = Number(((nowMs() - b0) / 1000).toFixed(1));
      notes.bulk_posts_seconds = Number(((postsDone - b0) / 1000).toFixed(1));
      await sleep(5000);
      const lagBefore = new Map<string, Map<string, number>>();
      for (const n of lab.nodes) {
        const [r] = await lab.probe(n.netns, [`http://127.0.0.1:${(agents.get(n.name) as DaemonProcess).metricsPort}/metrics`], 5000);
        lagBefore.set(n.name, lagBuckets(r?.body ?? ''));
      }
      const pids = new Map([...agents].map(([n, a]) => [n, agentPid(a)]));
      const cpu0 = new Map([...pids].map(([n, pid]) => [n, cpuSeconds(pid)]));
      const w0 = nowMs();
      const perAgent = new Map<string, number[]>([...pids.keys()].map((n) => [n, []]));
      for (let i = 0; i < 10; i++) {
        if (i > 0) await sleep(1000);
        for (const [n, pid] of pids) perAgent.get(n)!.push(vmRssMb(pid));
      }
      const window = (nowMs() - w0) / 1000;
      notes.agent_cpu_percent_holding_1000 = [...pids].map(([n, pid]) => `${n} ${((100 * (cpuSeconds(pid) - cpu0.get(n)!)) / window).toFixed(0)}%`).join(', ');
      const agentRss = [...perAgent.values()].map((v) => median(v));
      notes.agent_rss_mb_per_agent = [...perAgent].map(([n, v]) => `${n} ${median(v).toFixed(1)}`).join(', ');
      const heap: string[] = [];
      for (const n of lab.nodes) {
        const port = (agents.get(n.name) as DaemonProcess).metricsPort;
        const [r] = await lab.probe(n.netns, [`http://127.0.0.1:${port}/metrics`], 5000);
        const get = (metric: string): string => (Number(new RegExp(`^${metric}(?:\\{[^}]*\\})?\\s+([0-9.e+]+)`, 'm').exec(r?.body ?? '')?.[1] ?? Number.NaN) / 2 ** 20).toFixed(1);
        heap.push(`${n.name}: heap used ${get('purelb_lbnodeagent_nodejs_heap_size_used_bytes')} of ${get('purelb_lbnodeagent_nodejs_heap_size_total_bytes')} MB, external ${get('purelb_lbnodeagent_nodejs_external_memory_bytes')} MB`);
      }

      notes.agent_memory = heap.join('; ');
      // Event-loop lag while holding the 1,000 addresses: the histogram's p99 bucket bound
      // over the window since the bulk Services settled, per agent.
      const lags: number[] = [];
      const lagNotes: string[] = [];
      for (const n of lab.nodes) {
        const port = (agents.get(n.name) as DaemonProcess).metricsPort;
        const [r] = await lab.probe(n.netns, [`http://127.0.0.1:${port}/metrics`], 5000);
        const now = lagBuckets(r?.body ?? '');
        const before = lagBefore.get(n.name) ?? new Map<string, number>();
        const window = new Map([...now].map(([le, c]) => [le, c - (before.get(le) ?? 0)]));
        const p99 = bucketQuantileMs(window, 0.99);
        lags.push(p99);
        lagNotes.push(`${n.name} p99 <= ${p99} ms over ${window.get('+Inf') ?? 0} beats`);
      }
      notes.event_loop_lag = lagNotes.join('; ');

      // 6. A restart on the last node: the new agent adopts the 1,000 addresses at start.
      const last = lab.nodes[lab.nodes.length - 1]!;
      await agents.get(last.name)!.stop(5000);
      const restarted = await startAgent(lab.controlPlane, last, { shipped: true });
      agents.set(last.name, restarted);
      await waitFor(`the restarted agent to hold ${BULK_SERVICES} addresses`, async () => ((await bulkCount(last)) === BULK_SERVICES ? true : undefined), 120_000, 500);
      await sleep(5000);
      const restartedPid = agentPid(restarted);
      const restartReads: number[] = [];
      for (let i = 0; i < 7; i++) {
        if (i > 0) await sleep(1000);
        restartReads.push(vmRssMb(restartedPid));
      }

      const metrics = {
        create_to_address_on_nic_p95_ms: percentile(toNic, 95),
        delete_to_withdrawn_everywhere_p95_ms: percentile(toGone, 95),
        create_to_first_http_answer_p95_ms: percentile(toHttp, 95),
        node_lost_to_answer_again_p95_ms: percentile(failover.node_lost, 95),
        agent_killed_to_answer_again_p95_ms: percentile(failover.agent_killed, 95),
        node_dead_to_answer_again_p95_ms: percentile(failover.node_dead, 95),
        duplicate_answer_samples: arpSummary.duplicateSamples,
        event_loop_lag_p99_ms: Math.max(...lags),
        agent_rss_mb: median(agentRss),
        agent_rss_mb_after_restart: median(restartReads),
      };
      notes.p50 = `create->NIC ${p(toNic, 50)} ms, delete->withdrawn ${p(toGone, 50)} ms, create->HTTP ${p(toHttp, 50)} ms, node lost ${p(failover.node_lost, 50)} ms, agent killed ${p(failover.agent_killed, 50)} ms, node dead ${p(failover.node_dead, 50)} ms`;
      notes.max = `create->NIC ${p(toNic, 100)} ms, delete->withdrawn ${p(toGone, 100)} ms, create->HTTP ${p(toHttp, 100)} ms, node lost ${p(failover.node_lost, 100)} ms, agent killed ${p(failover.agent_killed, 100)} ms, node dead ${p(failover.node_dead, 100)} ms`;
      notes.method = `3-node lab, allocator + 3 agents (default flags, sendgarp true), each run as its image runs it (the bundle from tools/bundle.ts with the Dockerfile ENTRYPOINT's Node flags: agent_command); measured Services: IPv4 ${ADDRESS} from a one-address ServiceGroup (a LAN, i.e. local, address: one elected node holds it on eth0); t0 just before the Service POST / DELETE, NIC times from ip monitor address in each node namespace, HTTP from a prober in the client namespace starting a fresh GET every 10 ms`;
      notes.kill_method = 'node_lost: the holder\'s LAN cable cut at the bridge (its port down), its agent alive and its API path up; agent_killed: SIGKILL to the holder\'s agent, node and cable fine (its address stays in the kernel until its 1 s lifetime runs out, and no proof of withdrawal can come: the fence); node_dead: both. t1 = first HTTP 200 whose body names another node; between reps: the old holder no longer holds the address, cable back, agent restarted, one holder, every Lease gossip-mode swim, the holder answering';
      notes.rss_method = `${BULK_SERVICES} IPv6 single-stack Services from ${BULK_POOL} (virtual: every node holds every address on kube-lb0); VmRSS read 10 times over 9 s, median per agent, median of the 3 agents (VmRSS includes the pages of the node binary it touched, about 50 MB, shared by every Node process on a host); agent_rss_mb_after_restart: ${last.name}'s agent stopped and started again, adopting the ${BULK_SERVICES} addresses, 7 reads`;
      notes.agent_command = `node ${shippedCommand('lbnodeagent').map((a) => a.replace(`${repoRoot}/`, '')).join(' ')}`;
      notes.suite_seconds = Math.round((nowMs() - started) / 1000);
      notes.machine_at_end = machineLoad();
      return {
        metrics,
        notes,
        samples: {
          create_to_address_on_nic_ms: toNic,
          delete_to_withdrawn_everywhere_ms: toGone,
          create_to_first_http_answer_ms: toHttp,
          node_lost_to_answer_again_ms: failover.node_lost,
          agent_killed_to_answer_again_ms: failover.agent_killed,
          node_dead_to_answer_again_ms: failover.node_dead,
          event_loop_lag_p99_ms: lags,
          agent_rss_mb: agentRss,
          agent_rss_mb_after_restart: restartReads,
        },
      };
    } finally {
      prober?.stop();
      monitor.stop();
      client.close();
      for (const a of agents.values()) await a.stop(3000).catch(() => undefined);
      await allocator?.stop().catch(() => undefined);
      await lab.stop();
    }
  },
};

export default suite;
