// The HTTP side: one JSON request to Netbox with the token, a timeout, TLS verification,
// and bounded retries with exponential backoff and jitter. Everything above it (prefixes,
// available-ips, adoption) lives in pool.ts.
import { channel } from 'node:diagnostics_channel';
import type { Dispatcher } from 'undici';
import { NetboxError, NetboxErrorCode } from './errors.ts';
import { parseErrorBody } from './models.ts';

/** How to reach Netbox. */
export interface NetboxClientOptions {
  /** Base URL of Netbox or of its API: `https://netbox.example.com` or `https://netbox.example.com/api`. */
  readonly url: string;
  /**
   * The API token: a v1 token (40 hex characters, sent as `Token <t>`), a v2 token
   * (`nbt_<key>.<token>`, sent as `Bearer nbt_...`), or a full header value starting with
   * `Token ` or `Bearer `. Surrounding whitespace (a trailing newline from a Secret) is ignored.
   */
  readonly token: string;
  /** CA bundle (PEM) to verify Netbox's certificate with, instead of the system's. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[] | undefined;
  /** Verify Netbox's TLS certificate. Default true; turn off only for a lab. */
  readonly verifyTls?: boolean | undefined;
  /** Time allowed for one request, answer included. Default 10000 ms. */
  readonly timeoutMs?: number | undefined;
  /** Retries after the first try for 5xx, 429, network errors, timeouts and 409 races. Default 4. */
  readonly retries?: number | undefined;
  /** First backoff delay; it doubles each retry (with jitter) up to backoffMaxMs. Default 200 ms. */
  readonly backoffBaseMs?: number | undefined;
  /** Longest backoff delay. Default 5000 ms. */
  readonly backoffMaxMs?: number | undefined;
  /** Page size of list requests (`limit`). Default 200. */
  readonly pageSize?: number | undefined;
  /** Stop following `next` after this many pages. Default 500. */
  readonly maxPages?: number | undefined;
  /** `User-Agent` header. */
  readonly userAgent?: string | undefined;
  /** An undici dispatcher to use instead of the one built from `ca`/`verifyTls` (proxies, tests). */
  readonly dispatcher?: Dispatcher | undefined;
}

/** What is published on the `purelb:netbox:request` diagnostics channel after every attempt. */
export interface NetboxRequestRecord {
  readonly method: string;
  readonly url: string;
  /** HTTP status, or 0 when no answer came. */
  readonly status: number;
  readonly ms: number;
  /** 0 for the first try. */
  readonly attempt: number;
  readonly error?: string;
}

/** `node:diagnostics_channel` channel carrying a NetboxRequestRecord per attempt. */
export const netboxRequestChannel = channel('purelb:netbox:request');

/** The Authorization header value for a token in either form. */
export function authorizationHeader(token: string): string {
  const t = token.trim();
  if (t === '') throw new NetboxError(NetboxErrorCode.InvalidConfig, 'Netbox token is empty', { field: 'token' });
  if (/\s/.test(t.replace(/^(Token|Bearer) /, ''))) throw new NetboxError(NetboxErrorCode.InvalidConfig, 'Netbox token contains whitespace', { field: 'token' });
  if (/^(Token|Bearer) /.test(t)) return t;
  return t.startsWith('nbt_') ? `Bearer ${t}` : `Token ${t}`;
}

/** The API root (`.../api`) of a Netbox base URL, without a trailing slash. */
export function apiRoot(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new NetboxError(NetboxErrorCode.InvalidConfig, `Netbox url "${url}" is not a URL`, { field: 'url' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new NetboxError(NetboxErrorCode.InvalidConfig, `Netbox url "${url}" is not http(s)`, { field: 'url' });
  const path = u.pathname.replace(/\/+$/, '');
  u.pathname = path.endsWith('/api') ? path : `${path}/api`;
  u.search = '';
  u.hash = '';
  return u.toString().replace(/\/+$/, '');
}

/** Per-request choices of NetboxClient.request. */
export interface RequestOptions {
  readonly body?: unknown;
  /** Return undefined on HTTP 404 instead of throwing (a DELETE of something already gone). */
  readonly allow404?: boolean;
  /** Builds the error for a 404 (a prefix that does not exist); default NETBOX_BAD_RESPONSE. */
  readonly notFound?: (detail: string) => NetboxError;
  /**
   * Called before each retry; a value it returns ends the request with that value. A
   * POST that timed out may have been carried out: this looks for its result first.
   */
  readonly beforeRetry?: () => Promise<unknown>;
  /** Retries for this request (default: the client's). */
  readonly retries?: number;
}

const TOKEN_PROBLEM = /token|credentials|authenticat/i;
const EXHAUSTED = /insufficient|not available|no .*available/i;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
  readonly contentType: string;
  readonly location: string | null;
}

/** A failure that a retry may cure, with what the last attempt saw. */
class Transient {
  readonly error: NetboxError;
  constructor(error: NetboxError) {
    this.error = error;
  }
}

/**
 * A JSON client for the Netbox REST API over the built-in fetch. Requests carry the
 * token, are bounded by a timeout, and are retried with exponential backoff and jitter
 * on 5xx, 429, network errors, timeouts and 409 races; the number of retries is bounded.
 * Failures are NetboxErrors with stable codes. It logs nothing: each attempt is published
 * on `netboxRequestChannel`.
 */
export class NetboxClient {
  /** The API root, `https://netbox.example.com/api`. */
  readonly apiUrl: string;
  readonly #auth: string;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  readonly #userAgent: string;
  /** A dispatcher given in the options, or one this client makes on first use (see #connection). */
  #dispatcher: Dispatcher | Promise<Dispatcher> | undefined;
  /** TLS settings for the dispatcher this client makes, when it needs its own. */
  readonly #ownConnect: { ca?: string | Buffer | (string | Buffer)[]; rejectUnauthorized: boolean } | undefined;
  /** Page size of list requests. */
  readonly pageSize: number;
  /** Most pages followed by one list. */
  readonly maxPages: number;

  constructor(opts: NetboxClientOptions) {
    this.apiUrl = apiRoot(opts.url);
    this.#auth = authorizationHeader(opts.token);
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#retries = Math.max(0, Math.floor(opts.retries ?? 4));
    this.#backoffBaseMs = opts.backoffBaseMs ?? 200;
    this.#backoffMaxMs = opts.backoffMaxMs ?? 5000;
    this.pageSize = opts.pageSize ?? 200;
    this.maxPages = opts.maxPages ?? 500;
    this.#userAgent = opts.userAgent ?? 'purelb-ipam-netbox';
    this.#dispatcher = opts.dispatcher;
    if (!opts.dispatcher && this.apiUrl.startsWith('https:') && (opts.ca !== undefined || opts.verifyTls === false)) {
      const ca = opts.ca === undefined ? undefined : Array.isArray(opts.ca) ? [...(opts.ca as (string | Buffer)[])] : (opts.ca as string | Buffer);
      this.#ownConnect = { ...(ca !== undefined ? { ca } : {}), rejectUnauthorized: opts.verifyTls !== false };
    }
  }

  /**
   * The dispatcher for a request: the given one, Node's default (undefined), or this
   * client's own for a custom CA. undici is imported only then: loading it costs a daemon
   * that never talks to such a Netbox about 25 MB of resident memory.
   */
  async #connection(): Promise<Dispatcher | undefined> {
    if (this.#dispatcher === undefined && this.#ownConnect) {
      const connect = this.#ownConnect;
      this.#dispatcher = import('undici').then(({ Agent }) => new Agent({ connect }));
    }
    return this.#dispatcher;
  }

  /** The absolute URL of an API path (`/ipam/prefixes/7/`), or the URL itself if absolute (a `next` link). */
  urlOf(path: string): string {
    return /^https?:\/\//.test(path) ? path : `${this.apiUrl}${path.startsWith('/') ? path : `/${path}`}`;
  }

  /**
   * One API call, retried as the options say. Resolves to the parsed JSON body (undefined
   * for 204 or an allowed 404); rejects with a NetboxError.
   */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<unknown> {
    const url = this.urlOf(path);
    const retries = opts.retries ?? this.#retries;
    let last: NetboxError | undefined;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        await sleep(this.#backoff(attempt));
        if (opts.beforeRetry) {
          const found = await opts.beforeRetry();
          if (found !== undefined) return found;
        }
      }
      const outcome = await this.#attempt(method, url, opts, attempt);
      if (!(outcome instanceof Transient)) return outcome;
      last = outcome.error;
    }
    const e = last!;
    throw new NetboxError(
      NetboxErrorCode.Unavailable,
      `Netbox ${method} ${url}: ${e.message.replace(/^Netbox [A-Z]+ \S+: /, '')} (gave up after ${retries + 1} tries)`,
      e.context,
      { cause: e },
    );
  }

  /** Every result of a paginated list, following `next` up to maxPages pages. */
  async list(path: string): Promise<unknown[]> {
    const sep = path.includes('?') ? '&' : '?';
    let next: string | null = `${path}${sep}limit=${this.pageSize}`;
    const out: unknown[] = [];
    for (let page = 0; next !== null; page++) {
      if (page >= this.maxPages) {
        throw new NetboxError(NetboxErrorCode.BadResponse, `Netbox GET ${this.urlOf(path)}: more than ${this.maxPages} pages`, { url: this.urlOf(path) });
      }
      const body = await this.request('GET', next);
      const o = body as { count?: unknown; next?: unknown; results?: unknown };
      if (typeof o !== 'object' || o === null || !Array.isArray(o.results) || typeof o.count !== 'number' || (o.next !== null && typeof o.next !== 'string')) {
        throw new NetboxError(NetboxErrorCode.BadResponse, `Netbox GET ${this.urlOf(next)}: not a paginated list (count/next/results)`, { url: this.urlOf(next) });
      }
      out.push(...(o.results as unknown[]));
      next = o.next;
    }
    return out;
  }

  /** Closes the connection pool this client created (none when a dispatcher was given). */
  async close(): Promise<void> {
    if (this.#ownConnect && this.#dispatcher) {
      const own = await this.#dispatcher;
      this.#dispatcher = undefined;
      await own.close();
    }
  }

  #backoff(attempt: number): number {
    const ceiling = Math.min(this.#backoffMaxMs, this.#backoffBaseMs * 2 ** (attempt - 1));
    // Half fixed, half random: spreads retries of many callers without ever retrying at once.
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  async #attempt(method: string, url: string, opts: RequestOptions, attempt: number): Promise<unknown> {
    const t0 = performance.now();
    const what = `Netbox ${method} ${url}`;
    const publish = (status: number, error?: string): void => {
      if (netboxRequestChannel.hasSubscribers) {
        const rec: NetboxRequestRecord = { method, url, status, ms: performance.now() - t0, attempt, ...(error ? { error } : {}) };
        netboxRequestChannel.publish(rec);
      }
    };
    let answer: Answer;
    try {
      answer = await this.#send(method, url, opts.body);
    } catch (e) {
      const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      const cause = e instanceof Error ? ((e.cause as { code?: string; message?: string } | undefined)?.code ?? (e.cause as Error | undefined)?.message ?? e.message) : String(e);
      const tlsProblem = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/i.test(cause);
      const message = timedOut ? `${what}: no answer within ${this.#timeoutMs} ms` : `${what}: ${tlsProblem ? 'TLS verification failed' : 'request failed'} (${cause})`;
      publish(0, message);
      const err = new NetboxError(NetboxErrorCode.Unavailable, message, { url }, { cause: e });
      // A certificate that does not verify will not verify on the next try either.
      if (tlsProblem) throw err;
      return new Transient(err);
    }
    publish(answer.status);
    const { status } = answer;
    const parsed = parseErrorBody(answer.body);
    const detail = parsed.detail ?? (parsed.fields ? Object.entries(parsed.fields).map(([k, v]) => `${k}: ${v.join(' ')}`).join('; ') : '');
    const ctx = { url, status, ...(detail ? { detail } : {}) };
    if (status >= 300 && status < 400) {
      throw new NetboxError(
        NetboxErrorCode.LoginRedirect,
        `${what}: redirected (HTTP ${status}) to ${answer.location ?? '?'}: the URL is not the Netbox API, or a proxy in front of it wants a login`,
        ctx,
      );
    }
    const isJson = /json/i.test(answer.contentType);
    if (status >= 200 && status < 300) {
      if (status === 204 || answer.text === '') return undefined;
      if (!isJson || answer.body === undefined) {
        if (/<html|<!doctype/i.test(answer.text)) {
          throw new NetboxError(
            NetboxErrorCode.LoginRedirect,
            `${what}: an HTML page came back instead of JSON${/log ?in|sign ?in/i.test(answer.text) ? ' (a login page)' : ''}: the URL is not the Netbox API, or a proxy wants a login`,
            ctx,
          );
        }
        return new Transient(new NetboxError(NetboxErrorCode.BadResponse, `${what}: the answer is not JSON (${answer.contentType || 'no content type'})`, ctx));
      }
      return answer.body;
    }
    if (status === 401) throw new NetboxError(NetboxErrorCode.Unauthorized, `${what}: the token was refused (HTTP 401${detail ? `: ${detail}` : ''})`, ctx);
    if (status === 403) {
      if (TOKEN_PROBLEM.test(detail)) throw new NetboxError(NetboxErrorCode.Unauthorized, `${what}: the token was refused (HTTP 403: ${detail})`, ctx);
      throw new NetboxError(NetboxErrorCode.Forbidden, `${what}: permission denied (HTTP 403${detail ? `: ${detail}` : ''}); the token's user needs the ipam permissions`, ctx);
    }
    if (status === 404) {
      if (opts.allow404) return undefined;
      throw opts.notFound ? opts.notFound(detail) : new NetboxError(NetboxErrorCode.BadResponse, `${what}: not found (HTTP 404${detail ? `: ${detail}` : ''})`, ctx);
    }
    if (status === 400) {
      throw new NetboxError(NetboxErrorCode.BadRequest, `${what}: refused (HTTP 400${detail ? `: ${detail}` : ''})`, { ...ctx, ...(parsed.fields ? { fields: parsed.fields } : {}) });
    }
    if (status === 409) {
      if (EXHAUSTED.test(detail)) throw new NetboxError(NetboxErrorCode.Exhausted, `${what}: no free address (HTTP 409: ${detail})`, ctx);
      return new Transient(new NetboxError(NetboxErrorCode.Unavailable, `${what}: conflict (HTTP 409${detail ? `: ${detail}` : ''})`, ctx));
    }
    if (status === 429 || status >= 500) {
      return new Transient(new NetboxError(NetboxErrorCode.Unavailable, `${what}: HTTP ${status}${detail ? `: ${detail}` : ''}`, ctx));
    }
    throw new NetboxError(NetboxErrorCode.BadResponse, `${what}: unexpected HTTP ${status}${detail ? `: ${detail}` : ''}`, ctx);
  }

  async #send(method: string, url: string, body: unknown): Promise<Answer> {
    const dispatcher = await this.#connection();
    // undici's own Dispatcher type and the one bundled with Node's fetch types differ only in
    // overload shapes; the object is the same at run time.
    const init = {
      method,
      redirect: 'manual',
      signal: AbortSignal.timeout(this.#timeoutMs),
      headers: {
        authorization: this.#auth,
        accept: 'application/json',
        'user-agent': this.#userAgent,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(dispatcher ? { dispatcher } : {}),
    } as unknown as RequestInit;
    const res = await fetch(url, init);
    const text = await res.text();
    const contentType = res.headers.get('content-type') ?? '';
    let parsed: unknown;
    if (/json/i.test(contentType) && text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    return { status: res.status, body: parsed, text, contentType, location: res.headers.get('location') };
  }
}
