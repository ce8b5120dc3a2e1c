// A Netbox 4.x emulator: a real HTTP server on 127.0.0.1 that answers the part of the REST
// API this package uses the way Netbox does (shapes, filters, pagination, status codes,
// error bodies, the advisory lock around available-ips), with in-memory state that tests
// can set up and inspect, and faults they can switch on.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type Family, type Subnet, formatAddress, lastAddress, parseAddress, subnetContains, subnetOf, subnetReserved } from '@purelb/ipam-core';

/** A token the emulator accepts: the secret exactly as a client sends it after `Token ` or `Bearer `. */
export interface EmulatorToken {
  /** 40 hex characters (v1, `Token <t>`) or `nbt_<key>.<token>` (v2, `Bearer <t>`). */
  readonly token: string;
  /** Read-only tokens get 403 on POST/PATCH/DELETE, as in Netbox. Default true. */
  readonly writeEnabled?: boolean | undefined;
}

/** Faults a test can switch on at any time (also through `POST /__emulator/faults`). */
export interface EmulatorFaults {
  /** Delay before every API answer. */
  latencyMs?: number;
  /** Time an allocation holds the lock (Netbox's database work), so concurrent POSTs queue. */
  allocationMs?: number;
  /** Answer the next N API requests with `failStatus` (a 5xx page from a proxy). */
  failNext?: number;
  /** Status for failNext. Default 503. */
  failStatus?: number;
  /** Netbox is down: `'503'` answers every API request with a proxy's 503 page, `'reset'` drops the connection. */
  down?: '503' | 'reset' | false;
  /** Answer API requests with a login redirect (`'redirect'`, HTTP 302) or an HTML login page (`'html'`, HTTP 200). */
  login?: 'redirect' | 'html' | false;
  /** Status for an invalid or missing token. Netbox answers 403; some proxies and versions 401. Default 403. */
  authFailureStatus?: 401 | 403;
}

export interface EmulatorOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  readonly port?: number | undefined;
  /** Accepted tokens. Default: DEFAULT_V1_TOKEN and DEFAULT_V2_TOKEN. */
  readonly tokens?: readonly EmulatorToken[] | undefined;
  /** Netbox's PAGINATE_COUNT (default page size). Default 50. */
  readonly paginateCount?: number | undefined;
  /** Netbox's MAX_PAGE_SIZE. Default 1000. */
  readonly maxPageSize?: number | undefined;
  /** Serve the `/__emulator/*` control endpoints (state, seed, faults). Default true. */
  readonly control?: boolean | undefined;
  readonly faults?: EmulatorFaults | undefined;
}

/** A v1 token the emulator accepts by default. */
export const DEFAULT_V1_TOKEN = '0123456789abcdef0123456789abcdef01234567';
/** A v2 token the emulator accepts by default. */
export const DEFAULT_V2_TOKEN = 'nbt_purelbtest.s3cr3tv2tokenvalue';

/** A tenant in the emulator's state. */
export interface TenantRecord {
  readonly id: number;
  readonly name: string;
  readonly slug: string;
}

/** A prefix in the emulator's state. */
export interface PrefixRecord {
  readonly id: number;
  readonly family: Family;
  /** Network address value. */
  readonly network: bigint;
  readonly maskLength: number;
  readonly tenantId: number | null;
  readonly isPool: boolean;
  readonly status: string;
}

/** An IP range in the emulator's state. */
export interface IpRangeRecord {
  readonly id: number;
  readonly family: Family;
  readonly start: bigint;
  readonly end: bigint;
  readonly maskLength: number;
  readonly tenantId: number | null;
  readonly status: string;
}

/** An IP address in the emulator's state. */
export interface IpAddressRecord {
  readonly id: number;
  readonly family: Family;
  readonly value: bigint;
  readonly maskLength: number;
  status: string;
  tenantId: number | null;
  description: string;
  dnsName: string;
  readonly created: string;
  lastUpdated: string;
}

/** One API request the emulator answered. */
export interface EmulatorRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

const IP_STATUSES = ['active', 'reserved', 'deprecated', 'dhcp', 'slaac'] as const;
const STATUS_LABEL: Record<string, string> = { active: 'Active', reserved: 'Reserved', deprecated: 'Deprecated', dhcp: 'DHCP', slaac: 'SLAAC', container: 'Container' };
const MAX_LOG = 10_000;

function bitsOf(f: Family): number {
  return f === 'IPv4' ? 32 : 128;
}

function familyJson(f: Family): { value: number; label: string } {
  return f === 'IPv4' ? { value: 4, label: 'IPv4' } : { value: 6, label: 'IPv6' };
}

function statusJson(s: string): { value: string; label: string } {
  return { value: s, label: STATUS_LABEL[s] ?? s };
}

/** Parses `a/len` (or a bare address, full length) into family, value and mask length. */
function parseCidr(text: string): { family: Family; value: bigint; maskLength: number } | undefined {
  const [ip, len] = text.split('/');
  const a = parseAddress(ip ?? '');
  if (!a) return undefined;
  const maskLength = len === undefined ? bitsOf(a.family) : Number(len);
  if (!Number.isInteger(maskLength) || maskLength < 0 || maskLength > bitsOf(a.family)) return undefined;
  return { family: a.family, value: a.value, maskLength };
}

function networkOf(f: Family, v: bigint, len: number): bigint {
  return subnetOf({ family: f, value: v }, len).network;
}

class HttpAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Record<string, string>;
  readonly raw: string | undefined;
  constructor(status: number, body: unknown, headers: Record<string, string> = {}, raw?: string) {
    this.status = status;
    this.body = body;
    this.headers = headers;
    this.raw = raw;
  }
}

function detail(status: number, text: string): HttpAnswer {
  return new HttpAnswer(status, { detail: text });
}

/** A FIFO lock: what Netbox's advisory lock does for available-ips. */
class Lock {
  #tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The emulator. `NetboxEmulator.start()` listens on 127.0.0.1; `url` is the base URL to
 * give a client (it appends `/api`). Set up state with addTenant/addPrefix/addIpRange/
 * addIpAddress, read it with ipAddresses(), switch faults with `faults`.
 */
export class NetboxEmulator {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #tokens = new Map<string, EmulatorToken>();
  readonly #paginate: number;
  readonly #maxPage: number;
  readonly #control: boolean;
  readonly #lock = new Lock();
  #nextId = { tenant: 1, prefix: 1, range: 1, ip: 1 };
  readonly #tenants = new Map<number, TenantRecord>();
  readonly #prefixes = new Map<number, PrefixRecord>();
  readonly #ranges = new Map<number, IpRangeRecord>();
  readonly #ips = new Map<number, IpAddressRecord>();
  /** Faults in force; change them freely. */
  faults: EmulatorFaults;
  /** The API requests answered, oldest first (bounded). */
  readonly requests: EmulatorRequest[] = [];
  #base = '';
  #port = 0;

  private constructor(opts: EmulatorOptions) {
    for (const t of opts.tokens ?? [{ token: DEFAULT_V1_TOKEN }, { token: DEFAULT_V2_TOKEN }]) this.#tokens.set(t.token, t);
    this.#paginate = opts.paginateCount ?? 50;
    this.#maxPage = opts.maxPageSize ?? 1000;
    this.#control = opts.control ?? true;
    this.faults = { ...(opts.faults ?? {}) };
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  /** Starts an emulator listening on 127.0.0.1. */
  static async start(opts: EmulatorOptions = {}): Promise<NetboxEmulator> {
    const e = new NetboxEmulator(opts);
    await new Promise<void>((resolve, reject) => {
      e.#server.once('error', reject);
      e.#server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    e.#port = (e.#server.address() as AddressInfo).port;
    e.#base = `http://127.0.0.1:${e.#port}`;
    return e;
  }

  /** Base URL of the emulated Netbox (`http://127.0.0.1:PORT`); the API is under `/api`. */
  get url(): string {
    return this.#base;
  }

  get port(): number {
    return this.#port;
  }

  /** Stops listening and drops open connections. */
  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.#server.close(() => r()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  addToken(token: EmulatorToken): void {
    this.#tokens.set(token.token, token);
  }

  addTenant(name: string, slug = name.toLowerCase().replace(/[^a-z0-9_-]+/g, '-')): TenantRecord {
    const t = { id: this.#nextId.tenant++, name, slug };
    this.#tenants.set(t.id, t);
    return t;
  }

  /** Adds a prefix (`192.0.2.0/24`); `tenant` is a slug of a tenant added before. */
  addPrefix(o: { prefix: string; tenant?: string; isPool?: boolean; status?: string }): PrefixRecord {
    const c = parseCidr(o.prefix);
    if (!c || !o.prefix.includes('/')) throw new Error(`emulator: bad prefix "${o.prefix}"`);
    const p: PrefixRecord = {
      id: this.#nextId.prefix++,
      family: c.family,
      network: networkOf(c.family, c.value, c.maskLength),
      maskLength: c.maskLength,
      tenantId: this.#tenantId(o.tenant),
      isPool: o.isPool ?? false,
      status: o.status ?? 'active',
    };
    this.#prefixes.set(p.id, p);
    return p;
  }

  /** Adds an IP range: `start` and `end` with the mask (`192.0.2.10/24`, `192.0.2.20/24`). */
  addIpRange(o: { start: string; end: string; tenant?: string; status?: string }): IpRangeRecord {
    const a = parseCidr(o.start);
    const b = parseCidr(o.end);
    if (!a || !b || a.family !== b.family || a.value > b.value) throw new Error(`emulator: bad range ${o.start}-${o.end}`);
    const r: IpRangeRecord = { id: this.#nextId.range++, family: a.family, start: a.value, end: b.value, maskLength: a.maskLength, tenantId: this.#tenantId(o.tenant), status: o.status ?? 'active' };
    this.#ranges.set(r.id, r);
    return r;
  }

  /** Adds an IP address (`192.0.2.5/24`). */
  addIpAddress(o: { address: string; status?: string; tenant?: string; description?: string; dnsName?: string }): IpAddressRecord {
    const c = parseCidr(o.address);
    if (!c) throw new Error(`emulator: bad address "${o.address}"`);
    return this.#createIp(c.family, c.value, c.maskLength, o.status ?? 'active', this.#tenantId(o.tenant), o.description ?? '', o.dnsName ?? '');
  }

  /** Every IP address, in Netbox's order (by address). */
  ipAddresses(): IpAddressRecord[] {
    return [...this.#ips.values()].sort(compareIps).map((x) => ({ ...x }));
  }

  /** The IP addresses as text with mask, with status and description, for assertions. */
  addressSummary(): { address: string; status: string; description: string; tenant: string | null }[] {
    return this.ipAddresses().map((x) => ({
      address: `${formatAddress(x.family, x.value)}/${x.maskLength}`,
      status: x.status,
      description: x.description,
      tenant: x.tenantId === null ? null : (this.#tenants.get(x.tenantId)?.slug ?? null),
    }));
  }

  /** Removes an IP address as an operator would in the UI. Returns whether it existed. */
  deleteIpAddress(id: number): boolean {
    return this.#ips.delete(id);
  }

  #tenantId(slug: string | undefined): number | null {
    if (slug === undefined) return null;
    for (const t of this.#tenants.values()) if (t.slug === slug) return t.id;
    throw new Error(`emulator: no tenant "${slug}"`);
  }

  #createIp(family: Family, value: bigint, maskLength: number, status: string, tenantId: number | null, description: string, dnsName: string): IpAddressRecord {
    const now = new Date().toISOString();
    const r: IpAddressRecord = { id: this.#nextId.ip++, family, value, maskLength, status, tenantId, description, dnsName, created: now, lastUpdated: now };
    this.#ips.set(r.id, r);
    return r;
  }

  // --- HTTP ------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.#base);
    const method = req.method ?? 'GET';
    let body: unknown;
    try {
      const text = await readBody(req);
      if (text !== '') body = JSON.parse(text);
    } catch {
      this.#send(res, method, url.pathname, new HttpAnswer(400, { detail: 'JSON parse error - Expecting value: line 1 column 1 (char 0)' }));
      return;
    }
    if (this.#control && url.pathname.startsWith('/__emulator/')) {
      this.#send(res, method, url.pathname, this.#controlRequest(method, url.pathname, body));
      return;
    }
    const f = this.faults;
    if (f.latencyMs) await sleep(f.latencyMs);
    if (f.down === 'reset') {
      this.#log(method, url.pathname, 0);
      req.socket.destroy();
      return;
    }
    if (f.down === '503') {
      this.#send(res, method, url.pathname, new HttpAnswer(503, undefined, { 'content-type': 'text/html' }, '<html><body><h1>503 Service Unavailable</h1></body></html>'));
      return;
    }
    if (f.failNext && f.failNext > 0) {
      f.failNext--;
      const status = f.failStatus ?? 503;
      this.#send(res, method, url.pathname, new HttpAnswer(status, undefined, { 'content-type': 'text/html' }, `<html><body><h1>${status}</h1></body></html>`));
      return;
    }
    if (f.login === 'redirect') {
      this.#send(res, method, url.pathname, new HttpAnswer(302, undefined, { location: `/login/?next=${encodeURIComponent(url.pathname)}` }, ''));
      return;
    }
    if (f.login === 'html') {
      const page = '<!DOCTYPE html><html><head><title>Login | NetBox</title></head><body><form method="post" action="/login/"><input name="username"><input name="password" type="password"><button>Sign In</button></form></body></html>';
      this.#send(res, method, url.pathname, new HttpAnswer(200, undefined, { 'content-type': 'text/html; charset=utf-8' }, page));
      return;
    }
    let answer: HttpAnswer;
    try {
      answer = this.#auth(req, method) ?? (await this.#route(method, url, body));
    } catch (e) {
      answer = new HttpAnswer(500, undefined, { 'content-type': 'text/html' }, `<h1>Server Error (500)</h1><pre>${String(e)}</pre>`);
    }
    this.#send(res, method, url.pathname, answer);
  }

  #send(res: ServerResponse, method: string, path: string, a: HttpAnswer): void {
    this.#log(method, path, a.status);
    const payload = a.raw ?? (a.body === undefined ? '' : JSON.stringify(a.body));
    const headers: Record<string, string> = { ...(a.raw === undefined && a.body !== undefined ? { 'content-type': 'application/json' } : {}), ...a.headers };
    if (a.status === 401) headers['www-authenticate'] = 'Token';
    res.writeHead(a.status, { ...headers, 'content-length': String(Buffer.byteLength(payload)) });
    res.end(payload);
  }

  #log(method: string, path: string, status: number): void {
    if (path.startsWith('/__emulator/')) return;
    this.requests.push({ method, path, status });
    if (this.requests.length > MAX_LOG) this.requests.splice(0, this.requests.length - MAX_LOG);
  }

  /** Netbox's token check: `Token <v1>` or `Bearer nbt_<key>.<token>`. */
  #auth(req: IncomingMessage, method: string): HttpAnswer | undefined {
    const fail = this.faults.authFailureStatus ?? 403;
    const h = req.headers.authorization;
    if (!h) return detail(fail, 'Authentication credentials were not provided.');
    const m = /^(Token|Bearer) (\S+)$/.exec(h);
    if (!m) return detail(fail, 'Invalid token header. No credentials provided.');
    const [, scheme, secret] = m;
    const v2 = secret!.startsWith('nbt_');
    if (scheme === 'Bearer' && !v2) return detail(fail, 'Invalid v2 token');
    if (scheme === 'Token' && v2) return detail(fail, 'Invalid v1 token');
    const t = this.#tokens.get(secret!);
    if (!t) return detail(fail, v2 ? 'Invalid v2 token' : 'Invalid v1 token');
    if (method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS' && t.writeEnabled === false) {
      return detail(403, 'You do not have permission to perform this action.');
    }
    return undefined;
  }

  async #route(method: string, url: URL, body: unknown): Promise<HttpAnswer> {
    const p = url.pathname;
    const q = url.searchParams;
    let m: RegExpExecArray | null;
    if (p === '/api/status/' && method === 'GET') return new HttpAnswer(200, { 'netbox-version': '4.3.0', 'python-version': '3.12.0', plugins: {} });
    if (p === '/api/tenancy/tenants/' && method === 'GET') return this.#listTenants(url, q);
    if (p === '/api/ipam/prefixes/' && method === 'GET') return this.#listPrefixes(url, q);
    if (p === '/api/ipam/ip-ranges/' && method === 'GET') return this.#listRanges(url, q);
    if (p === '/api/ipam/ip-addresses/' && method === 'GET') return this.#listIps(url, q);
    if ((m = /^\/api\/ipam\/prefixes\/(\d+)\/$/.exec(p)) && method === 'GET') {
      const x = this.#prefixes.get(Number(m[1]));
      return x ? new HttpAnswer(200, this.#prefixJson(x)) : detail(404, 'No Prefix matches the given query.');
    }
    if ((m = /^\/api\/ipam\/ip-ranges\/(\d+)\/$/.exec(p)) && method === 'GET') {
      const x = this.#ranges.get(Number(m[1]));
      return x ? new HttpAnswer(200, this.#rangeJson(x)) : detail(404, 'No IPRange matches the given query.');
    }
    if ((m = /^\/api\/ipam\/(prefixes|ip-ranges)\/(\d+)\/available-ips\/$/.exec(p))) {
      const parent = m[1] === 'prefixes' ? this.#prefixParent(Number(m[2])) : this.#rangeParent(Number(m[2]));
      if (!parent) return detail(404, `No ${m[1] === 'prefixes' ? 'Prefix' : 'IPRange'} matches the given query.`);
      if (method === 'GET') return this.#availableGet(url, parent);
      if (method === 'POST') return this.#lock.run(() => this.#availablePost(parent, body));
      return detail(405, `Method "${method}" not allowed.`);
    }
    if ((m = /^\/api\/ipam\/ip-addresses\/(\d+)\/$/.exec(p))) {
      const x = this.#ips.get(Number(m[1]));
      if (!x) return detail(404, 'No IPAddress matches the given query.');
      if (method === 'GET') return new HttpAnswer(200, this.#ipJson(x));
      if (method === 'DELETE') {
        this.#ips.delete(x.id);
        return new HttpAnswer(204, undefined, {}, '');
      }
      if (method === 'PATCH') return this.#patchIp(x, body);
      return detail(405, `Method "${method}" not allowed.`);
    }
    return new HttpAnswer(404, undefined, { 'content-type': 'text/html' }, '<h1>Page Not Found</h1>');
  }

  // --- lists -------------------------------------------------------------------------

  #page(url: URL, items: unknown[]): HttpAnswer {
    const q = url.searchParams;
    let limit = q.has('limit') ? Number(q.get('limit')) : this.#paginate;
    if (!Number.isInteger(limit) || limit < 0) limit = this.#paginate;
    if (limit === 0) limit = this.#maxPage;
    limit = Math.min(limit, this.#maxPage);
    const offsetRaw = Number(q.get('offset') ?? 0);
    const offset = Number.isInteger(offsetRaw) && offsetRaw > 0 ? offsetRaw : 0;
    const link = (o: number): string => {
      const u = new URL(url.pathname + url.search, this.#base);
      u.searchParams.set('limit', String(limit));
      if (o <= 0) u.searchParams.delete('offset');
      else u.searchParams.set('offset', String(o));
      return u.toString();
    };
    return new HttpAnswer(200, {
      count: items.length,
      next: offset + limit < items.length ? link(offset + limit) : null,
      previous: offset > 0 ? link(Math.max(0, offset - limit)) : null,
      results: items.slice(offset, offset + limit),
    });
  }

  /** `tenant_id` / `tenant` (slug) filters; a value that names no tenant is a 400 as in Netbox. */
  #tenantFilter(q: URLSearchParams): { ids: Set<number> | undefined; error?: HttpAnswer } {
    let ids: Set<number> | undefined;
    for (const v of q.getAll('tenant_id')) {
      const id = Number(v);
      if (!this.#tenants.has(id)) return { ids, error: new HttpAnswer(400, { tenant_id: [`Select a valid choice. ${v} is not one of the available choices.`] }) };
      (ids ??= new Set()).add(id);
    }
    for (const v of q.getAll('tenant')) {
      const t = [...this.#tenants.values()].find((x) => x.slug === v);
      if (!t) return { ids, error: new HttpAnswer(400, { tenant: [`Select a valid choice. ${v} is not one of the available choices.`] }) };
      (ids ??= new Set()).add(t.id);
    }
    return { ids };
  }

  #listTenants(url: URL, q: URLSearchParams): HttpAnswer {
    let items = [...this.#tenants.values()];
    for (const v of q.getAll('slug')) items = items.filter((t) => t.slug === v);
    for (const v of q.getAll('name')) items = items.filter((t) => t.name === v);
    for (const v of q.getAll('id')) items = items.filter((t) => t.id === Number(v));
    items.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return this.#page(
      url,
      items.map((t) => ({ ...this.#tenantNested(t), display_url: `${this.#base}/tenancy/tenants/${t.id}/`, group: null, comments: '', tags: [], custom_fields: {}, created: '2025-01-01T00:00:00Z', last_updated: '2025-01-01T00:00:00Z' })),
    );
  }

  #listPrefixes(url: URL, q: URLSearchParams): HttpAnswer {
    const tf = this.#tenantFilter(q);
    if (tf.error) return tf.error;
    let items = [...this.#prefixes.values()];
    if (tf.ids) items = items.filter((x) => x.tenantId !== null && tf.ids!.has(x.tenantId));
    for (const v of q.getAll('prefix')) {
      const c = parseCidr(v);
      if (!c) return new HttpAnswer(400, { prefix: [`Invalid prefix: ${v}`] });
      items = items.filter((x) => x.family === c.family && x.maskLength === c.maskLength && x.network === networkOf(c.family, c.value, c.maskLength));
    }
    for (const v of q.getAll('family')) items = items.filter((x) => (x.family === 'IPv4' ? '4' : '6') === v);
    for (const v of q.getAll('id')) items = items.filter((x) => x.id === Number(v));
    items.sort((a, b) => (a.family !== b.family ? (a.family === 'IPv4' ? -1 : 1) : a.network !== b.network ? (a.network < b.network ? -1 : 1) : a.maskLength - b.maskLength));
    return this.#page(url, items.map((x) => this.#prefixJson(x)));
  }

  #listRanges(url: URL, q: URLSearchParams): HttpAnswer {
    const tf = this.#tenantFilter(q);
    if (tf.error) return tf.error;
    let items = [...this.#ranges.values()];
    if (tf.ids) items = items.filter((x) => x.tenantId !== null && tf.ids!.has(x.tenantId));
    for (const v of q.getAll('family')) items = items.filter((x) => (x.family === 'IPv4' ? '4' : '6') === v);
    items.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    return this.#page(url, items.map((x) => this.#rangeJson(x)));
  }

  #listIps(url: URL, q: URLSearchParams): HttpAnswer {
    const tf = this.#tenantFilter(q);
    if (tf.error) return tf.error;
    let items = [...this.#ips.values()];
    if (tf.ids) items = items.filter((x) => x.tenantId !== null && tf.ids!.has(x.tenantId));
    for (const v of q.getAll('status')) {
      if (!(IP_STATUSES as readonly string[]).includes(v)) return new HttpAnswer(400, { status: [`Select a valid choice. ${v} is not one of the available choices.`] });
    }
    const statuses = q.getAll('status');
    if (statuses.length > 0) items = items.filter((x) => statuses.includes(x.status));
    for (const v of q.getAll('family')) items = items.filter((x) => (x.family === 'IPv4' ? '4' : '6') === v);
    const descs = q.getAll('description');
    if (descs.length > 0) items = items.filter((x) => descs.includes(x.description));
    for (const v of q.getAll('description__isw')) items = items.filter((x) => x.description.toLowerCase().startsWith(v.toLowerCase()));
    for (const v of q.getAll('description__ic')) items = items.filter((x) => x.description.toLowerCase().includes(v.toLowerCase()));
    for (const v of q.getAll('parent')) {
      const c = parseCidr(v);
      if (!c) return new HttpAnswer(400, { parent: [`Invalid prefix: ${v}`] });
      const parent = subnetOf({ family: c.family, value: c.value }, c.maskLength);
      items = items.filter((x) => subnetContains(parent, x));
    }
    for (const v of q.getAll('address')) {
      const c = parseCidr(v);
      items = items.filter((x) => c !== undefined && x.family === c.family && x.value === c.value && (!v.includes('/') || x.maskLength === c.maskLength));
    }
    for (const v of q.getAll('id')) items = items.filter((x) => x.id === Number(v));
    items.sort(compareIps);
    return this.#page(url, items.map((x) => this.#ipJson(x)));
  }

  // --- available-ips -----------------------------------------------------------------

  #prefixParent(id: number): Parent | undefined {
    const p = this.#prefixes.get(id);
    if (!p) return undefined;
    const subnet: Subnet = { family: p.family, network: p.network, prefixLength: p.maskLength };
    let first = p.network;
    let last = lastAddress(subnet);
    // Netbox hands out neither the network nor the broadcast address of an IPv4 prefix, nor
    // the subnet-router anycast address of an IPv6 one, unless it is a pool (or a /31, /127).
    if (!p.isPool) {
      const reserved = subnetReserved(subnet);
      if (reserved.includes(first)) first += 1n;
      if (reserved.includes(last)) last -= 1n;
    }
    return { family: p.family, first, last, maskLength: p.maskLength, display: `${formatAddress(p.family, p.network)}/${p.maskLength}` };
  }

  #rangeParent(id: number): Parent | undefined {
    const r = this.#ranges.get(id);
    if (!r) return undefined;
    return { family: r.family, first: r.start, last: r.end, maskLength: r.maskLength, display: `${formatAddress(r.family, r.start)}-${formatAddress(r.family, r.end)}` };
  }

  /** Free addresses of the parent, lowest first, at most `limit`; and how many there are. */
  #available(parent: Parent, limit: number): { values: bigint[]; count: bigint } {
    const used = new Set<bigint>();
    for (const x of this.#ips.values()) if (x.family === parent.family && x.value >= parent.first && x.value <= parent.last) used.add(x.value);
    const values: bigint[] = [];
    for (let v = parent.first; v <= parent.last && values.length < limit; v++) if (!used.has(v)) values.push(v);
    return { values, count: parent.last - parent.first + 1n - BigInt(used.size) };
  }

  #availableGet(url: URL, parent: Parent): HttpAnswer {
    let limit = Number(url.searchParams.get('limit') ?? this.#paginate);
    if (!Number.isInteger(limit) || limit <= 0) limit = this.#maxPage;
    limit = Math.min(limit, this.#maxPage);
    const { values } = this.#available(parent, limit);
    return new HttpAnswer(
      200,
      values.map((v) => ({ family: parent.family === 'IPv4' ? 4 : 6, address: `${formatAddress(parent.family, v)}/${parent.maskLength}`, vrf: null, description: '' })),
    );
  }

  async #availablePost(parent: Parent, body: unknown): Promise<HttpAnswer> {
    const many = Array.isArray(body);
    const requested = (many ? body : [body ?? {}]) as unknown[];
    const { values, count } = this.#available(parent, requested.length);
    if (values.length < requested.length) {
      return detail(409, `An insufficient number of IP addresses are available within ${parent.display} (${requested.length} requested, ${count} available)`);
    }
    // Validate every object before creating any, as the serializer does.
    const parsed: { status: string; tenantId: number | null; description: string; dnsName: string }[] = [];
    const errors: Record<string, string[]>[] = [];
    for (const r of requested) {
      const v = this.#validateIpFields(r, true);
      errors.push(v.errors);
      if (v.ok) parsed.push(v.value);
    }
    if (errors.some((e) => Object.keys(e).length > 0)) return new HttpAnswer(400, many ? errors : errors[0]);
    // The database work happens while the lock is held: a concurrent POST waits here.
    if (this.faults.allocationMs) await sleep(this.faults.allocationMs);
    const created = parsed.map((x, i) => this.#createIp(parent.family, values[i]!, parent.maskLength, x.status, x.tenantId, x.description, x.dnsName));
    const out = created.map((x) => this.#ipJson(x));
    return new HttpAnswer(201, many ? out : out[0]);
  }

  #validateIpFields(raw: unknown, creating: boolean): { ok: boolean; errors: Record<string, string[]>; value: { status: string; tenantId: number | null; description: string; dnsName: string } } {
    const errors: Record<string, string[]> = {};
    const value = { status: 'active', tenantId: null as number | null, description: '', dnsName: '' };
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      return { ok: false, errors: { non_field_errors: ['Invalid data. Expected a dictionary, but got list.'] }, value };
    }
    const o = raw as Record<string, unknown>;
    if ('status' in o) {
      if (typeof o.status !== 'string' || !(IP_STATUSES as readonly string[]).includes(o.status)) errors.status = [`"${String(o.status)}" is not a valid choice.`];
      else value.status = o.status;
    } else if (!creating) value.status = '';
    if ('tenant' in o && o.tenant !== null) {
      if (typeof o.tenant !== 'number' || !this.#tenants.has(o.tenant)) errors.tenant = [`Related object not found using the provided numeric ID: ${JSON.stringify(o.tenant)}`];
      else value.tenantId = o.tenant;
    }
    if ('description' in o) {
      if (typeof o.description !== 'string') errors.description = ['Not a valid string.'];
      else if (o.description.length > 200) errors.description = ['Ensure this field has no more than 200 characters.'];
      else value.description = o.description;
    }
    if ('dns_name' in o) {
      if (typeof o.dns_name !== 'string' || !/^[0-9A-Za-z._*-]*$/.test(o.dns_name)) errors.dns_name = ['Only alphanumeric characters, asterisks, hyphens, periods, and underscores are allowed in DNS names'];
      else value.dnsName = o.dns_name;
    }
    if ('address' in o && creating) errors.address = ['This field is set by the server for available-ips.'];
    return { ok: Object.keys(errors).length === 0, errors, value };
  }

  #patchIp(x: IpAddressRecord, body: unknown): HttpAnswer {
    const v = this.#validateIpFields(body, false);
    if (!v.ok) return new HttpAnswer(400, v.errors);
    const o = body as Record<string, unknown>;
    if ('status' in o) x.status = v.value.status;
    if ('tenant' in o) x.tenantId = v.value.tenantId;
    if ('description' in o) x.description = v.value.description;
    if ('dns_name' in o) x.dnsName = v.value.dnsName;
    x.lastUpdated = new Date().toISOString();
    return new HttpAnswer(200, this.#ipJson(x));
  }

  // --- JSON shapes of Netbox 4.x ------------------------------------------------------

  #tenantNested(t: TenantRecord): Record<string, unknown> {
    return { id: t.id, url: `${this.#base}/api/tenancy/tenants/${t.id}/`, display: t.name, name: t.name, slug: t.slug, description: '' };
  }

  #tenantOrNull(id: number | null): Record<string, unknown> | null {
    const t = id === null ? undefined : this.#tenants.get(id);
    return t ? this.#tenantNested(t) : null;
  }

  #prefixJson(p: PrefixRecord): Record<string, unknown> {
    const text = `${formatAddress(p.family, p.network)}/${p.maskLength}`;
    return {
      id: p.id,
      url: `${this.#base}/api/ipam/prefixes/${p.id}/`,
      display_url: `${this.#base}/ipam/prefixes/${p.id}/`,
      display: text,
      family: familyJson(p.family),
      prefix: text,
      vrf: null,
      scope_type: null,
      scope_id: null,
      scope: null,
      tenant: this.#tenantOrNull(p.tenantId),
      vlan: null,
      status: statusJson(p.status),
      role: null,
      is_pool: p.isPool,
      mark_utilized: false,
      description: '',
      comments: '',
      tags: [],
      custom_fields: {},
      created: '2025-01-01T00:00:00.000000Z',
      last_updated: '2025-01-01T00:00:00.000000Z',
      children: 0,
      _depth: 0,
    };
  }

  #rangeJson(r: IpRangeRecord): Record<string, unknown> {
    const a = `${formatAddress(r.family, r.start)}/${r.maskLength}`;
    const b = `${formatAddress(r.family, r.end)}/${r.maskLength}`;
    return {
      id: r.id,
      url: `${this.#base}/api/ipam/ip-ranges/${r.id}/`,
      display_url: `${this.#base}/ipam/ip-ranges/${r.id}/`,
      display: `${a}-${b.split('/')[0]}`,
      family: familyJson(r.family),
      start_address: a,
      end_address: b,
      size: Number(r.end - r.start + 1n),
      vrf: null,
      tenant: this.#tenantOrNull(r.tenantId),
      status: statusJson(r.status),
      role: null,
      description: '',
      comments: '',
      tags: [],
      custom_fields: {},
      created: '2025-01-01T00:00:00.000000Z',
      last_updated: '2025-01-01T00:00:00.000000Z',
      mark_populated: false,
      mark_utilized: false,
    };
  }

  #ipJson(x: IpAddressRecord): Record<string, unknown> {
    const text = `${formatAddress(x.family, x.value)}/${x.maskLength}`;
    return {
      id: x.id,
      url: `${this.#base}/api/ipam/ip-addresses/${x.id}/`,
      display_url: `${this.#base}/ipam/ip-addresses/${x.id}/`,
      display: text,
      family: familyJson(x.family),
      address: text,
      vrf: null,
      tenant: this.#tenantOrNull(x.tenantId),
      status: statusJson(x.status),
      role: null,
      assigned_object_type: null,
      assigned_object_id: null,
      assigned_object: null,
      nat_inside: null,
      nat_outside: [],
      dns_name: x.dnsName,
      description: x.description,
      comments: '',
      tags: [],
      custom_fields: {},
      created: x.created,
      last_updated: x.lastUpdated,
    };
  }

  // --- control endpoints (not Netbox: for tests driving an emulator in another process) ---

  #controlRequest(method: string, path: string, body: unknown): HttpAnswer {
    try {
      if (path === '/__emulator/state' && method === 'GET') {
        return new HttpAnswer(200, {
          ipAddresses: this.addressSummary().map((x, i) => ({ id: this.ipAddresses()[i]!.id, ...x })),
          requests: this.requests.length,
          faults: this.faults,
        });
      }
      if (path === '/__emulator/faults' && method === 'POST') {
        this.faults = { ...this.faults, ...(body as EmulatorFaults) };
        return new HttpAnswer(200, this.faults);
      }
      if (path === '/__emulator/seed' && method === 'POST') {
        const s = body as SeedRequest;
        const made: Record<string, unknown[]> = { tenants: [], prefixes: [], ipRanges: [], ipAddresses: [] };
        for (const t of s.tenants ?? []) made.tenants!.push(this.addTenant(t.name, t.slug));
        for (const p of s.prefixes ?? []) made.prefixes!.push({ id: this.addPrefix(p).id });
        for (const r of s.ipRanges ?? []) made.ipRanges!.push({ id: this.addIpRange(r).id });
        for (const a of s.ipAddresses ?? []) made.ipAddresses!.push({ id: this.addIpAddress(a).id });
        for (const t of s.tokens ?? []) this.addToken(t);
        return new HttpAnswer(200, made);
      }
      return detail(404, 'no such control endpoint');
    } catch (e) {
      return detail(400, e instanceof Error ? e.message : String(e));
    }
  }
}

/** What `POST /__emulator/seed` takes. */
export interface SeedRequest {
  tenants?: { name: string; slug?: string }[];
  prefixes?: { prefix: string; tenant?: string; isPool?: boolean; status?: string }[];
  ipRanges?: { start: string; end: string; tenant?: string; status?: string }[];
  ipAddresses?: { address: string; status?: string; tenant?: string; description?: string; dnsName?: string }[];
  tokens?: EmulatorToken[];
}

interface Parent {
  readonly family: Family;
  readonly first: bigint;
  readonly last: bigint;
  readonly maskLength: number;
  readonly display: string;
}

function compareIps(a: IpAddressRecord, b: IpAddressRecord): number {
  if (a.family !== b.family) return a.family === 'IPv4' ? -1 : 1;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : a.maskLength - b.maskLength;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      // A test double still refuses a runaway body instead of buffering it all.
      if (size > 1 << 20) req.destroy(new Error('body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
