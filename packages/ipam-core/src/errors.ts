/**
 * Every way an IPAM call can fail, as a stable code. Callers branch on `code`, never on
 * the message. Append new codes; never rename or reuse one.
 */
export const IpamErrorCode = {
  /** Pool or subnet text is malformed, a pool lies outside its subnet, pools of one group overlap, or the aggregation is bad. */
  InvalidPool: 'IPAM_INVALID_POOL',
  /** The request names a group that is not configured. */
  UnknownGroup: 'IPAM_UNKNOWN_GROUP',
  /** A requested address lies in no pool of the group. */
  AddressNotInPool: 'IPAM_ADDRESS_NOT_IN_POOL',
  /** A requested address is held by a Service it cannot be shared with. */
  AddressInUse: 'IPAM_ADDRESS_IN_USE',
  /** Every pool of the family is full. */
  PoolExhausted: 'IPAM_POOL_EXHAUSTED',
  /** Sharing is refused: ports overlap, the key is bound to another address, or another group. */
  SharingConflict: 'IPAM_SHARING_CONFLICT',
  /** The group has no pool of a family the request needs. */
  FamilyUnavailable: 'IPAM_FAMILY_UNAVAILABLE',
  /** The request itself is malformed (bad address text, two addresses of one family, no families). */
  InvalidRequest: 'IPAM_INVALID_REQUEST',
  /**
   * A requested address is never handed out: it is excluded (`setExclusions`, for example
   * a Node's own address), or it is the network, broadcast or subnet-router anycast
   * address of its pool's subnet (`excludeSubnetReserved`).
   */
  AddressExcluded: 'IPAM_ADDRESS_EXCLUDED',
  /** Address or CIDR text, or a prefix length, given to a subnet function that throws (`subnetOf`, `subnetTextOf`) is malformed. */
  InvalidCidr: 'IPAM_INVALID_CIDR',
} as const;

export type IpamErrorCode = (typeof IpamErrorCode)[keyof typeof IpamErrorCode];

/** What an error is about, so a caller can build an Event or a status condition without parsing text. */
export interface IpamErrorContext {
  readonly service?: string;
  readonly group?: string;
  readonly pool?: string;
  readonly address?: string;
  /** The field of the input that is wrong, as a path (`v4pools[1].subnet`). */
  readonly field?: string;
}

/** The one error class of this package. A call that throws it has changed nothing. */
export class IpamError extends Error {
  override readonly name = 'IpamError';
  readonly code: IpamErrorCode;
  readonly context: IpamErrorContext;

  constructor(code: IpamErrorCode, message: string, context: IpamErrorContext = {}) {
    super(message);
    this.code = code;
    this.context = context;
  }
}
