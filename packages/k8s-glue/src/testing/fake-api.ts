// An in-memory API server behind the KubeClient interface, for unit tests of code that
// lists, watches and writes: objects in maps, one resourceVersion counter as etcd has,
// a bounded event history for watches, and switches to inject failures, disconnects and
// 410 Gone.
import { KubeClient, type RequestOptions, type WatchEvent, type WatchOptions } from '../client.ts';
import { KubeApiError, KubeErrorCode, type KubeStatus, codeForStatus } from '../errors.ts';

type Obj = { apiVersion?: string; kind?: string; metadata: Record<string, unknown> & { name?: string | undefined; namespace?: string | undefined; resourceVersion?: string | undefined }; [k: string]: unknown };

interface Parsed {
  /** `api/v1/services`: the resource type, whatever namespace. */
  readonly resource: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
  readonly query: URLSearchParams;
}

interface HistoryEntry {
  readonly rv: number;
  readonly resource: string;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: Obj;
}

interface Watcher {
  readonly resource: string;
  readonly namespace: string | undefined;
  readonly matches: (o: Obj) => boolean;
  readonly bookmarks: boolean;
  push(e: WatchEvent<unknown>): void;
  end(error?: KubeApiError): void;
  /** Drops everything from now on, the end included: a connection that died without closing. */
  silence(): void;
}

interface Fault {
  readonly method: string | undefined;
  readonly path: RegExp | string | undefined;
  readonly error: KubeApiError | ((method: string, path: string) => KubeApiError);
  times: number;
}

/** A request the fake received. */
export interface FakeCall {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
}

/** Options of a FakeKubeClient. */
export interface FakeKubeClientOptions {
  /** Watch events kept for resuming watches (default 1000); older versions get 410. */
  readonly historyLimit?: number | undefined;
}

function parsePath(path: string): Parsed {
  const url = new URL(path, 'http://fake.invalid');
  const segs = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const prefixLen = segs[0] === 'api' ? 2 : segs[0] === 'apis' ? 3 : -1;
  if (prefixLen < 0 || segs.length <= prefixLen) throw new KubeApiError(KubeErrorCode.NotFound, 'GET', path, 404, 'NotFound', 'the fake serves only /api/... and /apis/... paths');
  let rest = segs.slice(prefixLen);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  return { resource: [...segs.slice(0, prefixLen), rest[0]].join('/'), namespace, name: rest[1], subresource: rest[2], query: url.searchParams };
}

function labelMatcher(selector: string | null | undefined): (o: Obj) => boolean {
  if (!selector) return () => true;
  const terms = selector.split(',').map((t) => t.trim()).filter(Boolean);
  return (o) => {
    const labels = (o.metadata.labels ?? {}) as Record<string, string>;
    return terms.every((t) => {
      let m: RegExpExecArray | null;
      if ((m = /^(.+?)\s*!=\s*(.*)$/.exec(t))) return labels[m[1]!] !== m[2];
      if ((m = /^(.+?)\s*==?\s*(.*)$/.exec(t))) return labels[m[1]!] === m[2];
      if (t.startsWith('!')) return !(t.slice(1) in labels);
      return t in labels;
    });
  };
}

function fieldMatcher(selector: string | null | undefined): (o: Obj) => boolean {
  if (!selector) return () => true;
  const terms = selector.split(',').map((t) => /^(.+?)(!=|==|=)(.*)$/.exec(t.trim())).filter((m) => m !== null);
  return (o) =>
    terms.every(([, field, op, value]) => {
      const got = field === 'metadata.name' ? o.metadata.name : field === 'metadata.namespace' ? o.metadata.namespace : undefined;
      return op === '!=' ? got !== value : got === value;
    });
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** The server drops null fields of a written object (they are Go zero values). */
function dropNulls<T>(v: T): T {
  if (Array.isArray(v)) return v.map(dropNulls) as T;
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = dropNulls(x);
  return out as T;
}

function status(code: number, reason: string, message: string): KubeStatus {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message };
}

/**
 * A KubeClient that answers from memory. Supports GET (one object or a list, with label
 * and metadata.name/namespace field selectors), POST, PUT (conditional on
 * resourceVersion), merge PATCH, DELETE and watch (resuming from a resourceVersion,
 * bookmarks on request). JSON patch and server-side apply answer 415.
 */
export class FakeKubeClient extends KubeClient {
  readonly #store = new Map<string, Map<string, Obj>>();
  readonly #history: HistoryEntry[] = [];
  readonly #historyLimit: number;
  readonly #watchers = new Set<Watcher>();
  readonly #faults: Fault[] = [];
  readonly #counts = new Map<string, number>();
  #rv = 1;
  /** Watches from a version below this get 410. */
  #oldestRv = 1;
  #uid = 0;
  /** New watches start silent (see dropWatches). */
  #dropNew = false;
  /** Every request received, in order (watches as method WATCH). */
  readonly calls: FakeCall[] = [];

  constructor(opts: FakeKubeClientOptions = {}) {
    super({ server: 'https://fake.invalid' });
    this.#historyLimit = opts.historyLimit ?? 1000;
  }

  /** The current resourceVersion. */
  get resourceVersion(): string {
    return String(this.#rv);
  }

  /** Watches open now. */
  get openWatches(): number {
    return this.#watchers.size;
  }

  override requestCounts(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }

  /**
   * The next `times` requests matching `method` (WATCH for watches) and `path` (a
   * substring or a RegExp) fail with `error` (a KubeApiError, or an HTTP status).
   */
  failNext(error: KubeApiError | number, match: { method?: string; path?: string | RegExp; times?: number } = {}): void {
    const make =
      typeof error === 'number'
        ? (method: string, path: string): KubeApiError => new KubeApiError(codeForStatus(error, ''), method, path, error, '', 'injected by the fake', status(error, '', 'injected by the fake'))
        : error;
    this.#faults.push({ method: match.method, path: match.path, error: make, times: match.times ?? 1 });
  }

  /** Ends every open watch: cleanly (as the server does after timeoutSeconds) or with a connection error. */
  disconnectWatches(mode: 'clean' | 'error' = 'clean'): void {
    for (const w of [...this.#watchers]) w.end(mode === 'error' ? new KubeApiError(KubeErrorCode.Unavailable, 'GET', w.resource, 0, '', 'connection reset (injected by the fake)') : undefined);
  }

  /**
   * Every open watch goes silent: its stream stays open but nothing arrives any more (no
   * event, no bookmark, no end), as when the connection died without a FIN or RST. Only
   * the watcher aborting ends it. With `alsoNew`, watches opened later are silent from the
   * start too (the path stays dead) until restoreWatches().
   */
  dropWatches(opts: { alsoNew?: boolean } = {}): void {
    for (const w of this.#watchers) w.silence();
    if (opts.alsoNew) this.#dropNew = true;
  }

  /** New watches work again after dropWatches({ alsoNew: true }). Silenced ones stay silent. */
  restoreWatches(): void {
    this.#dropNew = false;
  }

  /** Forgets the history: watches that resume from an older version than now get 410 Gone. */
  compact(): void {
    this.#history.length = 0;
    this.#oldestRv = this.#rv;
  }

  /** Sends an ERROR event with code 410 to every open watch and ends them, as a server whose watch cache fell behind does. */
  expireWatches(): void {
    for (const w of [...this.#watchers]) {
      w.push({ type: 'ERROR', object: status(410, 'Expired', 'too old resource version (injected by the fake)') });
      w.end();
    }
  }

  /** Sends a BOOKMARK with the current resourceVersion to every watch that asked for bookmarks. */
  bookmark(): void {
    for (const w of this.#watchers) if (w.bookmarks) w.push({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(this.#rv) } } });
  }

  /** A copy of every stored object of the collection `path` (all namespaces if the path names none). */
  objects<T = Obj>(path: string): T[] {
    const p = parsePath(path);
    return [...(this.#store.get(p.resource)?.values() ?? [])].filter((o) => p.namespace === undefined || o.metadata.namespace === p.namespace).map((o) => structuredClone(o) as T);
  }

  override request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    this.#counts.set(method, (this.#counts.get(method) ?? 0) + 1);
    const body = typeof opts.body === 'string' ? (JSON.parse(opts.body) as unknown) : opts.body;
    this.calls.push({ method, path, body: structuredClone(body) });
    try {
      if (opts.signal?.aborted) throw new KubeApiError(KubeErrorCode.Aborted, method, path, 0, '', 'aborted by the caller');
      this.#fault(method, path);
      return Promise.resolve(structuredClone(this.#handle(method, path, body, opts.contentType)) as T);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  override async *watch<T = unknown>(path: string, opts: WatchOptions = {}): AsyncGenerator<WatchEvent<T>, void, undefined> {
    this.#counts.set('WATCH', (this.#counts.get('WATCH') ?? 0) + 1);
    this.calls.push({ method: 'WATCH', path, body: { resourceVersion: opts.resourceVersion } });
    this.#fault('WATCH', path);
    const p = parsePath(path);
    const labels = labelMatcher(opts.labelSelector);
    const fields = fieldMatcher(opts.fieldSelector);
    const matches = (o: Obj): boolean => (p.namespace === undefined || o.metadata.namespace === p.namespace) && labels(o) && fields(o);
    const queue: WatchEvent<unknown>[] = [];
    const from = opts.resourceVersion ? Number(opts.resourceVersion) : undefined;
    if (from !== undefined && from < this.#oldestRv) {
      yield { type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${this.#oldestRv})`) as T };
      return;
    }
    if (from === undefined) {
      for (const o of this.#store.get(p.resource)?.values() ?? []) if (matches(o)) queue.push({ type: 'ADDED', object: structuredClone(o) });
    } else {
      for (const h of this.#history) if (h.rv > from && h.resource === p.resource && matches(h.object)) queue.push({ type: h.type, object: structuredClone(h.object) });
    }
    let wake: (() => void) | undefined;
    let ended: { error: KubeApiError | undefined } | undefined;
    let silent = false;
    const watcher: Watcher = {
      resource: p.resource,
      namespace: p.namespace,
      matches,
      bookmarks: opts.allowWatchBookmarks === true,
      push: (e) => {
        if (ended || silent) return;
        queue.push(e);
        wake?.();
      },
      end: (error) => {
        if (silent) return;
        ended ??= { error };
        wake?.();
      },
      silence: () => {
        silent = true;
        queue.length = 0;
      },
    };
    if (this.#dropNew) watcher.silence();
    this.#watchers.add(watcher);
    const onAbort = (): void => wake?.();
    opts.signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        if (opts.signal?.aborted) return;
        const next = queue.shift();
        if (next) {
          yield next as WatchEvent<T>;
          continue;
        }
        if (ended) {
          if (ended.error) throw ended.error;
          return;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      this.#watchers.delete(watcher);
    }
  }

  #fault(method: string, path: string): void {
    const i = this.#faults.findIndex((f) => (f.method === undefined || f.method === method) && (f.path === undefined || (typeof f.path === 'string' ? path.includes(f.path) : f.path.test(path))));
    if (i < 0) return;
    const f = this.#faults[i]!;
    if (--f.times <= 0) this.#faults.splice(i, 1);
    throw typeof f.error === 'function' ? f.error(method, path) : f.error;
  }

  #handle(method: string, path: string, body: unknown, contentType: string | undefined): unknown {
    const p = parsePath(path);
    const coll = this.#store.get(p.resource) ?? new Map<string, Obj>();
    this.#store.set(p.resource, coll);
    const key = (ns: string | undefined, name: string): string => `${ns ?? ''}/${name}`;
    const notFound = (): KubeApiError => new KubeApiError(KubeErrorCode.NotFound, method, path, 404, 'NotFound', `${p.resource.split('/').pop()} "${p.name}" not found`, status(404, 'NotFound', 'not found'));
    switch (method) {
      case 'GET': {
        if (p.name !== undefined) {
          const o = coll.get(key(p.namespace, p.name));
          if (!o) throw notFound();
          return o;
        }
        const labels = labelMatcher(p.query.get('labelSelector'));
        const fields = fieldMatcher(p.query.get('fieldSelector'));
        const items = [...coll.values()].filter((o) => (p.namespace === undefined || o.metadata.namespace === p.namespace) && labels(o) && fields(o));
        return { kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: String(this.#rv) }, items };
      }
      case 'POST': {
        const o = dropNulls(structuredClone(body)) as Obj;
        if (!o?.metadata) throw new KubeApiError(KubeErrorCode.Invalid, method, path, 422, 'Invalid', 'metadata is required');
        if (!o.metadata.name && typeof o.metadata.generateName === 'string') o.metadata.name = `${o.metadata.generateName}${(++this.#uid).toString(36)}`;
        if (!o.metadata.name) throw new KubeApiError(KubeErrorCode.Invalid, method, path, 422, 'Invalid', 'metadata.name: Required value');
        if (p.namespace !== undefined) o.metadata.namespace = p.namespace;
        const k = key(o.metadata.namespace, o.metadata.name);
        if (coll.has(k)) throw new KubeApiError(KubeErrorCode.AlreadyExists, method, path, 409, 'AlreadyExists', `"${o.metadata.name}" already exists`);
        o.metadata.uid = `fake-uid-${++this.#uid}`;
        o.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
        return this.#commit(p.resource, coll, k, 'ADDED', o);
      }
      case 'PUT':
      case 'PATCH': {
        if (p.name === undefined) throw new KubeApiError(KubeErrorCode.NotAllowed, method, path, 405, 'MethodNotAllowed', 'needs an object path');
        const k = key(p.namespace, p.name);
        const current = coll.get(k);
        if (!current) throw notFound();
        let next: Obj;
        if (method === 'PUT') {
          const o = dropNulls(structuredClone(body)) as Obj;
          const rv = o?.metadata?.resourceVersion;
          if (rv && rv !== current.metadata.resourceVersion) {
            throw new KubeApiError(KubeErrorCode.Conflict, method, path, 409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again');
          }
          next = p.subresource === 'status' ? { ...current, status: o.status } : { ...o, status: current.status, metadata: { ...o.metadata, uid: current.metadata.uid, namespace: current.metadata.namespace, name: current.metadata.name } };
          if (!('status' in current) && p.subresource !== 'status') delete next.status;
        } else {
          if (contentType !== 'application/merge-patch+json') throw new KubeApiError(KubeErrorCode.NotAllowed, method, path, 415, 'UnsupportedMediaType', `the fake supports only merge patches, not ${contentType ?? 'none'}`);
          const whole = body as { status?: unknown; metadata?: { resourceVersion?: string; labels?: unknown; annotations?: unknown } } | null;
          // A resourceVersion in the patch is a precondition, on /status too.
          const rv = whole?.metadata?.resourceVersion;
          if (rv && rv !== current.metadata.resourceVersion) throw new KubeApiError(KubeErrorCode.Conflict, method, path, 409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again', status(409, 'Conflict', 'the object has been modified'));
          // /status keeps the spec; a core object's /status (a Service's) takes labels and annotations too, a custom resource's only status.
          const core = p.resource.startsWith('api/');
          const patch = (
            p.subresource === 'status'
              ? {
                  ...(whole?.status !== undefined ? { status: whole.status } : {}),
                  ...(core && whole?.metadata ? { metadata: { ...(whole.metadata.labels !== undefined ? { labels: whole.metadata.labels } : {}), ...(whole.metadata.annotations !== undefined ? { annotations: whole.metadata.annotations } : {}) } } : {}),
                }
              : body
          ) as Record<string, unknown>;
          next = mergePatch(current, patch) as Obj;
        }
        next.metadata.resourceVersion = current.metadata.resourceVersion;
        if (JSON.stringify(next) === JSON.stringify(current)) return current;
        return this.#commit(p.resource, coll, k, 'MODIFIED', next);
      }
      case 'DELETE': {
        if (p.name === undefined) throw new KubeApiError(KubeErrorCode.NotAllowed, method, path, 405, 'MethodNotAllowed', 'needs an object path');
        const k = key(p.namespace, p.name);
        const current = coll.get(k);
        if (!current) throw notFound();
        coll.delete(k);
        const gone = structuredClone(current);
        gone.metadata.resourceVersion = String(++this.#rv);
        this.#record(p.resource, 'DELETED', gone);
        return gone;
      }
      default:
        throw new KubeApiError(KubeErrorCode.NotAllowed, method, path, 405, 'MethodNotAllowed', `the fake does not serve ${method}`);
    }
  }

  #commit(resource: string, coll: Map<string, Obj>, key: string, type: 'ADDED' | 'MODIFIED', o: Obj): Obj {
    o.metadata.resourceVersion = String(++this.#rv);
    coll.set(key, o);
    this.#record(resource, type, o);
    return o;
  }

  #record(resource: string, type: HistoryEntry['type'], o: Obj): void {
    const entry = { rv: this.#rv, resource, type, object: structuredClone(o) };
    this.#history.push(entry);
    if (this.#history.length > this.#historyLimit) {
      const dropped = this.#history.splice(0, this.#history.length - this.#historyLimit);
      this.#oldestRv = dropped[dropped.length - 1]!.rv;
    }
    for (const w of this.#watchers) if (w.resource === resource && w.matches(o)) w.push({ type, object: structuredClone(o) });
  }
}
