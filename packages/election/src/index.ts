export { ElectionError, ElectionErrorCode, type ElectionErrorContext } from './errors.ts';
export {
  nodeScale,
  suspicionMinMs,
  suspicionMaxMs,
  expectedConfirmations,
  suspicionTimeoutMs,
  retransmitLimit,
  awarenessScale,
  applyAwarenessDelta,
  pushPullIntervalMs,
  indirectNackDelayMs,
  detectionBoundMs,
} from './timing.ts';
export { PRESETS, DEFAULT_PRESET, resolveConfig, type SwimConfig, type PresetName, type ConfigInput } from './presets.ts';
export {
  MessageType,
  WireStatus,
  LIMITS,
  MalformedMessage,
  encodeMessage,
  decodeMessage,
  encodePacket,
  decodePacket,
  type Message,
  type MemberSnapshot,
} from './messages.ts';
export { Keyring, SealedEnvelope, PlainEnvelope, SEAL_OVERHEAD, DROP_REASONS, type DropReason, type Envelope, type OpenResult, type SealedEnvelopeOptions } from './seal.ts';
export { type Member, type MemberInfo, type MemberStatus, isLive } from './member-state.ts';
export { Swim, STREAM_MAX_BYTES, type Counters, type DropCounterName, type MembershipEvent, type SwimOptions } from './swim.ts';
export { Membership, type MembershipOptions, type MembershipEvents } from './membership.ts';
export { type Transport, type TransportHandlers, type Scheduler, realScheduler, splitHostPort, joinHostPort } from './transport.ts';
export { UdpTransport, DEFAULT_PORT, type UdpTransportOptions } from './udp-transport.ts';
export { winner, winnerScore, canAnnounce } from './winner.ts';
export {
  decideSafety,
  addressVerdict,
  hardFenceMs,
  safetyTiming,
  initialSafetyState,
  isSafetyMode,
  modeClass,
  WITHDRAWN_MODES,
  type SafetyMode,
  type SafetyTiming,
  type SafetyMember,
  type SafetyLease,
  type SafetyInput,
  type SafetyState,
  type SafetyDecision,
  type AddressVerdict,
} from './safety.ts';
export { guard, leaseFresh, type GuardDecision, type GuardHealth, type GuardLease, type GuardMode, type GuardSwimMember } from './guard.ts';
