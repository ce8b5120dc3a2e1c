import { isIPv4, isIPv6 } from 'node:net';
import { addressFromBytes, formatAddress } from '@purelb/ipam-core';
import { NetlinkError, NetlinkErrorCode } from './errors.ts';
import type { Family } from './types.ts';

/** An address with an optional prefix length, parsed once at the edge of every call. */
export interface ParsedAddress {
  readonly family: Family;
  readonly bytes: Uint8Array;
  /** As written, or the host length (32/128) when the text had none. */
  readonly prefixLength: number;
  readonly hadPrefix: boolean;
}

/** Parses `a.b.c.d[/len]` or `x::y[/len]`; throws `NETLINK_INVALID_ARGUMENT` naming the field. */
export function parseAddressText(text: string, field = 'address'): ParsedAddress {
  const slash = text.indexOf('/');
  const host = slash === -1 ? text : text.slice(0, slash);
  // node:net validates natively (and rejects shorthand like "10.1" and zones); the bytes
  // then come from a split, which is several times faster than a general parser on the
  // reconcile path, where every call parses an address.
  const v4 = isIPv4(host);
  const zoned = host.includes('%');
  if (zoned || (!v4 && !isIPv6(host))) {
    throw new NetlinkError(NetlinkErrorCode.InvalidArgument, zoned ? `${field} "${text}" carries a zone; name the link instead` : `${field} "${text}" is not an IPv4 or IPv6 address`, { address: text, field });
  }
  const bytes = v4 ? Uint8Array.from(host.split('.'), Number) : ipv6Bytes(host);
  const family: Family = v4 ? 'IPv4' : 'IPv6';
  const max = family === 'IPv4' ? 32 : 128;
  let prefixLength = max;
  if (slash !== -1) {
    const lenText = text.slice(slash + 1);
    prefixLength = /^\d{1,3}$/.test(lenText) ? Number(lenText) : Number.NaN;
    if (!(prefixLength >= 0 && prefixLength <= max)) {
      throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `${field} "${text}" has a prefix length outside 0-${max}`, { address: text, field: 'prefixLength' });
    }
  }
  return { family, bytes, prefixLength, hadPrefix: slash !== -1 };
}

/** The 16 bytes of IPv6 text already validated by `isIPv6` (so `::` occurs at most once). */
function ipv6Bytes(text: string): Uint8Array {
  const out = new Uint8Array(16);
  let groups: number[];
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  const head = tail ? text.slice(0, text.length - tail[1]!.length) + '0:0' : text;
  const gap = head.indexOf('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  if (gap === -1) groups = parse(head);
  else {
    const left = parse(head.slice(0, gap));
    const right = parse(head.slice(gap + 2));
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  }
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i]! >> 8;
    out[2 * i + 1] = groups[i]! & 0xff;
  }
  if (tail) out.set(tail[1]!.split('.').map(Number), 12);
  return out;
}

/** Formats 4 or 16 bytes as text (IPv6 in RFC 5952 form, as ipam-core writes every address). */
export function formatAddressBytes(bytes: Uint8Array): string {
  const a = addressFromBytes(bytes);
  if (!a) throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `${bytes.length} bytes are neither an IPv4 (4) nor an IPv6 (16) address`, { field: 'address' });
  return formatAddress(a.family, a.value);
}

/** Formats a MAC address as lower-case colon-separated hex. */
export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Parses `aa:bb:cc:dd:ee:ff` (or `-` separated) into 6 bytes. */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `MAC address "${text}" is not six hex octets`, { field: 'mac' });
  }
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}
