// Builds N-member simulations on the in-memory network: start, kill, restart, partition,
// and ask whether every survivor agrees.
import { Membership } from '../membership.ts';
import type { MemberStatus } from '../member-state.ts';
import type { ConfigInput } from '../presets.ts';
import { Keyring } from '../seal.ts';
import type { MembershipEvent } from '../swim.ts';
import { MemoryNetwork, type MemoryTransport } from './network.ts';
import { seededRandom } from './random.ts';
import { VirtualClock } from './virtual-clock.ts';

/** How to build a simulated cluster. */
export interface SimulatedClusterOptions {
  /** Members to start with. */
  readonly size: number;
  /** Seed of every random choice (members, loss, jitter). Default 1. */
  readonly seed?: number;
  /** Timing preset and overrides for every member. */
  readonly config?: ConfigInput;
  /**
   * Sealing keys shared by every member (each gets its own `Keyring` copy, so rotation can
   * be staged member by member). Default: one random key. `null`: no sealing.
   */
  readonly keys?: readonly Uint8Array[] | null;
  /** Datagram loss probability on every link. Default 0. */
  readonly loss?: number;
  /** One-way delay (ms). Default 0.5. */
  readonly delayMs?: number;
  /** Extra random delay (ms). Default 0.5. */
  readonly jitterMs?: number;
  /**
   * `join`: every member joins through member 0 (a real bootstrap). `converged`: every
   * member starts knowing all others as alive, for large simulations. Default `join`.
   */
  readonly start?: 'join' | 'converged';
  /** Subnets of member `i`. Default `['192.0.2.0/24']`. */
  readonly subnets?: (index: number, name: string) => readonly string[];
  /** Called for every event at every member. */
  readonly onEvent?: (observer: string, event: MembershipEvent, at: number) => void;
}

/** One member of a simulated cluster. */
export interface SimulatedMember {
  readonly name: string;
  readonly address: string;
  membership: Membership;
  transport: MemoryTransport;
  keyring: Keyring | undefined;
  running: boolean;
}

/** The name of member `i`. */
export function simulatedName(i: number): string {
  return `node-${String(i).padStart(4, '0')}`;
}

/** The address of member `i` (documentation range). */
export function simulatedAddress(i: number): string {
  return `[2001:db8::${(i + 1).toString(16)}]:7934`;
}

/** A cluster of `Membership`s on one virtual clock and one in-memory network. */
export class SimulatedCluster {
  readonly clock = new VirtualClock();
  readonly network: MemoryNetwork;
  readonly members: SimulatedMember[] = [];
  readonly #byName = new Map<string, SimulatedMember>();
  readonly #options: SimulatedClusterOptions;
  readonly #keys: readonly Uint8Array[] | null;
  readonly #seed: number;
  #instances = 0;

  constructor(options: SimulatedClusterOptions) {
    this.#options = options;
    this.#seed = options.seed ?? 1;
    this.#keys = options.keys === undefined ? [Keyring.generateKey()] : options.keys;
    this.network = new MemoryNetwork({
      clock: this.clock,
      seed: this.#seed,
      loss: options.loss ?? 0,
      delayMs: options.delayMs ?? 0.5,
      jitterMs: options.jitterMs ?? 0.5,
    });
    for (let i = 0; i < options.size; i++) this.#create(i);
    if (options.start === 'converged') {
      const all = this.members.map((m) => ({ name: m.name, address: m.address, subnets: this.#subnets(this.members.indexOf(m), m.name) }));
      for (const m of this.members) m.membership.seed(all);
      for (const m of this.members) m.membership.start();
    } else {
      for (const m of this.members) m.membership.start();
      const seed = this.members[0]?.address;
      if (seed) for (const m of this.members.slice(1)) void m.membership.join([seed]).catch(() => undefined);
    }
  }

  #subnets(i: number, name: string): readonly string[] {
    return this.#options.subnets?.(i, name) ?? ['192.0.2.0/24'];
  }

  #membership(name: string, transport: MemoryTransport, keyring: Keyring | undefined, i: number): Membership {
    const m = new Membership({
      name,
      subnets: this.#subnets(i, name),
      transport,
      ...(keyring ? { keyring } : {}),
      config: this.#options.config ?? {},
      scheduler: this.clock,
      wallClock: () => 1_700_000_000_000 + this.clock.now(),
      random: seededRandom(this.#seed * 7919 + ++this.#instances * 104729),
    });
    const onEvent = this.#options.onEvent;
    if (onEvent) m.on('event', (e) => onEvent(name, e, this.clock.now()));
    return m;
  }

  #create(i: number): SimulatedMember {
    const name = simulatedName(i);
    const address = simulatedAddress(i);
    const transport = this.network.transport(address);
    const keyring = this.#keys ? new Keyring(this.#keys) : undefined;
    const member: SimulatedMember = { name, address, transport, keyring, membership: this.#membership(name, transport, keyring, i), running: true };
    this.members.push(member);
    this.#byName.set(name, member);
    return member;
  }

  /** The member called `name`; throws if there is none. */
  get(name: string): SimulatedMember {
    const m = this.#byName.get(name);
    if (!m) throw new Error(`no simulated member ${name}`);
    return m;
  }

  /** Members that have not been killed or left. */
  running(): SimulatedMember[] {
    return this.members.filter((m) => m.running);
  }

  /** Adds a member that joins through the first running member. */
  add(): SimulatedMember {
    const m = this.#create(this.members.length);
    m.membership.start();
    const seed = this.running().find((x) => x !== m)?.address;
    if (seed) void m.membership.join([seed]).catch(() => undefined);
    return m;
  }

  /** Crashes a member: it stops at once and its address goes silent. */
  kill(name: string): void {
    const m = this.get(name);
    m.running = false;
    m.membership.stop();
    void m.transport.close();
  }

  /** Starts a killed member again (same name and address, fresh state) and joins it through `seed` (default: any running member). */
  restart(name: string, seed?: string): SimulatedMember {
    const m = this.get(name);
    if (m.running) throw new Error(`${name} is running`);
    const i = this.members.indexOf(m);
    m.transport = this.network.transport(m.address);
    m.keyring = this.#keys ? new Keyring(this.#keys) : undefined;
    m.membership = this.#membership(name, m.transport, m.keyring, i);
    m.running = true;
    m.membership.start();
    const via = seed ?? this.running().find((x) => x !== m)?.address;
    if (via) void m.membership.join([via]).catch(() => undefined);
    return m;
  }

  /** Leaves gracefully; resolves when the member has stopped (advance the clock meanwhile). */
  leave(name: string): Promise<void> {
    const m = this.get(name);
    return m.membership.leave().then(() => {
      m.running = false;
    });
  }

  advance(ms: number): void {
    this.clock.advance(ms);
  }

  /** Advances until `done()` or `maxMs`; returns the simulated time taken or `undefined`. */
  runUntil(done: () => boolean, maxMs: number, stepMs = 1): number | undefined {
    return this.clock.runUntil(done, maxMs, stepMs);
  }

  /** True if every running member other than `name` sees `name` with one of `statuses` (or has forgotten it). */
  allSee(name: string, statuses: readonly MemberStatus[]): boolean {
    return this.running().every((m) => {
      if (m.name === name) return true;
      const s = m.membership.member(name)?.status;
      return s === undefined ? !statuses.includes('alive') : statuses.includes(s);
    });
  }

  /** True if every running member sees every running member as alive, and nothing else as live. */
  converged(): boolean {
    const running = this.running();
    const names = new Set(running.map((m) => m.name));
    return running.every((m) => {
      const live = m.membership.liveMembers();
      return live.length === names.size && live.every((x) => names.has(x.name) && x.status === 'alive');
    });
  }

  /** Shuts every member down. */
  async close(): Promise<void> {
    for (const m of this.members) await m.membership.shutdown();
  }
}
