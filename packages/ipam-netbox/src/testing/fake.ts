// An in-memory Netbox for deterministic tests of NetboxAddressSource (or anything that
// takes a NetboxConnection): no HTTP, no real timers. Its `connect` and `clock` are the
// source's options of the same names; calls can be held until the test lets them answer,
// and made to fail.
import { type Family, formatAddress, parseSubnet } from '@purelb/ipam-core';
import type { NetboxClock, NetboxConnection, NetboxGroupSpec, NetboxPoolApi } from '../address-source.ts';
import { NetboxError, NetboxErrorCode } from '../errors.ts';
import type { HeldAddress, NetboxSource, ReleaseOutcome, ResolvedPool } from '../pool.ts';

/** A call the fake received. */
export type FakeNetboxOperation = 'resolve' | 'held' | 'allocate' | 'release' | 'relabel';

export interface FakeNetboxCall {
  readonly op: FakeNetboxOperation;
  readonly holder?: string | undefined;
  readonly address?: string | undefined;
}

/** An address the fake Netbox records: `holder` is what its description names (undefined: not ours). */
export interface FakeNetboxRecord {
  readonly id: number;
  readonly address: string;
  readonly family: Family;
  holder: string | undefined;
}

export interface FakeNetboxOptions {
  /** The prefixes, at most one a family (`192.0.2.0/29`, `2001:db8::/125`). */
  readonly prefixes: readonly string[];
  /** The token it accepts (default `fake-token`); any other fails to resolve with NETBOX_UNAUTHORIZED. */
  readonly token?: string | undefined;
}

/** Manual time: timers fire only when the test moves the clock. */
export class FakeNetboxClock implements NetboxClock {
  #now = 0;
  #next = 1;
  readonly #due = new Map<number, { readonly at: number; readonly fn: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#due.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#due.delete(handle as number);
  }

  /** Timers waiting to fire. */
  get timers(): number {
    return this.#due.size;
  }

  /** Moves time on by `ms`, firing every timer that falls due, earliest first. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const [id, timer] = [...this.#due].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0] ?? [];
      if (id === undefined || !timer) break;
      this.#due.delete(id);
      this.#now = timer.at;
      timer.fn();
    }
    this.#now = end;
  }
}

/**
 * Netbox as a NetboxAddressSource sees it: prefixes that hand out their lowest free
 * address (not an IPv4 network or broadcast address, not the IPv6 subnet-router anycast
 * address), records with a holder, and the faults a test needs.
 */
export class FakeNetbox {
  readonly clock = new FakeNetboxClock();
  /** Every call, in the order received. */
  readonly calls: FakeNetboxCall[] = [];
  /** While true, calls wait until `answer()`. */
  holding = false;
  #token: string;
  #nextId = 1;
  readonly #sources: Partial<Record<Family, NetboxSource>> = {};
  readonly #records = new Map<number, FakeNetboxRecord>();
  readonly #held: (() => void)[] = [];
  readonly #failures = new Map<FakeNetboxOperation, NetboxError[]>();
  #open = 0;

  constructor(options: FakeNetboxOptions) {
    this.#token = options.token ?? 'fake-token';
    for (const text of options.prefixes) {
      const s = parseSubnet(text);
      if (!s) throw new Error(`FakeNetbox: bad prefix ${text}`);
      const hostBits = BigInt((s.family === 'IPv4' ? 32 : 128) - s.prefixLength);
      const last = s.network + (1n << hostBits) - 1n;
      this.#sources[s.family] = { kind: 'prefix', id: this.#nextId++, family: s.family, label: `prefix ${text}`, prefix: text, size: last - s.network - (s.family === 'IPv4' ? 1n : 0n), first: s.network, last };
    }
  }

  /** Accepts this token (and no other) from now on. */
  acceptToken(token: string): void {
    this.#token = token;
  }

  /** Connections opened and not closed. */
  get openConnections(): number {
    return this.#open;
  }

  /** The source's `connect` option. */
  readonly connect = (_spec: NetboxGroupSpec, token: string): NetboxConnection => {
    this.#open++;
    let closed = false;
    return {
      pool: this.#pool(token),
      close: () => {
        if (!closed) this.#open--;
        closed = true;
        return Promise.resolve();
      },
    };
  };

  /** The next call of `op` fails with `error` (several queue up). */
  failNext(op: FakeNetboxOperation, error: NetboxError = new NetboxError(NetboxErrorCode.Unavailable, `Netbox fake: ${op}: HTTP 503`, { status: 503 })): void {
    this.#failures.set(op, [...(this.#failures.get(op) ?? []), error]);
  }

  /** Lets every held call answer; returns how many. */
  answer(): number {
    const n = this.#held.length;
    for (const go of this.#held.splice(0)) go();
    return n;
  }

  /** Calls waiting for `answer()`. */
  get waiting(): number {
    return this.#held.length;
  }

  /** Records an address, as a person or an earlier allocator did. */
  addRecord(address: string, holder: string | undefined): FakeNetboxRecord {
    const r: FakeNetboxRecord = { id: this.#nextId++, address, family: address.includes(':') ? 'IPv6' : 'IPv4', holder };
    this.#records.set(r.id, r);
    return r;
  }

  /** Deletes the record of an address, as a person might. */
  deleteRecord(address: string): boolean {
    const r = this.records().find((x) => x.address === address);
    return r !== undefined && this.#records.delete(r.id);
  }

  /** What Netbox records, lowest id first. */
  records(): FakeNetboxRecord[] {
    return [...this.#records.values()];
  }

  /** The holder Netbox records for an address, if any. */
  holderOf(address: string): string | undefined {
    return this.records().find((x) => x.address === address)?.holder;
  }

  /** Lets promise callbacks run: call after `answer()` or a clock move before asserting. */
  static settle(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  // --- internals ---------------------------------------------------------------------

  #pool(token: string): NetboxPoolApi {
    let resolved: ResolvedPool | undefined;
    const call = <T>(c: FakeNetboxCall, fn: () => T): Promise<T> => {
      this.calls.push(c);
      const run = (): T => {
        const failure = this.#failures.get(c.op)?.shift();
        if (failure) throw failure;
        return fn();
      };
      if (!this.holding) return Promise.resolve().then(run);
      return new Promise<T>((resolve, reject) => this.#held.push(() => void Promise.resolve().then(run).then(resolve, reject)));
    };
    const resolve = (): ResolvedPool => {
      if (token !== this.#token) throw new NetboxError(NetboxErrorCode.Unauthorized, 'Netbox fake: HTTP 403 Invalid token', { status: 403 });
      return (resolved = { tenant: undefined, sources: { ...this.#sources } });
    };
    return {
      get resolved() {
        return resolved;
      },
      resolve: () => call({ op: 'resolve' }, resolve),
      held: () =>
        call({ op: 'held' }, () => {
          resolved ??= resolve();
          return this.records().flatMap((r): HeldAddress[] => (r.holder === undefined ? [] : [{ id: r.id, address: r.address, family: r.family, maskLength: 0, holder: r.holder }]));
        }),
      allocate: (holder: string, family: Family) => call({ op: 'allocate', holder }, () => this.#allocate(holder, family)),
      release: (held: HeldAddress) => call({ op: 'release', holder: held.holder, address: held.address }, () => this.#release(held)),
      relabel: (held: HeldAddress, holder: string) =>
        call({ op: 'relabel', holder, address: held.address }, () => {
          const r = this.#records.get(held.id);
          if (r) r.holder = holder;
          return { ...held, holder };
        }),
    };
  }

  #allocate(holder: string, family: Family): HeldAddress {
    const source = this.#sources[family];
    if (!source) throw new NetboxError(NetboxErrorCode.FamilyUnavailable, `Netbox fake: no ${family} prefix`, { service: holder });
    const taken = new Set(this.records().map((r) => r.address));
    const top = family === 'IPv4' ? source.last - 1n : source.last;
    for (let v = source.first + 1n; v <= top; v++) {
      const address = formatAddress(family, v);
      if (taken.has(address)) continue;
      const r = this.addRecord(address, holder);
      return { id: r.id, address, family, maskLength: 0, holder };
    }
    throw new NetboxError(NetboxErrorCode.Exhausted, `Netbox fake: ${source.label} has no free address for Service ${holder}`, { service: holder, prefix: source.label });
  }

  #release(held: HeldAddress): ReleaseOutcome {
    const r = this.#records.get(held.id);
    if (!r) return 'already-gone';
    if (r.holder !== held.holder || r.address !== held.address) return 'not-ours';
    this.#records.delete(held.id);
    return 'released';
  }
}
