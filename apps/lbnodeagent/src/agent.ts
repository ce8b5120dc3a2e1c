// The node agent's shell: read the cluster (Services, EndpointSlices, ServiceGroups, the
// LBNodeAgent configuration, the agents' Leases) and the node (links, addresses), ask the
// membership and the guard who is alive, call the pure planner, and apply the difference
// to the kernel and to the Services' announcing annotations.
import { type Family, formatAddress, parseAddress, parseGroup } from '@purelb/ipam-core';
import { type Membership, guard } from '@purelb/election';
import {
  type EventRecorder,
  type Informer,
  type KubeClient,
  type Logger,
  type LBNodeAgent,
  type Service,
  type ServiceGroup,
  ALLOCATED_BY_VALUE,
  Annotation,
  KubeApiError,
  ingressIPs,
  localGroupSpec,
  microTime,
  serviceKey,
} from '@purelb/k8s-glue';
import type { InterfaceAddress, NetlinkHandle } from '@purelb/linux-net';
import { type GossipMode, type PeerLease, effectiveCandidates } from './candidates.ts';
import type { AgentMetrics } from './metrics.ts';
import { type LocalSubnet, type NodePlan, type PresentAddress, type ServiceAddress, addressChanges, planNode } from './plan.ts';

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

export const LEASE_PREFIX = 'purelb-agent-';
export const LeaseAnnotation = {
  memberlistAddress: 'purelb.io/memberlist-address',
  gossipMode: 'purelb.io/gossip-mode',
  subnets: 'purelb.io/subnets',
} as const;

export interface AgentSettings {
  readonly node: string;
  readonly namespace: string;
  readonly leaseDurationMs: number;
  readonly renewPeriodMs: number;
  readonly addressLifetimeS: number;
  readonly resyncMs: number;
  /** `host:port` peers use to reach this member. */
  readonly memberlistAddress: string;
}

export interface AgentDeps {
  readonly client: KubeClient;
  readonly netlink: NetlinkHandle;
  readonly membership: Membership;
  readonly services: Informer<Service>;
  readonly slices: Informer<SliceView>;
  readonly groups: Informer<ServiceGroup>;
  readonly agents: Informer<LBNodeAgent>;
  readonly leases: Informer<LeaseView>;
  readonly events: EventRecorder;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
}

interface LinkConfig {
  readonly extlbint: string;
  readonly localint: string;
  readonly sendgarp: boolean;
}

const HOLD_DOWN_MS = 500;
/** A full pass (address dumps, local subnets, lifetimes) runs at least this often. */
const FULL_PASS_MS = 5000;

export class NodeAgent {
  readonly #s: AgentSettings;
  readonly #d: AgentDeps;
  #linkConfig: LinkConfig = { extlbint: 'kube-lb0', localint: 'default', sendgarp: false };
  #createdVirtualLink: string | undefined;
  #localSubnets: LocalSubnet[] = [];
  /** Addresses this process put on a link: always ours to remove. */
  readonly #added = new Set<string>();
  /** When this agent last saw each peer's Lease renewTime change (local clock: skew-safe). */
  readonly #leaseSeen = new Map<string, { renewTime: string; at: number }>();
  #leaseRenewedAt: number | undefined;
  #mode: GossipMode = 'lease';
  #guardReason = '';
  #swimSince: number | undefined;
  #lastRefresh = 0;
  #lastFull = 0;
  #subscription: { close(): void } | undefined;
  /** Mode and candidates of the last reconcile: the tick reconciles when they change. */
  #lastSignature = '';
  #timer: NodeJS.Timeout | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #ready = false;
  #lastPlan: NodePlan | undefined;

  constructor(settings: AgentSettings, deps: AgentDeps) {
    this.#s = settings;
    this.#d = deps;
    const kick = (): void => this.schedule();
    for (const inf of [deps.services, deps.slices, deps.groups, deps.agents] as Informer<never>[]) {
      inf.on('add', kick);
      inf.on('update', kick);
      inf.on('delete', kick);
    }
    deps.leases.on('add', (l) => this.#observeLease(l));
    deps.leases.on('update', (l) => this.#observeLease(l));
    deps.leases.on('delete', kick);
    deps.membership.on('event', kick);
  }

  get ready(): boolean {
    return this.#ready;
  }

  get mode(): GossipMode {
    return this.#mode;
  }

  /** The last plan (tests and metrics). */
  get lastPlan(): NodePlan | undefined {
    return this.#lastPlan;
  }

  /** Reads the configuration and the node, ensures the virtual link, starts renewing the Lease and reconciling. */
  async start(): Promise<void> {
    this.#linkConfig = this.#readLinkConfig();
    const v = await this.#d.netlink.ensureVirtualLink(this.#linkConfig.extlbint);
    if (v.created) this.#createdVirtualLink = v.link.name;
    this.#localSubnets = await this.#readLocalSubnets();
    this.#d.membership.setSubnets(this.#localSubnets.map((s) => s.cidr));
    await this.#renewLease();
    this.#renewTimer = setInterval(() => void this.#renewLease(), this.#s.renewPeriodMs);
    this.#timer = setInterval(() => this.#tick(), this.#s.resyncMs);
    this.#watchKernel();
    this.#ready = true;
    this.schedule();
  }

  /**
   * Reacts to the kernel: an address or link removed behind our back (or lost
   * notifications) triggers a full pass at once, which restores what this node should hold.
   */
  #watchKernel(): void {
    const sub = this.#d.netlink.subscribe();
    this.#subscription = sub;
    void (async () => {
      for await (const change of sub) {
        if (this.#stopped) break;
        if (change.kind === 'address-removed' || change.kind === 'link-removed' || change.kind === 'resync') {
          this.#lastFull = 0;
          this.schedule();
        }
      }
    })().catch((e: unknown) => this.#d.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'kernel change subscription ended'));
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

  /**
   * The periodic check: cheap unless something changed. Lease freshness and gossip health
   * change with time alone, so the guard is re-evaluated every tick; the full reconcile
   * runs only when its outcome (mode, candidates) changed, when address lifetimes need
   * renewing, or every FULL_PASS_MS.
   */
  #tick(): void {
    if (!this.#ready || this.#stopped) return;
    const now = Date.now();
    const refreshDue = this.#s.addressLifetimeS !== 0 && now - this.#lastRefresh >= (this.#s.addressLifetimeS * 1000) / 3;
    if (refreshDue || now - this.#lastFull >= FULL_PASS_MS || this.#decide(now).signature !== this.#lastSignature) this.schedule();
  }

  /** Runs a reconcile soon; calls made while one runs coalesce into one more. */
  schedule(): void {
    if (!this.#ready || this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#reconcile()
      .catch((e: unknown) => this.#d.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'reconcile failed; retrying'))
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.schedule();
        }
      });
  }

  /** Waits for the reconcile in progress, if any. */
  async settle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /**
   * Shutdown in the order that hands over at once: withdraw every address, clear our
   * announcing annotations, leave the membership, delete the virtual link if we made it,
   * delete our Lease.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#subscription?.close();
    if (this.#timer) clearInterval(this.#timer);
    if (this.#renewTimer) clearInterval(this.#renewTimer);
    await this.settle();
    const present = await this.#presentAddresses();
    for (const p of present) {
      if (!this.#managed(p.address, p.link)) continue;
      await this.#d.netlink.deleteAddress(p.link, p.address).catch(() => false);
    }
    const prefix = `${this.#s.node},`;
    for (const svc of this.#d.services.list()) {
      for (const f of ['IPv4', 'IPv6'] as const) {
        const value = svc.metadata.annotations?.[f === 'IPv4' ? Annotation.announcingIPv4 : Annotation.announcingIPv6];
        if (value?.startsWith(prefix)) await this.#clearAnnouncing(serviceKey(svc), f, value);
      }
    }
    await this.#d.membership.leave().catch(() => undefined);
    if (this.#createdVirtualLink) await this.#d.netlink.deleteLink(this.#createdVirtualLink).catch(() => false);
    await this.#d.client.delete(`/apis/coordination.k8s.io/v1/namespaces/${this.#s.namespace}/leases/${LEASE_PREFIX}${this.#s.node}`, { ignoreNotFound: true }).catch(() => undefined);
  }

  // --- one reconcile --------------------------------------------------------

  async #reconcile(): Promise<void> {
    const now = Date.now();
    const linkConfig = this.#readLinkConfig();
    if (linkConfig.extlbint !== this.#linkConfig.extlbint || linkConfig.localint !== this.#linkConfig.localint) {
      this.#d.log.info({ linkConfig }, 'LBNodeAgent changed');
      const previous = this.#linkConfig.extlbint;
      const v = await this.#d.netlink.ensureVirtualLink(linkConfig.extlbint);
      if (previous !== linkConfig.extlbint) {
        // The old virtual interface is no longer ours to fill: empty it, and remove it if we made it.
        for (const a of await this.#d.netlink.listAddresses({ link: previous }).catch(() => [])) {
          if (!isLinkLocal(a)) await this.#d.netlink.deleteAddress(previous, `${a.address}/${a.prefixLength}`).catch(() => false);
        }
        if (this.#createdVirtualLink === previous) {
          await this.#d.netlink.deleteLink(previous).catch(() => false);
          this.#createdVirtualLink = undefined;
        }
      }
      if (v.created) this.#createdVirtualLink = v.link.name;
      this.#linkConfig = linkConfig;
      this.#localSubnets = await this.#readLocalSubnets();
      this.#d.membership.setSubnets(this.#localSubnets.map((s) => s.cidr));
    }
    this.#linkConfig = linkConfig;

    const { decision, candidates, basis, signature } = this.#decide(now);
    this.#swimSince = decision.swimSince;
    this.#lastSignature = signature;
    // A new mode is published on the Lease only after this reconcile has applied it: a
    // peer that reads "cut off" from our Lease must be able to rely on our withdrawals
    // having happened already.
    const modeChanged = decision.mode !== this.#mode;
    // Logged when the reason changes too (a member joined or left), not only the mode.
    if (modeChanged || decision.reason !== this.#guardReason) this.#d.log.info({ mode: decision.mode, reason: decision.reason }, 'guard mode');
    this.#guardReason = decision.reason;
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
        this.#d.membership.setSubnets(subnets.map((x) => x.cidr));
      }
    }
    const members = this.#d.membership.members();

    const plan = planNode({
      node: this.#s.node,
      addresses: this.#serviceAddresses(),
      localSubnets: this.#localSubnets,
      virtualLink: this.#linkConfig.extlbint,
      candidates,
    });
    this.#lastPlan = plan;

    const present = await this.#presentAddresses();
    const changes = addressChanges(present, plan.wanted, (a, l) => this.#managed(a, l));
    for (const r of changes.remove) {
      await this.#d.netlink.deleteAddress(r.link, r.address);
      this.#added.delete(r.address);
      this.#d.log.info({ address: r.address, link: r.link }, 'withdrew');
    }
    const lifetime = this.#s.addressLifetimeS === 0 ? {} : { validLifetime: this.#s.addressLifetimeS, preferredLifetime: this.#s.addressLifetimeS };
    for (const w of changes.add) {
      if (w.kind === 'local' && !(await this.#claim(w.services, w.family, `${this.#s.node},${w.link}`))) continue;
      await this.#d.netlink.replaceAddress(w.link, `${w.address}/${w.prefixLength}`, { nodad: true, ...(w.kind === 'local' ? lifetime : {}) });
      this.#added.add(w.address);
      this.#d.log.info({ address: w.address, link: w.link, kind: w.kind, basis }, 'announcing');
      if (w.kind === 'local' && this.#linkConfig.sendgarp) {
        await this.#d.netlink.announce(w.link, w.address, { count: 1 }).then(
          () => this.#d.metrics.garpSent.inc({ family: w.family }),
          (e: unknown) => this.#d.log.warn({ address: w.address, err: e instanceof Error ? e.message : String(e) }, 'GARP/NA failed'),
        );
      }
      for (const service of w.services) {
        this.#event(service, 'Normal', w.kind === 'local' ? 'AnnouncingLocal' : 'AnnouncingNonLocal', `${this.#s.node} announces ${w.address} on ${w.link}`);
      }
    }
    for (const w of changes.makePermanent) await this.#d.netlink.replaceAddress(w.link, `${w.address}/${w.prefixLength}`, { nodad: true });
    // Only local addresses carry a lifetime: one node at a time may hold one, so a killed
    // agent's must go away by itself. Every node holds the virtual ones anyway; they stay
    // until an agent removes them, and renewing thousands of them would keep the agent busy.
    if (this.#s.addressLifetimeS !== 0 && now - this.#lastRefresh >= (this.#s.addressLifetimeS * 1000) / 3) {
      this.#lastRefresh = now;
      const added = new Set(changes.add.map((w) => w.address));
      for (const w of plan.wanted.values()) {
        if (w.kind === 'local' && !added.has(w.address)) await this.#d.netlink.replaceAddress(w.link, `${w.address}/${w.prefixLength}`, { nodad: true, ...lifetime });
      }
    }
    if (modeChanged) {
      this.#mode = decision.mode;
      await this.#renewLease();
    }
    await this.#syncAnnouncing(plan);
    for (const n of plan.notes) this.#event(n.service, 'Warning', n.reason, n.message);
    this.#d.metrics.update(plan, decision.mode, members.filter((m) => m.status === 'alive' || m.status === 'suspect').length, this.#s.node);
  }

  /** The guard's decision and the candidates for the election, from the current views. */
  #decide(now: number): { decision: ReturnType<typeof guard>; candidates: ReturnType<typeof effectiveCandidates>['candidates']; basis: string; signature: string } {
    const members = this.#d.membership.members();
    const leaseMap = new Map<string, { renewedAt: number; leaseDurationMs: number }>();
    const peers: PeerLease[] = [];
    for (const l of this.#d.leases.list()) {
      const node = l.spec.holderIdentity;
      if (!node || !l.metadata.name.startsWith(LEASE_PREFIX)) continue;
      const durationMs = (l.spec.leaseDurationSeconds ?? 10) * 1000;
      const renewedAt = node === this.#s.node ? (this.#leaseRenewedAt ?? 0) : (this.#leaseSeen.get(node)?.at ?? 0);
      leaseMap.set(node, { renewedAt, leaseDurationMs: durationMs });
      const mode = l.metadata.annotations?.[LeaseAnnotation.gossipMode];
      peers.push({
        node,
        fresh: now - renewedAt < durationMs,
        mode: mode === 'swim' || mode === 'lease' || mode === 'fenced' ? mode : undefined,
        subnets: (l.metadata.annotations?.[LeaseAnnotation.subnets] ?? '').split(',').filter(Boolean),
      });
    }
    const decision = guard(members, leaseMap, {
      self: this.#s.node,
      canGossip: this.#d.membership.canGossip(),
      leaseRenewedAt: this.#leaseRenewedAt,
      leaseDurationMs: this.#s.leaseDurationMs,
      now,
      swimSince: this.#swimSince,
      holdDownMs: HOLD_DOWN_MS,
    });
    const swimSubnets = new Map(members.map((m) => [m.name, m.subnets]));
    const { candidates, basis } = effectiveCandidates(this.#s.node, decision, swimSubnets, this.#localSubnets.map((x) => x.cidr), peers);
    return { decision, candidates, basis, signature: `${decision.mode}|${basis}|${candidates.map((c) => c.name).join(',')}` };
  }

  // --- reading the world ------------------------------------------------------

  #readLinkConfig(): LinkConfig {
    const all = this.#d.agents.list();
    const cfg = all.find((a) => a.metadata.name === 'default') ?? all[0];
    const l = cfg?.spec.local ?? {};
    return { extlbint: l.extlbint ?? 'kube-lb0', localint: l.localint ?? 'default', sendgarp: l.sendgarp ?? false };
  }

  /** Subnets of the local interfaces: `default` = the default route's interface per family, else a regular expression. */
  async #readLocalSubnets(): Promise<LocalSubnet[]> {
    const links: string[] = [];
    if (this.#linkConfig.localint === 'default') {
      for (const f of ['IPv4', 'IPv6'] as const) {
        const r = await this.#d.netlink.defaultRoute(f);
        if (r && !links.includes(r.link.name)) links.push(r.link.name);
      }
    } else {
      for (const l of await this.#d.netlink.findLinks(new RegExp(this.#linkConfig.localint))) links.push(l.name);
    }
    const out: LocalSubnet[] = [];
    for (const link of links) {
      for (const a of await this.#d.netlink.listAddresses({ link })) {
        if (this.#added.has(a.address) || isLinkLocal(a)) continue;
        const cidr = subnetText(a);
        if (!out.some((s) => s.cidr === cidr)) out.push({ family: a.family, cidr, prefixLength: a.prefixLength, link });
      }
    }
    return out;
  }

  #serviceAddresses(): ServiceAddress[] {
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
      const key = serviceKey(svc);
      const shared = (svc.metadata.annotations?.[Annotation.allowSharedIp] ?? '') !== '';
      for (const ip of ingressIPs(svc)) {
        const a = parseAddress(ip);
        if (!a) continue;
        const announced = svc.metadata.annotations?.[a.family === 'IPv4' ? Annotation.announcingIPv4 : Annotation.announcingIPv6];
        out.push({
          announcedBy: announced ? announced.split(',')[0] : undefined,
          service: key,
          address: ip,
          family: a.family,
          trafficPolicy: svc.spec.externalTrafficPolicy === 'Local' ? 'Local' : 'Cluster',
          shared,
          endpointNodes: endpointNodes.get(key) ?? new Set(),
          aggregation: aggregation(a.family, a.value),
        });
      }
    }
    return out;
  }

  /** The aggregation prefix of the pool that holds an address, across all ServiceGroups. */
  #aggregations(): (family: Family, value: bigint) => number | undefined {
    const pools = this.#d.groups.list().flatMap((sg) => {
      if (!sg.spec.local) return [];
      try {
        const g = parseGroup(localGroupSpec(sg));
        return [...g.pools.IPv4, ...g.pools.IPv6];
      } catch {
        return [];
      }
    });
    return (family, value) => pools.find((p) => p.family === family && value >= p.first && value <= p.last)?.aggregation;
  }

  async #presentAddresses(): Promise<PresentAddress[]> {
    const links = new Set([this.#linkConfig.extlbint, ...this.#localSubnets.map((s) => s.link)]);
    const out: PresentAddress[] = [];
    for (const link of links) {
      let list: InterfaceAddress[];
      try {
        list = await this.#d.netlink.listAddresses({ link });
      } catch {
        continue; // the link went away; ensureVirtualLink brings the virtual one back
      }
      for (const a of list) if (!isLinkLocal(a)) out.push({ address: a.address, link, prefixLength: a.prefixLength, expires: a.validLifetime !== Infinity });
    }
    return out;
  }

  /** Ours to remove: anything we added, any Service address, anything on the virtual link. */
  #managed(address: string, link: string): boolean {
    if (this.#added.has(address) || link === this.#linkConfig.extlbint) return true;
    for (const svc of this.#d.services.list()) if (ingressIPs(svc).includes(address) && svc.metadata.annotations?.[Annotation.allocatedBy] === ALLOCATED_BY_VALUE) return true;
    return false;
  }

  // --- the announcing annotations ---------------------------------------------

  /**
   * Writes the announcing annotations this node owns and removes every one that names
   * this node but should not (read from the Services themselves, so a restart leaves none
   * behind). Runs after the address changes: a removal tells the next winner that this
   * node has withdrawn.
   */
  async #syncAnnouncing(plan: NodePlan): Promise<void> {
    const prefix = `${this.#s.node},`;
    for (const svc of this.#d.services.list()) {
      const key = serviceKey(svc);
      const mine = plan.announcing.get(key);
      const patch: Record<string, string> = {};
      for (const f of ['IPv4', 'IPv6'] as const) {
        const name = f === 'IPv4' ? Annotation.announcingIPv4 : Annotation.announcingIPv6;
        const current = svc.metadata.annotations?.[name];
        const want = mine?.get(f);
        if (want !== undefined && current !== want) patch[name] = want;
        else if (want === undefined && current?.startsWith(prefix)) await this.#clearAnnouncing(key, f, current);
      }
      if (Object.keys(patch).length > 0) {
        await this.#d.client
          .mergePatch(`/api/v1/namespaces/${svc.metadata.namespace}/services/${svc.metadata.name}`, { metadata: { annotations: patch } })
          .catch((e: unknown) => this.#d.log.warn({ service: key, err: e instanceof Error ? e.message : String(e) }, 'announcing annotation write failed'));
      }
    }
  }

  /**
   * Claims a local address at the API server before adding it: writes this node's
   * announcement on the Service with the cached resourceVersion as a precondition. The
   * planner let us claim because our cache shows no other live announcer; if the cache
   * is stale (another node announced meanwhile, or our own old announcement is not yet
   * seen removed), the server answers 409 and we wait for the fresh state instead of
   * holding the address together with that node.
   */
  async #claim(services: readonly string[], family: Family, value: string): Promise<boolean> {
    const key = [...services].sort()[0]!;
    const svc = this.#d.services.get(key);
    if (!svc) return false;
    const name = family === 'IPv4' ? Annotation.announcingIPv4 : Annotation.announcingIPv6;
    if (svc.metadata.annotations?.[name] === value) return true;
    try {
      await this.#d.client.mergePatch(`/api/v1/namespaces/${svc.metadata.namespace}/services/${svc.metadata.name}`, {
        metadata: { resourceVersion: svc.metadata.resourceVersion, annotations: { [name]: value } },
      });
      return true;
    } catch (e) {
      if (!(e instanceof KubeApiError && e.status === 409)) this.#d.log.warn({ service: key, err: e instanceof Error ? e.message : String(e) }, 'claim failed');
      else this.#d.log.debug({ service: key }, 'claim raced a newer Service; waiting for the fresh state');
      return false;
    }
  }

  /** Removes our announcing annotation only if it is still ours (a JSON Patch test). */
  async #clearAnnouncing(service: string, family: Family, value: string): Promise<void> {
    const [ns, name] = service.split('/');
    const key = (family === 'IPv4' ? Annotation.announcingIPv4 : Annotation.announcingIPv6).replace('/', '~1');
    await this.#d.client
      .jsonPatch(`/api/v1/namespaces/${ns}/services/${name}`, [
        { op: 'test', path: `/metadata/annotations/${key}`, value },
        { op: 'remove', path: `/metadata/annotations/${key}` },
      ])
      .catch((e: unknown) => {
        // 422 (the test failed: another node wrote it) and 404 (gone) are fine.
        if (!(e instanceof KubeApiError && (e.status === 422 || e.status === 404))) {
          this.#d.log.warn({ service, err: e instanceof Error ? e.message : String(e) }, 'announcing annotation removal failed');
        }
      });
  }

  // --- the agent's Lease -----------------------------------------------------

  #observeLease(l: LeaseView): void {
    const node = l.spec.holderIdentity;
    if (node && node !== this.#s.node && l.spec.renewTime) {
      const prev = this.#leaseSeen.get(node);
      if (!prev || prev.renewTime !== l.spec.renewTime) this.#leaseSeen.set(node, { renewTime: l.spec.renewTime, at: Date.now() });
    }
    this.schedule();
  }

  async #renewLease(): Promise<void> {
    if (this.#stopped) return;
    const name = `${LEASE_PREFIX}${this.#s.node}`;
    const path = `/apis/coordination.k8s.io/v1/namespaces/${this.#s.namespace}/leases`;
    const annotations = {
      [LeaseAnnotation.memberlistAddress]: this.#s.memberlistAddress,
      [LeaseAnnotation.gossipMode]: this.#mode,
      [LeaseAnnotation.subnets]: this.#localSubnets.map((s) => s.cidr).join(','),
    };
    const spec = { holderIdentity: this.#s.node, leaseDurationSeconds: Math.ceil(this.#s.leaseDurationMs / 1000), renewTime: microTime(new Date()) };
    const started = Date.now();
    try {
      await this.#d.client.mergePatch(`${path}/${name}`, { metadata: { annotations }, spec });
      this.#leaseRenewedAt = started;
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) {
        await this.#d.client
          .create(path, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: this.#s.namespace, labels: { 'purelb.io/component': 'lbnodeagent' }, annotations }, spec: { ...spec, acquireTime: spec.renewTime } })
          .then(() => (this.#leaseRenewedAt = started))
          .catch((err: unknown) => this.#d.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'Lease create failed'));
      } else {
        this.#d.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'Lease renewal failed');
      }
    }
  }

  #event(service: string, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const svc = this.#d.services.get(service);
    if (!svc) return;
    this.#d.events.event({ kind: 'Service', apiVersion: 'v1', namespace: svc.metadata.namespace, name: svc.metadata.name, uid: svc.metadata.uid }, type, reason, message);
  }
}

function isLinkLocal(a: InterfaceAddress): boolean {
  return a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80:');
}

/** `192.0.2.11/24` -> `192.0.2.0/24`. */
export function subnetText(a: { family: Family; address: string; prefixLength: number }): string {
  const p = parseAddress(a.address)!;
  const bits = a.family === 'IPv4' ? 32n : 128n;
  const host = (1n << (bits - BigInt(a.prefixLength))) - 1n;
  return `${formatAddress(a.family, p.value & ~host)}/${a.prefixLength}`;
}
