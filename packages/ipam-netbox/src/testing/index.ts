export {
  NetboxEmulator,
  DEFAULT_V1_TOKEN,
  DEFAULT_V2_TOKEN,
  type EmulatorOptions,
  type EmulatorFaults,
  type EmulatorToken,
  type EmulatorRequest,
  type TenantRecord,
  type PrefixRecord,
  type IpRangeRecord,
  type IpAddressRecord,
  type SeedRequest,
} from './emulator.ts';
export { FakeNetbox, FakeNetboxClock, type FakeNetboxOptions, type FakeNetboxCall, type FakeNetboxOperation, type FakeNetboxRecord } from './fake.ts';
