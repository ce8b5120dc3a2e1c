// The wire messages, all in one place. The numeric type codes are append-only: never
// renumber or reuse one, or members of two versions would misread each other.
//
// Encoding: big-endian binary. A packet is `count:u8` then `count` times
// (`length:u16`, message). A message is `type:u8` then its fields; strings are
// `length:u8` + UTF-8 (at most 255 bytes), lists `count:u8` (push-pull: `u16`).
// Anything short, long, unknown or over a limit is rejected as a whole.

/** Wire type codes (append-only). */
export const MessageType = {
  Ping: 1,
  IndirectPing: 2,
  Ack: 3,
  Nack: 4,
  Suspect: 5,
  Alive: 6,
  Dead: 7,
  PushPull: 8,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Member status codes on the wire (append-only). */
export const WireStatus = { alive: 0, suspect: 1, dead: 2, left: 3 } as const;
export type WireStatusName = keyof typeof WireStatus;

/** Direct probe: `target` must be the receiver's name, or it drops the ping. */
export interface PingMessage { readonly type: typeof MessageType.Ping; readonly seq: number; readonly target: string }
/** Ask the receiver to probe `target` for us and forward the ack (and a nack if it gets none). */
export interface IndirectPingMessage {
  readonly type: typeof MessageType.IndirectPing;
  readonly seq: number;
  readonly target: string;
  readonly targetAddress: string;
  readonly wantNack: boolean;
}
export interface AckMessage { readonly type: typeof MessageType.Ack; readonly seq: number }
/** A relay could not reach the target: tells the origin its own network is fine. */
export interface NackMessage { readonly type: typeof MessageType.Nack; readonly seq: number }
export interface SuspectMessage { readonly type: typeof MessageType.Suspect; readonly incarnation: number; readonly node: string; readonly from: string }
export interface AliveMessage {
  readonly type: typeof MessageType.Alive;
  readonly incarnation: number;
  readonly node: string;
  readonly address: string;
  readonly subnets: readonly string[];
}
/** `from === node` means the member left on purpose. */
export interface DeadMessage { readonly type: typeof MessageType.Dead; readonly incarnation: number; readonly node: string; readonly from: string }

/** One member in a full-state exchange. */
export interface MemberSnapshot {
  readonly name: string;
  readonly address: string;
  readonly incarnation: number;
  readonly status: WireStatusName;
  readonly subnets: readonly string[];
}
export interface PushPullMessage { readonly type: typeof MessageType.PushPull; readonly join: boolean; readonly members: readonly MemberSnapshot[] }

export type Message = PingMessage | IndirectPingMessage | AckMessage | NackMessage | SuspectMessage | AliveMessage | DeadMessage | PushPullMessage;

/** Limits the decoder enforces. */
export const LIMITS = {
  /** Bytes of one string (node name, address, subnet). Kubernetes node names are at most 253. */
  stringBytes: 255,
  /** Subnets per member. */
  subnets: 64,
  /** Members in one push-pull. */
  pushPullMembers: 20_000,
  /** Messages in one packet. */
  packetMessages: 255,
} as const;

/** Thrown by the decoder; the caller counts it as a malformed packet. */
export class MalformedMessage extends Error {
  override readonly name = 'MalformedMessage';
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

class Writer {
  private buf: Uint8Array;
  private view: DataView;
  length = 0;
  constructor(size = 256) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.room(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  u16(v: number): void {
    this.room(2);
    this.view.setUint16(this.length, v);
    this.length += 2;
  }
  u32(v: number): void {
    this.room(4);
    this.view.setUint32(this.length, v >>> 0);
    this.length += 4;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  str(s: string): void {
    const b = encoder.encode(s);
    if (b.length > LIMITS.stringBytes) throw new RangeError(`string of ${b.length} bytes exceeds ${LIMITS.stringBytes}: ${s.slice(0, 40)}...`);
    this.u8(b.length);
    this.bytes(b);
  }
  done(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

class Reader {
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  private at = 0;
  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  need(n: number): void {
    if (this.at + n > this.buf.length) throw new MalformedMessage(`truncated at byte ${this.at}`);
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.at++);
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.at);
    this.at += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.at);
    this.at += 4;
    return v;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }
  str(): string {
    const n = this.u8();
    try {
      return decoder.decode(this.bytes(n));
    } catch (e) {
      if (e instanceof MalformedMessage) throw e;
      throw new MalformedMessage('string is not UTF-8');
    }
  }
  end(): void {
    if (this.at !== this.buf.length) throw new MalformedMessage(`${this.buf.length - this.at} trailing bytes`);
  }
}

const STATUS_BY_CODE: readonly WireStatusName[] = ['alive', 'suspect', 'dead', 'left'];

function writeSubnets(w: Writer, subnets: readonly string[]): void {
  if (subnets.length > LIMITS.subnets) throw new RangeError(`${subnets.length} subnets exceed ${LIMITS.subnets}`);
  w.u8(subnets.length);
  for (const s of subnets) w.str(s);
}

function readSubnets(r: Reader): string[] {
  const n = r.u8();
  if (n > LIMITS.subnets) throw new MalformedMessage(`${n} subnets exceed ${LIMITS.subnets}`);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(r.str());
  return out;
}

function writeMessage(w: Writer, m: Message): void {
  w.u8(m.type);
  switch (m.type) {
    case MessageType.Ping:
      w.u32(m.seq);
      w.str(m.target);
      return;
    case MessageType.IndirectPing:
      w.u32(m.seq);
      w.str(m.target);
      w.str(m.targetAddress);
      w.u8(m.wantNack ? 1 : 0);
      return;
    case MessageType.Ack:
    case MessageType.Nack:
      w.u32(m.seq);
      return;
    case MessageType.Suspect:
    case MessageType.Dead:
      w.u32(m.incarnation);
      w.str(m.node);
      w.str(m.from);
      return;
    case MessageType.Alive:
      w.u32(m.incarnation);
      w.str(m.node);
      w.str(m.address);
      writeSubnets(w, m.subnets);
      return;
    case MessageType.PushPull:
      if (m.members.length > LIMITS.pushPullMembers) throw new RangeError(`${m.members.length} members exceed ${LIMITS.pushPullMembers}`);
      w.u8(m.join ? 1 : 0);
      w.u16(m.members.length);
      for (const s of m.members) {
        w.str(s.name);
        w.str(s.address);
        w.u32(s.incarnation);
        w.u8(WireStatus[s.status]);
        writeSubnets(w, s.subnets);
      }
      return;
  }
}

function readMessage(r: Reader): Message {
  const type = r.u8();
  switch (type) {
    case MessageType.Ping:
      return { type, seq: r.u32(), target: r.str() };
    case MessageType.IndirectPing: {
      const seq = r.u32();
      const target = r.str();
      const targetAddress = r.str();
      const flag = r.u8();
      if (flag > 1) throw new MalformedMessage(`indirect ping flag ${flag}`);
      return { type, seq, target, targetAddress, wantNack: flag === 1 };
    }
    case MessageType.Ack:
    case MessageType.Nack:
      return { type, seq: r.u32() };
    case MessageType.Suspect:
    case MessageType.Dead:
      return { type, incarnation: r.u32(), node: r.str(), from: r.str() };
    case MessageType.Alive:
      return { type, incarnation: r.u32(), node: r.str(), address: r.str(), subnets: readSubnets(r) };
    case MessageType.PushPull: {
      const join = r.u8();
      if (join > 1) throw new MalformedMessage(`push-pull join flag ${join}`);
      const n = r.u16();
      if (n > LIMITS.pushPullMembers) throw new MalformedMessage(`${n} members exceed ${LIMITS.pushPullMembers}`);
      const members: MemberSnapshot[] = [];
      for (let i = 0; i < n; i++) {
        const name = r.str();
        const address = r.str();
        const incarnation = r.u32();
        const code = r.u8();
        const status = STATUS_BY_CODE[code];
        if (status === undefined) throw new MalformedMessage(`member status ${code}`);
        members.push({ name, address, incarnation, status, subnets: readSubnets(r) });
      }
      return { type, join: join === 1, members };
    }
    default:
      throw new MalformedMessage(`unknown message type ${type}`);
  }
}

/** Encodes one message on its own (the unit the gossip queue stores). */
export function encodeMessage(m: Message): Uint8Array {
  const w = new Writer(m.type === MessageType.PushPull ? 64 * (m.members.length + 1) : 64);
  writeMessage(w, m);
  return w.done().slice();
}

/** Decodes one message; throws `MalformedMessage`. */
export function decodeMessage(bytes: Uint8Array): Message {
  const r = new Reader(bytes);
  const m = readMessage(r);
  r.end();
  return m;
}

/** Bytes a packet spends on framing: the count byte plus two length bytes per message. */
export const PACKET_OVERHEAD = 1;
export const PACKET_PER_MESSAGE_OVERHEAD = 2;

/** Frames already-encoded messages into one packet. */
export function encodePacket(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 0 || parts.length > LIMITS.packetMessages) throw new RangeError(`a packet holds 1 to ${LIMITS.packetMessages} messages, not ${parts.length}`);
  const w = new Writer(parts.reduce((n, p) => n + p.length + 2, 1));
  w.u8(parts.length);
  for (const p of parts) {
    if (p.length > 0xffff) throw new RangeError(`message of ${p.length} bytes`);
    w.u16(p.length);
    w.bytes(p);
  }
  return w.done();
}

/** Decodes a packet into its messages; throws `MalformedMessage` if any part is bad. */
export function decodePacket(bytes: Uint8Array): Message[] {
  const r = new Reader(bytes);
  const n = r.u8();
  if (n === 0) throw new MalformedMessage('empty packet');
  const out: Message[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.u16();
    out.push(decodeMessage(r.bytes(len)));
  }
  r.end();
  return out;
}
