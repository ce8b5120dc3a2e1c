// Runs inside a namespace (the lab's client), for minutes if asked: every INTERVAL_MS it
// asks once for each address, ARP who-has for IPv4 and a neighbour solicitation for IPv6,
// and reports which MACs answered that one request.
//
//   arp-sampler.ts --iface eth0 --interval 20 --window 250 --max-ms 3600000 ADDRESS...
//
// Each request carries a tag, so an answer is matched to the request it answers (ARP and
// neighbour discovery have no request id): the sender (source) address of the request is
// one of a ring of tag addresses of the lab's LAN that nothing else uses (SAMPLER_TAGS in
// network.ts), and the answer goes back to it. Times are the kernel's capture times of
// the request leaving and the answer arriving (wall clock, ms).
//
// Output, one line each:
//   ready
//   s INDEX AT_MS ANSWERS        a closed sample: ANSWERS is "-" or mac@afterMs,mac@afterMs
//   end SENT STRAYS SKIPPED      at exit: requests sent, answers that matched no open sample,
//                                requests not sent (this process was late for their tick, or
//                                the tag was still open), one per address
// A sample closes once the capture has read every frame up to WINDOW_MS after its request
// left (so a stall of this process never closes a sample before its answers are read);
// answers after that are strays. A tag is not reused while its sample is open: the
// address skips that tick instead (counted in SKIPPED), so an answer never lands on the
// wrong request. Stops on SIGTERM, when stdin closes, or after MAX_MS.
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { setPriority } from 'node:os';
import { parseArgs } from 'node:util';
import { ARP_REPLY, ARP_REQUEST, icmpv6Checksum, parseArpFrame, parseNeighbourAdvertisementFrame } from '@purelb/linux-net';
import { PacketCapture, PacketSender } from '@purelb/linux-net/testing';
import { SAMPLER_TAGS_V4, SAMPLER_TAGS_V6, v6Bytes } from './network.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    iface: { type: 'string', default: 'eth0' },
    interval: { type: 'string', default: '20' },
    window: { type: 'string', default: '250' },
    'max-ms': { type: 'string', default: String(6 * 3600_000) },
  },
});
const intervalMs = Number(values.interval);
const windowMs = Number(values.window);
const maxMs = Number(values['max-ms']);
const tagCount = SAMPLER_TAGS_V4.length;
if (!(intervalMs >= 1) || !(windowMs >= intervalMs) || !(maxMs > 0) || positionals.length === 0 || positionals.some((a) => !isIPv4(a) && !isIPv6(a))) {
  console.error('usage: arp-sampler.ts [--iface eth0] [--interval MS] [--window MS] [--max-ms MS] ADDRESS...');
  process.exit(2);
}
// A tag is reused every tagCount requests: the window must close before that.
if (windowMs >= intervalMs * (tagCount - 1)) {
  console.error(`--window ${windowMs} must be shorter than ${tagCount - 1} intervals (${intervalMs * (tagCount - 1)} ms)`);
  process.exit(2);
}

// A sampler starved of CPU samples less often (and says so in SKIPPED): ahead of the
// daemons it watches, which run at the default priority. Root may; if not, it runs as is.
try {
  setPriority(-5);
} catch {
  // not permitted: default priority
}

const iface = values.iface;
const ifindex = Number(readFileSync(`/sys/class/net/${iface}/ifindex`, 'utf8'));
const mac = Uint8Array.from(readFileSync(`/sys/class/net/${iface}/address`, 'utf8').trim().split(':').map((h) => parseInt(h, 16)));
const hex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
const ownMac = hex(mac);
const ip4 = (s: string): number[] => s.split('.').map(Number);

/** ARP request, broadcast: who has TARGET, tell TAG (RFC 826). */
function arpRequest(tag: string, target: string): Buffer {
  return Buffer.from([
    ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], ...mac, 0x08, 0x06,
    0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, ARP_REQUEST,
    ...mac, ...ip4(tag),
    0, 0, 0, 0, 0, 0, ...ip4(target),
  ]);
}

/**
 * Neighbour solicitation for TARGET from TAG, to its solicited-node multicast group, with
 * our MAC as the source link-layer address option (RFC 4861 section 4.3): the target
 * answers with a solicited advertisement to TAG at our MAC.
 */
function neighbourSolicitation(tag: string, target: string): Buffer {
  const t = v6Bytes(target);
  const src = v6Bytes(tag);
  const dst = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13]!, t[14]!, t[15]!);
  const f = Buffer.alloc(14 + 40 + 32);
  f.set([0x33, 0x33, 0xff, t[13]!, t[14]!, t[15]!], 0);
  f.set(mac, 6);
  f.writeUInt16BE(0x86dd, 12);
  f.writeUInt32BE(0x60000000, 14);
  f.writeUInt16BE(32, 18);
  f[20] = 58; // ICMPv6
  f[21] = 255; // receivers drop neighbour discovery with any other hop limit
  f.set(src, 22);
  f.set(dst, 38);
  const icmp = f.subarray(54);
  icmp[0] = 135; // neighbour solicitation
  icmp.set(t, 8);
  icmp[24] = 1; // source link-layer address option
  icmp[25] = 1;
  icmp.set(mac, 26);
  icmp.writeUInt16BE(icmpv6Checksum(src, dst, icmp), 2);
  return f;
}

interface Pending {
  readonly seq: number;
  atMs: number;
  sentSeen: boolean;
  readonly answers: { mac: string; afterMs: number }[];
}

const targets = positionals.map((address) => {
  const v6 = isIPv6(address);
  const tags = v6 ? SAMPLER_TAGS_V6 : SAMPLER_TAGS_V4;
  return {
    address,
    v6,
    frames: tags.map((tag) => (v6 ? neighbourSolicitation(tag, address) : arpRequest(tag, address))),
    /** Open samples by tag index. */
    pending: new Map<number, Pending>(),
    /** Open samples in the order they were sent, to close them in order. */
    queue: [] as Pending[],
    seq: 0,
  };
});
// Indexes into `targets` (IPv4 and IPv6 addresses may be mixed in it).
const byV4 = new Map(targets.flatMap((x, i) => (x.v6 ? [] : [[x.address, i] as const])));
const byV6 = new Map(targets.filter((x) => x.v6).map((x) => [hex(v6Bytes(x.address)), x] as const));
const tagIndexV4 = new Map(SAMPLER_TAGS_V4.map((t, i) => [t, i] as const));
const tagIndexV6 = new Map(SAMPLER_TAGS_V6.map((t, i) => [hex(v6Bytes(t)), i] as const));

const wallMs = (): number => performance.timeOrigin + performance.now();
const out: string[] = [];
const flush = (): void => {
  if (out.length > 0) process.stdout.write(out.join('\n') + '\n');
  out.length = 0;
};
let sent = 0;
let strays = 0;
let skipped = 0;
/** Every frame the kernel stamped up to this time (ms, wall clock) has been read. */
let capturedUpTo = 0;

function closeDue(upTo: number): void {
  targets.forEach((x, i) => {
    while (x.queue.length > 0 && upTo - x.queue[0]!.atMs >= windowMs) {
      const p = x.queue.shift()!;
      x.pending.delete(p.seq % tagCount);
      const answers = p.answers.length === 0 ? '-' : p.answers.map((a) => `${a.mac}@${a.afterMs.toFixed(2)}`).join(',');
      out.push(`s ${i} ${p.atMs.toFixed(3)} ${answers}`);
    }
  });
}

function answer(x: (typeof targets)[number], tag: number, from: string, atMs: number): void {
  const p = x.pending.get(tag);
  if (!p) {
    strays++;
    return;
  }
  p.answers.push({ mac: from, afterMs: Math.max(0, atMs - p.atMs) });
}

function onFrame(frame: Buffer, atMs: number): void {
  const ethertype = frame.length >= 14 ? frame.readUInt16BE(12) : 0;
  if (ethertype === 0x0806) {
    const arp = parseArpFrame(frame);
    if (!arp) return;
    const sender = arp.senderIp.join('.');
    const target = arp.targetIp.join('.');
    if (arp.op === ARP_REQUEST && hex(arp.senderMac) === ownMac) {
      // Our own request leaving: its kernel time is the sample's time.
      const i = byV4.get(target);
      const tag = tagIndexV4.get(sender);
      const p = i === undefined || tag === undefined ? undefined : targets[i]!.pending.get(tag);
      if (p && !p.sentSeen) {
        p.sentSeen = true;
        p.atMs = atMs;
      }
    } else if (arp.op === ARP_REPLY) {
      const i = byV4.get(sender);
      const tag = tagIndexV4.get(target);
      if (i !== undefined && tag !== undefined) answer(targets[i]!, tag, hex(arp.senderMac), atMs);
    }
  } else if (ethertype === 0x86dd && frame.length >= 54 + 24 && frame[20] === 58) {
    const type = frame[54];
    if (type === 135 && hex(frame.subarray(6, 12)) === ownMac) {
      const x = byV6.get(hex(frame.subarray(54 + 8, 54 + 24)));
      const tag = tagIndexV6.get(hex(frame.subarray(22, 38)));
      const p = x === undefined || tag === undefined ? undefined : x.pending.get(tag);
      if (p && !p.sentSeen) {
        p.sentSeen = true;
        p.atMs = atMs;
      }
    } else if (type === 136) {
      const na = parseNeighbourAdvertisementFrame(frame);
      if (!na || !na.checksumValid) return;
      const x = byV6.get(hex(na.target));
      const tag = tagIndexV6.get(hex(na.destinationIp));
      if (x !== undefined && tag !== undefined) answer(x, tag, hex(na.targetMac ?? na.sourceMac), atMs);
    }
  }
}

const capture = new PacketCapture(ifindex);
const sender = new PacketSender();
const startedAt = performance.now();
const deadline = startedAt + maxMs;
let stopping = false;
const stop = (): void => {
  stopping = true;
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();

// Requests go out on a fixed grid; a tick this process was too late for is skipped (and
// counted), never sent in a burst.
let tick = 0;
let timer: NodeJS.Timeout | undefined;
function onTick(): void {
  if (stopping || performance.now() >= deadline) {
    stopping = true;
    return;
  }
  const now = wallMs();
  for (const x of targets) {
    const tag = x.seq % tagCount;
    if (x.pending.has(tag)) {
      skipped++;
      continue;
    }
    const seq = x.seq++;
    const p: Pending = { seq, atMs: now, sentSeen: false, answers: [] };
    x.pending.set(tag, p);
    x.queue.push(p);
    sender.send(ifindex, x.frames[tag]!);
    sent++;
  }
  closeDue(capturedUpTo);
  flush();
  const elapsed = performance.now() - startedAt;
  const next = Math.max(tick + 1, Math.ceil(elapsed / intervalMs));
  skipped += (next - tick - 1) * targets.length;
  tick = next;
  timer = setTimeout(onTick, Math.max(0, tick * intervalMs - (performance.now() - startedAt)));
}

console.log('ready');
timer = setTimeout(onTick, 0);
// The capture loop: bounded by the deadline, and by a frame count no run reaches.
async function readOne(): Promise<void> {
  const readFrom = wallMs();
  const f = await capture.next();
  if (f) {
    onFrame(f.frame, f.receivedAtMs);
    capturedUpTo = Math.max(capturedUpTo, f.receivedAtMs);
  } else {
    // Nothing came for a whole read timeout: everything sent before the read was read.
    capturedUpTo = Math.max(capturedUpTo, readFrom);
  }
  closeDue(capturedUpTo);
}
for (let i = 0; i < 1e10 && !stopping && performance.now() < deadline; i++) await readOne();
clearTimeout(timer);
// Let the last requests' answers in before closing their samples.
const lastAt = wallMs();
for (let i = 0; i < 100_000 && capturedUpTo < lastAt + windowMs && wallMs() - lastAt < windowMs + 2000; i++) await readOne();
closeDue(Number.POSITIVE_INFINITY);
out.push(`end ${sent} ${strays} ${skipped}`);
flush();
sender.close();
await capture.close();
process.exit(0);
