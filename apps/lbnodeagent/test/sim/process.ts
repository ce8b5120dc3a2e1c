// One agent process on a simulated node, and what it touches through the process: its
// timers, its gossip socket and its netlink socket. Everything that would run code in the
// process (a timer, an arriving packet, a kernel answer or notification, an API answer)
// goes through `Proc.run`: while the process is frozen it waits (and runs on thaw, late),
// once the process is killed it never runs. The kernel and the network are not the
// process: they keep going whatever it does.
import type { Scheduler, Transport, TransportHandlers } from '@purelb/election';
import type { MemoryTransport, VirtualClock } from '@purelb/election/testing';
import type { AddressBatchItem, AddressOptions, AddressReplaceItem, AnnounceOptions, Family, LinkRef, NetChange, NetChangeSubscription, NetlinkHandle, ProbeOptions } from '@purelb/linux-net';
import type { MemoryNetlinkHandle } from '@purelb/linux-net/testing';

type Kind = 'timer' | 'io';

interface TimerHandle {
  entry: unknown;
  cancelled: boolean;
}

interface Deferred {
  readonly kind: Kind;
  readonly fn: () => void;
  readonly timer: TimerHandle | undefined;
}

/** The order in which a thawed process handles what piled up: expired timers or arrived I/O first (both happen in Node). */
export type ThawOrder = 'timers-first' | 'io-first';

export class Proc {
  state: 'running' | 'frozen' | 'dead' = 'running';
  /** Freezes in force (overlapping faults). */
  freezes = 0;
  readonly #clock: VirtualClock;
  #deferred: Deferred[] = [];
  /** The process's monotonic clock (the node's: `offset` from the simulation's) and timers. */
  readonly scheduler: Scheduler;

  constructor(clock: VirtualClock, offset: number) {
    this.#clock = clock;
    this.scheduler = {
      now: () => clock.now() + offset,
      at: (at, fn) => {
        const h: TimerHandle = { entry: undefined, cancelled: false };
        h.entry = clock.at(at - offset, () => {
          if (!h.cancelled) this.#run('timer', fn, h);
        });
        return h;
      },
      cancel: (handle) => {
        const h = handle as TimerHandle | undefined;
        if (!h) return;
        h.cancelled = true;
        clock.cancel(h.entry);
      },
    };
  }

  /** Runs `fn` in the process now, later (frozen) or never (dead). */
  run(fn: () => void): void {
    this.#run('io', fn, undefined);
  }

  #run(kind: Kind, fn: () => void, timer: TimerHandle | undefined): void {
    if (this.state === 'dead') return;
    if (this.state === 'frozen') {
      this.#deferred.push({ kind, fn, timer });
      return;
    }
    fn();
  }

  /** A promise settled by something outside the process, as the process sees it. */
  gate<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      p.then(
        (v) => this.run(() => resolve(v)),
        (e: unknown) => this.run(() => reject(e instanceof Error ? e : new Error(String(e)))),
      );
    });
  }

  /** Waits `ms` on the process's timers. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.scheduler.at(this.scheduler.now() + ms, resolve));
  }

  freeze(): void {
    if (this.state === 'running') this.state = 'frozen';
  }

  /** Runs what piled up, each as its own callback at the current time. */
  thaw(order: ThawOrder): void {
    if (this.state !== 'frozen') return;
    this.state = 'running';
    const list = this.#deferred;
    this.#deferred = [];
    const first: Kind = order === 'timers-first' ? 'timer' : 'io';
    const sorted = [...list.filter((d) => d.kind === first), ...list.filter((d) => d.kind !== first)];
    for (const d of sorted) {
      this.#clock.at(this.#clock.now(), () => {
        if (!d.timer?.cancelled) this.#run(d.kind, d.fn, d.timer);
      });
    }
  }

  kill(): void {
    this.state = 'dead';
    this.#deferred = [];
  }
}

/** The process's gossip socket: arrivals go through the process; the socket itself is the kernel's. */
export class ProcTransport implements Transport {
  readonly inner: MemoryTransport;
  readonly #proc: Proc;

  constructor(inner: MemoryTransport, proc: Proc) {
    this.inner = inner;
    this.#proc = proc;
  }

  get address(): string {
    return this.inner.address;
  }

  send(to: string, data: Uint8Array): void {
    if (this.#proc.state === 'running') this.inner.send(to, data);
  }

  request(to: string, data: Uint8Array, timeoutMs: number, done: (error: Error | undefined, reply?: Uint8Array) => void): void {
    this.inner.request(to, data, timeoutMs, (e, r) => this.#proc.run(() => done(e, r)));
  }

  listen(handlers: TransportHandlers): void {
    this.inner.listen({
      packet: (from, data) => this.#proc.run(() => handlers.packet(from, data)),
      request: (from, data, reply) => this.#proc.run(() => handlers.request(from, data, reply)),
    });
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * The process's netlink socket over the node's kernel (a MemoryNetlinkHandle that outlives
 * the process): calls take effect in the kernel at once, answers and notifications reach
 * the process through `Proc.run`.
 */
export class ProcNetlink implements NetlinkHandle {
  readonly #k: MemoryNetlinkHandle;
  readonly #proc: Proc;
  readonly #subs = new Set<NetChangeSubscription>();
  /** Whether the frames that showed a probe its conflict were all lost on the LAN (ARP is not reliable). */
  readonly #missed: () => boolean;

  constructor(kernel: MemoryNetlinkHandle, proc: Proc, missed: () => boolean = () => false) {
    this.#k = kernel;
    this.#proc = proc;
    this.#missed = missed;
  }

  listLinks() {
    return this.#proc.gate(this.#k.listLinks());
  }
  getLink(link: LinkRef) {
    return this.#proc.gate(this.#k.getLink(link));
  }
  findLinks(pattern: RegExp) {
    return this.#proc.gate(this.#k.findLinks(pattern));
  }
  listAddresses(filter?: { readonly link?: LinkRef; readonly family?: Family }) {
    return this.#proc.gate(this.#k.listAddresses(filter));
  }
  addAddress(link: LinkRef, address: string, options?: AddressOptions) {
    return this.#proc.gate(this.#k.addAddress(link, address, options));
  }
  replaceAddress(link: LinkRef, address: string, options?: AddressOptions) {
    return this.#proc.gate(this.#k.replaceAddress(link, address, options));
  }
  deleteAddress(link: LinkRef, address: string) {
    return this.#proc.gate(this.#k.deleteAddress(link, address));
  }
  deleteAddresses(items: readonly AddressBatchItem[]) {
    return this.#proc.gate(this.#k.deleteAddresses(items));
  }
  replaceAddresses(items: readonly AddressReplaceItem[]) {
    return this.#proc.gate(this.#k.replaceAddresses(items));
  }
  defaultRoute(family: Family) {
    return this.#proc.gate(this.#k.defaultRoute(family));
  }
  localSubnetFor(address: string, linkPattern?: RegExp) {
    return this.#proc.gate(this.#k.localSubnetFor(address, linkPattern));
  }
  ensureVirtualLink(name: string) {
    return this.#proc.gate(this.#k.ensureVirtualLink(name));
  }
  deleteLink(link: LinkRef) {
    return this.#proc.gate(this.#k.deleteLink(link));
  }
  announce(link: LinkRef, address: string, options?: AnnounceOptions) {
    return this.#proc.gate(this.#k.announce(link, address, options));
  }
  probeAddress(link: LinkRef, address: string, options?: ProbeOptions) {
    return this.#proc.gate(this.#k.probeAddress(link, address, options).then((r) => (r.conflict && this.#missed() ? ({ conflict: false } as const) : r)));
  }

  subscribe(): NetChangeSubscription {
    const inner = this.#k.subscribe();
    this.#subs.add(inner);
    const proc = this.#proc;
    const subs = this.#subs;
    return {
      close: () => {
        subs.delete(inner);
        inner.close();
      },
      [Symbol.asyncIterator]: (): AsyncIterator<NetChange> => {
        const it = inner[Symbol.asyncIterator]();
        return {
          next: () => proc.gate(it.next()),
          return: () => {
            subs.delete(inner);
            inner.close();
            return Promise.resolve({ value: undefined, done: true });
          },
        };
      },
    };
  }

  /** Closes this process's subscriptions (the kernel stays). */
  close(): void {
    for (const s of [...this.#subs]) s.close();
    this.#subs.clear();
  }
}
