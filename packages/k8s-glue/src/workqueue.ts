// A controller's work queue, with client-go's rules: a key is queued at most once however
// often it is added; a key being worked is never handed out twice at once, and if it is
// added meanwhile it is worked once more after done(); failures are retried after a delay
// that doubles per key up to a cap (ItemExponentialFailureRateLimiter) and never faster
// than an overall token bucket allows (BucketRateLimiter), until forget() resets the key.
import { Counter, Gauge, Histogram, type MetricsRegistry } from './metrics.ts';

/** An opaque timer handle of a Clock. */
export type TimerHandle = unknown;

/** Time and timers, injectable so tests can run minutes of retries in no time. */
export interface Clock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** performance.now() and the global timers. Timers are unref'd: a pending retry never keeps a process alive. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Options of a WorkQueue. */
export interface WorkQueueOptions {
  /** First retry delay of a key after a failure (default 250 ms); it doubles with each further failure. */
  readonly baseDelayMs?: number | undefined;
  /** Longest retry delay of a key (default 300000 ms: 5 minutes). */
  readonly maxDelayMs?: number | undefined;
  /** Retries (addRateLimited) let through per second overall, once the burst is spent (default 10). */
  readonly qps?: number | undefined;
  /** Retries let through at once before `qps` applies (default 100). */
  readonly burst?: number | undefined;
  /**
   * Registers `<metricsPrefix>_depth`, `_adds_total`, `_retries_total`,
   * `_queue_duration_seconds` and `_work_duration_seconds` in `registry`.
   */
  readonly metricsPrefix?: string | undefined;
  readonly registry?: MetricsRegistry | undefined;
  /** Metrics made once with workQueueMetrics(), for a queue made anew at times (one per leadership term); wins over `registry`. */
  readonly metrics?: WorkQueueMetrics | undefined;
  readonly clock?: Clock | undefined;
}

/** The metrics of a WorkQueue (absent without a registry). */
export interface WorkQueueMetrics {
  /** Keys ready to be handed out. */
  readonly depth: Gauge;
  /** add() calls that queued a key (repeats of a queued key are not counted). */
  readonly adds: Counter;
  /** addRateLimited() calls: failures retried. */
  readonly retries: Counter;
  /** Seconds a key waited in the queue before it was handed out. */
  readonly queueDuration: Histogram;
  /** Seconds from get() to done(). */
  readonly workDuration: Histogram;
}

/** Registers the metrics of a WorkQueue under `prefix` (see WorkQueueOptions.metricsPrefix). */
export function workQueueMetrics(registry: MetricsRegistry, prefix = 'workqueue'): WorkQueueMetrics {
  return {
    depth: new Gauge({ name: `${prefix}_depth`, help: 'Keys ready to be worked.', registry }),
    adds: new Counter({ name: `${prefix}_adds_total`, help: 'Keys queued (a key already queued is not counted again).', registry }),
    retries: new Counter({ name: `${prefix}_retries_total`, help: 'Keys put back after a failure, to be retried after their backoff.', registry }),
    queueDuration: new Histogram({ name: `${prefix}_queue_duration_seconds`, help: 'How long a key waited in the queue before it was worked.', buckets: WORKQUEUE_DURATION_BUCKETS, registry }),
    workDuration: new Histogram({ name: `${prefix}_work_duration_seconds`, help: 'How long working one key took.', buckets: WORKQUEUE_DURATION_BUCKETS, registry }),
  };
}

/** Latency buckets (seconds): 1 ms to 5 minutes. */
export const WORKQUEUE_DURATION_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The per-key delay after `failures` earlier failures: base * 2^failures, at most max. */
export function itemBackoffMs(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(failures, 60));
}

/**
 * The most requests one key that always fails gets in any window of `windowMs` when it is
 * retried only through addRateLimited(): the attempt at 0, then one after each delay
 * base, 2 base, 4 base, ... (capped at max), counted while their sum stays within the
 * window. The first window is the busiest, since delays only grow.
 */
export function maxAttemptsInWindow(windowMs: number, baseMs = 250, maxMs = 300_000): number {
  let t = 0;
  let n = 1;
  for (let failures = 0; n < 1_000_000; failures++) {
    t += itemBackoffMs(failures, baseMs, maxMs);
    if (t >= windowMs) return n;
    n++;
  }
  return n;
}

/** A token bucket (golang.org/x/time/rate's Reserve): tokens may go negative; the debt is the delay. */
class TokenBucket {
  readonly #perMs: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;

  constructor(qps: number, burst: number, now: number) {
    this.#perMs = qps / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = now;
  }

  /** Takes one token; returns how long to wait until it is really there. */
  reserve(now: number): number {
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#perMs);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : -this.#tokens / this.#perMs;
  }
}

/**
 * A rate-limited work queue of keys. Workers loop on `get()`, work the key, then call
 * `done(key)`, and on success `forget(key)` or on failure `addRateLimited(key)`.
 */
export class WorkQueue<K = string> {
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #clock: Clock;
  readonly #bucket: TokenBucket;
  /** Ready keys in order; #ready holds the same keys, with when each was queued. */
  #order: K[] = [];
  #head = 0;
  readonly #ready = new Map<K, number>();
  /** Keys added and not yet handed out (ready, or added while being worked). */
  readonly #dirty = new Set<K>();
  /** Keys handed out and not yet done, with when they were handed out. */
  readonly #processing = new Map<K, number>();
  /** Keys due later: the earliest time wins. */
  readonly #waiting = new Map<K, { at: number; timer: TimerHandle }>();
  readonly #failures = new Map<K, number>();
  readonly #getters: ((key: K | undefined) => void)[] = [];
  #shutDown = false;
  readonly metrics: WorkQueueMetrics | undefined;

  constructor(opts: WorkQueueOptions = {}) {
    this.#baseMs = opts.baseDelayMs ?? 250;
    this.#maxMs = opts.maxDelayMs ?? 300_000;
    this.#clock = opts.clock ?? systemClock;
    const qps = opts.qps ?? 10;
    const burst = opts.burst ?? 100;
    if (!(this.#baseMs > 0 && this.#maxMs >= this.#baseMs)) throw new RangeError(`WorkQueue: need 0 < baseDelayMs (${this.#baseMs}) <= maxDelayMs (${this.#maxMs})`);
    if (!(qps > 0 && burst >= 1)) throw new RangeError(`WorkQueue: need qps (${qps}) > 0 and burst (${burst}) >= 1`);
    this.#bucket = new TokenBucket(qps, burst, this.#clock.now());
    this.metrics = opts.metrics ?? (opts.registry ? workQueueMetrics(opts.registry, opts.metricsPrefix) : undefined);
  }

  /** Keys ready to be handed out. */
  get length(): number {
    return this.#ready.size;
  }

  /** Keys being worked (handed out, not yet done). */
  get processing(): number {
    return this.#processing.size;
  }

  /** Keys due later (addAfter or addRateLimited). */
  get waiting(): number {
    return this.#waiting.size;
  }

  get shuttingDown(): boolean {
    return this.#shutDown;
  }

  /**
   * Queues `key` now, unless it is queued already. A key being worked is worked once more
   * after done(). A delayed add of the same key pending is dropped: this one comes first.
   */
  add(key: K): void {
    if (this.#shutDown) return;
    this.#cancelWaiting(key);
    if (this.#dirty.has(key)) return;
    this.#dirty.add(key);
    this.metrics?.adds.inc();
    if (this.#processing.has(key)) return;
    this.#enqueue(key);
  }

  /** Queues `key` after `ms` (at once when ms <= 0). If it is due earlier already, that stands. */
  addAfter(key: K, ms: number): void {
    if (this.#shutDown) return;
    if (!(ms > 0)) return this.add(key);
    const at = this.#clock.now() + ms;
    const prev = this.#waiting.get(key);
    if (prev && prev.at <= at) return;
    if (prev) this.#clock.clearTimeout(prev.timer);
    const timer = this.#clock.setTimeout(() => {
      if (this.#waiting.get(key)?.timer !== timer) return;
      this.#waiting.delete(key);
      this.add(key);
    }, ms);
    this.#waiting.set(key, { at, timer });
  }

  /** The delay the next addRateLimited(key) would use, without taking it. */
  nextDelay(key: K): number {
    return itemBackoffMs(this.#failures.get(key) ?? 0, this.#baseMs, this.#maxMs);
  }

  /**
   * Queues `key` again after its backoff: base * 2^(failures so far), capped, and no
   * sooner than the overall token bucket allows. Returns the delay used.
   */
  addRateLimited(key: K): number {
    if (this.#shutDown) return 0;
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const delay = Math.max(itemBackoffMs(failures, this.#baseMs, this.#maxMs), this.#bucket.reserve(this.#clock.now()));
    this.metrics?.retries.inc();
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets the key's backoff (it worked). Does not unqueue it. */
  forget(key: K): void {
    this.#failures.delete(key);
  }

  /** Failures of the key since it was last forgotten. */
  retries(key: K): number {
    return this.#failures.get(key) ?? 0;
  }

  /** The next key, waiting for one; undefined once the queue is shut down. */
  get(): Promise<K | undefined> {
    if (this.#shutDown) return Promise.resolve(undefined);
    const key = this.tryGet();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => this.#getters.push(resolve));
  }

  /** The next key if one is ready, without waiting. */
  tryGet(): K | undefined {
    if (this.#shutDown || this.#ready.size === 0) return undefined;
    const key = this.#order[this.#head++]!;
    if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
    this.#handOut(key);
    return key;
  }

  /** The key's work is finished; if it was added meanwhile, it is queued again. */
  done(key: K): void {
    const started = this.#processing.get(key);
    if (started === undefined) return;
    this.#processing.delete(key);
    this.metrics?.workDuration.observe(Math.max(0, this.#clock.now() - started) / 1000);
    if (this.#dirty.has(key) && !this.#shutDown) this.#enqueue(key);
  }

  /** Drops every key and timer; waiting get() calls resolve undefined; later adds are ignored. */
  shutDown(): void {
    this.#shutDown = true;
    for (const w of this.#waiting.values()) this.#clock.clearTimeout(w.timer);
    this.#waiting.clear();
    this.#order = [];
    this.#head = 0;
    this.#ready.clear();
    this.#dirty.clear();
    this.metrics?.depth.set(0);
    for (const g of this.#getters.splice(0)) g(undefined);
  }

  #enqueue(key: K): void {
    const getter = this.#getters.shift();
    if (getter) {
      this.#ready.set(key, this.#clock.now());
      this.#handOut(key);
      getter(key);
      return;
    }
    this.#ready.set(key, this.#clock.now());
    this.#order.push(key);
    this.metrics?.depth.set(this.#ready.size);
  }

  #handOut(key: K): void {
    const now = this.#clock.now();
    const queuedAt = this.#ready.get(key) ?? now;
    this.#ready.delete(key);
    this.#dirty.delete(key);
    this.#processing.set(key, now);
    this.metrics?.queueDuration.observe(Math.max(0, now - queuedAt) / 1000);
    this.metrics?.depth.set(this.#ready.size);
  }

  #cancelWaiting(key: K): void {
    const w = this.#waiting.get(key);
    if (!w) return;
    this.#clock.clearTimeout(w.timer);
    this.#waiting.delete(key);
  }
}
