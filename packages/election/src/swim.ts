// The SWIM + Lifeguard state machine. It owns no timer and reads no clock of its own:
// the shell calls `tick()` at `nextDeadline()` and feeds it packets, so a simulation on a
// virtual clock runs exactly the code a real member runs.
import { BroadcastQueue } from './broadcast-queue.ts';
import { type MemberInfo, type MemberRecord, MemberTable, isLive, sameSubnets } from './member-state.ts';
import {
  type AliveMessage,
  type DeadMessage,
  type IndirectPingMessage,
  type MemberSnapshot,
  type Message,
  MalformedMessage,
  MessageType,
  PACKET_OVERHEAD,
  PACKET_PER_MESSAGE_OVERHEAD,
  type SuspectMessage,
  decodeMessage,
  decodePacket,
  encodeMessage,
  encodePacket,
} from './messages.ts';
import type { SwimConfig } from './presets.ts';
import { DROP_REASONS, type DropReason, type Envelope } from './seal.ts';
import {
  applyAwarenessDelta,
  awarenessScale,
  expectedConfirmations,
  indirectNackDelayMs,
  pushPullIntervalMs,
  retransmitLimit,
  suspicionMaxMs,
  suspicionMinMs,
  suspicionTimeoutMs,
} from './timing.ts';
import type { Transport } from './transport.ts';

/** A change in the membership, as seen by this member. */
export interface MembershipEvent {
  /**
   * `join`: a member appeared (or came back after dead/left); `update`: its subnets
   * changed; `suspect`: it missed a probe; `alive`: it refuted a suspicion; `dead`: it
   * was declared failed; `leave`: it left on purpose.
   */
  readonly type: 'join' | 'update' | 'suspect' | 'alive' | 'dead' | 'leave';
  readonly member: MemberInfo;
}

/** Why a packet was dropped: the envelope's reasons plus protocol-level ones. */
export type DropCounterName = DropReason | 'unexpected';

/** Monotonic counters for metrics. */
export interface Counters {
  probesSent: number;
  acksReceived: number;
  nacksReceived: number;
  indirectProbesSent: number;
  indirectProbesRelayed: number;
  suspicions: number;
  deaths: number;
  leaves: number;
  joins: number;
  refutations: number;
  pushPulls: number;
  pushPullFailures: number;
  /** Full-state exchanges offered to recently dead members (reconnect rounds). */
  reconnects: number;
  packetsSent: number;
  packetsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  dropped: Record<DropCounterName, number>;
}

function newCounters(): Counters {
  const dropped = Object.fromEntries([...DROP_REASONS, 'unexpected'].map((r) => [r, 0])) as Record<DropCounterName, number>;
  return {
    probesSent: 0,
    acksReceived: 0,
    nacksReceived: 0,
    indirectProbesSent: 0,
    indirectProbesRelayed: 0,
    suspicions: 0,
    deaths: 0,
    leaves: 0,
    joins: 0,
    refutations: 0,
    pushPulls: 0,
    pushPullFailures: 0,
    reconnects: 0,
    packetsSent: 0,
    packetsReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    dropped,
  };
}

/** Largest full-state exchange accepted on the stream. */
export const STREAM_MAX_BYTES = 8 * 1024 * 1024;

export interface SwimOptions {
  readonly name: string;
  readonly subnets: readonly string[];
  readonly config: SwimConfig;
  readonly transport: Transport;
  readonly envelope: Envelope;
  readonly now: () => number;
  readonly random: () => number;
  /** Called for every membership change. */
  readonly onEvent: (event: MembershipEvent) => void;
  /** Called when `nextDeadline()` may have moved earlier (after async completions). */
  readonly wake: () => void;
}

interface Probe {
  readonly seq: number;
  readonly target: string;
  readonly address: string;
  /** When the ping went out: an answer proves contact as of then, not as of its arrival. */
  readonly sentAt: number;
  readonly ackDeadline: number;
  readonly endDeadline: number;
  indirectSent: boolean;
  expectedNacks: number;
  nacks: number;
}

interface Relay {
  readonly origin: string;
  readonly originSeq: number;
  nackAt: number;
  readonly sentAt: number;
  readonly expiresAt: number;
}

interface Suspicion {
  readonly start: number;
  readonly min: number;
  readonly max: number;
  readonly expected: number;
  readonly confirmers: Set<string>;
  deadline: number;
}

const MAX_RELAYS = 1024;
const RECLAIM_CHECK_MS = 1_000;

/** One member's protocol engine. */
export class Swim {
  readonly counters: Counters = newCounters();
  readonly #o: SwimOptions;
  readonly #cfg: SwimConfig;
  readonly #table = new MemberTable();
  readonly #queue = new BroadcastQueue();
  readonly #self: MemberRecord;
  readonly #suspicions = new Map<string, Suspicion>();
  readonly #relays = new Map<number, Relay>();
  readonly #keepalives = new Map<number, number>();
  readonly #corrected = new Map<string, number>();
  readonly #probeSoon = new Set<string>();
  #probeOrder: string[] = [];
  #probeIndex = 0;
  #probe: Probe | undefined;
  #seq = 0;
  #awareness = 0;
  #running = false;
  #leaving = false;
  #nextProbeAt = Infinity;
  #nextGossipAt = 0;
  #nextPushPullAt = Infinity;
  #nextReclaimAt = Infinity;
  #nextReconnectAt = Infinity;
  #nextKeepaliveAt = 0;
  #lastRoundTripAt = -Infinity;

  constructor(options: SwimOptions) {
    this.#o = options;
    this.#cfg = options.config;
    this.#self = {
      name: options.name,
      address: options.transport.address,
      incarnation: 0,
      status: 'alive',
      subnets: [...options.subnets],
      since: options.now(),
    };
    this.#table.add(this.#self);
  }

  get name(): string {
    return this.#self.name;
  }

  get incarnation(): number {
    return this.#self.incarnation;
  }

  /** Lifeguard's local health score (0 = healthy). */
  get awareness(): number {
    return this.#awareness;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Live members, this one included. */
  get liveCount(): number {
    return this.#table.liveCount;
  }

  /** Gossip messages waiting to be sent. */
  get queued(): number {
    return this.#queue.size;
  }

  /** Begins probing and gossiping. Probe phase is random so members do not move in step. */
  start(): void {
    if (this.#running) return;
    const now = this.#o.now();
    this.#running = true;
    this.#nextProbeAt = now + this.#o.random() * this.#cfg.probeIntervalMs;
    this.#nextGossipAt = now;
    this.#nextReclaimAt = now + RECLAIM_CHECK_MS;
    this.#lastRoundTripAt = now;
    this.#schedulePushPull(now);
    this.#scheduleReconnect(now);
    // Announce ourselves: members that synced with our seed before we joined learn of us
    // from this gossip, not from the seed's (which may already have run out).
    this.#broadcast(this.#self.name, this.#aliveOfSelf());
  }

  /** Stops all activity (no leave message). */
  stop(): void {
    this.#running = false;
    this.#probe = undefined;
  }

  /** Every known member, this one included. */
  members(): MemberInfo[] {
    return this.#table.values().map((m) => ({ ...m }));
  }

  member(name: string): MemberInfo | undefined {
    const m = this.#table.get(name);
    return m ? { ...m } : undefined;
  }

  /**
   * Whether this member hears from its peers: true if it has no live peer, or a probe of
   * its own (or a full-state exchange) was answered within `isolationTimeoutMs`.
   */
  /**
   * Send time of the latest probe, keepalive, relayed probe or full-state exchange that was
   * answered: this member's view is known fresh as of then. A send time, not an arrival
   * time, so an answer that waited in a socket while the process was frozen proves nothing
   * about the time after the freeze.
   */
  lastContactAt(): number {
    return this.#lastRoundTripAt;
  }

  canGossip(): boolean {
    if (this.#table.liveCount <= 1) return true;
    return this.#o.now() - this.#lastRoundTripAt <= this.#cfg.isolationTimeoutMs;
  }

  /** The earliest time `tick()` has work to do. */
  nextDeadline(): number {
    if (!this.#running) return Infinity;
    let t = Math.min(this.#nextProbeAt, this.#nextPushPullAt, this.#nextReclaimAt, this.#nextReconnectAt);
    if (this.#queue.size > 0) t = Math.min(t, this.#nextGossipAt);
    const p = this.#probe;
    if (p) t = Math.min(t, p.indirectSent ? p.endDeadline : p.ackDeadline);
    for (const s of this.#suspicions.values()) if (s.deadline < t) t = s.deadline;
    for (const r of this.#relays.values()) t = Math.min(t, r.nackAt, r.expiresAt);
    if (this.#table.liveCount > 1 && !this.#leaving) {
      const keepaliveDue = Math.max(this.#nextKeepaliveAt, this.#lastRoundTripAt + this.#cfg.isolationTimeoutMs / 2);
      t = Math.min(t, keepaliveDue);
    }
    return t;
  }

  /** Does whatever is due at `now()`. */
  tick(): void {
    if (!this.#running) return;
    const now = this.#o.now();
    for (const [name, s] of this.#suspicions) if (s.deadline <= now) this.#suspicionExpired(name);
    const p = this.#probe;
    if (p) {
      if (!p.indirectSent && now >= p.ackDeadline) this.#sendIndirect(p);
      if (now >= p.endDeadline) this.#probeFailed(p);
    }
    if (now >= this.#nextProbeAt) {
      const scaledInterval = awarenessScale(this.#cfg.probeIntervalMs, this.#awareness, this.#cfg.awarenessMaxMultiplier);
      this.#nextProbeAt = now + scaledInterval;
      if (!this.#leaving && !this.#probe) this.#startProbe(now);
    }
    for (const [seq, r] of this.#relays) {
      if (r.nackAt <= now) {
        this.#sendPacket(r.origin, [{ type: MessageType.Nack, seq: r.originSeq }]);
        r.nackAt = Infinity;
      }
      if (r.expiresAt <= now) this.#relays.delete(seq);
    }
    if (this.#table.liveCount > 1 && !this.#leaving && now - this.#lastRoundTripAt >= this.#cfg.isolationTimeoutMs / 2 && now >= this.#nextKeepaliveAt) {
      this.#keepalive(now);
    }
    if (this.#queue.size > 0 && now >= this.#nextGossipAt) {
      this.#gossip();
      this.#nextGossipAt = now + this.#cfg.gossipIntervalMs;
    } else if (this.#queue.size === 0 && now >= this.#nextGossipAt) {
      this.#nextGossipAt = now;
    }
    if (now >= this.#nextPushPullAt) {
      this.#periodicPushPull();
      this.#schedulePushPull(now);
    }
    if (now >= this.#nextReconnectAt) {
      this.#reconnect(now);
      this.#scheduleReconnect(now);
    }
    if (now >= this.#nextReclaimAt) {
      this.#reclaim(now);
      this.#nextReclaimAt = now + RECLAIM_CHECK_MS;
    }
  }

  // ---- probing ----

  #nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0;
    return this.#seq;
  }

  #probeCandidate(m: MemberRecord | undefined): m is MemberRecord {
    return m !== undefined && m !== this.#self && isLive(m.status);
  }

  #nextProbeTarget(): MemberRecord | undefined {
    // Suspects we heard of from others come first: our own probe is an independent
    // confirmation (or a chance to hear the refutation), which lets Lifeguard shorten the
    // suspicion of a member that is really dead.
    for (const name of this.#probeSoon) {
      this.#probeSoon.delete(name);
      const m = this.#table.get(name);
      if (m && m.status === 'suspect' && !this.#suspicions.get(name)?.confirmers.has(this.#self.name)) return m;
    }
    for (let i = 0; i <= this.#probeOrder.length + 1; i++) {
      if (this.#probeIndex >= this.#probeOrder.length) {
        this.#probeOrder = this.#table.values().filter((m) => this.#probeCandidate(m)).map((m) => m.name);
        this.#shuffle(this.#probeOrder);
        this.#probeIndex = 0;
        if (this.#probeOrder.length === 0) return undefined;
      }
      const m = this.#table.get(this.#probeOrder[this.#probeIndex++]!);
      if (this.#probeCandidate(m)) return m;
    }
    return undefined;
  }

  #shuffle(a: string[]): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.#o.random() * (i + 1));
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
  }

  #startProbe(now: number): void {
    const target = this.#nextProbeTarget();
    if (!target) return;
    const seq = this.#nextSeq();
    const msgs: Message[] = [{ type: MessageType.Ping, seq, target: target.name }];
    // Lifeguard's buddy system: a suspect hears about its suspicion from whoever probes it.
    if (target.status === 'suspect') msgs.push({ type: MessageType.Suspect, incarnation: target.incarnation, node: target.name, from: this.#self.name });
    this.#sendPacket(target.address, msgs);
    this.counters.probesSent++;
    const scale = (ms: number): number => awarenessScale(ms, this.#awareness, this.#cfg.awarenessMaxMultiplier);
    this.#probe = {
      seq,
      target: target.name,
      address: target.address,
      sentAt: now,
      ackDeadline: now + scale(this.#cfg.probeTimeoutMs),
      endDeadline: now + scale(this.#cfg.probeIntervalMs),
      indirectSent: false,
      expectedNacks: 0,
      nacks: 0,
    };
  }

  #sendIndirect(p: Probe): void {
    p.indirectSent = true;
    const relays = this.#table.sample(this.#cfg.indirectChecks, (m) => m.status === 'alive' && m !== this.#self && m.name !== p.target, this.#o.random);
    for (const r of relays) {
      this.#sendPacket(r.address, [{ type: MessageType.IndirectPing, seq: p.seq, target: p.target, targetAddress: p.address, wantNack: true }]);
      this.counters.indirectProbesSent++;
    }
    p.expectedNacks = relays.length;
  }

  #probeFailed(p: Probe): void {
    this.#probe = undefined;
    // Lifeguard: missing nacks mean our own network or process is slow, not the target.
    const delta = p.expectedNacks > 0 ? p.expectedNacks - p.nacks : 1;
    this.#awareness = applyAwarenessDelta(this.#awareness, delta, this.#cfg.awarenessMaxMultiplier);
    const m = this.#table.get(p.target);
    if (!m || !isLive(m.status)) return;
    const wasSuspect = m.status === 'suspect';
    this.#onSuspect({ type: MessageType.Suspect, incarnation: m.incarnation, node: m.name, from: this.#self.name });
    // Tell the suspect at once so it can refute before the others even hear of it.
    if (!wasSuspect) this.#sendPacket(m.address, [{ type: MessageType.Suspect, incarnation: m.incarnation, node: m.name, from: this.#self.name }]);
  }

  #keepalive(now: number): void {
    this.#nextKeepaliveAt = now + this.#cfg.isolationTimeoutMs / 4;
    // Two peers, so that one peer that died (and is not declared dead yet) does not make
    // this member believe itself cut off.
    for (const peer of this.#table.sample(2, (m) => m.status === 'alive' && m !== this.#self, this.#o.random)) {
      const seq = this.#nextSeq();
      this.#keepalives.set(seq, now + this.#cfg.isolationTimeoutMs);
      this.#sendPacket(peer.address, [{ type: MessageType.Ping, seq, target: peer.name }]);
    }
    if (this.#keepalives.size > 64) for (const [s, exp] of this.#keepalives) if (exp < now) this.#keepalives.delete(s);
  }

  // ---- packets ----

  /** Handles one datagram. */
  handlePacket(from: string, data: Uint8Array): void {
    this.counters.packetsReceived++;
    this.counters.bytesReceived += data.length;
    const opened = this.#o.envelope.open(data, this.#cfg.maxPacketBytes);
    if (!opened.ok) {
      this.counters.dropped[opened.reason]++;
      return;
    }
    let msgs: Message[];
    try {
      msgs = decodePacket(opened.payload);
    } catch (e) {
      if (!(e instanceof MalformedMessage)) throw e;
      this.counters.dropped.malformed++;
      return;
    }
    if (!this.#running) return;
    for (const m of msgs) this.#handleMessage(from, m);
  }

  #handleMessage(from: string, m: Message): void {
    switch (m.type) {
      case MessageType.Ping: {
        if (m.target !== this.#self.name) {
          this.counters.dropped.unexpected++;
          return;
        }
        const reply: Message[] = [{ type: MessageType.Ack, seq: m.seq }];
        // A member we hold dead is running and reaches us: tell it, so that it refutes.
        // Otherwise a verdict we reached while we were cut off ourselves stays ours alone
        // (nobody else heard it) until a full-state exchange, up to pushPullIntervalMs later.
        const sender = this.#table.values().find((x) => x.address === from && x.status === 'dead');
        if (sender) reply.push({ type: MessageType.Dead, incarnation: sender.incarnation, node: sender.name, from: this.#self.name });
        this.#sendPacket(from, reply);
        return;
      }
      case MessageType.IndirectPing:
        this.#relay(from, m);
        return;
      case MessageType.Ack:
        this.#onAck(m.seq);
        return;
      case MessageType.Nack:
        if (this.#probe && this.#probe.seq === m.seq) {
          this.#probe.nacks++;
          this.counters.nacksReceived++;
          // A relay answered: our own network works, even if the target does not.
          this.#contact(this.#probe.sentAt);
        }
        return;
      case MessageType.Suspect:
        this.#onSuspect(m, from);
        return;
      case MessageType.Alive:
        this.#onAlive(m);
        return;
      case MessageType.Dead:
        this.#onDead(m, from);
        return;
      case MessageType.PushPull:
        this.counters.dropped.unexpected++;
        return;
    }
  }

  /** Records contact proven by an answer to something sent at `sentAt`. */
  #contact(sentAt: number): void {
    if (sentAt > this.#lastRoundTripAt) this.#lastRoundTripAt = sentAt;
  }

  #onAck(seq: number): void {
    const p = this.#probe;
    if (p && p.seq === seq) {
      this.#probe = undefined;
      this.counters.acksReceived++;
      this.#contact(p.sentAt);
      this.#awareness = applyAwarenessDelta(this.#awareness, -1, this.#cfg.awarenessMaxMultiplier);
      return;
    }
    const keepaliveExpiry = this.#keepalives.get(seq);
    if (keepaliveExpiry !== undefined) {
      this.#keepalives.delete(seq);
      this.#contact(keepaliveExpiry - this.#cfg.isolationTimeoutMs);
      return;
    }
    const r = this.#relays.get(seq);
    if (r) {
      this.#relays.delete(seq);
      this.#contact(r.sentAt);
      this.#sendPacket(r.origin, [{ type: MessageType.Ack, seq: r.originSeq }]);
    }
  }

  #relay(from: string, m: IndirectPingMessage): void {
    if (this.#relays.size >= MAX_RELAYS) {
      this.counters.dropped.unexpected++;
      return;
    }
    const now = this.#o.now();
    const seq = this.#nextSeq();
    this.#relays.set(seq, {
      origin: from,
      originSeq: m.seq,
      nackAt: m.wantNack ? now + indirectNackDelayMs(this.#cfg.probeTimeoutMs) : Infinity,
      sentAt: now,
      expiresAt: now + this.#cfg.probeIntervalMs,
    });
    this.counters.indirectProbesRelayed++;
    this.#sendPacket(m.targetAddress, [{ type: MessageType.Ping, seq, target: m.target }]);
  }

  /** Encodes, piggybacks gossip, seals and sends one datagram. */
  #sendPacket(to: string, msgs: readonly Message[], piggyback = true): void {
    const parts = msgs.map(encodeMessage);
    if (piggyback) {
      const used = PACKET_OVERHEAD + parts.reduce((n, p) => n + p.length + PACKET_PER_MESSAGE_OVERHEAD, 0);
      parts.push(...this.#queue.take(this.#cfg.maxPacketBytes - used, PACKET_PER_MESSAGE_OVERHEAD, this.#retransmitLimit(), 255 - parts.length));
    }
    this.#transmit(to, parts);
  }

  #transmit(to: string, parts: readonly Uint8Array[]): void {
    const sealed = this.#o.envelope.seal(encodePacket(parts));
    this.counters.packetsSent++;
    this.counters.bytesSent += sealed.length;
    this.#o.transport.send(to, sealed);
  }

  #retransmitLimit(): number {
    return retransmitLimit(this.#cfg.retransmitMult, this.#table.liveCount);
  }

  #gossip(): void {
    const now = this.#o.now();
    const targets = this.#table.sample(
      this.#cfg.gossipNodes,
      (m) => m !== this.#self && (isLive(m.status) || (m.status === 'dead' && now - m.since < this.#cfg.gossipToTheDeadMs)),
      this.#o.random,
    );
    for (const t of targets) {
      const parts = this.#queue.take(this.#cfg.maxPacketBytes - PACKET_OVERHEAD, PACKET_PER_MESSAGE_OVERHEAD, this.#retransmitLimit());
      if (parts.length === 0) break;
      this.#transmit(t.address, parts);
    }
  }

  #broadcast(key: string, m: Message): void {
    this.#queue.queue(key, encodeMessage(m));
    this.#o.wake();
  }

  // ---- state changes ----

  #info(m: MemberRecord): MemberInfo {
    return { ...m };
  }

  #emit(type: MembershipEvent['type'], m: MemberRecord): void {
    this.#o.onEvent({ type, member: this.#info(m) });
  }

  #refute(accused: number): void {
    this.#self.incarnation = Math.max(this.#self.incarnation, accused) + 1;
    this.counters.refutations++;
    this.#broadcast(this.#self.name, this.#aliveOfSelf());
  }

  #aliveOfSelf(): AliveMessage {
    const s = this.#self;
    return { type: MessageType.Alive, incarnation: s.incarnation, node: s.name, address: s.address, subnets: s.subnets };
  }

  #onAlive(a: AliveMessage): void {
    const now = this.#o.now();
    if (a.node === this.#self.name) {
      if (this.#leaving) return;
      // Someone holds a newer or different picture of us (an earlier run of this member):
      // overrule it.
      if (a.incarnation > this.#self.incarnation || (a.incarnation === this.#self.incarnation && (!sameSubnets(a.subnets, this.#self.subnets) || a.address !== this.#self.address))) {
        this.#refute(a.incarnation);
      }
      return;
    }
    const m = this.#table.get(a.node);
    if (!m) {
      const rec: MemberRecord = { name: a.node, address: a.address, incarnation: a.incarnation, status: 'alive', subnets: [...a.subnets], since: now };
      this.#table.add(rec);
      this.#insertIntoProbeOrder(rec.name);
      this.counters.joins++;
      this.#broadcast(a.node, a);
      this.#emit('join', rec);
      return;
    }
    if (a.incarnation <= m.incarnation) return;
    const before = m.status;
    const metaChanged = !sameSubnets(a.subnets, m.subnets);
    m.incarnation = a.incarnation;
    m.address = a.address;
    m.subnets = [...a.subnets];
    this.#table.setStatus(m, 'alive', now);
    this.#suspicions.delete(m.name);
    this.#broadcast(a.node, a);
    if (before === 'dead' || before === 'left') {
      this.#insertIntoProbeOrder(m.name);
      this.counters.joins++;
      this.#emit('join', m);
      return;
    }
    if (before === 'suspect') this.#emit('alive', m);
    if (metaChanged) this.#emit('update', m);
  }

  #insertIntoProbeOrder(name: string): void {
    const i = this.#probeIndex + Math.floor(this.#o.random() * (this.#probeOrder.length - this.#probeIndex + 1));
    this.#probeOrder.splice(i, 0, name);
  }

  /**
   * Someone sent us an accusation we already refuted: it missed our `alive`. Send it again,
   * directly, at most once per gossip interval per sender.
   */
  #correct(source: string | undefined): void {
    if (source === undefined || this.#leaving) return;
    const now = this.#o.now();
    const last = this.#corrected.get(source);
    if (last !== undefined && now - last < this.#cfg.gossipIntervalMs) return;
    if (this.#corrected.size >= 1024) this.#corrected.clear();
    this.#corrected.set(source, now);
    this.#sendPacket(source, [this.#aliveOfSelf()]);
  }

  #onSuspect(s: SuspectMessage, source?: string): void {
    const m = this.#table.get(s.node);
    if (!m) return;
    if (s.incarnation < m.incarnation) {
      if (m === this.#self) this.#correct(source);
      return;
    }
    if (m === this.#self) {
      if (this.#leaving) return;
      this.#refute(s.incarnation);
      // Lifeguard: being accused hints that we are the slow one.
      this.#awareness = applyAwarenessDelta(this.#awareness, 1, this.#cfg.awarenessMaxMultiplier);
      const accuser = this.#table.get(s.from);
      if (accuser && accuser !== this.#self) this.#sendPacket(accuser.address, [this.#aliveOfSelf()]);
      return;
    }
    if (m.status === 'suspect') {
      m.incarnation = s.incarnation;
      const sus = this.#suspicions.get(m.name);
      if (sus && !sus.confirmers.has(s.from)) {
        sus.confirmers.add(s.from);
        sus.deadline = sus.start + suspicionTimeoutMs(sus.min, sus.max, sus.confirmers.size - 1, sus.expected);
        this.#broadcast(m.name, s);
      }
      return;
    }
    if (m.status !== 'alive') return;
    const now = this.#o.now();
    m.incarnation = s.incarnation;
    this.#table.setStatus(m, 'suspect', now);
    const n = this.#table.liveCount;
    const min = suspicionMinMs(this.#cfg.suspicionMult, n, this.#cfg.probeIntervalMs);
    const max = suspicionMaxMs(this.#cfg.suspicionMaxTimeoutMult, min);
    const expected = expectedConfirmations(this.#cfg.suspicionConfirmations, n);
    this.#suspicions.set(m.name, { start: now, min, max, expected, confirmers: new Set([s.from]), deadline: now + suspicionTimeoutMs(min, max, 0, expected) });
    this.counters.suspicions++;
    if (s.from !== this.#self.name && this.#probeSoon.size < 64) this.#probeSoon.add(m.name);
    this.#broadcast(m.name, s);
    this.#emit('suspect', m);
  }

  #suspicionExpired(name: string): void {
    this.#suspicions.delete(name);
    const m = this.#table.get(name);
    if (!m || m.status !== 'suspect') return;
    this.#onDead({ type: MessageType.Dead, incarnation: m.incarnation, node: name, from: this.#self.name });
  }

  #onDead(d: DeadMessage, source?: string): void {
    const m = this.#table.get(d.node);
    if (!m) return;
    if (d.incarnation < m.incarnation) {
      if (m === this.#self) this.#correct(source);
      return;
    }
    if (m.status === 'dead' || m.status === 'left') return;
    if (m === this.#self) {
      if (!this.#leaving) this.#refute(d.incarnation);
      return;
    }
    const left = d.from === d.node;
    m.incarnation = d.incarnation;
    this.#table.setStatus(m, left ? 'left' : 'dead', this.#o.now());
    this.#suspicions.delete(m.name);
    this.#broadcast(m.name, d);
    if (left) this.counters.leaves++;
    else this.counters.deaths++;
    this.#emit(left ? 'leave' : 'dead', m);
  }

  #reclaim(now: number): void {
    for (const m of [...this.#table.values()]) {
      if ((m.status === 'dead' || m.status === 'left') && now - m.since >= this.#cfg.deadReclaimMs) {
        this.#table.remove(m.name);
        this.#queue.drop(m.name);
      }
    }
    for (const [s, exp] of this.#keepalives) if (exp < now) this.#keepalives.delete(s);
  }

  // ---- metadata, leave ----

  /** Changes this member's subnets; the new list spreads with a higher incarnation. */
  setSubnets(subnets: readonly string[]): void {
    if (sameSubnets(subnets, this.#self.subnets)) return;
    this.#self.subnets = [...subnets];
    this.#self.incarnation++;
    this.#broadcast(this.#self.name, this.#aliveOfSelf());
  }

  /**
   * Leaves on purpose: tells every live member directly and gossips it. Probing stops;
   * the shell should keep ticking briefly so the gossip drains, then `stop()`.
   */
  leave(): void {
    if (this.#leaving) return;
    this.#leaving = true;
    this.#probe = undefined;
    this.#table.setStatus(this.#self, 'left', this.#o.now());
    const d: DeadMessage = { type: MessageType.Dead, incarnation: this.#self.incarnation, node: this.#self.name, from: this.#self.name };
    this.#queue.queue(this.#self.name, encodeMessage(d));
    for (const m of this.#table.values()) if (m !== this.#self && isLive(m.status)) this.#sendPacket(m.address, [d], false);
    this.#o.wake();
  }

  // ---- full-state exchange ----

  #snapshot(): MemberSnapshot[] {
    return this.#table.values().map((m) => ({ name: m.name, address: m.address, incarnation: m.incarnation, status: m.status, subnets: m.subnets }));
  }

  #schedulePushPull(now: number): void {
    const base = this.#cfg.pushPullIntervalMs;
    if (base <= 0) {
      this.#nextPushPullAt = Infinity;
      return;
    }
    const interval = pushPullIntervalMs(base, this.#table.liveCount);
    // Jitter so that members do not all sync at once.
    this.#nextPushPullAt = now + interval * (0.5 + this.#o.random());
  }

  #periodicPushPull(): void {
    if (this.#leaving) return;
    const [peer] = this.#table.sample(1, (m) => m.status === 'alive' && m !== this.#self, this.#o.random);
    if (peer) this.pushPull(peer.address, false);
    // Reconnect: a member declared failed but still remembered may have been cut off only.
    const now = this.#o.now();
    const [failed] = this.#table.sample(1, (m) => m.status === 'dead' && now - m.since < this.#cfg.deadReclaimMs, this.#o.random);
    if (failed) this.pushPull(failed.address, false);
  }

  #scheduleReconnect(now: number): void {
    const base = this.#cfg.reconnectIntervalMs;
    this.#nextReconnectAt = base > 0 ? now + base * (0.5 + this.#o.random()) : Infinity;
  }

  /** One full-state exchange with a member declared dead within gossipToTheDeadMs, if any: it may have been cut off only. */
  #reconnect(now: number): void {
    if (this.#leaving) return;
    const [failed] = this.#table.sample(1, (m) => m !== this.#self && m.status === 'dead' && now - m.since < this.#cfg.gossipToTheDeadMs, this.#o.random);
    if (failed) {
      this.counters.reconnects++;
      this.pushPull(failed.address, false);
    }
  }

  /** Exchanges full state with the member at `address`; `done` gets an error or nothing. */
  pushPull(address: string, join: boolean, done?: (error: Error | undefined) => void): void {
    const sentAt = this.#o.now();
    const payload = this.#o.envelope.seal(encodeMessage({ type: MessageType.PushPull, join, members: this.#snapshot() }));
    this.counters.bytesSent += payload.length;
    this.#o.transport.request(address, payload, this.#cfg.streamTimeoutMs, (error, reply) => {
      let failure = error;
      if (!failure && reply) {
        this.counters.bytesReceived += reply.length;
        const states = this.#openPushPull(reply);
        if (states) {
          this.counters.pushPulls++;
          this.#contact(sentAt);
          if (this.#running) this.#merge(states);
        } else failure = new Error(`push-pull reply from ${address} was dropped`);
      } else if (!failure) failure = new Error(`push-pull to ${address}: no reply`);
      if (failure) this.counters.pushPullFailures++;
      done?.(failure);
      this.#o.wake();
    });
  }

  #openPushPull(data: Uint8Array): readonly MemberSnapshot[] | undefined {
    const opened = this.#o.envelope.open(data, STREAM_MAX_BYTES);
    if (!opened.ok) {
      this.counters.dropped[opened.reason]++;
      return undefined;
    }
    try {
      const m = decodeMessage(opened.payload);
      if (m.type === MessageType.PushPull) return m.members;
      this.counters.dropped.unexpected++;
    } catch (e) {
      if (!(e instanceof MalformedMessage)) throw e;
      this.counters.dropped.malformed++;
    }
    return undefined;
  }

  /** Handles a full-state exchange request from a peer. */
  handleRequest(_from: string, data: Uint8Array, reply: (data: Uint8Array | undefined) => void): void {
    this.counters.bytesReceived += data.length;
    const states = this.#openPushPull(data);
    if (!states || !this.#running) {
      reply(undefined);
      return;
    }
    this.counters.pushPulls++;
    this.#merge(states);
    const out = this.#o.envelope.seal(encodeMessage({ type: MessageType.PushPull, join: false, members: this.#snapshot() }));
    this.counters.bytesSent += out.length;
    reply(out);
    this.#o.wake();
  }

  #merge(states: readonly MemberSnapshot[]): void {
    for (const s of states) {
      switch (s.status) {
        case 'alive':
          this.#onAlive({ type: MessageType.Alive, incarnation: s.incarnation, node: s.name, address: s.address, subnets: s.subnets });
          break;
        case 'left':
          this.#onDead({ type: MessageType.Dead, incarnation: s.incarnation, node: s.name, from: s.name });
          break;
        default:
          // A remote verdict of death is only a suspicion here: it may be stale.
          this.#onSuspect({ type: MessageType.Suspect, incarnation: s.incarnation, node: s.name, from: this.#self.name });
      }
    }
  }

  /**
   * Adds members as alive without events or gossip: for simulations that start from a
   * converged cluster instead of replaying every join.
   */
  seed(states: readonly MemberSnapshot[]): void {
    const now = this.#o.now();
    for (const s of states) {
      if (s.name === this.#self.name || this.#table.get(s.name)) continue;
      this.#table.add({ name: s.name, address: s.address, incarnation: s.incarnation, status: 'alive', subnets: [...s.subnets], since: now });
    }
    this.#probeIndex = this.#probeOrder.length;
  }
}
