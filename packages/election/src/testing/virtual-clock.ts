// A clock that only moves when told to, running due callbacks in time order (FIFO among
// equal times), so a simulation is exactly repeatable.
import type { Scheduler } from '../transport.ts';

interface Entry {
  readonly time: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/** A `Scheduler` on simulated time, starting at 0 ms. */
export class VirtualClock implements Scheduler {
  #now = 0;
  #seq = 0;
  readonly #heap: Entry[] = [];
  /** Callbacks run so far. */
  ran = 0;

  now(): number {
    return this.#now;
  }

  at(at: number, fn: () => void): unknown {
    const e: Entry = { time: Math.max(at, this.#now), seq: this.#seq++, fn, cancelled: false };
    this.#push(e);
    return e;
  }

  cancel(handle: unknown): void {
    if (handle && typeof handle === 'object' && 'cancelled' in handle) (handle as Entry).cancelled = true;
  }

  /** Calls pending callbacks up to `now + ms` and leaves the clock there. */
  advance(ms: number): void {
    this.runTo(this.#now + ms);
  }

  /** Calls pending callbacks up to time `t` and leaves the clock there. */
  runTo(t: number): void {
    for (;;) {
      const top = this.#heap[0];
      if (!top || top.time > t) break;
      this.#pop();
      if (top.cancelled) continue;
      this.#now = top.time;
      this.ran++;
      top.fn();
    }
    if (t > this.#now) this.#now = t;
  }

  /** Time of the earliest pending callback, or undefined when none is pending. */
  nextAt(): number | undefined {
    while (this.#heap[0]?.cancelled) this.#pop();
    return this.#heap[0]?.time;
  }

  /**
   * Runs the earliest pending callback alone (moving the clock to its time) and returns
   * true, or false when none is pending: a driver can drain promises and check invariants
   * between any two callbacks.
   */
  runNext(): boolean {
    for (;;) {
      const top = this.#heap[0];
      if (!top) return false;
      this.#pop();
      if (top.cancelled) continue;
      this.#now = top.time;
      this.ran++;
      top.fn();
      return true;
    }
  }

  /**
   * Advances in steps of `stepMs` until `done()` is true or `maxMs` has passed; returns
   * the simulated time it took, or `undefined` if it never became true.
   */
  runUntil(done: () => boolean, maxMs: number, stepMs = 1): number | undefined {
    const start = this.#now;
    if (done()) return 0;
    while (this.#now - start < maxMs) {
      this.advance(stepMs);
      if (done()) return this.#now - start;
    }
    return undefined;
  }

  /** Callbacks waiting. */
  get pending(): number {
    return this.#heap.length;
  }

  #less(a: Entry, b: Entry): boolean {
    return a.time < b.time || (a.time === b.time && a.seq < b.seq);
  }

  #push(e: Entry): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
