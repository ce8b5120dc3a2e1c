// rtnetlink messages as bytes: pure encoders and decoders, table-tested byte for byte.
// Netlink speaks the host's byte order; every multi-byte field below goes through
// HOST_LE. Addresses and the big-endian fields of packets are bytes, not numbers.
import { endianness } from 'node:os';

const HOST_LE = endianness() === 'LE';

export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;
export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
} as const;
export const NLM_F = {
  REQUEST: 0x1,
  MULTI: 0x2,
  ACK: 0x4,
  DUMP_INTR: 0x10,
  DUMP: 0x300,
  REPLACE: 0x100,
  EXCL: 0x200,
  CREATE: 0x400,
} as const;
export const AF = { INET: 2, INET6: 10 } as const;
/** rtnetlink multicast groups as bind() bits (RTMGRP_*). */
export const RTMGRP = { LINK: 0x1, IPV4_IFADDR: 0x10, IPV6_IFADDR: 0x100 } as const;
export const IFA_F = {
  SECONDARY: 0x01,
  NODAD: 0x02,
  DADFAILED: 0x08,
  DEPRECATED: 0x20,
  TENTATIVE: 0x40,
  PERMANENT: 0x80,
  NOPREFIXROUTE: 0x200,
} as const;
const IFA = { ADDRESS: 1, LOCAL: 2, CACHEINFO: 6, FLAGS: 8, PROTO: 11 } as const;
const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, OPERSTATE: 16, LINKINFO: 18 } as const;
const IFLA_INFO_KIND = 1;
const RTA = { DST: 1, OIF: 4, GATEWAY: 5, PRIORITY: 6, TABLE: 15 } as const;
export const IFF_UP = 0x1;
export const RT_TABLE_MAIN = 254;
const RTN_UNICAST = 1;
/** The kernel's "forever" for address lifetimes. */
export const INFINITY_LIFE_TIME = 0xffffffff;
const NLA_TYPE_MASK = 0x3fff;
const OPER_STATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;

/** One netlink message as received: header fields and the bytes after the header. */
export interface NetlinkMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  readonly payload: Buffer;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

class Writer {
  readonly buf: Buffer;
  offset = 0;
  constructor(size: number) {
    this.buf = Buffer.alloc(size);
  }
  u8(v: number): void {
    this.buf[this.offset++] = v;
  }
  u16(v: number): void {
    if (HOST_LE) this.buf.writeUInt16LE(v, this.offset);
    else this.buf.writeUInt16BE(v, this.offset);
    this.offset += 2;
  }
  u32(v: number): void {
    if (HOST_LE) this.buf.writeUInt32LE(v >>> 0, this.offset);
    else this.buf.writeUInt32BE(v >>> 0, this.offset);
    this.offset += 4;
  }
  i32(v: number): void {
    if (HOST_LE) this.buf.writeInt32LE(v, this.offset);
    else this.buf.writeInt32BE(v, this.offset);
    this.offset += 4;
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.offset);
    this.offset += b.length;
  }
  attr(type: number, payload: Uint8Array): void {
    this.u16(4 + payload.length);
    this.u16(type);
    this.bytes(payload);
    this.offset = align4(this.offset);
  }
  attrU32(type: number, v: number): void {
    const b = Buffer.alloc(4);
    if (HOST_LE) b.writeUInt32LE(v >>> 0);
    else b.writeUInt32BE(v >>> 0);
    this.attr(type, b);
  }
  /** Writes the final length into the nlmsghdr and returns the used bytes. */
  finish(): Buffer {
    const out = this.buf.subarray(0, this.offset);
    if (HOST_LE) out.writeUInt32LE(this.offset, 0);
    else out.writeUInt32BE(this.offset, 0);
    return out;
  }
}

function header(w: Writer, type: number, flags: number, seq: number): void {
  w.u32(0); // length, patched by finish()
  w.u16(type);
  w.u16(flags);
  w.u32(seq);
  w.u32(0); // port id: 0 lets the kernel fill in ours
}

/** What an address request carries. */
export interface AddressRequest {
  readonly family: number;
  readonly prefixLength: number;
  readonly linkIndex: number;
  readonly address: Uint8Array;
  /** IFA_F_* bits; sent in IFA_FLAGS because the u8 in ifaddrmsg cannot hold NOPREFIXROUTE. */
  readonly flags: number;
  /** Seconds, INFINITY_LIFE_TIME for forever; both or neither. */
  readonly lifetimes?: { readonly valid: number; readonly preferred: number };
  /** IFA_PROTO (u8, `proto N`); omitted when undefined. */
  readonly protocol?: number;
  /**
   * RTM_DELADDR only: leave out IFA_ADDRESS, so the kernel deletes the IPv4 address whatever
   * its prefix length (what `ip addr del A dev L` without a length does). IPv6 ignores this: it
   * always needs the length.
   */
  readonly anyPrefixLength?: boolean;
}

/** RTM_NEWADDR / RTM_DELADDR (`ip addr add|replace|del`). */
export function encodeAddressRequest(type: number, flags: number, seq: number, req: AddressRequest): Buffer {
  const w = new Writer(16 + 8 + 2 * (4 + 16) + 8 + (4 + 16) + 8);
  header(w, type, flags, seq);
  w.u8(req.family);
  w.u8(req.prefixLength);
  w.u8(req.flags & 0xff);
  w.u8(0); // RT_SCOPE_UNIVERSE
  w.u32(req.linkIndex);
  // Like iproute2: IFA_LOCAL is the address; IFA_ADDRESS equals it on non point-to-point links.
  w.attr(IFA.LOCAL, req.address);
  if (!req.anyPrefixLength) w.attr(IFA.ADDRESS, req.address);
  w.attrU32(IFA.FLAGS, req.flags);
  if (req.lifetimes) {
    const ci = Buffer.alloc(16);
    const wr = HOST_LE ? ci.writeUInt32LE.bind(ci) : ci.writeUInt32BE.bind(ci);
    wr(req.lifetimes.preferred >>> 0, 0);
    wr(req.lifetimes.valid >>> 0, 4);
    w.attr(IFA.CACHEINFO, ci);
  }
  if (req.protocol !== undefined) w.attr(IFA.PROTO, Uint8Array.of(req.protocol));
  return w.finish();
}

/** A dump request: RTM_GETLINK, RTM_GETADDR or RTM_GETROUTE for one family (0 = all). */
export function encodeDumpRequest(type: number, seq: number, family: number): Buffer {
  const w = new Writer(16 + 16);
  header(w, type, NLM_F.REQUEST | NLM_F.DUMP, seq);
  // Each dump takes its own family header; the family byte comes first in all three.
  const size = type === RTM.GETLINK ? 16 : type === RTM.GETROUTE ? 12 : 8;
  w.u8(family);
  w.offset += size - 1;
  return w.finish();
}

/** RTM_GETLINK for one link by name or index (`ip link show NAME`). */
export function encodeGetLinkRequest(seq: number, link: { readonly index?: number; readonly name?: string }): Buffer {
  const w = new Writer(16 + 16 + 4 + 20);
  header(w, RTM.GETLINK, NLM_F.REQUEST | NLM_F.ACK, seq);
  w.u8(0);
  w.u8(0);
  w.u16(0);
  w.i32(link.index ?? 0);
  w.u32(0);
  w.u32(0);
  if (link.name !== undefined) w.attr(IFLA.IFNAME, Buffer.from(link.name + '\0'));
  return w.finish();
}

/** RTM_NEWLINK creating `name` of `kind` (`ip link add NAME type KIND`). */
export function encodeNewLinkRequest(seq: number, name: string, kind: string): Buffer {
  const w = new Writer(16 + 16 + 4 + 20 + 4 + 4 + 4 + 20);
  header(w, RTM.NEWLINK, NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL, seq);
  w.offset += 16; // ifinfomsg all zero
  w.attr(IFLA.IFNAME, Buffer.from(name + '\0'));
  const info = new Writer(4 + 20);
  info.attr(IFLA_INFO_KIND, Buffer.from(kind));
  w.attr(IFLA.LINKINFO, info.buf.subarray(0, info.offset));
  return w.finish();
}

/** RTM_NEWLINK setting IFF_UP on an existing link (`ip link set NAME up`). */
export function encodeSetLinkUpRequest(seq: number, index: number): Buffer {
  const w = new Writer(16 + 16);
  header(w, RTM.NEWLINK, NLM_F.REQUEST | NLM_F.ACK, seq);
  w.u8(0);
  w.u8(0);
  w.u16(0);
  w.i32(index);
  w.u32(IFF_UP);
  w.u32(IFF_UP);
  return w.finish();
}

/** Clears NLM_F_ACK in an encoded message, in place: the kernel then answers only a failure. */
export function clearAckFlag(message: Buffer): void {
  const flags = u16(message, 6) & ~NLM_F.ACK;
  if (HOST_LE) message.writeUInt16LE(flags, 6);
  else message.writeUInt16BE(flags, 6);
}

/** NLMSG_NOOP with NLM_F_ACK: the kernel acks it after every earlier message of the datagram. */
export function encodeBarrier(seq: number): Buffer {
  const w = new Writer(16);
  header(w, NLMSG.NOOP, NLM_F.REQUEST | NLM_F.ACK, seq);
  return w.finish();
}

/** RTM_DELLINK by index (`ip link del NAME`). */
export function encodeDeleteLinkRequest(seq: number, index: number): Buffer {
  const w = new Writer(16 + 16);
  header(w, RTM.DELLINK, NLM_F.REQUEST | NLM_F.ACK, seq);
  w.u8(0);
  w.u8(0);
  w.u16(0);
  w.i32(index);
  w.u32(0);
  w.u32(0);
  return w.finish();
}

function u16(b: Buffer, o: number): number {
  return HOST_LE ? b.readUInt16LE(o) : b.readUInt16BE(o);
}
function u32(b: Buffer, o: number): number {
  return HOST_LE ? b.readUInt32LE(o) : b.readUInt32BE(o);
}
function i32(b: Buffer, o: number): number {
  return HOST_LE ? b.readInt32LE(o) : b.readInt32BE(o);
}

/** Splits a datagram into its netlink messages; stops at a truncated one. */
export function parseMessages(datagram: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let o = 0;
  while (o + 16 <= datagram.length) {
    const len = u32(datagram, o);
    if (len < 16 || o + len > datagram.length) break;
    out.push({
      type: u16(datagram, o + 4),
      flags: u16(datagram, o + 6),
      seq: u32(datagram, o + 8),
      pid: u32(datagram, o + 12),
      payload: datagram.subarray(o + 16, o + len),
    });
    o += align4(len);
  }
  return out;
}

/** The errno of an NLMSG_ERROR payload as a positive number; 0 is an ACK. */
export function parseErrorPayload(payload: Buffer): number {
  return payload.length >= 4 ? -i32(payload, 0) : 0;
}

function parseAttributes(b: Buffer, start: number): Map<number, Buffer> {
  const attrs = new Map<number, Buffer>();
  let o = start;
  while (o + 4 <= b.length) {
    const len = u16(b, o);
    if (len < 4 || o + len > b.length) break;
    attrs.set(u16(b, o + 2) & NLA_TYPE_MASK, b.subarray(o + 4, o + len));
    o += align4(len);
  }
  return attrs;
}

function cString(b: Buffer | undefined): string | undefined {
  if (!b) return undefined;
  const nul = b.indexOf(0);
  return b.subarray(0, nul === -1 ? b.length : nul).toString('utf8');
}

/** A decoded RTM_NEWLINK / RTM_DELLINK. */
export interface RawLink {
  readonly index: number;
  readonly flags: number;
  readonly name: string;
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly operState: string;
  readonly kind: string | undefined;
}

export function parseLinkPayload(p: Buffer): RawLink {
  const attrs = parseAttributes(p, 16);
  const info = attrs.get(IFLA.LINKINFO);
  const oper = attrs.get(IFLA.OPERSTATE);
  const mtu = attrs.get(IFLA.MTU);
  return {
    index: i32(p, 4),
    flags: u32(p, 8),
    name: cString(attrs.get(IFLA.IFNAME)) ?? '',
    mac: Uint8Array.from(attrs.get(IFLA.ADDRESS) ?? []),
    mtu: mtu ? u32(mtu, 0) : 0,
    operState: oper ? (OPER_STATES[oper[0]!] ?? 'unknown') : 'unknown',
    kind: info ? cString(parseAttributes(info, 0).get(IFLA_INFO_KIND)) : undefined,
  };
}

/** A decoded RTM_NEWADDR / RTM_DELADDR. */
export interface RawAddress {
  readonly family: number;
  readonly prefixLength: number;
  readonly linkIndex: number;
  readonly scope: number;
  readonly address: Uint8Array;
  readonly flags: number;
  readonly validLifetime: number;
  readonly preferredLifetime: number;
  /** IFA_PROTO; the kernel leaves it out when it is 0. */
  readonly protocol: number | undefined;
}

export function parseAddressPayload(p: Buffer): RawAddress {
  const attrs = parseAttributes(p, 8);
  const flagsAttr = attrs.get(IFA.FLAGS);
  const ci = attrs.get(IFA.CACHEINFO);
  const proto = attrs.get(IFA.PROTO);
  return {
    protocol: proto && proto.length >= 1 && proto[0] !== 0 ? proto[0] : undefined,
    family: p[0]!,
    prefixLength: p[1]!,
    scope: p[3]!,
    linkIndex: u32(p, 4),
    address: Uint8Array.from(attrs.get(IFA.LOCAL) ?? attrs.get(IFA.ADDRESS) ?? []),
    flags: flagsAttr ? u32(flagsAttr, 0) : p[2]!,
    preferredLifetime: ci ? u32(ci, 0) : INFINITY_LIFE_TIME,
    validLifetime: ci ? u32(ci, 4) : INFINITY_LIFE_TIME,
  };
}

/** A decoded RTM_NEWROUTE, only the fields a default-route lookup reads. */
export interface RawRoute {
  readonly family: number;
  readonly dstLength: number;
  readonly table: number;
  readonly type: number;
  readonly oif: number | undefined;
  readonly gateway: Uint8Array | undefined;
  readonly priority: number;
}

export function parseRoutePayload(p: Buffer): RawRoute {
  const attrs = parseAttributes(p, 12);
  const table = attrs.get(RTA.TABLE);
  const oif = attrs.get(RTA.OIF);
  const prio = attrs.get(RTA.PRIORITY);
  const gw = attrs.get(RTA.GATEWAY);
  return {
    family: p[0]!,
    dstLength: p[1]!,
    table: table ? u32(table, 0) : p[4]!,
    type: p[7]!,
    oif: oif ? u32(oif, 0) : undefined,
    gateway: gw ? Uint8Array.from(gw) : undefined,
    priority: prio ? u32(prio, 0) : 0,
  };
}

/** Whether a route is a unicast default route of the main table. */
export function isMainDefaultRoute(r: RawRoute): boolean {
  return r.dstLength === 0 && r.table === RT_TABLE_MAIN && r.type === RTN_UNICAST && r.oif !== undefined;
}
