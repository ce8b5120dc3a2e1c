import { type Family, familyBits, ipv4MappedText, parseAddress } from './address.ts';
import { type Subnet, formatSubnet, lastAddress, parseCidrText, parseSubnet, subnetContains, subnetOf } from './cidr.ts';
import { IpamError, IpamErrorCode } from './errors.ts';

/** One pool entry as written in a ServiceGroup (`spec.local.v4pools[]` and friends). */
export interface PoolSpec {
  /** A range `a-b` or a CIDR `a/n` (which starts at `a` as written and runs to the end of its prefix). */
  readonly pool: string;
  /** The CIDR the pool lives in. */
  readonly subnet: string;
  /** `default` (the subnet's prefix length) or `/N`. Absent means `default`. */
  readonly aggregation?: string | undefined;
}

/** A validated pool: an inclusive range of addresses inside a subnet. */
export interface Pool {
  readonly family: Family;
  /** The pool text as written, for messages. */
  readonly text: string;
  /** Where the pool was declared, as a field path (`v4pools[0]`), for messages. */
  readonly field: string;
  readonly first: bigint;
  readonly last: bigint;
  readonly subnet: Subnet;
  /** Prefix length to use when the address is added to a virtual interface. */
  readonly aggregation: number;
}

/** Number of addresses in a pool. */
export function poolSize(pool: Pool): bigint {
  return pool.last - pool.first + 1n;
}

export function poolContains(pool: Pool, value: bigint): boolean {
  return value >= pool.first && value <= pool.last;
}

/** `a-b` or `a/n` into an inclusive range; `undefined` if it is neither. */
export function parseRangeText(text: string): { family: Family; first: bigint; last: bigint } | undefined {
  const dash = text.indexOf('-');
  if (dash >= 0) {
    const a = parseAddress(text.slice(0, dash));
    const b = parseAddress(text.slice(dash + 1));
    if (!a || !b || a.family !== b.family || a.value > b.value) return undefined;
    return { family: a.family, first: a.value, last: b.value };
  }
  const cidr = parseCidrText(text);
  if (!cidr) return undefined;
  return { family: cidr.family, first: cidr.address, last: lastAddress(subnetOf({ family: cidr.family, value: cidr.address }, cidr.prefixLength)) };
}

/**
 * Validates one pool entry. `family` is the family its list demands (`v4pools` holds
 * IPv4), or undefined for the legacy single form, which takes the family of its text.
 * Throws `IPAM_INVALID_POOL` naming the group and the field.
 */
export function parsePool(spec: PoolSpec, group: string, field: string, family: Family | undefined): Pool {
  function fail(what: string, sub: string): never {
    throw new IpamError(IpamErrorCode.InvalidPool, `ServiceGroup "${group}": ${field}.${sub}: ${what}`, {
      group,
      pool: typeof spec.pool === 'string' ? spec.pool : '',
      field: `${field}.${sub}`,
    });
  }
  if (typeof spec.pool !== 'string' || spec.pool.trim() === '') fail('is required', 'pool');
  if (typeof spec.subnet !== 'string' || spec.subnet.trim() === '') fail('is required', 'subnet');
  const range = parseRangeText(spec.pool);
  if (!range) fail(`"${spec.pool}" is neither a range "first-last" (first <= last, one family) nor a CIDR "address/length"`, 'pool');
  const subnet = parseSubnet(spec.subnet);
  if (!subnet) fail(`"${spec.subnet}" is not a CIDR "address/length"`, 'subnet');
  const r = range;
  const s = subnet;
  if (family && r.family !== family) fail(`"${spec.pool}" is ${r.family}, but this list holds ${family} pools`, 'pool');
  if (s.family !== r.family) fail(`"${spec.subnet}" is ${s.family}, but the pool is ${r.family}`, 'subnet');
  if (ipv4MappedText({ family: r.family, value: r.first }) !== undefined || ipv4MappedText({ family: r.family, value: r.last }) !== undefined) {
    fail(`"${spec.pool}" holds IPv4-mapped IPv6 addresses (::ffff:0:0/96), which nothing answers for on the wire; write IPv4 pools as IPv4`, 'pool');
  }
  if (!subnetContains(s, { family: r.family, value: r.first }) || !subnetContains(s, { family: r.family, value: r.last })) {
    fail(`"${spec.pool}" does not lie inside subnet ${formatSubnet(s)}`, 'pool');
  }
  const aggregation = parseAggregation(spec.aggregation, s);
  if (aggregation === undefined) {
    fail(
      `"${String(spec.aggregation)}" must be "default" or "/N" with ${s.prefixLength} <= N <= ${familyBits(s.family)} (the subnet's prefix length up to a single address)`,
      'aggregation',
    );
  }
  return { family: r.family, text: spec.pool, field, first: r.first, last: r.last, subnet: s, aggregation };
}

/** `default` (or absent) is the subnet's prefix length; `/N` must not be shorter than the subnet. */
export function parseAggregation(text: string | undefined, subnet: Subnet): number | undefined {
  if (text === undefined || text.trim() === 'default') return subnet.prefixLength;
  const m = /^\/(\d{1,3})$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return n >= subnet.prefixLength && n <= familyBits(subnet.family) ? n : undefined;
}
