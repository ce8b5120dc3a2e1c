export { NetlinkError, NetlinkErrorCode, type NetlinkErrorContext } from './errors.ts';
export type { NetlinkHandle } from './handle.ts';
export type {
  AddressFlags,
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
  Subnet,
  VirtualLinkResult,
} from './types.ts';
export { openNetlinkHandle, diagnostics, type NetlinkHandleOptions } from './kernel-handle.ts';
export {
  buildGratuitousArp,
  buildUnsolicitedNeighbourAdvertisement,
  icmpv6Checksum,
  parseArpFrame,
  parseNeighbourAdvertisementFrame,
  ARP_REQUEST,
  ARP_REPLY,
  type ArpFrame,
  type NeighbourAdvertisementFrame,
} from './announce/frames.ts';
export { runInNamedNetns } from './netns.ts';
