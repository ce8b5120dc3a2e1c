import { formatAddressBytes, parseAddressText, parseMac } from '../address.ts';
import { NetlinkError, NetlinkErrorCode } from '../errors.ts';
import type { NetlinkHandle } from '../handle.ts';
import { addressRequestFields, pickLocalSubnet } from '../kernel-handle.ts';
import { ChangeQueue } from '../subscription.ts';
import type {
  AddressOptions,
  AnnounceOptions,
  DefaultRoute,
  Family,
  InterfaceAddress,
  Link,
  LinkRef,
  LocalSubnet,
  NetChange,
  NetChangeSubscription,
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

/** Options of {@link MemoryNetlinkHandle}. */
export interface MemoryNetlinkHandleOptions {
  /** As for the kernel handle. Default `dummy`. */
  readonly virtualLinkKind?: string;
  /** Link kinds the simulated kernel can create. Default dummy, bridge, ifb, veth. */
  readonly availableKinds?: readonly string[];
  /** Backlog of a subscription before it yields `resync`. Default 10000. */
  readonly subscriptionBacklog?: number;
}

interface MemoryLink {
  index: number;
  name: string;
  kind: string | undefined;
  mac: string;
  up: boolean;
  mtu: number;
}

/**
 * A {@link NetlinkHandle} over an in-memory network stack, for unit tests of code that
 * uses the handle. It follows the kernel handle's contract (idempotent add/delete, typed
 * errors, change events for every change, its own included) and adds controls a test
 * needs: links, default routes, changes "by someone else", refused permissions, and a
 * record of announcements. It does not create IPv6 link-local addresses on its own.
 */
export class MemoryNetlinkHandle implements NetlinkHandle {
  readonly #links = new Map<number, MemoryLink>();
  #addresses: InterfaceAddress[] = [];
  readonly #routes = new Map<Family, { linkIndex: number; gateway: string | undefined; metric: number }[]>();
  readonly #subscriptions = new Set<ChangeQueue>();
  readonly #virtualLinkKind: string;
  readonly #kinds: ReadonlySet<string>;
  readonly #backlog: number;
  #nextIndex = 1;
  #closed = false;
  /** When true, every change (address, link, announce) fails with `NETLINK_PERMISSION`, as without CAP_NET_ADMIN / CAP_NET_RAW. */
  denyChanges = false;
  /** Every announcement made, in order. */
  readonly announcements: RecordedAnnouncement[] = [];

  constructor(options: MemoryNetlinkHandleOptions = {}) {
    this.#virtualLinkKind = options.virtualLinkKind ?? 'dummy';
    this.#kinds = new Set(options.availableKinds ?? ['dummy', 'bridge', 'ifb', 'veth']);
    this.#backlog = options.subscriptionBacklog ?? 10_000;
    this.addLink({ name: 'lo', mac: '00:00:00:00:00:00', mtu: 65536 });
  }

  // ---- test controls: the world changing outside the handle ----

  /** Adds a link (as a driver or another program would), up by default, and announces it. */
  addLink(spec: { readonly name: string; readonly kind?: string; readonly mac?: string; readonly up?: boolean; readonly mtu?: number }): Link {
    if ([...this.#links.values()].some((l) => l.name === spec.name)) throw new Error(`test setup: link ${spec.name} already exists`);
    const index = this.#nextIndex++;
    const mac = spec.mac ?? `02:00:00:00:${((index >> 8) & 0xff).toString(16).padStart(2, '0')}:${(index & 0xff).toString(16).padStart(2, '0')}`;
    parseMac(mac);
    const l: MemoryLink = { index, name: spec.name, kind: spec.kind, mac, up: spec.up ?? true, mtu: spec.mtu ?? 1500 };
    this.#links.set(index, l);
    this.#emit({ kind: 'link-updated', link: snapshot(l) });
    return snapshot(l);
  }

  /** Removes a link with its addresses and routes, as `ip link del` by someone else would. */
  removeLink(link: LinkRef): void {
    const l = this.#find(link, 'test setup');
    this.#dropLink(l);
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
    this.#insert(this.#find(link, 'test setup'), parseAddressText(address), options, address);
  }

  /** Removes an address behind the handle's back, as another program would. Returns whether it was there. */
  removeAddressExternally(link: LinkRef, address: string): boolean {
    return this.#remove(this.#find(link, 'test setup'), address);
  }

  /** Makes every open subscription yield `resync`, as after a notification overflow. */
  overflowSubscriptions(): void {
    this.#emit({ kind: 'resync' });
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
      return this.#addresses.filter((a) => (index === undefined || a.linkIndex === index) && (!filter.family || a.family === filter.family));
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
    return this.#call(() => {
      const op = `ip addr replace ${address} dev ${link}`;
      const parsed = parseAddressText(address);
      addressRequestFields(address, options);
      const l = this.#find(link, op);
      this.#checkPermission(op, link);
      const i = this.#indexOf(l.index, parsed);
      if (i !== -1) {
        // The kernel replaces in place and reports the new state as RTM_NEWADDR.
        const updated = makeAddress(l.index, parsed, options);
        this.#addresses[i] = updated;
        this.#emit({ kind: 'address-added', address: updated });
      } else this.#insert(l, parsed, options, address);
    });
  }

  deleteAddress(link: LinkRef, address: string): Promise<boolean> {
    return this.#call(() => {
      const op = `ip addr del ${address} dev ${link}`;
      parseAddressText(address);
      const l = this.#find(link, op);
      this.#checkPermission(op, link);
      return this.#remove(l, address);
    });
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
      return pickLocalSubnet(target, links, this.#addresses);
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
    for (let round = 1; round < count; round++) await new Promise((r) => setTimeout(r, intervalMs));
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
    return fn();
  }

  #find(link: LinkRef, op: string): MemoryLink {
    const l = typeof link === 'number' ? this.#links.get(link) : [...this.#links.values()].find((x) => x.name === link);
    if (!l) throw new NetlinkError(NetlinkErrorCode.LinkNotFound, `${op}: link ${link} does not exist`, { link, operation: op });
    return l;
  }

  #checkPermission(op: string, link: LinkRef): void {
    if (this.denyChanges) throw new NetlinkError(NetlinkErrorCode.Permission, `${op} (link ${link}): EPERM; the process needs CAP_NET_ADMIN`, { link, operation: op, errno: 'EPERM' });
  }

  /** Like the kernel: one address per (link, address, prefix length). */
  #indexOf(linkIndex: number, parsed: { bytes: Uint8Array; prefixLength: number }): number {
    const text = formatAddressBytes(parsed.bytes);
    return this.#addresses.findIndex((a) => a.linkIndex === linkIndex && a.address === text && a.prefixLength === parsed.prefixLength);
  }

  #insert(l: MemoryLink, parsed: ReturnType<typeof parseAddressText>, options: AddressOptions, text: string): void {
    addressRequestFields(text, options);
    if (this.#indexOf(l.index, parsed) !== -1) return;
    const a = makeAddress(l.index, parsed, options);
    this.#addresses.push(a);
    this.#emit({ kind: 'address-added', address: a });
  }

  #remove(l: MemoryLink, address: string): boolean {
    const parsed = parseAddressText(address);
    const text = formatAddressBytes(parsed.bytes);
    const i = this.#addresses.findIndex((a) => a.linkIndex === l.index && a.address === text && (!parsed.hadPrefix || a.prefixLength === parsed.prefixLength));
    if (i === -1) return false;
    const [gone] = this.#addresses.splice(i, 1);
    this.#emit({ kind: 'address-removed', address: gone! });
    return true;
  }

  #dropLink(l: MemoryLink): void {
    for (const a of this.#addresses.filter((x) => x.linkIndex === l.index)) this.#emit({ kind: 'address-removed', address: a });
    this.#addresses = this.#addresses.filter((x) => x.linkIndex !== l.index);
    for (const [family, list] of this.#routes) this.#routes.set(family, list.filter((r) => r.linkIndex !== l.index));
    this.#links.delete(l.index);
    this.#emit({ kind: 'link-removed', link: snapshot(l) });
  }

  #emit(change: NetChange): void {
    for (const q of this.#subscriptions) q.push(change);
  }
}

function snapshot(l: MemoryLink): Link {
  return { index: l.index, name: l.name, kind: l.kind, mac: l.mac, up: l.up, operState: l.up ? 'unknown' : 'down', mtu: l.mtu };
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
  };
}
