import { type Family, FAMILIES, formatAddress, ipv4MappedText, parseAddress } from './address.ts';
import { IpamError, IpamErrorCode } from './errors.ts';
import { type Group, type GroupSpec, findPool, parseGroup } from './group.ts';
import { IntervalSet } from './interval-set.ts';
import { formatSubnet, reservedAddressKind, subnetReserved } from './cidr.ts';
import { type Pool, poolSize } from './pool.ts';
import { type ServicePort, findPortConflict, parsePorts } from './ports.ts';

/** `spec.ipFamilyPolicy` of a Service. */
export type FamilyPolicy = 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';

const POLICIES: readonly FamilyPolicy[] = ['SingleStack', 'PreferDualStack', 'RequireDualStack'];

/** What a Service asks for. Mirrors the fields of a Service the allocator reads. */
export interface AllocateRequest {
  /** Unique name of the Service, conventionally `namespace/name`. */
  readonly service: string;
  /** Group to allocate from. Absent: the group whose pool holds the first requested address, else `default`. */
  readonly group?: string | undefined;
  /** `spec.ipFamilies`, in order; the addresses come back in this order. */
  readonly families: readonly Family[];
  /** `spec.ipFamilyPolicy`; absent means `SingleStack`. */
  readonly policy?: FamilyPolicy | undefined;
  /** Specific addresses, at most one per family (`purelb.io/addresses`). */
  readonly addresses?: readonly string[] | undefined;
  /** `purelb.io/allow-shared-ip`; empty or absent means the Service shares with nobody. */
  readonly sharingKey?: string | undefined;
  /** The Service's ports; only compared between Services that share an address. */
  readonly ports?: readonly ServicePort[] | undefined;
}

/** An allocation that exists already (read back from a Service after a restart). */
export interface AdoptRequest {
  readonly service: string;
  /** The addresses the Service holds, at most one per family, in the Service's order. */
  readonly addresses: readonly string[];
  /** The group it came from (`purelb.io/allocated-from`); absent: found from the pools, else `default`. */
  readonly group?: string | undefined;
  readonly sharingKey?: string | undefined;
  readonly ports?: readonly ServicePort[] | undefined;
}

/** What a Service holds. */
export interface Allocation {
  readonly group: string;
  readonly addresses: string[];
}

/** An address a Service keeps although no pool of its group holds it any more. */
export interface Orphan {
  readonly service: string;
  readonly group: string;
  readonly family: Family;
  readonly address: string;
}

export interface FamilyStats {
  /** Addresses in the group's pools of this family. */
  readonly size: bigint;
  /** Of those, how many are held (a shared address counts once). */
  readonly inUse: bigint;
  /**
   * Of those, how many are free but never handed out: excluded addresses
   * (`setExclusions`) and, with `excludeSubnetReserved`, the subnets' network, broadcast
   * and subnet-router anycast addresses. `size - inUse - excluded` addresses are free to
   * hand out. An excluded address a Service holds (adopted) counts in `inUse` only.
   */
  readonly excluded: bigint;
}

/** Options of an `Ipam`. Absent options keep the behaviour of earlier versions. */
export interface IpamOptions {
  /**
   * Never hand out the IPv4 network and broadcast addresses, nor the IPv6 subnet-router
   * anycast address (all-zero host part), of each pool's subnet. They stay in the pools
   * (a CIDR pool's size is what it says) and count in `FamilyStats.excluded`. Subnets of
   * /31, /32, /127 and /128 have no such addresses (RFC 3021, RFC 6164). Default false.
   */
  readonly excludeSubnetReserved?: boolean | undefined;
}

/** An address no pool hands out, and why (for messages: "Node web-1 reports it as its own"). */
export interface Exclusion {
  readonly address: string;
  readonly reason: string;
}

/** A Service holds an address that is never handed out (it was adopted, or excluded later). It keeps it. */
export interface HeldExclusion {
  readonly service: string;
  readonly group: string;
  readonly family: Family;
  readonly address: string;
  /** Why the address is excluded. */
  readonly reason: string;
}

/** What `setExclusions` reports back. */
export interface SetExclusionsResult {
  /** Allocations that hold an address now excluded; they keep it. */
  readonly held: HeldExclusion[];
}

export type GroupStats = Readonly<Record<Family, FamilyStats>>;

/** What `setGroups` reports back. */
export interface SetGroupsResult {
  /** Allocations whose address left their group's pools; they keep the address. */
  readonly orphans: Orphan[];
}

/** What one Service holds. Kept small: there can be a million of these. */
class Holding {
  readonly group: string;
  readonly v4: bigint | undefined;
  readonly v6: bigint | undefined;
  /** Families came as [IPv6, IPv4]: addresses are reported in that order. */
  readonly v6First: boolean;
  constructor(group: string, v4: bigint | undefined, v6: bigint | undefined, v6First: boolean) {
    this.group = group;
    this.v4 = v4;
    this.v6 = v6;
    this.v6First = v6First;
  }
}

/** A Holding whose addresses may be shared with other Services under the same key. */
class SharedHolding extends Holding {
  readonly key: string;
  readonly ports: readonly ServicePort[];
  constructor(group: string, v4: bigint | undefined, v6: bigint | undefined, v6First: boolean, key: string, ports: readonly ServicePort[]) {
    super(group, v4, v6, v6First);
    this.key = key;
    this.ports = ports;
  }
}

/** A sharing key is bound to at most one address per family, from one group. */
interface KeyBinding {
  readonly key: string;
  readonly group: string;
  readonly address: Record<Family, bigint | undefined>;
  readonly holders: Record<Family, Set<string>>;
}

/** Per-pool counter so stats never need a recount. */
interface PoolUse {
  readonly group: string;
  readonly pool: Pool;
  inUse: number;
}

interface ParsedRequest {
  readonly service: string;
  readonly group: string | undefined;
  /** Families to allocate, in the Service's order, after the policy is applied. */
  readonly wanted: readonly Family[];
  readonly policy: FamilyPolicy;
  readonly specific: ReadonlyMap<Family, bigint>;
  readonly key: string | undefined;
  readonly ports: readonly ServicePort[];
  /** Adoption keeps addresses outside every pool and groups that no longer exist. */
  readonly adopting: boolean;
}

function addressOf(h: Holding, f: Family): bigint | undefined {
  return f === 'IPv4' ? h.v4 : h.v6;
}

function familiesOf(h: Holding): Family[] {
  const out: Family[] = [];
  const order: readonly Family[] = h.v6First ? ['IPv6', 'IPv4'] : FAMILIES;
  for (const f of order) if (addressOf(h, f) !== undefined) out.push(f);
  return out;
}

/**
 * The allocation state of every group: which Service holds which address.
 *
 * Pure and synchronous; no I/O. Every method that throws an `IpamError` leaves the state
 * exactly as it was. State grows with the addresses in use, not with pool sizes.
 */
export class Ipam {
  readonly #excludeSubnetReserved: boolean;
  #groups = new Map<string, Group>();
  /** Excluded addresses per family (`setExclusions`), with their reasons; the set finds the next non-excluded value fast. */
  #excluded: Record<Family, IntervalSet> = { IPv4: new IntervalSet(), IPv6: new IntervalSet() };
  #exclusionReasons: Record<Family, Map<bigint, string>> = { IPv4: new Map(), IPv6: new Map() };
  /** Per pool, its subnet's reserved addresses that lie inside it (empty unless excludeSubnetReserved). */
  #reserved = new WeakMap<Pool, readonly bigint[]>();
  #byService = new Map<string, Holding>();
  #used: Record<Family, IntervalSet> = { IPv4: new IntervalSet(), IPv6: new IntervalSet() };
  #poolUse: Record<Family, PoolUse[]> = { IPv4: [], IPv6: [] };
  #keys = new Map<string, KeyBinding>();
  #sharedAt: Record<Family, Map<bigint, KeyBinding>> = { IPv4: new Map(), IPv6: new Map() };

  constructor(options: IpamOptions = {}) {
    this.#excludeSubnetReserved = options.excludeSubnetReserved === true;
  }

  /**
   * Replaces the configured groups. All groups are validated first; if any is invalid
   * (or two share a name) this throws `IPAM_INVALID_POOL` and nothing changes. No
   * allocation is ever taken away: those that no longer fall in a pool of their group
   * are returned as orphans and keep their address.
   */
  setGroups(specs: readonly GroupSpec[]): SetGroupsResult {
    const next = new Map<string, Group>();
    for (const spec of specs) {
      const g = parseGroup(spec);
      if (next.has(g.name)) {
        throw new IpamError(IpamErrorCode.InvalidPool, `ServiceGroup "${g.name}": name is given twice`, { group: g.name, field: 'name' });
      }
      next.set(g.name, g);
    }
    this.#groups = next;
    if (this.#excludeSubnetReserved) {
      for (const g of next.values()) {
        for (const f of FAMILIES) for (const p of g.pools[f]) this.#reserved.set(p, subnetReserved(p.subnet).filter((v) => v >= p.first && v <= p.last));
      }
    }
    for (const f of FAMILIES) {
      const uses: PoolUse[] = [];
      for (const g of next.values()) {
        for (const pool of g.pools[f]) uses.push({ group: g.name, pool, inUse: Number(this.#used[f].countIn(pool.first, pool.last)) });
      }
      this.#poolUse[f] = uses;
    }
    return { orphans: this.orphans() };
  }

  /** Names of the configured groups, in the order they were given. */
  groupNames(): string[] {
    return [...this.#groups.keys()];
  }

  /**
   * Replaces the excluded addresses: no pool of any group hands them out, whether asked
   * for by first fit or by a specific address (`IPAM_ADDRESS_EXCLUDED`). A Service that
   * already holds one keeps it; such holdings are returned (and listed by
   * `heldExclusions()`). An address given twice keeps its first reason. Every address is
   * checked first: bad text throws `IPAM_INVALID_REQUEST` naming `exclusions[i]` and
   * nothing changes.
   */
  setExclusions(list: readonly Exclusion[]): SetExclusionsResult {
    const entries: unknown = list;
    if (!Array.isArray(entries)) throw new IpamError(IpamErrorCode.InvalidRequest, 'exclusions: must be a list', { field: 'exclusions' });
    const reasons: Record<Family, Map<bigint, string>> = { IPv4: new Map(), IPv6: new Map() };
    list.forEach((e, i) => {
      const a = typeof e?.address === 'string' ? parseAddress(e.address) : undefined;
      if (!a) {
        throw new IpamError(IpamErrorCode.InvalidRequest, `exclusions[${i}].address: "${String(e?.address)}" is not an IPv4 or IPv6 address`, {
          field: `exclusions[${i}].address`,
        });
      }
      if (!reasons[a.family].has(a.value)) reasons[a.family].set(a.value, typeof e.reason === 'string' && e.reason !== '' ? e.reason : 'excluded');
    });
    for (const f of FAMILIES) {
      const set = new IntervalSet();
      for (const v of [...reasons[f].keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))) set.add(v);
      this.#excluded[f] = set;
    }
    this.#exclusionReasons = reasons;
    return { held: this.heldExclusions() };
  }

  /**
   * Why an address is never handed out (an exclusion's reason, or which reserved address
   * of its pool's subnet it is, in any group), or undefined if it may be.
   */
  exclusionOf(address: string): string | undefined {
    const a = parseAddress(address);
    if (!a) return undefined;
    const reason = this.#exclusionReasons[a.family].get(a.value);
    if (reason !== undefined) return reason;
    for (const g of this.#groups.values()) {
      const why = this.#reservedWhy(findPool(g, a.family, a.value), a.value);
      if (why) return why;
    }
    return undefined;
  }

  /** Allocations that hold an address that is never handed out: they keep it. */
  heldExclusions(): HeldExclusion[] {
    const out: HeldExclusion[] = [];
    for (const [service, h] of this.#byService) {
      for (const f of familiesOf(h)) {
        const v = addressOf(h, f)!;
        const g = this.#groups.get(h.group);
        const reason = this.#exclusionReasons[f].get(v) ?? (g ? this.#reservedWhy(findPool(g, f, v), v) : undefined);
        if (reason !== undefined) out.push({ service, group: h.group, family: f, address: formatAddress(f, v), reason });
      }
    }
    return out;
  }

  /** Free addresses of these pools (of one group: they do not overlap) that are never handed out. */
  #excludedIn(f: Family, pools: readonly Pool[]): bigint {
    const used = this.#used[f];
    const reasons = this.#exclusionReasons[f];
    let excluded = 0n;
    for (const p of pools) {
      for (const v of this.#reserved.get(p) ?? []) if (!used.has(v) && !reasons.has(v)) excluded++;
    }
    for (const v of reasons.keys()) if (!used.has(v) && pools.some((p) => v >= p.first && v <= p.last)) excluded++;
    return excluded;
  }

  /** For an exhaustion message: how many of the pools' addresses are never handed out, if any. */
  #excludedNote(f: Family, pools: readonly Pool[]): string {
    const n = this.#excludedIn(f, pools);
    return n === 0n ? '' : `; ${n} of their free addresses ${n === 1n ? 'is' : 'are'} never handed out (excluded, or a subnet's network, broadcast or anycast address)`;
  }

  /** Which reserved address of the pool's subnet `v` is, if it is one (and they are excluded). */
  #reservedWhy(pool: Pool | undefined, v: bigint): string | undefined {
    if (!pool || !this.#reserved.get(pool)?.includes(v)) return undefined;
    const kind = reservedAddressKind(pool.subnet, { family: pool.family, value: v });
    return kind && `it is the ${kind} address of subnet ${formatSubnet(pool.subnet)}`;
  }

  /**
   * Gives a Service its addresses, or changes what it holds to match a changed request:
   * addresses it holds are kept where the request still allows them (same group, same
   * sharing key, same or no specific address), missing families are added, families no
   * longer asked for are released. Calling it twice with the same request changes nothing.
   */
  allocate(request: AllocateRequest): Allocation {
    return this.#replace(this.#parseAllocate(request));
  }

  /**
   * Records an allocation that already exists, before anything new is allocated. Accepts
   * addresses outside every pool and groups that are gone (they show up in `orphans()`);
   * refuses only what would let two Services hold one address against the sharing rules.
   */
  adopt(request: AdoptRequest): Allocation {
    return this.#replace(this.#parseAdopt(request));
  }

  /** Releases everything the Service holds. Returns whether it held anything. */
  release(service: string): boolean {
    const h = this.#byService.get(service);
    if (!h) return false;
    this.#unmark(service, h);
    this.#byService.delete(service);
    return true;
  }

  /** What the Service holds, if anything. */
  get(service: string): Allocation | undefined {
    const h = this.#byService.get(service);
    return h && this.#toAllocation(h);
  }

  /** Every allocation, in no particular order. */
  *allocations(): Generator<[string, Allocation]> {
    for (const [s, h] of this.#byService) yield [s, this.#toAllocation(h)];
  }

  /** Number of Services holding addresses. */
  get serviceCount(): number {
    return this.#byService.size;
  }

  /** The Services that hold an address (several when it is shared). */
  holdersOf(address: string): string[] {
    const a = parseAddress(address);
    if (!a || !this.#used[a.family].has(a.value)) return [];
    const b = this.#sharedAt[a.family].get(a.value);
    if (b) return [...b.holders[a.family]];
    for (const [s, h] of this.#byService) if (addressOf(h, a.family) === a.value) return [s];
    return [];
  }

  /** Size and use per family of a group. Throws `IPAM_UNKNOWN_GROUP`. */
  stats(group: string): GroupStats {
    const g = this.#groups.get(group);
    if (!g) throw new IpamError(IpamErrorCode.UnknownGroup, `ServiceGroup "${group}" does not exist`, { group });
    const one = (f: Family): FamilyStats => {
      let size = 0n;
      for (const p of g.pools[f]) size += poolSize(p);
      let inUse = 0;
      for (const u of this.#poolUse[f]) if (u.group === group) inUse += u.inUse;
      return { size, inUse: BigInt(inUse), excluded: this.#excludedIn(f, g.pools[f]) };
    };
    return { IPv4: one('IPv4'), IPv6: one('IPv6') };
  }

  /** Allocations whose address lies in no pool of their group (or whose group is gone). */
  orphans(): Orphan[] {
    const out: Orphan[] = [];
    for (const [service, h] of this.#byService) {
      const g = this.#groups.get(h.group);
      for (const f of familiesOf(h)) {
        const v = addressOf(h, f)!;
        if (!g || !findPool(g, f, v)) out.push({ service, group: h.group, family: f, address: formatAddress(f, v) });
      }
    }
    return out;
  }

  // --- the one way state changes: free the old holding, place the new, mark it ---

  #replace(req: ParsedRequest): Allocation {
    // The old holding's addresses are freed while the new one is placed (so it may keep
    // them), and put back if placing fails. The map entry stays where it is throughout,
    // so a failed call leaves even the iteration order unchanged.
    const old = this.#byService.get(req.service);
    if (old) this.#unmark(req.service, old);
    let next: Holding;
    try {
      next = this.#place(req, old);
    } catch (e) {
      if (old) this.#mark(req.service, old);
      throw e;
    }
    this.#mark(req.service, next);
    this.#byService.set(req.service, next);
    return this.#toAllocation(next);
  }

  #place(req: ParsedRequest, old: Holding | undefined): Holding {
    const group = this.#resolveGroup(req, old);
    const g = this.#groups.get(group);
    const oldKey = old instanceof SharedHolding ? old.key : undefined;
    const binding = req.key === undefined ? undefined : this.#keys.get(req.key);
    if (binding && binding.group !== group) {
      throw new IpamError(
        IpamErrorCode.SharingConflict,
        `Service ${req.service}: sharing key "${req.key}" is bound to ServiceGroup "${binding.group}", not "${group}"`,
        { service: req.service, group },
      );
    }
    const placed = new Map<Family, bigint>();
    let firstFailure: IpamError | undefined;
    for (const f of req.wanted) {
      const spec = req.specific.get(f);
      const kept = old && old.group === group && oldKey === req.key ? addressOf(old, f) : undefined;
      const keep = kept !== undefined && (spec === undefined || spec === kept) ? kept : undefined;
      let v: bigint | undefined;
      const bound = binding?.address[f];
      if (bound !== undefined) {
        if (spec !== undefined && spec !== bound) {
          throw new IpamError(
            IpamErrorCode.SharingConflict,
            `Service ${req.service}: asks for ${formatAddress(f, spec)}, but sharing key "${req.key}" is bound to ${formatAddress(f, bound)} in ServiceGroup "${group}"`,
            { service: req.service, group, address: formatAddress(f, spec) },
          );
        }
        this.#checkPorts(req, f, bound, binding!);
        v = bound;
      } else if (spec !== undefined) {
        v = this.#checkSpecific(req, g, group, f, spec, keep);
      } else if (keep !== undefined) {
        v = keep;
      } else {
        const pools = g?.pools[f] ?? [];
        v = this.#firstFree(f, pools);
        if (v === undefined) {
          const failure =
            pools.length === 0
              ? new IpamError(IpamErrorCode.FamilyUnavailable, `Service ${req.service}: ServiceGroup "${group}" has no ${f} pool`, { service: req.service, group })
              : new IpamError(
                  IpamErrorCode.PoolExhausted,
                  `Service ${req.service}: every ${f} pool of ServiceGroup "${group}" is full (${pools.map((p) => p.text).join(', ')})${this.#excludedNote(f, pools)}`,
                  { service: req.service, group, pool: pools.map((p) => p.text).join(',') },
                );
          if (req.policy !== 'PreferDualStack') throw failure;
          firstFailure ??= failure;
          continue;
        }
      }
      placed.set(f, v);
    }
    if (placed.size === 0) throw firstFailure!;
    const v4 = placed.get('IPv4');
    const v6 = placed.get('IPv6');
    const v6First = req.wanted[0] === 'IPv6';
    return req.key === undefined ? new Holding(group, v4, v6, v6First) : new SharedHolding(group, v4, v6, v6First, req.key, req.ports);
  }

  #resolveGroup(req: ParsedRequest, old: Holding | undefined): string {
    if (req.group !== undefined) {
      if (!req.adopting && !this.#groups.has(req.group)) {
        throw new IpamError(IpamErrorCode.UnknownGroup, `Service ${req.service}: ServiceGroup "${req.group}" does not exist`, {
          service: req.service,
          group: req.group,
        });
      }
      return req.group;
    }
    const first = req.wanted.find((f) => req.specific.has(f));
    if (first !== undefined) {
      const v = req.specific.get(first)!;
      for (const g of this.#groups.values()) if (findPool(g, first, v)) return g.name;
      if (old && addressOf(old, first) === v) return old.group;
      if (!req.adopting) {
        const text = formatAddress(first, v);
        throw new IpamError(IpamErrorCode.AddressNotInPool, `Service ${req.service}: address ${text} is in no pool of any ServiceGroup`, {
          service: req.service,
          address: text,
        });
      }
    }
    if (!req.adopting && !this.#groups.has('default')) {
      throw new IpamError(IpamErrorCode.UnknownGroup, `Service ${req.service}: names no ServiceGroup and there is no ServiceGroup "default"`, {
        service: req.service,
        group: 'default',
      });
    }
    return 'default';
  }

  /** A specific address: in the group's pools (unless kept or adopted) and free. */
  #checkSpecific(req: ParsedRequest, g: Group | undefined, group: string, f: Family, v: bigint, keep: bigint | undefined): bigint {
    const text = formatAddress(f, v);
    if (!req.adopting && v !== keep && !(g && findPool(g, f, v))) {
      const pools = g ? g.pools[f].map((p) => p.text).join(', ') : '';
      throw new IpamError(
        IpamErrorCode.AddressNotInPool,
        `Service ${req.service}: address ${text} is in no ${f} pool of ServiceGroup "${group}"${pools ? ` (${pools})` : ''}`,
        { service: req.service, group, address: text },
      );
    }
    if (!req.adopting && v !== keep) {
      const why = this.#exclusionReasons[f].get(v) ?? (g ? this.#reservedWhy(findPool(g, f, v), v) : undefined);
      if (why !== undefined) {
        throw new IpamError(IpamErrorCode.AddressExcluded, `Service ${req.service}: address ${text} in ServiceGroup "${group}" is never handed out: ${why}`, {
          service: req.service,
          group,
          address: text,
        });
      }
    }
    if (this.#used[f].has(v)) {
      const other = this.#sharedAt[f].get(v);
      const by = other ? `Services sharing key "${other.key}"` : `Service ${this.holdersOf(text)[0] ?? '?'}`;
      throw new IpamError(IpamErrorCode.AddressInUse, `Service ${req.service}: address ${text} in ServiceGroup "${group}" is held by ${by}`, {
        service: req.service,
        group,
        address: text,
      });
    }
    return v;
  }

  #checkPorts(req: ParsedRequest, f: Family, v: bigint, binding: KeyBinding): void {
    for (const other of binding.holders[f]) {
      const h = this.#byService.get(other);
      if (!(h instanceof SharedHolding)) continue;
      const clash = findPortConflict(req.ports, h.ports);
      if (clash) {
        const text = formatAddress(f, v);
        throw new IpamError(
          IpamErrorCode.SharingConflict,
          `Service ${req.service}: port ${clash.protocol}/${clash.port} on shared address ${text} is already used by Service ${other}`,
          { service: req.service, group: binding.group, address: text },
        );
      }
    }
  }

  #firstFree(f: Family, pools: readonly Pool[]): bigint | undefined {
    const used = this.#used[f];
    const excluded = this.#excluded[f];
    for (const p of pools) {
      const reserved = this.#reserved.get(p) ?? [];
      // Each pass that does not return moves past a run of excluded addresses or a
      // reserved address (the used set's runs are maximal, so one step clears them),
      // hence the bound.
      const passes = excluded.size + reserved.length + 2;
      let c = p.first;
      for (let i = 0; i < passes && c <= p.last; i++) {
        const next = excluded.firstFreeAtOrAfter(used.firstFreeAtOrAfter(c));
        if (reserved.includes(next)) {
          c = next + 1n;
          continue;
        }
        // `next` is never excluded; if it is free too, it is the answer.
        if (!used.has(next)) {
          if (next <= p.last) return next;
          break;
        }
        c = next;
      }
    }
    return undefined;
  }

  /** Marks the holding's addresses used (and binds its sharing key). */
  #mark(service: string, h: Holding): void {
    for (const f of FAMILIES) {
      const v = addressOf(h, f);
      if (v === undefined) continue;
      if (h instanceof SharedHolding) {
        let b = this.#keys.get(h.key);
        if (!b) {
          b = { key: h.key, group: h.group, address: { IPv4: undefined, IPv6: undefined }, holders: { IPv4: new Set(), IPv6: new Set() } };
          this.#keys.set(h.key, b);
        }
        if (b.address[f] === undefined) {
          b.address[f] = v;
          this.#sharedAt[f].set(v, b);
          this.#markUsed(f, v);
        }
        b.holders[f].add(service);
      } else {
        this.#markUsed(f, v);
      }
    }
  }

  /** Frees the holding's addresses (the last holder of a shared one frees it). */
  #unmark(service: string, h: Holding): void {
    for (const f of FAMILIES) {
      const v = addressOf(h, f);
      if (v === undefined) continue;
      if (h instanceof SharedHolding) {
        const b = this.#keys.get(h.key)!;
        b.holders[f].delete(service);
        if (b.holders[f].size === 0) {
          b.address[f] = undefined;
          this.#sharedAt[f].delete(v);
          this.#markFree(f, v);
          if (b.address.IPv4 === undefined && b.address.IPv6 === undefined) this.#keys.delete(h.key);
        }
      } else {
        this.#markFree(f, v);
      }
    }
  }

  #markUsed(f: Family, v: bigint): void {
    this.#used[f].add(v);
    for (const u of this.#poolUse[f]) if (v >= u.pool.first && v <= u.pool.last) u.inUse++;
  }

  #markFree(f: Family, v: bigint): void {
    this.#used[f].delete(v);
    for (const u of this.#poolUse[f]) if (v >= u.pool.first && v <= u.pool.last) u.inUse--;
  }

  #toAllocation(h: Holding): Allocation {
    return { group: h.group, addresses: familiesOf(h).map((f) => formatAddress(f, addressOf(h, f)!)) };
  }

  // --- request validation: everything is checked before any state is touched ---

  #parseAllocate(r: AllocateRequest): ParsedRequest {
    const service = checkService(r.service);
    const bad = (field: string, what: string): IpamError =>
      new IpamError(IpamErrorCode.InvalidRequest, `Service ${service}: ${field}: ${what}`, { service, field });
    const families: unknown = r.families;
    if (!Array.isArray(families) || r.families.length === 0 || r.families.length > 2) throw bad('families', 'must list one or two of IPv4, IPv6');
    for (const f of r.families) if (f !== 'IPv4' && f !== 'IPv6') throw bad('families', `"${String(f)}" is not IPv4 or IPv6`);
    if (r.families.length === 2 && r.families[0] === r.families[1]) throw bad('families', `${r.families[0]} is listed twice`);
    const policy = r.policy ?? 'SingleStack';
    if (!POLICIES.includes(policy)) throw bad('policy', `"${String(policy)}" is not one of ${POLICIES.join(', ')}`);
    if (policy === 'RequireDualStack' && r.families.length !== 2) throw bad('families', 'RequireDualStack needs both IPv4 and IPv6');
    const wanted = policy === 'SingleStack' ? r.families.slice(0, 1) : [...r.families];
    const texts = new Map<Family, string>();
    const specific = parseAddressList(r.addresses ?? [], bad, texts);
    for (const f of specific.keys()) {
      if (!wanted.includes(f)) throw bad('addresses', `"${texts.get(f)}" is an ${f} address, but the Service asks for ${wanted.join(' and ')} only`);
    }
    return {
      service,
      group: r.group === undefined || r.group === '' ? undefined : r.group,
      wanted,
      policy,
      specific,
      key: r.sharingKey === undefined || r.sharingKey === '' ? undefined : r.sharingKey,
      ports: parsePorts(service, r.ports ?? []),
      adopting: false,
    };
  }

  #parseAdopt(r: AdoptRequest): ParsedRequest {
    const service = checkService(r.service);
    const bad = (field: string, what: string): IpamError =>
      new IpamError(IpamErrorCode.InvalidRequest, `Service ${service}: ${field}: ${what}`, { service, field });
    const addresses: unknown = r.addresses;
    if (!Array.isArray(addresses) || r.addresses.length === 0) throw bad('addresses', 'adoption needs at least one address');
    const specific = parseAddressList(r.addresses, bad);
    return {
      service,
      group: r.group === undefined || r.group === '' ? undefined : r.group,
      wanted: [...specific.keys()],
      policy: 'RequireDualStack',
      specific,
      key: r.sharingKey === undefined || r.sharingKey === '' ? undefined : r.sharingKey,
      ports: parsePorts(service, r.ports ?? []),
      adopting: true,
    };
  }
}

function checkService(service: unknown): string {
  if (typeof service !== 'string' || service === '') {
    throw new IpamError(IpamErrorCode.InvalidRequest, 'request: service must be a non-empty name', { field: 'service' });
  }
  return service;
}

/** Addresses by family; `texts` (if given) gets each as the caller wrote it, for messages. */
function parseAddressList(list: readonly string[], bad: (field: string, what: string) => IpamError, texts?: Map<Family, string>): Map<Family, bigint> {
  const out = new Map<Family, bigint>();
  list.forEach((text, i) => {
    const a = typeof text === 'string' ? parseAddress(text) : undefined;
    if (!a) throw bad(`addresses[${i}]`, `"${String(text)}" is not an IPv4 or IPv6 address`);
    const mapped = ipv4MappedText(a);
    if (mapped !== undefined) throw bad(`addresses[${i}]`, `"${text.trim()}" is an IPv4-mapped IPv6 address; write the IPv4 address ${mapped}`);
    if (out.has(a.family)) throw bad(`addresses[${i}]`, `a second ${a.family} address (${text}); give at most one per family`);
    out.set(a.family, a.value);
    texts?.set(a.family, text.trim());
  });
  return out;
}
