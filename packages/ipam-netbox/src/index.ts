export { NetboxError, NetboxErrorCode, type NetboxErrorContext } from './errors.ts';
export {
  NetboxClient,
  type NetboxClientOptions,
  type NetboxRequestRecord,
  type RequestOptions,
  netboxRequestChannel,
  authorizationHeader,
  apiRoot,
} from './client.ts';
export {
  type NetboxTenant,
  type NetboxPrefix,
  type NetboxIpRange,
  type NetboxIpAddress,
  type NetboxPage,
  parseTenant,
  parsePrefix,
  parseIpRange,
  parseIpAddress,
  parsePage,
  parseErrorBody,
  splitCidr,
} from './models.ts';
export { NetboxPool, type NetboxPoolSpec, type NetboxSource, type HeldAddress, type ResolvedPool, type ReleaseOutcome } from './pool.ts';
export {
  NetboxAddressSource,
  type NetboxAddressSourceOptions,
  type NetboxGroupSpec,
  type NetboxPoolApi,
  type NetboxConnection,
  type NetboxClock,
  type HolderDirectory,
  type NetboxSourceEvent,
  holderOf,
  netboxReason,
} from './address-source.ts';
