export { NetlinkError, NetlinkErrorCode, type NetlinkErrorContext } from './errors.ts';
export type { NetlinkHandle } from './handle.ts';
export type {
  AddressBatchItem,
  AddressFlags,
  AddressOptions,
  AddressReplaceItem,
  AnnounceOptions,
  BatchResult,
  DefaultRoute,
  Family,
  InterfaceAddress,
  Link,
  LinkRef,
  LocalSubnet,
  NetChange,
  NetChangeSubscription,
  ProbeOptions,
  ProbeResult,
  Subnet,
  VirtualLinkResult,
} from './types.ts';
export { PURELB_ADDRESS_PROTOCOL } from './types.ts';
export { openNetlinkHandle, diagnostics, type NetlinkHandleOptions } from './kernel-handle.ts';
export {
  buildArpProbe,
  buildDadNeighbourSolicitation,
  buildGratuitousArp,
  buildUnsolicitedNeighbourAdvertisement,
  icmpv6Checksum,
  parseArpFrame,
  parseNeighbourAdvertisementFrame,
  parseNeighbourSolicitationFrame,
  solicitedNodeMulticast,
  ARP_REQUEST,
  ARP_REPLY,
  type ArpFrame,
  type NeighbourAdvertisementFrame,
  type NeighbourSolicitationFrame,
} from './announce/frames.ts';
export { conflictingMac, PROBE_DEFAULTS, type ProbeSubject } from './announce/probe.ts';
export { runInNamedNetns } from './netns.ts';
