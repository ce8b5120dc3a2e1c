// The node agent's timing suite on the lab's cluster mode (npm run bench -- cluster):
// PureLB installed with `helm install` from our images onto 3 real nodes (containerd,
// kubelet, kube-proxy), the demo Deployment behind a LoadBalancer Service, asked from the
// client namespace through kube-proxy. The same figures as the process lab's suite
// (bench-results/lbnodeagent.json), so the two can be read side by side:
//   - Service POST to the address on a node's NIC, and to the first HTTP 200 at the client;
//   - Service DELETE to the address gone from every node;
//   - failover to an answer through another node: the holder's LAN cable cut at the bridge
//     (node_lost), its agent's process SIGKILLed with node and cable fine (agent_killed;
//     kubelet restarts the container). An ARP sampler in the client namespace asks who has
//     the address every 20 ms through every trial and counts samples answered by two MACs.
// The measured Service comes from a one-address ServiceGroup (192.0.2.240, a local
// address: one elected node holds it on eth0), so the address is known before the POST.
import { readFileSync } from 'node:fs';
import {
  AddressMonitor,
  CLUSTER_PURELB_NAMESPACE,
  type ClusterLab,
  HttpProber,
  deployDemo,
  installPureLBChart,
  ip,
  monotonicMs,
  pods,
  run,
  startLab,
  timeCreateDelete,
  waitFor,
} from '../src/index.ts';
import { AGENT_TIMING_TARGETS, type BenchSuite, machineLoad, median, percentile } from '../../bench/lib.ts';

const REPS = 10; // recorded create/delete repetitions (after one warm-up)
const KILL_REPS = 5; // of each failover kind
const ADDRESS = '192.0.2.240';
const NS = CLUSTER_PURELB_NAMESPACE;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const p = (values: readonly number[], q: number): number => Number(percentile(values, q).toFixed(1));

/** The pid of the agent's process in a node's network namespace (the container's node process). */
async function agentPid(netns: string): Promise<number | undefined> {
  const pids = (await run('ip', ['netns', 'pids', netns])).split('\n').filter(Boolean);
  for (const pid of pids) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('lbnodeagent')) return Number(pid);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

const suite: BenchSuite = {
  suite: 'cluster',
  targets: {
    ...AGENT_TIMING_TARGETS,
  },
  async run() {
    const started = monotonicMs();
    const notes: Record<string, string | number> = { machine_at_start: machineLoad() };
    const t0Boot = monotonicMs();
    const lab: ClusterLab = await startLab({ cluster: true, nodes: 3 });
    notes.lab_boot_seconds = Number(((monotonicMs() - t0Boot) / 1000).toFixed(1));
    const monitor = new AddressMonitor();
    const prober = new HttpProber(lab.network.clientNetns);
    try {
      const admin = lab.admin;
      const i0 = monotonicMs();
      await installPureLBChart(lab);
      await deployDemo(lab, { replicas: lab.nodes.length });
      await admin.apply(`/apis/purelb.io/v1/namespaces/${NS}/servicegroups/one`, {
        apiVersion: 'purelb.io/v1',
        kind: 'ServiceGroup',
        metadata: { name: 'one', namespace: NS },
        spec: { local: { v4pools: [{ pool: `${ADDRESS}-${ADDRESS}`, subnet: '192.0.2.0/24', aggregation: 'default' }] } },
      });
      await waitFor('every PureLB and demo Pod Ready', async () => {
        const all = [...(await pods(admin, NS, 'app.kubernetes.io/name=lbnodeagent')), ...(await pods(admin, NS, 'app.kubernetes.io/name=allocator')), ...(await pods(admin, 'default', 'app=demo'))];
        return all.length === 2 * lab.nodes.length + 2 && all.every((x) => x.ready) ? true : undefined;
      }, 180_000, 250);
      notes.install_to_ready_seconds = Number(((monotonicMs() - i0) / 1000).toFixed(1));
      monitor.start(lab.nodes);
      await prober.ready;
      const macs = await lab.nodeMacs();

      /** Every agent's Lease says swim, written after `sinceWallMs` (a node cut off could not renew: its Lease still shows the mode from before the cut). */
      const allSwim = async (sinceWallMs: number): Promise<boolean> => {
        const list = await admin.get<{ items: { metadata: { annotations?: Record<string, string> }; spec: { renewTime?: string } }[] }>(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases?labelSelector=purelb.io%2Fcomponent%3Dlbnodeagent`);
        return list.items.length === lab.nodes.length && list.items.every((l) => l.metadata.annotations?.['purelb.io/gossip-mode'] === 'swim' && Date.parse(l.spec.renewTime ?? '') >= sinceWallMs);
      };
      const agentsReady = async (): Promise<boolean> => {
        const a = await pods(admin, NS, 'app.kubernetes.io/name=lbnodeagent');
        return a.length === lab.nodes.length && a.every((x) => x.ready && !x.deleting);
      };
      /** One holder of ADDRESS, every agent Ready and in guard mode swim, and HTTP answers. */
      const settled = async (what: string, sinceWallMs = 0): Promise<string> => {
        for (let attempt = 0; attempt < 30; attempt++) {
          await waitFor(`${what}: every agent Ready and in guard mode swim`, async () => ((await agentsReady()) && (await allSwim(sinceWallMs)) ? true : undefined), 180_000, 200);
          await monitor.when(ADDRESS, (h) => h.length === 1, 30_000, `${what}: one holder`);
          const holder = monitor.holders(ADDRESS)[0]!;
          await prober.probe(ADDRESS);
          if (monitor.holders(ADDRESS).join() === holder) return holder;
          await sleep(1000);
        }
        throw new Error(`${what}: the cluster did not settle (one holder that answers) in 30 tries`);
      };
      const service = (name: string): Promise<unknown> =>
        admin.apply(`/api/v1/namespaces/default/services/${name}`, {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name, namespace: 'default', annotations: { 'purelb.io/service-group': 'one' } },
          spec: { type: 'LoadBalancer', selector: { app: 'demo' }, ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }] },
        });

      // 1-3. Create -> on a NIC, create -> HTTP 200 at the client, delete -> gone everywhere.
      const { toNicMs: toNic, toHttpMs: toHttp, toGoneMs: toGone, seen } = await timeCreateDelete({
        monitor,
        prober,
        address: ADDRESS,
        reps: REPS,
        create: service,
        remove: (name) => admin.delete(`/api/v1/namespaces/default/services/${name}`),
        quietMs: 500,
        nicTimeoutMs: 30_000,
      });
      const holdersSeen = seen.map((x) => x.holders.join('+'));
      notes.create_delete_reps = `${REPS} (after 1 warm-up); holder per rep: ${holdersSeen.join(' ')}`;

      // 4. Failover, two ways, the ARP sampler running through every trial.
      const failover = { node_lost: [] as number[], agent_killed: [] as number[] };
      const arpMoved = { node_lost: [] as number[], agent_killed: [] as number[] };
      const killNotes: string[] = [];
      await service('kill');
      const arp = lab.watchArp(ADDRESS);
      try {
        await arp.waitFor(`${ADDRESS} to answer ARP`, (s) => s.macs.length === 1, 30_000);
        let faultEndedAt = 0;
        for (let i = 0; i < KILL_REPS; i++) {
          for (const kind of ['node_lost', 'agent_killed'] as const) {
            const holder = await settled(`${kind} rep ${i}`, faultEndedAt);
            await sleep(1000);
            const node = lab.nodes.find((n) => n.name === holder)!;
            const port = `n${node.index}`;
            const pid = kind === 'agent_killed' ? await agentPid(node.netns) : undefined;
            if (kind === 'agent_killed' && pid === undefined) throw new Error(`no agent process in ${holder}'s namespace`);
            const wall0 = Date.now();
            const t0 = monotonicMs();
            if (kind === 'agent_killed') process.kill(pid!, 'SIGKILL');
            else await ip('-n', lab.network.lanNetns, 'link', 'set', port, 'down');
            // An answer through another node: ARP answered by another node's MAC, then the first HTTP 200 after it.
            const moved = await arp.waitFor(`${ADDRESS} to answer ARP from another node`, (s) => s.macs.length === 1 && s.macs[0] !== macs.get(holder), 60_000, wall0);
            const { at } = await prober.probe(ADDRESS);
            failover[kind].push(at - t0);
            arpMoved[kind].push(moved.atMs - wall0);
            const to = [...macs].find(([, m]) => m === moved.macs[0])?.[0] ?? '?';
            killNotes.push(`${kind} ${holder}->${to} ${(at - t0).toFixed(0)}`);
            // The old holder's address must be gone before its cable comes back.
            await monitor.when(ADDRESS, (h) => !h.includes(holder), 60_000, `${kind} rep ${i}: ${holder} no longer holds it`);
            if (kind === 'node_lost') await ip('-n', lab.network.lanNetns, 'link', 'set', port, 'up');
            // A fresh Pod instead of kubelet's restart, whose back-off grows with every kill of the same container.
            if (kind === 'agent_killed') {
              const victim = (await pods(admin, NS, 'app.kubernetes.io/name=lbnodeagent')).find((x) => x.node === holder);
              if (victim) await admin.delete(`/api/v1/namespaces/${NS}/pods/${victim.name}`);
            }
            faultEndedAt = Date.now();
          }
        }
        await settled('after the failovers', faultEndedAt);
      } finally {
        await arp.stop();
        for (const n of lab.nodes) await ip('-n', lab.network.lanNetns, 'link', 'set', `n${n.index}`, 'up').catch(() => '');
      }
      const arpSummary = arp.summary();
      await admin.delete('/api/v1/namespaces/default/services/kill');
      notes.failover_reps = `${KILL_REPS} of each: ${killNotes.join(', ')}`;
      notes.arp_moved_p50_ms = `node_lost ${p(arpMoved.node_lost, 50)}, agent_killed ${p(arpMoved.agent_killed, 50)}`;
      notes.arp_samples = `${arpSummary.samples} who-has samples through every failover trial, ${arpSummary.duplicateSamples} answered by two MACs, longest unanswered ${Math.round(arpSummary.longestUnavailableMs)} ms`;
      notes.p50 = `create->NIC ${p(toNic, 50)} ms, delete->withdrawn ${p(toGone, 50)} ms, create->HTTP ${p(toHttp, 50)} ms, node lost ${p(failover.node_lost, 50)} ms, agent killed ${p(failover.agent_killed, 50)} ms`;
      notes.max = `create->NIC ${p(toNic, 100)} ms, delete->withdrawn ${p(toGone, 100)} ms, create->HTTP ${p(toHttp, 100)} ms, node lost ${p(failover.node_lost, 100)} ms, agent killed ${p(failover.agent_killed, 100)} ms`;
      notes.method = `cluster mode: 3 nodes (containerd, runc, kubelet, kube-proxy nftables), PureLB from charts/purelb (helm install, our images, default values but the lab's pools), demo Deployment with one pod per node; measured Service: IPv4 ${ADDRESS}, externalTrafficPolicy Cluster, from a one-address local ServiceGroup. t0 just before the Service POST / DELETE; NIC times from ip monitor address in each node namespace; HTTP from one prober process in the client namespace starting a fresh GET every 10 ms (through kube-proxy to any demo pod)`;
      notes.kill_method = 'node_lost: the holder\'s LAN port at the bridge set down (its kubelet also loses the API server, which sits on the LAN); agent_killed: SIGKILL to the agent\'s process in the holder\'s namespace (the old address stays in the kernel until its lifetime runs out, and the new holder waits for that). t1 = the first HTTP 200 of a probe started once the ARP sampler saw another node\'s MAC answer alone; between reps: the old holder no longer holds the address, the port back up, the killed agent\'s Pod deleted (a fresh Pod, not kubelet\'s restart with its growing back-off), every agent Pod Ready and every agent\'s Lease renewed after the fault ended saying guard mode swim, one holder answering';
      notes.suite_seconds = Math.round((monotonicMs() - started) / 1000);
      notes.machine_at_end = machineLoad();
      return {
        metrics: {
          create_to_address_on_nic_p95_ms: percentile(toNic, 95),
          delete_to_withdrawn_everywhere_p95_ms: percentile(toGone, 95),
          create_to_first_http_answer_p95_ms: percentile(toHttp, 95),
          create_to_first_http_answer_p50_ms: median(toHttp),
          node_lost_to_answer_again_p95_ms: percentile(failover.node_lost, 95),
          agent_killed_to_answer_again_p95_ms: percentile(failover.agent_killed, 95),
          duplicate_answer_samples: arpSummary.duplicateSamples,
        },
        notes,
        samples: { create_to_nic_ms: toNic, create_to_http_ms: toHttp, delete_to_gone_ms: toGone, node_lost_ms: failover.node_lost, agent_killed_ms: failover.agent_killed },
      };
    } finally {
      prober.stop();
      monitor.stop();
      await lab.stop();
    }
  },
};

export default suite;
