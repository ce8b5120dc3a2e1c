// The thin shell around the protocol engine: it owns the one timer, wires the transport
// to the engine, and turns engine callbacks into events.
import { EventEmitter, on } from 'node:events';
import { parseSubnet } from '@purelb/ipam-core';
import { ElectionError, ElectionErrorCode } from './errors.ts';
import { type MemberInfo, isLive } from './member-state.ts';
import { LIMITS } from './messages.ts';
import { type ConfigInput, type SwimConfig, resolveConfig } from './presets.ts';
import { type Envelope, type Keyring, PlainEnvelope, SealedEnvelope } from './seal.ts';
import { type Counters, type MembershipEvent, Swim } from './swim.ts';
import { type Scheduler, type Transport, realScheduler } from './transport.ts';

/** How to build a `Membership`. */
export interface MembershipOptions {
  /** This member's name (the Kubernetes node name); unique in the cluster. */
  readonly name: string;
  /** CIDRs this member can announce addresses on (`192.0.2.0/24`, `2001:db8::/64`). */
  readonly subnets?: readonly string[];
  /** Where packets go: a `UdpTransport`, or the in-memory network from `./testing`. */
  readonly transport: Transport;
  /**
   * Sealing keys (AES-256-GCM); every member of a cluster must share one. Without a
   * keyring packets travel in clear text and anyone on the network can forge membership.
   */
  readonly keyring?: Keyring;
  /** A preset name and/or overrides; default preset `lan-fast`. */
  readonly config?: ConfigInput;
  /** Default: the process clock and `setTimeout`. Simulations pass a virtual clock. */
  readonly scheduler?: Scheduler;
  /** Wall clock (ms since the epoch) for the replay window. Default `Date.now`. */
  readonly wallClock?: () => number;
  /** Random numbers in [0, 1). Default `Math.random`; simulations pass a seeded one. */
  readonly random?: () => number;
  /** Replaces the envelope built from `keyring` (tests). */
  readonly envelope?: Envelope;
}

/** Event name -> listener arguments. */
export interface MembershipEvents {
  event: [MembershipEvent];
  join: [MemberInfo];
  update: [MemberInfo];
  suspect: [MemberInfo];
  alive: [MemberInfo];
  dead: [MemberInfo];
  leave: [MemberInfo];
}

const MIN_STEP_MS = 0.1;

function validateName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > LIMITS.stringBytes) {
    throw new ElectionError(ElectionErrorCode.InvalidMetadata, `name: "${String(name)}" must be 1 to ${LIMITS.stringBytes} bytes`, { field: 'name' });
  }
}

function validateSubnets(subnets: readonly string[]): void {
  if (subnets.length > LIMITS.subnets) {
    throw new ElectionError(ElectionErrorCode.InvalidMetadata, `subnets: ${subnets.length} entries, at most ${LIMITS.subnets}`, { field: 'subnets' });
  }
  subnets.forEach((s, i) => {
    if (typeof s !== 'string' || Buffer.byteLength(s) > LIMITS.stringBytes || !parseSubnet(s)) {
      throw new ElectionError(ElectionErrorCode.InvalidMetadata, `subnets[${i}]: "${String(s)}" is not a CIDR`, { field: `subnets[${i}]` });
    }
  });
}

/**
 * A member of the cluster: SWIM failure detection with the Lifeguard refinements, gossip,
 * and full-state sync, over any `Transport`. Emits `join`, `update`, `suspect`, `alive`,
 * `dead` and `leave` with the member's `MemberInfo`, and `event` with every one of them.
 */
export class Membership extends EventEmitter<MembershipEvents> {
  /** The resolved timing configuration. */
  readonly config: SwimConfig;
  readonly #swim: Swim;
  readonly #scheduler: Scheduler;
  readonly #transport: Transport;
  #timer: unknown;
  #timerAt = Infinity;
  #closed = false;

  constructor(options: MembershipOptions) {
    super();
    validateName(options.name);
    const subnets = options.subnets ?? [];
    validateSubnets(subnets);
    this.config = resolveConfig(options.config);
    this.#scheduler = options.scheduler ?? realScheduler;
    this.#transport = options.transport;
    const envelope =
      options.envelope ?? (options.keyring ? new SealedEnvelope({ keyring: options.keyring, ...(options.wallClock ? { clock: options.wallClock } : {}) }) : new PlainEnvelope());
    const scheduler = this.#scheduler;
    this.#swim = new Swim({
      name: options.name,
      subnets,
      config: this.config,
      transport: options.transport,
      envelope,
      now: () => scheduler.now(),
      random: options.random ?? Math.random,
      onEvent: (e) => {
        this.emit('event', e);
        this.emit(e.type, e.member);
      },
      wake: () => this.#wake(),
    });
    options.transport.listen({
      packet: (from, data) => {
        this.#swim.handlePacket(from, data);
        this.#wake();
      },
      request: (from, data, reply) => {
        this.#swim.handleRequest(from, data, reply);
        this.#wake();
      },
    });
  }

  /** This member's name. */
  get name(): string {
    return this.#swim.name;
  }

  /** Where peers reach this member. */
  get address(): string {
    return this.#transport.address;
  }

  /** This member's incarnation (raised by refutations and metadata changes). */
  get incarnation(): number {
    return this.#swim.incarnation;
  }

  /** Lifeguard's local health score: 0 is healthy; each point stretches probe timing by one interval. */
  get healthScore(): number {
    return this.#swim.awareness;
  }

  /** Counters for metrics (live object; read, do not write). */
  get counters(): Readonly<Counters> {
    return this.#swim.counters;
  }

  /** Starts probing and gossiping. Call once, before or after `join`. */
  start(): this {
    if (this.#closed) throw new ElectionError(ElectionErrorCode.Closed, `membership ${this.name}: already shut down`, { node: this.name });
    this.#swim.start();
    this.#wake();
    return this;
  }

  /**
   * Joins through `seeds` (`host:port` of existing members; this member's own address is
   * skipped): a full-state exchange with each. Resolves with how many answered; rejects
   * with `ELECTION_JOIN_FAILED` if seeds were given and none answered.
   */
  join(seeds: readonly string[]): Promise<number> {
    const targets = [...new Set(seeds)].filter((s) => s !== this.address);
    if (targets.length === 0) return Promise.resolve(0);
    return new Promise((resolve, reject) => {
      let pending = targets.length;
      let ok = 0;
      const errors: string[] = [];
      for (const seed of targets) {
        this.#swim.pushPull(seed, true, (error) => {
          if (error) errors.push(error.message);
          else ok++;
          if (--pending > 0) return;
          if (ok > 0) resolve(ok);
          else reject(new ElectionError(ElectionErrorCode.JoinFailed, `join: no seed answered (${errors.join('; ')})`, { node: this.name }));
        });
      }
      this.#wake();
    });
  }

  /** Every known member, this one included. */
  members(): MemberInfo[] {
    return this.#swim.members();
  }

  /** Members that are alive or suspect, this one included. */
  liveMembers(): MemberInfo[] {
    return this.#swim.members().filter((m) => isLive(m.status));
  }

  member(name: string): MemberInfo | undefined {
    return this.#swim.member(name);
  }

  /**
   * Whether this member hears from its peers (an answered probe within
   * `isolationTimeoutMs`, or no live peer at all): the guard's `canGossip`.
   */
  canGossip(): boolean {
    return this.#swim.canGossip();
  }

  /**
   * Send time (scheduler clock) of this member's latest answered probe: see `Swim.lastContactAt`.
   * The split-brain rule (`decideSafety`) needs it to tell a fresh view from a stale one.
   */
  lastContactAt(): number {
    return this.#swim.lastContactAt();
  }

  /** Replaces this member's subnets; the change reaches the others as an `update`. */
  setSubnets(subnets: readonly string[]): void {
    validateSubnets(subnets);
    this.#swim.setSubnets(subnets);
  }

  /**
   * Leaves on purpose: every live member is told directly (so it takes over at once), the
   * news is gossiped for `drainMs` (default three gossip intervals, at least 50 ms), then
   * the member stops. The transport stays open until `shutdown()`.
   */
  leave(drainMs = Math.max(50, 3 * this.config.gossipIntervalMs)): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#swim.leave();
    this.#wake();
    return new Promise((resolve) => {
      this.#scheduler.at(this.#scheduler.now() + drainMs, () => {
        this.stop();
        resolve();
      });
    });
  }

  /** Stops all protocol activity without telling anyone (as a crash would). */
  stop(): void {
    this.#swim.stop();
    if (this.#timer !== undefined) this.#scheduler.cancel(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** Stops and closes the transport. */
  async shutdown(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.stop();
    await this.#transport.close();
  }

  /** The events as an async iterable; ends when `signal` aborts. */
  async *events(signal?: AbortSignal): AsyncGenerator<MembershipEvent> {
    try {
      for await (const [e] of on(this, 'event', signal ? { signal } : {})) yield e as MembershipEvent;
    } catch (e) {
      if (!(e instanceof Error && e.name === 'AbortError')) throw e;
    }
  }

  /** Advances the engine and re-arms the one timer at its next deadline. */
  #wake(): void {
    const now = this.#scheduler.now();
    let at = this.#swim.nextDeadline();
    if (at === Infinity) {
      if (this.#timer !== undefined) this.#scheduler.cancel(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
      return;
    }
    if (at < now) at = now;
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    if (this.#timer !== undefined) this.#scheduler.cancel(this.#timer);
    this.#timerAt = at;
    this.#timer = this.#scheduler.at(at, () => this.#fire());
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#scheduler.now();
    this.#swim.tick();
    const next = this.#swim.nextDeadline();
    if (next <= now && next !== Infinity) {
      // A deadline that did not move would spin; step past it.
      this.#timerAt = now + MIN_STEP_MS;
      this.#timer = this.#scheduler.at(this.#timerAt, () => this.#fire());
      return;
    }
    this.#wake();
  }

  /** For simulations that start converged: adds members as alive without events or gossip. */
  seed(members: readonly { name: string; address: string; subnets?: readonly string[] }[]): void {
    this.#swim.seed(members.map((m) => ({ name: m.name, address: m.address, incarnation: 0, status: 'alive' as const, subnets: m.subnets ?? [] })));
  }
}
