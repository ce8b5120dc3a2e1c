// The request/reply layer over one NETLINK_ROUTE socket from the `netlink` package.
// Requests issued in the same tick are coalesced into one sendmsg: the kernel handles
// each netlink message of a datagram in turn and acks each one, so a reconcile that
// touches many addresses costs one system call per batch instead of one per address,
// while every caller still gets its own ack and errno.
//
// Requests that only want an ack (address and link changes) go without NLM_F_ACK when
// they share a datagram: the kernel then answers only failures, and one NLMSG_NOOP with
// NLM_F_ACK at the end of the datagram acks them all, since the kernel handles the
// messages of a datagram in order. One answer per batch instead of one per request is
// what makes a reconcile of many addresses cost about what `ip -batch` costs.
import { constants as osConstants } from 'node:os';
import netlink from 'netlink';
import { NLMSG, NLM_F, clearAckFlag, encodeBarrier, parseErrorPayload, parseMessages, type NetlinkMessage } from './codec.ts';

const { RawNetlinkSocket } = netlink;
type RawSocket = InstanceType<typeof RawNetlinkSocket>;

const NETLINK_ROUTE = 0;
/** Messages per sendmsg; keeps one datagram well under the kernel's 32 KiB netlink skb limit. */
const MAX_BATCH = 64;
/**
 * Requests whose answers we still wait for. Each answer is a separate skb charged to our
 * receive buffer; a link answer (RTM_NEWLINK, about 1.5 KiB of attributes) costs about
 * 3 KiB of it. 64 of those fit the default buffer (rmem_default, 208 KiB); at 128 the
 * kernel drops answers (ENOBUFS) and the socket layer of the `netlink` package aborts
 * the process, so this bound is a safety limit, not a tuning knob.
 */
const MAX_IN_FLIGHT = 64;

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** The kernel's errno name for a number (`EPERM`), or `errno N`. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** A failed request: the kernel's errno, or a local reason (`timeout`, `closed`, `send`). */
export class RtnlFailure extends Error {
  readonly errno: number;
  readonly reason: 'kernel' | 'timeout' | 'closed' | 'send';
  constructor(reason: 'kernel' | 'timeout' | 'closed' | 'send', errno: number, message: string) {
    super(message);
    this.reason = reason;
    this.errno = errno;
  }
}

interface Pending {
  readonly seq: number;
  readonly message: Buffer;
  readonly dump: boolean;
  /** Only an ack is expected (no data reply), so the ack may come from a batch barrier. */
  readonly ackOnly: boolean;
  readonly parts: NetlinkMessage[];
  readonly resolve: (parts: NetlinkMessage[]) => void;
  readonly reject: (e: RtnlFailure) => void;
  deadline: number;
}

/** Options of {@link RtnlSocket}. */
export interface RtnlSocketOptions {
  /** Milliseconds before a request without an answer fails. Default 5000. */
  readonly timeoutMs?: number;
  /** Multicast groups (RTMGRP_* bits) to join; a socket with groups only listens. */
  readonly groups?: number;
}

export class RtnlSocket {
  readonly #socket: RawSocket;
  readonly #timeoutMs: number;
  readonly #queue: Pending[] = [];
  readonly #inFlight = new Map<number, Pending>();
  /** Barrier seq -> the quiet requests it acks. */
  readonly #barriers = new Map<number, Pending[]>();
  #seq = 1;
  #flushScheduled = false;
  #closed = false;
  #referenced = true;
  #watchdog: NodeJS.Timeout | undefined;
  /** Called with every message that answers no request (multicast notifications). */
  onNotification: ((m: NetlinkMessage) => void) | undefined;
  /** Called when the socket reports an error outside any request (ENOBUFS: notifications lost). */
  onError: ((e: Error & { errno?: number }) => void) | undefined;

  constructor(options: RtnlSocketOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 5000;
    // 0 leaves the kernel's default buffer; a listener asks for more (capped by net.core.rmem_max)
    // so a burst of notifications is less likely to overflow into a resync.
    this.#socket = new RawNetlinkSocket(NETLINK_ROUTE, {
      localGroups: options.groups ?? 0,
      recvBufferSize: options.groups ? 1 << 20 : 0,
      sendBufferSize: 0,
    });
    // Nothing may throw out of these listeners: they run inside the native poll callback,
    // where an exception aborts the process instead of reaching a handler.
    this.#socket.on('message', (datagram: Buffer) => {
      try {
        this.#receive(datagram);
      } catch (e) {
        this.onError?.(e instanceof Error ? e : new Error(String(e)));
      }
    });
    // Without a listener an 'error' from the native poll callback would throw inside it and abort the process.
    this.#socket.on('error', (e: Error & { errno?: number }) => this.onError?.(e));
    if (!options.groups) this.#setRef(false);
  }

  /** Sends one request with NLM_F_ACK and resolves with the reply messages (none for a plain ack). */
  request(build: (seq: number) => Buffer): Promise<NetlinkMessage[]> {
    return this.#enqueue(build, false, false);
  }

  /** Sends a change request whose only answer is an ack or an error (RTM_NEWADDR, RTM_DELADDR, ...). */
  change(build: (seq: number) => Buffer): Promise<void> {
    return this.#enqueue(build, false, true).then(() => undefined);
  }

  /** Sends a dump request and resolves with every message of the reply. */
  dump(build: (seq: number) => Buffer): Promise<NetlinkMessage[]> {
    return this.#enqueue(build, true, false);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const failure = new RtnlFailure('closed', 0, 'netlink socket closed');
    clearTimeout(this.#watchdog);
    for (const p of [...this.#inFlight.values(), ...this.#queue]) p.reject(failure);
    this.#inFlight.clear();
    this.#barriers.clear();
    this.#queue.length = 0;
    this.#socket.close();
  }

  get closed(): boolean {
    return this.#closed;
  }

  #enqueue(build: (seq: number) => Buffer, dump: boolean, ackOnly: boolean): Promise<NetlinkMessage[]> {
    if (this.#closed) return Promise.reject(new RtnlFailure('closed', 0, 'netlink socket closed'));
    const seq = this.#nextSeq();
    return new Promise<NetlinkMessage[]>((resolve, reject) => {
      this.#queue.push({ seq, message: build(seq), dump, ackOnly, parts: [], resolve, reject, deadline: 0 });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        queueMicrotask(() => this.#flush());
      }
    });
  }

  #nextSeq(): number {
    const seq = this.#seq;
    this.#seq = this.#seq >= 0x7fffffff ? 1 : this.#seq + 1;
    return seq;
  }

  #flush(): void {
    this.#flushScheduled = false;
    while (!this.#closed && this.#queue.length > 0 && this.#inFlight.size < MAX_IN_FLIGHT) {
      const n = Math.min(MAX_BATCH, MAX_IN_FLIGHT - this.#inFlight.size, this.#queue.length);
      const batch = this.#queue.splice(0, n);
      const deadline = performance.now() + this.#timeoutMs;
      for (const p of batch) {
        p.deadline = deadline;
        this.#inFlight.set(p.seq, p);
      }
      this.#armWatchdog();
      this.#setRef(true);
      const messages = batch.map((p) => p.message);
      const quiet = batch.filter((p) => p.ackOnly);
      if (quiet.length > 1) {
        for (const p of quiet) clearAckFlag(p.message);
        const barrierSeq = this.#nextSeq();
        this.#barriers.set(barrierSeq, quiet);
        messages.push(encodeBarrier(barrierSeq));
      }
      const failBatch = (error: Error & { errno?: number }): void => {
        for (const p of batch) this.#fail(p, new RtnlFailure('send', error.errno ?? 0, `sendmsg failed: ${error.message}`));
      };
      try {
        this.#socket.send(messages.length === 1 ? messages[0]! : messages, { port: 0 }, (error?: Error & { errno?: number }) => {
          if (error) failBatch(error);
        });
      } catch (e) {
        // This runs from a microtask that may be inside a native callback: never rethrow.
        failBatch(e instanceof Error ? e : new Error(String(e)));
      }
    }
  }

  #fail(p: Pending, e: RtnlFailure): void {
    if (this.#inFlight.get(p.seq) !== p) return;
    this.#settle(p);
    p.reject(e);
  }

  /**
   * One timer for all requests in flight instead of one each: on the reconcile path a
   * timer per request costs more than the request's own encoding.
   */
  #armWatchdog(): void {
    if (this.#watchdog !== undefined) return;
    this.#watchdog = setTimeout(() => {
      this.#watchdog = undefined;
      const now = performance.now();
      for (const p of [...this.#inFlight.values()]) {
        if (p.deadline <= now) this.#fail(p, new RtnlFailure('timeout', 0, `no answer from the kernel within ${this.#timeoutMs} ms`));
      }
      for (const [seq, list] of this.#barriers) if (list.every((q) => this.#inFlight.get(q.seq) !== q)) this.#barriers.delete(seq);
      if (this.#inFlight.size > 0) this.#armWatchdog();
    }, Math.max(10, this.#timeoutMs / 4));
    this.#watchdog.unref();
  }

  #settle(p: Pending): void {
    this.#inFlight.delete(p.seq);
    if (this.#inFlight.size === 0 && this.#queue.length === 0) this.#setRef(false);
    if (this.#queue.length > 0 && !this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #receive(datagram: Buffer): void {
    for (const m of parseMessages(datagram)) {
      const acked = m.type === NLMSG.ERROR ? this.#barriers.get(m.seq) : undefined;
      if (acked) {
        this.#barriers.delete(m.seq);
        // Everything before the barrier has been handled; requests without an error report succeeded.
        for (const q of acked) {
          if (this.#inFlight.get(q.seq) !== q) continue;
          this.#settle(q);
          q.resolve(q.parts);
        }
        continue;
      }
      const p = m.seq === 0 ? undefined : this.#inFlight.get(m.seq);
      if (!p) {
        this.onNotification?.(m);
        continue;
      }
      if (m.type === NLMSG.ERROR) {
        const errno = parseErrorPayload(m.payload);
        this.#settle(p);
        if (errno === 0) p.resolve(p.parts);
        else p.reject(new RtnlFailure('kernel', errno, `kernel refused: ${errnoName(errno)}`));
      } else if (m.type === NLMSG.DONE) {
        // A dump that raced a change says so on its messages; the caller retries it.
        const errno = parseErrorPayload(m.payload);
        this.#settle(p);
        if (errno !== 0) p.reject(new RtnlFailure('kernel', errno, `dump failed: ${errnoName(errno)}`));
        else if (p.parts.some((x) => x.flags & NLM_F.DUMP_INTR)) p.reject(new RtnlFailure('kernel', osConstants.errno.EINTR, 'dump interrupted'));
        else p.resolve(p.parts);
      } else {
        p.parts.push(m);
        // A non-dump request answered with data (RTM_GETLINK) is complete with its ack; a dump ends at DONE.
      }
    }
  }

  #setRef(on: boolean): void {
    if (on === this.#referenced || this.#closed) return;
    this.#referenced = on;
    if (on) this.#socket.ref();
    else this.#socket.unref();
  }
}
