// What this node must hold: a pure function of a snapshot of the cluster and the node.
import { type Family, type ReservedAddressKind, cidrContains, parseAddress, parseSubnetCached, reservedAddressKind } from '@purelb/ipam-core';
import type { AddressVerdict } from '@purelb/election';

/** A Service address as the agent sees it. */
export interface ServiceAddress {
  /** `namespace/name` of the Service. */
  readonly service: string;
  readonly address: string;
  readonly family: Family;
  /** `spec.externalTrafficPolicy`; shared addresses are treated as Cluster. */
  readonly trafficPolicy: 'Cluster' | 'Local';
  readonly shared: boolean;
  /** Nodes with a ready endpoint of the Service. */
  readonly endpointNodes: ReadonlySet<string>;
  /** Prefix length for the virtual interface (the pool's aggregation), if the address lies in a known pool. */
  readonly aggregation: number | undefined;
  /** The node the Service's announcing annotation of this family names, if any. */
  readonly announcedBy?: string | undefined;
  /** The ServiceGroup the address was allocated from (`purelb.io/allocated-from`), if known. */
  readonly group?: string | undefined;
}

/**
 * A subnet this node has on one of its links, by link name: what the plan reads. Not
 * linux-net's `LocalSubnet`, which is the kernel's answer for one address (the `Link`
 * object and the interface's own address in the subnet).
 */
export interface LinkSubnet {
  readonly family: Family;
  /** CIDR text with host bits cleared. */
  readonly cidr: string;
  readonly prefixLength: number;
  readonly link: string;
}

export interface NodeSnapshot {
  readonly node: string;
  readonly addresses: readonly ServiceAddress[];
  /** Subnets of the local interfaces (the links `localint` matches). */
  readonly localSubnets: readonly LinkSubnet[];
  /**
   * Subnets of every link of the node (but the virtual one and loopback). An address in one
   * of them that is not local (no link matches `localint` there) is never put on the
   * virtual interface: the kernel would answer ARP for it on the LAN from every node.
   */
  readonly nodeSubnets?: readonly LinkSubnet[];
  /** `localint` as written, for the note that explains such an address. */
  readonly localint?: string;
  /**
   * The node's own addresses (address -> link): every address on its links but the
   * virtual one that PureLB did not add. A Service's address among them is never
   * announced, whoever the election names: the node already answers for it.
   */
  readonly ownAddresses?: ReadonlyMap<string, string>;
  /** The virtual interface (`extlbint`). */
  readonly virtualLink: string;
  /**
   * The safety rule's verdict on one local address (`addressVerdict` of @purelb/election
   * with the current decision): hold, release, or wait (fencing, or a live announcer that
   * has not handed over yet).
   */
  readonly verdict: (address: string, announcedBy: string | undefined, group: string | undefined) => AddressVerdict;
  /**
   * The node may announce nothing (`nodeEligibility`: the exclusion label, or
   * NetworkUnavailable): no local address is wanted, whoever the election names, and no
   * virtual one. The agent also publishes no subnets then, so that no peer elects it.
   */
  readonly excluded?: boolean;
  /**
   * May this node announce the addresses of this ServiceGroup (its `nodeSelector`; see
   * `candidacy`). Absent: every group's. A node not selected holds none of the group's
   * local addresses, whoever the election names, and adds none of its virtual ones.
   */
  readonly selectedFor?: (group: string | undefined) => boolean;
}

/** One address this node must have. */
export interface WantedAddress {
  readonly address: string;
  readonly family: Family;
  readonly link: string;
  readonly prefixLength: number;
  readonly kind: 'local' | 'virtual';
  readonly services: readonly string[];
}

export interface Note {
  readonly service: string;
  readonly reason: string;
  readonly message: string;
}

export interface NodePlan {
  /** Keyed by address text. */
  readonly wanted: ReadonlyMap<string, WantedAddress>;
  /** `announcing-IPv4/IPv6` this node should carry: service -> family -> `node,link`. */
  readonly announcing: ReadonlyMap<string, ReadonlyMap<Family, string>>;
  /** Local addresses and who wins them (for metrics and logs). */
  readonly elections: ReadonlyMap<string, string | undefined>;
  /**
   * Local addresses this node should hold but waits for: the announcer they wait for, and
   * until when (undefined: until it hands over).
   */
  readonly awaitingHandover: ReadonlyMap<string, { readonly from: string; readonly until: number | undefined }>;
  readonly notes: readonly Note[];
}

/** The subnet (of this node) that holds the address, longest prefix first. */
export function localSubnetOf(address: string, subnets: readonly LinkSubnet[]): LinkSubnet | undefined {
  const a = parseAddress(address);
  if (!a) return undefined;
  let best: LinkSubnet | undefined;
  for (const s of subnets) {
    if (cidrContains(s.cidr, a) && (!best || s.prefixLength > best.prefixLength)) best = s;
  }
  return best;
}

/**
 * What the address is in its local subnet if no host may hold it: the IPv4 network or
 * broadcast address (subnets up to /30; /31 and /32 have none, RFC 3021) or the IPv6
 * subnet-router anycast address (up to /126; /127 and /128 have none, RFC 6164).
 */
export function reservedAddress(address: string, subnet: LinkSubnet): ReservedAddressKind | undefined {
  const a = parseAddress(address);
  const sub = parseSubnetCached(subnet.cidr);
  return a && sub && reservedAddressKind(sub, a);
}

export function planNode(s: NodeSnapshot): NodePlan {
  const wanted = new Map<string, WantedAddress>();
  const announcing = new Map<string, Map<Family, string>>();
  const elections = new Map<string, string | undefined>();
  const awaitingHandover = new Map<string, { from: string; until: number | undefined }>();
  const notes: Note[] = [];
  // The announcer of an address shared by several Services: any other node named by one of
  // them wins over this node (the safe reading when their annotations disagree).
  const announcer = new Map<string, string | undefined>();
  for (const a of s.addresses) {
    const prev = announcer.get(a.address);
    if (a.announcedBy !== undefined && (prev === undefined || prev === s.node)) announcer.set(a.address, a.announcedBy);
    else if (!announcer.has(a.address)) announcer.set(a.address, a.announcedBy);
  }
  const want = (w: Omit<WantedAddress, 'services'>, service: string): void => {
    const prev = wanted.get(w.address);
    wanted.set(w.address, { ...w, services: prev ? [...prev.services, service] : [service] });
  };
  for (const a of s.addresses) {
    const own = s.ownAddresses?.get(a.address);
    if (own !== undefined) {
      notes.push({ service: a.service, reason: 'AddressInUseByNode', message: `${a.address} is an address of node ${s.node} on ${own}, not one PureLB added; it is not announced (give the Service another address)` });
      continue;
    }
    const local = localSubnetOf(a.address, s.localSubnets);
    const reserved = local && reservedAddress(a.address, local);
    if (local && reserved) {
      // No host may hold it: the kernel would take over the subnet's broadcast (or the
      // routers' anycast) address on the node's LAN interface.
      notes.push({ service: a.service, reason: 'ReservedAddress', message: `${a.address} is the ${reserved} address of subnet ${local.cidr} on ${local.link} of node ${s.node}; not announced (no host may hold it)` });
      continue;
    }
    if (local) {
      // Local: exactly one node of the subnet holds it, on its interface in that subnet.
      if (a.trafficPolicy === 'Local' && !a.shared) {
        notes.push({ service: a.service, reason: 'TrafficPolicyNotSupported', message: `externalTrafficPolicy Local is not supported on local address ${a.address}; treated as Cluster` });
      }
      // A shared address: the first Service's announcement decides for all of them.
      if (elections.has(a.address) && !wanted.has(a.address)) continue;
      const announcedBy = announcer.get(a.address);
      const v = s.verdict(a.address, announcedBy, a.group);
      elections.set(a.address, v.holder);
      if (v.action === 'release' || s.excluded === true || s.selectedFor?.(a.group) === false) continue;
      if (v.action === 'wait') {
        awaitingHandover.set(a.address, { from: announcedBy ?? '', until: v.until });
        continue;
      }
      want({ address: a.address, family: a.family, link: local.link, prefixLength: local.prefixLength, kind: 'local' }, a.service);
      let m = announcing.get(a.service);
      if (!m) announcing.set(a.service, (m = new Map<Family, string>()));
      m.set(a.family, `${s.node},${local.link}`);
    } else {
      const lan = localSubnetOf(a.address, s.nodeSubnets ?? []);
      if (lan) {
        notes.push({
          service: a.service,
          reason: 'LocalInterfaceNotFound',
          message: `${a.address} is in ${lan.cidr} of ${lan.link} on node ${s.node}, but localint "${s.localint ?? 'default'}" matches no interface there; not announced (a LAN address on the virtual interface would answer from every node)`,
        });
        continue;
      }
      // Virtual: every node holds it on the virtual interface, unless the node is excluded
      // or not selected by the group, or the Service keeps traffic local and this node has
      // no ready endpoint.
      if (s.excluded === true || s.selectedFor?.(a.group) === false) continue;
      if (a.trafficPolicy === 'Local' && !a.shared && !a.endpointNodes.has(s.node)) continue;
      const max = a.family === 'IPv4' ? 32 : 128;
      // A prefix shorter than any sane pool (a /0 would become a default route) is never used.
      const shortest = a.family === 'IPv4' ? 8 : 16;
      if (a.aggregation !== undefined && a.aggregation < shortest) {
        notes.push({ service: a.service, reason: 'InvalidAggregation', message: `aggregation /${a.aggregation} for ${a.address} is shorter than /${shortest}; using /${max}` });
      }
      const prefixLength = a.aggregation === undefined || a.aggregation < shortest ? max : a.aggregation;
      want({ address: a.address, family: a.family, link: s.virtualLink, prefixLength, kind: 'virtual' }, a.service);
    }
  }
  for (const [service, m] of [...announcing]) if (m.size === 0) announcing.delete(service);
  return { wanted, announcing, elections, awaitingHandover, notes };
}

/** An address currently on one of the links the agent manages. */
export interface PresentAddress {
  readonly address: string;
  readonly link: string;
  readonly prefixLength: number;
  /** The kernel removes it by itself when its valid lifetime runs out (not forever). */
  readonly expires?: boolean;
  /** IPv6: its preferred lifetime is not 0, so the kernel may pick it as the source of the node's own traffic. */
  readonly preferred?: boolean;
}

/**
 * The lifetimes an address of ours is written with (`ip addr replace ... valid_lft V preferred_lft P`).
 * - A local address lives `lifetimeS` seconds and is renewed well within that (0: forever).
 * - A virtual address lives forever.
 * - Every IPv6 address is deprecated from the start (`preferred_lft 0`): the kernel still
 *   receives and answers traffic sent to it, but never picks it as the source of the node's
 *   own connections (RFC 6724 rule 3), so masqueraded or node-originated IPv6 traffic keeps
 *   the node's own address. IPv4 needs nothing: the kernel picks the primary address of
 *   the subnet, and ours are secondary or on the virtual interface.
 */
export function addressLifetimes(w: { readonly kind: 'local' | 'virtual'; readonly family: 'IPv4' | 'IPv6' }, lifetimeS: number): { validLifetime?: number; preferredLifetime?: number } {
  const valid = w.kind === 'local' && lifetimeS !== 0 ? { validLifetime: lifetimeS } : {};
  if (w.family === 'IPv6') return { ...valid, preferredLifetime: 0 };
  return w.kind === 'local' && lifetimeS !== 0 ? { validLifetime: lifetimeS, preferredLifetime: lifetimeS } : {};
}

export interface AddressChanges {
  readonly add: readonly WantedAddress[];
  readonly remove: readonly PresentAddress[];
  /**
   * Held and wanted, but written with the wrong lifetimes: virtual with a lifetime (only
   * local addresses carry one), or IPv6 and still preferred (see `addressLifetimes`). To be
   * replaced quietly (they are already announced).
   */
  readonly restamp: readonly WantedAddress[];
}

/**
 * The changes that turn what is present into what is wanted. Only addresses for which
 * `managed` is true are ever removed: a node's own addresses are never touched.
 */
export function addressChanges(present: readonly PresentAddress[], wanted: ReadonlyMap<string, WantedAddress>, managed: (address: string, link: string) => boolean): AddressChanges {
  const add: WantedAddress[] = [];
  const remove: PresentAddress[] = [];
  const restamp: WantedAddress[] = [];
  const have = new Set<string>();
  for (const p of present) {
    const w = wanted.get(p.address);
    if (w && w.link === p.link && w.prefixLength === p.prefixLength) {
      have.add(p.address);
      if ((w.kind === 'virtual' && p.expires) || (w.family === 'IPv6' && p.preferred)) restamp.push(w);
    } else if (managed(p.address, p.link)) remove.push(p);
  }
  for (const w of wanted.values()) if (!have.has(w.address)) add.push(w);
  return { add, remove, restamp };
}
