// Time for tests of code that takes a Clock (WorkQueue and its users).
import type { Clock, TimerHandle } from '../workqueue.ts';

/**
 * A Clock for tests: time moves only by advance(), which fires due timers in time order
 * (timers they set that fall due within the advance fire too).
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as number);
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.#timers.size;
  }

  /** When the next timer is due, if any. */
  nextAt(): number | undefined {
    let at: number | undefined;
    for (const t of this.#timers.values()) if (at === undefined || t.at < at) at = t.at;
    return at;
  }

  /** Moves time forward by `ms`, firing each due timer at its time. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let id: number | undefined;
      let due: { at: number; fn: () => void } | undefined;
      for (const [i, t] of this.#timers) if (t.at <= end && (due === undefined || t.at < due.at)) [id, due] = [i, t];
      if (!due) break;
      this.#timers.delete(id!);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = end;
  }
}
