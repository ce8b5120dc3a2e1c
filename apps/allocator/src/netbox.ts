// Netbox ServiceGroups: addresses come from Netbox one at a time, asynchronously. This
// component asks Netbox, records what we hold there (per holder: a Service, or a sharing
// key), and then puts it into the allocator's Ipam with `adopt`, so sharing rules and
// conflicts are checked exactly as for local groups and the controller's usual status
// write follows. Local groups never come through here.
import { type Allocation, type AllocateRequest, type Family, type GroupStats, type Ipam, IpamError } from '@purelb/ipam-core';
import { type HeldAddress, NetboxClient, type NetboxClientOptions, NetboxError, NetboxErrorCode, NetboxPool } from '@purelb/ipam-netbox';
import { Annotation, KubeApiError, type KubeClient, type Logger, type NetboxSpec, type Service } from '@purelb/k8s-glue';

/** Secret key holding the Netbox token, as in PureLB. */
export const NETBOX_TOKEN_KEY = 'user-token';
/** Secret name when `spec.netbox.secretName` is absent. */
export const DEFAULT_NETBOX_SECRET = 'netbox-client';

type Validity = { valid: true } | { valid: false; reason: string; message: string };

export interface NetboxAllocationsOptions {
  /** Namespace of the token Secrets (the allocator's). */
  readonly namespace: string;
  /** First delay before asking Netbox again after a failure; doubles up to retryMaxMs. */
  readonly retryBaseMs?: number | undefined;
  readonly retryMaxMs?: number | undefined;
  /** Client settings (timeouts, retries, CA) for every group. */
  readonly client?: Partial<NetboxClientOptions> | undefined;
}

export interface NetboxAllocationsDeps {
  readonly kube: KubeClient;
  readonly services: { get(key: string): Service | undefined; list(): Service[] };
  readonly ipam: () => Ipam;
  readonly leading: () => boolean;
  /** Puts a Service key on the work queue. */
  readonly requeue: (key: string) => void;
  /** ServiceGroup status (validity, use) changed. */
  readonly groupStatusChanged: () => void;
  readonly log: Logger;
}

interface Failure {
  readonly error: NetboxError | IpamError;
  readonly attempt: number;
  /** Not asked again before this; 0 once the backoff timer has fired. */
  retryAt: number;
}

interface GroupState {
  readonly name: string;
  readonly spec: NetboxSpec;
  /** Changes with every reset (new spec, new term): async work started under an older one is dropped. */
  generation: number;
  phase: 'idle' | 'resolving' | 'ready' | 'failed';
  validity: Validity;
  pool: NetboxPool | undefined;
  client: NetboxClient | undefined;
  initAttempt: number;
  /** holder -> family -> address held in Netbox. */
  readonly held: Map<string, Map<Family, HeldAddress>>;
  /** holders with a Netbox request in flight. */
  readonly inflight: Set<string>;
  readonly failures: Map<string, Failure>;
  /** Services to look at again when the group is ready or a holder's request ends. */
  readonly waiting: Map<string, Set<string>>;
  readonly timers: Set<NodeJS.Timeout>;
}

const GROUP_WAIT = '';

/** The holder Netbox records for a Service: its sharing key when it has one (all its sharers use one address). */
export function holderOf(request: Pick<AllocateRequest, 'service' | 'sharingKey'>): string {
  return request.sharingKey ? `sharing-key:${request.sharingKey}` : request.service;
}

function reasonOf(e: unknown): string {
  if (e instanceof NetboxError) {
    const map: Record<string, string> = {
      NETBOX_PREFIX_NOT_FOUND: 'NetboxPrefixNotFound',
      NETBOX_TENANT_NOT_FOUND: 'NetboxTenantNotFound',
      NETBOX_UNAUTHORIZED: 'NetboxUnauthorized',
      NETBOX_FORBIDDEN: 'NetboxForbidden',
      NETBOX_LOGIN_REDIRECT: 'NetboxLoginRedirect',
      NETBOX_INVALID_CONFIG: 'NetboxInvalidConfig',
      NETBOX_UNAVAILABLE: 'NetboxUnavailable',
    };
    return map[e.code] ?? 'NetboxError';
  }
  return 'NetboxError';
}

function sameSpec(a: NetboxSpec, b: NetboxSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The Netbox side of the allocator. `allocate` is synchronous like Ipam's: it answers from
 * what is already held (adopting it into the Ipam), or starts one Netbox request for the
 * holder and returns undefined; when the request ends, the Service is queued again.
 */
export class NetboxAllocations {
  readonly #opts: NetboxAllocationsOptions;
  readonly #d: NetboxAllocationsDeps;
  readonly #groups = new Map<string, GroupState>();
  #generation = 0;
  #stopped = false;
  /** Between lead() and standby(): Netbox work may run. */
  #active = false;

  constructor(opts: NetboxAllocationsOptions, deps: NetboxAllocationsDeps) {
    this.#opts = opts;
    this.#d = deps;
  }

  /** Whether the group (by name; absent means `default`) is a Netbox group. */
  serves(group: string | undefined): boolean {
    return this.#groups.has(group ?? 'default');
  }

  /** The Netbox groups now configured (from ServiceGroups with spec.netbox). */
  setGroups(groups: readonly { name: string; spec: NetboxSpec }[]): void {
    const seen = new Set<string>();
    for (const { name, spec } of groups) {
      seen.add(name);
      const old = this.#groups.get(name);
      if (old && sameSpec(old.spec, spec)) continue;
      if (old) this.#drop(old);
      const g: GroupState = {
        name,
        spec,
        generation: ++this.#generation,
        phase: 'idle',
        validity: { valid: false, reason: 'NetboxResolving', message: `resolving the Netbox source at ${spec.url}` },
        pool: undefined,
        client: undefined,
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

  /** A new term: forget what the last one learnt and ask Netbox again for every group. */
  lead(): void {
    this.#active = true;
    for (const g of this.#groups.values()) {
      this.#reset(g);
      this.#init(g);
    }
  }

  /** The term ended: no more Netbox work until lead() again. */
  standby(): void {
    this.#active = false;
    for (const g of this.#groups.values()) this.#reset(g);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const g of this.#groups.values()) this.#drop(g);
    await Promise.allSettled([...this.#groups.values()].map((g) => g.client?.close() ?? Promise.resolve()));
  }

  validity(name: string): Validity | undefined {
    return this.#groups.get(name)?.validity;
  }

  /** size: what the Netbox source can hand out; inUse: addresses we hold there. */
  stats(name: string): GroupStats | undefined {
    const g = this.#groups.get(name);
    if (!g || g.phase !== 'ready' || !g.pool?.resolved) return undefined;
    const inUse: Record<Family, bigint> = { IPv4: 0n, IPv6: 0n };
    for (const byFamily of g.held.values()) for (const f of byFamily.keys()) inUse[f]++;
    const src = g.pool.resolved.sources;
    return {
      IPv4: { size: src.IPv4?.size ?? 0n, inUse: inUse.IPv4, excluded: 0n },
      IPv6: { size: src.IPv6?.size ?? 0n, inUse: inUse.IPv6, excluded: 0n },
    };
  }

  /**
   * The Service's allocation from its Netbox group: adopted into the Ipam from what we
   * hold, or undefined while Netbox is being asked (the Service is queued again when it
   * answers). Throws IpamError (sharing conflicts, from adopt) or NetboxError (Netbox
   * failed: retried later with backoff).
   */
  allocate(request: AllocateRequest): Allocation | undefined {
    const key = request.service;
    const g = this.#groups.get(request.group ?? 'default')!;
    if ((request.addresses ?? []).length > 0) {
      throw new NetboxError(NetboxErrorCode.InvalidConfig, `Service ${key}: ServiceGroup "${g.name}" takes addresses from Netbox; purelb.io/addresses cannot name one`, { service: key });
    }
    if (g.phase !== 'ready') {
      this.#wait(g, GROUP_WAIT, key);
      if (g.phase === 'failed' && g.validity.valid === false) {
        throw new NetboxError(NetboxErrorCode.Unavailable, `Service ${key}: ServiceGroup "${g.name}": ${g.validity.message}`, { service: key });
      }
      return undefined;
    }
    const wanted = this.#families(g, request);
    const holder = holderOf(request);
    const have = g.held.get(holder);
    // What the Service already carries from this group counts even if Netbox lost its
    // record (deleted by hand): a restart never changes a Service's address.
    const before = this.#d.ipam().get(key);
    const carried = new Map<Family, string>();
    for (const a of before?.group === g.name ? before.addresses : []) carried.set(a.includes(':') ? 'IPv6' : 'IPv4', a);
    const missing = wanted.filter((f) => !have?.has(f) && !carried.has(f));
    if (missing.length > 0) {
      const failure = g.failures.get(holder);
      if (failure && Date.now() < failure.retryAt) {
        this.#wait(g, holder, key);
        throw failure.error;
      }
      this.#wait(g, holder, key);
      if (!g.inflight.has(holder)) this.#request(g, holder, missing[0]!);
      return undefined;
    }
    const addresses = wanted.map((f) => have?.get(f)?.address ?? carried.get(f)!);
    let allocation: Allocation;
    try {
      allocation = this.#d.ipam().adopt({ service: key, addresses, group: g.name, sharingKey: request.sharingKey, ports: request.ports });
    } catch (e) {
      if (!(e instanceof IpamError) || e.code !== 'IPAM_ADDRESS_IN_USE' || !this.#handOver(g, holder, e.context.address)) throw e;
      // The address went to the Service that really uses it; ask Netbox for another.
      this.#wait(g, holder, key);
      if (!g.inflight.has(holder)) this.#request(g, holder, wanted.find((f) => !g.held.get(holder)?.has(f))!);
      return undefined;
    }
    g.failures.delete(holder);
    // A family no longer asked for (dual to single) goes back to Netbox once nobody uses it.
    if (before) this.released(before);
    return allocation;
  }

  /**
   * After the Ipam released a Service or changed what it holds: every Netbox address of
   * `before` that no Service holds any more goes back to Netbox.
   */
  released(before: Allocation): void {
    const g = this.#groups.get(before.group);
    if (!g || g.phase !== 'ready') return;
    const ipam = this.#d.ipam();
    for (const address of before.addresses) {
      if (ipam.holdersOf(address).length > 0) continue;
      for (const [holder, byFamily] of g.held) {
        for (const [f, h] of byFamily) if (h.address === address) this.#giveBack(g, holder, f, h, 'no Service holds it any more');
      }
    }
  }

  // --- internals ---------------------------------------------------------------------

  #families(g: GroupState, r: AllocateRequest): Family[] {
    const sources = g.pool!.resolved!.sources;
    const policy = r.policy ?? 'SingleStack';
    const asked = policy === 'SingleStack' ? r.families.slice(0, 1) : [...r.families];
    const have = asked.filter((f) => sources[f] !== undefined);
    const lacking = asked.filter((f) => sources[f] === undefined);
    if (have.length === 0 || (policy !== 'PreferDualStack' && lacking.length > 0)) {
      throw new IpamError('IPAM_FAMILY_UNAVAILABLE', `Service ${r.service}: ServiceGroup "${g.name}" has no ${lacking.join(' or ')} prefix in Netbox (${g.spec.url})`, {
        service: r.service,
        group: g.name,
      });
    }
    return have;
  }

  #wait(g: GroupState, holder: string, key: string): void {
    let s = g.waiting.get(holder);
    if (!s) g.waiting.set(holder, (s = new Set()));
    s.add(key);
  }

  #wake(g: GroupState, holder: string): void {
    const s = g.waiting.get(holder);
    if (!s) return;
    g.waiting.delete(holder);
    for (const k of s) this.#d.requeue(k);
  }

  #later(g: GroupState, ms: number, fn: () => void): void {
    const gen = g.generation;
    const t = setTimeout(() => {
      g.timers.delete(t);
      if (this.#current(g, gen)) fn();
    }, ms);
    g.timers.add(t);
  }

  #backoff(attempt: number): number {
    const base = this.#opts.retryBaseMs ?? 1000;
    const max = this.#opts.retryMaxMs ?? 30_000;
    const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /** Work started for a group under generation `gen` is still wanted: same spec, same term, not stopped. */
  #current(g: GroupState, gen: number): boolean {
    return !this.#stopped && this.#active && this.#d.leading() && this.#groups.get(g.name) === g && g.generation === gen;
  }

  #reset(g: GroupState): void {
    g.generation = ++this.#generation;
    for (const t of g.timers) clearTimeout(t);
    g.timers.clear();
    g.held.clear();
    g.inflight.clear();
    g.failures.clear();
    g.waiting.clear();
    g.phase = 'idle';
  }

  /** A group removed or replaced: requests still in flight for it are ignored when they end (#current). */
  #drop(g: GroupState): void {
    this.#reset(g);
    void g.client?.close();
  }

  /** Token, client, source, then what Netbox says we hold; retried with backoff on failure. */
  #init(g: GroupState): void {
    if (g.phase === 'resolving') return;
    g.phase = 'resolving';
    const gen = g.generation;
    void this.#initAsync(g, gen).then(
      () => {
        if (!this.#current(g, gen)) return;
        g.phase = 'ready';
        g.initAttempt = 0;
        g.validity = { valid: true };
        this.#d.groupStatusChanged();
        this.#d.log.info({ group: g.name, held: g.held.size }, 'Netbox group ready: adopted what Netbox says we hold');
        for (const holder of [...g.waiting.keys()]) this.#wake(g, holder);
      },
      (e: unknown) => {
        if (!this.#current(g, gen)) return;
        g.phase = 'failed';
        g.initAttempt++;
        const message = e instanceof Error ? e.message : String(e);
        const reason = e instanceof KubeApiError ? 'NetboxSecretUnreadable' : e instanceof SecretError ? e.reason : reasonOf(e);
        g.validity = { valid: false, reason, message };
        this.#d.groupStatusChanged();
        this.#d.log.warn({ group: g.name, err: message }, 'Netbox group not usable; retrying');
        for (const holder of [...g.waiting.keys()]) this.#wake(g, holder);
        this.#later(g, this.#backoff(g.initAttempt), () => {
          g.phase = 'idle';
          this.#init(g);
        });
      },
    );
  }

  async #initAsync(g: GroupState, gen: number): Promise<void> {
    const token = await this.#token(g.spec);
    if (!this.#current(g, gen)) return;
    void g.client?.close();
    g.client = new NetboxClient({ timeoutMs: 5000, retries: 2, backoffBaseMs: 200, backoffMaxMs: 2000, userAgent: 'purelb-allocator', ...this.#opts.client, url: g.spec.url, token });
    g.pool = new NetboxPool(g.client, { tenant: g.spec.tenant, prefix: g.spec.prefix, prefixId: g.spec.prefixId, ipRangeId: g.spec.ipRangeId, legacyReserved: g.spec.legacyReserved });
    await g.pool.resolve();
    const held = await g.pool.held();
    if (!this.#current(g, gen)) return;
    g.held.clear();
    const extra: HeldAddress[] = [];
    for (const h of held) {
      let byFamily = g.held.get(h.holder);
      if (!byFamily) g.held.set(h.holder, (byFamily = new Map<Family, HeldAddress>()));
      // Two addresses for one holder and family (a lost POST answered late): keep one, the
      // one a Service already carries if any, and give the other back.
      const other = byFamily.get(h.family);
      if (other) {
        const keepNew = this.#d.ipam().holdersOf(h.address).length > 0 && this.#d.ipam().holdersOf(other.address).length === 0;
        extra.push(keepNew ? other : h);
        if (keepNew) byFamily.set(h.family, h);
      } else {
        byFamily.set(h.family, h);
      }
    }
    for (const h of extra) void this.#releaseQuietly(g, h, 'a second address for the same holder');
    // Addresses whose holder is gone (deleted while no allocator was leading) go back.
    for (const [holder, byFamily] of [...g.held]) {
      if (this.#holderWanted(holder)) continue;
      for (const [f, h] of [...byFamily]) this.#giveBack(g, holder, f, h, 'its Service no longer exists');
    }
  }

  async #token(spec: NetboxSpec): Promise<string> {
    const name = spec.secretName ?? DEFAULT_NETBOX_SECRET;
    const path = `/api/v1/namespaces/${this.#opts.namespace}/secrets/${name}`;
    let secret: { data?: Record<string, string> };
    try {
      secret = await this.#d.kube.get<{ data?: Record<string, string> }>(path);
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) throw new SecretError('NetboxSecretMissing', `Secret ${this.#opts.namespace}/${name} (key ${NETBOX_TOKEN_KEY}) with the Netbox token does not exist`);
      if (e instanceof KubeApiError && e.status === 403) throw new SecretError('NetboxSecretForbidden', `the allocator may not read Secret ${this.#opts.namespace}/${name}: it needs RBAC get on secrets in ${this.#opts.namespace}`);
      throw e;
    }
    const b64 = secret.data?.[NETBOX_TOKEN_KEY];
    if (!b64) throw new SecretError('NetboxSecretMissing', `Secret ${this.#opts.namespace}/${name} has no key ${NETBOX_TOKEN_KEY}`);
    return Buffer.from(b64, 'base64').toString('utf8').trim();
  }

  /** Whether anything still wants the holder's addresses: its Service, or a Service with its sharing key. */
  #holderWanted(holder: string): boolean {
    if (holder.startsWith('sharing-key:')) {
      const key = holder.slice('sharing-key:'.length);
      return this.#d.services.list().some((s) => !s.metadata.deletionTimestamp && s.metadata.annotations?.[Annotation.allowSharedIp]?.trim() === key);
    }
    const s = this.#d.services.get(holder);
    return s !== undefined && !s.metadata.deletionTimestamp && s.spec.type === 'LoadBalancer';
  }

  #request(g: GroupState, holder: string, family: Family): void {
    g.inflight.add(holder);
    const pool = g.pool!;
    const gen = g.generation;
    pool.allocate(holder, family).then(
      (h) => {
        if (!this.#current(g, gen)) {
          // Taken under an older term or spec: the next adoption finds it by its description.
          return;
        }
        g.inflight.delete(holder);
        g.failures.delete(holder);
        let byFamily = g.held.get(holder);
        if (!byFamily) g.held.set(holder, (byFamily = new Map<Family, HeldAddress>()));
        byFamily.set(family, h);
        this.#d.log.info({ group: g.name, holder, address: h.address }, 'took an address from Netbox');
        this.#d.groupStatusChanged();
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
        g.failures.set(holder, { error, attempt, retryAt: Date.now() + delay });
        this.#d.log.warn({ group: g.name, holder, err: error.message, retryInMs: Math.round(delay) }, 'Netbox allocation failed; will retry');
        // Now so the Service reports the failure; again when the backoff has passed.
        const waiters = new Set(g.waiting.get(holder) ?? []);
        this.#wake(g, holder);
        this.#later(g, delay, () => {
          // Timers and Date.now() use different clocks: a timer may fire a little before
          // retryAt by the wall clock, so the gate is opened here rather than compared again.
          const f = g.failures.get(holder);
          if (f) f.retryAt = 0;
          for (const k of waiters) this.#d.requeue(k);
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
  #handOver(g: GroupState, holder: string, address: string | undefined): boolean {
    const byFamily = g.held.get(holder);
    const entry = [...(byFamily ?? [])].find(([, h]) => h.address === address);
    const owner = address === undefined ? undefined : this.#d.ipam().holdersOf(address)[0];
    if (!entry || !byFamily || owner === undefined) return false;
    const [family, h] = entry;
    const ownerKey = this.#d.services.get(owner)?.metadata.annotations?.[Annotation.allowSharedIp]?.trim();
    const ownerHolder = holderOf({ service: owner, sharingKey: ownerKey === '' ? undefined : ownerKey });
    byFamily.delete(family);
    if (byFamily.size === 0) g.held.delete(holder);
    let ownerHeld = g.held.get(ownerHolder);
    if (!ownerHeld) g.held.set(ownerHolder, (ownerHeld = new Map<Family, HeldAddress>()));
    ownerHeld.set(family, { ...h, holder: ownerHolder });
    this.#d.log.warn({ group: g.name, address, holder, owner: ownerHolder }, 'Netbox handed out an address a Service already uses; its record now names that Service');
    g.pool!.relabel(h, ownerHolder).catch((err: unknown) =>
      this.#d.log.warn({ group: g.name, address, err: err instanceof Error ? err.message : String(err) }, 'could not correct the Netbox record'),
    );
    return true;
  }

  #giveBack(g: GroupState, holder: string, family: Family, h: HeldAddress, why: string): void {
    const byFamily = g.held.get(holder);
    if (byFamily?.get(family) === h) {
      byFamily.delete(family);
      if (byFamily.size === 0) g.held.delete(holder);
    }
    this.#d.groupStatusChanged();
    void this.#releaseQuietly(g, h, why);
  }

  async #releaseQuietly(g: GroupState, h: HeldAddress, why: string): Promise<void> {
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        const outcome = await g.pool!.release(h);
        this.#d.log.info({ group: g.name, holder: h.holder, address: h.address, outcome, why }, 'gave an address back to Netbox');
        return;
      } catch (e) {
        this.#d.log.warn({ group: g.name, address: h.address, err: e instanceof Error ? e.message : String(e) }, 'giving an address back to Netbox failed');
        if (this.#stopped) return;
        await new Promise((r) => setTimeout(r, this.#backoff(attempt)));
      }
    }
    // Still ours in Netbox (description intact): the next leader's adoption finds it and gives it back.
  }
}

class SecretError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}
