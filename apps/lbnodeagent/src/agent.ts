// The node agent's shell: read the cluster (Services, EndpointSlices, ServiceGroups, the
// LBNodeAgent configuration, the agents' Leases) and the node (links, addresses), ask the
// safety rule of @purelb/election who may hold what, call the pure planner, and apply the
// difference to the kernel and to the Services' announcing annotations.
//
// Three loops, so that nothing that keeps an address safe waits on anything slow:
// - the safety loop (membership events, Lease changes, a heartbeat, a timer at the
//   decision's next deadline) withdraws local addresses the moment this node may no longer
//   hold them: kernel calls only;
// - the refresh loop renews local addresses' lifetimes, after checking the rule at that
//   very moment; it never waits on the API server;
// - the reconcile loop applies the plan; taking over an address (probe, claim, add) runs
//   on its own, and API writes (announcements, the Lease) go through a queue with short
//   timeouts.
import { type Address, type Family, type Pool, formatAddress, ipv4MappedText, parseAddress, parseGroup, subnetTextOf } from '@purelb/ipam-core';
import {
  type Membership,
  type SafetyDecision,
  type SafetyLease,
  type SafetyMode,
  type SafetyState,
  type SafetyTiming,
  type Scheduler,
  addressVerdict,
  decideSafety,
  initialSafetyState,
  isSafetyMode,
  modeClass,
  realScheduler,
  safetyTiming,
} from '@purelb/election';
import {
  type Eligibility,
  type GroupNodeSelector,
  type LBNodeAgent,
  type NodeView,
  type Service,
  type ServiceGroup,
  ALLOCATED_BY_VALUE,
  AGENT_LEASE_PREFIX,
  AgentLeaseAnnotation,
  Annotation,
  PURELB_LOAD_BALANCER_CLASS,
  candidacy,
  groupNodeSelector,
  ingressIPs,
  nodeEligibility,
  parseLBNodeAgent,
  localGroupSpec,
  sameNodeView,
  serviceKey,
} from '@purelb/api';
import {
  type EventRecorder,
  type Informer,
  type KubeClient,
  type Logger,
  KubeApiError,
  microTime,
} from '@purelb/k8s-glue';
import { type InterfaceAddress, type NetlinkHandle, NetlinkError, NetlinkErrorCode, PURELB_ADDRESS_PROTOCOL } from '@purelb/linux-net';
import type { AgentMetrics } from './metrics.ts';
import { type LinkSubnet, type NodePlan, type Note, type PresentAddress, type ServiceAddress, type WantedAddress, addressChanges, addressLifetimes, planNode } from './plan.ts';
/** An EndpointSlice, trimmed to what the agent reads. */
export interface SliceView {
  readonly metadata: { readonly name: string; readonly namespace?: string | undefined; readonly resourceVersion?: string | undefined; readonly labels?: Readonly<Record<string, string>> | undefined };
  readonly endpoints: readonly { readonly nodeName?: string; readonly ready: boolean }[];
}

/** A Lease, trimmed. */
export interface LeaseView {
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly resourceVersion?: string; readonly annotations?: Readonly<Record<string, string>> };
  readonly spec: { readonly holderIdentity?: string; readonly renewTime?: string; readonly leaseDurationSeconds?: number };
}

/** The Lease names and annotations, shared with their readers (@purelb/api). */
const LEASE_PREFIX = AGENT_LEASE_PREFIX;
const LeaseAnnotation = AgentLeaseAnnotation;

export interface AgentSettings {
  readonly node: string;
  readonly namespace: string;
  readonly leaseDurationMs: number;
  readonly renewPeriodMs: number;
  /** Valid lifetime of a local address (s); renewed every quarter of it. */
  readonly addressLifetimeS: number;
  readonly resyncMs: number;
  /** `host:port` peers use to reach this member. */
  readonly memberlistAddress: string;
  /** An event-loop beat later than this (ms) is a stall: hold nothing until contact is fresh again. Default 250. */
  readonly stallThresholdMs?: number;
  /** Time limit of each API write (claims, announcements, the Lease). Default 2,000 ms. */
  readonly apiTimeoutMs?: number;
  /** Wait before probing again while another host answers for an address. Default 150 ms. */
  readonly probeRetryMs?: number;
}

export interface AgentDeps {
  readonly client: Pick<KubeClient, 'mergePatch' | 'jsonPatch' | 'create' | 'delete' | 'get'>;
  readonly netlink: NetlinkHandle;
  readonly membership: Membership;
  readonly services: Informer<Service>;
  readonly slices: Informer<SliceView>;
  readonly groups: Informer<ServiceGroup>;
  readonly agents: Informer<LBNodeAgent>;
  readonly leases: Informer<LeaseView>;
  /**
   * Every Node (trimmed: labels and NetworkUnavailable). This node's own, for
   * `nodeEligibility`: excluded by the label or NetworkUnavailable, the node announces
   * nothing. Every member's, for the ServiceGroups' node selectors (`candidacy`): all
   * agents elect among the same selected members. Absent: always eligible, and a group
   * with a node selector selects no node.
   */
  readonly nodes?: Informer<NodeView> | undefined;
  readonly events: EventRecorder;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
  /** Told when this node's eligibility as applied changes (not on passes that leave it as it was). */
  readonly onEligibilityChange?: ((before: Eligibility, now: Eligibility) => void) | undefined;
  /** The clock and timers (default: the process's monotonic clock). Simulations pass a virtual one. */
  readonly clock?: Scheduler;
  /** Wall clock (ms since the epoch) for the Lease's renewTime (default `Date.now`). Simulations pass a virtual one. */
  readonly wallClock?: () => number;
}

interface LinkConfig {
  readonly extlbint: string;
  /** `default`, or a regular expression over link names. */
  readonly localint: 'default' | RegExp;
  readonly sendgarp: boolean;
}

const DEFAULT_LINK_CONFIG: LinkConfig = { extlbint: 'kube-lb0', localint: 'default', sendgarp: false };
const sameLinks = (a: LinkConfig, b: LinkConfig): boolean => a.extlbint === b.extlbint && String(a.localint) === String(b.localint);
/** `localint` as the user wrote it (`default`, or the expression without slashes). */
const localintText = (l: LinkConfig['localint']): string => (l === 'default' ? l : l.source);

/**
 * The probe before an add: two ARP probes / DAD solicitations 20 ms apart, then 50 ms of
 * listening (70 ms in all). A holder's kernel answers within a few ms on a LAN, and the
 * answer waits in the socket if this process is slow to read it; every millisecond here
 * is added to every create and every failover.
 */
const PROBE = { probes: 2, intervalMs: 20, waitMs: 50 } as const;
/** A full pass (address dumps, local subnets) runs at least this often. */
const FULL_PASS_MS = 5000;
/**
 * With `sendgarp`, the GARP/NA rounds after a takeover, in ms after the address went on
 * the link: one at once and two repeats, each only while this node still holds the
 * address. A router or switch that misses the first frame would otherwise keep the old
 * MAC until its own neighbour entry goes stale (about 25 s for a Linux router, measured
 * in the routed lab with sendgarp off).
 */
export const GARP_ROUNDS_MS: readonly number[] = [0, 500, 2000];
/**
 * kube-proxy in IPVS mode puts every Service address (ClusterIP and LoadBalancer) on this
 * dummy link of every node, to accept its traffic. Those are copies, not the node's own
 * addresses: a Service address found there is still announced.
 */
const KUBE_PROXY_IPVS_LINK = 'kube-ipvs0';
/** Leases stale this many durations whose Node is gone are deleted. */
const LEASE_GC_DURATIONS = 10;
const LEASE_GC_EVERY_MS = 60_000;

interface PeerLeaseSeen {
  renewTime: string;
  renewedAt: number;
  mode: SafetyMode | undefined;
  modeSince: number;
  subnets: readonly string[];
  durationMs: number;
}

export class NodeAgent {
  readonly #s: AgentSettings;
  readonly #d: AgentDeps;
  readonly #clock: Scheduler;
  readonly #timing: SafetyTiming;
  readonly #stallMs: number;
  readonly #beatMs: number;
  readonly #apiTimeoutMs: number;
  #linkConfig: LinkConfig = DEFAULT_LINK_CONFIG;
  /** LBNodeAgent problems reported and still present: each is reported once, until it goes away. */
  readonly #configProblems = new Set<string>();
  /** The problems found by the pass in progress (start, or a reconcile). */
  readonly #configProblemsNow = new Set<string>();
  /** Subnets of every link of the node but the virtual one and loopback: never virtual. */
  #nodeSubnets: LinkSubnet[] = [];
  #createdVirtualLink: string | undefined;
  #localSubnets: LinkSubnet[] = [];
  /** Addresses this process put on a link: always ours to remove. */
  readonly #added = new Set<string>();
  /** Local addresses present on their link and held by this node: the refresh loop renews these. */
  readonly #held = new Map<string, WantedAddress>();
  /** Addresses being taken over (probe, claim, add). */
  readonly #takingOver = new Set<string>();
  /** When the rule first let this node take each local address it does not hold yet: the start of purelb_address_takeover_duration_seconds. */
  readonly #decidedAt = new Map<string, number>();
  /** Announcing annotations that named no node, already reported (service|annotation|value). */
  readonly #toldAnnouncements = new Set<string>();
  /** Each ServiceGroup's pools as last parsed without error. */
  readonly #lastValidPools = new Map<string, readonly Pool[]>();
  /** Addresses another host answered for at their last probe: since when, and whether that was told. */
  readonly #conflicts = new Map<string, { mac: string; since: number; told: boolean }>();
  /** The other agents' Leases as this agent observed them (its own clock: skew-safe). */
  readonly #peerLeases = new Map<string, PeerLeaseSeen>();
  #leaseRenewedAt: number | undefined;
  #safetyState: SafetyState = initialSafetyState();
  /** The mode of the last decision whose withdrawals were applied: what the Lease publishes. */
  #appliedMode: SafetyMode = 'settling';
  /** `reached/known` of the latest guard decision, published on the Lease (kubectl purelb status shows it). */
  #membership = '';
  #lastReason = '';
  #lastBeat = 0;
  #stalledAt: number | undefined;
  #lastFull = 0;
  #lastLeaseGc = 0;
  #subscription: { close(): void } | undefined;
  #lastSignature = '';
  /** Bumped on every Service event: what is derived from the Services is cached until it changes. */
  #servicesVersion = 0;
  #announcersCache: { version: number; nodes: ReadonlySet<string> } | undefined;
  readonly #timers = new Map<string, unknown>();
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #ready = false;
  #lastPlan: NodePlan | undefined;
  /** This node's eligibility as last applied (subnets published, plan made with it). */
  #eligibility: Eligibility = { eligible: true };
  /** Each ServiceGroup's node selector as last read (an invalid edit keeps the last valid one). */
  readonly #nodeSelectors = new Map<string, GroupNodeSelector>();
  /** Node-selector problems and groups selecting no node, already told (told again once they went away and came back). */
  readonly #toldSelection = new Set<string>();
  readonly #writes = new Map<string, () => Promise<unknown>>();
  #writing = false;

  constructor(settings: AgentSettings, deps: AgentDeps) {
    this.#s = settings;
    this.#d = deps;
    this.#clock = deps.clock ?? realScheduler;
    this.#timing = safetyTiming(deps.membership.config.isolationTimeoutMs, settings.addressLifetimeS);
    this.#stallMs = settings.stallThresholdMs ?? 250;
    this.#beatMs = Math.max(10, Math.floor(this.#stallMs / 5));
    this.#apiTimeoutMs = settings.apiTimeoutMs ?? 2000;
    const kick = (): void => this.schedule();
    for (const ev of ['add', 'update', 'delete'] as const) deps.services.on(ev, () => this.#servicesVersion++);
    for (const inf of [deps.services, deps.slices, deps.groups, deps.agents] as Informer<never>[]) {
      inf.on('add', kick);
      inf.on('update', kick);
      inf.on('delete', kick);
    }
    deps.leases.on('add', (l) => this.#observeLease(l));
    deps.leases.on('update', (l) => this.#observeLease(l));
    deps.leases.on('delete', (l) => {
      if (l.spec.holderIdentity) this.#peerLeases.delete(l.spec.holderIdentity);
      this.#enforce();
    });
    deps.membership.on('event', () => this.#enforce());
    // Every Node is watched (for the node selectors); only a change of what the rule reads
    // (labels, NetworkUnavailable) is worth a pass, not every status heartbeat.
    if (deps.nodes) {
      deps.nodes.on('add', kick);
      deps.nodes.on('delete', kick);
      deps.nodes.on('update', (n, prev) => {
        if (!sameNodeView(n, prev)) kick();
      });
    }
  }

  /** This node's eligibility as the agent applies it (tests, the reference's log line). */
  get eligibility(): Eligibility {
    return this.#eligibility;
  }

  /**
   * The subnets this node offers to the election (gossip and its Lease): none while it is
   * excluded, so that no peer elects it and its own rule never names it.
   */
  #publishedSubnets(): string[] {
    return this.#eligibility.eligible ? this.#localSubnets.map((s) => s.cidr) : [];
  }

  /**
   * Reads this node's eligibility from its Node; on a change, says so and publishes the
   * subnets that go with it. The addresses follow in the same pass: the plan wants none
   * while excluded, and the usual withdrawal removes them (then the announcements, so
   * that a peer takes over only after this node let go).
   */
  #applyEligibility(): void {
    const e = this.#d.nodes ? nodeEligibility(this.#d.nodes.get(this.#s.node)) : ({ eligible: true } as const);
    const before = this.#eligibility;
    const same = e.eligible === before.eligible && (e.eligible || before.eligible || e.reason === before.reason);
    this.#eligibility = e;
    this.#d.metrics.nodeExcluded(e.eligible ? undefined : e.reason);
    if (same) return;
    if (e.eligible) this.#d.log.info({ node: this.#s.node }, 'node included: it may announce addresses again');
    else this.#d.log.info({ node: this.#s.node, reason: e.reason, detail: e.message }, 'node excluded: withdrawing its addresses; it announces none');
    this.#d.membership.setSubnets(this.#publishedSubnets());
    this.#queueWrite('lease', () => this.#renewLease());
    this.#d.onEligibilityChange?.(before, e);
  }

  /** The links of this node's IPv4 local subnets (its LAN links; the ARP check reads their sysctls). */
  get ipv4LocalLinks(): string[] {
    return [...new Set(this.#localSubnets.filter((s) => s.family === 'IPv4').map((s) => s.link))];
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** The mode whose withdrawals are applied (and published on the Lease). */
  get mode(): SafetyMode {
    return this.#appliedMode;
  }

  /** The last plan (tests and metrics). */
  get lastPlan(): NodePlan | undefined {
    return this.#lastPlan;
  }

  /** Local addresses this node holds now (tests). */
  get held(): ReadonlySet<string> {
    return new Set(this.#held.keys());
  }

  /** Reads the configuration and the node, ensures the virtual link, starts the loops. */
  async start(): Promise<void> {
    this.#configProblemsNow.clear();
    let wanted = this.#readLinkConfig();
    const localProblem = await this.#localIntProblem(wanted);
    if (localProblem) {
      this.#reportConfig(localProblem.problem, `${localProblem.detail}; using localint ${DEFAULT_LINK_CONFIG.localint}`);
      wanted = { ...wanted, localint: DEFAULT_LINK_CONFIG.localint };
    }
    const v = await this.#ensureVirtualLink(wanted.extlbint).catch(async (e: unknown) => {
      // A configuration the kernel refuses (the name of an existing link of another kind,
      // the LAN interface): say so, and start on the default rather than not at all.
      this.#reportConfig(`spec.local.extlbint: ${errText(e)}`, `using ${DEFAULT_LINK_CONFIG.extlbint}`);
      return { link: await this.#ensureVirtualLink(DEFAULT_LINK_CONFIG.extlbint), fallback: true };
    });
    this.#endConfigPass();
    const link = 'fallback' in v ? v.link : v;
    this.#linkConfig = 'fallback' in v ? { ...wanted, extlbint: DEFAULT_LINK_CONFIG.extlbint } : wanted;
    if (link.created) this.#createdVirtualLink = link.link.name;
    this.#localSubnets = await this.#readLocalSubnets();
    this.#nodeSubnets = await this.#readNodeSubnets();
    this.#applyEligibility();
    this.#d.membership.setSubnets(this.#publishedSubnets());
    await this.#renewLease();
    this.#lastBeat = this.#clock.now();
    this.#every('beat', this.#beatMs, () => this.#beat());
    this.#every('renew', this.#s.renewPeriodMs, () => this.#queueWrite('lease', () => this.#renewLease()));
    this.#every('tick', this.#s.resyncMs, () => this.#tick());
    if (this.#s.addressLifetimeS !== 0) this.#every('refresh', (this.#s.addressLifetimeS * 1000) / 4, () => void this.#refresh());
    this.#watchKernel();
    this.#ready = true;
    this.#enforce();
    this.schedule();
  }

  #every(name: string, ms: number, fn: () => void): void {
    const arm = (): void => {
      this.#timers.set(
        name,
        this.#clock.at(this.#clock.now() + ms, () => {
          if (this.#stopped) return;
          arm();
          fn();
        }),
      );
    };
    arm();
  }

  #at(name: string, at: number, fn: () => void): void {
    const prev = this.#timers.get(name);
    if (prev !== undefined) this.#clock.cancel(prev);
    this.#timers.delete(name);
    if (!Number.isFinite(at) || this.#stopped) return;
    this.#timers.set(
      name,
      this.#clock.at(Math.max(at, this.#clock.now()), () => {
        this.#timers.delete(name);
        if (!this.#stopped) fn();
      }),
    );
  }

  /**
   * Reacts to the kernel: an address or link removed behind our back (or lost
   * notifications) triggers a full pass at once; a local link going down loses its local
   * addresses at once, so they cannot answer again when it comes back before a probe.
   */
  #watchKernel(): void {
    const sub = this.#d.netlink.subscribe();
    this.#subscription = sub;
    void (async () => {
      for await (const change of sub) {
        if (this.#stopped) break;
        if (change.kind === 'address-removed') this.#held.delete(change.address.address);
        if (change.kind === 'link-updated' && (!change.link.up || change.link.operState === 'down' || change.link.operState === 'lowerlayerdown')) {
          const lost = [...this.#held.values()].filter((w) => w.link === change.link.name);
          if (lost.length > 0) {
            this.#d.log.warn({ link: change.link.name, addresses: lost.length }, 'local link down: withdrawing its addresses');
            await this.#withdraw(lost);
          }
        }
        if (change.kind === 'address-removed' || change.kind === 'link-removed' || change.kind === 'resync' || change.kind === 'link-updated') {
          this.#lastFull = 0;
          this.schedule();
        }
      }
    })().catch((e: unknown) => this.#d.log.warn({ err: errText(e) }, 'kernel change subscription ended'));
  }

  /** Seeds from the other agents' Leases (`host:port`). */
  seeds(): string[] {
    const out: string[] = [];
    for (const l of this.#d.leases.list()) {
      const addr = l.metadata.annotations?.[LeaseAnnotation.memberlistAddress];
      if (l.metadata.name.startsWith(LEASE_PREFIX) && l.spec.holderIdentity !== this.#s.node && addr) out.push(addr);
    }
    return out;
  }

  // --- the safety loop --------------------------------------------------------

  /** The event loop's heartbeat: a late beat is a stall. */
  #beat(): void {
    const now = this.#clock.now();
    const gap = now - this.#lastBeat;
    this.#lastBeat = now;
    this.#d.metrics.eventLoopLag.observe(Math.max(0, gap - this.#beatMs) / 1000);
    if (gap > this.#stallMs) this.#noteStall(now, gap);
  }

  /** True (and the stall recorded) if the event loop is late right now: called before every kernel write that keeps or adds an address. */
  #stalledNow(): boolean {
    const now = this.#clock.now();
    const gap = now - this.#lastBeat;
    if (gap <= this.#stallMs) return false;
    this.#noteStall(now, gap);
    return true;
  }

  #noteStall(now: number, gap: number): void {
    this.#stalledAt = now;
    this.#d.metrics.stalls.inc();
    this.#d.log.warn({ stalledMs: Math.round(gap), thresholdMs: this.#stallMs }, 'event loop stalled: holding nothing until contact is fresh again');
    this.#enforce();
  }

  /** The rule's decision now, from the current views (updates the remembered state). */
  /** The nodes our Services' announcing annotations name; read again only after a Service changed. */
  #announcers(): ReadonlySet<string> {
    if (this.#announcersCache?.version === this.#servicesVersion) return this.#announcersCache.nodes;
    const nodes = new Set<string>();
    for (const svc of this.#d.services.list()) {
      if (!isOurClass(svc)) continue;
      for (const name of [Annotation.announcingIPv4, Annotation.announcingIPv6]) {
        const node = announcerOf(svc.metadata.annotations?.[name]);
        if (node !== undefined) nodes.add(node);
      }
    }
    this.#announcersCache = { version: this.#servicesVersion, nodes };
    return nodes;
  }

  #decide(): SafetyDecision {
    const now = this.#clock.now();
    const leases = new Map<string, SafetyLease>();
    // Peers' Leases are only as fresh as the watch that brings them: while it is stale (nothing
    // heard within its idle bound) none counts as fresh, so no lease-consensus rests on it.
    const watchFresh = this.#d.leases.healthy;
    for (const [node, l] of this.#peerLeases) leases.set(node, { renewedAt: watchFresh ? l.renewedAt : Math.min(l.renewedAt, now - l.durationMs), leaseDurationMs: l.durationMs, mode: l.mode, modeSince: l.modeSince, subnets: l.subnets });
    const announcers = this.#announcers();
    const d = decideSafety(
      {
        self: this.#s.node,
        now,
        selfSubnets: this.#publishedSubnets(),
        members: this.#d.membership.members(),
        lastContactAt: this.#d.membership.lastContactAt(),
        leases,
        ownLeaseRenewedAt: this.#leaseRenewedAt,
        ownLeaseDurationMs: this.#s.leaseDurationMs,
        stalledAt: this.#stalledAt,
        announcers,
        timing: this.#timing,
      },
      this.#safetyState,
    );
    this.#safetyState = d.state;
    return d;
  }

  /**
   * Applies the part of the rule that cannot wait: when this node may hold nothing, every
   * local address goes at once. Re-arms the timer at the decision's next deadline, and
   * schedules a reconcile when the outcome changed.
   */
  #enforce(): void {
    if (!this.#ready || this.#stopped) return;
    const d = this.#decide();
    if (!d.mayHold && this.#held.size > 0) void this.#withdraw([...this.#held.values()]);
    this.#at('decide', d.nextCheckAt, () => this.#enforce());
    const signature = `${d.mode}|${[...d.candidates.keys()].sort().join(',')}`;
    if (signature !== this.#lastSignature) this.schedule();
  }

  /** Removes local addresses from the kernel (no API call). */
  async #withdraw(list: readonly WantedAddress[]): Promise<void> {
    for (const w of list) this.#held.delete(w.address);
    // One batch (`ip -batch` of `addr del`): thousands go in one pass, not one round trip each.
    const results = await this.#d.netlink
      .deleteAddresses(list.map((w) => ({ link: w.link, address: `${w.address}/${w.prefixLength}` })))
      .catch((e: unknown) => list.map(() => ({ ok: false as const, error: e })));
    list.forEach((w, i) => {
      const r = results[i];
      if (r && !r.ok) this.#d.log.warn({ address: w.address, err: errText(r.error) }, 'withdrawal failed');
      this.#added.delete(w.address);
      this.#d.log.info({ address: w.address, link: w.link }, 'withdrew');
    });
  }

  /**
   * Renews the lifetime of every local address this node holds, if the rule lets it hold
   * them at this very moment; never waits on the API server.
   */
  async #refresh(): Promise<void> {
    if (!this.#ready || this.#stopped || this.#held.size === 0) return;
    if (this.#stalledNow()) return;
    const d = this.#decide();
    if (!d.mayHold) {
      this.#enforce();
      return;
    }
    const ctx = { self: this.#s.node, now: this.#clock.now(), leases: new Map(), timing: this.#timing };
    const renew: WantedAddress[] = [];
    for (const w of this.#held.values()) {
      const svc = this.#d.services.get(w.services[0] ?? '');
      const announced = announcerOf(svc?.metadata.annotations?.[w.family === 'IPv4' ? Annotation.announcingIPv4 : Annotation.announcingIPv6]);
      const selects = this.#selects(svc?.metadata.annotations?.[Annotation.allocatedFrom]);
      if (addressVerdict(d, ctx, w.address, announced ?? this.#s.node, selects).action === 'hold') renew.push(w);
    }
    // Checked again right before the batch goes out: nothing above awaits, and the batch is
    // written to the socket at once (`ip -batch` of `addr replace`), so no renewal leaves after a stall.
    if (renew.length === 0 || this.#stalledNow()) return;
    const results = await this.#d.netlink
      .replaceAddresses(renew.map((w) => ({ link: w.link, address: `${w.address}/${w.prefixLength}`, options: this.#addressOptions(w) })))
      .catch((e: unknown) => renew.map(() => ({ ok: false as const, error: e })));
    renew.forEach((w, i) => {
      const r = results[i];
      if (r && !r.ok) this.#d.log.warn({ address: w.address, err: errText(r.error) }, 'lifetime renewal failed');
    });
  }

  /** How an address of ours is written: no DAD (the probe did that), our protocol mark, its lifetimes. */
  #addressOptions(w: WantedAddress): { nodad: true; protocol: number; validLifetime?: number; preferredLifetime?: number } {
    return { nodad: true, protocol: PURELB_ADDRESS_PROTOCOL, ...addressLifetimes(w, this.#s.addressLifetimeS) };
  }

  /** The periodic check: a reconcile every FULL_PASS_MS; the Lease garbage collection. */
  #tick(): void {
    if (!this.#ready || this.#stopped) return;
    const now = this.#clock.now();
    if (now - this.#lastFull >= FULL_PASS_MS) this.schedule();
    if (now - this.#lastLeaseGc >= LEASE_GC_EVERY_MS) {
      this.#lastLeaseGc = now;
      this.#collectLeases(now);
    }
  }

  /** Runs a reconcile soon; calls made while one runs coalesce into one more. */
  schedule(): void {
    if (!this.#ready || this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#reconcile()
      .catch((e: unknown) => this.#d.log.warn({ err: errText(e) }, 'reconcile failed; retrying'))
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.schedule();
        }
      });
  }

  /** Waits for the reconcile in progress, the takeovers and the queued writes. */
  async settle(): Promise<void> {
    for (let i = 0; i < 100 && (this.#running || this.#writing || this.#takingOver.size > 0); i++) {
      if (this.#running) await this.#running;
      else await new Promise((r) => this.#clock.at(this.#clock.now() + 5, () => r(undefined)));
    }
  }

  /**
   * Shutdown in the order that hands over at once: withdraw every address, clear our
   * announcing annotations, leave the membership, delete the virtual link if we made it,
   * delete our Lease.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#subscription?.close();
    for (const t of this.#timers.values()) this.#clock.cancel(t);
    this.#timers.clear();
    await this.settle();
    const present = await this.#readKernel().then((k) => k.present, () => []);
    // One batch: thousands of addresses go well within the termination grace period.
    const ours = present.filter((p) => this.#managed(p.address, p.link, p.protocol));
    await this.#d.netlink.deleteAddresses(ours.map((p) => ({ link: p.link, address: `${p.address}/${p.prefixLength}` }))).catch(() => []);
    this.#held.clear();
    const prefix = `${this.#s.node},`;
    for (const svc of this.#d.services.list()) {
      if (!isOurClass(svc)) continue;
      for (const f of ['IPv4', 'IPv6'] as const) {
        const value = svc.metadata.annotations?.[f === 'IPv4' ? Annotation.announcingIPv4 : Annotation.announcingIPv6];
        if (value?.startsWith(prefix)) await this.#clearAnnouncing(serviceKey(svc), f, value);
      }
    }
    await this.#d.membership.leave().catch(() => undefined);
    if (this.#createdVirtualLink) await this.#d.netlink.deleteLink(this.#createdVirtualLink).catch(() => false);
    await this.#d.client.delete(`/apis/coordination.k8s.io/v1/namespaces/${this.#s.namespace}/leases/${LEASE_PREFIX}${this.#s.node}`, { ignoreNotFound: true, timeoutMs: this.#apiTimeoutMs }).catch(() => undefined);
  }

  // --- one reconcile --------------------------------------------------------

  async #reconcile(): Promise<void> {
    this.#configProblemsNow.clear();
    let linkConfig = this.#readLinkConfig();
    if (String(linkConfig.localint) !== String(this.#linkConfig.localint)) {
      const problem = await this.#localIntProblem(linkConfig);
      if (problem) {
        this.#reportConfig(problem.problem, `${problem.detail}; keeping localint ${localintText(this.#linkConfig.localint)}`);
        linkConfig = { ...linkConfig, localint: this.#linkConfig.localint };
      }
    }
    let created: string | undefined;
    if (linkConfig.extlbint !== this.#linkConfig.extlbint) {
      try {
        const v = await this.#ensureVirtualLink(linkConfig.extlbint);
        if (v.created) created = v.link.name;
      } catch (e) {
        // Refused by the kernel or by the checks: keep the last valid configuration.
        this.#reportConfig(`spec.local.extlbint: ${errText(e)}`, `keeping ${this.#linkConfig.extlbint}`);
        linkConfig = { ...linkConfig, extlbint: this.#linkConfig.extlbint };
        await this.#ensureVirtualLink(this.#linkConfig.extlbint);
      }
    }
    // Only what was accepted changes anything (and is logged once, not on every pass).
    if (!sameLinks(linkConfig, this.#linkConfig)) {
      const previous = this.#linkConfig.extlbint;
      this.#d.log.info({ extlbint: linkConfig.extlbint, localint: localintText(linkConfig.localint) }, 'LBNodeAgent changed');
      if (previous !== linkConfig.extlbint) {
        // The old virtual interface is no longer ours to fill: empty it, and remove it if we made it.
        for (const a of await this.#d.netlink.listAddresses({ link: previous }).catch(() => [])) {
          if (!isLinkLocal(a) && this.#managed(a.address, previous, a.protocol)) await this.#d.netlink.deleteAddress(previous, `${a.address}/${a.prefixLength}`).catch(() => false);
        }
        if (this.#createdVirtualLink === previous) {
          await this.#d.netlink.deleteLink(previous).catch(() => false);
          this.#createdVirtualLink = undefined;
        }
      }
      if (created) this.#createdVirtualLink = created;
      this.#linkConfig = linkConfig;
      this.#localSubnets = await this.#readLocalSubnets();
      this.#d.membership.setSubnets(this.#publishedSubnets());
    }
    this.#linkConfig = linkConfig;
    this.#endConfigPass();

    const now = this.#clock.now();
    if (now - this.#lastFull >= FULL_PASS_MS) {
      this.#lastFull = now;
      const read = await this.#readLocalSubnets();
      // A family whose local interface shows nothing right now (its link down, its default
      // route gone for a moment) keeps its last known subnets: otherwise this node would
      // take its local addresses for virtual ones and put them on the virtual interface.
      const subnets = [...read];
      for (const f of ['IPv4', 'IPv6'] as const) if (!read.some((x) => x.family === f)) subnets.push(...this.#localSubnets.filter((x) => x.family === f));
      if (subnets.map((x) => x.cidr).join() !== this.#localSubnets.map((x) => x.cidr).join()) {
        this.#d.log.info({ subnets: subnets.map((x) => x.cidr) }, 'local subnets changed');
        this.#localSubnets = subnets;
        this.#d.membership.setSubnets(this.#publishedSubnets());
      }
      const nodeSubnets = await this.#readNodeSubnets();
      // Like the local subnets, a link down for a moment does not make its subnets virtual.
      for (const old of this.#nodeSubnets) if (!nodeSubnets.some((x) => x.cidr === old.cidr)) nodeSubnets.push(old);
      this.#nodeSubnets = nodeSubnets;
    }

    this.#applyEligibility();
    this.#readNodeSelectors();
    // One read of the kernel per pass (with 1,000 Services, each dump is most of a pass's cost).
    const kernel = await this.#readKernel();
    const d = this.#decide();
    this.#membership = `${d.reached}/${d.population}`;
    this.#lastSignature = `${d.mode}|${[...d.candidates.keys()].sort().join(',')}`;
    if (d.mode !== this.#appliedMode || d.reason !== this.#lastReason) this.#d.log.info({ mode: d.mode, reason: d.reason }, 'guard mode');
    this.#lastReason = d.reason;
    const ctx = { self: this.#s.node, now: this.#clock.now(), leases: this.#safetyLeases(), timing: this.#timing };
    const services = this.#serviceAddresses();
    const plan = planNode({
      node: this.#s.node,
      addresses: services.addresses,
      ownAddresses: kernel.own,
      localSubnets: this.#localSubnets,
      nodeSubnets: this.#nodeSubnets,
      localint: localintText(this.#linkConfig.localint),
      virtualLink: this.#linkConfig.extlbint,
      verdict: (address, announcedBy, group) => addressVerdict(d, ctx, address, announcedBy, this.#selects(group)),
      excluded: !this.#eligibility.eligible,
      selectedFor: (group) => this.#selects(group)?.(this.#s.node) ?? true,
    });
    this.#lastPlan = plan;
    // A conflict is told once while the Service has the address, not again each time this
    // node stops and starts wanting it (its guard settling after a peer's restart).
    for (const a of [...this.#conflicts.keys()]) if (!services.addresses.some((x) => x.address === a)) this.#conflicts.delete(a);

    const present = kernel.present;
    const changes = addressChanges(present, plan.wanted, (a, l) => this.#managed(a, l, present.find((p) => p.address === a && p.link === l)?.protocol));
    for (const r of changes.remove) {
      this.#held.delete(r.address);
      await this.#d.netlink.deleteAddress(r.link, `${r.address}/${r.prefixLength}`);
      this.#added.delete(r.address);
      this.#d.log.info({ address: r.address, link: r.link }, 'withdrew');
    }
    // Local addresses present and wanted: held (the refresh loop renews them), if they are
    // ours. One that is not (the node's own address, given to a Service by mistake) is
    // never held, renewed, announced or removed.
    for (const p of present) {
      const w = plan.wanted.get(p.address);
      if (w?.kind !== 'local' || w.link !== p.link || w.prefixLength !== p.prefixLength) continue;
      if (this.#managed(p.address, p.link, p.protocol)) this.#held.set(w.address, w);
      else {
        for (const service of w.services) {
          this.#event(service, 'Warning', 'AddressInUseByNode', `${w.address} is an address of node ${this.#s.node} on ${p.link}, not one PureLB added; it is not announced (give the Service another address)`);
        }
      }
    }
    // A decision ends when the address is on the NIC, or when the plan stops wanting it here
    // or the mode stops letting this node hold anything.
    for (const a of [...this.#decidedAt.keys()]) if (!d.mayHold || plan.wanted.get(a)?.kind !== 'local') this.#decidedAt.delete(a);
    for (const w of changes.add) {
      if (w.kind === 'local') {
        if (d.mayHold) {
          if (!this.#decidedAt.has(w.address)) this.#decidedAt.set(w.address, this.#clock.now());
          this.#takeOver(w);
        }
        continue;
      }
      await this.#d.netlink.replaceAddress(w.link, `${w.address}/${w.prefixLength}`, this.#addressOptions(w));
      this.#added.add(w.address);
      this.#d.log.info({ address: w.address, link: w.link, kind: w.kind }, 'announcing');
      for (const service of w.services) this.#event(service, 'Normal', 'AnnouncingNonLocal', `${this.#s.node} announces ${w.address} on ${w.link}`);
    }
    for (const w of changes.restamp) await this.#d.netlink.replaceAddress(w.link, `${w.address}/${w.prefixLength}`, this.#addressOptions(w));
    // Published only now that this pass applied the mode's withdrawals: a peer that reads
    // "withdrawn" on our Lease relies on it.
    if (d.mode !== this.#appliedMode && (d.mayHold || this.#held.size === 0)) {
      this.#appliedMode = d.mode;
      this.#queueWrite('lease', () => this.#renewLease());
    }
    this.#syncAnnouncing(plan);
    for (const n of [...services.notes, ...plan.notes]) this.#event(n.service, 'Warning', n.reason, n.message);
    let wake = Infinity;
    for (const a of plan.awaitingHandover.values()) if (a.until !== undefined && a.until < wake) wake = a.until;
    this.#at('fence', wake, () => this.schedule());
    this.#reportSelection();
    this.#d.metrics.update(plan, d.mode, 1 + this.#d.membership.members().filter((m) => m.name !== this.#s.node && (m.status === 'alive' || m.status === 'suspect')).length, this.#s.node);
  }

  /**
   * Takes over one local address: probe the LAN (nobody else may answer for it), claim it
   * at the API server, check the rule once more, add it. While another host answers, probe
   * again after `probeRetryMs`.
   */
  #takeOver(w: WantedAddress): void {
    if (this.#takingOver.has(w.address)) return;
    this.#takingOver.add(w.address);
    const run = async (): Promise<void> => {
      if (this.#stalledNow() || !this.#decide().mayHold) return;
      let probe: { conflict: boolean; mac?: string };
      try {
        probe = await this.#d.netlink.probeAddress(w.link, w.address, PROBE);
      } catch (e) {
        this.#d.log.warn({ address: w.address, link: w.link, err: errText(e) }, 'cannot probe; not adding');
        this.#at(`probe:${w.address}`, this.#clock.now() + (this.#s.probeRetryMs ?? 150) * 4, () => this.schedule());
        return;
      }
      if (probe.conflict) {
        this.#d.metrics.probeConflicts.inc({ family: w.family });
        this.#noteConflict(w, probe.mac ?? 'unknown');
        this.#at(`probe:${w.address}`, this.#clock.now() + (this.#s.probeRetryMs ?? 150), () => this.schedule());
        return;
      }
      this.#conflicts.delete(w.address);
      if (!(await this.#claim(w.services, w.family, `${this.#s.node},${w.link}`))) return;
      // The world may have moved while we probed and claimed: the rule must still say hold
      // (with our own announcement as the planner reads it: sticky to us).
      if (this.#stalledNow()) return;
      const d = this.#decide();
      const svc = this.#d.services.get([...w.services].sort()[0] ?? '');
      const announced = announcerOf(svc?.metadata.annotations?.[w.family === 'IPv4' ? Annotation.announcingIPv4 : Annotation.announcingIPv6]);
      // As the planner reads it: this node's own announcement is what lets it hold an
      // address whose hash winner is another node (stickiness).
      const selects = this.#selects(svc?.metadata.annotations?.[Annotation.allocatedFrom]);
      const v = addressVerdict(d, { self: this.#s.node, now: this.#clock.now(), leases: this.#safetyLeases(), timing: this.#timing }, w.address, announced, selects);
      if (v.action !== 'hold') return;
      await this.#d.netlink.replaceAddress(w.link, `${w.address}/${w.prefixLength}`, this.#addressOptions(w));
      this.#added.add(w.address);
      this.#held.set(w.address, w);
      const decidedAt = this.#decidedAt.get(w.address);
      if (decidedAt !== undefined) {
        this.#decidedAt.delete(w.address);
        this.#d.metrics.takeoverDuration.observe({ family: w.family }, (this.#clock.now() - decidedAt) / 1000);
      }
      this.#d.log.info({ address: w.address, link: w.link, kind: 'local', mode: d.mode }, 'announcing');
      if (this.#linkConfig.sendgarp) {
        const at = this.#clock.now();
        for (const [i, delay] of GARP_ROUNDS_MS.entries()) {
          if (delay === 0) await this.#garp(w);
          else this.#at(`garp ${w.address} ${i}`, at + delay, () => void this.#garp(w));
        }
      }
      for (const service of w.services) this.#event(service, 'Normal', 'AnnouncingLocal', `${this.#s.node} announces ${w.address} on ${w.link}`);
    };
    void run()
      .catch((e: unknown) => this.#d.log.warn({ address: w.address, err: errText(e) }, 'takeover failed'))
      .finally(() => this.#takingOver.delete(w.address));
  }

  /** One GARP/NA round for an address this node still holds on the link it took it on. */
  async #garp(w: WantedAddress): Promise<void> {
    const held = this.#held.get(w.address);
    if (held?.link !== w.link || !this.#linkConfig.sendgarp || this.#stalledNow()) return;
    await this.#d.netlink.announce(w.link, w.address, { count: 1 }).then(
      () => this.#d.metrics.garpSent.inc({ family: w.family }),
      (e: unknown) => this.#d.log.warn({ address: w.address, err: errText(e) }, 'GARP/NA failed'),
    );
  }

  /**
   * Another host answers for an address this node should take. During a handover that is
   * the previous holder until its address expires; one still answering after that (the
   * LAN gateway, a forgotten static address, a node's own address) is said once: a log
   * line and a Warning on the Services. Probing goes on meanwhile.
   */
  #noteConflict(w: WantedAddress, mac: string): void {
    const now = this.#clock.now();
    let c = this.#conflicts.get(w.address);
    if (!c || c.mac !== mac) this.#conflicts.set(w.address, (c = { mac, since: now, told: false }));
    if (c.told || now - c.since < this.#s.addressLifetimeS * 1000 + this.#timing.isolationTimeoutMs + 1000) return;
    c.told = true;
    const retryMs = this.#s.probeRetryMs ?? 150;
    this.#d.log.info({ address: w.address, mac, link: w.link }, 'another host answers for the address; not adding it while one does');
    for (const service of w.services) {
      this.#event(service, 'Warning', 'AddressConflict', `${w.address}: another host (${mac}) answers for it on ${w.link}; node ${this.#s.node} does not add it while one does (probing again every ${retryMs} ms)`);
    }
  }

  #safetyLeases(): Map<string, SafetyLease> {
    const out = new Map<string, SafetyLease>();
    for (const [node, l] of this.#peerLeases) out.set(node, { renewedAt: l.renewedAt, leaseDurationMs: l.durationMs, mode: l.mode, modeSince: l.modeSince, subnets: l.subnets });
    return out;
  }

  // --- the ServiceGroups' node selectors -------------------------------------

  /**
   * Which members may announce the addresses of a group: undefined for a group without a
   * node selector (every candidate of the election), else the rule of `candidacy` over
   * the members' Nodes.
   */
  #selects(group: string | undefined): ((node: string) => boolean) | undefined {
    const selector = group === undefined ? undefined : this.#nodeSelectors.get(group);
    if (selector === undefined || selector.kind === 'all') return undefined;
    const nodes = this.#d.nodes;
    return (node) => candidacy(nodes?.get(node), selector).may;
  }

  /** Reads every ServiceGroup's node selector; an invalid one is told once and the last valid one kept. */
  #readNodeSelectors(): void {
    const seen = new Set<string>();
    for (const sg of this.#d.groups.list()) {
      const name = sg.metadata.name;
      seen.add(name);
      const { selector, problem } = groupNodeSelector(sg, this.#nodeSelectors.get(name));
      this.#nodeSelectors.set(name, selector);
      const key = `invalid|${name}|${problem ?? ''}`;
      for (const k of [...this.#toldSelection]) if (k.startsWith(`invalid|${name}|`) && k !== key) this.#toldSelection.delete(k);
      if (problem !== undefined && !this.#toldSelection.has(key)) {
        this.#toldSelection.add(key);
        const using = selector.kind === 'none' ? 'no node announces its addresses' : 'keeping its last valid node selector';
        this.#d.log.warn({ group: name, problem }, `ServiceGroup node selector refused; ${using}`);
      }
    }
    for (const name of [...this.#nodeSelectors.keys()]) if (!seen.has(name)) this.#nodeSelectors.delete(name);
  }

  /**
   * For each group with a node selector: how many members (this node and the live ones in
   * its membership view, whatever the guard's mode) it selects among the eligible. None:
   * its addresses are announced by no node; said once in the log until it selects one
   * again, and always in purelb_servicegroup_selected_nodes.
   */
  #reportSelection(): void {
    const counts = new Map<string, number>();
    const live = this.#d.membership.members().filter((m) => m.status === 'alive' || m.status === 'suspect');
    const members = new Set([this.#s.node, ...live.map((m) => m.name)]);
    for (const [group, selector] of this.#nodeSelectors) {
      if (selector.kind === 'all') continue;
      const selects = this.#selects(group)!;
      // This node counts only while eligible (an excluded node publishes no subnets).
      const n = [...members].filter((m) => (m !== this.#s.node || this.#eligibility.eligible) && selects(m)).length;
      counts.set(group, n);
      const key = `empty|${group}`;
      if (n === 0 && !this.#toldSelection.has(key)) {
        this.#toldSelection.add(key);
        this.#d.log.warn({ group, members: members.size }, 'ServiceGroup node selector matches no eligible node: its addresses are announced by no node');
      } else if (n > 0 && this.#toldSelection.delete(key)) {
        this.#d.log.info({ group, selected: n }, 'ServiceGroup node selector matches eligible nodes again');
      }
    }
    for (const k of [...this.#toldSelection]) if (k.startsWith('empty|') && !counts.has(k.slice(6))) this.#toldSelection.delete(k);
    this.#d.metrics.groupSelection(counts);
  }

  // --- reading the world ------------------------------------------------------

  /** The LBNodeAgent's settings, checked; an invalid one is reported and the last valid one kept. */
  #readLinkConfig(): LinkConfig {
    const all = this.#d.agents.list();
    const cfg = all.find((a) => a.metadata.name === 'default') ?? all[0];
    if (!cfg) return this.#linkConfig;
    const parsed = parseLBNodeAgent(cfg);
    if (!parsed.ok) {
      this.#reportConfig(parsed.message, `keeping extlbint ${this.#linkConfig.extlbint}, localint ${localintText(this.#linkConfig.localint)}`);
      return this.#linkConfig;
    }
    return parsed.settings;
  }

  /**
   * Reports a configuration problem once while it lasts (log line, Warning Event on the
   * LBNodeAgent, metric): the same problem found again by later passes is not repeated,
   * whatever is done about it (`consequence`: what the agent uses instead).
   */
  #reportConfig(problem: string, consequence: string): void {
    this.#configProblemsNow.add(problem);
    this.#d.metrics.configValid.set(0);
    if (this.#configProblems.has(problem)) return;
    this.#configProblems.add(problem);
    const message = `${problem}; ${consequence}`;
    this.#d.log.warn({ problem: message }, 'LBNodeAgent configuration refused');
    const cfg = this.#d.agents.list().find((a) => a.metadata.name === 'default') ?? this.#d.agents.list()[0];
    if (cfg) {
      this.#d.events.event({ kind: 'LBNodeAgent', apiVersion: 'purelb.io/v1', namespace: cfg.metadata.namespace ?? this.#s.namespace, name: cfg.metadata.name, uid: cfg.metadata.uid }, 'Warning', 'InvalidLBNodeAgent', `node ${this.#s.node}: ${message}`);
    }
  }

  /**
   * Ends a pass over the configuration: problems not found again are gone (and would be
   * reported again if they came back); with none left, the configuration in use is the
   * one written, and the metric says so.
   */
  #endConfigPass(): void {
    for (const p of [...this.#configProblems]) if (!this.#configProblemsNow.has(p)) this.#configProblems.delete(p);
    if (this.#configProblemsNow.size > 0) return;
    this.#d.metrics.configValid.set(1);
  }

  /**
   * Why `localint` cannot be used on this node, or undefined: it must match a link, other
   * than lo and the virtual interface, that holds an address. One that matches nothing
   * (a typing error, or RE2 syntax that JavaScript reads differently) would leave the node
   * no local subnet, and every LAN address would stop being announced from it.
   */
  async #localIntProblem(cfg: LinkConfig): Promise<{ problem: string; detail: string } | undefined> {
    if (cfg.localint === 'default') return undefined;
    const all = await this.#d.netlink.listLinks();
    const matched = await this.#d.netlink.findLinks(cfg.localint);
    const addresses = await this.#d.netlink.listAddresses();
    const usable = matched.filter((l) => l.name !== 'lo' && l.name !== cfg.extlbint && l.name !== this.#linkConfig.extlbint && addresses.some((a) => a.linkIndex === l.index && !isLinkLocal(a)));
    if (usable.length > 0) return undefined;
    const names = (list: readonly { name: string }[]): string => {
      const sorted = list.map((l) => l.name).sort();
      return sorted.length > 12 ? `${sorted.slice(0, 12).join(', ')} and ${sorted.length - 12} more` : sorted.join(', ');
    };
    // The links are the detail, not the problem: they come and go (a Pod's veth) while the problem stays the same.
    return {
      problem: `spec.local.localint: "${cfg.localint.source}" matches no interface of this node that can hold local addresses (one other than lo and the virtual interface, with an address)`,
      detail: `it matches ${matched.length === 0 ? 'none' : names(matched)} of ${names(all.filter((l) => l.name !== cfg.extlbint && l.name !== this.#linkConfig.extlbint))}`,
    };
  }

  /**
   * `ip link add NAME type dummy` unless NAME is an interface the node uses for its own
   * traffic (the default route's): that would put LoadBalancer addresses beside the node's
   * and, on a change, empty it.
   */
  async #ensureVirtualLink(name: string): ReturnType<NetlinkHandle['ensureVirtualLink']> {
    for (const f of ['IPv4', 'IPv6'] as const) {
      const r = await this.#d.netlink.defaultRoute(f).catch(() => undefined);
      if (r?.link.name === name) throw new Error(`${name} is the interface of this node's ${f} default route, not a link of its own`);
    }
    try {
      return await this.#d.netlink.ensureVirtualLink(name);
    } catch (e) {
      if (!(e instanceof NetlinkError && e.code === NetlinkErrorCode.LinkKindMismatch)) throw e;
      // Not a setting of the agent's to change (virtualLinkKind): the name is the node's.
      const kind = (await this.#d.netlink.getLink(name).catch(() => undefined))?.kind ?? 'physical';
      throw new Error(`${name} is an existing ${kind} link of this node; the virtual interface must be a link of its own, which the agent creates: name a new link such as ${DEFAULT_LINK_CONFIG.extlbint}`);
    }
  }

  /** Subnets of every link but the virtual one and loopback. */
  async #readNodeSubnets(): Promise<LinkSubnet[]> {
    const out: LinkSubnet[] = [];
    const names = new Map((await this.#d.netlink.listLinks().catch(() => [])).map((l) => [l.index, l.name]));
    for (const a of await this.#d.netlink.listAddresses().catch(() => [] as InterfaceAddress[])) {
      const link = names.get(a.linkIndex);
      if (link === undefined || link === this.#linkConfig.extlbint || link === 'lo' || isLinkLocal(a) || this.#added.has(a.address) || a.protocol === PURELB_ADDRESS_PROTOCOL) continue;
      const cidr = subnetTextOf(a.address, a.prefixLength);
      if (!out.some((s) => s.cidr === cidr)) out.push({ family: a.family, cidr, prefixLength: a.prefixLength, link });
    }
    return out;
  }

  /** Subnets of the local interfaces: `default` = the default route's interface per family, else a regular expression. */
  async #readLocalSubnets(): Promise<LinkSubnet[]> {
    const links: string[] = [];
    if (this.#linkConfig.localint === 'default') {
      for (const f of ['IPv4', 'IPv6'] as const) {
        const r = await this.#d.netlink.defaultRoute(f);
        if (r && !links.includes(r.link.name)) links.push(r.link.name);
      }
    } else {
      for (const l of await this.#d.netlink.findLinks(this.#linkConfig.localint)) links.push(l.name);
    }
    const out: LinkSubnet[] = [];
    for (const link of links) {
      for (const a of await this.#d.netlink.listAddresses({ link })) {
        if (this.#added.has(a.address) || isLinkLocal(a)) continue;
        const cidr = subnetTextOf(a.address, a.prefixLength);
        if (!out.some((s) => s.cidr === cidr)) out.push({ family: a.family, cidr, prefixLength: a.prefixLength, link });
      }
    }
    return out;
  }

  /**
   * The node's own addresses (address -> link): on every link but the virtual one, not
   * added by this process or marked as PureLB's, nor being added right now.
   */
  /**
   * One read of every address on the node (`ip link show; ip addr show`), split in two:
   * `own`, the node's own addresses by link (not on the virtual link, not kube-proxy's
   * copies on kube-ipvs0, not added by an agent: the planner never gives these to a
   * Service), and `present`, what is on the
   * links the agent manages (the virtual link and the local subnets' links).
   */
  async #readKernel(): Promise<{ own: Map<string, string>; present: (PresentAddress & { protocol: number | undefined })[] }> {
    const names = new Map((await this.#d.netlink.listLinks()).map((l) => [l.index, l.name]));
    const managedLinks = new Set([this.#linkConfig.extlbint, ...this.#localSubnets.map((s) => s.link)]);
    const own = new Map<string, string>();
    const present: (PresentAddress & { protocol: number | undefined })[] = [];
    for (const a of await this.#d.netlink.listAddresses()) {
      const link = names.get(a.linkIndex);
      if (link === undefined) continue;
      if (managedLinks.has(link) && !isLinkLocal(a)) {
        present.push({ address: a.address, link, prefixLength: a.prefixLength, expires: a.validLifetime !== Infinity, preferred: a.family === 'IPv6' && a.preferredLifetime !== 0, protocol: a.protocol });
      }
      if (link === this.#linkConfig.extlbint || link === KUBE_PROXY_IPVS_LINK || this.#added.has(a.address) || this.#takingOver.has(a.address) || a.protocol === PURELB_ADDRESS_PROTOCOL) continue;
      own.set(a.address, link);
    }
    return { own, present };
  }

  /**
   * Our Services' addresses, canonical (as the kernel writes them); an ingress address the
   * agent cannot use (not an address, or IPv4-mapped IPv6) is a note, not an address.
   */
  #serviceAddresses(): { addresses: ServiceAddress[]; notes: Note[] } {
    const notes: Note[] = [];
    const endpointNodes = new Map<string, Set<string>>();
    for (const s of this.#d.slices.list()) {
      const svc = s.metadata.labels?.['kubernetes.io/service-name'];
      if (!svc) continue;
      const key = `${s.metadata.namespace}/${svc}`;
      let set = endpointNodes.get(key);
      if (!set) endpointNodes.set(key, (set = new Set()));
      for (const e of s.endpoints) if (e.ready && e.nodeName) set.add(e.nodeName);
    }
    const aggregation = this.#aggregations();
    const out: ServiceAddress[] = [];
    for (const svc of this.#d.services.list()) {
      if (svc.metadata.annotations?.[Annotation.allocatedBy] !== ALLOCATED_BY_VALUE) continue;
      if (svc.spec.type !== 'LoadBalancer') continue;
      // Another class's Service is not ours, whatever its annotations and status say.
      if (!isOurClass(svc)) continue;
      const key = serviceKey(svc);
      const shared = (svc.metadata.annotations?.[Annotation.allowSharedIp] ?? '') !== '';
      for (const { index: i, text: ip, address: a, canonical } of ingressOf(svc)) {
        const field = `status.loadBalancer.ingress[${i}].ip "${ip}"`;
        if (!a || canonical === undefined) {
          notes.push({ service: key, reason: 'InvalidAddress', message: `${field} is not an IPv4 or IPv6 address the agent reads (four decimal numbers without leading zeros, or IPv6 without a zone); not announced` });
          continue;
        }
        if (ipv4MappedText(a) !== undefined) {
          notes.push({ service: key, reason: 'InvalidAddress', message: `${field} is an IPv4-mapped IPv6 address, which nothing answers for on the wire; not announced` });
          continue;
        }
        const announced = svc.metadata.annotations?.[a.family === 'IPv4' ? Annotation.announcingIPv4 : Annotation.announcingIPv6];
        out.push({
          announcedBy: announcerOf(announced),
          group: svc.metadata.annotations?.[Annotation.allocatedFrom],
          service: key,
          address: canonical,
          family: a.family,
          trafficPolicy: svc.spec.externalTrafficPolicy === 'Local' ? 'Local' : 'Cluster',
          shared,
          endpointNodes: endpointNodes.get(key) ?? new Set(),
          aggregation: aggregation(a.family, a.value),
        });
      }
    }
    return { addresses: out, notes };
  }

  /**
   * The aggregation prefix of the pool that holds an address, across all ServiceGroups. A
   * group that no longer parses keeps its last valid pools, as the allocator keeps them:
   * an invalid edit does not change how its addresses are announced.
   */
  #aggregations(): (family: Family, value: bigint) => number | undefined {
    const seen = new Set<string>();
    const pools = this.#d.groups.list().flatMap((sg) => {
      if (!sg.spec.local) return [];
      const name = sg.metadata.name;
      seen.add(name);
      try {
        const g = parseGroup(localGroupSpec(sg));
        const list = [...g.pools.IPv4, ...g.pools.IPv6];
        this.#lastValidPools.set(name, list);
        return list;
      } catch {
        return this.#lastValidPools.get(name) ?? [];
      }
    });
    for (const name of [...this.#lastValidPools.keys()]) if (!seen.has(name)) this.#lastValidPools.delete(name);
    return (family, value) => pools.find((p) => p.family === family && value >= p.first && value <= p.last)?.aggregation;
  }

  /**
   * Ours to remove: what this process added, and what an earlier run of the agent added
   * (marked with our address protocol). Never a node's own address, whatever a Service says.
   */
  #managed(address: string, _link: string, protocol: number | undefined): boolean {
    return this.#added.has(address) || protocol === PURELB_ADDRESS_PROTOCOL;
  }

  // --- API writes: a queue with short timeouts --------------------------------

  /** Queues an API write under `key` (a later write with the same key replaces a pending one). */
  #queueWrite(key: string, write: () => Promise<unknown>): void {
    if (this.#stopped && key !== 'stop') return;
    this.#writes.set(key, write);
    if (this.#writing) return;
    this.#writing = true;
    void (async () => {
      for (let n = 0; n < 100_000 && this.#writes.size > 0; n++) {
        const [k, w] = this.#writes.entries().next().value as [string, () => Promise<unknown>];
        this.#writes.delete(k);
        await w().catch((e: unknown) => this.#d.log.warn({ write: k, err: errText(e) }, 'API write failed'));
      }
    })().finally(() => {
      this.#writing = false;
      if (this.#writes.size > 0) this.#queueWrite(this.#writes.keys().next().value!, this.#writes.get(this.#writes.keys().next().value!)!);
    });
  }

  // --- the announcing annotations ---------------------------------------------

  /**
   * Queues the announcing annotations this node owns and the removal of every one that
   * names this node but should not (read from the Services themselves, so a restart leaves
   * none behind). Runs after the address changes: a removal tells the next holder that
   * this node has withdrawn.
   */
  #syncAnnouncing(plan: NodePlan): void {
    const prefix = `${this.#s.node},`;
    for (const svc of this.#d.services.list()) {
      // Another class's annotations are its own business, even when they name this node.
      if (!isOurClass(svc)) continue;
      const key = serviceKey(svc);
      const mine = plan.announcing.get(key);
      // Most Services neither want an announcement from this node nor carry one naming it.
      const annotations = svc.metadata.annotations;
      if (mine === undefined && !annotations?.[Annotation.announcingIPv4]?.startsWith(prefix) && !annotations?.[Annotation.announcingIPv6]?.startsWith(prefix)) continue;
      const patch: Record<string, string> = {};
      for (const f of ['IPv4', 'IPv6'] as const) {
        const name = f === 'IPv4' ? Annotation.announcingIPv4 : Annotation.announcingIPv6;
        const current = svc.metadata.annotations?.[name];
        const want = mine?.get(f);
        // Written only for addresses this node holds now; a claim writes it before the add.
        const address = canonicalIngress(svc, f);
        if (want !== undefined && current !== want && address !== undefined && this.#held.has(address)) {
          patch[name] = want;
          if (current !== undefined && announcerOf(current) === undefined) this.#tellInvalidAnnouncement(key, name, current, want);
        }
        else if (want === undefined && current?.startsWith(prefix) && !(address !== undefined && this.#held.has(address))) {
          // Checked again when the write goes out (the queue may hold it for seconds while the
          // API server is slow): by then we may hold the address again under the same
          // announcement, and removing it would tell the others nobody holds it.
          const ours = (): boolean => address !== undefined && (this.#held.has(address) || this.#takingOver.has(address));
          this.#queueWrite(`clear:${key}:${f}`, () => (ours() ? Promise.resolve() : this.#clearAnnouncing(key, f, current)));
        }
      }
      if (Object.keys(patch).length > 0) {
        this.#queueWrite(`announce:${key}`, () =>
          this.#d.client.mergePatch(`/api/v1/namespaces/${svc.metadata.namespace}/services/${svc.metadata.name}`, { metadata: { annotations: patch } }, { timeoutMs: this.#apiTimeoutMs }),
        );
      }
    }
  }

  /** Says once per value that an announcing annotation named no node and is being replaced. */
  #tellInvalidAnnouncement(service: string, name: string, current: string, want: string): void {
    const told = `${service}|${name}|${current}`;
    if (this.#toldAnnouncements.has(told)) return;
    if (this.#toldAnnouncements.size >= 1024) this.#toldAnnouncements.clear();
    this.#toldAnnouncements.add(told);
    this.#event(service, 'Warning', 'InvalidAnnotation', `${name} "${current}" does not name a node; it is written by the node agents: replaced by ${want}`);
  }

  /**
   * Claims a local address at the API server before adding it: writes this node's
   * announcement on the Service with the cached resourceVersion as a precondition. The
   * planner let us claim because our cache shows no other live announcer; if the cache
   * is stale (another node announced meanwhile, or our own old announcement is not yet
   * seen removed), the server answers 409 and we wait for the fresh state instead of
   * holding the address together with that node. Written even when the cache already
   * shows our announcement: that copy may be stale too.
   */
  async #claim(services: readonly string[], family: Family, value: string): Promise<boolean> {
    const key = [...services].sort()[0]!;
    const svc = this.#d.services.get(key);
    if (!svc) return false;
    const name = family === 'IPv4' ? Annotation.announcingIPv4 : Annotation.announcingIPv6;
    try {
      await this.#d.client.mergePatch(
        `/api/v1/namespaces/${svc.metadata.namespace}/services/${svc.metadata.name}`,
        { metadata: { resourceVersion: svc.metadata.resourceVersion, annotations: { [name]: value } } },
        { timeoutMs: this.#apiTimeoutMs },
      );
      return true;
    } catch (e) {
      if (!(e instanceof KubeApiError && e.status === 409)) this.#d.log.warn({ service: key, err: errText(e) }, 'claim failed');
      else this.#d.log.debug({ service: key }, 'claim raced a newer Service; waiting for the fresh state');
      return false;
    }
  }

  /** Removes our announcing annotation only if it is still ours (a JSON Patch test). */
  async #clearAnnouncing(service: string, family: Family, value: string): Promise<void> {
    const [ns, name] = service.split('/');
    const key = (family === 'IPv4' ? Annotation.announcingIPv4 : Annotation.announcingIPv6).replace('/', '~1');
    await this.#d.client
      .jsonPatch(
        `/api/v1/namespaces/${ns}/services/${name}`,
        [
          { op: 'test', path: `/metadata/annotations/${key}`, value },
          { op: 'remove', path: `/metadata/annotations/${key}` },
        ],
        { timeoutMs: this.#apiTimeoutMs },
      )
      .catch((e: unknown) => {
        // 422 (the test failed: another node wrote it) and 404 (gone) are fine.
        if (!(e instanceof KubeApiError && (e.status === 422 || e.status === 404))) {
          this.#d.log.warn({ service, err: errText(e) }, 'announcing annotation removal failed');
        }
      });
  }

  // --- the agents' Leases ----------------------------------------------------

  #observeLease(l: LeaseView): void {
    const node = l.spec.holderIdentity;
    if (node && node !== this.#s.node && l.spec.renewTime) {
      const now = this.#clock.now();
      const published = l.metadata.annotations?.[LeaseAnnotation.gossipMode];
      const mode = isSafetyMode(published) ? published : undefined;
      const prev = this.#peerLeases.get(node);
      this.#peerLeases.set(node, {
        renewTime: l.spec.renewTime,
        renewedAt: !prev || prev.renewTime !== l.spec.renewTime ? now : prev.renewedAt,
        mode,
        modeSince: !prev || modeClass(prev.mode) !== modeClass(mode) ? now : prev.modeSince,
        subnets: (l.metadata.annotations?.[LeaseAnnotation.subnets] ?? '').split(',').filter(Boolean),
        durationMs: (l.spec.leaseDurationSeconds ?? 10) * 1000,
      });
    }
    this.#enforce();
  }

  /** Renews this agent's Lease (created if missing), publishing the applied mode and the subnets. */
  async #renewLease(): Promise<void> {
    if (this.#stopped) return;
    const name = `${LEASE_PREFIX}${this.#s.node}`;
    const path = `/apis/coordination.k8s.io/v1/namespaces/${this.#s.namespace}/leases`;
    const annotations = {
      [LeaseAnnotation.memberlistAddress]: this.#s.memberlistAddress,
      [LeaseAnnotation.gossipMode]: this.#appliedMode,
      [LeaseAnnotation.subnets]: this.#publishedSubnets().join(','),
      [LeaseAnnotation.membership]: this.#membership,
    };
    const spec = { holderIdentity: this.#s.node, leaseDurationSeconds: Math.ceil(this.#s.leaseDurationMs / 1000), renewTime: microTime(new Date((this.#d.wallClock ?? Date.now)())) };
    const started = this.#clock.now();
    const timeoutMs = Math.min(this.#apiTimeoutMs, this.#s.renewPeriodMs);
    try {
      await this.#d.client.mergePatch(`${path}/${name}`, { metadata: { annotations }, spec }, { timeoutMs });
      this.#leaseRenewedAt = started;
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) {
        await this.#d.client
          .create(path, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: this.#s.namespace, labels: { 'purelb.io/component': 'lbnodeagent' }, annotations }, spec: { ...spec, acquireTime: spec.renewTime } }, { timeoutMs })
          .then(() => (this.#leaseRenewedAt = started))
          .catch((err: unknown) => this.#d.log.warn({ err: errText(err) }, 'Lease create failed'));
      } else {
        this.#d.log.warn({ err: errText(e) }, 'Lease renewal failed');
      }
    }
    this.#enforce();
  }

  /**
   * Deletes the Leases of agents whose Node is gone and whose Lease has been stale for
   * LEASE_GC_DURATIONS durations. Only a node in contact with the majority does it; a
   * Lease of a Node that still exists is never deleted (its agent may only be cut off, and
   * the rule counts it until its Node is removed).
   */
  #collectLeases(now: number): void {
    if (this.#appliedMode !== 'swim') return;
    for (const [node, l] of this.#peerLeases) {
      if (now - l.renewedAt < LEASE_GC_DURATIONS * l.durationMs) continue;
      this.#queueWrite(`gc:${node}`, async () => {
        const gone = await this.#d.client.get(`/api/v1/nodes/${node}`, { timeoutMs: this.#apiTimeoutMs }).then(
          () => false,
          (e: unknown) => e instanceof KubeApiError && e.status === 404,
        );
        if (!gone) return;
        this.#d.log.info({ node }, 'deleting the Lease of an agent whose Node is gone');
        await this.#d.client.delete(`/apis/coordination.k8s.io/v1/namespaces/${this.#s.namespace}/leases/${LEASE_PREFIX}${node}`, { ignoreNotFound: true, timeoutMs: this.#apiTimeoutMs });
      });
    }
  }

  #event(service: string, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const svc = this.#d.services.get(service);
    if (!svc) return;
    this.#d.events.event({ kind: 'Service', apiVersion: 'v1', namespace: svc.metadata.namespace, name: svc.metadata.name, uid: svc.metadata.uid }, type, reason, message);
  }
}

/** What a Kubernetes node name may be: a DNS-1123 subdomain. */
const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * The node an announcing annotation (`node,link`) names; undefined when it is absent or
 * names nothing a node could be called (garbage, an empty value): such a value is no
 * announcer to wait for, and the holder writes its own over it.
 */
export function announcerOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const node = value.split(',')[0]!;
  return node.length <= 253 && NODE_NAME.test(node) ? node : undefined;
}

/** One `status.loadBalancer.ingress[].ip` as written, and as the agent reads it. */
interface IngressAddress {
  readonly index: number;
  readonly text: string;
  /** Undefined when it is not an address. */
  readonly address: Address | undefined;
  /** As the kernel writes it (RFC 5952); undefined when it is not an address. */
  readonly canonical: string | undefined;
}

// The informer hands out a new object for every change of a Service, so what is derived
// from one object stays true for it: every pass reads 1,000 Services' addresses, and
// parsing them again each time is most of a pass's work.
const ingressCache = new WeakMap<Service, readonly IngressAddress[]>();

/** A Service's ingress addresses, parsed once per version of the Service. */
function ingressOf(svc: Service): readonly IngressAddress[] {
  let out = ingressCache.get(svc);
  if (!out) {
    out = ingressIPs(svc).map((text, index) => {
      const address = parseAddress(text);
      return { index, text, address, canonical: address && formatAddress(address.family, address.value) };
    });
    ingressCache.set(svc, out);
  }
  return out;
}

/** A Service's ingress address of one family as the kernel writes it (RFC 5952), if it has a readable one. */
function canonicalIngress(svc: Service, family: Family): string | undefined {
  return ingressOf(svc).find((i) => i.address?.family === family)?.canonical;
}

/** A Service of our class (or of none): another class's Service is never read for addresses nor written. */
function isOurClass(svc: Service): boolean {
  return svc.spec.loadBalancerClass === undefined || svc.spec.loadBalancerClass === PURELB_LOAD_BALANCER_CLASS;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function isLinkLocal(a: InterfaceAddress): boolean {
  return a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80:');
}
