export { type Family, type Address, FAMILIES, parseAddress, formatAddress, addressFromBytes, ipv4MappedText } from './address.ts';
export { IpamError, IpamErrorCode, type IpamErrorContext } from './errors.ts';
export { type GroupSpec, type Group, parseGroup } from './group.ts';
export {
  type Subnet,
  type ReservedAddressKind,
  parseSubnet,
  parseSubnetCached,
  formatSubnet,
  subnetOf,
  subnetTextOf,
  lastAddress,
  subnetContains,
  cidrContains,
  reservedAddressKind,
  subnetReserved,
} from './cidr.ts';
export { type PoolSpec, type Pool, parsePool, parseRangeText, poolSize } from './pool.ts';
export { type ServicePort } from './ports.ts';
export {
  Ipam,
  type AllocateRequest,
  type AdoptRequest,
  type Allocation,
  type Exclusion,
  type HeldExclusion,
  type IpamOptions,
  type SetExclusionsResult,
  type FamilyPolicy,
  type FamilyStats,
  type GroupStats,
  type Orphan,
  type SetGroupsResult,
} from './ipam.ts';
export {
  type AddressSource,
  type AllocateResult,
  type AllocationLedger,
  type GroupValidity,
  type PendingAllocation,
  IpamSource,
  isPending,
} from './source.ts';
