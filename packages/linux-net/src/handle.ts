import type {
  AddressOptions,
  AnnounceOptions,
  DefaultRoute,
  Family,
  InterfaceAddress,
  Link,
  LinkRef,
  LocalSubnet,
  NetChangeSubscription,
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
   * `ip addr add ADDRESS/PREFIX dev LINK [noprefixroute] [nodad] [valid_lft N preferred_lft M]`.
   * `address` is `a.b.c.d/len` or `x::y/len`; without `/len` it is a host address (/32, /128).
   * Returns whether the address was added (false: it was already there, left as it was).
   */
  addAddress(link: LinkRef, address: string, options?: AddressOptions): Promise<boolean>;
  /** `ip addr replace ...`: adds the address or updates its flags and lifetimes. */
  replaceAddress(link: LinkRef, address: string, options?: AddressOptions): Promise<void>;
  /**
   * `ip addr del ADDRESS/PREFIX dev LINK`. Returns whether an address was removed (false: it was
   * not there). Without `/len` any prefix length matches.
   */
  deleteAddress(link: LinkRef, address: string): Promise<boolean>;

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

  /** `ip monitor link address`: link and address changes as they happen. */
  subscribe(): NetChangeSubscription;

  /** Releases the sockets. Pending calls fail with `NETLINK_CLOSED`. Idempotent. */
  close(): void;
}
