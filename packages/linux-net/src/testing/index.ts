export { MemoryNetlinkHandle, type MemoryNetlinkHandleOptions, type RecordedAnnouncement } from './memory-handle.ts';
export { TestNetns, assertNetnsPrerequisites, connectVeth, runNodeInNetns, sweepStaleTestNetns, type ChildResult } from './netns.ts';
export { PacketCapture, PacketSender, type CapturedFrame } from '../announce/packet-socket.ts';
