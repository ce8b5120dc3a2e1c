// Leader election over a coordination.k8s.io/v1 Lease, with client-go's rules: writes are
// conditional on resourceVersion, and another holder's lease is judged expired by how
// long this process has seen it unchanged on its own monotonic clock, never by comparing
// renewTime with the local wall clock (clocks of two nodes may disagree).
import type { KubeClient } from './client.ts';
import { KubeApiError, KubeErrorCode } from './errors.ts';
import { sleep } from './informer.ts';

/** Options of a LeaderElector. */
export interface LeaderElectorOptions {
  /** Namespace of the Lease. */
  readonly namespace: string;
  /** Name of the Lease (one per group of replicas). */
  readonly name: string;
  /** This replica's name, unique among candidates (the pod name is usual). */
  readonly identity: string;
  /** How long others wait after the last renewal they saw before taking over (default 15000; written as whole seconds). */
  readonly leaseDurationMs?: number | undefined;
  /** The leader stops leading when it could not renew for this long (default 10000; less than leaseDurationMs). */
  readonly renewDeadlineMs?: number | undefined;
  /** Pause between attempts to acquire or renew (default 2000; less than renewDeadlineMs). */
  readonly retryPeriodMs?: number | undefined;
}

/** What run() calls. */
export interface LeaderCallbacks {
  /**
   * Called once this replica leads. `signal` aborts when leadership ends; stop writing then.
   * If the returned promise rejects, the elector releases the Lease and run() rejects with that error.
   */
  readonly onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called once when leadership ends (lost, released or stopped); only after onStartedLeading. */
  readonly onStoppedLeading: () => void;
  /** Called when a different holder is seen, this replica included. */
  readonly onNewLeader?: ((identity: string) => void) | undefined;
}

/** A coordination.k8s.io/v1 Lease. */
export interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string; [k: string]: unknown };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

type Attempt = 'acquired' | 'held-by-other' | 'failed';

/** Kubernetes MicroTime: RFC 3339 with exactly six fraction digits (the server refuses three). */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** One candidate for leadership of a Lease. */
export class LeaderElector {
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #name: string;
  readonly #identity: string;
  readonly #leaseMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryMs: number;
  readonly #path: string;
  #lease: Lease | undefined;
  #observedKey = '';
  #observedAt = 0;
  #observedHolder = '';
  #leading = false;
  #lastRenewStart = 0;
  #abort: AbortController | undefined;
  #running: Promise<void> | undefined;

  constructor(client: KubeClient, opts: LeaderElectorOptions) {
    this.#client = client;
    this.#namespace = opts.namespace;
    this.#name = opts.name;
    this.#identity = opts.identity;
    this.#leaseMs = opts.leaseDurationMs ?? 15_000;
    this.#renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.#retryMs = opts.retryPeriodMs ?? 2_000;
    if (!opts.identity) throw new TypeError('LeaderElector: identity is empty');
    if (!(this.#leaseMs >= 1000)) throw new RangeError(`LeaderElector: leaseDurationMs ${this.#leaseMs} is under 1000 (the Lease holds whole seconds)`);
    if (!(this.#renewDeadlineMs < this.#leaseMs)) throw new RangeError(`LeaderElector: renewDeadlineMs ${this.#renewDeadlineMs} must be less than leaseDurationMs ${this.#leaseMs}`);
    if (!(this.#retryMs > 0 && this.#retryMs < this.#renewDeadlineMs)) throw new RangeError(`LeaderElector: retryPeriodMs ${this.#retryMs} must be in (0, renewDeadlineMs ${this.#renewDeadlineMs})`);
    this.#path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.#namespace)}/leases/${encodeURIComponent(this.#name)}`;
  }

  /** This replica's identity. */
  get identity(): string {
    return this.#identity;
  }

  /**
   * True while this replica leads: it holds the Lease and renewed it less than
   * renewDeadlineMs ago. Turns false by itself when renewals stall, even if the event loop
   * was blocked, so the old leader stops before anyone else may start.
   */
  isLeader(): boolean {
    return this.#leading && performance.now() - this.#lastRenewStart < this.#renewDeadlineMs;
  }

  /**
   * Campaigns until this replica leads, calls onStartedLeading, renews every retryPeriodMs,
   * and returns when leadership ends: renewals failed for renewDeadlineMs, another holder
   * was found, or stop()/release() was called. Can be called again after it returned.
   */
  run(callbacks: LeaderCallbacks): Promise<void> {
    if (this.#running) throw new Error(`LeaderElector ${this.#identity}: run() is already running`);
    const abort = new AbortController();
    this.#abort = abort;
    this.#running = this.#run(callbacks, abort).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Stops campaigning and renewing and leaves the Lease as it is: others take over once it expires. */
  async stop(): Promise<void> {
    this.#abort?.abort();
    await this.#running?.catch(() => undefined);
  }

  /**
   * Stops and, if this replica held the Lease, clears its holderIdentity so a standby takes
   * over at its next attempt instead of after the lease duration. For SIGTERM.
   */
  async release(): Promise<void> {
    const held = this.#leading || this.#lease?.spec.holderIdentity === this.#identity;
    await this.stop();
    if (held) await this.#writeRelease();
  }

  async #run(cb: LeaderCallbacks, abort: AbortController): Promise<void> {
    const signal = abort.signal;
    let workError: { error: unknown } | undefined;
    const leadAbort = new AbortController();
    try {
      for (;;) {
        if (signal.aborted) return;
        if ((await this.#tryAcquireOrRenew(cb, signal)) === 'acquired') break;
        // Jitter keeps candidates that started together from colliding on every attempt.
        await sleep(this.#retryMs * (1 + Math.random() * 0.2), signal);
      }
      if (signal.aborted) return;
      this.#leading = true;
      void Promise.resolve()
        .then(() => cb.onStartedLeading(leadAbort.signal))
        .catch((error: unknown) => {
          workError = { error };
          abort.abort();
        });
      while (!signal.aborted) {
        await sleep(this.#retryMs, signal);
        if (signal.aborted) break;
        const result = await this.#tryAcquireOrRenew(cb, signal);
        if (result === 'held-by-other') break;
        if (result === 'failed' && performance.now() - this.#lastRenewStart >= this.#renewDeadlineMs) break;
      }
    } finally {
      if (this.#leading) {
        this.#leading = false;
        leadAbort.abort();
        cb.onStoppedLeading();
      }
    }
    if (workError) {
      await this.#writeRelease();
      throw workError.error;
    }
  }

  async #tryAcquireOrRenew(cb: LeaderCallbacks, signal: AbortSignal): Promise<Attempt> {
    const start = performance.now();
    const now = microTime(new Date());
    const call = { signal, timeoutMs: this.#renewDeadlineMs };
    const durationSeconds = Math.ceil(this.#leaseMs / 1000);
    let lease = this.#leading ? this.#lease : undefined;
    try {
      if (!lease) {
        try {
          lease = await this.#client.get<Lease>(this.#path, call);
        } catch (e) {
          if (!(e instanceof KubeApiError && e.code === KubeErrorCode.NotFound)) throw e;
          const created = await this.#client.create<Lease>(
            `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.#namespace)}/leases`,
            {
              apiVersion: 'coordination.k8s.io/v1',
              kind: 'Lease',
              metadata: { name: this.#name, namespace: this.#namespace },
              spec: { holderIdentity: this.#identity, leaseDurationSeconds: durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
            },
            call,
          );
          this.#took(created, start, cb);
          return 'acquired';
        }
        this.#observe(lease, cb);
        const holder = lease.spec.holderIdentity ?? '';
        const leaseMs = (lease.spec.leaseDurationSeconds ?? durationSeconds) * 1000;
        if (holder !== '' && holder !== this.#identity && this.#observedAt + leaseMs > performance.now()) return 'held-by-other';
      }
      const mine = lease.spec.holderIdentity === this.#identity;
      const next: Lease = {
        ...lease,
        spec: mine
          ? { ...lease.spec, leaseDurationSeconds: durationSeconds, renewTime: now }
          : {
              holderIdentity: this.#identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: (lease.spec.leaseTransitions ?? 0) + 1,
            },
      };
      const written = await this.#client.replace<Lease>(this.#path, next, call);
      this.#took(written, start, cb);
      return 'acquired';
    } catch {
      // A conflict (someone else wrote first), a timeout or an outage: the next attempt
      // reads the Lease again rather than trusting a copy.
      this.#lease = undefined;
      return 'failed';
    }
  }

  #took(lease: Lease, start: number, cb: LeaderCallbacks): void {
    this.#lease = lease;
    this.#lastRenewStart = start;
    this.#observe(lease, cb);
  }

  #observe(lease: Lease, cb: LeaderCallbacks): void {
    const s = lease.spec;
    const key = JSON.stringify([s.holderIdentity ?? '', s.renewTime ?? '', s.acquireTime ?? '', s.leaseDurationSeconds ?? 0, s.leaseTransitions ?? 0]);
    if (key !== this.#observedKey) {
      this.#observedKey = key;
      this.#observedAt = performance.now();
    }
    const holder = s.holderIdentity ?? '';
    if (holder !== '' && holder !== this.#observedHolder) {
      this.#observedHolder = holder;
      try {
        cb.onNewLeader?.(holder);
      } catch {
        // A throwing observer must not break the election.
      }
    }
  }

  /** Clears holderIdentity if this replica still holds the Lease; bounded retries on conflicts. */
  async #writeRelease(): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const lease = this.#lease ?? (await this.#client.get<Lease>(this.#path, { timeoutMs: this.#renewDeadlineMs }));
        if (lease.spec.holderIdentity !== this.#identity) return;
        const now = microTime(new Date());
        await this.#client.replace<Lease>(this.#path, { ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: now } }, { timeoutMs: this.#renewDeadlineMs });
        this.#lease = undefined;
        return;
      } catch (e) {
        this.#lease = undefined;
        if (!(e instanceof KubeApiError && e.code === KubeErrorCode.Conflict)) return;
      }
    }
  }
}
