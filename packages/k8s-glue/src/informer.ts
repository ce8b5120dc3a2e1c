// A cache of one collection kept current by list + watch, as client-go's reflector and
// informer do: it resumes after disconnects, relists after 410 Gone and turns the
// difference into events, and backs off while the API server is away.
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
}

/** Handlers by event name. */
export interface InformerHandlers<T> {
  add: (obj: T) => void;
  update: (obj: T, old: T) => void;
  delete: (obj: T) => void;
  /** A list or watch failed (the informer retries by itself) or a handler threw. */
  error: (e: unknown) => void;
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
  #store = new Map<string, T>();
  #rv = '';
  #handlers: { [K in keyof InformerHandlers<T>]: InformerHandlers<T>[K][] } = { add: [], update: [], delete: [], error: [] };
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;
  #resyncTimer: NodeJS.Timeout | undefined;
  #synced = false;
  #syncedPromise: Promise<void>;
  #resolveSynced!: () => void;
  #rejectSynced!: (e: unknown) => void;

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
    await this.#loop;
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
        const progressed = await this.#watch(signal);
        if (progressed) failures = 0;
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

  /** One watch until the server ends it. True when at least one event arrived. */
  async #watch(signal: AbortSignal): Promise<boolean> {
    let progressed = false;
    const events = this.#client.watch<Record<string, unknown>>(this.#path, {
      resourceVersion: this.#rv,
      allowWatchBookmarks: true,
      timeoutSeconds: this.#watchTimeout ?? 300 + Math.floor(Math.random() * 300),
      labelSelector: this.#labelSelector,
      fieldSelector: this.#fieldSelector,
      signal,
    });
    for await (const event of events) {
      progressed = true;
      this.#apply(event);
    }
    return progressed;
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
