// The member table: what this member believes about every member it knows, with
// constant-time random sampling for probes and gossip fan-out.

/** A member's status as this member sees it. `suspect` still counts as live. */
export type MemberStatus = 'alive' | 'suspect' | 'dead' | 'left';

/**
 * A member by name with the subnets it can announce addresses on: what the per-address
 * election (`winner`) reads. Every richer view of a member extends it.
 */
export interface Member {
  readonly name: string;
  /** CIDRs it can announce addresses on; host bits are ignored, and text that is not a CIDR never matches. */
  readonly subnets: readonly string[];
}

/** A read-only view of one member. */
export interface MemberInfo extends Member {
  /** Where its gossip port is (`host:port`, IPv6 as `[host]:port`). */
  readonly address: string;
  /** Its own counter, raised whenever it refutes a suspicion or changes its metadata. */
  readonly incarnation: number;
  readonly status: MemberStatus;
  /** When the status last changed (ms, on the membership's clock). */
  readonly since: number;
}

/** True for `alive` and `suspect`: members that may still hold addresses. */
export function isLive(status: MemberStatus): boolean {
  return status === 'alive' || status === 'suspect';
}

/** The mutable record behind a `MemberInfo`. */
export interface MemberRecord {
  name: string;
  address: string;
  incarnation: number;
  status: MemberStatus;
  subnets: readonly string[];
  since: number;
}

/** Subnet lists equal, in order. */
export function sameSubnets(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/** Members by name, plus an array for uniform random picks. */
export class MemberTable {
  readonly #byName = new Map<string, MemberRecord>();
  readonly #list: MemberRecord[] = [];
  readonly #index = new Map<string, number>();
  #live = 0;

  get size(): number {
    return this.#list.length;
  }

  /** Members that are `alive` or `suspect`, this member included. */
  get liveCount(): number {
    return this.#live;
  }

  get(name: string): MemberRecord | undefined {
    return this.#byName.get(name);
  }

  values(): readonly MemberRecord[] {
    return this.#list;
  }

  add(m: MemberRecord): void {
    if (this.#byName.has(m.name)) throw new Error(`member ${m.name} is already in the table`);
    this.#byName.set(m.name, m);
    this.#index.set(m.name, this.#list.length);
    this.#list.push(m);
    if (isLive(m.status)) this.#live++;
  }

  /** Changes a member's status, keeping the live count right. */
  setStatus(m: MemberRecord, status: MemberStatus, now: number): void {
    if (isLive(m.status)) this.#live--;
    if (isLive(status)) this.#live++;
    if (m.status !== status) m.since = now;
    m.status = status;
  }

  remove(name: string): void {
    const m = this.#byName.get(name);
    const i = this.#index.get(name);
    if (!m || i === undefined) return;
    if (isLive(m.status)) this.#live--;
    const last = this.#list.pop()!;
    if (last !== m) {
      this.#list[i] = last;
      this.#index.set(last.name, i);
    }
    this.#byName.delete(name);
    this.#index.delete(name);
  }

  /**
   * Up to `k` distinct members satisfying `accept`, uniformly at random. Rejection sampling
   * first (cheap in big clusters where most members qualify), then a full scan.
   */
  sample(k: number, accept: (m: MemberRecord) => boolean, random: () => number): MemberRecord[] {
    const out: MemberRecord[] = [];
    const n = this.#list.length;
    if (k <= 0 || n === 0) return out;
    if (n > 4 * k) {
      const picked = new Set<number>();
      for (let tries = 0; tries < 4 * k + 8 && out.length < k; tries++) {
        const i = Math.floor(random() * n);
        if (picked.has(i)) continue;
        picked.add(i);
        const m = this.#list[i]!;
        if (accept(m)) out.push(m);
      }
      if (out.length === k) return out;
      out.length = 0;
    }
    const pool = this.#list.filter(accept);
    for (let i = 0; i < pool.length && i < k; i++) {
      const j = i + Math.floor(random() * (pool.length - i));
      const t = pool[i]!;
      pool[i] = pool[j]!;
      pool[j] = t;
      out.push(pool[i]!);
    }
    return out;
  }
}
