// AF_PACKET sockets: one to send announcement frames, and a capture used by tests and
// the benchmark to see them arrive in another namespace.
import { constants as osConstants } from 'node:os';
import { NetlinkError, NetlinkErrorCode } from '../errors.ts';
import { loadLibc } from '../libc.ts';
import { errnoName } from '../rtnl/socket.ts';

const AF_PACKET = 17;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const ETH_P_ALL = 0x0003;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SIOCGSTAMP = 0x8906;

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

function socketError(what: string, errno: number): NetlinkError {
  const perm = errno === osConstants.errno.EPERM || errno === osConstants.errno.EACCES;
  return new NetlinkError(
    perm ? NetlinkErrorCode.Permission : NetlinkErrorCode.SocketFailed,
    perm ? `${what}: ${errnoName(errno)}; sending GARP/NA needs CAP_NET_RAW` : `${what}: ${errnoName(errno)}`,
    { errno: errnoName(errno), operation: 'arping / ndsend' },
  );
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
