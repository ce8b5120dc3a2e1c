// The API server of a simulated cluster and each agent process's path to it: a client
// whose requests take time and fail when the node's API path is cut, and informer views
// that receive the server's changes late, stop while the path is cut and catch up (resume
// or relist) when it comes back, as client-go's reflector does.
import type { VirtualClock } from '@purelb/election/testing';
import { type NodeView, type Service, trimNodeView, trimService } from '@purelb/api';
import { type KubeClient, type RequestOptions, KubeApiError, KubeErrorCode, deepFreeze } from '@purelb/k8s-glue';
import { FakeKubeClient } from '@purelb/k8s-glue/testing';
import type { Proc } from './process.ts';

export const NAMESPACE = 'purelb';

/** The collections an agent watches, with the transform its informer applies. */
export const RESOURCES = {
  services: { path: '/api/v1/services', label: undefined, transform: (raw: unknown) => trimService(raw as Service) },
  slices: { path: '/apis/discovery.k8s.io/v1/endpointslices', label: undefined, transform: sliceView },
  groups: { path: `/apis/purelb.io/v1/namespaces/${NAMESPACE}/servicegroups`, label: undefined, transform: (raw: unknown) => raw },
  agents: { path: `/apis/purelb.io/v1/namespaces/${NAMESPACE}/lbnodeagents`, label: undefined, transform: (raw: unknown) => raw },
  leases: { path: `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`, label: 'purelb.io/component=lbnodeagent', transform: (raw: unknown) => raw },
  // main.ts watches its own Node only; here every agent sees all of them and reads its own.
  nodes: { path: '/api/v1/nodes', label: undefined, transform: (raw: unknown) => trimNodeView(raw as NodeView) },
} as const;
export type ResourceName = keyof typeof RESOURCES;
const RESOURCE_NAMES = Object.keys(RESOURCES) as ResourceName[];

function sliceView(raw: unknown): unknown {
  const r = raw as { metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> }; endpoints?: { nodeName?: string; conditions?: { ready?: boolean } }[] };
  return {
    metadata: { name: r.metadata.name, namespace: r.metadata.namespace, resourceVersion: r.metadata.resourceVersion, labels: { 'kubernetes.io/service-name': r.metadata.labels?.['kubernetes.io/service-name'] ?? '' } },
    endpoints: (r.endpoints ?? []).map((e) => ({ ...(e.nodeName ? { nodeName: e.nodeName } : {}), ready: e.conditions?.ready !== false })),
  };
}

interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  [k: string]: unknown;
}

export interface LogEntry {
  readonly resource: ResourceName;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** Transformed and frozen, as an informer stores it. */
  readonly object: Obj;
}

function unescapePointer(p: string): string[] {
  return p
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * FakeKubeClient (resourceVersions, 409 on a stale precondition, watches) plus JSON patches
 * with `test`, `add`, `replace` and `remove` (422 when a test fails or a path is missing),
 * as the agent removes its announcements with them; and a log of every change, in order.
 */
export class SimApiServer extends FakeKubeClient {
  readonly log: LogEntry[] = [];
  readonly #listeners = new Set<() => void>();
  /** The latest raw Service objects as the log saw them (`namespace/name`), for JSON patches without cloning every Service. */
  readonly #services = new Map<string, Obj>();

  /** Starts the watches that feed the log; call before creating objects. */
  startLog(): void {
    for (const name of RESOURCE_NAMES) {
      const r = RESOURCES[name];
      void (async () => {
        for await (const e of this.watch<Obj>(r.path, r.label ? { labelSelector: r.label } : {})) {
          if (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED') continue;
          if (name === 'services') {
            const key = `${e.object.metadata.namespace}/${e.object.metadata.name}`;
            if (e.type === 'DELETED') this.#services.delete(key);
            else this.#services.set(key, e.object);
          }
          this.log.push({ resource: name, type: e.type, object: deepFreeze(r.transform(e.object) as Obj) });
          for (const l of this.#listeners) l();
        }
      })();
    }
  }

  /** Hears every log append. Returns a function that stops listening. */
  listen(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** What a list of a watched collection returns now, transformed, and the log position it matches. */
  snapshot(name: ResourceName): { items: Obj[]; position: number } {
    const r = RESOURCES[name];
    const [k, v] = r.label ? r.label.split('=') : [];
    const list = this.objects<Obj>(r.path).filter((o) => k === undefined || o.metadata.labels?.[k] === v);
    return { items: list.map((o) => deepFreeze(r.transform(o) as Obj)), position: this.log.length };
  }

  override request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    if (method === 'PATCH' && opts.contentType === 'application/json-patch+json') {
      try {
        return this.#jsonPatch<T>(path, (typeof opts.body === 'string' ? JSON.parse(opts.body) : opts.body) as { op: string; path: string; value?: unknown }[]);
      } catch (e) {
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
    return super.request<T>(method, path, opts);
  }

  #jsonPatch<T>(path: string, ops: readonly { op: string; path: string; value?: unknown }[], fresh = false): Promise<T> {
    const url = new URL(path, 'http://sim.invalid');
    const segs = url.pathname.split('/');
    const name = decodeURIComponent(segs.pop()!);
    const collection = segs.join('/');
    const ns = segs[segs.length - 3] === 'namespaces' ? segs[segs.length - 2] : undefined;
    const cached = !fresh && segs[segs.length - 1] === 'services' ? this.#services.get(`${ns}/${name}`) : undefined;
    const current = cached ?? this.objects<Obj>(collection).find((o) => o.metadata.name === name);
    const invalid = (why: string): KubeApiError => new KubeApiError(KubeErrorCode.Invalid, 'PATCH', path, 422, 'Invalid', why);
    if (!current) throw new KubeApiError(KubeErrorCode.NotFound, 'PATCH', path, 404, 'NotFound', `"${name}" not found`);
    const next = structuredClone(current) as Record<string, unknown>;
    for (const op of ops) {
      const keys = unescapePointer(op.path);
      const last = keys.pop()!;
      let parent: unknown = next;
      for (const k of keys) parent = (parent as Record<string, unknown> | undefined)?.[k];
      if (typeof parent !== 'object' || parent === null) throw invalid(`path ${op.path} does not exist`);
      const p = parent as Record<string, unknown>;
      switch (op.op) {
        case 'test':
          if (JSON.stringify(p[last]) !== JSON.stringify(op.value)) throw invalid(`test failed at ${op.path}`);
          break;
        case 'remove':
          if (!(last in p)) throw invalid(`path ${op.path} does not exist`);
          delete p[last];
          break;
        case 'add':
        case 'replace':
          p[last] = op.value;
          break;
        default:
          throw invalid(`op ${op.op} is not supported here`);
      }
    }
    // A PUT at the version read: the fake applies it at once, so the patch is atomic. (A
    // conflict can only mean the copy was stale: read the store itself then.)
    const put = super.request<T>('PUT', path, { body: next });
    return cached ? put.catch((e: unknown) => (e instanceof KubeApiError && e.status === 409 ? this.#jsonPatch<T>(path, ops, true) : Promise.reject(e instanceof Error ? e : new Error(String(e))))) : put;
  }
}

/** A node's path to the API server (it outlives the agent process). */
export interface ApiPath {
  readonly up: boolean;
  /** While cut: whether a request fails at once (refused) or hangs until its timeout. */
  readonly refused: boolean;
}

/** Simulated latencies, drawn from the schedule's random stream. */
export interface ApiTiming {
  /** One-way request latency (ms). */
  requestMs(): number;
  /** Delay of one watch event to one node (ms). */
  watchMs(): number;
  /** How long an informer waits before it retries after its watch broke (ms). */
  retryMs(): number;
  /** Whether a watch that comes back resumes (true) or relists (false). */
  resumes(): boolean;
}

type Client = Pick<KubeClient, 'mergePatch' | 'jsonPatch' | 'create' | 'delete' | 'get'>;

/** An agent process's API client: requests take `requestMs` each way and need the path up. */
export function procClient(server: SimApiServer, clock: VirtualClock, path: ApiPath, proc: Proc, timing: ApiTiming): Client {
  const call = <T>(method: string, p: string, body: unknown, contentType: string | undefined, timeoutMs: number | undefined): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = (f: () => void): void => {
        if (done) return;
        done = true;
        proc.scheduler.cancel(timer);
        f();
      };
      const t = timeoutMs ?? 30_000;
      const timer = proc.scheduler.at(proc.scheduler.now() + t, () => finish(() => reject(new KubeApiError(KubeErrorCode.Timeout, method, p, 0, '', `no answer within ${t} ms`))));
      if (!path.up) {
        if (path.refused) clock.at(clock.now() + 1, () => proc.run(() => finish(() => reject(new KubeApiError(KubeErrorCode.Unavailable, method, p, 0, '', 'connect ECONNREFUSED')))));
        return;
      }
      const back = timing.requestMs();
      clock.at(clock.now() + timing.requestMs(), () => {
        if (!path.up) return; // lost on the way: the timeout tells
        const answer = (f: () => void): void => {
          clock.at(clock.now() + back, () => {
            if (path.up) proc.run(() => finish(f)); // else the answer is lost: the timeout tells
          });
        };
        server.request<T>(method, p, { body, ...(contentType ? { contentType } : {}) }).then(
          (v) => answer(() => resolve(v)),
          (e: unknown) => answer(() => reject(e instanceof Error ? e : new Error(String(e)))),
        );
      });
    });
  const client = {
    get: <T>(p: string, opts: { timeoutMs?: number } = {}) => call<T>('GET', p, undefined, undefined, opts.timeoutMs),
    mergePatch: <T>(p: string, patch: unknown, opts: { timeoutMs?: number } = {}) => call<T>('PATCH', p, patch, 'application/merge-patch+json', opts.timeoutMs),
    jsonPatch: <T>(p: string, ops: unknown, opts: { timeoutMs?: number } = {}) => call<T>('PATCH', p, ops, 'application/json-patch+json', opts.timeoutMs),
    create: <T>(p: string, obj: unknown, opts: { timeoutMs?: number } = {}) => call<T>('POST', p, obj, undefined, opts.timeoutMs),
    delete: async <T>(p: string, opts: { timeoutMs?: number; ignoreNotFound?: boolean } = {}): Promise<T | undefined> => {
      try {
        return await call<T>('DELETE', p, undefined, undefined, opts.timeoutMs);
      } catch (e) {
        if (opts.ignoreNotFound && e instanceof KubeApiError && e.code === KubeErrorCode.NotFound) return undefined;
        throw e;
      }
    },
  };
  return client;
}

type Handler = (...args: unknown[]) => void;

/** What the agent reads of an Informer: list, get and the add/update/delete handlers. */
export class ViewInformer {
  #store = new Map<string, Obj>();
  readonly #handlers: Record<'add' | 'update' | 'delete' | 'error', Handler[]> = { add: [], update: [], delete: [], error: [] };

  on(event: 'add' | 'update' | 'delete' | 'error', fn: Handler): this {
    this.#handlers[event].push(fn);
    return this;
  }

  get(key: string): Obj | undefined {
    return this.#store.get(key);
  }

  list(): Obj[] {
    return [...this.#store.values()];
  }

  get size(): number {
    return this.#store.size;
  }

  apply(e: LogEntry): void {
    const key = keyOf(e.object);
    if (e.type === 'DELETED') {
      if (this.#store.delete(key)) this.#emit('delete', e.object);
      return;
    }
    const prev = this.#store.get(key);
    this.#store.set(key, e.object);
    if (!prev) this.#emit('add', e.object);
    else if (prev.metadata.resourceVersion !== e.object.metadata.resourceVersion) this.#emit('update', e.object, prev);
  }

  /** A relist: the store becomes `items`, the difference goes out as events. */
  replace(items: readonly Obj[]): void {
    const fresh = new Map<string, Obj>();
    for (const o of items) fresh.set(keyOf(o), o);
    const old = this.#store;
    for (const [key, o] of fresh) {
      const prev = old.get(key);
      if (prev && prev.metadata.resourceVersion === o.metadata.resourceVersion) fresh.set(key, prev);
    }
    this.#store = fresh;
    for (const [key, o] of fresh) {
      const prev = old.get(key);
      if (!prev) this.#emit('add', o);
      else if (prev !== o) this.#emit('update', o, prev);
    }
    for (const [key, prev] of old) if (!fresh.has(key)) this.#emit('delete', prev);
  }

  #emit(event: 'add' | 'update' | 'delete', ...args: unknown[]): void {
    for (const h of this.#handlers[event]) {
      try {
        h(...args);
      } catch (e) {
        for (const x of this.#handlers.error) x(e);
      }
    }
  }
}

function keyOf(o: Obj): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

/**
 * An agent process's informers over the server's log, one watch per collection as
 * client-go has: `start()` lists each collection (retrying while the path is cut) and then
 * follows its changes, each `watchMs` late and in order within the collection (not across
 * collections). When the path is cut, in-flight changes are lost and nothing more
 * arrives; `pathRestored()` makes each watch come back after its own `retryMs`, resuming
 * from the last change it saw or relisting.
 */
export class ApiView {
  readonly informers: Record<ResourceName, ViewInformer> = { services: new ViewInformer(), slices: new ViewInformer(), groups: new ViewInformer(), agents: new ViewInformer(), leases: new ViewInformer(), nodes: new ViewInformer() };
  readonly #watches: WatchStream[];
  #stopListening: (() => void) | undefined;

  constructor(server: SimApiServer, clock: VirtualClock, path: ApiPath, proc: Proc, timing: ApiTiming) {
    this.#watches = RESOURCE_NAMES.map((name) => new WatchStream(name, this.informers[name], server, clock, path, proc, timing));
  }

  /** Lists every collection (retrying while the path is cut); resolves in the process once all are synced. */
  start(): Promise<void> {
    this.#stopListening = this.#watches[0]!.server.listen(() => {
      for (const w of this.#watches) w.pump();
    });
    let pending = this.#watches.length;
    return new Promise((resolve) => {
      for (const w of this.#watches) w.start(() => --pending === 0 && resolve());
    });
  }

  stop(): void {
    this.#stopListening?.();
    for (const w of this.#watches) w.stop();
  }

  /** The path was cut: the watches break, whatever was on the way is lost. */
  pathCut(): void {
    for (const w of this.#watches) w.pathCut();
  }

  /** The path is back: each informer retries after its backoff. */
  pathRestored(): void {
    for (const w of this.#watches) w.pathRestored();
  }
}

/** One informer's list and watch of one collection. */
class WatchStream {
  readonly server: SimApiServer;
  readonly #resource: ResourceName;
  readonly #informer: ViewInformer;
  readonly #clock: VirtualClock;
  readonly #path: ApiPath;
  readonly #proc: Proc;
  readonly #timing: ApiTiming;
  /** Log index of the last change applied (changes up to it are in the store). */
  #applied = -1;
  /** Log index from which changes are still to be sent. */
  #sent = 0;
  #watching = false;
  /** The first list has been sent (until then, that list retries by itself). */
  #synced = false;
  #epoch = 0;
  #lastAt = 0;

  constructor(resource: ResourceName, informer: ViewInformer, server: SimApiServer, clock: VirtualClock, path: ApiPath, proc: Proc, timing: ApiTiming) {
    this.#resource = resource;
    this.#informer = informer;
    this.server = server;
    this.#clock = clock;
    this.#path = path;
    this.#proc = proc;
    this.#timing = timing;
  }

  start(done: () => void): void {
    this.#list(done);
  }

  stop(): void {
    this.#watching = false;
    this.#epoch++;
  }

  pathCut(): void {
    if (!this.#synced) return;
    this.#watching = false;
    this.#epoch++;
  }

  pathRestored(): void {
    if (!this.#synced) return;
    const epoch = ++this.#epoch;
    const resume = this.#timing.resumes();
    this.#clock.at(this.#clock.now() + this.#timing.retryMs(), () => {
      if (epoch !== this.#epoch || !this.#path.up || this.#proc.state === 'dead') return;
      if (resume) {
        this.#sent = this.#applied + 1;
        this.#watching = true;
        this.pump();
      } else this.#list(() => undefined);
    });
  }

  #list(done: () => void): void {
    const epoch = ++this.#epoch;
    const retry = (): void => {
      this.#clock.at(this.#clock.now() + this.#timing.retryMs(), () => {
        if (epoch === this.#epoch && this.#proc.state !== 'dead') this.#list(done);
      });
    };
    if (!this.#path.up) return retry();
    const back = this.#timing.requestMs();
    this.#clock.at(this.#clock.now() + this.#timing.requestMs(), () => {
      if (epoch !== this.#epoch) return;
      if (!this.#path.up) return retry();
      const snap = this.server.snapshot(this.#resource);
      const at = this.#clock.now() + back;
      this.#lastAt = at;
      this.#clock.at(at, () => {
        if (epoch !== this.#epoch) return;
        if (!this.#path.up) return retry();
        this.#sent = snap.position;
        this.#watching = true;
        this.#synced = true;
        this.#proc.run(() => {
          this.#informer.replace(snap.items);
          this.#applied = Math.max(this.#applied, snap.position - 1);
          done();
        });
        this.pump();
      });
    });
  }

  /** Sends every change of this collection not sent yet, each `watchMs` late, in order. */
  pump(): void {
    if (!this.#watching || this.#proc.state === 'dead') return;
    const log = this.server.log;
    for (; this.#sent < log.length; this.#sent++) {
      const i = this.#sent;
      if (log[i]!.resource !== this.#resource) continue;
      const at = Math.max(this.#clock.now() + this.#timing.watchMs(), this.#lastAt);
      this.#lastAt = at;
      const epoch = this.#epoch;
      this.#clock.at(at, () => {
        if (epoch !== this.#epoch) return;
        if (!this.#path.up) {
          this.pathCut();
          return;
        }
        this.#proc.run(() => {
          // A change already applied (before a relist, or sent again by a resume) is skipped.
          if (i <= this.#applied) return;
          this.#applied = i;
          this.#informer.apply(log[i]!);
        });
      });
    }
  }
}
