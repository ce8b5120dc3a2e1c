// AF_PACKET sockets: one to send announcement and probe frames, a receiver a probe reads
// the answers from, and a capture used by tests and the benchmark to see frames arrive in
// another namespace.
import { constants as osConstants } from 'node:os';
import { NetlinkError, NetlinkErrorCode } from '../errors.ts';
import { loadLibc } from '../libc.ts';
import { errnoName } from '../rtnl/socket.ts';

const AF_PACKET = 17;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const SOCK_NONBLOCK = 0o4000;
const ETH_P_ALL = 0x0003;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVTIMEO = 20;
const SIOCGSTAMP = 0x8906;
const SOL_PACKET = 263;
const PACKET_ADD_MEMBERSHIP = 1;
const PACKET_MR_MULTICAST = 0;
const MSG_DONTWAIT = 0x40;

/** struct sockaddr_ll: family in host order, protocol in network order. */
function sockaddrLl(ifindex: number, protocol: number, dst?: Uint8Array): Buffer {
  const a = Buffer.alloc(20);
  a.writeUInt16LE(AF_PACKET, 0);
  a.writeUInt16BE(protocol, 2);
  a.writeInt32LE(ifindex, 4);
  if (dst) {
    a[11] = dst.length;
    a.set(dst, 12);
  }
  return a;
}

function socketError(what: string, errno: number, operation = 'arping / ndsend'): NetlinkError {
  const perm = errno === osConstants.errno.EPERM || errno === osConstants.errno.EACCES;
  return new NetlinkError(
    perm ? NetlinkErrorCode.Permission : NetlinkErrorCode.SocketFailed,
    perm ? `${what}: ${errnoName(errno)}; sending and receiving ARP/NDP frames needs CAP_NET_RAW` : `${what}: ${errnoName(errno)}`,
    { errno: errnoName(errno), operation },
  );
}

/** A failed send or read on a packet socket, with the errno, so a caller can say whether the link or the socket is at fault. */
export class PacketSocketError extends Error {
  readonly errno: number;
  constructor(message: string, errno: number) {
    super(message);
    this.errno = errno;
  }
}

/** A send-only raw socket: protocol 0, so the kernel queues nothing to it. */
export class PacketSender {
  readonly #fd: number;
  #closed = false;

  /** Opens the socket in the calling thread's namespace; throws `NETLINK_PERMISSION` without CAP_NET_RAW. */
  constructor() {
    const libc = loadLibc();
    const fd = libc.socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) throw socketError('cannot open a packet socket', libc.errno());
    this.#fd = fd;
  }

  /** Sends one complete Ethernet frame out of `ifindex`. */
  send(ifindex: number, frame: Buffer): void {
    if (this.#closed) throw new NetlinkError(NetlinkErrorCode.Closed, 'the packet socket is closed');
    const libc = loadLibc();
    const addr = sockaddrLl(ifindex, frame.readUInt16BE(12), frame.subarray(0, 6));
    if (libc.sendto(this.#fd, frame, frame.length, 0, addr, addr.length) !== frame.length) {
      throw socketError(`cannot send a frame on link ${ifindex}`, libc.errno());
    }
  }

  /** Like `send`, but a failure is a {@link PacketSocketError} carrying the errno. */
  trySend(ifindex: number, frame: Buffer): void {
    if (this.#closed) throw new NetlinkError(NetlinkErrorCode.Closed, 'the packet socket is closed');
    const libc = loadLibc();
    const addr = sockaddrLl(ifindex, frame.readUInt16BE(12), frame.subarray(0, 6));
    if (libc.sendto(this.#fd, frame, frame.length, 0, addr, addr.length) !== frame.length) {
      const errno = libc.errno();
      throw new PacketSocketError(`cannot send a frame on link ${ifindex}: ${errnoName(errno)}`, errno);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    loadLibc().close(this.#fd);
  }
}

/** Options of {@link PacketReceiver}. */
export interface PacketReceiverOptions {
  /** The Ethernet type to receive (ETH_P_ARP 0x0806, ETH_P_IPV6 0x86dd). */
  readonly protocol: number;
  /** Group MACs to accept even if the kernel has not joined them (PACKET_ADD_MEMBERSHIP). */
  readonly multicast?: readonly Uint8Array[];
  /** A classic BPF program applied before anything is queued (SO_ATTACH_FILTER). */
  readonly filter?: Buffer;
  /** Receive buffer to ask for (SO_RCVBUF; the kernel caps it at net.core.rmem_max). */
  readonly receiveBufferBytes?: number;
  /** The `ip`-world command, for error messages. */
  readonly operation?: string;
}

/**
 * A non-blocking receiver of one Ethernet type on one link, read by draining its queue
 * (no thread-pool read, no blocking call). Frames the kernel receives after the
 * constructor returns are queued; the filter and memberships are in place before the
 * socket is bound, so nothing unfiltered is ever queued. Open it while the thread is in
 * the link's namespace.
 */
export class PacketReceiver {
  readonly #fd: number;
  readonly #buffer = Buffer.alloc(512);
  #closed = false;

  constructor(ifindex: number, options: PacketReceiverOptions) {
    const libc = loadLibc();
    const op = options.operation ?? 'arping -D';
    // Protocol 0 at first: the socket receives nothing until it is bound below.
    const fd = libc.socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) throw socketError('cannot open a packet socket to listen for answers', libc.errno(), op);
    this.#fd = fd;
    try {
      if (options.filter && libc.attachFilter(fd, options.filter) !== 0) throw socketError('cannot attach a socket filter', libc.errno(), op);
      for (const mac of options.multicast ?? []) {
        const mreq = Buffer.alloc(16);
        mreq.writeInt32LE(ifindex, 0);
        mreq.writeUInt16LE(PACKET_MR_MULTICAST, 4);
        mreq.writeUInt16LE(mac.length, 6);
        mreq.set(mac, 8);
        if (libc.setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq, mreq.length) !== 0) throw socketError(`cannot join multicast group on link ${ifindex}`, libc.errno(), op);
      }
      if (options.receiveBufferBytes) {
        const size = Buffer.alloc(4);
        size.writeInt32LE(options.receiveBufferBytes);
        libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, 4); // best effort: the default still works
      }
      const addr = sockaddrLl(ifindex, options.protocol);
      if (libc.bind(fd, addr, addr.length) !== 0) throw socketError(`cannot bind a packet socket to link ${ifindex}`, libc.errno(), op);
    } catch (e) {
      libc.close(fd);
      throw e;
    }
  }

  /**
   * Every frame queued now, up to `max`, as copies (the first 512 bytes of each). Throws a
   * {@link PacketSocketError} when the socket reports an error (ENETDOWN: the link went down).
   */
  drain(max = 256): Buffer[] {
    if (this.#closed) return [];
    const libc = loadLibc();
    const out: Buffer[] = [];
    for (let i = 0; i < max; i++) {
      const n = libc.recv(this.#fd, this.#buffer, this.#buffer.length, MSG_DONTWAIT);
      if (n < 0) {
        const errno = libc.errno();
        if (errno === osConstants.errno.EAGAIN || errno === osConstants.errno.EWOULDBLOCK || errno === osConstants.errno.EINTR) break;
        throw new PacketSocketError(`cannot read from the packet socket: ${errnoName(errno)}`, errno);
      }
      out.push(Buffer.from(this.#buffer.subarray(0, n)));
    }
    return out;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    loadLibc().close(this.#fd);
  }
}

/** One captured frame and the kernel's receive time (wall clock, milliseconds with microseconds). */
export interface CapturedFrame {
  readonly frame: Buffer;
  readonly receivedAtMs: number;
}

/**
 * Captures every frame arriving on one link, on the libuv thread pool. Open it while the
 * thread is in the namespace of the link (see `runInNamedNetns`).
 */
export class PacketCapture {
  readonly #fd: number;
  #closed = false;
  #reading: Promise<CapturedFrame | undefined> | undefined;

  constructor(ifindex: number) {
    const libc = loadLibc();
    const fd = libc.socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, ((ETH_P_ALL & 0xff) << 8) | (ETH_P_ALL >> 8));
    if (fd < 0) throw socketError('cannot open a capture socket', libc.errno());
    this.#fd = fd;
    const addr = sockaddrLl(ifindex, ETH_P_ALL);
    if (libc.bind(fd, addr, addr.length) !== 0) {
      const errno = libc.errno();
      libc.close(fd);
      throw socketError(`cannot bind a capture socket to link ${ifindex}`, errno);
    }
    // A short receive timeout bounds every blocking read, so close() is never stuck behind one.
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(0n, 0);
    tv.writeBigInt64LE(50_000n, 8);
    libc.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, tv.length);
    // The first SIOCGSTAMP turns receive timestamps on; its own answer (no packet yet) is ignored.
    libc.ioctl(fd, SIOCGSTAMP, Buffer.alloc(16));
  }

  /** The next frame, or undefined if none arrived within one read timeout (50 ms). */
  next(): Promise<CapturedFrame | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    if (this.#reading) return this.#reading;
    const libc = loadLibc();
    const buf = Buffer.alloc(2048);
    this.#reading = libc.recvAsync(this.#fd, buf, buf.length, 0).then((n) => {
      this.#reading = undefined;
      if (n <= 0 || this.#closed) return undefined;
      const tv = Buffer.alloc(16);
      const ok = libc.ioctl(this.#fd, SIOCGSTAMP, tv) === 0;
      const receivedAtMs = ok ? Number(tv.readBigInt64LE(0)) * 1000 + Number(tv.readBigInt64LE(8)) / 1000 : performance.timeOrigin + performance.now();
      return { frame: buf.subarray(0, n), receivedAtMs };
    });
    return this.#reading;
  }

  /** Reads frames until `match` accepts one or `timeoutMs` passes. */
  async waitFor<T>(match: (f: CapturedFrame) => T | undefined, timeoutMs: number): Promise<T | undefined> {
    const deadline = performance.now() + timeoutMs;
    while (!this.#closed && performance.now() < deadline) {
      const f = await this.next();
      if (!f) continue;
      const m = match(f);
      if (m !== undefined) return m;
    }
    return undefined;
  }

  /** Closes once any pending read has returned (at most one read timeout). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#reading?.catch(() => undefined);
    loadLibc().close(this.#fd);
  }
}
