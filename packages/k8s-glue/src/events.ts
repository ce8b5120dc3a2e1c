// core/v1 Events written in the background, with repeats folded into one Event's count
// (as kubectl describe shows them: "3x over 2m") rather than a new object each time.
import type { KubeClient } from './client.ts';
import { KubeApiError, KubeErrorCode } from './errors.ts';

/** The object an Event is about. */
export interface ObjectReference {
  readonly kind: string;
  /** Absent for cluster-scoped objects; their Events go to namespace `default`. */
  readonly namespace?: string | undefined;
  readonly name: string;
  readonly uid?: string | undefined;
  readonly apiVersion?: string | undefined;
}

/** Options of an EventRecorder. */
export interface EventRecorderOptions {
  /** Who reports (`source.component`, `reportingComponent`), e.g. `purelb-allocator`. */
  readonly component: string;
  /** Which replica or node reports (`source.host`, `reportingInstance`). */
  readonly host?: string | undefined;
  /**
   * Repeats of one (object, type, reason, message) within this long after the Event was
   * created raise its count (default 600000, 10 minutes); after it, a new Event starts, so
   * a problem that lasts shows fresh Events after the server's event TTL (1 h) removes old ones.
   */
  readonly aggregateWindowMs?: number | undefined;
  /** Distinct events waiting to be written before new ones are dropped (default 1000). */
  readonly maxQueue?: number | undefined;
  /** Events remembered for aggregation, least recently used forgotten first (default 4096). */
  readonly maxRemembered?: number | undefined;
  /** Told about every write that failed (the recorder never throws into its callers). */
  readonly onError?: ((e: unknown) => void) | undefined;
  /**
   * While this answers true, queued Events wait (up to `maxDeferMs` after they were first
   * queued): a daemon passes "I am busy writing the objects themselves", so that in a storm
   * the API server spends itself on what matters first and the Events follow. Checked
   * every `deferPollMs`. Default: never defer.
   */
  readonly deferWhile?: (() => boolean) | undefined;
  /** Longest an Event waits for `deferWhile` (default 10000). */
  readonly maxDeferMs?: number | undefined;
  /** How often a deferred queue looks again (default 100). */
  readonly deferPollMs?: number | undefined;
}

/** Counters of an EventRecorder. */
export interface EventRecorderStats {
  /** Events created (POST). */
  readonly created: number;
  /** Repeats written into an existing Event (PATCH). */
  readonly aggregated: number;
  /** Calls dropped because the queue was full. */
  readonly dropped: number;
  /** Writes the API server refused or that did not arrive. */
  readonly failed: number;
}

interface Pending {
  /** When it was queued (performance.now()), for maxDeferMs. */
  readonly queuedAt: number;
  readonly ref: ObjectReference;
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
  readonly first: Date;
  count: number;
  last: Date;
}

interface Written {
  readonly name: string;
  readonly namespace: string;
  readonly createdAt: number;
  count: number;
}

/** Longest message kept; kubectl shows one line and etcd objects are bounded. */
const MAX_MESSAGE = 1024;

/** Writes Events in the background; event() never blocks and never throws. */
export class EventRecorder {
  readonly #client: KubeClient;
  readonly #component: string;
  readonly #host: string | undefined;
  readonly #windowMs: number;
  readonly #maxQueue: number;
  readonly #maxRemembered: number;
  readonly #onError: ((e: unknown) => void) | undefined;
  readonly #deferWhile: (() => boolean) | undefined;
  readonly #maxDeferMs: number;
  readonly #deferPollMs: number;
  /** Set by flush(): what is queued goes out now, busy or not. */
  #flushing = false;
  readonly #pending = new Map<string, Pending>();
  readonly #written = new Map<string, Written>();
  #draining: Promise<void> | undefined;
  #serial = 0;
  #created = 0;
  #aggregated = 0;
  #dropped = 0;
  #failed = 0;

  constructor(client: KubeClient, opts: EventRecorderOptions) {
    this.#client = client;
    this.#component = opts.component;
    this.#host = opts.host;
    this.#windowMs = opts.aggregateWindowMs ?? 600_000;
    this.#maxQueue = opts.maxQueue ?? 1000;
    this.#maxRemembered = opts.maxRemembered ?? 4096;
    this.#onError = opts.onError;
    this.#deferWhile = opts.deferWhile;
    this.#maxDeferMs = opts.maxDeferMs ?? 10_000;
    this.#deferPollMs = opts.deferPollMs ?? 100;
  }

  /** Counters since construction. */
  stats(): EventRecorderStats {
    return { created: this.#created, aggregated: this.#aggregated, dropped: this.#dropped, failed: this.#failed };
  }

  /**
   * Queues an Event about `ref`. Repeats still waiting in the queue are folded into one
   * write; repeats of an Event written within the window raise its count.
   */
  event(ref: ObjectReference, type: 'Normal' | 'Warning', reason: string, message: string): void {
    try {
      const text = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;
      const key = JSON.stringify([ref.kind, ref.namespace ?? '', ref.name, ref.uid ?? '', type, reason, text]);
      const now = new Date();
      const queued = this.#pending.get(key);
      if (queued) {
        queued.count++;
        queued.last = now;
        return;
      }
      if (this.#pending.size >= this.#maxQueue) {
        this.#dropped++;
        return;
      }
      this.#pending.set(key, { queuedAt: performance.now(), ref, type, reason, message: text, first: now, count: 1, last: now });
      this.#kick();
    } catch {
      this.#dropped++;
    }
  }

  /** Resolves once everything queued so far is written (or has failed). */
  async flush(): Promise<void> {
    this.#flushing = true;
    try {
      for (let i = 0; i < 1_000_000 && this.#draining; i++) await this.#draining;
    } finally {
      this.#flushing = false;
    }
  }

  /** Waits while the owner is busy, at most until `queuedAt + maxDeferMs`, unless flushing. */
  async #deferred(queuedAt: number): Promise<void> {
    const busy = this.#deferWhile;
    if (!busy) return;
    for (let i = 0; i < 1_000_000 && !this.#flushing && performance.now() - queuedAt < this.#maxDeferMs; i++) {
      let isBusy: boolean;
      try {
        isBusy = busy();
      } catch {
        return; // the owner's callback failing must not hold its Events forever
      }
      if (!isBusy) return;
      await new Promise((r) => setTimeout(r, Math.min(this.#deferPollMs, Math.max(1, this.#maxDeferMs - (performance.now() - queuedAt)))));
    }
  }

  #kick(): void {
    if (this.#draining) return;
    this.#draining = this.#drain().finally(() => {
      this.#draining = undefined;
      if (this.#pending.size > 0) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    for (let first = this.#pending.entries().next(); !first.done; first = this.#pending.entries().next()) {
      const [key, p] = first.value;
      // Repeats keep folding into it while it waits; it leaves the queue only when written.
      if (this.#deferWhile) await this.#deferred(p.queuedAt);
      this.#pending.delete(key);
      try {
        await this.#write(key, p);
      } catch (e) {
        this.#failed++;
        try {
          this.#onError?.(e);
        } catch {
          // The error callback is the caller's; its failure must not stop the queue.
        }
      }
    }
  }

  async #write(key: string, p: Pending): Promise<void> {
    const known = this.#written.get(key);
    const lastTimestamp = p.last.toISOString();
    if (known && Date.now() - known.createdAt < this.#windowMs) {
      const count = known.count + p.count;
      try {
        await this.#client.mergePatch(`/api/v1/namespaces/${encodeURIComponent(known.namespace)}/events/${encodeURIComponent(known.name)}`, { count, lastTimestamp });
        known.count = count;
        this.#remember(key, known);
        this.#aggregated += p.count;
        return;
      } catch (e) {
        // Removed by its TTL or by someone: start a new one.
        if (!(e instanceof KubeApiError && e.code === KubeErrorCode.NotFound)) throw e;
        this.#written.delete(key);
      }
    }
    const namespace = p.ref.namespace || 'default';
    const name = `${p.ref.name.slice(0, 200)}.${(BigInt(Date.now()) * 1_000_000n + BigInt(this.#serial++ % 1_000_000)).toString(16)}`;
    const firstTimestamp = p.first.toISOString();
    await this.#client.create(`/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace },
      involvedObject: {
        kind: p.ref.kind,
        name: p.ref.name,
        ...(p.ref.namespace ? { namespace: p.ref.namespace } : {}),
        ...(p.ref.uid ? { uid: p.ref.uid } : {}),
        ...(p.ref.apiVersion ? { apiVersion: p.ref.apiVersion } : {}),
      },
      type: p.type,
      reason: p.reason,
      message: p.message,
      source: { component: this.#component, ...(this.#host ? { host: this.#host } : {}) },
      reportingComponent: this.#component,
      reportingInstance: this.#host ?? '',
      firstTimestamp,
      lastTimestamp,
      count: p.count,
    });
    this.#created++;
    this.#aggregated += p.count - 1;
    this.#remember(key, { name, namespace, createdAt: Date.now(), count: p.count });
  }

  #remember(key: string, w: Written): void {
    // Delete and set again so Map order is least recently used first.
    this.#written.delete(key);
    this.#written.set(key, w);
    while (this.#written.size > this.#maxRemembered) {
      const oldest = this.#written.keys().next();
      if (oldest.done) break;
      this.#written.delete(oldest.value);
    }
  }
}
