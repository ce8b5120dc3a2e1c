import type { Family } from '@purelb/ipam-core';
import type { NetlinkError } from './errors.ts';

/** An address family, spelled as Kubernetes spells `ipFamilies`: `@purelb/ipam-core`'s. */
export type { Family };

/** A link named by its name (`eth0`) or its index. */
export type LinkRef = string | number;

/** A network interface as the kernel reports it (`ip link show`). */
export interface Link {
  readonly index: number;
  readonly name: string;
  /** The driver kind for virtual links (`dummy`, `bridge`, `veth`, ...); undefined for physical ones. */
  readonly kind: string | undefined;
  /** The hardware address, lower-case colon-separated hex; `00:00:00:00:00:00` for links without one. */
  readonly mac: string;
  /** Administratively up (IFF_UP): `ip link set NAME up` was done. */
  readonly up: boolean;
  /** The kernel's operational state (`up`, `down`, `unknown`, `lowerlayerdown`, ...). */
  readonly operState: string;
  readonly mtu: number;
}

/** Flags of an interface address. `noprefixroute` and `nodad` can be set; the rest are reported by the kernel. */
export interface AddressFlags {
  /** No prefix route for the subnet is installed (`ip addr add ... noprefixroute`). */
  readonly noprefixroute: boolean;
  /** IPv6 only: no duplicate address detection, the address is usable at once (`nodad`). */
  readonly nodad: boolean;
  readonly secondary: boolean;
  readonly permanent: boolean;
  readonly tentative: boolean;
  readonly deprecated: boolean;
  readonly dadfailed: boolean;
}

/** An address configured on an interface (`ip addr show`). */
export interface InterfaceAddress {
  readonly family: Family;
  /** The address text: dotted quad, or RFC 5952 form for IPv6. */
  readonly address: string;
  readonly prefixLength: number;
  readonly linkIndex: number;
  readonly flags: AddressFlags;
  /** Seconds; `Infinity` means forever. */
  readonly validLifetime: number;
  /** Seconds; `Infinity` means forever. */
  readonly preferredLifetime: number;
  /**
   * Who added the address (`ip addr show` prints it as `proto N`; kernel attribute IFA_PROTO,
   * kernel 5.18 and later). Undefined when none was set (0, `unspec`). The kernel marks its own:
   * 1 loopback, 2 router advertisement, 3 IPv6 link-local. See {@link PURELB_ADDRESS_PROTOCOL}.
   */
  readonly protocol?: number;
}

/** Options for adding or replacing an address. */
export interface AddressOptions {
  /** Do not install the prefix route (`noprefixroute`). Default false. */
  readonly noprefixroute?: boolean;
  /** IPv6: skip duplicate address detection (`nodad`). Default false. Ignored for IPv4. */
  readonly nodad?: boolean;
  /** Seconds until the kernel removes the address (`valid_lft`); default forever. */
  readonly validLifetime?: number;
  /** Seconds until the address is deprecated (`preferred_lft`); default forever; at most `validLifetime`. */
  readonly preferredLifetime?: number;
  /**
   * The address protocol, 0-255 (`ip addr add ... proto N`): a mark saying who added the
   * address, so a program can find its own later. A replace without it resets the mark to
   * none, as `ip addr replace` does. Kernels before 5.18 ignore it.
   */
  readonly protocol?: number;
}

/**
 * The address protocol number the node agent marks its own addresses with
 * (`ip addr add ... proto 80`), so it never changes or removes an address it did not add.
 *
 * iproute2 names 0 to 3 (`unspec`, and `kernel_lo`, `kernel_ra`, `kernel_ll`, which the kernel
 * sets itself) and leaves 4-255 to administrators and programs (`/etc/iproute2/rt_addrprotos`).
 * 80 is in that free range, away from the low numbers other tools are likely to pick first,
 * and is "P" in ASCII. Operators can name it: `echo '80 purelb' >> /etc/iproute2/rt_addrprotos`,
 * then `ip addr show proto purelb` (iproute2 6.3 or later).
 */
export const PURELB_ADDRESS_PROTOCOL = 80;

/** A subnet as network address and prefix length (`192.0.2.0`, 24). */
export interface Subnet {
  readonly family: Family;
  readonly network: string;
  readonly prefixLength: number;
}

/** The answer to "which local interface has this address's subnet". */
export interface LocalSubnet {
  readonly link: Link;
  readonly subnet: Subnet;
  /** The interface's own address in that subnet. */
  readonly interfaceAddress: InterfaceAddress;
}

/** The default route of one family (`ip route show default`). */
export interface DefaultRoute {
  readonly family: Family;
  readonly link: Link;
  readonly gateway: string | undefined;
  readonly metric: number;
}

/** Options for gratuitous ARP / unsolicited neighbour advertisement. */
export interface AnnounceOptions {
  /** How many rounds to send (each IPv4 round is an ARP request and an ARP reply). Default 1. */
  readonly count?: number;
  /** Milliseconds between rounds. Default 1000. */
  readonly intervalMs?: number;
}

/** Options of {@link NetlinkHandle.probeAddress}. The whole probe takes `(probes - 1) * intervalMs + waitMs`. */
export interface ProbeOptions {
  /** How many probes to send (1-10). Default 2. */
  readonly probes?: number;
  /** Milliseconds between probes (0-10000). Default 30. */
  readonly intervalMs?: number;
  /** Milliseconds to keep listening after the last probe (0-10000). Default 80. */
  readonly waitMs?: number;
  /** Stops the probe; the call then fails with `NETLINK_ABORTED`. */
  readonly signal?: AbortSignal;
}

/**
 * What a probe heard. `conflict: true` means another host (another MAC) answered for the
 * address, announced it, or was probing for it itself; `mac` is that host's MAC address.
 */
export type ProbeResult = { readonly conflict: false } | { readonly conflict: true; readonly mac: string };

/** One address of a batch delete ({@link NetlinkHandle.deleteAddresses}). */
export interface AddressBatchItem {
  readonly link: LinkRef;
  /** `a.b.c.d/len` or `x::y/len`; without `/len` any prefix length matches, as for `deleteAddress`. */
  readonly address: string;
}

/** One address of a batch replace ({@link NetlinkHandle.replaceAddresses}). */
export interface AddressReplaceItem extends AddressBatchItem {
  readonly options?: AddressOptions;
}

/** The outcome of one item of a batch call, in the order of the items. */
export type BatchResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: NetlinkError };

/**
 * A change the kernel reported. `resync` means notifications were lost (the socket
 * buffer overflowed) and the consumer must re-read the state it cares about.
 */
export type NetChange =
  | { readonly kind: 'link-updated' | 'link-removed'; readonly link: Link }
  | { readonly kind: 'address-added' | 'address-removed'; readonly address: InterfaceAddress }
  | { readonly kind: 'resync' };

/** A live stream of changes; iterate it with `for await`, and close it when done. */
export interface NetChangeSubscription extends AsyncIterable<NetChange> {
  /** Stops the subscription; a pending `for await` ends. Idempotent. */
  close(): void;
}

/** The result of {@link NetlinkHandle.ensureVirtualLink}. */
export interface VirtualLinkResult {
  readonly link: Link;
  /** True when this call created the link (so the caller may delete it on shutdown). */
  readonly created: boolean;
}
