import type {
  AddressBatchItem,
  AddressOptions,
  AddressReplaceItem,
  BatchResult,
  AnnounceOptions,
  DefaultRoute,
  Family,
  InterfaceAddress,
  Link,
  LinkRef,
  LocalSubnet,
  NetChangeSubscription,
  ProbeOptions,
  ProbeResult,
  VirtualLinkResult,
} from './types.ts';

/**
 * What the node agent needs from the kernel's network stack, in the network namespace
 * the handle was opened in. Every call names the `ip` command it matches. Calls that
 * change something are idempotent where the `ip` command is not: adding an address that
 * is there and deleting one that is gone succeed.
 */
export interface NetlinkHandle {
  /** `ip link show`. */
  listLinks(): Promise<Link[]>;
  /** `ip link show NAME` (or by index). Throws `NETLINK_LINK_NOT_FOUND`. */
  getLink(link: LinkRef): Promise<Link>;
  /** Links whose name matches `pattern` (`ip -o link show | grep -E`), ordered by index. */
  findLinks(pattern: RegExp): Promise<Link[]>;

  /** `ip -4|-6 addr show [dev LINK]`. Without a family, both. */
  listAddresses(filter?: { readonly link?: LinkRef; readonly family?: Family }): Promise<InterfaceAddress[]>;
  /**
   * `ip addr add ADDRESS/PREFIX dev LINK [noprefixroute] [nodad] [valid_lft N preferred_lft M] [proto N]`.
   * `address` is `a.b.c.d/len` or `x::y/len`; without `/len` it is a host address (/32, /128).
   * Returns whether the address was added (false: it was already there, left as it was).
   */
  addAddress(link: LinkRef, address: string, options?: AddressOptions): Promise<boolean>;
  /** `ip addr replace ...`: adds the address or updates its flags and lifetimes. */
  replaceAddress(link: LinkRef, address: string, options?: AddressOptions): Promise<void>;
  /**
   * `ip addr del ADDRESS/PREFIX dev LINK`. Returns whether an address was removed (false: it was
   * not there). With `/len` it is one request and nothing is read first. Without `/len` any
   * prefix length matches: an IPv4 address is still one request (the kernel matches any
   * length), an IPv6 address costs a read of the IPv6 addresses first (the kernel needs the length).
   */
  deleteAddress(link: LinkRef, address: string): Promise<boolean>;
  /**
   * Many `ip addr del` at once, like `ip -batch` with one `addr del` line per item: the requests
   * go out together on the netlink socket and their acks are collected, instead of one round
   * trip after another. Each link name is looked up once, and one read of the IPv6 addresses
   * serves every IPv6 item without `/len`. Resolves with one result per item, in order (the
   * value says whether an address was removed); a failed item does not stop the others.
   * Rejects only when the handle is closed when it is called.
   */
  deleteAddresses(items: readonly AddressBatchItem[]): Promise<BatchResult<boolean>[]>;
  /**
   * Many `ip addr replace` at once, pipelined as {@link deleteAddresses} is. Resolves with
   * one result per item, in order; rejects only when the handle is closed when it is called.
   */
  replaceAddresses(items: readonly AddressReplaceItem[]): Promise<BatchResult<void>[]>;

  /** `ip -4|-6 route show default` (main table): the route with the lowest metric, or undefined. */
  defaultRoute(family: Family): Promise<DefaultRoute | undefined>;
  /**
   * The local interface whose subnet contains `address`, from the addresses configured on
   * links (like `ip route get` would pick the connected route, without asking for a route):
   * the longest matching prefix, then the lowest link index. `linkPattern` restricts the links.
   */
  localSubnetFor(address: string, linkPattern?: RegExp): Promise<LocalSubnet | undefined>;

  /**
   * `ip link add NAME type KIND; ip link set NAME up`, with the handle's `virtualLinkKind`.
   * Throws `NETLINK_LINK_KIND_UNSUPPORTED` when the kernel lacks the driver and
   * `NETLINK_LINK_KIND_MISMATCH` when NAME exists as another kind.
   */
  ensureVirtualLink(name: string): Promise<VirtualLinkResult>;
  /** `ip link del NAME`. Returns false when there was no such link. */
  deleteLink(link: LinkRef): Promise<boolean>;

  /**
   * `arping -U` / `arping -A` for IPv4 (a gratuitous ARP request and reply, broadcast) or an
   * unsolicited neighbour advertisement with the Override flag to ff02::1 for IPv6, from
   * the link's MAC. The first round goes out before the promise's first await; the promise
   * resolves after the last.
   */
  announce(link: LinkRef, address: string, options?: AnnounceOptions): Promise<void>;

  /**
   * Is another host on this link answering for `address` right now? `arping -D -I LINK ADDRESS`
   * for IPv4: ARP probes as in RFC 5227 (an ARP request from the link's MAC with sender address
   * 0.0.0.0 and target `address`, broadcast). For IPv6, the duplicate address detection that
   * `ip addr add` without `nodad` makes the kernel run (RFC 4862 section 5.4): neighbour
   * solicitations from `::` to the address's solicited-node group, target `address`.
   *
   * `probes` probes go out `intervalMs` apart, then the call listens `waitMs` more; listening
   * starts before the first probe. A conflict is a frame from another MAC that claims the
   * address (an ARP reply, request or announcement with it as sender address; a neighbour
   * advertisement for it) or another host probing for it at the same time. The call returns
   * as soon as it hears one, and otherwise after `(probes - 1) * intervalMs + waitMs`.
   *
   * Frames from the link's own MAC never count. This host's kernel does not answer its own
   * probe either, so when this host itself holds the address the answer is `{ conflict: false }`:
   * check your own addresses with `listAddresses`.
   *
   * Throws, instead of answering, when it could not probe: `NETLINK_LINK_NOT_FOUND`;
   * `NETLINK_PROBE_FAILED` when the link is down, has no carrier, has no Ethernet address,
   * has ARP turned off (NOARP), goes down during the probe or a frame cannot be sent;
   * `NETLINK_PERMISSION` without CAP_NET_RAW; `NETLINK_ABORTED` when `signal` fires.
   */
  probeAddress(link: LinkRef, address: string, options?: ProbeOptions): Promise<ProbeResult>;

  /** `ip monitor link address`: link and address changes as they happen. */
  subscribe(): NetChangeSubscription;

  /** Releases the sockets. Pending calls fail with `NETLINK_CLOSED`. Idempotent. */
  close(): void;
}
