// The one contract an allocator talks to for a group's addresses, whoever keeps them:
// the in-memory pools of an Ipam (answers at once), or an external IPAM such as Netbox
// (answers later). Every source records what Services hold in one shared Ipam, the
// ledger, so sharing rules, conflicts and adoption work the same for every group.
import type { AllocateRequest, Allocation, GroupStats, Ipam } from './ipam.ts';

/**
 * The answer comes later: the source has asked for the addresses and calls the wake-up
 * its owner gave it with this Service once the answer (or a failure) is in. Meanwhile the
 * Service keeps what it holds.
 */
export interface PendingAllocation {
  readonly pending: true;
  /** The group that will answer. */
  readonly group: string;
  /** What is awaited, in words (for a log line): `an address from Netbox for shop/web`. */
  readonly waitingFor: string;
}

/** What `AddressSource.allocate` returns: the Service's addresses now, or a promise to wake it. */
export type AllocateResult = Allocation | PendingAllocation;

/** Whether the result says the answer comes later. */
export function isPending(result: AllocateResult): result is PendingAllocation {
  return (result as Partial<PendingAllocation>).pending === true;
}

/** Whether a group can hand out addresses, or why not (a status condition's reason and message). */
export type GroupValidity = { readonly valid: true } | { readonly valid: false; readonly reason: string; readonly message: string };

/** The part of an Ipam that a source records allocations in. */
export type AllocationLedger = Pick<Ipam, 'get' | 'adopt' | 'release' | 'holdersOf'>;

/**
 * Where the addresses of some groups come from. A caller keeps one source per kind of
 * group and routes every call by the group's name (`serves`); nothing else differs
 * between groups. A call that throws leaves the ledger as it was; failures are
 * `IpamError` (allocation rules) or the source's own error class with a stable `code`.
 */
export interface AddressSource {
  /** Whether this source keeps the addresses of the named group. */
  serves(group: string): boolean;
  /** Gives or updates a Service's addresses (same rules as `Ipam.allocate`), or says they come later. */
  allocate(request: AllocateRequest): AllocateResult;
  /** Frees what the Service holds; whether it held anything. */
  release(service: string): boolean;
  /**
   * `before` (a Service's former allocation from one of this source's groups) left the
   * ledger through another call, such as the Service moving to another group: whatever of
   * it nobody holds now is given back.
   */
  reclaim(before: Allocation): void;
  /** Size and use per family; undefined when not known (yet). */
  stats(group: string): GroupStats | undefined;
  /** Whether the group works, as this source judges it; undefined when it has no opinion (the caller validated the group). */
  validity(group: string): GroupValidity | undefined;
  /** The owner became the writer: the source may act (ask, give back) from now on. */
  lead(): void;
  /** The owner stopped writing: nothing more is asked or given back until `lead()`. */
  standby(): void;
  /** For good: ends work in flight and closes connections. */
  stop(): Promise<void>;
}

/**
 * The groups configured in an Ipam as an AddressSource: synchronous, never pending, with
 * nothing to do on a change of writer. `ipam` is read at every call, so an owner may
 * replace its Ipam (rebuild it from what Services carry) without building a new source.
 */
export class IpamSource implements AddressSource {
  readonly #ipam: () => Ipam;

  constructor(ipam: () => Ipam) {
    this.#ipam = ipam;
  }

  serves(group: string): boolean {
    return this.#ipam().groupNames().includes(group);
  }

  allocate(request: AllocateRequest): Allocation {
    return this.#ipam().allocate(request);
  }

  release(service: string): boolean {
    return this.#ipam().release(service);
  }

  /** In-memory pools: an address the ledger no longer holds is free already. */
  reclaim(_before: Allocation): void {}

  stats(group: string): GroupStats | undefined {
    return this.serves(group) ? this.#ipam().stats(group) : undefined;
  }

  /** Groups are validated when set (`setGroups` throws): no opinion here. */
  validity(_group: string): GroupValidity | undefined {
    return undefined;
  }

  lead(): void {}

  standby(): void {}

  stop(): Promise<void> {
    return Promise.resolve();
  }
}
