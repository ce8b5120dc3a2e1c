// The Netbox 4.x objects this package reads, checked on the way in: a response that does
// not have the documented shape is a NETBOX_BAD_RESPONSE naming the field, never a crash
// somewhere later.
import { type Family, formatAddress, parseAddress } from '@purelb/ipam-core';
import { NetboxError, NetboxErrorCode } from './errors.ts';

/** A tenant, as nested in other objects or listed by /api/tenancy/tenants/. */
export interface NetboxTenant {
  readonly id: number;
  readonly name: string;
  readonly slug: string;
}

/** An `/api/ipam/prefixes/` object (the fields used here). */
export interface NetboxPrefix {
  readonly id: number;
  /** CIDR text, `192.0.2.0/24`. */
  readonly prefix: string;
  readonly family: Family;
  readonly tenant: NetboxTenant | null;
  readonly status: string;
  /** Every address of a pool prefix is usable (no network/broadcast exclusion). */
  readonly isPool: boolean;
}

/** An `/api/ipam/ip-ranges/` object (the fields used here). */
export interface NetboxIpRange {
  readonly id: number;
  /** First address with the mask, `192.0.2.10/24`. */
  readonly startAddress: string;
  /** Last address with the mask, `192.0.2.20/24`. */
  readonly endAddress: string;
  readonly family: Family;
  readonly size: number;
  readonly tenant: NetboxTenant | null;
  readonly status: string;
}

/** An `/api/ipam/ip-addresses/` object (the fields used here). */
export interface NetboxIpAddress {
  readonly id: number;
  /** The address without its mask, `192.0.2.10`, in canonical form. */
  readonly ip: string;
  /** The mask length Netbox records with it. */
  readonly maskLength: number;
  readonly family: Family;
  readonly status: string;
  readonly tenant: NetboxTenant | null;
  readonly description: string;
  readonly dnsName: string;
}

/** A page of a Netbox list: `count`, `next` (absolute URL or null), `results`. */
export interface NetboxPage<T> {
  readonly count: number;
  readonly next: string | null;
  readonly results: T[];
}

type Json = Record<string, unknown>;

function bad(what: string, field: string, detail: string): NetboxError {
  return new NetboxError(NetboxErrorCode.BadResponse, `${what}: field "${field}" ${detail}`, { detail: `${field} ${detail}` });
}

function obj(v: unknown, what: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new NetboxError(NetboxErrorCode.BadResponse, `${what}: expected a JSON object`);
  return v as Json;
}

function int(o: Json, field: string, what: string): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(what, field, 'is not an integer');
  return v;
}

function str(o: Json, field: string, what: string, optional = false): string {
  const v = o[field];
  if (optional && (v === undefined || v === null)) return '';
  if (typeof v !== 'string') throw bad(what, field, 'is not a string');
  return v;
}

/** `family` is `{value: 4, label: "IPv4"}` in Netbox 4.x. */
function family(o: Json, what: string): Family {
  const f = o.family;
  const v = typeof f === 'object' && f !== null ? (f as Json).value : f;
  if (v === 4) return 'IPv4';
  if (v === 6) return 'IPv6';
  throw bad(what, 'family', 'is not {value: 4|6}');
}

/** `status` is `{value: "active", label: "Active"}` in Netbox 4.x. */
function status(o: Json, what: string): string {
  const s = o.status;
  const v = typeof s === 'object' && s !== null ? (s as Json).value : s;
  if (typeof v !== 'string') throw bad(what, 'status', 'is not {value: string}');
  return v;
}

function tenant(o: Json, what: string): NetboxTenant | null {
  const t = o.tenant;
  if (t === null || t === undefined) return null;
  return parseTenant(t, `${what}.tenant`);
}

/** Splits `192.0.2.10/24` into the canonical address and the mask length. */
export function splitCidr(text: string, what: string, field: string): { ip: string; family: Family; maskLength: number; value: bigint } {
  const slash = text.indexOf('/');
  const ipText = slash < 0 ? text : text.slice(0, slash);
  const a = parseAddress(ipText);
  const len = slash < 0 ? undefined : Number(text.slice(slash + 1));
  if (!a) throw bad(what, field, `"${text}" is not an address`);
  const max = a.family === 'IPv4' ? 32 : 128;
  const maskLength = len ?? max;
  if (!Number.isInteger(maskLength) || maskLength < 0 || maskLength > max) throw bad(what, field, `"${text}" has a bad mask length`);
  return { ip: formatAddress(a.family, a.value), family: a.family, maskLength, value: a.value };
}

export function parseTenant(v: unknown, what = 'tenant'): NetboxTenant {
  const o = obj(v, what);
  return { id: int(o, 'id', what), name: str(o, 'name', what), slug: str(o, 'slug', what) };
}

export function parsePrefix(v: unknown): NetboxPrefix {
  const o = obj(v, 'prefix');
  const what = `prefix ${String(o.id)}`;
  const prefix = str(o, 'prefix', what);
  splitCidr(prefix, what, 'prefix');
  return { id: int(o, 'id', what), prefix, family: family(o, what), tenant: tenant(o, what), status: status(o, what), isPool: o.is_pool === true };
}

export function parseIpRange(v: unknown): NetboxIpRange {
  const o = obj(v, 'ip-range');
  const what = `ip-range ${String(o.id)}`;
  const startAddress = str(o, 'start_address', what);
  const endAddress = str(o, 'end_address', what);
  splitCidr(startAddress, what, 'start_address');
  splitCidr(endAddress, what, 'end_address');
  return {
    id: int(o, 'id', what),
    startAddress,
    endAddress,
    family: family(o, what),
    size: int(o, 'size', what),
    tenant: tenant(o, what),
    status: status(o, what),
  };
}

export function parseIpAddress(v: unknown): NetboxIpAddress {
  const o = obj(v, 'ip-address');
  const what = `ip-address ${String(o.id)}`;
  const a = splitCidr(str(o, 'address', what), what, 'address');
  return {
    id: int(o, 'id', what),
    ip: a.ip,
    maskLength: a.maskLength,
    family: family(o, what),
    status: status(o, what),
    tenant: tenant(o, what),
    description: str(o, 'description', what, true),
    dnsName: str(o, 'dns_name', what, true),
  };
}

/** A paginated list; each result parsed by `item`. */
export function parsePage<T>(v: unknown, item: (x: unknown) => T, what = 'list'): NetboxPage<T> {
  const o = obj(v, what);
  const count = int(o, 'count', what);
  const next = o.next;
  if (next !== null && typeof next !== 'string') throw bad(what, 'next', 'is not a URL or null');
  if (!Array.isArray(o.results)) throw bad(what, 'results', 'is not an array');
  return { count, next, results: o.results.map(item) };
}

/** Netbox's error body: `{"detail": "..."}` or, for 400, field -> messages. */
export function parseErrorBody(v: unknown): { detail?: string; fields?: Record<string, string[]> } {
  if (typeof v !== 'object' || v === null) return {};
  if (Array.isArray(v)) {
    // A bulk request's 400 is a list of per-object field errors; the first says enough.
    return v.length > 0 ? parseErrorBody(v[0]) : {};
  }
  const o = v as Json;
  if (typeof o.detail === 'string') return { detail: o.detail };
  const fields: Record<string, string[]> = {};
  for (const [k, x] of Object.entries(o)) {
    if (Array.isArray(x)) fields[k] = x.map((m) => (typeof m === 'string' ? m : JSON.stringify(m)));
    else if (typeof x === 'string') fields[k] = [x];
  }
  return Object.keys(fields).length > 0 ? { fields } : {};
}
