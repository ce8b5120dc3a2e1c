import ipaddr from 'ipaddr.js';
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
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    // ipaddr.parse also takes shorthand like "10.1" or "0x0a000001"; only the canonical forms are addresses here.
    if (!ipaddr.IPv4.isValidFourPartDecimal(host) && !ipaddr.IPv6.isValid(host)) throw new Error('bad');
    parsed = ipaddr.parse(host);
  } catch {
    throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `${field} "${text}" is not an IPv4 or IPv6 address`, { address: text, field });
  }
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).zoneId !== undefined) {
    throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `${field} "${text}" carries a zone; name the link instead`, { address: text, field });
  }
  const family: Family = parsed.kind() === 'ipv4' ? 'IPv4' : 'IPv6';
  const max = family === 'IPv4' ? 32 : 128;
  let prefixLength = max;
  if (slash !== -1) {
    const lenText = text.slice(slash + 1);
    prefixLength = /^\d{1,3}$/.test(lenText) ? Number(lenText) : Number.NaN;
    if (!(prefixLength >= 0 && prefixLength <= max)) {
      throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `${field} "${text}" has a prefix length outside 0-${max}`, { address: text, field: 'prefixLength' });
    }
  }
  return { family, bytes: Uint8Array.from(parsed.toByteArray()), prefixLength, hadPrefix: slash !== -1 };
}

/** Formats 4 or 16 bytes as text (IPv6 in RFC 5952 form). */
export function formatAddressBytes(bytes: Uint8Array): string {
  const parsed = ipaddr.fromByteArray(Array.from(bytes));
  return parsed.kind() === 'ipv6' ? (parsed as ipaddr.IPv6).toRFC5952String() : parsed.toString();
}

/** The network address of `bytes` under `prefixLength` (host bits cleared). */
export function networkBytes(bytes: Uint8Array, prefixLength: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLength - i * 8));
    out[i]! &= keep === 8 ? 0xff : (0xff << (8 - keep)) & 0xff;
  }
  return out;
}

/** Whether `candidate` lies in the subnet `network/prefixLength` (both of one family). */
export function subnetContains(network: Uint8Array, prefixLength: number, candidate: Uint8Array): boolean {
  if (network.length !== candidate.length) return false;
  const a = networkBytes(network, prefixLength);
  const b = networkBytes(candidate, prefixLength);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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
