// Ethernet frames for gratuitous ARP (RFC 5227 section 3 / RFC 826), unsolicited
// neighbour advertisements (RFC 4861 section 7.2.6), and the probes that look for another
// holder of an address: ARP probes (RFC 5227 section 2.1.1) and duplicate address detection
// solicitations (RFC 4862 section 5.4.2). Pure functions over bytes.

export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
const ICMPV6_NEIGHBOUR_SOLICITATION = 135;
const ICMPV6_NEIGHBOUR_ADVERTISEMENT = 136;
const OPTION_SOURCE_LINK_LAYER_ADDRESS = 1;
const OPTION_NONCE = 14;
const IPPROTO_ICMPV6 = 58;
const NA_FLAG_OVERRIDE = 0x20;
const OPTION_TARGET_LINK_LAYER_ADDRESS = 2;
const BROADCAST_MAC = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
/** ff02::1, all nodes on the link. */
export const ALL_NODES = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
/** 33:33 followed by the group's low 32 bits (RFC 2464 section 7). */
export const ALL_NODES_MAC = Uint8Array.of(0x33, 0x33, 0, 0, 0, 1);

function check(bytes: Uint8Array, length: number, what: string): void {
  if (bytes.length !== length) throw new RangeError(`${what} must be ${length} bytes, got ${bytes.length}`);
}

function ethernet(frame: Buffer, dst: Uint8Array, src: Uint8Array, ethertype: number): void {
  frame.set(dst, 0);
  frame.set(src, 6);
  frame.writeUInt16BE(ethertype, 12);
}

/**
 * A gratuitous ARP, broadcast: sender and target protocol address are both `ip`. The
 * request carries an all-zero target MAC (what `arping -U` sends), the reply carries the
 * sender's MAC (`arping -A`). 42 bytes; the driver pads to the Ethernet minimum.
 */
export function buildGratuitousArp(op: typeof ARP_REQUEST | typeof ARP_REPLY, mac: Uint8Array, ip: Uint8Array): Buffer {
  check(mac, 6, 'mac');
  check(ip, 4, 'IPv4 address');
  const f = Buffer.alloc(42);
  ethernet(f, BROADCAST_MAC, mac, ETHERTYPE_ARP);
  f.writeUInt16BE(1, 14); // hardware type Ethernet
  f.writeUInt16BE(0x0800, 16); // protocol IPv4
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(op, 20);
  f.set(mac, 22);
  f.set(ip, 28);
  if (op === ARP_REPLY) f.set(mac, 32);
  f.set(ip, 38);
  return f;
}

/** The one's-complement sum of 16-bit big-endian words, folded, not inverted. */
export function onesComplementSum(data: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < data.length; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (data.length % 2 === 1) sum += data[data.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The ICMPv6 checksum of `message` (checksum field zeroed) over the IPv6 pseudo-header (RFC 8200 section 8.1). */
export function icmpv6Checksum(src: Uint8Array, dst: Uint8Array, message: Uint8Array): number {
  const pseudo = Buffer.alloc(40);
  pseudo.set(src, 0);
  pseudo.set(dst, 16);
  pseudo.writeUInt32BE(message.length, 32);
  pseudo[39] = IPPROTO_ICMPV6;
  const sum = onesComplementSum(message, onesComplementSum(pseudo));
  const result = ~sum & 0xffff;
  // RFC 768's rule, kept by ICMPv6: a computed zero is sent as all ones.
  return result === 0 ? 0xffff : result;
}

/**
 * An unsolicited neighbour advertisement for `target` from `mac`: to ff02::1, hop limit
 * 255, Override set, Solicited and Router clear, with the target link-layer address
 * option. The source address is the target itself, which every receiver accepts. 86 bytes.
 */
export function buildUnsolicitedNeighbourAdvertisement(mac: Uint8Array, target: Uint8Array): Buffer {
  check(mac, 6, 'mac');
  check(target, 16, 'IPv6 address');
  const f = Buffer.alloc(14 + 40 + 32);
  ethernet(f, ALL_NODES_MAC, mac, ETHERTYPE_IPV6);
  f.writeUInt32BE(0x60000000, 14); // version 6, traffic class 0, flow label 0
  f.writeUInt16BE(32, 18); // payload length
  f[20] = IPPROTO_ICMPV6;
  f[21] = 255; // hop limit: receivers drop neighbour discovery with any other value
  f.set(target, 22);
  f.set(ALL_NODES, 38);
  const icmp = f.subarray(54);
  icmp[0] = ICMPV6_NEIGHBOUR_ADVERTISEMENT;
  icmp[4] = NA_FLAG_OVERRIDE;
  icmp.set(target, 8);
  icmp[24] = OPTION_TARGET_LINK_LAYER_ADDRESS;
  icmp[25] = 1; // option length in units of 8 bytes
  icmp.set(mac, 26);
  icmp.writeUInt16BE(icmpv6Checksum(target, ALL_NODES, icmp), 2);
  return f;
}

/**
 * An ARP probe (`arping -D`, RFC 5227 section 2.1.1): a broadcast ARP request from `mac`
 * with sender address 0.0.0.0, so no host's ARP cache learns anything from it, and target
 * `ip`. The target MAC is zero, as the RFC asks. 42 bytes.
 */
export function buildArpProbe(mac: Uint8Array, ip: Uint8Array): Buffer {
  check(mac, 6, 'mac');
  check(ip, 4, 'IPv4 address');
  const f = Buffer.alloc(42);
  ethernet(f, BROADCAST_MAC, mac, ETHERTYPE_ARP);
  f.writeUInt16BE(1, 14);
  f.writeUInt16BE(0x0800, 16);
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(ARP_REQUEST, 20);
  f.set(mac, 22);
  // sender address (28-31) and target MAC (32-37) stay zero
  f.set(ip, 38);
  return f;
}

/**
 * The solicited-node multicast group of an IPv6 address (ff02::1:ffXX:XXXX, RFC 4291
 * section 2.7.1) and its Ethernet group MAC (33:33:ff:XX:XX:XX, RFC 2464 section 7).
 */
export function solicitedNodeMulticast(address: Uint8Array): { readonly ip: Uint8Array; readonly mac: Uint8Array } {
  check(address, 16, 'IPv6 address');
  const ip = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, address[13]!, address[14]!, address[15]!);
  const mac = Uint8Array.of(0x33, 0x33, 0xff, address[13]!, address[14]!, address[15]!);
  return { ip, mac };
}

/**
 * A duplicate address detection probe (RFC 4862 section 5.4.2), the frame the kernel sends
 * for `ip addr add` without `nodad` (minus its RFC 7527 nonce): a neighbour solicitation
 * for `target` from the unspecified address `::` to the target's solicited-node group, hop
 * limit 255, without a source link-layer address option (the RFC forbids it from `::`).
 * A host that holds `target` answers with a neighbour advertisement to ff02::1. 78 bytes.
 */
export function buildDadNeighbourSolicitation(mac: Uint8Array, target: Uint8Array): Buffer {
  check(mac, 6, 'mac');
  check(target, 16, 'IPv6 address');
  const group = solicitedNodeMulticast(target);
  const f = Buffer.alloc(14 + 40 + 24);
  ethernet(f, group.mac, mac, ETHERTYPE_IPV6);
  f.writeUInt32BE(0x60000000, 14);
  f.writeUInt16BE(24, 18);
  f[20] = IPPROTO_ICMPV6;
  f[21] = 255;
  // source address (22-37) stays ::
  f.set(group.ip, 38);
  const icmp = f.subarray(54);
  icmp[0] = ICMPV6_NEIGHBOUR_SOLICITATION;
  icmp.set(target, 8);
  icmp.writeUInt16BE(icmpv6Checksum(f.subarray(22, 38), group.ip, icmp), 2);
  return f;
}

/** A received ARP frame's fields, for listeners and tests. */
export interface ArpFrame {
  readonly destinationMac: Uint8Array;
  readonly sourceMac: Uint8Array;
  readonly op: number;
  readonly senderMac: Uint8Array;
  readonly senderIp: Uint8Array;
  readonly targetMac: Uint8Array;
  readonly targetIp: Uint8Array;
}

/** Decodes an Ethernet ARP frame for IPv4; undefined for anything else. */
export function parseArpFrame(f: Uint8Array): ArpFrame | undefined {
  const b = Buffer.from(f.buffer, f.byteOffset, f.byteLength);
  if (b.length < 42 || b.readUInt16BE(12) !== ETHERTYPE_ARP || b.readUInt16BE(16) !== 0x0800 || b[18] !== 6 || b[19] !== 4) return undefined;
  return {
    destinationMac: b.subarray(0, 6),
    sourceMac: b.subarray(6, 12),
    op: b.readUInt16BE(20),
    senderMac: b.subarray(22, 28),
    senderIp: b.subarray(28, 32),
    targetMac: b.subarray(32, 38),
    targetIp: b.subarray(38, 42),
  };
}

/** A received neighbour advertisement's fields, for listeners and tests. */
export interface NeighbourAdvertisementFrame {
  readonly destinationMac: Uint8Array;
  readonly sourceMac: Uint8Array;
  readonly sourceIp: Uint8Array;
  readonly destinationIp: Uint8Array;
  readonly hopLimit: number;
  readonly router: boolean;
  readonly solicited: boolean;
  readonly override: boolean;
  readonly target: Uint8Array;
  /** The target link-layer address option, if present. */
  readonly targetMac: Uint8Array | undefined;
  readonly checksumValid: boolean;
}

/** Decodes an Ethernet IPv6 neighbour advertisement without extension headers; undefined for anything else. */
export function parseNeighbourAdvertisementFrame(f: Uint8Array): NeighbourAdvertisementFrame | undefined {
  const b = Buffer.from(f.buffer, f.byteOffset, f.byteLength);
  if (b.length < 14 + 40 + 24 || b.readUInt16BE(12) !== ETHERTYPE_IPV6 || b[20] !== IPPROTO_ICMPV6 || b[54] !== ICMPV6_NEIGHBOUR_ADVERTISEMENT) return undefined;
  const payloadLength = b.readUInt16BE(18);
  if (b.length < 54 + payloadLength) return undefined;
  const icmp = Buffer.from(b.subarray(54, 54 + payloadLength));
  const sent = icmp.readUInt16BE(2);
  icmp.writeUInt16BE(0, 2);
  const src = b.subarray(22, 38);
  const dst = b.subarray(38, 54);
  let targetMac: Uint8Array | undefined;
  for (let o = 24; o + 8 <= icmp.length && icmp[o + 1]! > 0; o += icmp[o + 1]! * 8) {
    if (icmp[o] === OPTION_TARGET_LINK_LAYER_ADDRESS) targetMac = icmp.subarray(o + 2, o + 8);
  }
  return {
    destinationMac: b.subarray(0, 6),
    sourceMac: b.subarray(6, 12),
    sourceIp: src,
    destinationIp: dst,
    hopLimit: b[21]!,
    router: (icmp[4]! & 0x80) !== 0,
    solicited: (icmp[4]! & 0x40) !== 0,
    override: (icmp[4]! & 0x20) !== 0,
    target: icmp.subarray(8, 24),
    targetMac,
    checksumValid: icmpv6Checksum(src, dst, icmp) === sent,
  };
}

/** A received neighbour solicitation's fields, for listeners and tests. */
export interface NeighbourSolicitationFrame {
  readonly destinationMac: Uint8Array;
  readonly sourceMac: Uint8Array;
  /** `::` for a duplicate address detection probe. */
  readonly sourceIp: Uint8Array;
  readonly destinationIp: Uint8Array;
  readonly hopLimit: number;
  readonly target: Uint8Array;
  /** The source link-layer address option, if present. */
  readonly sourceLinkLayerAddress: Uint8Array | undefined;
  /** Whether a nonce option (RFC 7527, which Linux adds to its own DAD probes) is present. */
  readonly hasNonce: boolean;
  readonly checksumValid: boolean;
}

/** Decodes an Ethernet IPv6 neighbour solicitation without extension headers; undefined for anything else. */
export function parseNeighbourSolicitationFrame(f: Uint8Array): NeighbourSolicitationFrame | undefined {
  const b = Buffer.from(f.buffer, f.byteOffset, f.byteLength);
  if (b.length < 14 + 40 + 24 || b.readUInt16BE(12) !== ETHERTYPE_IPV6 || b[20] !== IPPROTO_ICMPV6 || b[54] !== ICMPV6_NEIGHBOUR_SOLICITATION) return undefined;
  const payloadLength = b.readUInt16BE(18);
  if (payloadLength < 24 || b.length < 54 + payloadLength) return undefined;
  const icmp = Buffer.from(b.subarray(54, 54 + payloadLength));
  const sent = icmp.readUInt16BE(2);
  icmp.writeUInt16BE(0, 2);
  const src = b.subarray(22, 38);
  const dst = b.subarray(38, 54);
  let sourceLinkLayerAddress: Uint8Array | undefined;
  let hasNonce = false;
  for (let o = 24; o + 8 <= icmp.length && icmp[o + 1]! > 0; o += icmp[o + 1]! * 8) {
    if (icmp[o] === OPTION_SOURCE_LINK_LAYER_ADDRESS) sourceLinkLayerAddress = icmp.subarray(o + 2, o + 8);
    if (icmp[o] === OPTION_NONCE) hasNonce = true;
  }
  return {
    destinationMac: b.subarray(0, 6),
    sourceMac: b.subarray(6, 12),
    sourceIp: src,
    destinationIp: dst,
    hopLimit: b[21]!,
    target: icmp.subarray(8, 24),
    sourceLinkLayerAddress,
    hasNonce,
    checksumValid: icmpv6Checksum(src, dst, icmp) === sent,
  };
}
