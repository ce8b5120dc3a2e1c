export { type Family, type Address, FAMILIES, parseAddress, formatAddress, ipv4MappedText } from './address.ts';
export { IpamError, IpamErrorCode, type IpamErrorContext } from './errors.ts';
export { type GroupSpec, type Group, parseGroup } from './group.ts';
export { type PoolSpec, type Pool, type Subnet, parsePool, parseSubnet, formatSubnet, parseRangeText, poolSize, subnetReserved } from './pool.ts';
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
