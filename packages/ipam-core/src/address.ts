import ipaddr from 'ipaddr.js';

/** An address family, spelled as Kubernetes spells `spec.ipFamilies`. */
export type Family = 'IPv4' | 'IPv6';

export const FAMILIES: readonly Family[] = ['IPv4', 'IPv6'];

/** Address width in bits. */
export function familyBits(family: Family): 32 | 128 {
  return family === 'IPv4' ? 32 : 128;
}

/** An address as a number: arithmetic and ordering on `bigint`, text only at the edges. */
export interface Address {
  readonly family: Family;
  readonly value: bigint;
}

/**
 * Parses one address. IPv4 must be four decimal octets (`ipaddr.js` alone would also take
 * `0x7f.1` or `127.1`, which nobody means in a pool); IPv6 may not carry a zone.
 * Returns `undefined` for anything else, so callers can name the field that is wrong.
 */
export function parseAddress(text: string): Address | undefined {
  const hit = parsed.get(text);
  if (hit !== undefined || parsed.has(text)) return hit;
  const out = parseUncached(text);
  if (parsed.size >= PARSE_CACHE_SIZE) parsed.clear();
  parsed.set(text, out);
  return out;
}

// The daemons read the same addresses on every pass (a node agent with 1,000 Services
// parses each of them several times per reconcile), and IPv6 parsing is the costly part:
// remember the last few thousand texts. Bounded: cleared when full, so memory stays
// under about 1 MB whatever the input.
const PARSE_CACHE_SIZE = 4096;
const parsed = new Map<string, Address | undefined>();

function parseUncached(text: string): Address | undefined {
  const s = text.trim();
  // A colon decides the family: the IPv4 check is a regular expression, too slow to run
  // on every IPv6 address of a large dump first.
  if (!s.includes(':')) {
    if (!ipaddr.IPv4.isValidFourPartDecimal(s)) return undefined;
    const octets = ipaddr.IPv4.parse(s).octets;
    let v = 0;
    for (const o of octets) v = v * 256 + o;
    return Object.freeze({ family: 'IPv4', value: BigInt(v) });
  }
  if (!s.includes('%') && ipaddr.IPv6.isValid(s)) {
    let v = 0n;
    for (const part of ipaddr.IPv6.parse(s).parts) v = (v << 16n) | BigInt(part);
    return Object.freeze({ family: 'IPv6', value: v });
  }
  return undefined;
}

/**
 * An address from its bytes in network order, as netlink and packets carry it: 4 bytes are
 * IPv4, 16 are IPv6 (an IPv4-mapped one included); `undefined` for any other length.
 */
export function addressFromBytes(bytes: Uint8Array): Address | undefined {
  if (bytes.length !== 4 && bytes.length !== 16) return undefined;
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return { family: bytes.length === 4 ? 'IPv4' : 'IPv6', value: v };
}

const HEX = Array.from({ length: 0x10000 }, (_, i) => i.toString(16));

/**
 * Formats an address value the canonical way: dotted quad for IPv4, RFC 5952 for IPv6
 * (lower case, longest run of two or more zero groups compressed, first run on a tie).
 * Hand-rolled because it is on the allocation hot path.
 */
export function formatAddress(family: Family, value: bigint): string {
  if (family === 'IPv4') {
    const n = Number(value);
    return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  const hi = value >> 64n;
  const lo = BigInt.asUintN(64, value);
  const w0 = Number(hi >> 32n);
  const w1 = Number(BigInt.asUintN(32, hi));
  const w2 = Number(lo >> 32n);
  const w3 = Number(BigInt.asUintN(32, lo));
  const g = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (i: number): string => HEX[g[i] ?? 0] ?? '0';
  if (bestAt < 0) return `${hex(0)}:${hex(1)}:${hex(2)}:${hex(3)}:${hex(4)}:${hex(5)}:${hex(6)}:${hex(7)}`;
  let head = '';
  for (let i = 0; i < bestAt; i++) head += (i ? ':' : '') + hex(i);
  let tail = '';
  for (let i = bestAt + bestLen; i < 8; i++) tail += (tail ? ':' : '') + hex(i);
  return `${head}::${tail}`;
}

/** The all-ones value of the low `bits - prefixLength` bits. */
export function hostMask(family: Family, prefixLength: number): bigint {
  return (1n << BigInt(familyBits(family) - prefixLength)) - 1n;
}

/** The IPv4-mapped IPv6 prefix `::ffff:0:0/96` as its top 96 bits. */
const V4_MAPPED_PREFIX = 0xffffn;

/**
 * The IPv4 address an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) stands for, as text;
 * undefined for any other address. Such an address is never a LoadBalancer address: it
 * is how a dual-stack socket shows an IPv4 peer, and nothing answers for it on the wire.
 */
export function ipv4MappedText(a: Address): string | undefined {
  if (a.family !== 'IPv6' || a.value >> 32n !== V4_MAPPED_PREFIX) return undefined;
  return formatAddress('IPv4', BigInt.asUintN(32, a.value));
}
