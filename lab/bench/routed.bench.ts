// The routed lab (npm run bench -- routed): a client behind a real router (FRR, ECMP
// hashed on L4) reaching PureLB's addresses, BIRD 2 on every node advertising kube-lb0
// over BGP with BFD (200 ms x 3). Allocator and one agent per node from their sources,
// GARP on.
//   - virtual_create_to_answer: Service POST (a one-address routed group, so the address
//     is known before) to the first HTTP 200 at the routed client; and to the route on the
//     router (polled);
//   - virtual_node_lost_to_rerouted: a node's LAN cable cut at the bridge to the router's
//     FIB no longer sending the address to it (polled every ~10 ms), then 30 connections
//     checked to be answered by the others;
//   - ecmp_nodes_used: 300 connections at once (distinct source ports) to one address:
//     how many of the 3 nodes answered (the smallest of 3 rounds);
//   - local_node_lost_to_answer_routed: a local (LAN) address's holder cut at the bridge
//     to the first HTTP 200 from another node at the routed client, and whether the
//     router's neighbour entry follows the new holder's gratuitous ARP.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AddressMonitor,
  type DaemonProcess,
  HttpProber,
  PURELB_NAMESPACE,
  ROUTED,
  applyRoutedServiceGroup,
  installPureLB,
  monotonicMs,
  startAgent,
  startAllocator,
  startLab,
  waitFor,
} from '../src/index.ts';
import { type BenchSuite, machineLoad, median, percentile } from '../../bench/lib.ts';

const CREATE_REPS = 10;
const NODE_LOST_REPS = 9;
const ECMP_ROUNDS = 3;
const ECMP_CONNECTIONS = 300;
const LOCAL_REPS = 9;
const ONE_V4 = '203.0.113.50';

const r1 = (v: number): number => Math.round(v * 10) / 10;

const suite: BenchSuite = {
  suite: 'routed',
  targets: {
    virtual_node_lost_to_rerouted_p95_ms: ['<=', 1500],
    ecmp_nodes_used: ['>=', 2],
    local_node_lost_to_answer_routed_p95_ms: ['<=', 1500],
  },
  async run() {
    const started = Date.now();
    const machineAtStart = machineLoad();
    const lab = await startLab({ nodes: 3, routed: true });
    const daemons: DaemonProcess[] = [];
    const monitor = new AddressMonitor();
    let prober: HttpProber | undefined;
    try {
      const routed = lab.routed!;
      const admin = lab.controlPlane.admin;
      await installPureLB(admin, { sendgarp: true });
      await applyRoutedServiceGroup(admin);
      await admin.apply(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups/routed-one`, {
        apiVersion: 'purelb.io/v1',
        kind: 'ServiceGroup',
        metadata: { name: 'routed-one', namespace: PURELB_NAMESPACE },
        spec: { local: { v4pools: [{ pool: `${ONE_V4}/32`, subnet: '203.0.113.0/24', aggregation: '/32' }] } },
      });
      daemons.push(await startAllocator(lab.controlPlane, { identity: 'allocator' }));
      for (const n of lab.nodes) daemons.push(await startAgent(lab.controlPlane, n));
      monitor.start(lab.nodes);
      prober = new HttpProber(routed.clientNetns);
      await prober.ready;
      const macs = await lab.nodeMacs();
      const all = lab.nodes.map((n) => n.name);
      const svc = (name: string): string => `/api/v1/namespaces/default/services/${name}`;
      const addressOf = (name: string): Promise<string> =>
        waitFor(`${name}'s address`, async () => (await admin.get<{ status?: { loadBalancer?: { ingress?: { ip: string }[] } } }>(svc(name))).status?.loadBalancer?.ingress?.[0]?.ip, 20_000, 25);
      const sessionsUp = (): Promise<true> => waitFor('every BGP session', async () => ((await routed.establishedNodes()).length === all.length ? true : undefined), 60_000, 100);

      // 1. Created -> answering from the routed client.
      const toAnswer: number[] = [];
      const toRoute: number[] = [];
      for (let i = -1; i < CREATE_REPS; i++) {
        const name = `create-${i + 1}`;
        const t0 = monotonicMs();
        const answered = prober.probe(ONE_V4);
        const routedAt = routed.waitForPaths(ONE_V4, (n) => n.length > 0, 20_000, 'a path').then(() => monotonicMs());
        await lab.createDemoService(name, { families: ['IPv4'], annotations: { 'purelb.io/service-group': 'routed-one' } });
        const a = await answered;
        const r = await routedAt;
        if (i >= 0) {
          toAnswer.push(a.at - t0);
          toRoute.push(r - t0);
        }
        await admin.delete(svc(name));
        await admin.delete(`/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/${name}-ipv4`);
        await routed.waitForPaths(ONE_V4, (n) => n.length === 0, 20_000, 'no path');
      }

      // 2 and 3. A virtual address on every node: ECMP spread, then nodes lost.
      await lab.createDemoService('web', { families: ['IPv4'], annotations: { 'purelb.io/service-group': ROUTED.serviceGroup } });
      const web = await addressOf('web');
      await routed.waitForPaths(web, (n) => n.length === all.length, 20_000, 'every node');
      const ecmpRounds: Record<string, number>[] = [];
      for (let i = 0; i < ECMP_ROUNDS; i++) ecmpRounds.push(Object.fromEntries(await routed.spread(web, ECMP_CONNECTIONS, 3000)));
      const ecmpUsed = Math.min(...ecmpRounds.map((c) => Object.keys(c).filter((k) => all.includes(k)).length));

      const cuts = new Map<string, number>();
      const countCut = (name: string): void => void cuts.set(name, (cuts.get(name) ?? 0) + 1);
      const rerouted: number[] = [];
      const reroutedNotes: string[] = [];
      for (let i = -1; i < NODE_LOST_REPS; i++) {
        const node = lab.nodes[(i + 1) % lab.nodes.length]!;
        const others = all.filter((x) => x !== node.name).join();
        await sessionsUp();
        await routed.waitForPaths(web, (n) => n.length === all.length, 30_000, 'every node');
        await sleep(500);
        countCut(node.name);
        const t0 = monotonicMs();
        await lab.setLinkUp(node, false, { at: 'bridge' });
        try {
          const atT1 = await routed.waitForPaths(web, (n) => !n.includes(node.name) && n.length > 0, 15_000, `${node.name} withdrawn`);
          const ms = monotonicMs() - t0;
          const counts = await routed.spread(web, 30);
          if (counts.has('failed') || counts.has(node.name)) throw new Error(`after ${node.name}'s route was withdrawn: ${JSON.stringify(Object.fromEntries(counts))}`);
          if (i >= 0) {
            rerouted.push(ms);
            reroutedNotes.push(`${node.name} ${Math.round(ms)}${atT1.nodes.join() === others ? '' : ` (route then: ${atT1.nodes.join('+')})`}`);
          }
        } finally {
          await lab.setLinkUp(node, true, { at: 'bridge' });
        }
      }
      await admin.delete(svc('web'));

      // 4. A local address through the router: its holder lost.
      await lab.createDemoService('lan', { families: ['IPv4'] });
      const lan = await addressOf('lan');
      const localAnswer: number[] = [];
      const localNic: number[] = [];
      const localNotes: string[] = [];
      let neighbourFollowed = 0;
      for (let i = -1; i < LOCAL_REPS; i++) {
        await waitFor(`${lan} held by one node`, async () => ((await lab.holders(lan)).length === 1 ? true : undefined), 30_000, 50);
        await sleep(3000);
        const first = await prober.probe(lan);
        const holder = first.body;
        const node = lab.nodes.find((n) => n.name === holder);
        if (!node) throw new Error(`${lan} answered by ${holder}, not a node`);
        const before = await routed.neighbour(lan);
        if (before?.mac !== macs.get(holder)) throw new Error(`the router's neighbour entry for ${lan} is ${JSON.stringify(before)}, not ${holder}'s MAC`);
        countCut(node.name);
        const t0 = monotonicMs();
        await lab.setLinkUp(node, false, { at: 'bridge' });
        try {
          const onNic = monitor.when(lan, (h) => h.some((x) => x !== holder), 15_000, 'another node adds it');
          const next = await prober.probe(lan, holder);
          const nicAt = await onNic;
          const after = await routed.neighbour(lan);
          const followed = after?.mac === macs.get(next.body);
          if (i >= 0) {
            localAnswer.push(next.at - t0);
            localNic.push(nicAt - t0);
            if (followed) neighbourFollowed++;
            localNotes.push(`${holder}->${next.body} nic ${Math.round(nicAt - t0)} answer ${Math.round(next.at - t0)} neigh ${after?.state ?? 'none'}${followed ? '' : ' (old MAC)'}`);
          }
        } finally {
          await lab.setLinkUp(node, true, { at: 'bridge' });
        }
      }

      const bfdDowns = JSON.stringify(Object.fromEntries(await routed.bfdDownCounts()));
      const p = (v: number[], q: number): number => r1(percentile(v, q));
      return {
        metrics: {
          virtual_create_to_answer_p95_ms: percentile(toAnswer, 95),
          virtual_create_to_answer_p50_ms: median(toAnswer),
          virtual_create_to_route_p95_ms: percentile(toRoute, 95),
          virtual_node_lost_to_rerouted_p95_ms: percentile(rerouted, 95),
          virtual_node_lost_to_rerouted_p50_ms: median(rerouted),
          ecmp_nodes_used: ecmpUsed,
          local_node_lost_to_answer_routed_p95_ms: percentile(localAnswer, 95),
          local_node_lost_to_answer_routed_p50_ms: median(localAnswer),
          local_node_lost_to_address_on_nic_p95_ms: percentile(localNic, 95),
          router_neighbour_followed_runs: neighbourFollowed,
        },
        notes: {
          machine_at_start: machineAtStart,
          method: `3-node routed lab (lab/src/routed.ts): FRR router namespace (zebra, bgpd, bfdd; maximum-paths ${ROUTED.maximumPaths}; fib_multipath_hash_policy=1), BIRD 2 per node (docs/routing.md's configuration: direct on kube-lb0, BGP IPv4+IPv6 to the router, BFD ${ROUTED.bfdIntervalMs} ms x ${ROUTED.bfdMultiplier}), a client namespace on ${ROUTED.clientSubnetV4} behind the router; allocator + 3 agents from their TypeScript sources, sendgarp true; HTTP from one prober process in the routed client (a fresh connection every 10 ms), router routes from 'ip -j route show' polled every ~20 ms`,
          reps: `create ${CREATE_REPS}, node lost ${NODE_LOST_REPS}, ECMP ${ECMP_ROUNDS} rounds of ${ECMP_CONNECTIONS}, local ${LOCAL_REPS} (each after one warm-up)`,
          p50: `create->answer ${p(toAnswer, 50)} ms, create->route ${p(toRoute, 50)} ms, node lost->rerouted ${p(rerouted, 50)} ms, local node lost->answer ${p(localAnswer, 50)} ms (->NIC ${p(localNic, 50)} ms)`,
          max: `create->answer ${p(toAnswer, 100)} ms, create->route ${p(toRoute, 100)} ms, node lost->rerouted ${p(rerouted, 100)} ms, local node lost->answer ${p(localAnswer, 100)} ms (->NIC ${p(localNic, 100)} ms)`,
          ecmp_rounds: ecmpRounds.map((c) => JSON.stringify(c)).join(' '),
          node_lost_reps: reroutedNotes.join(', '),
          node_lost_method: 'the node\'s bridge port down (cable pulled at the switch); t1 = the router\'s FIB route to the address without that node (and not empty; a rep whose route then lacked another node too says so); then 30 connections must all be answered by the other nodes; between reps: cable back, every BGP session Established, the route on all 3 nodes',
          local_reps: localNotes.join(', '),
          local_method: 'default pool (192.0.2.200-239, local: one elected node on eth0); the router\'s neighbour entry checked to hold the holder\'s MAC before the cut; the holder\'s bridge port down; t1 = first HTTP 200 at the routed client from another node; nic = the new holder\'s address event; neigh = the router\'s entry state right after, with the new MAC unless marked (old MAC)',
          bfd_session_down_events: `${bfdDowns}; cuts per node (warm-ups included): ${JSON.stringify(Object.fromEntries(cuts))}; more downs than cuts: a session lost without a cut, or re-established more than once after one`,
          suite_seconds: Math.round((Date.now() - started) / 1000),
          machine_at_end: machineLoad(),
        },
        samples: {
          virtual_create_to_answer_ms: toAnswer,
          virtual_create_to_route_ms: toRoute,
          virtual_node_lost_to_rerouted_ms: rerouted,
          local_node_lost_to_answer_routed_ms: localAnswer,
          local_node_lost_to_address_on_nic_ms: localNic,
        },
      };
    } finally {
      prober?.stop();
      monitor.stop();
      for (const d of daemons.reverse()) await d.stop(3000);
      await lab.stop();
    }
  },
};

export default suite;
