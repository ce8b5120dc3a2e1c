// A thin JSON client for the Kubernetes API on node:https with one keep-alive agent.
// It does only what controllers need (CRUD, patches, paged lists, watches) so that a
// daemon caching thousands of objects stays small.
import { channel } from 'node:diagnostics_channel';
import { Agent as HttpAgent, type ClientRequest, type IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import type { ExecCredentialResult, KubeConfig } from './config.ts';
import { KubeApiError, KubeErrorCode, type KubeStatus, codeForStatus } from './errors.ts';

/** Options of a KubeClient. */
export interface KubeClientOptions {
  /** User-Agent header (default `purelb-k8s-glue/<version> (node <version>)`); it shows in audit logs. */
  readonly userAgent?: string | undefined;
  /** Bound on a whole request (headers and body) unless the call gives its own (default 30000). */
  readonly timeoutMs?: number | undefined;
  /** Sockets kept per server (default 16). Watches hold one each for their lifetime. */
  readonly maxSockets?: number | undefined;
  /** Longest watch line accepted, in characters (default 16 MiB; etcd refuses objects over 1.5 MiB). */
  readonly maxWatchLineBytes?: number | undefined;
  /**
   * TCP keepalive on every connection: the first probe after this much idle time, then
   * (Node 22+ on Linux) one a second, the connection given up after 10 unanswered
   * (default 15000: a dead peer on an idle connection is found in about 25 s).
   */
  readonly keepAliveDelayMs?: number | undefined;
}

/** Options of one request. */
export interface RequestOptions {
  /** A value to send as JSON (a string is sent as is). */
  readonly body?: unknown;
  /** Content-Type of the body (default application/json). */
  readonly contentType?: string | undefined;
  /** Overrides the client's timeoutMs for this call. */
  readonly timeoutMs?: number | undefined;
  /** Aborts the call; it then rejects with K8S_ABORTED. */
  readonly signal?: AbortSignal | undefined;
}

/** Options of a list. */
export interface ListOptions {
  readonly labelSelector?: string | undefined;
  readonly fieldSelector?: string | undefined;
  /**
   * Objects per page (default 500, as kubectl and client-go). Pages keep the server's and
   * our peak memory low on large lists; 0 asks for everything in one answer.
   */
  readonly pageSize?: number | undefined;
  /** Bound on each page's request. */
  readonly timeoutMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** A list answer, all pages joined. */
export interface ObjectList<T> {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: { readonly resourceVersion: string };
  readonly items: T[];
}

/** Options of a watch. */
export interface WatchOptions {
  /** Start after this version ('' or absent: the server picks, starting with synthetic ADDED events). */
  readonly resourceVersion?: string | undefined;
  /** Ask for BOOKMARK events, which move the resourceVersion forward without a change. */
  readonly allowWatchBookmarks?: boolean | undefined;
  /** The server ends the watch after this many seconds; the client gives up 30 s later if it did not. */
  readonly timeoutSeconds?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly labelSelector?: string | undefined;
  readonly fieldSelector?: string | undefined;
}

/** Kinds of watch event. ERROR carries a Status (code 410 when the version is too old). */
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** One line of a watch stream. */
export interface WatchEvent<T = unknown> {
  readonly type: WatchEventType;
  readonly object: T;
}

/** One RFC 6902 operation. */
export interface JsonPatchOperation {
  readonly op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  readonly path: string;
  readonly value?: unknown;
  readonly from?: string;
}

/** What is published on {@link requestChannel} after every request. */
export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  /** HTTP status, 0 when no answer came. */
  readonly status: number;
  readonly durationMs: number;
  /** Set when the call failed. */
  readonly code?: KubeErrorCode;
}

/**
 * `node:diagnostics_channel` channel with a {@link RequestRecord} per completed request
 * (watches publish when they end), for latency metrics without the library logging.
 */
export const requestChannel = channel('purelb:k8s-glue:request');

const VERSION = '0.1.0';
const DEFAULT_PAGE_SIZE = 500;
const WATCH_GRACE_MS = 30_000;

/** `path` with the defined values of `params` added to its query. */
export function withQuery(path: string, params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

/** A Kubernetes API client: JSON over one keep-alive agent, errors as KubeApiError. */
export class KubeClient {
  readonly #config: KubeConfig;
  readonly #base: URL;
  #agent: HttpAgent;
  /** The client certificate the agent was made with (exec plugins may rotate it). */
  #agentCert: string | undefined;
  readonly #keepAliveMs: number;
  readonly #userAgent: string;
  readonly #timeoutMs: number;
  readonly #maxLine: number;
  readonly #maxSockets: number;
  readonly #counts = new Map<string, number>();

  constructor(config: KubeConfig, opts: KubeClientOptions = {}) {
    this.#config = config;
    this.#base = new URL(config.server);
    this.#maxSockets = opts.maxSockets ?? 16;
    this.#agent = this.#makeAgent(config.certPem, config.keyPem);
    this.#agentCert = config.certPem;
    this.#keepAliveMs = opts.keepAliveDelayMs ?? 15_000;
    this.#userAgent = opts.userAgent ?? `purelb-k8s-glue/${VERSION} (node ${process.version})`;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#maxLine = opts.maxWatchLineBytes ?? 16 * 1024 * 1024;
  }

  #makeAgent(certPem: string | undefined, keyPem: string | undefined): HttpAgent {
    const config = this.#config;
    const agentOpts = { keepAlive: true, maxSockets: this.#maxSockets, maxFreeSockets: 4, scheduling: 'lifo' as const };
    return this.#base.protocol === 'https:'
      ? new HttpsAgent({
          ...agentOpts,
          ...(config.caPem !== undefined ? { ca: config.caPem } : {}),
          ...(certPem !== undefined ? { cert: certPem } : {}),
          ...(keyPem !== undefined ? { key: keyPem } : {}),
          rejectUnauthorized: config.insecureSkipTlsVerify !== true,
        })
      : new HttpAgent(agentOpts);
  }

  /**
   * Credentials from the exec plugin, if the config has one (cached by the plugin's
   * source). A new client certificate replaces the agent; the old one's connections finish
   * what they carry and close.
   */
  async #credentials(): Promise<ExecCredentialResult | undefined> {
    const exec = this.#config.exec;
    if (!exec) return undefined;
    const c = await exec.get();
    if (c.certPem !== undefined && c.certPem !== this.#agentCert) {
      const old = this.#agent;
      this.#agent = this.#makeAgent(c.certPem, c.keyPem);
      this.#agentCert = c.certPem;
      old.maxFreeSockets = 0;
      for (const list of Object.values(old.freeSockets)) for (const sock of list ?? []) sock.destroy();
    }
    return c;
  }

  /** The configuration this client was made from. */
  get config(): KubeConfig {
    return this.#config;
  }

  /** Requests sent so far by verb: HTTP methods, and WATCH for watches (which are GETs on the wire). */
  requestCounts(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }

  /** Closes idle keep-alive sockets. Requests still running finish. */
  close(): void {
    this.#agent.destroy();
  }

  /**
   * One request. Resolves with the parsed JSON body (undefined for an empty one) of a 2xx
   * answer; rejects with a KubeApiError otherwise.
   */
  request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    this.#count(method);
    if (!this.#config.exec) return this.#requestOnce<T>(method, path, opts, true, undefined);
    return this.#requestWithExec<T>(method, path, opts);
  }

  /** A request with exec credentials: on 401 the plugin runs again and the request is sent once more. */
  async #requestWithExec<T>(method: string, path: string, opts: RequestOptions): Promise<T> {
    const creds = await this.#credentials();
    try {
      return await this.#requestOnce<T>(method, path, opts, true, creds);
    } catch (e) {
      if (!(e instanceof KubeApiError && e.code === KubeErrorCode.Unauthorized) || !creds) throw e;
      this.#config.exec?.invalidate(creds);
      return this.#requestOnce<T>(method, path, opts, true, await this.#credentials());
    }
  }

  #requestOnce<T>(method: string, path: string, opts: RequestOptions, mayRetry: boolean, creds: ExecCredentialResult | undefined): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const started = performance.now();
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let status = 0;
      const settle = (err: KubeApiError | undefined, value?: T): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        this.#publish(method, path, status, started, err);
        if (err) reject(err);
        else resolve(value as T);
      };
      if (opts.signal?.aborted) {
        reject(new KubeApiError(KubeErrorCode.Aborted, method, path, 0, '', 'aborted by the caller'));
        return;
      }
      const req = this.#open(method, path, opts.body, opts.contentType, creds);
      const timer = setTimeout(() => {
        settle(new KubeApiError(KubeErrorCode.Timeout, method, path, 0, '', `no answer within ${timeoutMs} ms`));
        req.destroy();
      }, timeoutMs);
      const onAbort = (): void => {
        settle(new KubeApiError(KubeErrorCode.Aborted, method, path, 0, '', 'aborted by the caller'));
        req.destroy();
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (settled) return;
        // A kept-alive socket the server closed while idle fails on first use; the
        // request never reached the server, so it is sent once more on a new socket.
        if (mayRetry && req.reusedSocket && e.code === 'ECONNRESET') {
          settled = true;
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
          this.#requestOnce<T>(method, path, opts, false, creds).then(resolve, reject);
          return;
        }
        settle(transportError(method, path, e));
      });
      req.on('response', (res: IncomingMessage) => {
        status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e: NodeJS.ErrnoException) => settle(transportError(method, path, e)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (status >= 200 && status < 300) {
            if (!text) return settle(undefined, undefined);
            try {
              settle(undefined, JSON.parse(text) as T);
            } catch {
              settle(new KubeApiError(KubeErrorCode.BadResponse, method, path, status, '', `the answer is not JSON: ${text.slice(0, 200)}`));
            }
            return;
          }
          settle(statusError(method, path, status, text));
        });
      });
      req.end();
    });
  }

  /** GET one object. */
  get<T>(path: string, opts: Omit<RequestOptions, 'body' | 'contentType'> = {}): Promise<T> {
    return this.request<T>('GET', path, opts);
  }

  /**
   * GET a collection, following `continue` tokens until every page is read. If a token
   * expires mid-way (410), the list is read again in one piece, as client-go's pager does.
   */
  async list<T>(path: string, opts: ListOptions = {}): Promise<ObjectList<T>> {
    return this.listMapped<T, T>(path, (item) => item, opts);
  }

  /**
   * `list`, with each item passed through `map` as its page arrives, so a caller that keeps
   * only part of each object (an informer's transform) never holds every raw page at once.
   * `map` also gets the list's kind (without `List`) and apiVersion.
   */
  async listMapped<T, U>(path: string, map: (item: T, list: { kind: string | undefined; apiVersion: string | undefined }) => U, opts: ListOptions = {}): Promise<ObjectList<U>> {
    const pageSize = opts.pageSize ?? DEFAULT_PAGE_SIZE;
    const call = { timeoutMs: opts.timeoutMs, signal: opts.signal };
    const query = { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector };
    const meta = (l: ObjectList<T>) => ({ kind: l.kind?.endsWith('List') ? l.kind.slice(0, -4) : undefined, apiVersion: l.apiVersion });
    if (pageSize <= 0) {
      const whole = await this.get<ObjectList<T>>(withQuery(path, query), call);
      const m = meta(whole);
      return { ...whole, items: (whole.items ?? []).map((i) => map(i, m)) };
    }
    const items: U[] = [];
    let token: string | undefined;
    let first: ObjectList<T> | undefined;
    for (let page = 0; page < 1_000_000; page++) {
      let got: ObjectList<T> & { metadata: { continue?: string } };
      try {
        got = await this.get(withQuery(path, { ...query, limit: pageSize, continue: token }), call);
      } catch (e) {
        if (token !== undefined && e instanceof KubeApiError && e.code === KubeErrorCode.Gone) return this.listMapped<T, U>(path, map, { ...opts, pageSize: 0 });
        throw e;
      }
      first ??= got;
      const m = meta(first);
      for (const item of got.items ?? []) items.push(map(item, m));
      token = got.metadata?.continue;
      if (!token) {
        return {
          ...(first.apiVersion !== undefined ? { apiVersion: first.apiVersion } : {}),
          ...(first.kind !== undefined ? { kind: first.kind } : {}),
          metadata: { resourceVersion: got.metadata?.resourceVersion ?? '' },
          items,
        };
      }
    }
    throw new KubeApiError(KubeErrorCode.BadResponse, 'GET', path, 0, '', 'the list never ended (over a million pages)');
  }

  /** POST an object to a collection. `fieldManager` names the writer in managedFields. */
  create<T>(path: string, obj: unknown, opts: Omit<RequestOptions, 'body' | 'contentType'> & { fieldManager?: string } = {}): Promise<T> {
    return this.request<T>('POST', withQuery(path, { fieldManager: opts.fieldManager }), { ...opts, body: obj });
  }

  /** PUT a whole object. Its metadata.resourceVersion makes it conditional (409 K8S_CONFLICT if stale). */
  replace<T>(path: string, obj: unknown, opts: Omit<RequestOptions, 'body' | 'contentType'> & { fieldManager?: string } = {}): Promise<T> {
    return this.request<T>('PUT', withQuery(path, { fieldManager: opts.fieldManager }), { ...opts, body: obj });
  }

  /** PATCH with a JSON merge patch (RFC 7386): objects merge, arrays and scalars replace, null deletes. */
  mergePatch<T>(path: string, patch: unknown, opts: Omit<RequestOptions, 'body' | 'contentType'> & { fieldManager?: string } = {}): Promise<T> {
    return this.request<T>('PATCH', withQuery(path, { fieldManager: opts.fieldManager }), { ...opts, body: patch, contentType: 'application/merge-patch+json' });
  }

  /** PATCH with a JSON patch (RFC 6902); a `test` operation makes it conditional. */
  jsonPatch<T>(path: string, ops: readonly JsonPatchOperation[], opts: Omit<RequestOptions, 'body' | 'contentType'> & { fieldManager?: string } = {}): Promise<T> {
    return this.request<T>('PATCH', withQuery(path, { fieldManager: opts.fieldManager }), { ...opts, body: ops, contentType: 'application/json-patch+json' });
  }

  /** Server-side apply: the server merges `obj` as the fields owned by `fieldManager`; `force` takes fields from other managers. */
  applyPatch<T>(path: string, obj: unknown, fieldManager: string, force = false, opts: Omit<RequestOptions, 'body' | 'contentType'> = {}): Promise<T> {
    return this.request<T>('PATCH', withQuery(path, { fieldManager, force: force ? 'true' : undefined }), { ...opts, body: obj, contentType: 'application/apply-patch+yaml' });
  }

  /** DELETE; with `ignoreNotFound` an object already gone resolves to undefined. */
  async delete<T = unknown>(path: string, opts: Omit<RequestOptions, 'contentType'> & { ignoreNotFound?: boolean } = {}): Promise<T | undefined> {
    try {
      return await this.request<T>('DELETE', path, opts);
    } catch (e) {
      if (opts.ignoreNotFound && e instanceof KubeApiError && e.code === KubeErrorCode.NotFound) return undefined;
      throw e;
    }
  }

  /**
   * Watches a collection: yields each line of the stream as a WatchEvent. Ends when the
   * server ends the stream (normally after timeoutSeconds) or the signal aborts; throws a
   * KubeApiError when the watch cannot start (410 K8S_GONE among others), when the
   * connection breaks (K8S_UNAVAILABLE) or a line is not JSON or over the size bound.
   * Breaking out of the loop closes the connection.
   */
  async *watch<T = unknown>(path: string, opts: WatchOptions = {}): AsyncGenerator<WatchEvent<T>, void, undefined> {
    const full = withQuery(path, {
      watch: 'true',
      resourceVersion: opts.resourceVersion,
      allowWatchBookmarks: opts.allowWatchBookmarks ? 'true' : undefined,
      timeoutSeconds: opts.timeoutSeconds,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
    });
    this.#count('WATCH');
    const started = performance.now();
    if (opts.signal?.aborted) return;
    const creds = await this.#credentials();
    if (opts.signal?.aborted) return;
    const req = this.#open('GET', full, undefined, undefined, creds);
    let failure: KubeApiError | undefined;
    let aborted = false;
    const fail = (e: KubeApiError): void => {
      failure ??= e;
      req.destroy();
    };
    const onAbort = (): void => {
      aborted = true;
      req.destroy();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // Until the headers arrive the normal request bound applies; after that the server's
    // own timeoutSeconds does, plus a grace period in case it never ends the stream.
    let timer = setTimeout(() => fail(new KubeApiError(KubeErrorCode.Timeout, 'GET', full, 0, '', `no answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
    let status = 0;
    try {
      const res = await new Promise<IncomingMessage | undefined>((resolve) => {
        req.on('response', resolve);
        req.on('error', (e: NodeJS.ErrnoException) => {
          if (!aborted) failure ??= transportError('GET', full, e);
          resolve(undefined);
        });
        req.end();
      });
      clearTimeout(timer);
      if (!res) {
        if (aborted) return;
        throw failure ?? new KubeApiError(KubeErrorCode.Unavailable, 'GET', full, 0, '', 'no answer');
      }
      status = res.statusCode ?? 0;
      res.on('error', (e: NodeJS.ErrnoException) => {
        if (!aborted) failure ??= transportError('GET', full, e);
      });
      if (status < 200 || status >= 300) {
        const chunks: Buffer[] = [];
        for await (const c of res) chunks.push(c as Buffer);
        // The caller (an informer) tries again; with fresh credentials then.
        if (status === 401 && creds) this.#config.exec?.invalidate(creds);
        throw statusError('GET', full, status, Buffer.concat(chunks).toString('utf8'));
      }
      if (opts.timeoutSeconds !== undefined) {
        timer = setTimeout(
          () => fail(new KubeApiError(KubeErrorCode.Timeout, 'GET', full, status, '', `the server did not end the watch ${WATCH_GRACE_MS} ms after timeoutSeconds=${opts.timeoutSeconds}`)),
          opts.timeoutSeconds * 1000 + WATCH_GRACE_MS,
        );
      }
      const decoder = new StringDecoder('utf8');
      let pending = '';
      try {
        for await (const chunk of res) {
          pending += decoder.write(chunk as Buffer);
          let start = 0;
          for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n', start)) {
            const line = pending.slice(start, nl);
            start = nl + 1;
            if (line.trim() === '') continue;
            let event: WatchEvent<T>;
            try {
              event = JSON.parse(line) as WatchEvent<T>;
            } catch {
              throw new KubeApiError(KubeErrorCode.BadResponse, 'GET', full, status, '', `a watch line is not JSON: ${line.slice(0, 200)}`);
            }
            yield event;
          }
          pending = pending.slice(start);
          if (pending.length > this.#maxLine) throw new KubeApiError(KubeErrorCode.BadResponse, 'GET', full, status, '', `a watch line exceeds ${this.#maxLine} characters`);
        }
      } catch (e) {
        if (e instanceof KubeApiError) throw e;
        if (aborted) return;
        throw failure ?? transportError('GET', full, e as NodeJS.ErrnoException);
      }
      if (aborted) return;
      // A connection cut mid-stream may end the iteration without an error event on some
      // Node versions; an incomplete response tells it apart from a clean end.
      if (failure) throw failure;
      if (!res.complete) throw new KubeApiError(KubeErrorCode.Unavailable, 'GET', full, status, '', 'the connection closed in the middle of the watch');
    } catch (e) {
      if (e instanceof KubeApiError) this.#publish('WATCH', path, status, started, e);
      throw e;
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      req.destroy();
    }
    this.#publish('WATCH', path, status, started, undefined);
  }

  #count(verb: string): void {
    this.#counts.set(verb, (this.#counts.get(verb) ?? 0) + 1);
  }

  #publish(method: string, path: string, status: number, started: number, err: KubeApiError | undefined): void {
    if (!requestChannel.hasSubscribers) return;
    const record: RequestRecord = { method, path, status, durationMs: performance.now() - started, ...(err ? { code: err.code } : {}) };
    requestChannel.publish(record);
  }

  #open(method: string, path: string, body: unknown, contentType: string | undefined, creds: ExecCredentialResult | undefined): ClientRequest {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const token = creds ? creds.token : typeof this.#config.token === 'function' ? this.#config.token() : this.#config.token;
    const basePath = this.#base.pathname.replace(/\/$/, '');
    const headers: Record<string, string | number> = { accept: 'application/json', 'user-agent': this.#userAgent };
    if (token) headers.authorization = `Bearer ${token}`;
    if (payload !== undefined) {
      headers['content-type'] = contentType ?? 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    const options = {
      method,
      protocol: this.#base.protocol,
      hostname: this.#base.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: this.#base.port || (this.#base.protocol === 'https:' ? 443 : 80),
      path: basePath + path,
      agent: this.#agent,
      headers,
    };
    const req = this.#base.protocol === 'https:' ? httpsRequest(options) : httpRequest(options);
    // A connection whose peer vanished (no FIN, no RST) is found by keepalive probes.
    if (this.#keepAliveMs > 0) req.on('socket', (s) => s.setKeepAlive(true, this.#keepAliveMs));
    if (payload !== undefined) req.write(payload);
    return req;
  }
}

function transportError(method: string, path: string, e: NodeJS.ErrnoException): KubeApiError {
  const what = e.code ? `${e.code} ${e.message}` : e.message;
  return new KubeApiError(KubeErrorCode.Unavailable, method, path, 0, '', `cannot reach the API server: ${what}`, undefined, e);
}

function statusError(method: string, path: string, status: number, text: string): KubeApiError {
  let body: KubeStatus | undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object') body = parsed;
  } catch {
    body = undefined;
  }
  const reason = body?.reason ?? '';
  const message = body?.message ?? (text.trim().slice(0, 300) || 'no message');
  return new KubeApiError(codeForStatus(status, reason), method, path, status, reason, message, body);
}
