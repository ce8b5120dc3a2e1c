// An in-memory network on a virtual clock: per-link loss and delay, blocked links and
// partitions. Streams (full-state exchanges) are lossless but obey blocks and delays.
import type { Transport, TransportHandlers } from '../transport.ts';
import { seededRandom } from './random.ts';
import type { VirtualClock } from './virtual-clock.ts';

/** How one direction of a link behaves. */
export interface LinkProfile {
  /** Probability in [0, 1] that a datagram is lost. */
  readonly loss?: number;
  /** One-way delay (ms). */
  readonly delayMs?: number;
  /** Extra uniform random delay in [0, jitterMs) (ms). */
  readonly jitterMs?: number;
}

export interface MemoryNetworkOptions extends LinkProfile {
  readonly clock: VirtualClock;
  /** Seed for loss and jitter. Default 1. */
  readonly seed?: number;
}

/** Traffic totals. */
export interface NetworkStats {
  packetsSent: number;
  packetsDelivered: number;
  packetsLost: number;
  packetsBlocked: number;
  bytesSent: number;
  requests: number;
}

/** A simulated LAN. Create transports with `transport(address)`. */
export class MemoryNetwork {
  readonly clock: VirtualClock;
  readonly stats: NetworkStats = { packetsSent: 0, packetsDelivered: 0, packetsLost: 0, packetsBlocked: 0, bytesSent: 0, requests: 0 };
  #default: Required<LinkProfile>;
  readonly #links = new Map<string, LinkProfile>();
  readonly #blocked = new Set<string>();
  readonly #isolated = new Set<string>();
  readonly #endpoints = new Map<string, MemoryTransport>();
  readonly #random: () => number;
  /** Sees every datagram before delivery; return false to drop it (tests of hostile traffic). */
  tap: ((from: string, to: string, data: Uint8Array) => boolean) | undefined;

  constructor(options: MemoryNetworkOptions) {
    this.clock = options.clock;
    this.#random = seededRandom(options.seed ?? 1);
    this.#default = { loss: options.loss ?? 0, delayMs: options.delayMs ?? 0.5, jitterMs: options.jitterMs ?? 0.5 };
  }

  /** Opens an endpoint at `address` (any unique string; `host:port` by convention). */
  transport(address: string): MemoryTransport {
    if (this.#endpoints.has(address)) throw new Error(`address ${address} is already in use on this network`);
    const t = new MemoryTransport(this, address);
    this.#endpoints.set(address, t);
    return t;
  }

  /** Changes the profile of every link without its own. */
  setDefault(profile: LinkProfile): void {
    this.#default = { ...this.#default, ...profile };
  }

  /** Sets the profile of the link `from -> to` (one direction). */
  setLink(from: string, to: string, profile: LinkProfile): void {
    this.#links.set(`${from}>${to}`, profile);
  }

  /** Blocks `from -> to` (one direction). */
  block(from: string, to: string): void {
    this.#blocked.add(`${from}>${to}`);
  }

  /** Cuts every link between the two groups, both directions. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) for (const y of b) {
      this.block(x, y);
      this.block(y, x);
    }
  }

  /** Cuts `address` off from everyone (its gossip port is blocked). */
  isolate(address: string): void {
    this.#isolated.add(address);
  }

  /** Removes every block, partition and isolation. */
  heal(): void {
    this.#blocked.clear();
    this.#isolated.clear();
  }

  /** True if a datagram from `from` can reach `to` right now. */
  connected(from: string, to: string): boolean {
    return !this.#isolated.has(from) && !this.#isolated.has(to) && !this.#blocked.has(`${from}>${to}`) && this.#endpoints.has(to);
  }

  #profile(from: string, to: string): Required<LinkProfile> {
    const p = this.#links.get(`${from}>${to}`);
    return p ? { ...this.#default, ...p } : this.#default;
  }

  #delay(p: Required<LinkProfile>): number {
    return p.delayMs + (p.jitterMs > 0 ? this.#random() * p.jitterMs : 0);
  }

  /** @internal */
  send(from: string, to: string, data: Uint8Array): void {
    this.stats.packetsSent++;
    this.stats.bytesSent += data.length;
    if (!this.connected(from, to)) {
      this.stats.packetsBlocked++;
      return;
    }
    const p = this.#profile(from, to);
    if (p.loss > 0 && this.#random() < p.loss) {
      this.stats.packetsLost++;
      return;
    }
    if (this.tap && !this.tap(from, to, data)) return;
    this.clock.at(this.clock.now() + this.#delay(p), () => {
      const target = this.#endpoints.get(to);
      // Checked again on arrival: a partition may have started in flight.
      if (!target || !this.connected(from, to)) {
        this.stats.packetsBlocked++;
        return;
      }
      this.stats.packetsDelivered++;
      target.deliver(from, data);
    });
  }

  /** @internal */
  request(from: string, to: string, data: Uint8Array, timeoutMs: number, done: (error: Error | undefined, reply?: Uint8Array) => void): void {
    this.stats.requests++;
    this.stats.bytesSent += data.length;
    let finished = false;
    const finish = (error: Error | undefined, reply?: Uint8Array): void => {
      if (finished) return;
      finished = true;
      done(error, reply);
    };
    const timeout = this.clock.at(this.clock.now() + timeoutMs, () => finish(new Error(`request to ${to} timed out`)));
    if (!this.connected(from, to)) return;
    const p = this.#profile(from, to);
    this.clock.at(this.clock.now() + this.#delay(p), () => {
      const target = this.#endpoints.get(to);
      if (!target || !this.connected(from, to)) {
        this.clock.cancel(timeout);
        finish(new Error(`connection to ${to} refused`));
        return;
      }
      target.serve(from, data, (reply) => {
        if (reply) this.stats.bytesSent += reply.length;
        const back = this.#profile(to, from);
        this.clock.at(this.clock.now() + this.#delay(back), () => {
          this.clock.cancel(timeout);
          if (!this.connected(to, from)) return finish(new Error(`connection to ${to} reset`));
          finish(reply ? undefined : new Error(`${to} closed without a reply`), reply);
        });
      });
    });
  }

  /** @internal */
  close(address: string): void {
    this.#endpoints.delete(address);
  }
}

/** One endpoint of a `MemoryNetwork`. */
export class MemoryTransport implements Transport {
  readonly address: string;
  readonly #network: MemoryNetwork;
  #handlers: TransportHandlers | undefined;
  #closed = false;

  constructor(network: MemoryNetwork, address: string) {
    this.#network = network;
    this.address = address;
  }

  listen(handlers: TransportHandlers): void {
    this.#handlers = handlers;
  }

  send(to: string, data: Uint8Array): void {
    if (!this.#closed) this.#network.send(this.address, to, data);
  }

  request(to: string, data: Uint8Array, timeoutMs: number, done: (error: Error | undefined, reply?: Uint8Array) => void): void {
    if (this.#closed) {
      done(new Error('transport closed'));
      return;
    }
    this.#network.request(this.address, to, data, timeoutMs, done);
  }

  /** @internal */
  deliver(from: string, data: Uint8Array): void {
    if (!this.#closed) this.#handlers?.packet(from, data);
  }

  /** @internal */
  serve(from: string, data: Uint8Array, reply: (data: Uint8Array | undefined) => void): void {
    if (this.#closed || !this.#handlers) reply(undefined);
    else this.#handlers.request(from, data, reply);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#network.close(this.address);
    return Promise.resolve();
  }
}
