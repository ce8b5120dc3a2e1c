/**
 * A set of bigints kept as maximal runs of consecutive values, in sorted chunks.
 *
 * Memory grows with the number of runs, not the number of members: a pool filled from
 * the bottom is one run whatever its size. Lookups are a binary search over chunks and
 * then within one chunk (O(log runs)); an insert or delete moves at most one chunk's
 * worth of entries. `firstFreeAtOrAfter` is what makes first-fit allocation logarithmic:
 * because runs are maximal, the value after the run that holds `v` is always free.
 */
const CHUNK_MAX = 512;

interface Chunk {
  starts: bigint[];
  ends: bigint[];
}

interface Position {
  chunk: number;
  index: number;
}

export class IntervalSet {
  #chunks: Chunk[] = [];
  #size = 0;

  /** Number of members. */
  get size(): number {
    return this.#size;
  }

  /** Number of runs (for tests and memory reports). */
  get runCount(): number {
    let n = 0;
    for (const c of this.#chunks) n += c.starts.length;
    return n;
  }

  has(v: bigint): boolean {
    const p = this.#lastStartAtOrBefore(v);
    return p !== undefined && this.#chunks[p.chunk]!.ends[p.index]! >= v;
  }

  /** The smallest non-member that is >= v. */
  firstFreeAtOrAfter(v: bigint): bigint {
    const p = this.#lastStartAtOrBefore(v);
    if (p === undefined) return v;
    const end = this.#chunks[p.chunk]!.ends[p.index]!;
    return end >= v ? end + 1n : v;
  }

  /** Adds v; returns false (and changes nothing) if it was already a member. */
  add(v: bigint): boolean {
    const p = this.#lastStartAtOrBefore(v);
    let joinPrev = false;
    if (p !== undefined) {
      const end = this.#chunks[p.chunk]!.ends[p.index]!;
      if (end >= v) return false;
      joinPrev = end + 1n === v;
    }
    const n = p === undefined ? (this.#chunks.length > 0 ? { chunk: 0, index: 0 } : undefined) : this.#next(p);
    const joinNext = n !== undefined && this.#chunks[n.chunk]!.starts[n.index]! - 1n === v;
    if (joinPrev && joinNext) {
      const pc = this.#chunks[p!.chunk]!;
      pc.ends[p!.index] = this.#chunks[n.chunk]!.ends[n.index]!;
      this.#removeAt(n);
    } else if (joinPrev) {
      this.#chunks[p!.chunk]!.ends[p!.index] = v;
    } else if (joinNext) {
      this.#chunks[n.chunk]!.starts[n.index] = v;
    } else {
      this.#insertAfter(p, v, v);
    }
    this.#size++;
    return true;
  }

  /** Removes v; returns false (and changes nothing) if it was not a member. */
  delete(v: bigint): boolean {
    const p = this.#lastStartAtOrBefore(v);
    if (p === undefined) return false;
    const c = this.#chunks[p.chunk]!;
    const start = c.starts[p.index]!;
    const end = c.ends[p.index]!;
    if (end < v) return false;
    if (start === end) this.#removeAt(p);
    else if (v === start) c.starts[p.index] = v + 1n;
    else if (v === end) c.ends[p.index] = v - 1n;
    else {
      c.ends[p.index] = v - 1n;
      this.#insertAfter(p, v + 1n, end);
    }
    this.#size--;
    return true;
  }

  /** Number of members in [lo, hi]. Walks the runs that overlap the interval. */
  countIn(lo: bigint, hi: bigint): bigint {
    let total = 0n;
    for (const [s, e] of this.runsFrom(lo)) {
      if (s > hi) break;
      const a = s > lo ? s : lo;
      const b = e < hi ? e : hi;
      if (b >= a) total += b - a + 1n;
    }
    return total;
  }

  /** Runs [start, end] in order, starting with the one that holds or follows `from`. */
  *runsFrom(from: bigint): Generator<[bigint, bigint]> {
    let p = this.#lastStartAtOrBefore(from) ?? (this.#chunks.length > 0 ? { chunk: 0, index: 0 } : undefined);
    while (p !== undefined) {
      const c = this.#chunks[p.chunk]!;
      yield [c.starts[p.index]!, c.ends[p.index]!];
      p = this.#next(p);
    }
  }

  #lastStartAtOrBefore(v: bigint): Position | undefined {
    const chunks = this.#chunks;
    let lo = 0;
    let hi = chunks.length - 1;
    let ci = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (chunks[mid]!.starts[0]! <= v) {
        ci = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (ci < 0) return undefined;
    const starts = chunks[ci]!.starts;
    lo = 0;
    hi = starts.length - 1;
    let ii = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! <= v) {
        ii = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return { chunk: ci, index: ii };
  }

  #next(p: Position): Position | undefined {
    if (p.index + 1 < this.#chunks[p.chunk]!.starts.length) return { chunk: p.chunk, index: p.index + 1 };
    return p.chunk + 1 < this.#chunks.length ? { chunk: p.chunk + 1, index: 0 } : undefined;
  }

  #insertAfter(p: Position | undefined, start: bigint, end: bigint): void {
    if (this.#chunks.length === 0) {
      this.#chunks.push({ starts: [start], ends: [end] });
      return;
    }
    const at = p ?? { chunk: 0, index: -1 };
    const c = this.#chunks[at.chunk]!;
    c.starts.splice(at.index + 1, 0, start);
    c.ends.splice(at.index + 1, 0, end);
    if (c.starts.length > CHUNK_MAX) {
      const half = c.starts.length >>> 1;
      this.#chunks.splice(at.chunk + 1, 0, { starts: c.starts.splice(half), ends: c.ends.splice(half) });
    }
  }

  #removeAt(p: Position): void {
    const c = this.#chunks[p.chunk]!;
    c.starts.splice(p.index, 1);
    c.ends.splice(p.index, 1);
    if (c.starts.length === 0) this.#chunks.splice(p.chunk, 1);
  }
}
