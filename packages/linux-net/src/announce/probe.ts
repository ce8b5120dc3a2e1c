// The pure parts of an address probe (`arping -D`, duplicate address detection): its
// options and timing, which received frame means "another host holds this address", and
// the socket filter that keeps every other IPv6 packet out of the probe's receive queue.
// Shared by the kernel handle and the in-memory one, so both follow the same rules.
import { formatMac } from '../address.ts';
import { NetlinkError, NetlinkErrorCode } from '../errors.ts';
import type { Family, ProbeOptions } from '../types.ts';
import { ARP_REQUEST, ETHERTYPE_IPV6, parseArpFrame, parseNeighbourAdvertisementFrame, parseNeighbourSolicitationFrame } from './frames.ts';

/** Probe options with their defaults applied and checked. */
export interface ProbeTiming {
  readonly probes: number;
  readonly intervalMs: number;
  readonly waitMs: number;
  /** `(probes - 1) * intervalMs + waitMs`: how long a probe that hears nothing takes. */
  readonly totalMs: number;
}

/** The defaults of `probeAddress` (`arping -D`, at a faster pace): 2 probes 30 ms apart and 80 ms of listening after the last, 110 ms in all. */
export const PROBE_DEFAULTS = { probes: 2, intervalMs: 30, waitMs: 80 } as const;

/** Applies defaults and checks bounds; throws `NETLINK_INVALID_ARGUMENT` naming the field. */
export function probeTiming(address: string, options: ProbeOptions): ProbeTiming {
  const probes = options.probes ?? PROBE_DEFAULTS.probes;
  const intervalMs = options.intervalMs ?? PROBE_DEFAULTS.intervalMs;
  const waitMs = options.waitMs ?? PROBE_DEFAULTS.waitMs;
  if (!Number.isInteger(probes) || probes < 1 || probes > 10) {
    throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `probes ${probes} for probing ${address} must be a whole number from 1 to 10`, { address, field: 'probes' });
  }
  for (const [field, v] of [['intervalMs', intervalMs], ['waitMs', waitMs]] as const) {
    if (!(v >= 0 && v <= 10_000)) {
      throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `${field} ${v} for probing ${address} must be 0 to 10000`, { address, field });
    }
  }
  return { probes, intervalMs, waitMs, totalMs: (probes - 1) * intervalMs + waitMs };
}

/** Throws `NETLINK_ABORTED` (with the signal's reason as `cause`) when `signal` has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, operation: string, context: { readonly link?: string | number; readonly address?: string }): void {
  if (signal?.aborted) throw new NetlinkError(NetlinkErrorCode.Aborted, `${operation}: aborted`, { ...context, operation }, { cause: signal.reason });
}

/** Resolves after `sleep(ms)` or as soon as `signal` fires, whichever is first; leaves no listener behind. */
export async function sleepUnlessAborted(sleep: (ms: number) => Promise<void>, ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return sleep(ms);
  if (signal.aborted) return;
  let onAbort: (() => void) | undefined;
  try {
    await Promise.race([sleep(ms), new Promise<void>((resolve) => signal.addEventListener('abort', (onAbort = () => resolve()), { once: true }))]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

/** The `ip`-world command a probe matches, for error messages. */
export function probeOperation(family: Family, link: string | number, address: string): string {
  return family === 'IPv4' ? `arping -D -I ${link} ${address}` : `duplicate address detection for ${address} on ${link} (ip addr add without nodad)`;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const isZero = (a: Uint8Array): boolean => a.every((x) => x === 0);

/** What a probe listens for: the address it probes and the MAC it probes from. */
export interface ProbeSubject {
  readonly family: Family;
  /** 4 or 16 bytes. */
  readonly address: Uint8Array;
  /** The probing link's own MAC: frames from it never count. */
  readonly mac: Uint8Array;
}

/**
 * The MAC of the host a received frame shows holding (or probing for) the address, or
 * undefined when the frame says nothing about it. IPv4 (RFC 5227 section 2.1.1): any ARP
 * packet whose sender address is the address, or an ARP probe (sender 0.0.0.0) for it,
 * from another MAC. IPv6 (RFC 4862 section 5.4.3-5.4.4): a neighbour advertisement for
 * it, or a duplicate address detection solicitation (from `::`) for it, from another MAC,
 * with hop limit 255 and a valid checksum.
 */
export function conflictingMac(frame: Uint8Array, subject: ProbeSubject): string | undefined {
  if (subject.family === 'IPv4') {
    const arp = parseArpFrame(frame);
    if (!arp || equal(arp.sourceMac, subject.mac) || equal(arp.senderMac, subject.mac)) return undefined;
    if (equal(arp.senderIp, subject.address)) return formatMac(arp.senderMac);
    if (arp.op === ARP_REQUEST && isZero(arp.senderIp) && equal(arp.targetIp, subject.address)) return formatMac(arp.senderMac);
    return undefined;
  }
  if (frame.length < 55 || ((frame[12]! << 8) | frame[13]!) !== ETHERTYPE_IPV6) return undefined;
  const na = parseNeighbourAdvertisementFrame(frame);
  if (na) {
    if (na.hopLimit !== 255 || !na.checksumValid || !equal(na.target, subject.address) || equal(na.sourceMac, subject.mac)) return undefined;
    const holder = na.targetMac ?? na.sourceMac;
    return equal(holder, subject.mac) ? undefined : formatMac(holder);
  }
  const ns = parseNeighbourSolicitationFrame(frame);
  if (ns && ns.hopLimit === 255 && ns.checksumValid && isZero(ns.sourceIp) && equal(ns.target, subject.address) && !equal(ns.sourceMac, subject.mac)) {
    return formatMac(ns.sourceMac);
  }
  return undefined;
}

// Classic BPF opcodes (linux/filter.h).
const BPF_LD_H_ABS = 0x28;
const BPF_LD_B_ABS = 0x30;
const BPF_JEQ_K = 0x15;
const BPF_RET_K = 0x06;

function instruction(code: number, jt: number, jf: number, k: number): Buffer {
  // struct sock_filter is in host byte order: u16 code, u8 jt, u8 jf, u32 k.
  const b = Buffer.alloc(8);
  b.writeUInt16LE(code, 0);
  b[2] = jt;
  b[3] = jf;
  b.writeUInt32LE(k >>> 0, 4);
  return b;
}

/**
 * A classic BPF program that accepts only IPv6 neighbour solicitations and advertisements
 * without extension headers (Ethernet type 0x86dd, next header 58, ICMPv6 type 135 or 136),
 * so a busy link's other IPv6 traffic never fills the probe socket's queue and crowds out
 * the one answer that matters. Little-endian hosts, as the rest of this package.
 */
export function neighbourDiscoveryFilter(): Buffer {
  return Buffer.concat([
    instruction(BPF_LD_H_ABS, 0, 0, 12), // 0: Ethernet type
    instruction(BPF_JEQ_K, 0, 5, ETHERTYPE_IPV6), // 1: else drop (7)
    instruction(BPF_LD_B_ABS, 0, 0, 20), // 2: IPv6 next header
    instruction(BPF_JEQ_K, 0, 3, 58), // 3: ICMPv6, else drop (7)
    instruction(BPF_LD_B_ABS, 0, 0, 54), // 4: ICMPv6 type
    instruction(BPF_JEQ_K, 2, 0, 135), // 5: solicitation: accept (8)
    instruction(BPF_JEQ_K, 1, 0, 136), // 6: advertisement: accept (8), else drop (7)
    instruction(BPF_RET_K, 0, 0, 0), // 7: drop
    instruction(BPF_RET_K, 0, 0, 0x40000), // 8: accept (the whole frame)
  ]);
}
