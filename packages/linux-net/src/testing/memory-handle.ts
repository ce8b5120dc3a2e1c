import { formatAddressBytes, parseAddressText, parseMac } from '../address.ts';
import { probeOperation, probeTiming, sleepUnlessAborted, throwIfAborted } from '../announce/probe.ts';
import { NetlinkError, NetlinkErrorCode } from '../errors.ts';
import type { NetlinkHandle } from '../handle.ts';
import { addressRequestFields, pickLocalSubnet } from '../kernel-handle.ts';
import { ChangeQueue } from '../subscription.ts';
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
} from '../types.ts';

/** One announcement the in-memory handle "sent". */
export interface RecordedAnnouncement {
  readonly link: Link;
  readonly family: Family;
  readonly address: string;
  /** Frames per round: 2 for IPv4 (ARP request and reply), 1 for IPv6. */
  readonly framesPerRound: number;
  readonly count: number;
}

/** One probe the in-memory handle made, with what it heard. */
export interface RecordedProbe {
  readonly link: Link;
  readonly family: Family;
  readonly address: string;
  /** On the handle's clock (`now`), when the first probe went out and when the call returned. */
  readonly startedAt: number;
  readonly endedAt: number;
  readonly result: ProbeResult;
}

/** Options of {@link MemoryNetlinkHandle}. */
export interface MemoryNetlinkHandleOptions {
  /** As for the kernel handle. Default `dummy`. */
  readonly virtualLinkKind?: string;
  /** Link kinds the simulated kernel can create. Default dummy, bridge, ifb, veth. */
  readonly availableKinds?: readonly string[];
  /** Backlog of a subscription before it yields `resync`. Default 10000. */
  readonly subscriptionBacklog?: number;
  /**
   * The clock, in milliseconds, address lifetimes and probes are measured on. Default
   * `performance.now()`. A simulation passes its virtual clock here and in `sleep`.
   */
  readonly now?: () => number;
  /**
   * Waits `ms` on the same clock as `now`: probes, announcement rounds and address expiry
   * wait with it. Default real timers. With a virtual clock, the simulation resolves these
   * as its time advances.
   */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * When the simulated kernel removes an address whose valid lifetime ends at `expiresAt`
   * (on the `now` clock): the same answer for the same time, never earlier. Default: at
   * once. Linux checks lifetimes on a timer of its own, so an expired address may stay (and
   * answer ARP) for up to about a second more; a failover simulation models that here.
   */
  readonly removalTime?: (expiresAt: number) => number;
}

/** A frame as a segment carries it: only what probes listen for. */
interface SegmentFrame {
  /** `probe`: someone asks who holds the address; `claim`: someone says it does (reply, GARP, NA). */
  readonly kind: 'probe' | 'claim';
  readonly family: Family;
  readonly address: string;
  readonly mac: string;
}

/** One link plugged into a segment. */
interface SegmentPort {
  readonly handle: MemoryNetlinkHandle;
  readonly linkIndex: number;
  /** The link, while it exists. */
  link(): Link | undefined;
  /** Whether the link holds `address` (of `family`) now. */
  holds(family: Family, address: string): boolean;
}

interface SegmentInternals {
  readonly ports: Set<SegmentPort>;
  readonly listeners: Map<SegmentPort, Set<(f: SegmentFrame) => void>>;
}

const internals = new WeakMap<MemorySegment, SegmentInternals>();

function segmentOf(s: MemorySegment): SegmentInternals {
  return internals.get(s)!;
}

/** Delivers `frame` from `from` to every other port's listeners, and lets holders answer a probe. */
function transmit(segment: MemorySegment, from: SegmentPort, frame: SegmentFrame): void {
  const s = segmentOf(segment);
  if (!s.ports.has(from) || !talks(from.link())) return;
  for (const [port, listeners] of [...s.listeners]) {
    if (port === from || !s.ports.has(port) || !talks(port.link())) continue;
    for (const l of [...listeners]) l(frame);
  }
  if (frame.kind !== 'probe') return;
  // A holder's kernel answers a probe at once (an ARP reply; a neighbour advertisement to ff02::1).
  for (const port of [...s.ports]) {
    const link = port.link();
    if (port === from || !talks(link) || !port.holds(frame.family, frame.address)) continue;
    transmit(segment, port, { kind: 'claim', family: frame.family, address: frame.address, mac: link.mac });
  }
}

/**
 * A shared in-memory LAN for {@link MemoryNetlinkHandle}s: links of several handles (each
 * a node, each link with its own MAC) attached to one segment see each other's ARP and
 * neighbour discovery, so `probeAddress` on one node reports a conflict when another node
 * holds the address on a link that is up and attached here. It carries nothing else.
 */
export class MemorySegment {
  readonly name: string;

  constructor(name = 'lan') {
    this.name = name;
    internals.set(this, { ports: new Set(), listeners: new Map() });
  }

  /** The links attached now, with their handles. */
  attached(): { readonly handle: MemoryNetlinkHandle; readonly link: Link }[] {
    const out: { handle: MemoryNetlinkHandle; link: Link }[] = [];
    for (const p of segmentOf(this).ports) {
      const link = p.link();
      if (link) out.push({ handle: p.handle, link });
    }
    return out;
  }

  /**
   * The MACs of the links that would answer a probe for `address` now: attached, up with a
   * carrier, and holding it. A simulation checks "never two nodes answer for one address" with it.
   */
  holders(address: string): string[] {
    const parsed = parseAddressText(address);
    const text = formatAddressBytes(parsed.bytes);
    const out: string[] = [];
    for (const p of segmentOf(this).ports) {
      const link = p.link();
      if (talks(link) && p.holds(parsed.family, text)) out.push(link.mac);
    }
    return out;
  }
}

interface MemoryLink {
  index: number;
  name: string;
  kind: string | undefined;
  mac: string;
  up: boolean;
  /** The cable is plugged in and the switch port is up (operstate up rather than down). */
  carrier: boolean;
  mtu: number;
}

/** An address as configured, and when (on the handle's clock) it was last added or replaced. */
interface AddressRecord {
  readonly configured: InterfaceAddress;
  readonly setAt: number;
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** setTimeout's largest delay; a longer lifetime is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A {@link NetlinkHandle} over an in-memory network stack, for unit tests of code that
 * uses the handle. It follows the kernel handle's contract (idempotent add/delete, typed
 * errors, change events for every change, its own included) and adds controls a test
 * needs: links, default routes, changes "by someone else", refused permissions, a record
 * of announcements and probes, shared segments (a LAN of several handles) for
 * `probeAddress`, and a clock of the test's choosing for probes and address lifetimes.
 * It does not create IPv6 link-local addresses on its own.
 *
 * Like a kernel, its state outlives `close()`: a closed handle's addresses still answer
 * probes on their segment until their lifetime ends (a killed agent's addresses do too).
 */
export class MemoryNetlinkHandle implements NetlinkHandle {
  readonly #links = new Map<number, MemoryLink>();
  #addresses: AddressRecord[] = [];
  readonly #routes = new Map<Family, { linkIndex: number; gateway: string | undefined; metric: number }[]>();
  readonly #subscriptions = new Set<ChangeQueue>();
  readonly #ports = new Map<number, { segment: MemorySegment; port: SegmentPort }>();
  readonly #virtualLinkKind: string;
  readonly #kinds: ReadonlySet<string>;
  readonly #backlog: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #removalTime: ((expiresAt: number) => number) | undefined;
  readonly #realTimers: boolean;
  #expiryAt: number | undefined;
  #nextIndex = 1;
  #closed = false;
  /** When true, every change (address, link, announce, probe) fails with `NETLINK_PERMISSION`, as without CAP_NET_ADMIN / CAP_NET_RAW. */
  denyChanges = false;
  /** Every announcement made, in order. */
  readonly announcements: RecordedAnnouncement[] = [];
  /** Every probe made that ran to an answer, in order. */
  readonly recordedProbes: RecordedProbe[] = [];

  constructor(options: MemoryNetlinkHandleOptions = {}) {
    this.#virtualLinkKind = options.virtualLinkKind ?? 'dummy';
    this.#kinds = new Set(options.availableKinds ?? ['dummy', 'bridge', 'ifb', 'veth']);
    this.#backlog = options.subscriptionBacklog ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
    this.#sleep = options.sleep ?? realSleep;
    this.#realTimers = options.sleep === undefined;
    this.#removalTime = options.removalTime;
    this.addLink({ name: 'lo', mac: '00:00:00:00:00:00', mtu: 65536 });
  }

  // ---- test controls: the world changing outside the handle ----

  /**
   * Adds a link (as a driver or another program would), up by default, and announces it.
   * With `segment`, the link is plugged into that shared LAN.
   */
  addLink(spec: {
    readonly name: string;
    readonly kind?: string;
    readonly mac?: string;
    readonly up?: boolean;
    readonly mtu?: number;
    readonly segment?: MemorySegment;
  }): Link {
    if ([...this.#links.values()].some((l) => l.name === spec.name)) throw new Error(`test setup: link ${spec.name} already exists`);
    const index = this.#nextIndex++;
    const mac = spec.mac ?? `02:00:00:00:${((index >> 8) & 0xff).toString(16).padStart(2, '0')}:${(index & 0xff).toString(16).padStart(2, '0')}`;
    parseMac(mac);
    const l: MemoryLink = { index, name: spec.name, kind: spec.kind, mac: mac.toLowerCase(), up: spec.up ?? true, carrier: true, mtu: spec.mtu ?? 1500 };
    this.#links.set(index, l);
    if (spec.segment) this.attachToSegment(index, spec.segment);
    this.#emit({ kind: 'link-updated', link: snapshot(l) });
    return snapshot(l);
  }

  /** Removes a link with its addresses and routes, as `ip link del` by someone else would. */
  removeLink(link: LinkRef): void {
    const l = this.#find(link, 'test setup');
    this.#dropLink(l);
  }

  /** Sets a link administratively up or down (`ip link set LINK up|down` by someone else). A probe on a down link fails. */
  setLinkUp(link: LinkRef, up: boolean): void {
    const l = this.#find(link, 'test setup');
    if (l.up === up) return;
    l.up = up;
    this.#emit({ kind: 'link-updated', link: snapshot(l) });
  }

  /**
   * Sets a link's carrier (a cable pulled or a switch port down, and back): the link stays
   * administratively up, its operstate turns `down`, it sends and hears no frames, and its
   * addresses stay on it (IPv4 addresses do on Linux). Announced as `link-updated`, as the
   * kernel does. A probe on a link without carrier fails.
   */
  setCarrier(link: LinkRef, carrier: boolean): void {
    const l = this.#find(link, 'test setup');
    if (l.carrier === carrier) return;
    l.carrier = carrier;
    this.#emit({ kind: 'link-updated', link: snapshot(l) });
  }

  /** Plugs a link into a segment (a cable into a switch), unplugging it from any other first. */
  attachToSegment(link: LinkRef, segment: MemorySegment): void {
    const l = this.#find(link, 'test setup');
    this.detachFromSegment(l.index);
    const port: SegmentPort = {
      handle: this,
      linkIndex: l.index,
      link: () => {
        const now = this.#links.get(l.index);
        return now ? snapshot(now) : undefined;
      },
      holds: (family, address) => {
        this.#expire();
        return this.#addresses.some((r) => r.configured.linkIndex === l.index && r.configured.family === family && r.configured.address === address);
      },
    };
    segmentOf(segment).ports.add(port);
    this.#ports.set(l.index, { segment, port });
  }

  /**
   * Unplugs a link from its segment: a cut cable somewhere past the node, or a frozen
   * switch port. The link stays up (the node notices nothing), its frames reach nobody and
   * nobody's reach it, so its probes hear nothing and its addresses answer nobody. Returns
   * whether it was attached. To model a lost carrier instead, use `setLinkUp(link, false)`.
   */
  detachFromSegment(link: LinkRef): boolean {
    const l = this.#find(link, 'test setup');
    const attached = this.#ports.get(l.index);
    if (!attached) return false;
    const s = segmentOf(attached.segment);
    s.ports.delete(attached.port);
    s.listeners.delete(attached.port);
    this.#ports.delete(l.index);
    return true;
  }

  /** Sets (or with `undefined`, clears) the default route of a family. Several may be set with different metrics. */
  setDefaultRoute(family: Family, link: LinkRef | undefined, options: { readonly gateway?: string; readonly metric?: number } = {}): void {
    if (link === undefined) {
      this.#routes.delete(family);
      return;
    }
    const l = this.#find(link, 'test setup');
    const list = this.#routes.get(family) ?? [];
    list.push({ linkIndex: l.index, gateway: options.gateway, metric: options.metric ?? 0 });
    this.#routes.set(family, list);
  }

  /** Adds an address without going through the handle's rules (someone else's `ip addr add`). */
  addAddressExternally(link: LinkRef, address: string, options: AddressOptions = {}): void {
    this.#expire();
    this.#insert(this.#find(link, 'test setup'), parseAddressText(address), options, address);
  }

  /** Removes an address behind the handle's back, as another program would. Returns whether it was there. */
  removeAddressExternally(link: LinkRef, address: string): boolean {
    this.#expire();
    return this.#remove(this.#find(link, 'test setup'), address);
  }

  /** Makes every open subscription yield `resync`, as after a notification overflow. */
  overflowSubscriptions(): void {
    this.#emit({ kind: 'resync' });
  }

  /**
   * Removes every address whose valid lifetime has ended by `now()`, with an
   * `address-removed` change each, and returns them. The handle does this by itself on
   * every call and when the lifetime ends (waiting with `sleep`); a simulation whose clock
   * has no timers calls it after moving the clock.
   */
  expireAddresses(): InterfaceAddress[] {
    return this.#expire();
  }

  // ---- NetlinkHandle ----

  listLinks(): Promise<Link[]> {
    return this.#call(() => [...this.#links.values()].sort((a, b) => a.index - b.index).map(snapshot));
  }

  getLink(link: LinkRef): Promise<Link> {
    return this.#call(() => snapshot(this.#find(link, 'ip link show')));
  }

  findLinks(pattern: RegExp): Promise<Link[]> {
    const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
    return this.#call(() => [...this.#links.values()].filter((l) => re.test(l.name)).sort((a, b) => a.index - b.index).map(snapshot));
  }

  listAddresses(filter: { readonly link?: LinkRef; readonly family?: Family } = {}): Promise<InterfaceAddress[]> {
    return this.#call(() => {
      const index = filter.link === undefined ? undefined : this.#find(filter.link, 'ip addr show').index;
      return this.#current().filter((a) => (index === undefined || a.linkIndex === index) && (!filter.family || a.family === filter.family));
    });
  }

  addAddress(link: LinkRef, address: string, options: AddressOptions = {}): Promise<boolean> {
    return this.#call(() => {
      const op = `ip addr add ${address} dev ${link}`;
      const parsed = parseAddressText(address);
      addressRequestFields(address, options);
      const l = this.#find(link, op);
      this.#checkPermission(op, link);
      if (this.#indexOf(l.index, parsed) !== -1) return false;
      this.#insert(l, parsed, options, address);
      return true;
    });
  }

  replaceAddress(link: LinkRef, address: string, options: AddressOptions = {}): Promise<void> {
    return this.#call(() => this.#replace(link, address, options));
  }

  deleteAddress(link: LinkRef, address: string): Promise<boolean> {
    return this.#call(() => this.#delete(link, address));
  }

  async deleteAddresses(items: readonly AddressBatchItem[]): Promise<BatchResult<boolean>[]> {
    return this.#batch(items, (item) => this.#delete(item.link, item.address));
  }

  async replaceAddresses(items: readonly AddressReplaceItem[]): Promise<BatchResult<void>[]> {
    return this.#batch(items, (item) => this.#replace(item.link, item.address, item.options ?? {}));
  }

  defaultRoute(family: Family): Promise<DefaultRoute | undefined> {
    return this.#call(() => {
      const best = [...(this.#routes.get(family) ?? [])].sort((a, b) => a.metric - b.metric || a.linkIndex - b.linkIndex)[0];
      const l = best && this.#links.get(best.linkIndex);
      return best && l ? { family, link: snapshot(l), gateway: best.gateway, metric: best.metric } : undefined;
    });
  }

  localSubnetFor(address: string, linkPattern?: RegExp): Promise<LocalSubnet | undefined> {
    return this.#call(() => {
      const target = parseAddressText(address);
      const re = linkPattern && new RegExp(linkPattern.source, linkPattern.flags.replace(/[gy]/g, ''));
      const links = [...this.#links.values()].filter((l) => !re || re.test(l.name)).map(snapshot);
      return pickLocalSubnet(target, links, this.#current());
    });
  }

  ensureVirtualLink(name: string): Promise<VirtualLinkResult> {
    return this.#call(() => {
      const kind = this.#virtualLinkKind;
      const op = `ip link add ${name} type ${kind}`;
      const existing = [...this.#links.values()].find((l) => l.name === name);
      if (existing && existing.kind !== kind) {
        throw new NetlinkError(
          NetlinkErrorCode.LinkKindMismatch,
          `link ${name} exists as kind "${existing.kind ?? 'physical'}", but virtualLinkKind is "${kind}"; rename the link or change virtualLinkKind`,
          { link: name, field: 'virtualLinkKind', operation: op },
        );
      }
      if (existing && existing.up) return { link: snapshot(existing), created: false };
      this.#checkPermission(op, name);
      if (existing) {
        existing.up = true;
        this.#emit({ kind: 'link-updated', link: snapshot(existing) });
        return { link: snapshot(existing), created: false };
      }
      if (!this.#kinds.has(kind)) {
        throw new NetlinkError(
          NetlinkErrorCode.LinkKindUnsupported,
          `cannot create ${name}: this kernel has no "${kind}" link driver (EOPNOTSUPP); set virtualLinkKind to a kind it has, for example "bridge" or "ifb"`,
          { link: name, field: 'virtualLinkKind', operation: op, errno: 'EOPNOTSUPP' },
        );
      }
      return { link: this.addLink({ name, kind }), created: true };
    });
  }

  deleteLink(link: LinkRef): Promise<boolean> {
    return this.#call(() => {
      const l = typeof link === 'number' ? this.#links.get(link) : [...this.#links.values()].find((x) => x.name === link);
      if (!l) return false;
      this.#checkPermission(`ip link del ${link}`, link);
      this.#dropLink(l);
      return true;
    });
  }

  async announce(link: LinkRef, address: string, options: AnnounceOptions = {}): Promise<void> {
    const count = options.count ?? 1;
    const intervalMs = options.intervalMs ?? 1000;
    const rec = await this.#call(() => {
      if (!Number.isInteger(count) || count < 1 || count > 100) {
        throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `count ${count} for announcing ${address} must be a whole number from 1 to 100`, { address, field: 'count' });
      }
      if (!(intervalMs >= 0 && intervalMs <= 60_000)) {
        throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `intervalMs ${intervalMs} for announcing ${address} must be 0 to 60000`, { address, field: 'intervalMs' });
      }
      const parsed = parseAddressText(address);
      const op = parsed.family === 'IPv4' ? `arping -U -I ${link} ${address}` : `ndsend ${address} ${link}`;
      const l = this.#find(link, op);
      if (this.denyChanges) throw new NetlinkError(NetlinkErrorCode.Permission, `${op}: EPERM; sending GARP/NA needs CAP_NET_RAW`, { link, address, operation: op, errno: 'EPERM' });
      if (l.mac === '00:00:00:00:00:00') throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `link ${l.name} has no Ethernet address to announce ${address} from`, { link, address, operation: op });
      return { link: snapshot(l), family: parsed.family, address: formatAddressBytes(parsed.bytes), framesPerRound: parsed.family === 'IPv4' ? 2 : 1, count };
    });
    // Recorded at once, like the kernel handle's first round; the promise still takes the rounds' time.
    this.announcements.push(rec);
    for (let round = 0; round < count; round++) {
      if (round > 0) await this.#sleep(intervalMs);
      this.#transmit(rec.link.index, { kind: 'claim', family: rec.family, address: rec.address, mac: rec.link.mac });
    }
  }

  async probeAddress(link: LinkRef, address: string, options: ProbeOptions = {}): Promise<ProbeResult> {
    const timing = probeTiming(address, options);
    const parsed = parseAddressText(address);
    const text = formatAddressBytes(parsed.bytes);
    const op = probeOperation(parsed.family, link, address);
    const context = { link, address, operation: op };
    const { signal } = options;
    throwIfAborted(signal, op, context);
    const l = await this.#call(() => {
      const found = this.#find(link, op);
      this.#checkProbeLink(found, context, 'is');
      if (this.denyChanges) throw new NetlinkError(NetlinkErrorCode.Permission, `${op}: EPERM; sending and receiving ARP/NDP frames needs CAP_NET_RAW`, { ...context, errno: 'EPERM' });
      return snapshot(found);
    });
    let heard: string | undefined;
    // Listening starts before the first probe, on the segment the link is plugged into now.
    const attached = this.#ports.get(l.index);
    const listener = (f: SegmentFrame): void => {
      if (f.family === parsed.family && f.address === text && f.mac !== l.mac) heard ??= f.mac;
    };
    if (attached) {
      const listeners = segmentOf(attached.segment).listeners;
      const set = listeners.get(attached.port) ?? new Set();
      set.add(listener);
      listeners.set(attached.port, set);
    }
    const startedAt = this.#now();
    const finish = (result: ProbeResult): ProbeResult => {
      this.recordedProbes.push({ link: l, family: parsed.family, address: text, startedAt, endedAt: this.#now(), result });
      return result;
    };
    try {
      for (let i = 0; i < timing.probes; i++) {
        if (i > 0) {
          await this.#wait(timing.intervalMs, signal, context);
          if (heard) return finish({ conflict: true, mac: heard });
        }
        this.#checkStillProbing(l.index, context);
        this.#transmit(l.index, { kind: 'probe', family: parsed.family, address: text, mac: l.mac });
        if (heard) return finish({ conflict: true, mac: heard });
      }
      await this.#wait(timing.waitMs, signal, context);
      if (heard) return finish({ conflict: true, mac: heard });
      this.#checkStillProbing(l.index, context);
      return finish({ conflict: false });
    } finally {
      if (attached) segmentOf(attached.segment).listeners.get(attached.port)?.delete(listener);
    }
  }

  subscribe(): NetChangeSubscription {
    if (this.#closed) throw new NetlinkError(NetlinkErrorCode.Closed, 'ip monitor: the handle is closed', { operation: 'ip monitor' });
    const q = new ChangeQueue(this.#backlog, () => this.#subscriptions.delete(q));
    this.#subscriptions.add(q);
    return q;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const q of [...this.#subscriptions]) q.close();
  }

  // ---- internals ----

  /** Every call answers asynchronously, as the kernel does, so callers cannot depend on sync effects. */
  async #call<T>(fn: () => T): Promise<T> {
    await Promise.resolve();
    if (this.#closed) throw new NetlinkError(NetlinkErrorCode.Closed, 'the handle is closed');
    this.#expire();
    return fn();
  }

  async #batch<I, T>(items: readonly I[], one: (item: I) => T): Promise<BatchResult<T>[]> {
    await Promise.resolve();
    if (this.#closed) throw new NetlinkError(NetlinkErrorCode.Closed, 'the handle is closed');
    this.#expire();
    return items.map((item): BatchResult<T> => {
      try {
        return { ok: true, value: one(item) };
      } catch (e) {
        if (e instanceof NetlinkError) return { ok: false, error: e };
        throw e;
      }
    });
  }

  #replace(link: LinkRef, address: string, options: AddressOptions): void {
    const op = `ip addr replace ${address} dev ${link}`;
    const parsed = parseAddressText(address);
    addressRequestFields(address, options);
    const l = this.#find(link, op, address);
    this.#checkPermission(op, link);
    const i = this.#indexOf(l.index, parsed);
    if (i !== -1) {
      // The kernel replaces in place (lifetimes restart, an omitted protocol resets) and reports it as RTM_NEWADDR.
      const record = { configured: makeAddress(l.index, parsed, options), setAt: this.#now() };
      this.#addresses[i] = record;
      this.#emit({ kind: 'address-added', address: this.#view(record) });
      this.#scheduleExpiry();
    } else this.#insert(l, parsed, options, address);
  }

  #delete(link: LinkRef, address: string): boolean {
    const op = `ip addr del ${address} dev ${link}`;
    parseAddressText(address);
    const l = this.#find(link, op, address);
    this.#checkPermission(op, link);
    return this.#remove(l, address);
  }

  #find(link: LinkRef, op: string, address?: string): MemoryLink {
    const l = typeof link === 'number' ? this.#links.get(link) : [...this.#links.values()].find((x) => x.name === link);
    if (!l) throw new NetlinkError(NetlinkErrorCode.LinkNotFound, `${op}: link ${link} does not exist`, { link, operation: op, ...(address !== undefined ? { address } : {}) });
    return l;
  }

  #checkPermission(op: string, link: LinkRef): void {
    if (this.denyChanges) throw new NetlinkError(NetlinkErrorCode.Permission, `${op} (link ${link}): EPERM; the process needs CAP_NET_ADMIN`, { link, operation: op, errno: 'EPERM' });
  }

  #checkProbeLink(l: MemoryLink, context: { link: LinkRef; address: string; operation: string }, tense: 'is' | 'went'): void {
    const fail = (why: string): never => {
      throw new NetlinkError(NetlinkErrorCode.ProbeFailed, `${context.operation}: link ${l.name} ${why}${tense === 'went' ? ' during the probe' : ''}; nothing could be heard`, { ...context, field: 'link' });
    };
    if (!l.up) fail(tense === 'is' ? `is down (ip link set ${l.name} up)` : 'went down');
    if (!l.carrier) fail(`${tense === 'is' ? 'has' : 'lost'} no carrier (operstate down)`);
    if (l.mac === '00:00:00:00:00:00') fail('has no Ethernet address');
  }

  /** Between probes: the handle still open, the link still there and up. */
  #checkStillProbing(index: number, context: { link: LinkRef; address: string; operation: string }): void {
    if (this.#closed) throw new NetlinkError(NetlinkErrorCode.Closed, `${context.operation}: the handle was closed`, context);
    const l = this.#links.get(index);
    if (!l) throw new NetlinkError(NetlinkErrorCode.ProbeFailed, `${context.operation}: the link was removed during the probe`, { ...context, field: 'link' });
    this.#checkProbeLink(l, context, 'went');
  }

  async #wait(ms: number, signal: AbortSignal | undefined, context: { link: LinkRef; address: string; operation: string }): Promise<void> {
    if (ms > 0) await sleepUnlessAborted(this.#sleep, ms, signal);
    throwIfAborted(signal, context.operation, context);
  }

  #transmit(linkIndex: number, frame: SegmentFrame): void {
    const attached = this.#ports.get(linkIndex);
    if (attached) transmit(attached.segment, attached.port, frame);
  }

  /** Like the kernel: one address per (link, address, prefix length). */
  #indexOf(linkIndex: number, parsed: { bytes: Uint8Array; prefixLength: number }): number {
    const text = formatAddressBytes(parsed.bytes);
    return this.#addresses.findIndex((r) => r.configured.linkIndex === linkIndex && r.configured.address === text && r.configured.prefixLength === parsed.prefixLength);
  }

  #insert(l: MemoryLink, parsed: ReturnType<typeof parseAddressText>, options: AddressOptions, text: string): void {
    addressRequestFields(text, options);
    if (this.#indexOf(l.index, parsed) !== -1) return;
    const record = { configured: makeAddress(l.index, parsed, options), setAt: this.#now() };
    this.#addresses.push(record);
    this.#emit({ kind: 'address-added', address: this.#view(record) });
    this.#scheduleExpiry();
  }

  #remove(l: MemoryLink, address: string): boolean {
    const parsed = parseAddressText(address);
    const text = formatAddressBytes(parsed.bytes);
    const i = this.#addresses.findIndex((r) => r.configured.linkIndex === l.index && r.configured.address === text && (!parsed.hadPrefix || r.configured.prefixLength === parsed.prefixLength));
    if (i === -1) return false;
    const [gone] = this.#addresses.splice(i, 1);
    this.#emit({ kind: 'address-removed', address: this.#view(gone!) });
    return true;
  }

  #dropLink(l: MemoryLink): void {
    this.detachFromSegment(l.index);
    for (const r of this.#addresses.filter((x) => x.configured.linkIndex === l.index)) this.#emit({ kind: 'address-removed', address: this.#view(r) });
    this.#addresses = this.#addresses.filter((x) => x.configured.linkIndex !== l.index);
    for (const [family, list] of this.#routes) this.#routes.set(family, list.filter((r) => r.linkIndex !== l.index));
    this.#links.delete(l.index);
    this.#emit({ kind: 'link-removed', link: snapshot(l) });
  }

  /** The addresses as `ip addr show` would print them now: lifetimes counting down. */
  #current(): InterfaceAddress[] {
    return this.#addresses.map((r) => this.#view(r));
  }

  #view(r: AddressRecord): InterfaceAddress {
    const c = r.configured;
    if (c.validLifetime === Infinity && c.preferredLifetime === Infinity) return c;
    const elapsed = Math.floor(Math.max(0, this.#now() - r.setAt) / 1000);
    const left = (s: number): number => (s === Infinity ? Infinity : Math.max(0, s - elapsed));
    const preferred = left(c.preferredLifetime);
    return { ...c, validLifetime: left(c.validLifetime), preferredLifetime: preferred, flags: { ...c.flags, deprecated: preferred === 0 } };
  }

  /** Removes addresses whose valid lifetime has ended, as the kernel does, with a removal change each. */
  #expire(): InterfaceAddress[] {
    const now = this.#now();
    // Removed when the kernel would: at the end of its lifetime plus the removal delay (#removeAt).
    const ended = (r: AddressRecord): boolean => r.configured.validLifetime !== Infinity && now >= this.#removeAt(r);
    // Called on every call: no new array unless something ended.
    if (!this.#addresses.some(ended)) return [];
    const gone: InterfaceAddress[] = [];
    this.#addresses = this.#addresses.filter((r) => {
      if (!ended(r)) return true;
      gone.push(this.#view(r));
      return false;
    });
    for (const a of gone) this.#emit({ kind: 'address-removed', address: a });
    return gone;
  }

  /** When the kernel removes an address with a valid lifetime: at its end, or later with `removalTime`. */
  #removeAt(r: AddressRecord): number {
    const end = r.setAt + r.configured.validLifetime * 1000;
    return this.#removalTime ? Math.max(end, this.#removalTime(end)) : end;
  }

  /**
   * Keeps one wait pending for the earliest expiry. A refresh that moves it later lets the
   * pending wait end early and schedule the next one; an earlier one schedules its own.
   */
  #scheduleExpiry(): void {
    let next: number | undefined;
    for (const r of this.#addresses) {
      if (r.configured.validLifetime === Infinity) continue;
      const at = this.#removeAt(r);
      if (next === undefined || at < next) next = at;
    }
    if (next === undefined || (this.#expiryAt !== undefined && this.#expiryAt <= next)) return;
    this.#expiryAt = next;
    const at = next;
    const fire = (): void => {
      if (this.#expiryAt === at) this.#expiryAt = undefined;
      this.#expire();
      this.#scheduleExpiry();
    };
    const delay = Math.max(0, at - this.#now());
    if (this.#realTimers) setTimeout(fire, Math.min(delay, MAX_TIMER_MS)).unref();
    else void this.#sleep(delay).then(fire, () => undefined);
  }

  #emit(change: NetChange): void {
    for (const q of this.#subscriptions) q.push(change);
  }
}

function snapshot(l: MemoryLink): Link {
  return { index: l.index, name: l.name, kind: l.kind, mac: l.mac, up: l.up, operState: l.up && l.carrier ? 'unknown' : 'down', mtu: l.mtu };
}

/** Whether a link can send and receive frames: it exists, is up and has a carrier. */
function talks(link: Link | undefined): link is Link {
  return link !== undefined && link.up && link.operState !== 'down';
}

function makeAddress(linkIndex: number, parsed: ReturnType<typeof parseAddressText>, options: AddressOptions): InterfaceAddress {
  const valid = options.validLifetime ?? Infinity;
  const preferred = options.preferredLifetime ?? valid;
  return {
    family: parsed.family,
    address: formatAddressBytes(parsed.bytes),
    prefixLength: parsed.prefixLength,
    linkIndex,
    flags: {
      noprefixroute: options.noprefixroute ?? false,
      nodad: parsed.family === 'IPv6' && (options.nodad ?? false),
      secondary: false,
      permanent: valid === Infinity,
      tentative: false,
      deprecated: preferred === 0,
      dadfailed: false,
    },
    validLifetime: valid,
    preferredLifetime: preferred,
    // Like the kernel, 0 (unspec) is not reported.
    ...(options.protocol ? { protocol: options.protocol } : {}),
  };
}
