export { MemoryNetlinkHandle, MemorySegment, type MemoryNetlinkHandleOptions, type RecordedAnnouncement, type RecordedProbe } from './memory-handle.ts';
export { TestNetns, assertNetnsPrerequisites, connectVeth, runNodeInNetns, sweepStaleTestNetns, type ChildResult } from './netns.ts';
export { PacketCapture, PacketReceiver, PacketSender, type CapturedFrame, type PacketReceiverOptions } from '../announce/packet-socket.ts';
