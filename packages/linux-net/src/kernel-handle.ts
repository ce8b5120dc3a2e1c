import { channel } from 'node:diagnostics_channel';
import { constants as osConstants } from 'node:os';
import { addressFromBytes, formatAddress, parseAddress, subnetContains, subnetOf } from '@purelb/ipam-core';
import { formatAddressBytes, formatMac, parseAddressText, type ParsedAddress } from './address.ts';
import {
  ALL_NODES_MAC,
  ARP_REPLY,
  ARP_REQUEST,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV6,
  buildArpProbe,
  buildDadNeighbourSolicitation,
  buildGratuitousArp,
  buildUnsolicitedNeighbourAdvertisement,
  solicitedNodeMulticast,
} from './announce/frames.ts';
import { PacketReceiver, PacketSender, PacketSocketError } from './announce/packet-socket.ts';
import { conflictingMac, neighbourDiscoveryFilter, probeOperation, probeTiming, throwIfAborted, type ProbeSubject } from './announce/probe.ts';
import { NetlinkError, NetlinkErrorCode } from './errors.ts';
import type { NetlinkHandle } from './handle.ts';
import { NetnsPin } from './netns.ts';
import {
  AF,
  IFA_F,
  IFF_UP,
  INFINITY_LIFE_TIME,
  NLM_F,
  RTM,
  RTMGRP,
  encodeAddressRequest,
  encodeDeleteLinkRequest,
  encodeDumpRequest,
  encodeGetLinkRequest,
  encodeNewLinkRequest,
  encodeSetLinkUpRequest,
  isMainDefaultRoute,
  parseAddressPayload,
  parseLinkPayload,
  parseRoutePayload,
  type NetlinkMessage,
  type RawAddress,
  type RawLink,
} from './rtnl/codec.ts';
import { RtnlFailure, RtnlSocket, errnoName } from './rtnl/socket.ts';
import { ChangeQueue } from './subscription.ts';
import type {
  AddressBatchItem,
  AddressOptions,
  AddressReplaceItem,
  AnnounceOptions,
  BatchResult,
  DefaultRoute,
  Family,
  InterfaceAddress,
  Link,
  LinkRef,
  LocalSubnet,
  NetChange,
  NetChangeSubscription,
  ProbeOptions,
  ProbeResult,
  VirtualLinkResult,
} from './types.ts';

/** IFF_NOARP: the link does no ARP (and no neighbour discovery). */
const IFF_NOARP = 0x80;
/** How often a probe reads what has arrived while it waits: the latency of an early answer. */
const PROBE_POLL_MS = 5;
/** Frames read per look at a probe's queue; the final look reads on until the queue is empty. */
const DRAIN_FRAMES = 256;
/** Items of a batch in flight at once: bounds the memory a batch of any size takes. */
const BATCH_WINDOW = 512;

/** Options of {@link openNetlinkHandle}. */
export interface NetlinkHandleOptions {
  /**
   * The link kind `ensureVirtualLink` creates. Default `dummy`, as PureLB uses; set it to
   * a kind the kernel has (`bridge`, `ifb`) where the dummy driver is missing.
   */
  readonly virtualLinkKind?: string;
  /** Milliseconds before a netlink request without an answer fails with `NETLINK_TIMEOUT`. Default 5000. */
  readonly requestTimeoutMs?: number;
  /** Largest number of unread changes a subscription keeps before it drops them and yields `resync`. Default 10000. */
  readonly subscriptionBacklog?: number;
}

/**
 * Diagnostics channel `purelb:linux-net` publishes one message per change this package
 * makes (`{ op, link, address }`), for callers who want to log or count them.
 */
export const diagnostics = channel('purelb:linux-net');

const familyNumber = (f: Family): number => (f === 'IPv4' ? AF.INET : AF.INET6);
const familyName = (n: number): Family => (n === AF.INET ? 'IPv4' : 'IPv6');
const lifetime = (s: number): number => (s === INFINITY_LIFE_TIME ? Infinity : s);

export function toLink(r: RawLink): Link {
  return { index: r.index, name: r.name, kind: r.kind, mac: formatMac(r.mac), up: (r.flags & IFF_UP) !== 0, operState: r.operState, mtu: r.mtu };
}

export function toInterfaceAddress(r: RawAddress): InterfaceAddress {
  return {
    family: familyName(r.family),
    address: formatAddressBytes(r.address),
    prefixLength: r.prefixLength,
    linkIndex: r.linkIndex,
    flags: {
      noprefixroute: (r.flags & IFA_F.NOPREFIXROUTE) !== 0,
      nodad: (r.flags & IFA_F.NODAD) !== 0,
      secondary: (r.flags & IFA_F.SECONDARY) !== 0,
      permanent: (r.flags & IFA_F.PERMANENT) !== 0,
      tentative: (r.flags & IFA_F.TENTATIVE) !== 0,
      deprecated: (r.flags & IFA_F.DEPRECATED) !== 0,
      dadfailed: (r.flags & IFA_F.DADFAILED) !== 0,
    },
    validLifetime: lifetime(r.validLifetime),
    preferredLifetime: lifetime(r.preferredLifetime),
    ...(r.protocol !== undefined ? { protocol: r.protocol } : {}),
  };
}

/** Validates lifetimes, flags and protocol into the request fields; shared with the in-memory handle. */
export function addressRequestFields(
  address: string,
  options: AddressOptions,
): { flags: number; lifetimes?: { valid: number; preferred: number }; protocol?: number } {
  let flags = 0;
  if (options.noprefixroute) flags |= IFA_F.NOPREFIXROUTE;
  if (options.nodad) flags |= IFA_F.NODAD;
  const { validLifetime, preferredLifetime, protocol } = options;
  if (protocol !== undefined && !(Number.isInteger(protocol) && protocol >= 0 && protocol <= 255)) {
    throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `protocol ${protocol} for ${address} must be a whole number from 0 to 255`, { address, field: 'protocol' });
  }
  const proto = protocol !== undefined ? { protocol } : {};
  if (validLifetime === undefined && preferredLifetime === undefined) return { flags, ...proto };
  const valid = validLifetime ?? Infinity;
  const preferred = preferredLifetime ?? valid;
  for (const [field, v] of [['validLifetime', valid], ['preferredLifetime', preferred]] as const) {
    if (v !== Infinity && !(Number.isInteger(v) && v >= 0 && v < INFINITY_LIFE_TIME)) {
      throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `${field} ${v} for ${address} is not a whole number of seconds (or Infinity)`, { address, field });
    }
  }
  if (preferred > valid) {
    throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `preferredLifetime ${preferred} for ${address} exceeds validLifetime ${valid}`, { address, field: 'preferredLifetime' });
  }
  const enc = (v: number): number => (v === Infinity ? INFINITY_LIFE_TIME : v);
  return { flags, lifetimes: { valid: enc(valid), preferred: enc(preferred) }, ...proto };
}

/** Maps a failed request to the package's error, naming what the call was about. */
function translate(e: unknown, operation: string, context: { link?: LinkRef; address?: string }): NetlinkError {
  if (e instanceof NetlinkError) return e;
  if (!(e instanceof RtnlFailure)) return new NetlinkError(NetlinkErrorCode.RequestFailed, `${operation}: ${String(e)}`, { ...context, operation });
  const what = `${operation}${context.link !== undefined ? ` (link ${context.link})` : ''}`;
  if (e.reason === 'timeout') return new NetlinkError(NetlinkErrorCode.Timeout, `${what}: ${e.message}`, { ...context, operation });
  if (e.reason === 'closed') return new NetlinkError(NetlinkErrorCode.Closed, `${what}: the handle is closed`, { ...context, operation });
  const errno = errnoName(e.errno);
  const ctx = { ...context, operation, errno };
  switch (e.errno) {
    case osConstants.errno.EPERM:
    case osConstants.errno.EACCES:
      return new NetlinkError(NetlinkErrorCode.Permission, `${what}: ${errno}; the process needs CAP_NET_ADMIN`, ctx);
    case osConstants.errno.ENODEV:
      return new NetlinkError(NetlinkErrorCode.LinkNotFound, `${what}: no such link`, ctx);
    case osConstants.errno.EINVAL:
    case osConstants.errno.ERANGE:
      return new NetlinkError(NetlinkErrorCode.InvalidArgument, `${what}: the kernel rejected the request as invalid (${errno})`, ctx);
    default:
      return new NetlinkError(NetlinkErrorCode.RequestFailed, `${what}: ${e.message}`, ctx);
  }
}

class KernelNetlinkHandle implements NetlinkHandle {
  readonly #pin: NetnsPin;
  readonly #socket: RtnlSocket;
  readonly #virtualLinkKind: string;
  readonly #timeoutMs: number;
  readonly #backlog: number;
  readonly #subscriptions = new Set<ChangeQueue>();
  #sender: PacketSender | undefined;
  #senderError: NetlinkError | undefined;
  #closed = false;

  constructor(options: NetlinkHandleOptions) {
    this.#virtualLinkKind = options.virtualLinkKind ?? 'dummy';
    this.#timeoutMs = options.requestTimeoutMs ?? 5000;
    this.#backlog = options.subscriptionBacklog ?? 10_000;
    this.#pin = new NetnsPin();
    try {
      this.#socket = new RtnlSocket({ timeoutMs: this.#timeoutMs });
    } catch (e) {
      this.#pin.close();
      throw new NetlinkError(NetlinkErrorCode.SocketFailed, `cannot open a netlink socket: ${e instanceof Error ? e.message : String(e)}`);
    }
    // Opened now, in this namespace, so a later announce needs no namespace switch; without
    // CAP_NET_RAW the handle still manages addresses and announce() reports the permission error.
    try {
      this.#sender = new PacketSender();
    } catch (e) {
      this.#senderError = e instanceof NetlinkError ? e : new NetlinkError(NetlinkErrorCode.SocketFailed, String(e));
    }
  }

  async listLinks(): Promise<Link[]> {
    const parts = await this.#dump(RTM.GETLINK, 0, 'ip link show', {});
    return parts.filter((m) => m.type === RTM.NEWLINK).map((m) => toLink(parseLinkPayload(m.payload)));
  }

  async getLink(link: LinkRef): Promise<Link> {
    return toLink(await this.#rawLink(link, 'ip link show'));
  }

  async findLinks(pattern: RegExp): Promise<Link[]> {
    // A /g or /y pattern keeps lastIndex between test() calls; a copy without them matches each name afresh.
    const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
    return (await this.listLinks()).filter((l) => re.test(l.name)).sort((a, b) => a.index - b.index);
  }

  async listAddresses(filter: { readonly link?: LinkRef; readonly family?: Family } = {}): Promise<InterfaceAddress[]> {
    const index = filter.link === undefined ? undefined : (await this.#rawLink(filter.link, 'ip addr show')).index;
    const parts = await this.#dump(RTM.GETADDR, filter.family ? familyNumber(filter.family) : 0, 'ip addr show', filter.link === undefined ? {} : { link: filter.link });
    return parts
      .filter((m) => m.type === RTM.NEWADDR)
      .map((m) => parseAddressPayload(m.payload))
      .filter((a) => index === undefined || a.linkIndex === index)
      .map(toInterfaceAddress);
  }

  async addAddress(link: LinkRef, address: string, options: AddressOptions = {}): Promise<boolean> {
    const op = `ip addr add ${address} dev ${link}`;
    try {
      await this.#addressRequest(RTM.NEWADDR, NLM_F.CREATE | NLM_F.EXCL, link, address, options, op);
      this.#publish('add', link, address);
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && e.context.errno === 'EEXIST') return false;
      throw e;
    }
  }

  async replaceAddress(link: LinkRef, address: string, options: AddressOptions = {}): Promise<void> {
    await this.#addressRequest(RTM.NEWADDR, NLM_F.CREATE | NLM_F.REPLACE, link, address, options, `ip addr replace ${address} dev ${link}`);
    this.#publish('replace', link, address);
  }

  async deleteAddress(link: LinkRef, address: string): Promise<boolean> {
    const op = `ip addr del ${address} dev ${link}`;
    const parsed = parseAddressText(address);
    // An IPv6 address without a length needs the link checked and the addresses read; anything else goes straight out.
    const needsLookup = !parsed.hadPrefix && parsed.family === 'IPv6';
    const index = typeof link === 'number' && !needsLookup ? link : await this.#linkIndex(link, op);
    return this.#deleteResolved(link, index, parsed, address, op, () => this.listAddresses({ family: 'IPv6' }));
  }

  async deleteAddresses(items: readonly AddressBatchItem[]): Promise<BatchResult<boolean>[]> {
    if (this.#closed) throw new NetlinkError(NetlinkErrorCode.Closed, 'ip addr del: the handle is closed', { operation: 'ip addr del' });
    const links = await this.#resolveLinks(items.map((i) => i.link));
    // One read of the IPv6 addresses serves every IPv6 item without a length.
    let v6: Promise<InterfaceAddress[]> | undefined;
    const lookup = (): Promise<InterfaceAddress[]> => (v6 ??= this.listAddresses({ family: 'IPv6' }));
    return this.#batch(items, async (item) => {
      const op = `ip addr del ${item.address} dev ${item.link}`;
      const parsed = parseAddressText(item.address);
      return this.#deleteResolved(item.link, resolvedIndex(links, item.link, item.address, op), parsed, item.address, op, lookup);
    });
  }

  async replaceAddresses(items: readonly AddressReplaceItem[]): Promise<BatchResult<void>[]> {
    if (this.#closed) throw new NetlinkError(NetlinkErrorCode.Closed, 'ip addr replace: the handle is closed', { operation: 'ip addr replace' });
    const links = await this.#resolveLinks(items.map((i) => i.link));
    return this.#batch(items, async (item) => {
      const op = `ip addr replace ${item.address} dev ${item.link}`;
      const index = resolvedIndex(links, item.link, item.address, op);
      await this.#addressRequest(RTM.NEWADDR, NLM_F.CREATE | NLM_F.REPLACE, item.link, item.address, item.options ?? {}, op, index);
      this.#publish('replace', item.link, item.address);
    });
  }

  async defaultRoute(family: Family): Promise<DefaultRoute | undefined> {
    const parts = await this.#dump(RTM.GETROUTE, familyNumber(family), `ip ${family === 'IPv4' ? '-4' : '-6'} route show default`, {});
    const routes = parts
      .filter((m) => m.type === RTM.NEWROUTE)
      .map((m) => parseRoutePayload(m.payload))
      .filter((r) => r.family === familyNumber(family) && isMainDefaultRoute(r))
      .sort((a, b) => a.priority - b.priority || a.oif! - b.oif!);
    const best = routes[0];
    if (!best) return undefined;
    return { family, link: await this.getLink(best.oif!), gateway: best.gateway ? formatAddressBytes(best.gateway) : undefined, metric: best.priority };
  }

  async localSubnetFor(address: string, linkPattern?: RegExp): Promise<LocalSubnet | undefined> {
    const target = parseAddressText(address);
    const links = linkPattern ? await this.findLinks(linkPattern) : await this.listLinks();
    return pickLocalSubnet(target, links, await this.listAddresses({ family: target.family }));
  }

  async ensureVirtualLink(name: string): Promise<VirtualLinkResult> {
    const kind = this.#virtualLinkKind;
    const op = `ip link add ${name} type ${kind}`;
    let created = false;
    let raw = await this.#rawLink(name, op).catch((e: unknown) => {
      if (e instanceof NetlinkError && e.code === NetlinkErrorCode.LinkNotFound) return undefined;
      throw e;
    });
    if (raw && raw.kind !== kind) {
      throw new NetlinkError(
        NetlinkErrorCode.LinkKindMismatch,
        `link ${name} exists as kind "${raw.kind ?? 'physical'}", but virtualLinkKind is "${kind}"; rename the link or change virtualLinkKind`,
        { link: name, field: 'virtualLinkKind', operation: op },
      );
    }
    if (!raw) {
      try {
        await this.#socket.request((seq) => encodeNewLinkRequest(seq, name, kind));
        created = true;
        this.#publish('link-add', name, undefined);
      } catch (e) {
        if (e instanceof RtnlFailure && e.errno === osConstants.errno.EOPNOTSUPP) {
          throw new NetlinkError(
            NetlinkErrorCode.LinkKindUnsupported,
            `cannot create ${name}: this kernel has no "${kind}" link driver (EOPNOTSUPP); set virtualLinkKind to a kind it has, for example "bridge" or "ifb"`,
            { link: name, field: 'virtualLinkKind', operation: op, errno: 'EOPNOTSUPP' },
          );
        }
        if (!(e instanceof RtnlFailure && e.errno === osConstants.errno.EEXIST)) throw translate(e, op, { link: name });
      }
      raw = await this.#rawLink(name, op);
    }
    if ((raw.flags & IFF_UP) === 0) {
      const index = raw.index;
      await this.#socket.request((seq) => encodeSetLinkUpRequest(seq, index)).catch((e: unknown) => {
        throw translate(e, `ip link set ${name} up`, { link: name });
      });
      raw = await this.#rawLink(name, op);
    }
    return { link: toLink(raw), created };
  }

  async deleteLink(link: LinkRef): Promise<boolean> {
    const op = `ip link del ${link}`;
    let index: number;
    try {
      index = await this.#linkIndex(link, op);
    } catch (e) {
      if (e instanceof NetlinkError && e.code === NetlinkErrorCode.LinkNotFound) return false;
      throw e;
    }
    try {
      await this.#socket.request((seq) => encodeDeleteLinkRequest(seq, index));
    } catch (e) {
      const err = translate(e, op, { link });
      if (err.code === NetlinkErrorCode.LinkNotFound) return false;
      throw err;
    }
    this.#publish('link-delete', link, undefined);
    return true;
  }

  async announce(link: LinkRef, address: string, options: AnnounceOptions = {}): Promise<void> {
    const count = options.count ?? 1;
    const intervalMs = options.intervalMs ?? 1000;
    if (!Number.isInteger(count) || count < 1 || count > 100) {
      throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `count ${count} for announcing ${address} must be a whole number from 1 to 100`, { address, field: 'count' });
    }
    if (!(intervalMs >= 0 && intervalMs <= 60_000)) {
      throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `intervalMs ${intervalMs} for announcing ${address} must be 0 to 60000`, { address, field: 'intervalMs' });
    }
    const parsed = parseAddressText(address);
    const op = parsed.family === 'IPv4' ? `arping -U -I ${link} ${address}` : `ndsend ${address} ${link}`;
    const sender = this.#sender;
    if (!sender) throw this.#senderError ?? new NetlinkError(NetlinkErrorCode.Closed, 'the handle is closed');
    const raw = await this.#rawLink(link, op);
    if (raw.mac.length !== 6) {
      throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `link ${raw.name} has no Ethernet address to announce ${address} from`, { link, address, operation: op });
    }
    const frames =
      parsed.family === 'IPv4'
        ? [buildGratuitousArp(ARP_REQUEST, raw.mac, parsed.bytes), buildGratuitousArp(ARP_REPLY, raw.mac, parsed.bytes)]
        : [buildUnsolicitedNeighbourAdvertisement(raw.mac, parsed.bytes)];
    for (let round = 0; round < count; round++) {
      if (round > 0) await new Promise((r) => setTimeout(r, intervalMs));
      if (this.#closed) throw new NetlinkError(NetlinkErrorCode.Closed, `${op}: the handle was closed`, { link, address, operation: op });
      for (const f of frames) sender.send(raw.index, f);
    }
    this.#publish('announce', link, address);
  }

  async probeAddress(link: LinkRef, address: string, options: ProbeOptions = {}): Promise<ProbeResult> {
    const timing = probeTiming(address, options);
    const parsed = parseAddressText(address);
    const op = probeOperation(parsed.family, link, address);
    const context = { link, address, operation: op };
    const { signal } = options;
    throwIfAborted(signal, op, context);
    const sender = this.#sender;
    if (!sender) throw this.#senderError ?? new NetlinkError(NetlinkErrorCode.Closed, `${op}: the handle is closed`, context);
    const raw = await this.#rawLink(link, op);
    checkProbeLink(raw, context, 'is');
    const subject: ProbeSubject = { family: parsed.family, address: parsed.bytes, mac: raw.mac };
    const frame = parsed.family === 'IPv4' ? buildArpProbe(raw.mac, parsed.bytes) : buildDadNeighbourSolicitation(raw.mac, parsed.bytes);
    // Bound (and filtered) before the first probe goes out, so no answer can slip past.
    const receiver = this.#pin.run(
      () =>
        new PacketReceiver(
          raw.index,
          parsed.family === 'IPv4'
            ? { protocol: ETHERTYPE_ARP, receiveBufferBytes: 1 << 20, operation: op }
            : { protocol: ETHERTYPE_IPV6, filter: neighbourDiscoveryFilter(), multicast: [solicitedNodeMulticast(parsed.bytes).mac, ALL_NODES_MAC], receiveBufferBytes: 1 << 20, operation: op },
        ),
    );
    try {
      // Reads what is queued; `everything` keeps reading (boundedly) past one full drain, for the final look.
      const heard = (everything = false): string | undefined => {
        try {
          for (let round = 0; round < (everything ? 64 : 1); round++) {
            const frames = receiver.drain(DRAIN_FRAMES);
            for (const f of frames) {
              const mac = conflictingMac(f, subject);
              if (mac) return mac;
            }
            if (frames.length < DRAIN_FRAMES) break;
          }
          return undefined;
        } catch (e) {
          throw probeSocketFailure(e, context, 'read');
        }
      };
      const start = performance.now();
      for (let i = 0; i < timing.probes; i++) {
        const early = i === 0 ? undefined : await this.#listenUntil(start + i * timing.intervalMs, heard, signal, context);
        if (early) return { conflict: true, mac: early };
        try {
          sender.trySend(raw.index, frame);
        } catch (e) {
          throw probeSocketFailure(e, context, 'send');
        }
      }
      const mac = await this.#listenUntil(start + timing.totalMs, heard, signal, context);
      if (mac) return { conflict: true, mac };
      // Silence from a link that went down meanwhile proves nothing.
      checkProbeLink(await this.#rawLink(raw.index, op), context, 'went');
      return { conflict: false };
    } finally {
      receiver.close();
    }
  }

  subscribe(): NetChangeSubscription {
    if (this.#closed) throw new NetlinkError(NetlinkErrorCode.Closed, 'ip monitor: the handle is closed', { operation: 'ip monitor' });
    const socket = this.#pin.run(() => new RtnlSocket({ groups: RTMGRP.LINK | RTMGRP.IPV4_IFADDR | RTMGRP.IPV6_IFADDR }));
    const queue = new ChangeQueue(this.#backlog, () => {
      socket.close();
      this.#subscriptions.delete(queue);
    });
    socket.onNotification = (m) => {
      const change = toChange(m);
      if (change) queue.push(change);
    };
    // ENOBUFS: the kernel dropped notifications because we read too slowly.
    socket.onError = () => queue.push({ kind: 'resync' });
    this.#subscriptions.add(queue);
    return queue;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const q of [...this.#subscriptions]) q.close();
    this.#socket.close();
    this.#sender?.close();
    this.#pin.close();
  }

  async #dump(type: number, family: number, op: string, context: { link?: LinkRef }): Promise<NetlinkMessage[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#socket.dump((seq) => encodeDumpRequest(type, seq, family));
      } catch (e) {
        // A dump that raced a change is retried a few times, as iproute2 does not (it warns).
        if (e instanceof RtnlFailure && e.errno === osConstants.errno.EINTR && attempt < 5) continue;
        throw translate(e, op, context);
      }
    }
  }

  async #rawLink(link: LinkRef, op: string): Promise<RawLink> {
    if (typeof link === 'number' ? !(Number.isInteger(link) && link > 0) : link.length === 0 || link.length > 15) {
      throw new NetlinkError(NetlinkErrorCode.LinkNotFound, `${op}: "${link}" is not a link name (1-15 characters) or index`, { link, operation: op });
    }
    try {
      const parts = await this.#socket.request((seq) => encodeGetLinkRequest(seq, typeof link === 'number' ? { index: link } : { name: link }));
      const m = parts.find((p) => p.type === RTM.NEWLINK);
      if (!m) throw new NetlinkError(NetlinkErrorCode.LinkNotFound, `${op}: link ${link} does not exist`, { link, operation: op });
      return parseLinkPayload(m.payload);
    } catch (e) {
      const err = translate(e, op, { link });
      if (err.code === NetlinkErrorCode.LinkNotFound) throw new NetlinkError(NetlinkErrorCode.LinkNotFound, `${op}: link ${link} does not exist`, { link, operation: op });
      throw err;
    }
  }

  async #linkIndex(link: LinkRef, op: string): Promise<number> {
    return (await this.#rawLink(link, op)).index;
  }

  /** Reads what arrives until `deadline` (performance.now() time); returns the first conflicting MAC heard. */
  async #listenUntil(deadline: number, heard: (everything?: boolean) => string | undefined, signal: AbortSignal | undefined, context: ProbeContext): Promise<string | undefined> {
    // At most one pass per millisecond of the longest probe, so the loop is bounded by count as well as by time.
    for (let pass = 0; pass < 100_000; pass++) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      await new Promise((r) => setTimeout(r, Math.min(PROBE_POLL_MS, left)));
      if (this.#closed) throw new NetlinkError(NetlinkErrorCode.Closed, `${context.operation}: the handle was closed`, context);
      throwIfAborted(signal, context.operation, context);
      const mac = heard();
      if (mac) return mac;
    }
    // Everything the kernel received before the deadline is in the queue now.
    return heard(true);
  }

  /** Looks up each distinct link once (by name or index) for a batch. */
  async #resolveLinks(links: readonly LinkRef[]): Promise<Map<LinkRef, number | NetlinkError>> {
    const distinct = [...new Set(links)];
    const out = new Map<LinkRef, number | NetlinkError>();
    await Promise.all(
      distinct.map(async (l) => {
        try {
          out.set(l, await this.#linkIndex(l, `ip link show ${l}`));
        } catch (e) {
          out.set(l, e instanceof NetlinkError ? e : translate(e, `ip link show ${l}`, { link: l }));
        }
      }),
    );
    return out;
  }

  /** Runs `one` for every item, at most BATCH_WINDOW at a time, and collects one result per item in order. */
  async #batch<I, T>(items: readonly I[], one: (item: I) => Promise<T>): Promise<BatchResult<T>[]> {
    const results: BatchResult<T>[] = [];
    for (let start = 0; start < items.length; start += BATCH_WINDOW) {
      const window = items.slice(start, start + BATCH_WINDOW);
      // Called in one tick, so the socket packs them into few datagrams and acks them together.
      const settled = await Promise.all(
        window.map((item) =>
          one(item).then(
            (value): BatchResult<T> => ({ ok: true, value }),
            (e: unknown): BatchResult<T> => ({ ok: false, error: e instanceof NetlinkError ? e : translate(e, 'batch', {}) }),
          ),
        ),
      );
      results.push(...settled);
    }
    return results;
  }

  async #deleteResolved(link: LinkRef, index: number, parsed: ParsedAddress, address: string, op: string, v6Addresses: () => Promise<InterfaceAddress[]>): Promise<boolean> {
    let target = parsed;
    let anyPrefixLength = false;
    if (!parsed.hadPrefix) {
      if (parsed.family === 'IPv4') {
        // The kernel deletes an IPv4 address whatever its length when the request carries no IFA_ADDRESS.
        anyPrefixLength = true;
      } else {
        const text = formatAddressBytes(parsed.bytes);
        const found = (await v6Addresses()).find((a) => a.linkIndex === index && a.address === text);
        if (!found) return false;
        target = { ...parsed, prefixLength: found.prefixLength };
      }
    }
    try {
      await this.#addressRequest(RTM.DELADDR, 0, link, target, {}, op, index, anyPrefixLength);
      this.#publish('delete', link, address);
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && e.context.errno === 'EADDRNOTAVAIL') return false;
      throw e;
    }
  }

  async #addressRequest(
    type: number,
    flags: number,
    link: LinkRef,
    address: string | ParsedAddress,
    options: AddressOptions,
    op: string,
    knownIndex?: number,
    anyPrefixLength = false,
  ): Promise<void> {
    const text = typeof address === 'string' ? address : `${formatAddressBytes(address.bytes)}/${address.prefixLength}`;
    const parsed = typeof address === 'string' ? parseAddressText(address) : address;
    const fields = addressRequestFields(text, options);
    // The link name costs one round trip per call; an index skips it.
    const index = knownIndex ?? (typeof link === 'number' ? link : await this.#linkIndex(link, op));
    try {
      await this.#socket.change((seq) =>
        encodeAddressRequest(type, NLM_F.REQUEST | NLM_F.ACK | flags, seq, {
          family: familyNumber(parsed.family),
          prefixLength: parsed.prefixLength,
          linkIndex: index,
          address: parsed.bytes,
          flags: fields.flags,
          ...(fields.lifetimes ? { lifetimes: fields.lifetimes } : {}),
          ...(fields.protocol !== undefined ? { protocol: fields.protocol } : {}),
          ...(anyPrefixLength ? { anyPrefixLength } : {}),
        }),
      );
    } catch (e) {
      const err = translate(e, op, { link, address: text });
      if (err.code === NetlinkErrorCode.LinkNotFound) throw new NetlinkError(NetlinkErrorCode.LinkNotFound, `${op}: link ${link} does not exist`, err.context);
      throw err;
    }
  }

  #publish(op: string, link: LinkRef, address: string | undefined): void {
    if (diagnostics.hasSubscribers) diagnostics.publish({ op, link, address });
  }
}

interface ProbeContext {
  readonly link: LinkRef;
  readonly address: string;
  readonly operation: string;
}

/** Throws `NETLINK_PROBE_FAILED` unless a probe on `raw` can mean something. `tense`: before ('is') or after ('went'). */
function checkProbeLink(raw: RawLink, context: ProbeContext, tense: 'is' | 'went'): void {
  const fail = (before: string, during: string): never => {
    const why = tense === 'is' ? before : `${during} during the probe`;
    throw new NetlinkError(NetlinkErrorCode.ProbeFailed, `${context.operation}: link ${raw.name} ${why}; nothing could be heard`, { ...context, field: 'link' });
  };
  if ((raw.flags & IFF_UP) === 0) fail(`is down (ip link set ${raw.name} up)`, 'went down');
  if (raw.operState !== 'up' && raw.operState !== 'unknown') fail(`has no carrier (operstate ${raw.operState})`, `lost its carrier (operstate ${raw.operState})`);
  if (raw.mac.length !== 6 || raw.mac.every((b) => b === 0)) fail('has no Ethernet address', 'lost its Ethernet address');
  if ((raw.flags & IFF_NOARP) !== 0) fail('has ARP turned off (NOARP), so no host answers probes on it', 'had ARP turned off (NOARP)');
}

function probeSocketFailure(e: unknown, context: ProbeContext, what: 'send' | 'read'): NetlinkError {
  if (e instanceof NetlinkError) return e;
  const errno = e instanceof PacketSocketError ? e.errno : undefined;
  const name = errno === undefined ? undefined : errnoName(errno);
  if (errno === osConstants.errno.ENETDOWN || errno === osConstants.errno.ENXIO || errno === osConstants.errno.ENODEV) {
    return new NetlinkError(NetlinkErrorCode.ProbeFailed, `${context.operation}: link ${context.link} went down during the probe (${name}); nothing could be heard`, { ...context, field: 'link', errno: name! });
  }
  const detail = e instanceof Error ? e.message : String(e);
  return new NetlinkError(NetlinkErrorCode.ProbeFailed, `${context.operation}: cannot ${what} probe frames: ${detail}`, { ...context, ...(name ? { errno: name } : {}) });
}

/** A batch item's link index, or the per-item error its link lookup ended in. */
function resolvedIndex(links: Map<LinkRef, number | NetlinkError>, link: LinkRef, address: string, op: string): number {
  const r = links.get(link);
  if (typeof r === 'number') return r;
  if (r && r.code !== NetlinkErrorCode.LinkNotFound) throw r;
  throw new NetlinkError(NetlinkErrorCode.LinkNotFound, `${op}: link ${link} does not exist`, { link, address, operation: op });
}

/** Picks the connected subnet for `target`; shared by both handles so they agree. */
export function pickLocalSubnet(target: ParsedAddress, links: readonly Link[], addresses: readonly InterfaceAddress[]): LocalSubnet | undefined {
  const byIndex = new Map(links.map((l) => [l.index, l]));
  const t = addressFromBytes(target.bytes);
  let best: LocalSubnet | undefined;
  for (const a of addresses) {
    const link = byIndex.get(a.linkIndex);
    if (!t || !link || a.family !== target.family || a.prefixLength === (target.family === 'IPv4' ? 32 : 128)) continue;
    const own = parseAddress(a.address);
    const subnet = own && subnetOf(own, a.prefixLength);
    if (!subnet || !subnetContains(subnet, t)) continue;
    if (best && (best.subnet.prefixLength > a.prefixLength || (best.subnet.prefixLength === a.prefixLength && best.link.index <= link.index))) continue;
    best = { link, interfaceAddress: a, subnet: { family: a.family, network: formatAddress(subnet.family, subnet.network), prefixLength: a.prefixLength } };
  }
  return best;
}

function toChange(m: NetlinkMessage): NetChange | undefined {
  switch (m.type) {
    case RTM.NEWLINK:
      return { kind: 'link-updated', link: toLink(parseLinkPayload(m.payload)) };
    case RTM.DELLINK:
      return { kind: 'link-removed', link: toLink(parseLinkPayload(m.payload)) };
    case RTM.NEWADDR:
      return { kind: 'address-added', address: toInterfaceAddress(parseAddressPayload(m.payload)) };
    case RTM.DELADDR:
      return { kind: 'address-removed', address: toInterfaceAddress(parseAddressPayload(m.payload)) };
    default:
      return undefined;
  }
}

/**
 * Opens a handle on the network namespace of the calling thread (the agent's own). The
 * handle keeps that namespace: sockets it opens later are opened there.
 */
export function openNetlinkHandle(options: NetlinkHandleOptions = {}): NetlinkHandle {
  return new KernelNetlinkHandle(options);
}
