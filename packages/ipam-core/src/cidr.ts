// Subnets (CIDRs) and the one answer to "is this address in this subnet". Pools, the
// election's member subnets, the node agent's link subnets and linux-net's interface
// addresses all ask it here, so every package draws the same line between two subnets.
import { type Address, type Family, familyBits, formatAddress, hostMask, parseAddress } from './address.ts';
import { IpamError, IpamErrorCode } from './errors.ts';

/** A subnet as a network value and prefix length (host bits cleared). */
export interface Subnet {
  readonly family: Family;
  readonly network: bigint;
  readonly prefixLength: number;
}

/** What a reserved address of a subnet is: see `reservedAddressKind`. */
export type ReservedAddressKind = 'network' | 'broadcast' | 'subnet-router anycast';

/**
 * `a/n` with `a` kept as written (host bits not cleared); `undefined` if the text is not
 * an address (as `parseAddress` takes it), a slash, and a prefix length of 0 to 32 or 128.
 */
export function parseCidrText(text: string): { family: Family; address: bigint; prefixLength: number } | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const a = parseAddress(text.slice(0, slash));
  const lenText = text.slice(slash + 1).trim();
  if (!a || !/^\d{1,3}$/.test(lenText)) return undefined;
  const prefixLength = Number(lenText);
  if (prefixLength > familyBits(a.family)) return undefined;
  return { family: a.family, address: a.value, prefixLength };
}

/**
 * A subnet CIDR; host bits are cleared (`192.0.2.7/24` is `192.0.2.0/24`). `undefined`
 * for anything else, so callers can name the field that is wrong.
 */
export function parseSubnet(text: string): Subnet | undefined {
  const c = parseCidrText(text);
  if (!c) return undefined;
  return { family: c.family, network: c.address & ~hostMask(c.family, c.prefixLength), prefixLength: c.prefixLength };
}

// Callers test many addresses against the same few CIDR texts (a node's subnets, the
// subnets members gossip), so each text is parsed once. Bounded, because gossip is input.
const parsed = new Map<string, Subnet | null>();
const PARSED_MAX = 4096;

/**
 * `parseSubnet`, remembered: the same text gives the same object. For hot paths that
 * test many addresses against a few CIDR texts; the memory is bounded (dropped when it
 * holds 4096 texts).
 */
export function parseSubnetCached(text: string): Subnet | undefined {
  let s = parsed.get(text);
  if (s === undefined) {
    s = parseSubnet(text) ?? null;
    if (parsed.size >= PARSED_MAX) parsed.clear();
    parsed.set(text, s);
  }
  return s ?? undefined;
}

/** `192.0.2.0/24`, `2001:db8::/64`: canonical address text (RFC 5952 for IPv6), a slash, the length. */
export function formatSubnet(subnet: Subnet): string {
  return `${formatAddress(subnet.family, subnet.network)}/${subnet.prefixLength}`;
}

/**
 * The subnet of `prefixLength` bits that holds `address` (`192.0.2.11` and 24 give
 * `192.0.2.0/24`). Throws `IPAM_INVALID_CIDR` if the length is not an integer from 0 to
 * the family's width.
 */
export function subnetOf(address: Address, prefixLength: number): Subnet {
  const bits = familyBits(address.family);
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > bits) {
    throw new IpamError(IpamErrorCode.InvalidCidr, `prefix length ${prefixLength} is not an integer from 0 to ${bits} (${address.family})`, {
      address: formatAddress(address.family, address.value),
      field: 'prefixLength',
    });
  }
  return { family: address.family, network: address.value & ~hostMask(address.family, prefixLength), prefixLength };
}

/**
 * `address/prefixLength` (text) as its subnet's CIDR text: `192.0.2.11` and 24 give
 * `192.0.2.0/24`. Throws `IPAM_INVALID_CIDR` for address text `parseAddress` refuses or a
 * prefix length out of range.
 */
export function subnetTextOf(address: string, prefixLength: number): string {
  const a = parseAddress(address);
  if (!a) throw new IpamError(IpamErrorCode.InvalidCidr, `"${address}" is not an IPv4 or IPv6 address`, { address, field: 'address' });
  return formatSubnet(subnetOf(a, prefixLength));
}

/** The highest address of the subnet (all host bits set): the IPv4 broadcast address. */
export function lastAddress(subnet: Subnet): bigint {
  return subnet.network | hostMask(subnet.family, subnet.prefixLength);
}

/** Whether `address` lies in `subnet`. An address of the other family never does. */
export function subnetContains(subnet: Subnet, address: Address): boolean {
  return address.family === subnet.family && (address.value & ~hostMask(subnet.family, subnet.prefixLength)) === subnet.network;
}

/**
 * Whether the CIDR text contains `address`. Host bits of the text are ignored; text that
 * is not a CIDR contains nothing. Each text is parsed once (`parseSubnetCached`).
 */
export function cidrContains(cidr: string, address: Address): boolean {
  const s = parseSubnetCached(cidr);
  return s !== undefined && subnetContains(s, address);
}

/**
 * What `address` is in `subnet` if no host may hold it: the IPv4 network (all-zero host
 * part) or broadcast (all-ones) address, or the IPv6 subnet-router anycast address
 * (all-zero host part, RFC 4291 2.6.1). Point-to-point and host subnets have none: an IPv4
 * /31 uses both of its addresses (RFC 3021), an IPv6 /127 both of its (RFC 6164), and /32
 * and /128 are one address. `undefined` for every other address, and one outside the subnet.
 */
export function reservedAddressKind(subnet: Subnet, address: Address): ReservedAddressKind | undefined {
  if (!subnetContains(subnet, address) || subnet.prefixLength >= familyBits(subnet.family) - 1) return undefined;
  if (address.value === subnet.network) return subnet.family === 'IPv4' ? 'network' : 'subnet-router anycast';
  if (subnet.family === 'IPv4' && address.value === lastAddress(subnet)) return 'broadcast';
  return undefined;
}

/** Every address of `subnet` that `reservedAddressKind` names, lowest first. */
export function subnetReserved(subnet: Subnet): bigint[] {
  if (subnet.prefixLength >= familyBits(subnet.family) - 1) return [];
  return subnet.family === 'IPv4' ? [subnet.network, lastAddress(subnet)] : [subnet.network];
}
