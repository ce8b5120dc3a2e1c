// A cache of one collection kept current by list + watch, as client-go's reflector and
// informer do: it resumes after disconnects, relists after 410 Gone and turns the
// difference into events, and backs off while the API server is away. It also knows how
// fresh it is: a watch that hears nothing (no event, no bookmark) for longer than the
// server's bookmark period plus a slack is taken for dead and restarted, and the informer
// reports itself stale until it hears from the server again.
import type { KubeClient, WatchEvent } from './client.ts';
import { KubeApiError, KubeErrorCode, type KubeStatus, codeForStatus } from './errors.ts';
import { deepFreeze } from './freeze.ts';

/** The least an object needs to be cached: a name, maybe a namespace, a resourceVersion. */
export interface KubeObject {
  readonly metadata: { readonly name: string; readonly namespace?: string | undefined; readonly resourceVersion?: string | undefined };
}

/** Exponential backoff bounds. */
export interface BackoffOptions {
  /** First delay after a failure (default 500 ms). */
  readonly initialMs: number;
  /** Longest delay (default 30000 ms). */
  readonly maxMs: number;
}

/**
 * How often the API server sends a BOOKMARK on a watch that asked for them and has no
 * other traffic: "roughly every minute" (the watch cache's bookmark frequency, plus a
 * last one 2 s before the watch's timeoutSeconds ends it).
 */
export const BOOKMARK_PERIOD_MS = 60_000;

/**
 * What a bookmark may be late by on a healthy watch: the watch cache dispatches bookmarks
 * on a one-second tick and after the events queued before them, the informer restarts a
 * watch that ended (a few ms to a few s under load), and the process's own timers can run
 * late.
 */
export const BOOKMARK_SLACK_MS = 30_000;

/**
 * The default liveness bound of a watch, `BOOKMARK_PERIOD_MS + BOOKMARK_SLACK_MS` = 90 s.
 *
 * A healthy watch with bookmarks is never silent for longer than one bookmark period
 * (60 s) plus the time it may be late (30 s), so silence past that bound means the
 * connection is dead even though it did not close (a NAT or conntrack entry lost, a
 * blackholed route, a frozen proxy): the watch is then aborted and started again from the
 * last resourceVersion (a 410 relists, as for any resume). The bound is far below the
 * watch's own timeoutSeconds (300-600 s), so a dead watch is noticed about 3 to 7 times
 * sooner than by the server ending it, and at least 1.5 bookmark periods above the
 * longest normal silence, so a quiet but healthy collection is never restarted. Worst
 * case, a watch that died right after the last thing it heard is restarted
 * `idleTimeoutMs` (90 s) later; one whose path is still dead then fails within the
 * client's `timeoutMs` (the wait for the response headers) and is retried with backoff.
 */
export const WATCH_IDLE_TIMEOUT_MS = BOOKMARK_PERIOD_MS + BOOKMARK_SLACK_MS;

/**
 * The clock the freshness checks use (default: `performance.now()` and `setTimeout`).
 * Same shape as @purelb/election's Scheduler, so one fake clock can drive both in tests.
 */
export interface InformerClock {
  /** Monotonic time in ms. */
  now(): number;
  /** Calls `fn` at time `at` (same clock as `now`); returns a handle for `cancel`. */
  at(at: number, fn: () => void): unknown;
  cancel(handle: unknown): void;
}

const realClock: InformerClock = {
  now: () => performance.now(),
  at(at, fn) {
    const timer = setTimeout(fn, Math.max(0, at - performance.now()));
    // Never keeps the process alive by itself: the watch's socket does that.
    timer.unref();
    return timer;
  },
  cancel: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Options of an Informer. */
export interface InformerOptions<T> {
  /** Collection path, e.g. `/api/v1/services` or `/apis/purelb.io/v1/namespaces/purelb/servicegroups`. */
  readonly path: string;
  /**
   * Turns a raw object into what is stored (default: {@link stripManagedFields}). Runs
   * once per object received, before freezing.
   */
  readonly transform?: ((raw: unknown) => T) | undefined;
  /** Deep-freeze stored objects so no handler can change the cache (default true). */
  readonly freeze?: boolean | undefined;
  readonly labelSelector?: string | undefined;
  readonly fieldSelector?: string | undefined;
  /** Delays between retries while lists or watches fail (with jitter: each delay is 50-100% of the bound). */
  readonly backoff?: BackoffOptions | undefined;
  /** Every resyncMs, `update(obj, obj)` for every cached object (default 0: never). Lets a controller retry work whose cause cannot be watched. */
  readonly resyncMs?: number | undefined;
  /**
   * How long each watch lasts before the server ends it and the informer starts the next
   * from where it was (default: random in 300-600 s, so many informers do not reconnect together).
   */
  readonly watchTimeoutSeconds?: number | undefined;
  /** Page size of lists (default 500). */
  readonly pageSize?: number | undefined;
  /**
   * Silence (no event, no bookmark, no list) after which a watch is taken for dead and
   * restarted, and the informer turns stale (default {@link WATCH_IDLE_TIMEOUT_MS}, 90 s).
   * Below the server's bookmark period (60 s) a quiet collection would be restarted for
   * nothing: go lower only for a collection that changes more often than the bound (or in
   * tests). 0 turns the check off.
   */
  readonly idleTimeoutMs?: number | undefined;
  /** The clock of the freshness checks (tests pass a fake one). */
  readonly clock?: InformerClock | undefined;
}

/** Handlers by event name. */
export interface InformerHandlers<T> {
  add: (obj: T) => void;
  update: (obj: T, old: T) => void;
  delete: (obj: T) => void;
  /**
   * A list or watch failed (the informer retries by itself), a watch was silent past the
   * idle bound and is restarted (code K8S_TIMEOUT), or a handler threw.
   */
  error: (e: unknown) => void;
  /** Nothing was heard from the server for longer than the idle bound: the cache may be out of date. `silentMs`: how long. */
  stale: (silentMs: number) => void;
  /** The server was heard again after a stale period. `gapMs`: how long nothing was heard. */
  fresh: (gapMs: number) => void;
}

/** `namespace/name`, or `name` for cluster-scoped objects: the key of get(). */
export function objectKey(obj: KubeObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

/** The default transform: drops metadata.managedFields, which no controller reads and which often is half an object's size. */
export function stripManagedFields<T>(raw: unknown): T {
  const obj = raw as { metadata?: { managedFields?: unknown } };
  if (obj?.metadata && 'managedFields' in obj.metadata) delete obj.metadata.managedFields;
  return raw as T;
}

/** A delay for the `failures`-th consecutive failure: exponential, bounded, jittered to 50-100%. */
export function backoffDelay(failures: number, b: BackoffOptions, random: () => number = Math.random): number {
  const bound = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return Math.round(bound * (0.5 + random() * 0.5));
}

/**
 * A watched cache of one collection. Start it, wait for synced(), then read with get() and
 * list() and react in handlers. Objects handed out are frozen (unless `freeze: false`):
 * copy before changing.
 */
export class Informer<T extends KubeObject> {
  readonly #client: KubeClient;
  readonly #path: string;
  readonly #transform: (raw: unknown) => T;
  readonly #freeze: boolean;
  readonly #labelSelector: string | undefined;
  readonly #fieldSelector: string | undefined;
  readonly #backoff: BackoffOptions;
  readonly #resyncMs: number;
  readonly #watchTimeout: number | undefined;
  readonly #pageSize: number | undefined;
  readonly #idleMs: number;
  readonly #clock: InformerClock;
  #store = new Map<string, T>();
  #rv = '';
  #handlers: { [K in keyof InformerHandlers<T>]: InformerHandlers<T>[K][] } = { add: [], update: [], delete: [], error: [], stale: [], fresh: [] };
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;
  #resyncTimer: NodeJS.Timeout | undefined;
  #synced = false;
  #syncedPromise: Promise<void>;
  #resolveSynced!: () => void;
  #rejectSynced!: (e: unknown) => void;
  /** Clock time of the last list, event, bookmark or clean end of a watch. */
  #lastHeardAt: number | undefined;
  /** True from the 'stale' event until the next thing heard. */
  #stale = false;
  /** The open watch: when it started, and how to end it when it is silent too long. */
  #current: { readonly startedAt: number; readonly abort: AbortController; idle: boolean } | undefined;
  #timer: unknown;
  #timerAt = Infinity;

  constructor(client: KubeClient, opts: InformerOptions<T>) {
    this.#client = client;
    this.#path = opts.path;
    this.#transform = opts.transform ?? stripManagedFields<T>;
    this.#freeze = opts.freeze ?? true;
    this.#labelSelector = opts.labelSelector;
    this.#fieldSelector = opts.fieldSelector;
    this.#backoff = opts.backoff ?? { initialMs: 500, maxMs: 30_000 };
    this.#resyncMs = opts.resyncMs ?? 0;
    this.#watchTimeout = opts.watchTimeoutSeconds;
    this.#pageSize = opts.pageSize;
    this.#idleMs = opts.idleTimeoutMs ?? WATCH_IDLE_TIMEOUT_MS;
    this.#clock = opts.clock ?? realClock;
    this.#syncedPromise = new Promise<void>((resolve, reject) => {
      this.#resolveSynced = resolve;
      this.#rejectSynced = reject;
    });
    // Nobody may be waiting when stop() rejects it; that must not be an unhandled rejection.
    this.#syncedPromise.catch(() => undefined);
  }

  /** The resourceVersion of the last list, watch event or bookmark seen ('' before the first list). */
  get lastSyncResourceVersion(): string {
    return this.#rv;
  }

  /** True once the first full list is stored. */
  get hasSynced(): boolean {
    return this.#synced;
  }

  /**
   * When the informer last heard from the server (clock ms: `performance.now()` unless a
   * clock was given): the end of a list, an event, a bookmark, or a watch the server ended
   * cleanly. Undefined before the first list.
   */
  get lastHeardAt(): number | undefined {
    return this.#lastHeardAt;
  }

  /** The idle bound in ms (0: no liveness check). */
  get idleTimeoutMs(): number {
    return this.#idleMs;
  }

  /**
   * True when the cache is known to be current: the first list is stored and something was
   * heard from the server less than the idle bound ago. False before the first list, while
   * the API server is away, and while a watch is silent past the bound (until the restarted
   * watch or a relist hears something). Computed when read, so it is right even when a
   * timer runs late. Always true after the first list when the idle check is off.
   */
  get healthy(): boolean {
    if (!this.#synced || this.#lastHeardAt === undefined) return false;
    return this.#idleMs <= 0 || this.#clock.now() - this.#lastHeardAt < this.#idleMs;
  }

  /**
   * How long the informer has been stale: the time since it last heard from the server
   * minus the idle bound. 0 while healthy (and at the instant it turns stale), Infinity
   * before the first list.
   */
  staleForMs(): number {
    if (!this.#synced || this.#lastHeardAt === undefined) return Infinity;
    if (this.#idleMs <= 0) return 0;
    return Math.max(0, this.#clock.now() - this.#lastHeardAt - this.#idleMs);
  }

  /** Adds a handler. Handlers run synchronously, in the order events happen; a throw goes to 'error' handlers. */
  on<E extends keyof InformerHandlers<T>>(event: E, handler: InformerHandlers<T>[E]): this {
    (this.#handlers[event] as InformerHandlers<T>[E][]).push(handler);
    return this;
  }

  /** Removes a handler added with on(). */
  off<E extends keyof InformerHandlers<T>>(event: E, handler: InformerHandlers<T>[E]): this {
    const list = this.#handlers[event] as InformerHandlers<T>[E][];
    const i = list.indexOf(handler);
    if (i >= 0) list.splice(i, 1);
    return this;
  }

  /** The cached object with key `namespace/name` (or `name` when cluster-scoped). */
  get(key: string): T | undefined {
    return this.#store.get(key);
  }

  /** Every cached object. */
  list(): T[] {
    return [...this.#store.values()];
  }

  /** Number of cached objects. */
  get size(): number {
    return this.#store.size;
  }

  /** Starts listing and watching in the background. Calling it twice does nothing. */
  start(): void {
    if (this.#abort) return;
    this.#abort = new AbortController();
    this.#loop = this.#run(this.#abort.signal);
    if (this.#resyncMs > 0) {
      this.#resyncTimer = setInterval(() => {
        if (!this.#synced) return;
        for (const obj of this.#store.values()) this.#emit('update', obj, obj);
      }, this.#resyncMs);
    }
  }

  /** Stops watching and waits until the background work has ended. The cache stays readable. */
  async stop(): Promise<void> {
    if (!this.#abort) return;
    this.#abort.abort();
    clearInterval(this.#resyncTimer);
    this.#disarm();
    await this.#loop;
    this.#disarm();
    if (!this.#synced) this.#rejectSynced(new KubeApiError(KubeErrorCode.Aborted, 'GET', this.#path, 0, '', 'the informer was stopped before its first list'));
  }

  /** Resolves once the first full list is stored and its 'add' events are delivered. */
  synced(): Promise<void> {
    return this.#syncedPromise;
  }

  async #run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) {
          await this.#relist(signal);
          needList = false;
          failures = 0;
        }
        const started = performance.now();
        const { progressed, idle } = await this.#watch(signal);
        if (progressed || idle) failures = 0;
        // A watch the server ends at once, again and again, would spin without this.
        else if (performance.now() - started < 1000) await sleep(backoffDelay(++failures, this.#backoff), signal);
      } catch (e) {
        if (signal.aborted) break;
        if (e instanceof KubeApiError && e.code === KubeErrorCode.Gone) {
          needList = true;
          // The first Gone is routine (history compacted); a relist at once is the cure.
          if (failures++ === 0) continue;
        } else {
          failures++;
          this.#emit('error', e);
        }
        await sleep(backoffDelay(failures, this.#backoff), signal);
      }
    }
  }

  async #relist(signal: AbortSignal): Promise<void> {
    // Each item is trimmed (transform) as its page arrives: the raw pages are never all held.
    const list = await this.#client.listMapped<Record<string, unknown>, T>(
      this.#path,
      (raw, l) => {
        // List items come without kind and apiVersion, watch objects with them; fill them
        // in so handlers see the same shape either way.
        if (l.kind && raw.kind === undefined) raw.kind = l.kind;
        if (l.apiVersion && raw.apiVersion === undefined) raw.apiVersion = l.apiVersion;
        return this.#prepare(raw);
      },
      { labelSelector: this.#labelSelector, fieldSelector: this.#fieldSelector, pageSize: this.#pageSize, signal },
    );
    if (signal.aborted) return;
    const fresh = new Map<string, T>();
    for (const obj of list.items) fresh.set(objectKey(obj), obj);
    const old = this.#store;
    // Unchanged objects keep their identity: a handler's `old` is always the object it was
    // last given.
    for (const [key, obj] of fresh) {
      const prev = old.get(key);
      if (prev && prev.metadata.resourceVersion === obj.metadata.resourceVersion) fresh.set(key, prev);
    }
    this.#store = fresh;
    this.#rv = list.metadata.resourceVersion;
    this.#heard();
    for (const [key, obj] of fresh) {
      const prev = old.get(key);
      if (!prev) this.#emit('add', obj);
      else if (prev !== obj) this.#emit('update', obj, prev);
    }
    for (const [key, prev] of old) if (!fresh.has(key)) this.#emit('delete', prev);
    if (!this.#synced) {
      this.#synced = true;
      this.#resolveSynced();
    }
  }

  /**
   * One watch until the server ends it, or until it is silent past the idle bound (then
   * `idle`). `progressed` when at least one event arrived.
   */
  async #watch(signal: AbortSignal): Promise<{ progressed: boolean; idle: boolean }> {
    let progressed = false;
    const abort = new AbortController();
    const onAbort = (): void => abort.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const current = { startedAt: this.#clock.now(), abort, idle: false };
    this.#current = current;
    this.#arm();
    try {
      const events = this.#client.watch<Record<string, unknown>>(this.#path, {
        resourceVersion: this.#rv,
        allowWatchBookmarks: true,
        timeoutSeconds: this.#watchTimeout ?? 300 + Math.floor(Math.random() * 300),
        labelSelector: this.#labelSelector,
        fieldSelector: this.#fieldSelector,
        signal: abort.signal,
      });
      for await (const event of events) {
        progressed = true;
        this.#heard();
        this.#apply(event);
      }
      // The server ended the stream in order: everything up to here was delivered.
      if (!abort.signal.aborted) this.#heard();
    } catch (e) {
      // Aborting for silence may surface as a transport error on some paths.
      if (!current.idle) throw e;
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (this.#current === current) this.#current = undefined;
    }
    if (current.idle && !signal.aborted) {
      this.#emit('error', new KubeApiError(KubeErrorCode.Timeout, 'WATCH', this.#path, 0, '', `nothing heard for ${Math.round(this.#clock.now() - this.#silentSince(current))} ms (bound ${this.#idleMs} ms): the connection is taken for dead; resuming from resourceVersion ${this.#rv}`));
    }
    return { progressed, idle: current.idle };
  }

  /** Since when the open watch has been silent: its start, or the last thing heard after it. */
  #silentSince(w: { readonly startedAt: number }): number {
    return Math.max(w.startedAt, this.#lastHeardAt ?? -Infinity);
  }

  /** Something came from the server: the cache is current as of now. */
  #heard(): void {
    const now = this.#clock.now();
    const gap = this.#lastHeardAt === undefined ? 0 : now - this.#lastHeardAt;
    this.#lastHeardAt = now;
    if (this.#stale) {
      this.#stale = false;
      this.#emit('fresh', gap);
    }
    // The timer is moved lazily: when it fires early it re-arms at the new deadline.
    if (this.#timer === undefined) this.#arm();
  }

  /** The next moment something may turn stale or a watch may be idle. */
  #deadline(): number {
    if (this.#idleMs <= 0 || !this.#abort || this.#abort.signal.aborted) return Infinity;
    let at = Infinity;
    if (this.#synced && !this.#stale && this.#lastHeardAt !== undefined) at = this.#lastHeardAt + this.#idleMs;
    if (this.#current && !this.#current.idle) at = Math.min(at, this.#silentSince(this.#current) + this.#idleMs);
    return at;
  }

  #arm(): void {
    const at = this.#deadline();
    if (at === this.#timerAt && this.#timer !== undefined) return;
    this.#disarm();
    if (at === Infinity) return;
    this.#timerAt = at;
    this.#timer = this.#clock.at(at, () => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#check();
    });
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.cancel(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** Runs at a deadline: turns stale, ends a silent watch, re-arms for the next deadline. */
  #check(): void {
    if (this.#idleMs <= 0 || !this.#abort || this.#abort.signal.aborted) return;
    const now = this.#clock.now();
    if (this.#synced && !this.#stale && this.#lastHeardAt !== undefined && now - this.#lastHeardAt >= this.#idleMs) {
      this.#stale = true;
      this.#emit('stale', now - this.#lastHeardAt);
    }
    const w = this.#current;
    if (w && !w.idle && now - this.#silentSince(w) >= this.#idleMs) {
      w.idle = true;
      w.abort.abort();
    }
    this.#arm();
  }

  #apply(event: WatchEvent<Record<string, unknown>>): void {
    switch (event.type) {
      case 'ADDED':
      case 'MODIFIED': {
        const obj = this.#prepare(event.object);
        const key = objectKey(obj);
        const prev = this.#store.get(key);
        this.#store.set(key, obj);
        this.#advance(obj);
        if (!prev) this.#emit('add', obj);
        else if (prev.metadata.resourceVersion !== obj.metadata.resourceVersion) this.#emit('update', obj, prev);
        return;
      }
      case 'DELETED': {
        const obj = this.#prepare(event.object);
        const key = objectKey(obj);
        const had = this.#store.delete(key);
        this.#advance(obj);
        if (had) this.#emit('delete', obj);
        return;
      }
      case 'BOOKMARK': {
        const rv = (event.object as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
        if (rv) this.#rv = rv;
        return;
      }
      case 'ERROR': {
        const status = event.object as KubeStatus;
        const code = status.code ?? 500;
        throw new KubeApiError(codeForStatus(code, status.reason ?? ''), 'WATCH', this.#path, code, status.reason ?? '', status.message ?? 'watch error event');
      }
      default:
        throw new KubeApiError(KubeErrorCode.BadResponse, 'WATCH', this.#path, 200, '', `unknown watch event type ${String((event as { type: unknown }).type)}`);
    }
  }

  #advance(obj: T): void {
    const rv = obj.metadata.resourceVersion;
    if (rv) this.#rv = rv;
  }

  #prepare(raw: unknown): T {
    const obj = this.#transform(raw);
    return this.#freeze ? deepFreeze(obj) : obj;
  }

  #emit<E extends keyof InformerHandlers<T>>(event: E, ...args: Parameters<InformerHandlers<T>[E]>): void {
    for (const h of this.#handlers[event]) {
      try {
        (h as (...a: unknown[]) => void)(...args);
      } catch (e) {
        if (event === 'error') continue;
        this.#emit('error', e);
      }
    }
  }
}

/** Resolves after `ms`, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
