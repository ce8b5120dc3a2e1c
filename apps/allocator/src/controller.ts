// The allocator's shell: read Services and ServiceGroups from the API, call the pure core
// (serviceIntent, Ipam, servicePatch), write the difference. Only the Lease holder writes.
// Every replica mirrors what the Services carry into its Ipam (so a new leader starts
// warm); a new leader allocates nothing until a fresh LIST taken after it won the Lease is
// adopted; every Service write carries the resourceVersion it was decided on; failures
// back off per Service (WorkQueue).
import { type AddressSource, type Allocation, type GroupValidity, type Exclusion, type Group, type GroupSpec, Ipam, IpamError, IpamErrorCode, IpamSource, isPending, parseGroup } from '@purelb/ipam-core';
import { NetboxAddressSource, type NetboxAddressSourceOptions, NetboxError } from '@purelb/ipam-netbox';
import {
  type NetboxSpec,
  type Node,
  type Service,
  type ServiceGroup,
  Annotation,
  ingressIPs,
  parseServiceGroup,
  serviceGroupStatus,
  serviceKey,
  trimService,
} from '@purelb/api';
import {
  type Clock,
  type EventRecorder,
  type InformerHandlers,
  type KubeClient,
  type Logger,
  KubeApiError,
  mergePatchIfChanged,
  systemClock,
  WorkQueue,
  type WorkQueueMetrics,
} from '@purelb/k8s-glue';
import { allocatedByUs, servicePatch } from './desired.ts';
import { exclusionsInPools, nodeExclusions } from './exclusions.ts';
import { type ClassPolicy, serviceIntent } from './intent.ts';
import { type PoolOverlap, poolOverlaps } from './overlaps.ts';
import type { AllocatorMetrics } from './metrics.ts';
import { logNetboxEvent, readNetboxToken, serviceHolders, tokenFailureReason } from './netbox.ts';

/** Settings of the Netbox address source the controller may override (backoff, client; clock and connection for tests). */
export type NetboxSettings = Pick<NetboxAddressSourceOptions<NetboxSpec>, 'retryBaseMs' | 'retryMaxMs' | 'client' | 'connect' | 'clock' | 'random'>;

export interface ControllerOptions extends ClassPolicy {
  /** Namespace of the ServiceGroups. */
  readonly namespace: string;
  /** Service status writes in flight at once. */
  readonly writeConcurrency: number;
  /** ServiceGroup status is written at most this often. */
  readonly groupStatusIntervalMs: number;
  /** Netbox groups: retry backoff and client settings. */
  readonly netbox?: NetboxSettings | undefined;
  /**
   * Timeout of each Service write (default 5000). Keep it at most leaseDuration -
   * renewDeadline: a deposed leader then has no write of its own outstanding by the time a
   * standby may take the Lease.
   */
  readonly writeTimeoutMs?: number | undefined;
  /** Retry backoff of a Service (defaults: 250 ms doubling to 5 minutes, 10/s overall after a burst of 100). */
  readonly retry?: { readonly baseDelayMs?: number; readonly maxDelayMs?: number; readonly qps?: number; readonly burst?: number } | undefined;
}

/** What the controller reads of a cache: an Informer, or a test double. */
export interface Cache<T> {
  get(key: string): T | undefined;
  list(): T[];
  on<E extends keyof InformerHandlers<T>>(event: E, handler: InformerHandlers<T>[E]): unknown;
}

interface Deps {
  readonly client: KubeClient;
  readonly services: Cache<Service>;
  readonly groups: Cache<ServiceGroup>;
  /** Nodes: the addresses they report are never handed out. */
  readonly nodes: Cache<Node>;
  /** Time for retries (default: the system clock). */
  readonly clock?: Clock | undefined;
  readonly events: EventRecorder;
  readonly metrics: AllocatorMetrics;
  readonly log: Logger;
}

export class AllocatorController {
  readonly #opts: ControllerOptions;
  readonly #d: Deps;
  #ipam = newIpam();
  #queue: WorkQueue;
  readonly #queueMetrics: WorkQueueMetrics;
  readonly #clock: Clock;
  /** A term's sync gate passed: a LIST taken after the Lease was won is adopted. */
  #synced = false;
  /** Services read from the API (a LIST at the gate, a GET after a 409) that are newer than the cache's copy. */
  readonly #fresh = new Map<string, Service>();
  /** Services the API answered 404 for, by uid, until the cache drops them too. */
  readonly #gone = new Map<string, string | undefined>();
  /** Services whose allocation failed: retried when a group changes or an address is freed. */
  readonly #pending = new Set<string>();
  /** The last valid spec of each group, kept while an edit makes it invalid. */
  readonly #lastGood = new Map<string, GroupSpec>();
  readonly #validity = new Map<string, GroupValidity>();
  /** Overlaps of each group's pools with other groups' (a Warning and a condition, not invalid). */
  #overlaps = new Map<string, PoolOverlap[]>();
  /** The Node exclusions last given to #ipam (as JSON), so a Node heartbeat that changes no address costs nothing. */
  #exclusionsText = '';
  #exclusions: Exclusion[] = [];
  /** Warnings already given, so a recomputation does not repeat them: held exclusions per Service, excluded addresses per group, overlaps per group. */
  readonly #told = new Map<string, string>();
  /** Writes sent but not yet seen back through the watch: the patch and the resourceVersion it produced. */
  readonly #unobserved = new Map<string, { patch: string; rv: string | undefined }>();
  readonly #inflight = new Map<string, Promise<void>>();
  /** When this leader first saw each Service (add or update) not yet decided: the start of purelb_allocation_duration_seconds. */
  readonly #seenAt = new Map<string, number>();
  /** Services given new addresses whose status write has not landed yet, and when each was seen. */
  readonly #allocatedAt = new Map<string, number>();
  #leading = false;
  #stopped = false;
  #lastServiceWrite = -Infinity;
  #groupStatusTimer: NodeJS.Timeout | undefined;
  #groupStatusDirty = false;
  #groupWrites: Promise<void> = Promise.resolve();
  /** Groups with spec.local: their pools are in #ipam. */
  readonly #local = new IpamSource(() => this.#ipam);
  /** Groups with spec.netbox: addresses come from Netbox asynchronously, then are adopted into #ipam. */
  readonly #netbox: NetboxAddressSource<NetboxSpec>;
  /** Every source of addresses; a group's calls go to the one that serves it (#sourceFor). */
  readonly #sources: readonly AddressSource[];

  constructor(opts: ControllerOptions, deps: Deps) {
    this.#opts = opts;
    this.#d = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#queueMetrics = deps.metrics.workqueue;
    this.#queue = this.#newQueue();
    this.#queue.shutDown();
    this.#netbox = new NetboxAddressSource<NetboxSpec>({
      ...opts.netbox,
      client: { timeoutMs: 5000, retries: 2, backoffBaseMs: 200, backoffMaxMs: 2000, userAgent: 'purelb-allocator', ...opts.netbox?.client },
      ledger: () => this.#ipam,
      token: (spec) => readNetboxToken(deps.client, opts.namespace, spec),
      reasonOf: tokenFailureReason,
      holders: serviceHolders(deps.services),
      wake: (key) => this.#queue.add(key),
      changed: () => this.#markGroupStatusDirty(),
      onEvent: (e) => logNetboxEvent(deps.log, e),
    });
    this.#sources = [this.#local, this.#netbox];
    const seen = (s: Service): void => {
      const key = serviceKey(s);
      if (this.#unobserved.get(key)?.rv === s.metadata.resourceVersion) this.#unobserved.delete(key);
      const fresh = this.#fresh.get(key);
      if (fresh && resourceVersionAtLeast(s.metadata.resourceVersion, fresh.metadata.resourceVersion)) this.#fresh.delete(key);
      if (this.#gone.has(key) && this.#gone.get(key) !== s.metadata.uid) this.#gone.delete(key);
      this.#mirror(s);
      if (this.#leading) {
        if (!this.#seenAt.has(key)) this.#seenAt.set(key, this.#clock.now());
        this.#queue.add(key);
      }
    };
    deps.services.on('add', seen);
    deps.services.on('update', seen);
    deps.services.on('delete', (s) => {
      const key = serviceKey(s);
      this.#fresh.delete(key);
      this.#gone.delete(key);
      if (this.#leading) this.#queue.add(key);
      else this.#ipam.release(key);
    });
    const groupsChanged = (): void => {
      if (!this.#leading) return;
      this.#applyGroups();
      this.#retryPending();
      this.#markGroupStatusDirty();
    };
    deps.groups.on('add', groupsChanged);
    deps.groups.on('update', groupsChanged);
    deps.groups.on('delete', groupsChanged);
    const nodesChanged = (): void => {
      if (!this.#leading) return;
      if (this.#applyExclusions()) {
        this.#retryPending();
        this.#markGroupStatusDirty();
      }
    };
    deps.nodes.on('add', nodesChanged);
    deps.nodes.on('update', nodesChanged);
    deps.nodes.on('delete', nodesChanged);
  }

  /** Read-only view for tests and metrics. */
  get ipam(): Ipam {
    return this.#ipam;
  }

  get leading(): boolean {
    return this.#leading;
  }

  /**
   * True while Service writes are going out (one sent within `withinMs`): the Event
   * recorder holds AddressAssigned and the like back meanwhile, so that in a burst the API
   * server serves the addresses first and the Events follow.
   */
  writingServices(withinMs = 250): boolean {
    return performance.now() - this.#lastServiceWrite < withinMs;
  }

  /**
   * Becomes the writer: rebuilds the allocation state from the caches (groups, then every
   * Service that carries our marks is adopted before anything new is allocated), then
   * works the queue until `signal` aborts or stop() is called.
   */
  async lead(signal: AbortSignal): Promise<void> {
    if (this.#stopped || signal.aborted) return;
    // A fresh queue per term: the previous term's was shut down when it ended.
    this.#queue = this.#newQueue();
    this.#pending.clear();
    this.#unobserved.clear();
    this.#seenAt.clear();
    this.#allocatedAt.clear();
    this.#told.clear();
    this.#exclusionsText = '';
    this.#synced = false;
    this.#leading = true;
    this.#d.metrics.leader.set(1);
    // #ipam already holds every marked Service of the cache (the mirror); groups and Node
    // exclusions come on top. Then a fresh LIST: the cache may be behind (its watch in a
    // backoff), and a marked Service it misses must be adopted before anything is allocated.
    this.#applyGroups();
    this.#adoptAll();
    this.#applyExclusions();
    for (const source of this.#sources) source.lead();
    const onAbort = (): void => this.#queue.shutDown();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      if (!(await this.#syncGate(signal))) return;
      this.#synced = true;
      for (const s of this.#d.services.list()) this.#queue.add(serviceKey(s));
      for (const key of this.#fresh.keys()) this.#queue.add(key);
      for (const key of this.#gone.keys()) this.#queue.add(key);
      this.#markGroupStatusDirty();
      this.#d.log.info({ services: this.#ipam.serviceCount, groups: this.#ipam.groupNames() }, 'leading: adopted existing allocations');
      await this.#work();
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.#queue.shutDown();
      this.#leading = false;
      this.#synced = false;
      for (const source of this.#sources) source.standby();
      this.#d.metrics.leader.set(0);
      // Writes already sent may still land; none is started after this point.
      await Promise.allSettled([...this.#inflight.values()]);
      this.#rebuildMirror();
    }
  }

  /** True once a term's fresh LIST is adopted: only then does the leader allocate. */
  get synced(): boolean {
    return this.#synced;
  }

  #newQueue(): WorkQueue {
    const r = this.#opts.retry ?? {};
    return new WorkQueue({ baseDelayMs: r.baseDelayMs, maxDelayMs: r.maxDelayMs, qps: r.qps, burst: r.burst, metrics: this.#queueMetrics, clock: this.#clock });
  }

  /**
   * Lists every Service from the API (a read after this replica won the Lease) and adopts
   * every one that carries our marks and an address, newer than the cache's copy where they
   * differ; Services the cache has and the list does not are gone. Retries with backoff
   * (250 ms doubling to 30 s) until it succeeds; false if the term ended first.
   */
  async #syncGate(signal: AbortSignal): Promise<boolean> {
    for (let attempt = 0; !signal.aborted && !this.#stopped; attempt++) {
      try {
        const list = await this.#d.client.listMapped<Service, Service>('/api/v1/services', (raw) => trimService(raw), { signal });
        if (signal.aborted) return false;
        const listed = new Set<string>();
        for (const svc of list.items) {
          const key = serviceKey(svc);
          listed.add(key);
          const cached = this.#d.services.get(key);
          if (cached && resourceVersionAtLeast(cached.metadata.resourceVersion, svc.metadata.resourceVersion)) continue;
          this.#fresh.set(key, svc);
          this.#adoptTruth(svc);
        }
        for (const svc of this.#d.services.list()) {
          const key = serviceKey(svc);
          if (!listed.has(key) && !resourceVersionAtLeast(svc.metadata.resourceVersion, list.metadata.resourceVersion)) this.#gone.set(key, svc.metadata.uid);
        }
        return true;
      } catch (e) {
        if (signal.aborted) return false;
        const delay = Math.min(30_000, 250 * 2 ** Math.min(attempt, 10));
        this.#d.log.warn({ err: e instanceof Error ? e.message : String(e), retryInMs: delay }, 'leading: listing Services failed; allocating nothing until it succeeds');
        await this.#sleep(delay, signal);
      }
    }
    return false;
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.#clock.clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = this.#clock.setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** The freshest copy of a Service this replica knows; undefined when it is gone. */
  #view(key: string): Service | undefined {
    const cached = this.#d.services.get(key);
    if (this.#gone.has(key) && (!cached || cached.metadata.uid === this.#gone.get(key))) return undefined;
    const fresh = this.#fresh.get(key);
    if (fresh && !(cached && resourceVersionAtLeast(cached.metadata.resourceVersion, fresh.metadata.resourceVersion))) return fresh;
    return cached;
  }

  /**
   * Keeps #ipam in step with what a Service carries, the moment it is seen. A standby
   * mirrors exactly (it holds what the Services hold); the leader adopts a marked Service
   * it holds nothing for (its cache was behind) and otherwise trusts its own decisions.
   */
  #mirror(svc: Service): void {
    const key = serviceKey(svc);
    const marked = allocatedByUs(svc) && ingressIPs(svc).length > 0;
    if (this.#leading) {
      if (marked && !this.#ipam.get(key) && !this.#unobserved.has(key) && this.#view(key) === svc) this.#adoptOne(svc);
      return;
    }
    if (!marked) {
      this.#ipam.release(key);
      return;
    }
    this.#adoptTruth(svc);
  }

  /** Makes #ipam hold exactly what a marked Service carries (replacing what it held for it). */
  #adoptTruth(svc: Service): void {
    const ips = ingressIPs(svc);
    if (!allocatedByUs(svc) || ips.length === 0) return;
    const key = serviceKey(svc);
    const held = this.#ipam.get(key);
    if (held && held.addresses.join() === ips.join() && held.group === (svc.metadata.annotations?.[Annotation.allocatedFrom] ?? held.group)) return;
    if (held) this.#ipam.release(key);
    if (!this.#adoptOne(svc) && held && this.#leading) {
      // What it carries collides with another Service: keep what this replica decided.
      this.#ipam.adopt({ service: key, addresses: held.addresses, group: held.group });
    }
  }

  /** Back to what the cache shows, for a standby: the term's undelivered decisions are dropped. */
  #rebuildMirror(): void {
    this.#ipam = newIpam();
    this.#fresh.clear();
    this.#gone.clear();
    this.#exclusionsText = '';
    for (const svc of this.#d.services.list()) this.#mirror(svc);
  }

  /** Stops taking work and waits for the writes in flight (bounded by the client's timeouts). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#queue.shutDown();
    if (this.#groupStatusTimer) clearTimeout(this.#groupStatusTimer);
    await Promise.allSettled([...this.#inflight.values()]);
    await this.#groupWrites;
    await Promise.allSettled(this.#sources.map((source) => source.stop()));
  }

  // --- the work loop --------------------------------------------------------

  async #work(): Promise<void> {
    const queue = this.#queue;
    for (;;) {
      const key = await queue.get();
      if (key === undefined || this.#stopped) return;
      // The key stays "being worked" until its write lands (done): one write per Service at
      // a time, and a change seen meanwhile is worked once more after.
      let write: Promise<void> | undefined;
      try {
        write = this.#reconcile(key);
      } catch (e) {
        queue.done(key);
        throw e;
      }
      if (!write) {
        queue.done(key);
        continue;
      }
      const p = write.finally(() => {
        this.#inflight.delete(key);
        queue.done(key);
      });
      this.#inflight.set(key, p);
      if (this.#inflight.size >= this.#opts.writeConcurrency) await Promise.race(this.#inflight.values());
    }
  }

  /** Decides for one Service; returns the write to make, if any. Synchronous up to the write. */
  #reconcile(key: string): Promise<void> | undefined {
    const svc = this.#view(key);
    const held = this.#ipam.get(key);
    // Seen by the leader: since the watch delivered it, or since this decision (a Service
    // from the LIST at the start of a term, a retry). A pending answer keeps the time.
    const seenAt = this.#seenAt.get(key) ?? this.#clock.now();
    this.#seenAt.delete(key);
    if (!svc) {
      this.#allocatedAt.delete(key);
      this.#unobserved.delete(key);
      this.#pending.delete(key);
      if (this.#release(key, held)) this.#afterRelease(key, 'the Service was deleted');
      return undefined;
    }
    const intent = serviceIntent(svc, this.#opts);
    if (intent.kind === 'release') {
      this.#allocatedAt.delete(key);
      this.#pending.delete(key);
      if (this.#release(key, held)) this.#afterRelease(key, intent.why);
      return this.#write(svc, servicePatch(svc, undefined));
    }
    if (intent.kind === 'ignore') {
      // Another load balancer's Service: no write, no Event, whatever it carries.
      this.#allocatedAt.delete(key);
      this.#pending.delete(key);
      this.#unobserved.delete(key);
      if (this.#release(key, held)) this.#afterRelease(key, intent.why);
      return undefined;
    }
    if (intent.kind === 'refuse') {
      // What it holds stays (an edit never takes an address away); nothing new is given.
      this.#pending.delete(key);
      this.#d.metrics.failures.inc({ reason: intent.reason });
      this.#event(svc, 'Warning', intent.reason, intent.message);
      return undefined;
    }
    for (const w of intent.warnings) this.#event(svc, 'Warning', w.reason, w.message);
    const before = this.#ipam.get(key);
    let allocation: Allocation | undefined;
    try {
      const result = this.#sourceFor(intent.request.group).allocate(intent.request);
      // Pending: the source wakes the Service when its answer is in; what is held stays until then.
      allocation = isPending(result) ? before : result;
      if (isPending(result)) {
        this.#seenAt.set(key, seenAt);
        this.#d.log.debug({ service: key, waitingFor: result.waitingFor }, 'allocation pending');
      }
      this.#pending.delete(key);
    } catch (e) {
      if (!(e instanceof IpamError) && !(e instanceof NetboxError)) throw e;
      this.#pending.add(key);
      this.#d.metrics.failures.inc({ reason: e.code });
      this.#event(svc, 'Warning', 'AllocationFailed', this.#failureMessage(e, intent.request.group, intent.addressSource));
      allocation = this.#ipam.get(key);
    }
    if (allocation && (before?.addresses.join() !== allocation.addresses.join() || before?.group !== allocation.group)) {
      this.#d.metrics.allocations.inc();
      this.#allocatedAt.set(key, seenAt);
      if (before && before.addresses.some((a) => !allocation.addresses.includes(a))) {
        this.#sourceFor(before.group).reclaim(before);
        this.#retryPending();
      }
      this.#markGroupStatusDirty();
      this.#event(svc, 'Normal', 'AddressAssigned', `Assigned ${allocation.addresses.join(', ')} from ServiceGroup ${allocation.group}`);
    }
    const write = this.#write(svc, servicePatch(svc, allocation));
    // Nothing to write: the Service already shows what it holds, so nothing is timed.
    if (!write) this.#allocatedAt.delete(key);
    return write;
  }

  /**
   * Sends the patch, conditional on the resourceVersion it was decided on: a write decided
   * on an old copy (a deposed leader's, or one from a cache that was behind) is refused
   * with 409 instead of landing. After a 409 the Service is read again and what it carries
   * adopted before the next decision; every failure retries after the Service's backoff.
   */
  #write(svc: Service, patch: Record<string, unknown> | undefined): Promise<void> | undefined {
    const key = serviceKey(svc);
    if (!patch) {
      this.#unobserved.delete(key);
      this.#queue.forget(key);
      return undefined;
    }
    const body = { ...patch, metadata: { ...(patch.metadata as Record<string, unknown> | undefined), resourceVersion: svc.metadata.resourceVersion } };
    const text = JSON.stringify(body);
    // The same write already sent and not yet seen back: the cache is behind, not wrong.
    if (this.#unobserved.get(key)?.patch === text) return undefined;
    const path = servicePath(svc);
    const queue = this.#queue;
    this.#lastServiceWrite = performance.now();
    return this.#d.client
      .mergePatch<Service>(`${path}/status`, body, { timeoutMs: this.#opts.writeTimeoutMs ?? 5000 })
      .then((updated) => {
        this.#unobserved.set(key, { patch: text, rv: updated.metadata.resourceVersion });
        queue.forget(key);
        // The new addresses are on the Service (this write, or after retries, the write that landed).
        const seenAt = this.#allocatedAt.get(key);
        if (seenAt !== undefined) {
          this.#allocatedAt.delete(key);
          this.#d.metrics.allocationDuration.observe((this.#clock.now() - seenAt) / 1000);
        }
      })
      .catch(async (e: unknown) => {
        this.#unobserved.delete(key);
        const status = e instanceof KubeApiError ? e.status : 0;
        this.#d.metrics.writeFailures.inc({ code: String(status) });
        // A term that ended learns nothing more: the next one starts from the API.
        if (queue.shuttingDown || !this.#leading) return;
        if (status === 404) {
          this.#gone.set(key, svc.metadata.uid);
          queue.add(key);
          return;
        }
        if (status === 409) {
          this.#d.log.info({ service: key, resourceVersion: svc.metadata.resourceVersion }, 'status write refused: the Service changed since; reading it again');
          await this.#reread(key, svc, path);
        } else {
          this.#d.log.warn({ service: key, err: e instanceof Error ? e.message : String(e), retryInMs: queue.nextDelay(key) }, 'status write failed; retrying after a backoff');
        }
        if (!queue.shuttingDown) queue.addRateLimited(key);
      });
  }

  /** After a 409: the Service as the API has it now; what it carries is adopted before anything is decided again. */
  async #reread(key: string, decidedOn: Service, path: string): Promise<void> {
    try {
      const now = trimService(await this.#d.client.get<Service>(path, { timeoutMs: this.#opts.writeTimeoutMs ?? 5000 }));
      if (!this.#leading) return;
      if (now.metadata.uid !== decidedOn.metadata.uid) this.#gone.set(key, decidedOn.metadata.uid);
      const cached = this.#d.services.get(key);
      if (!(cached && resourceVersionAtLeast(cached.metadata.resourceVersion, now.metadata.resourceVersion))) this.#fresh.set(key, now);
      this.#adoptTruth(now);
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) this.#gone.set(key, decidedOn.metadata.uid);
    }
  }

  /**
   * The failure as the user should read it: a group that exists but is invalid is said
   * to be invalid (with why), not missing; a bad address names where it was written.
   */
  #failureMessage(e: IpamError | NetboxError, group: string | undefined, addressSource: string): string {
    if (e instanceof IpamError && e.code === IpamErrorCode.UnknownGroup && e.context.group !== undefined) {
      const validity = this.#validity.get(e.context.group);
      if (validity && !validity.valid && this.#group(e.context.group)) {
        const who = group === undefined ? `names no ServiceGroup, and ServiceGroup "${e.context.group}" (the default)` : `ServiceGroup "${e.context.group}"`;
        return `Service ${e.context.service}: ${who} is invalid (${validity.message}); the Service gets an address once it is fixed`;
      }
    }
    if (e instanceof IpamError && e.code === IpamErrorCode.InvalidRequest && e.context.field?.startsWith('addresses')) {
      return e.message.replace(/: addresses(\[\d+\])?: /, (_m, index: string | undefined) => `: ${addressSource}${index === undefined ? '' : ` entry ${Number(index.slice(1, -1)) + 1}`}: `);
    }
    return e.message;
  }

  /** The source a group's addresses come from; a group nobody serves goes to #ipam, which names what is wrong with it. */
  #sourceFor(group: string | undefined): AddressSource {
    const name = group ?? 'default';
    return this.#sources.find((source) => source.serves(name)) ?? this.#local;
  }

  /** Frees what the Service holds through the source of its group; whether it held anything. */
  #release(key: string, held: Allocation | undefined): boolean {
    return held !== undefined && this.#sourceFor(held.group).release(key);
  }

  #afterRelease(key: string, why: string): void {
    this.#d.metrics.releases.inc();
    this.#d.log.debug({ service: key, why }, 'released');
    this.#markGroupStatusDirty();
    this.#retryPending();
  }

  #retryPending(): void {
    for (const k of this.#pending) this.#queue.add(k);
  }

  // --- groups ----------------------------------------------------------------

  /** ServiceGroups -> ipam groups. An invalid edit keeps the group's last valid pools. */
  #applyGroups(): void {
    const specs: GroupSpec[] = [];
    const netboxGroups: { name: string; spec: NetboxSpec }[] = [];
    const seen = new Set<string>();
    for (const sg of [...this.#d.groups.list()].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))) {
      const name = sg.metadata.name;
      seen.add(name);
      const parsed = parseServiceGroup(sg);
      if (parsed.ok && parsed.kind === 'local') {
        this.#lastGood.set(name, parsed.group);
        this.#validity.set(name, { valid: true });
      } else if (parsed.ok) {
        // Netbox groups report their own validity once the source resolves (#writeGroupStatuses).
        netboxGroups.push({ name, spec: sg.spec.netbox! });
        this.#lastGood.delete(name);
        this.#validity.delete(name);
      } else {
        const prev = this.#validity.get(name);
        const message = `${parsed.field}: ${parsed.message}`;
        if (!prev || prev.valid || prev.message !== message) {
          const kept = this.#lastGood.has(name) ? '; its last valid pools stay in force' : '; it has no valid pools since this allocator started: Services that name it get no new address';
          this.#groupEvent(sg, 'Warning', 'InvalidServiceGroup', `${message}${kept}`);
        }
        this.#validity.set(name, { valid: false, reason: parsed.reason, message });
      }
      const good = this.#lastGood.get(name);
      if (good) specs.push(good);
    }
    for (const name of [...this.#lastGood.keys()]) if (!seen.has(name)) this.#lastGood.delete(name);
    for (const name of [...this.#validity.keys()]) if (!seen.has(name)) this.#validity.delete(name);
    this.#netbox.setGroups(netboxGroups);
    const { orphans } = this.#ipam.setGroups(specs);
    for (const o of orphans) {
      // A group whose addresses come from another source has no pools in #ipam: what it hands out is no orphan.
      if (this.#sourceFor(o.group) !== this.#local) continue;
      const svc = this.#d.services.get(o.service);
      if (!svc) continue;
      const validity = this.#validity.get(o.group);
      if (validity && !validity.valid && !this.#lastGood.has(o.group)) {
        this.#event(svc, 'Warning', 'ServiceGroupInvalid', `ServiceGroup ${o.group} is invalid (${validity.message}); the Service keeps ${o.address}`);
      } else {
        this.#event(svc, 'Warning', 'AddressOutsidePool', `${o.address} is no longer in a pool of ServiceGroup ${o.group}; the Service keeps it`);
      }
    }
    this.#applyOverlaps(specs);
    this.#tellExclusionsInPools();
    this.#updatePoolMetrics();
  }

  /** Pools that overlap another group's: a Warning on both groups (once per change) and a condition. */
  #applyOverlaps(specs: readonly GroupSpec[]): void {
    const groups: Group[] = specs.map((g) => parseGroup(g));
    const next = new Map<string, PoolOverlap[]>();
    for (const o of poolOverlaps(groups)) next.set(o.group, [...(next.get(o.group) ?? []), o]);
    for (const [name, list] of next) {
      const message = overlapMessage(list);
      const key = `overlap|${name}`;
      if (this.#told.get(key) !== message) {
        const sg = this.#group(name);
        if (sg) this.#groupEvent(sg, 'Warning', 'OverlappingPools', message);
        this.#told.set(key, message);
      }
    }
    for (const name of this.#overlaps.keys()) if (!next.has(name)) this.#told.delete(`overlap|${name}`);
    this.#overlaps = next;
  }

  /**
   * Gives #ipam the addresses the Nodes report, if they changed. A Service that holds
   * one keeps it and is warned once; a group whose pools hold one is told once.
   * Returns whether anything changed.
   */
  #applyExclusions(): boolean {
    const exclusions = nodeExclusions(this.#d.nodes.list());
    const text = JSON.stringify(exclusions);
    if (text === this.#exclusionsText) return false;
    this.#exclusionsText = text;
    this.#exclusions = exclusions;
    const { held } = this.#ipam.setExclusions(exclusions);
    const current = new Set<string>();
    for (const h of held) {
      const key = `held|${h.service}|${h.address}`;
      current.add(key);
      if (this.#told.get(key) === h.reason) continue;
      this.#told.set(key, h.reason);
      const svc = this.#d.services.get(h.service);
      if (svc) this.#event(svc, 'Warning', 'ExcludedAddressHeld', `${h.address} is never handed out: ${h.reason}; the Service keeps it (an edit never takes an address away), but should move to another address`);
    }
    for (const key of [...this.#told.keys()]) if (key.startsWith('held|') && !current.has(key)) this.#told.delete(key);
    this.#tellExclusionsInPools();
    this.#updatePoolMetrics();
    return true;
  }

  /** A Warning on each group whose pools hold an address a Node reports, once per (group, address, reason). */
  #tellExclusionsInPools(): void {
    if (this.#exclusions.length === 0 && ![...this.#told.keys()].some((k) => k.startsWith('inpool|'))) return;
    const groups = [...this.#lastGood.values()].map((g) => parseGroup(g));
    const current = new Set<string>();
    for (const x of exclusionsInPools(groups, this.#exclusions)) {
      const key = `inpool|${x.group}|${x.address}`;
      current.add(key);
      if (this.#told.get(key) === x.reason) continue;
      this.#told.set(key, x.reason);
      const sg = this.#group(x.group);
      if (sg) this.#groupEvent(sg, 'Warning', 'ExcludedAddressInPool', `spec.local.${x.field} "${x.pool}" holds ${x.address}, which is never handed out: ${x.reason}`);
    }
    for (const key of [...this.#told.keys()]) if (key.startsWith('inpool|') && !current.has(key)) this.#told.delete(key);
  }

  /** Adopts every marked Service of the cache #ipam does not hold yet. */
  #adoptAll(): void {
    for (const svc of this.#d.services.list()) {
      if (allocatedByUs(svc) && ingressIPs(svc).length > 0 && !this.#ipam.get(serviceKey(svc))) this.#adoptOne(svc);
    }
  }

  /** Records what a marked Service carries in #ipam; false if it collides (a Warning from the leader). */
  #adoptOne(svc: Service): boolean {
    const ips = ingressIPs(svc);
    const intent = serviceIntent(svc, this.#opts);
    // Another load balancer's Service never blocks one of our addresses, whatever its status says.
    if (intent.kind === 'ignore') return false;
    const req = intent.kind === 'allocate' ? intent.request : undefined;
    const sharingKey = svc.metadata.annotations?.[Annotation.allowSharedIp]?.trim();
    try {
      this.#ipam.adopt({
        service: serviceKey(svc),
        addresses: ips,
        group: svc.metadata.annotations?.[Annotation.allocatedFrom],
        sharingKey: req?.sharingKey ?? (sharingKey === '' ? undefined : sharingKey),
        ports: req?.ports ?? (svc.spec.ports ?? []).map((p) => ({ protocol: p.protocol ?? 'TCP', port: p.port })),
      });
      return true;
    } catch (e) {
      if (!(e instanceof IpamError)) throw e;
      if (this.#leading) this.#event(svc, 'Warning', 'AdoptionFailed', `could not keep ${ips.join(', ')}: ${e.message}`);
      else this.#d.log.debug({ service: serviceKey(svc), err: e.message }, 'standby: not mirrored');
      return false;
    }
  }

  #markGroupStatusDirty(): void {
    this.#groupStatusDirty = true;
    if (this.#groupStatusTimer || this.#stopped) return;
    this.#groupStatusTimer = setTimeout(() => {
      this.#groupStatusTimer = undefined;
      if (!this.#groupStatusDirty || !this.#leading) return;
      this.#groupStatusDirty = false;
      this.#updatePoolMetrics();
      this.#groupWrites = this.#groupWrites.then(() => this.#writeGroupStatuses());
    }, this.#opts.groupStatusIntervalMs);
  }

  async #writeGroupStatuses(): Promise<void> {
    const now = new Date().toISOString();
    for (const sg of this.#d.groups.list()) {
      const name = sg.metadata.name;
      const source = this.#sourceFor(name);
      const validity = source.validity(name) ?? this.#validity.get(name) ?? { valid: false, reason: 'Unknown', message: 'not yet processed' };
      const stats = source.stats(name);
      const overlaps = this.#overlaps.get(name);
      const desired = serviceGroupStatus(sg, validity, stats, now, overlaps ? { message: overlapMessage(overlaps) } : undefined);
      const patch = mergePatchIfChanged(sg.status ?? {}, desired);
      if (!patch) continue;
      try {
        await this.#d.client.mergePatch(`/apis/purelb.io/v1/namespaces/${sg.metadata.namespace}/servicegroups/${name}/status`, { status: patch });
      } catch (e) {
        this.#d.log.warn({ group: name, err: e instanceof Error ? e.message : String(e) }, 'ServiceGroup status write failed');
        this.#markGroupStatusDirty();
      }
    }
  }

  #updatePoolMetrics(): void {
    this.#d.metrics.poolSize.reset();
    this.#d.metrics.poolInUse.reset();
    this.#d.metrics.poolExcluded.reset();
    for (const name of this.#ipam.groupNames()) {
      const s = this.#ipam.stats(name);
      for (const f of ['IPv4', 'IPv6'] as const) {
        this.#d.metrics.poolSize.set({ pool: name, group: name, family: f }, Number(s[f].size));
        this.#d.metrics.poolInUse.set({ pool: name, group: name, family: f }, Number(s[f].inUse));
        this.#d.metrics.poolExcluded.set({ pool: name, group: name, family: f }, Number(s[f].excluded));
      }
    }
  }

  #event(svc: Service, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.#d.events.event({ kind: 'Service', apiVersion: 'v1', namespace: svc.metadata.namespace, name: svc.metadata.name, uid: svc.metadata.uid }, type, reason, message);
  }

  /** A ServiceGroup of our namespace from the cache, by name. */
  #group(name: string): ServiceGroup | undefined {
    return this.#d.groups.get(`${this.#opts.namespace}/${name}`);
  }

  #groupEvent(sg: ServiceGroup, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.#d.events.event({ kind: 'ServiceGroup', apiVersion: 'purelb.io/v1', namespace: sg.metadata.namespace, name: sg.metadata.name, uid: sg.metadata.uid }, type, reason, message);
  }
}

/** The API path of a Service. */
function servicePath(svc: Service): string {
  return `/api/v1/namespaces/${svc.metadata.namespace}/services/${svc.metadata.name}`;
}

/**
 * Whether resourceVersion `a` is the same as or newer than `b`. An etcd-backed API server
 * writes them as increasing integers, and that order is used; any other form is compared
 * for equality only (a copy is trusted as newer only when it is the same version).
 */
export function resourceVersionAtLeast(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return BigInt(a) >= BigInt(b);
  return a === b;
}

/** The allocation state: a subnet's network, broadcast and subnet-router anycast addresses are never handed out. */
function newIpam(): Ipam {
  return new Ipam({ excludeSubnetReserved: true });
}

/** One message for every overlap of a group's pools with other groups'. */
function overlapMessage(list: readonly PoolOverlap[]): string {
  return list
    .map((o) => `spec.local.${o.field} "${o.pool}" overlaps ServiceGroup ${o.other} ${o.otherField} "${o.otherPool}" at ${o.range}`)
    .join('; ') + ': an address held through one group counts as in use in both';
}
