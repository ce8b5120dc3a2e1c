// A simulated cluster of whole node agents on one virtual clock: per node a kernel
// (MemoryNetlinkHandle on one shared LAN segment), a gossip endpoint (MemoryNetwork), a
// path to the API server, and an agent process (NodeAgent + Membership) that can be
// killed, restarted and frozen. The driver runs one timer callback at a time and lets
// every promise settle before the next; after each it checks that no address has two
// holders on the LAN.
import { type NodeView, type Service, type ServiceGroup, type LBNodeAgent, Annotation, ALLOCATED_BY_VALUE } from '@purelb/api';
import type { Informer, EventRecorder, Logger } from '@purelb/k8s-glue';
import { Membership } from '@purelb/election';
import { MemoryNetwork, VirtualClock, seededRandom } from '@purelb/election/testing';
import { MemoryNetlinkHandle, MemorySegment } from '@purelb/linux-net/testing';
import { type AgentSettings, type LeaseView, type SliceView, NodeAgent } from '../../src/agent.ts';
import type { AgentMetrics } from '../../src/metrics.ts';
import { type ApiTiming, ApiView, NAMESPACE, SimApiServer, procClient } from './api.ts';
import { Proc, ProcNetlink, ProcTransport, type ThawOrder } from './process.ts';

export const SUBNET = '192.0.2.0/24';
const WALL_EPOCH = 1_750_000_000_000;

export interface WorldOptions {
  readonly seed: number;
  readonly nodes: number;
  /** One address per entry; two Services may share one (then both carry allow-shared-ip). */
  readonly services: readonly { readonly name: string; readonly address: string; readonly shared: boolean }[];
  /** Gossip datagram loss. */
  readonly loss: number;
  readonly sendgarp: boolean;
  /** Longest delay of one watch event to one node (ms). */
  readonly watchLagMs: number;
  /** Probability that one ARP reply (or probe) on the LAN is lost; a probe misses a conflict when both of its rounds' frames are. */
  readonly lanLoss?: number;
  /** Keep the agents' log lines (for a replay). */
  readonly trace?: boolean;
  /** Check every address after every event, not only the ones whose kernel state changed. */
  readonly checkEveryEvent?: boolean;
}

export interface Violation {
  readonly at: number;
  readonly address: string;
  readonly holders: readonly string[];
}

export class SimNode {
  readonly index: number;
  readonly name: string;
  readonly ip: string;
  readonly mac: string;
  readonly gossipAddress: string;
  readonly kernel: MemoryNetlinkHandle;
  readonly api: { up: boolean; refused: boolean } = { up: true, refused: false };
  readonly clockOffset: number;
  readonly wallSkew: number;
  apiCuts = 0;
  linkDowns = 0;
  linkMode: 'admin' | 'carrier' = 'carrier';
  generation = 0;
  /** A graceful stop is under way; restart when it ends. */
  stopping = false;
  restartOnExit = false;
  proc: Proc | undefined;
  agent: NodeAgent | undefined;
  membership: Membership | undefined;
  view: ApiView | undefined;
  netlink: ProcNetlink | undefined;
  transport: ProcTransport | undefined;
  /** purelb_address_takeover_duration_seconds as this node's agents observed it: [family, seconds, at (virtual ms)]. */
  readonly takeovers: [string, number, number][] = [];

  constructor(index: number, kernel: MemoryNetlinkHandle, clockOffset: number, wallSkew: number) {
    this.index = index;
    this.name = `node-${index + 1}`;
    this.ip = `192.0.2.${11 + index}`;
    this.mac = `02:00:5e:00:53:${(0x11 + index).toString(16)}`;
    this.gossipAddress = `${this.ip}:7934`;
    this.kernel = kernel;
    this.clockOffset = clockOffset;
    this.wallSkew = wallSkew;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.state !== 'dead';
  }
}

interface AddressState {
  count: number;
  holders: string[];
  since: number;
  /** ms with at least one holder / exactly one, since measuring started. */
  answeredMs: number;
  singleMs: number;
}

/** Lets every promise the last event set going settle: microtasks run before setImmediate's callback. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const noMetrics = {
  garpSent: { inc: () => undefined },
  eventLoopLag: { observe: () => undefined },
  stalls: { inc: () => undefined },
  probeConflicts: { inc: () => undefined },
  configValid: { set: () => undefined },
  update: () => undefined,
  nodeExcluded: () => undefined,
  groupSelection: () => undefined,
} as unknown as AgentMetrics;

/** Metrics nobody reads, except the takeover durations, kept per node. */
const simMetrics = (node: SimNode, now: () => number): AgentMetrics =>
  ({
    ...noMetrics,
    takeoverDuration: { observe: (labels: { family: string }, seconds: number) => void node.takeovers.push([labels.family, seconds, now()]) },
  }) as unknown as AgentMetrics;

/** Agent log messages counted in `World.stats` (what the schedules made the agents do). */
const COUNTED: Record<string, string> = {
  'guard mode': 'mode',
  announcing: 'address added',
  withdrew: 'address withdrawn',
  'another host answers for the address; probing again': 'probe conflict',
  'event loop stalled: holding nothing until contact is fresh again': 'stall',
  'local link down: withdrawing its addresses': 'link-down withdrawal',
  'claim raced a newer Service; waiting for the fresh state': 'claim conflict (409)',
};

const noEvents = { event: () => undefined } as unknown as EventRecorder;

export class World {
  readonly clock = new VirtualClock();
  readonly options: WorldOptions;
  readonly net: MemoryNetwork;
  readonly segment = new MemorySegment('lan');
  readonly server = new SimApiServer({ historyLimit: 10 });
  readonly nodes: SimNode[] = [];
  readonly addresses: string[];
  readonly violations: Violation[] = [];
  /** Failures of the harness or of an agent process (thrown by `runUntil`). */
  readonly errors: string[] = [];
  readonly trace: string[] = [];
  /** Harness randomness (latencies, fault details): seeded, drawn in event order. */
  readonly random: () => number;
  readonly apiTiming: ApiTiming;
  events = 0;
  /** Counts of what the agents did (mode changes by mode, takeovers, probe conflicts, ...). */
  readonly stats = new Map<string, number>();
  readonly #byMac = new Map<string, string>();
  readonly #state = new Map<string, AddressState>();
  readonly #dirty = new Set<string>();
  #dirtyAll = true;
  #measureFrom: number | undefined;
  /** Since when every address has had exactly one holder (undefined: not now). */
  allSingleSince: number | undefined;
  readonly #gossipFaults = new Set<{ isolate?: SimNode; partition?: readonly [readonly SimNode[], readonly SimNode[]]; oneWay?: readonly [SimNode, SimNode] }>();

  constructor(options: WorldOptions) {
    this.options = options;
    this.random = seededRandom(options.seed * 2_654_435_761 + 17);
    const r = this.random;
    this.net = new MemoryNetwork({ clock: this.clock, seed: Math.floor(r() * 2 ** 31), loss: options.loss, delayMs: 0.2, jitterMs: 0.6 });
    const lag = options.watchLagMs;
    this.apiTiming = {
      requestMs: () => 0.5 + r() * 2.5,
      watchMs: () => 1 + (r() < 0.8 ? r() * 10 : r() * lag),
      retryMs: () => 250 + r() * 1500,
      resumes: () => r() < 0.5,
    };
    this.addresses = [...new Set(options.services.map((s) => s.address))];
    for (const a of this.addresses) this.#state.set(a, { count: 0, holders: [], since: 0, answeredMs: 0, singleMs: 0 });
    for (let i = 0; i < options.nodes; i++) {
      // The kernel checks lifetimes on its own one-second timer: an address goes up to a second late.
      const phase = Math.floor(r() * 1000);
      const clock = this.clock;
      const kernel = new MemoryNetlinkHandle({
        now: () => clock.now(),
        sleep: (ms) => new Promise((resolve) => clock.at(clock.now() + ms, resolve)),
        removalTime: (end) => phase + Math.ceil((end - phase) / 1000) * 1000,
      });
      const node = new SimNode(i, kernel, Math.floor(r() * 1_000_000), Math.floor((r() - 0.5) * 2000));
      kernel.addLink({ name: 'eth0', mac: node.mac, segment: this.segment });
      kernel.addAddressExternally('eth0', `${node.ip}/24`);
      kernel.setDefaultRoute('IPv4', 'eth0', { gateway: '192.0.2.1' });
      this.nodes.push(node);
      this.#byMac.set(node.mac, node.name);
      void this.#watchKernel(kernel);
    }
    this.server.startLog();
    if (options.trace) {
      this.server.listen(() => {
        const e = this.server.log[this.server.log.length - 1]!;
        if (e.resource !== 'services') return;
        const a = e.object.metadata.annotations ?? {};
        this.note(`API: ${e.type} ${e.object.metadata.name} announcing=${a[Annotation.announcingIPv4] ?? '-'} rv=${e.object.metadata.resourceVersion}`);
      });
    }
  }

  /** Creates the cluster's objects: Nodes, the LBNodeAgent, a ServiceGroup and the Services. */
  async setup(): Promise<void> {
    const s = this.server;
    for (const n of this.nodes) await s.create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: n.name }, status: { addresses: [{ type: 'InternalIP', address: n.ip }] } });
    await s.create<LBNodeAgent>(`/apis/purelb.io/v1/namespaces/${NAMESPACE}/lbnodeagents`, {
      apiVersion: 'purelb.io/v1',
      kind: 'LBNodeAgent',
      metadata: { name: 'default', namespace: NAMESPACE },
      spec: { local: { extlbint: 'kube-lb0', localint: 'default', sendgarp: this.options.sendgarp } },
    });
    await s.create<ServiceGroup>(`/apis/purelb.io/v1/namespaces/${NAMESPACE}/servicegroups`, {
      apiVersion: 'purelb.io/v1',
      kind: 'ServiceGroup',
      metadata: { name: 'default', namespace: NAMESPACE },
      spec: { local: { v4pools: [{ pool: '192.0.2.100-192.0.2.199', subnet: SUBNET, aggregation: 'default' }] } },
    });
    for (const svc of this.options.services) {
      await s.create<Service>('/api/v1/namespaces/apps/services', {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: {
          name: svc.name,
          namespace: 'apps',
          annotations: { [Annotation.allocatedBy]: ALLOCATED_BY_VALUE, [Annotation.allocatedFrom]: 'default', ...(svc.shared ? { [Annotation.allowSharedIp]: 'shared' } : {}) },
        },
        spec: { type: 'LoadBalancer', externalTrafficPolicy: 'Cluster', ports: [{ port: 80, protocol: 'TCP' }] },
        status: { loadBalancer: { ingress: [{ ip: svc.address }] } },
      });
    }
    await flush();
  }

  async #watchKernel(kernel: MemoryNetlinkHandle): Promise<void> {
    for await (const c of kernel.subscribe()) {
      if (c.kind === 'address-added' || c.kind === 'address-removed') {
        if (this.#state.has(c.address.address)) this.#dirty.add(c.address.address);
      } else this.#dirtyAll = true;
    }
  }

  now(): number {
    return this.clock.now();
  }

  // --- agent processes ---------------------------------------------------------

  /** Starts an agent process on `node` (as the DaemonSet would): informers, membership, agent, join loop. */
  boot(node: SimNode): void {
    if (node.running) throw new Error(`${node.name} is running`);
    const proc = new Proc(this.clock, node.clockOffset);
    const generation = ++node.generation;
    node.proc = proc;
    node.agent = undefined;
    node.membership = undefined;
    const view = new ApiView(this.server, this.clock, node.api, proc, this.apiTiming);
    node.view = view;
    const log = this.#logger(node, generation);
    const seed = Math.floor(this.random() * 2 ** 31);
    log.info({ generation }, 'process started');
    const run = async (): Promise<void> => {
      await view.start();
      const transport = new ProcTransport(this.net.transport(node.gossipAddress), proc);
      node.transport = transport;
      const membership = new Membership({ name: node.name, transport, scheduler: proc.scheduler, random: seededRandom(seed) });
      node.membership = membership;
      if (this.options.trace) membership.on('event', (e) => log.debug({ member: e.member.name, incarnation: e.member.incarnation }, `membership: ${e.type}`));
      const lanLoss = this.options.lanLoss ?? 0;
      const netlink = new ProcNetlink(node.kernel, proc, () => lanLoss > 0 && this.random() < lanLoss * lanLoss);
      node.netlink = netlink;
      const settings: AgentSettings = {
        node: node.name,
        namespace: NAMESPACE,
        leaseDurationMs: 10_000,
        renewPeriodMs: 2_000,
        addressLifetimeS: 1,
        resyncMs: 500,
        stallThresholdMs: 250,
        memberlistAddress: transport.address,
      };
      const inf = view.informers;
      const agent = new NodeAgent(settings, {
        client: procClient(this.server, this.clock, node.api, proc, this.apiTiming),
        netlink,
        membership,
        services: inf.services as unknown as Informer<Service>,
        slices: inf.slices as unknown as Informer<SliceView>,
        groups: inf.groups as unknown as Informer<ServiceGroup>,
        agents: inf.agents as unknown as Informer<LBNodeAgent>,
        leases: inf.leases as unknown as Informer<LeaseView>,
        nodes: inf.nodes as unknown as Informer<NodeView>,
        events: noEvents,
        metrics: simMetrics(node, () => this.now()),
        log,
        clock: proc.scheduler,
        wallClock: () => WALL_EPOCH + proc.scheduler.now() + node.wallSkew,
      });
      node.agent = agent;
      membership.start();
      await agent.start();
      log.info({}, 'agent started');
      // main.ts's join loop: through the peers the Leases name, until one answers.
      for (let attempt = 0; attempt < 1000; attempt++) {
        const seeds = agent.seeds();
        if (seeds.length > 0) {
          const answered = await membership.join(seeds).catch(() => 0);
          if (answered > 0) return;
        }
        await proc.sleep(1000);
        if (membership.liveMembers().length > 1) return;
      }
    };
    run().catch((e: unknown) => this.errors.push(`${node.name}: agent process failed: ${e instanceof Error ? e.stack : String(e)}`));
  }

  /** kill -9: nothing of the process runs again; its kernel keeps its addresses until they expire. */
  kill(node: SimNode, exited = false): void {
    if (!node.running) return;
    if (!exited) this.note(`kill ${node.name}`);
    node.stopping = false;
    node.proc!.kill();
    node.view?.stop();
    node.netlink?.close();
    void node.transport?.close();
    node.transport = undefined;
  }

  /** Restarts a node's agent once no process runs there (at once, or when a graceful stop ends). */
  restart(node: SimNode): void {
    if (node.running) {
      if (node.stopping) node.restartOnExit = true;
      return;
    }
    this.note(`restart ${node.name}`);
    this.boot(node);
  }

  /**
   * SIGTERM, as main.ts handles it: the agent withdraws, clears its announcements, leaves
   * the membership and deletes its Lease, then the process exits (after 10 s at most).
   * Runs in the process: a frozen one starts when thawed.
   */
  stopGracefully(node: SimNode): void {
    const proc = node.proc;
    if (!proc || proc.state === 'dead' || node.stopping) return;
    node.stopping = true;
    node.restartOnExit = false;
    this.note(`SIGTERM ${node.name}`);
    proc.run(() => {
      const agent = node.agent;
      const membership = node.membership;
      const work = (async () => {
        await agent?.stop();
        await membership?.shutdown();
      })();
      void Promise.race([work, proc.sleep(10_000)]).then(() => {
        this.note(`${node.name} exited`);
        this.kill(node, true);
        if (node.restartOnExit) this.restart(node);
      });
    });
  }

  /** Freezes a node's agent process (SIGSTOP, a long GC pause): nothing of it runs. Returns the undo. */
  freeze(node: SimNode): () => void {
    const proc = node.proc;
    if (!proc || proc.state === 'dead') return () => undefined;
    if (proc.freezes++ === 0) {
      this.note(`freeze ${node.name}`);
      proc.freeze();
    }
    let undone = false;
    return () => {
      if (undone) return;
      undone = true;
      if (--proc.freezes > 0 || proc.state !== 'frozen') return;
      const order: ThawOrder = this.random() < 0.5 ? 'timers-first' : 'io-first';
      this.note(`thaw ${node.name} (${order})`);
      proc.thaw(order);
    };
  }

  // --- the network ---------------------------------------------------------------

  /** Blocks a node's gossip port, in and out. Returns the undo. */
  blockGossip(node: SimNode): () => void {
    const f = { isolate: node };
    this.note(`gossip port of ${node.name} blocked`);
    this.#gossipFaults.add(f);
    this.#applyGossip();
    return () => {
      this.note(`gossip port of ${node.name} open`);
      this.#gossipFaults.delete(f);
      this.#applyGossip();
    };
  }

  /** Cuts gossip between two groups. Returns the undo. */
  partition(a: readonly SimNode[], b: readonly SimNode[]): () => void {
    const f = { partition: [a, b] as const };
    const text = `${a.map((n) => n.name).join(',')} | ${b.map((n) => n.name).join(',')}`;
    this.note(`gossip partition ${text}`);
    this.#gossipFaults.add(f);
    this.#applyGossip();
    return () => {
      this.note(`gossip partition ${text} healed`);
      this.#gossipFaults.delete(f);
      this.#applyGossip();
    };
  }

  /** Drops gossip from `from` to `to` only (an asymmetric fault: a one-way firewall rule, a bad NIC queue). Returns the undo. */
  blockOneWay(from: SimNode, to: SimNode): () => void {
    const f = { oneWay: [from, to] as const };
    this.note(`gossip ${from.name} -> ${to.name} dropped`);
    this.#gossipFaults.add(f);
    this.#applyGossip();
    return () => {
      this.note(`gossip ${from.name} -> ${to.name} flows again`);
      this.#gossipFaults.delete(f);
      this.#applyGossip();
    };
  }

  #applyGossip(): void {
    this.net.heal();
    for (const f of this.#gossipFaults) {
      if (f.isolate) this.net.isolate(f.isolate.gossipAddress);
      if (f.oneWay) this.net.block(f.oneWay[0].gossipAddress, f.oneWay[1].gossipAddress);
      if (f.partition) this.net.partition(f.partition[0].map((n) => n.gossipAddress), f.partition[1].map((n) => n.gossipAddress));
    }
  }

  /** Cuts a node's path to the API server. Returns the undo. */
  cutApi(node: SimNode): () => void {
    if (node.apiCuts++ === 0) {
      node.api.up = false;
      node.api.refused = this.random() < 0.5;
      this.note(`API path of ${node.name} cut (${node.api.refused ? 'refused' : 'silent'})`);
      node.view?.pathCut();
    }
    let undone = false;
    return () => {
      if (undone) return;
      undone = true;
      if (--node.apiCuts === 0) {
        node.api.up = true;
        this.note(`API path of ${node.name} back`);
        node.view?.pathRestored();
      }
    };
  }

  /** Takes a node's LAN link down (carrier lost or set down). Returns the undo. */
  linkDown(node: SimNode): () => void {
    if (node.linkDowns++ === 0) {
      node.linkMode = this.random() < 0.5 ? 'carrier' : 'admin';
      this.note(`link eth0 of ${node.name} down (${node.linkMode})`);
      if (node.linkMode === 'carrier') node.kernel.setCarrier('eth0', false);
      else node.kernel.setLinkUp('eth0', false);
    }
    let undone = false;
    return () => {
      if (undone) return;
      undone = true;
      if (--node.linkDowns === 0) {
        this.note(`link eth0 of ${node.name} up`);
        if (node.linkMode === 'carrier') node.kernel.setCarrier('eth0', true);
        else node.kernel.setLinkUp('eth0', true);
        this.#dirtyAll = true;
      }
    };
  }

  // --- driving -------------------------------------------------------------------

  /** Runs `fn` at time `at` (a harness event). */
  at(at: number, fn: () => void): void {
    this.clock.at(at, fn);
  }

  /** Runs events up to time `t` (or until `stop()`), checking after every one. Stops at the first violation. */
  async runUntil(t: number, stop?: () => boolean): Promise<void> {
    for (;;) {
      if (this.violations.length > 0) return;
      const next = this.clock.nextAt();
      if (next === undefined || next > t) break;
      this.clock.runNext();
      // The fake API server records every request; nothing here reads them.
      if (++this.events % 4096 === 0) this.server.calls.length = 0;
      await flush();
      if (this.errors.length > 0) throw new Error(this.errors.join('\n'));
      this.#check();
      if (stop?.()) return;
    }
    this.clock.runTo(t);
  }

  /** Starts counting availability afresh from now. */
  measureFrom(): void {
    this.#measureFrom = this.clock.now();
    for (const s of this.#state.values()) {
      s.since = this.#measureFrom;
      s.answeredMs = 0;
      s.singleMs = 0;
    }
  }

  #check(): void {
    const all = this.#dirtyAll || this.options.checkEveryEvent === true;
    if (!all && this.#dirty.size === 0) return;
    const list = all ? this.addresses : [...this.#dirty];
    this.#dirtyAll = false;
    this.#dirty.clear();
    const now = this.clock.now();
    let changed = false;
    for (const address of list) {
      const s = this.#state.get(address)!;
      const holders = this.segment.holders(address).map((mac) => this.#byMac.get(mac) ?? mac);
      if (holders.length > 1) {
        this.violations.push({ at: now, address, holders });
        this.note(`VIOLATION: ${address} answered by ${holders.join(' and ')}`);
      }
      if (holders.length !== s.count) {
        this.#account(s, now);
        s.count = holders.length;
        changed = true;
      }
      s.holders = holders;
    }
    if (changed) {
      const single = [...this.#state.values()].every((s) => s.count === 1);
      if (!single) this.allSingleSince = undefined;
      else this.allSingleSince ??= now;
    }
  }

  #account(s: AddressState, now: number): void {
    if (this.#measureFrom === undefined) return;
    const dt = now - Math.max(s.since, this.#measureFrom);
    if (dt > 0) {
      if (s.count >= 1) s.answeredMs += dt;
      if (s.count === 1) s.singleMs += dt;
    }
    s.since = now;
  }

  /** Fractions of the measured time each address was answered (by one node or more) and by exactly one. */
  availability(): { address: string; answered: number; single: number }[] {
    const now = this.clock.now();
    const total = now - (this.#measureFrom ?? now);
    return this.addresses.map((address) => {
      const s = this.#state.get(address)!;
      this.#account(s, now);
      return { address, answered: total > 0 ? s.answeredMs / total : 1, single: total > 0 ? s.singleMs / total : 1 };
    });
  }

  /** Who holds what now, per address (nodes by name). */
  holders(): Map<string, readonly string[]> {
    return new Map(this.addresses.map((a) => [a, this.segment.holders(a).map((mac) => this.#byMac.get(mac) ?? mac)]));
  }

  /** The node that holds `address` alone now, if one does. */
  holderOf(address: string): SimNode | undefined {
    const h = this.segment.holders(address);
    return h.length === 1 ? this.nodes.find((n) => n.mac === h[0]) : undefined;
  }

  /** A line for the trace, at the current time. */
  note(text: string): void {
    if (this.options.trace) this.trace.push(`${(this.clock.now() / 1000).toFixed(3)} ---- ${text}`);
  }

  /** A one-line picture of every node (mode, held addresses) and every address's holders. */
  describe(): string {
    const lines: string[] = [];
    for (const n of this.nodes) {
      const state = n.proc?.state ?? 'not started';
      lines.push(`  ${n.name}: process ${state}, mode ${n.agent?.mode ?? '-'}, holds ${[...(n.agent?.held ?? [])].sort().join(' ') || '-'}, api ${n.api.up ? 'up' : 'cut'}, link ${n.linkDowns > 0 ? 'down' : 'up'}`);
    }
    const services = this.server.objects<Service>('/api/v1/services');
    for (const [a, h] of this.holders()) {
      const ann = services.filter((s) => s.status?.loadBalancer?.ingress?.[0]?.ip === a).map((s) => s.metadata.annotations?.[Annotation.announcingIPv4] ?? '-');
      lines.push(`  ${a}: held by ${h.join(', ') || 'nobody'}; announced ${ann.join(' / ')}`);
    }
    return lines.join('\n');
  }

  #logger(node: SimNode, generation: number): Logger {
    const trace = this.options.trace === true;
    const line =
      (level: string) =>
      (obj: object, msg?: string): void => {
        const key = COUNTED[msg ?? ''];
        if (key) {
          const k = key === 'mode' ? `mode ${(obj as { mode?: string }).mode}` : key;
          this.stats.set(k, (this.stats.get(k) ?? 0) + 1);
        }
        if (!trace) return;
        const fields = Object.keys(obj).length > 0 ? ` ${JSON.stringify(obj)}` : '';
        this.trace.push(`${(this.clock.now() / 1000).toFixed(3)} ${node.name}#${generation} ${level} ${msg ?? ''}${fields}`);
      };
    return { info: line('info'), warn: line('warn'), error: line('error'), debug: line('debug') };
  }
}
