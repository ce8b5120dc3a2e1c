// Netbox groups behind the AddressSource contract of @purelb/ipam-core. Addresses come
// from Netbox one at a time, asynchronously: this source asks Netbox, records what is held
// there (per holder: a Service, or a sharing key), and puts it into the shared ledger with
// `adopt`, so sharing rules and conflicts are checked exactly as for in-memory groups.
// Until Netbox has answered, `allocate` says the allocation is pending, and the Service is
// woken when the answer (or a failure) is in.
//
// Work is tied to a generation: a new spec, a new term (lead/standby) or stop() starts a
// new one, and an answer that arrives for an older one is dropped (what Netbox recorded
// meanwhile is found again by its description when the group is next read).
import {
  type AddressSource,
  type AllocateRequest,
  type AllocateResult,
  type Allocation,
  type AllocationLedger,
  type Family,
  type GroupStats,
  type GroupValidity,
  IpamError,
  IpamErrorCode,
  type PendingAllocation,
} from '@purelb/ipam-core';
import { NetboxClient, type NetboxClientOptions } from './client.ts';
import { NetboxError, NetboxErrorCode } from './errors.ts';
import { type HeldAddress, NetboxPool, type NetboxPoolSpec, type ReleaseOutcome } from './pool.ts';

/** A Netbox group's configuration: where to take addresses from (the `spec.netbox` fields of a ServiceGroup). */
export interface NetboxGroupSpec extends NetboxPoolSpec {
  /** Netbox base URL or API root. */
  readonly url: string;
}

/** What the source needs of a group's pool: a NetboxPool, or a test double. */
export type NetboxPoolApi = Pick<NetboxPool, 'resolved' | 'resolve' | 'allocate' | 'release' | 'relabel' | 'held'>;

/** A group's pool and whatever must be closed with it. */
export interface NetboxConnection {
  readonly pool: NetboxPoolApi;
  close(): Promise<void>;
}

/** Time for backoff: milliseconds on a monotonic clock, and timers. */
export interface NetboxClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Who still wants an address, as the owner's world says (its Services). */
export interface HolderDirectory {
  /** Whether the Service (`namespace/name`) exists, is not being deleted, and wants an address. */
  serviceWants(service: string): boolean;
  /** Whether a Service that is not being deleted carries this sharing key. */
  sharingKeyInUse(key: string): boolean;
  /** The sharing key the Service carries, if any. */
  sharingKeyOf(service: string): string | undefined;
}

/** What happened, for the owner's log (this package does not log). */
export type NetboxSourceEvent =
  | { readonly type: 'ready'; readonly group: string; readonly holders: number }
  | { readonly type: 'unusable'; readonly group: string; readonly error: unknown; readonly retryInMs: number }
  | { readonly type: 'allocated'; readonly group: string; readonly holder: string; readonly address: string }
  | { readonly type: 'allocation-failed'; readonly group: string; readonly holder: string; readonly error: NetboxError; readonly retryInMs: number }
  | { readonly type: 'released'; readonly group: string; readonly holder: string; readonly address: string; readonly outcome: ReleaseOutcome; readonly why: string }
  | { readonly type: 'release-failed'; readonly group: string; readonly address: string; readonly error: unknown }
  | { readonly type: 'handed-over'; readonly group: string; readonly address: string; readonly holder: string; readonly owner: string }
  | { readonly type: 'relabel-failed'; readonly group: string; readonly address: string; readonly error: unknown };

export interface NetboxAddressSourceOptions<S extends NetboxGroupSpec = NetboxGroupSpec> {
  /** The shared allocation state, read at every use (its owner may replace it). */
  readonly ledger: () => AllocationLedger;
  /** The token for a group's Netbox. A rejection makes the group invalid (retried with backoff). */
  readonly token: (spec: S) => Promise<string>;
  readonly holders: HolderDirectory;
  /** Called with a Service whose pending allocation has an answer, or whose backoff has passed. */
  readonly wake: (service: string) => void;
  /** A group's validity or use changed. */
  readonly changed?: (() => void) | undefined;
  readonly onEvent?: ((event: NetboxSourceEvent) => void) | undefined;
  /** The validity reason of a failure this package does not know (the token provider's); else NetboxError codes are named (`NetboxUnavailable`, ...). */
  readonly reasonOf?: ((error: unknown) => string | undefined) | undefined;
  /** First delay before asking Netbox again after a failure (default 1000); doubles up to retryMaxMs (default 30000), half of it random. */
  readonly retryBaseMs?: number | undefined;
  readonly retryMaxMs?: number | undefined;
  /** Client settings (timeouts, retries, CA) for every group. */
  readonly client?: Partial<NetboxClientOptions> | undefined;
  /** Opens a group's pool (default: a NetboxClient and a NetboxPool for the spec). */
  readonly connect?: ((spec: S, token: string) => NetboxConnection) | undefined;
  readonly clock?: NetboxClock | undefined;
  /** In [0, 1): the jitter of the backoff. */
  readonly random?: (() => number) | undefined;
}

interface Failure {
  readonly error: NetboxError;
  readonly attempt: number;
  /** Not asked again before this; 0 once the backoff timer has fired. */
  retryAt: number;
}

interface GroupState<S> {
  readonly name: string;
  readonly spec: S;
  /** Changes with every reset (new spec, new term): async work started under an older one is dropped. */
  generation: number;
  phase: 'idle' | 'resolving' | 'ready' | 'failed';
  validity: GroupValidity;
  connection: NetboxConnection | undefined;
  initAttempt: number;
  /** holder -> family -> address held in Netbox. */
  readonly held: Map<string, Map<Family, HeldAddress>>;
  /** holders with a Netbox request in flight. */
  readonly inflight: Set<string>;
  readonly failures: Map<string, Failure>;
  /** Services to wake when the group is ready or a holder's request ends. */
  readonly waiting: Map<string, Set<string>>;
  readonly timers: Set<unknown>;
}

const GROUP_WAIT = '';
const SHARING_KEY = 'sharing-key:';

const systemClock: NetboxClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** The holder Netbox records for a Service: its sharing key when it has one (all its sharers use one address). */
export function holderOf(request: Pick<AllocateRequest, 'service' | 'sharingKey'>): string {
  return request.sharingKey ? `${SHARING_KEY}${request.sharingKey}` : request.service;
}

const REASONS: Partial<Record<NetboxErrorCode, string>> = {
  NETBOX_PREFIX_NOT_FOUND: 'NetboxPrefixNotFound',
  NETBOX_TENANT_NOT_FOUND: 'NetboxTenantNotFound',
  NETBOX_UNAUTHORIZED: 'NetboxUnauthorized',
  NETBOX_FORBIDDEN: 'NetboxForbidden',
  NETBOX_LOGIN_REDIRECT: 'NetboxLoginRedirect',
  NETBOX_INVALID_CONFIG: 'NetboxInvalidConfig',
  NETBOX_UNAVAILABLE: 'NetboxUnavailable',
};

/** The status reason for a group Netbox failed to resolve: `NetboxPrefixNotFound`, ..., else `NetboxError`. */
export function netboxReason(e: unknown): string {
  return (e instanceof NetboxError ? REASONS[e.code] : undefined) ?? 'NetboxError';
}

function defaultConnect(client: Partial<NetboxClientOptions> | undefined): (spec: NetboxGroupSpec, token: string) => NetboxConnection {
  return (spec, token) => {
    const c = new NetboxClient({ ...client, url: spec.url, token });
    try {
      const pool = new NetboxPool(c, { tenant: spec.tenant, prefix: spec.prefix, prefixId: spec.prefixId, ipRangeId: spec.ipRangeId, legacyReserved: spec.legacyReserved });
      return { pool, close: () => c.close() };
    } catch (e) {
      void c.close();
      throw e;
    }
  };
}

/**
 * The Netbox groups of an allocator, as one AddressSource. `allocate` is synchronous: it
 * answers from what is already held (adopting it into the ledger), or starts one Netbox
 * request for the holder and returns a PendingAllocation; when the request ends, the
 * Service is woken. Netbox is asked only between `lead()` and `standby()`.
 */
export class NetboxAddressSource<S extends NetboxGroupSpec = NetboxGroupSpec> implements AddressSource {
  readonly #o: NetboxAddressSourceOptions<S>;
  readonly #clock: NetboxClock;
  readonly #connect: (spec: S, token: string) => NetboxConnection;
  readonly #groups = new Map<string, GroupState<S>>();
  #generation = 0;
  #stopped = false;
  /** Between lead() and standby(): Netbox work may run. */
  #active = false;

  constructor(options: NetboxAddressSourceOptions<S>) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#connect = options.connect ?? defaultConnect(options.client);
  }

  serves(group: string): boolean {
    return this.#groups.has(group);
  }

  /** The Netbox groups now configured. A group whose spec is unchanged keeps its state; a changed one starts over. */
  setGroups(groups: readonly { readonly name: string; readonly spec: S }[]): void {
    const seen = new Set<string>();
    for (const { name, spec } of groups) {
      seen.add(name);
      const old = this.#groups.get(name);
      if (old && JSON.stringify(old.spec) === JSON.stringify(spec)) continue;
      if (old) this.#drop(old);
      const g: GroupState<S> = {
        name,
        spec,
        generation: ++this.#generation,
        phase: 'idle',
        validity: { valid: false, reason: 'NetboxResolving', message: `resolving the Netbox source at ${spec.url}` },
        connection: undefined,
        initAttempt: 0,
        held: new Map(),
        inflight: new Set(),
        failures: new Map(),
        waiting: new Map(),
        timers: new Set(),
      };
      this.#groups.set(name, g);
      if (this.#active) this.#init(g);
    }
    for (const [name, g] of this.#groups) {
      if (!seen.has(name)) {
        this.#drop(g);
        this.#groups.delete(name);
      }
    }
  }

  /** A new term: forget what the last one learnt and read every group from Netbox again. */
  lead(): void {
    this.#active = true;
    for (const g of this.#groups.values()) {
      this.#reset(g);
      this.#init(g);
    }
  }

  /** The term ended: answers still on their way are dropped; nothing is asked until lead(). */
  standby(): void {
    this.#active = false;
    for (const g of this.#groups.values()) this.#reset(g);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const g of this.#groups.values()) this.#reset(g);
    await Promise.allSettled([...this.#groups.values()].map((g) => g.connection?.close() ?? Promise.resolve()));
  }

  /** `NetboxResolving` until the group's source is found; then valid, or why not. */
  validity(group: string): GroupValidity | undefined {
    return this.#groups.get(group)?.validity;
  }

  /** size: what the Netbox source can hand out; inUse: addresses held there. Undefined until the group is ready. */
  stats(group: string): GroupStats | undefined {
    const g = this.#groups.get(group);
    const sources = g?.phase === 'ready' ? g.connection?.pool.resolved?.sources : undefined;
    if (!g || !sources) return undefined;
    const inUse: Record<Family, bigint> = { IPv4: 0n, IPv6: 0n };
    for (const byFamily of g.held.values()) for (const f of byFamily.keys()) inUse[f]++;
    return {
      IPv4: { size: sources.IPv4?.size ?? 0n, inUse: inUse.IPv4, excluded: 0n },
      IPv6: { size: sources.IPv6?.size ?? 0n, inUse: inUse.IPv6, excluded: 0n },
    };
  }

  /**
   * The Service's allocation from its Netbox group: adopted into the ledger from what is
   * held, or pending while Netbox is asked. Throws IpamError (family missing, sharing
   * conflicts from adopt) or NetboxError (a Netbox failure, asked again after a backoff;
   * an address named in the request; the group unusable).
   */
  allocate(request: AllocateRequest): AllocateResult {
    const key = request.service;
    const name = request.group ?? 'default';
    const g = this.#groups.get(name);
    if (!g) throw new IpamError(IpamErrorCode.UnknownGroup, `Service ${key}: ServiceGroup "${name}" is not a Netbox group`, { service: key, group: name });
    if ((request.addresses ?? []).length > 0) {
      throw new NetboxError(NetboxErrorCode.InvalidConfig, `Service ${key}: ServiceGroup "${g.name}" takes addresses from Netbox; purelb.io/addresses cannot name one`, { service: key });
    }
    if (g.phase !== 'ready') {
      this.#wait(g, GROUP_WAIT, key);
      if (g.phase === 'failed' && !g.validity.valid) {
        throw new NetboxError(NetboxErrorCode.Unavailable, `Service ${key}: ServiceGroup "${g.name}": ${g.validity.message}`, { service: key });
      }
      return pending(g, `the Netbox source of ServiceGroup "${g.name}" (${g.spec.url})`);
    }
    const wanted = this.#families(g, request);
    const holder = holderOf(request);
    const have = g.held.get(holder);
    const ledger = this.#o.ledger();
    // What the Service already carries from this group counts even if Netbox lost its
    // record (deleted by hand): a restart never changes a Service's address.
    const before = ledger.get(key);
    const carried = new Map<Family, string>();
    for (const a of before?.group === g.name ? before.addresses : []) carried.set(a.includes(':') ? 'IPv6' : 'IPv4', a);
    const missing = wanted.filter((f) => !have?.has(f) && !carried.has(f));
    if (missing.length > 0) return this.#ask(g, holder, key, missing[0]!);
    const addresses = wanted.map((f) => have?.get(f)?.address ?? carried.get(f)!);
    let allocation: Allocation;
    try {
      allocation = ledger.adopt({ service: key, addresses, group: g.name, sharingKey: request.sharingKey, ports: request.ports });
    } catch (e) {
      if (!(e instanceof IpamError) || e.code !== IpamErrorCode.AddressInUse || !this.#handOver(g, holder, e.context.address)) throw e;
      // The address went to the Service that really uses it; ask Netbox for another.
      return this.#ask(g, holder, key, wanted.find((f) => !g.held.get(holder)?.has(f))!);
    }
    g.failures.delete(holder);
    // A family no longer asked for (dual to single) goes back to Netbox once nobody uses it.
    if (before) this.reclaim(before);
    return allocation;
  }

  /** Frees what the Service holds in the ledger; its Netbox addresses that nobody holds any more go back. */
  release(service: string): boolean {
    const ledger = this.#o.ledger();
    const before = ledger.get(service);
    if (!ledger.release(service)) return false;
    if (before) this.reclaim(before);
    return true;
  }

  /** Every Netbox address of `before` that no Service holds any more goes back to Netbox. */
  reclaim(before: Allocation): void {
    const g = this.#groups.get(before.group);
    if (!g || g.phase !== 'ready') return;
    const ledger = this.#o.ledger();
    for (const address of before.addresses) {
      if (ledger.holdersOf(address).length > 0) continue;
      for (const [holder, byFamily] of g.held) {
        for (const [f, h] of byFamily) if (h.address === address) this.#giveBack(g, holder, f, h, 'no Service holds it any more');
      }
    }
  }

  // --- internals ---------------------------------------------------------------------

  #families(g: GroupState<S>, r: AllocateRequest): Family[] {
    const sources = g.connection!.pool.resolved!.sources;
    const policy = r.policy ?? 'SingleStack';
    const asked = policy === 'SingleStack' ? r.families.slice(0, 1) : [...r.families];
    const have = asked.filter((f) => sources[f] !== undefined);
    const lacking = asked.filter((f) => sources[f] === undefined);
    if (have.length === 0 || (policy !== 'PreferDualStack' && lacking.length > 0)) {
      throw new IpamError(IpamErrorCode.FamilyUnavailable, `Service ${r.service}: ServiceGroup "${g.name}" has no ${lacking.join(' or ')} prefix in Netbox (${g.spec.url})`, {
        service: r.service,
        group: g.name,
      });
    }
    return have;
  }

  /** The holder lacks an address of `family`: ask Netbox (once at a time), or say why not yet. */
  #ask(g: GroupState<S>, holder: string, key: string, family: Family): PendingAllocation {
    const failure = g.failures.get(holder);
    this.#wait(g, holder, key);
    if (failure && this.#clock.now() < failure.retryAt) throw failure.error;
    if (!g.inflight.has(holder)) this.#request(g, holder, family);
    return pending(g, `an ${family} address from Netbox for ${holder}`);
  }

  #wait(g: GroupState<S>, holder: string, key: string): void {
    let s = g.waiting.get(holder);
    if (!s) g.waiting.set(holder, (s = new Set()));
    s.add(key);
  }

  #wake(g: GroupState<S>, holder: string): void {
    const s = g.waiting.get(holder);
    if (!s) return;
    g.waiting.delete(holder);
    for (const k of s) this.#o.wake(k);
  }

  #later(g: GroupState<S>, ms: number, fn: () => void): void {
    const gen = g.generation;
    const t = this.#clock.setTimeout(() => {
      g.timers.delete(t);
      if (this.#current(g, gen)) fn();
    }, ms);
    g.timers.add(t);
  }

  #backoff(attempt: number): number {
    const base = this.#o.retryBaseMs ?? 1000;
    const max = this.#o.retryMaxMs ?? 30_000;
    const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
    return ceiling / 2 + (this.#o.random ?? Math.random)() * (ceiling / 2);
  }

  /** Work started for a group under generation `gen` is still wanted: same spec, same term, not stopped. */
  #current(g: GroupState<S>, gen: number): boolean {
    return !this.#stopped && this.#active && this.#groups.get(g.name) === g && g.generation === gen;
  }

  #reset(g: GroupState<S>): void {
    g.generation = ++this.#generation;
    for (const t of g.timers) this.#clock.clearTimeout(t);
    g.timers.clear();
    g.held.clear();
    g.inflight.clear();
    g.failures.clear();
    g.waiting.clear();
    g.phase = 'idle';
  }

  /** A group removed or replaced: requests still in flight for it are ignored when they end (#current). */
  #drop(g: GroupState<S>): void {
    this.#reset(g);
    void g.connection?.close();
  }

  #emit(event: NetboxSourceEvent): void {
    this.#o.onEvent?.(event);
  }

  #changed(): void {
    this.#o.changed?.();
  }

  /** Token, connection, source, then what Netbox says is held; retried with backoff on failure. */
  #init(g: GroupState<S>): void {
    if (g.phase === 'resolving') return;
    g.phase = 'resolving';
    const gen = g.generation;
    void this.#initAsync(g, gen).then(
      () => {
        if (!this.#current(g, gen)) return;
        g.phase = 'ready';
        g.initAttempt = 0;
        g.validity = { valid: true };
        this.#changed();
        this.#emit({ type: 'ready', group: g.name, holders: g.held.size });
        for (const holder of [...g.waiting.keys()]) this.#wake(g, holder);
      },
      (e: unknown) => {
        if (!this.#current(g, gen)) return;
        g.phase = 'failed';
        g.initAttempt++;
        const message = e instanceof Error ? e.message : String(e);
        g.validity = { valid: false, reason: this.#o.reasonOf?.(e) ?? netboxReason(e), message };
        const delay = this.#backoff(g.initAttempt);
        this.#changed();
        this.#emit({ type: 'unusable', group: g.name, error: e, retryInMs: Math.round(delay) });
        for (const holder of [...g.waiting.keys()]) this.#wake(g, holder);
        this.#later(g, delay, () => {
          g.phase = 'idle';
          this.#init(g);
        });
      },
    );
  }

  async #initAsync(g: GroupState<S>, gen: number): Promise<void> {
    const token = await this.#o.token(g.spec);
    if (!this.#current(g, gen)) return;
    void g.connection?.close();
    // Undefined, not the closed one, if the spec cannot make a pool.
    g.connection = undefined;
    g.connection = this.#connect(g.spec, token);
    const pool = g.connection.pool;
    await pool.resolve();
    const held = await pool.held();
    if (!this.#current(g, gen)) return;
    g.held.clear();
    const ledger = this.#o.ledger();
    const extra: HeldAddress[] = [];
    for (const h of held) {
      let byFamily = g.held.get(h.holder);
      if (!byFamily) g.held.set(h.holder, (byFamily = new Map<Family, HeldAddress>()));
      // Two addresses for one holder and family (a lost POST answered late): keep one, the
      // one a Service already carries if any, and give the other back.
      const other = byFamily.get(h.family);
      if (other) {
        const keepNew = ledger.holdersOf(h.address).length > 0 && ledger.holdersOf(other.address).length === 0;
        extra.push(keepNew ? other : h);
        if (keepNew) byFamily.set(h.family, h);
      } else {
        byFamily.set(h.family, h);
      }
    }
    for (const h of extra) void this.#releaseQuietly(g, h, 'a second address for the same holder');
    // Addresses whose holder is gone (deleted while nobody was leading) go back.
    for (const [holder, byFamily] of [...g.held]) {
      if (this.#holderWanted(holder)) continue;
      for (const [f, h] of [...byFamily]) this.#giveBack(g, holder, f, h, 'its Service no longer exists');
    }
  }

  /** Whether anything still wants the holder's addresses: its Service, or a Service with its sharing key. */
  #holderWanted(holder: string): boolean {
    const d = this.#o.holders;
    return holder.startsWith(SHARING_KEY) ? d.sharingKeyInUse(holder.slice(SHARING_KEY.length)) : d.serviceWants(holder);
  }

  #request(g: GroupState<S>, holder: string, family: Family): void {
    g.inflight.add(holder);
    const pool = g.connection!.pool;
    const gen = g.generation;
    pool.allocate(holder, family).then(
      (h) => {
        // Taken under an older term or spec: the next read of the group finds it by its description.
        if (!this.#current(g, gen)) return;
        g.inflight.delete(holder);
        g.failures.delete(holder);
        let byFamily = g.held.get(holder);
        if (!byFamily) g.held.set(holder, (byFamily = new Map<Family, HeldAddress>()));
        byFamily.set(family, h);
        this.#emit({ type: 'allocated', group: g.name, holder, address: h.address });
        this.#changed();
        // Deleted while Netbox was answering: give it straight back.
        if (!this.#holderWanted(holder)) this.#giveBack(g, holder, family, h, 'its Service went away while Netbox answered');
        this.#wake(g, holder);
      },
      (e: unknown) => {
        if (!this.#current(g, gen)) return;
        g.inflight.delete(holder);
        const error = e instanceof NetboxError ? e : new NetboxError(NetboxErrorCode.Unavailable, `Netbox ${g.spec.url}: ${String(e)}`, { service: holder });
        const attempt = (g.failures.get(holder)?.attempt ?? 0) + 1;
        const delay = this.#backoff(attempt);
        g.failures.set(holder, { error, attempt, retryAt: this.#clock.now() + delay });
        this.#emit({ type: 'allocation-failed', group: g.name, holder, error, retryInMs: Math.round(delay) });
        // Now so the Service reports the failure; again when the backoff has passed.
        const waiters = new Set(g.waiting.get(holder) ?? []);
        this.#wake(g, holder);
        this.#later(g, delay, () => {
          // The gate is opened by the timer rather than compared again: a timer may fire a
          // little before retryAt as the clock reads it.
          const f = g.failures.get(holder);
          if (f) f.retryAt = 0;
          for (const k of waiters) this.#o.wake(k);
        });
      },
    );
  }

  /**
   * Netbox handed `holder` an address another Service already uses (a person deleted that
   * Service's record in Netbox, so Netbox saw it free). The record now names the Service
   * that uses it, and `holder` is to get another address. False when the address is not
   * one Netbox gave `holder`.
   */
  #handOver(g: GroupState<S>, holder: string, address: string | undefined): boolean {
    const byFamily = g.held.get(holder);
    const entry = [...(byFamily ?? [])].find(([, h]) => h.address === address);
    const owner = address === undefined ? undefined : this.#o.ledger().holdersOf(address)[0];
    if (!entry || !byFamily || owner === undefined) return false;
    const [family, h] = entry;
    const ownerHolder = holderOf({ service: owner, sharingKey: this.#o.holders.sharingKeyOf(owner) });
    byFamily.delete(family);
    if (byFamily.size === 0) g.held.delete(holder);
    let ownerHeld = g.held.get(ownerHolder);
    if (!ownerHeld) g.held.set(ownerHolder, (ownerHeld = new Map<Family, HeldAddress>()));
    ownerHeld.set(family, { ...h, holder: ownerHolder });
    this.#emit({ type: 'handed-over', group: g.name, address: h.address, holder, owner: ownerHolder });
    g.connection!.pool.relabel(h, ownerHolder).catch((error: unknown) => this.#emit({ type: 'relabel-failed', group: g.name, address: h.address, error }));
    return true;
  }

  #giveBack(g: GroupState<S>, holder: string, family: Family, h: HeldAddress, why: string): void {
    const byFamily = g.held.get(holder);
    if (byFamily?.get(family) === h) {
      byFamily.delete(family);
      if (byFamily.size === 0) g.held.delete(holder);
    }
    this.#changed();
    void this.#releaseQuietly(g, h, why);
  }

  /** Up to five tries; after that the address is still ours in Netbox (description intact): the next read of the group finds it and gives it back. */
  async #releaseQuietly(g: GroupState<S>, h: HeldAddress, why: string): Promise<void> {
    for (let attempt = 1; attempt <= 5; attempt++) {
      // The group's pool of the moment: a new term may have reconnected meanwhile.
      const pool = g.connection?.pool;
      if (!pool) return;
      try {
        const outcome = await pool.release(h);
        this.#emit({ type: 'released', group: g.name, holder: h.holder, address: h.address, outcome, why });
        return;
      } catch (error) {
        this.#emit({ type: 'release-failed', group: g.name, address: h.address, error });
        if (this.#stopped) return;
        await new Promise<void>((r) => this.#clock.setTimeout(r, this.#backoff(attempt)));
      }
    }
  }
}

function pending(g: { readonly name: string }, waitingFor: string): PendingAllocation {
  return { pending: true, group: g.name, waitingFor };
}
