// The real network: UDP datagrams for probes and gossip, TCP for full-state exchanges,
// both on one port (7934 by default). Stream frames are `length:u32` + bytes.
import { type Socket as UdpSocket, createSocket } from 'node:dgram';
import { type Server, type Socket, createConnection, createServer } from 'node:net';
import { isIPv6 } from 'node:net';
import { ElectionError, ElectionErrorCode } from './errors.ts';
import { STREAM_MAX_BYTES } from './swim.ts';
import { SEAL_OVERHEAD } from './seal.ts';
import { type Transport, type TransportHandlers, joinHostPort, splitHostPort } from './transport.ts';

/** The gossip port, UDP and TCP. */
export const DEFAULT_PORT = 7934;

const MAX_FRAME = STREAM_MAX_BYTES + SEAL_OVERHEAD + 1;

/** How to open a `UdpTransport`. */
export interface UdpTransportOptions {
  /** Address to bind both sockets to. Default `0.0.0.0`. */
  readonly bindAddress?: string;
  /** Port for both sockets; 0 picks a free one. Default 7934. */
  readonly port?: number;
  /**
   * Host peers should use to reach this member. Required when `bindAddress` is a wildcard
   * (`0.0.0.0`, `::`), since peers cannot reach a wildcard.
   */
  readonly advertiseAddress?: string;
}

/** Reads length-prefixed frames from a TCP socket; one frame per connection direction. */
function readFrame(socket: Socket, onFrame: (frame: Buffer) => void, onError: (e: Error) => void): void {
  let chunks: Buffer[] = [];
  let have = 0;
  let want = -1;
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    have += chunk.length;
    if (want < 0 && have >= 4) {
      const head = Buffer.concat(chunks);
      chunks = [head];
      want = head.readUInt32BE(0);
      if (want > MAX_FRAME) {
        socket.destroy();
        onError(new Error(`stream frame of ${want} bytes exceeds ${MAX_FRAME}`));
        return;
      }
    }
    if (want >= 0 && have >= 4 + want) {
      const all = Buffer.concat(chunks);
      socket.removeAllListeners('data');
      onFrame(all.subarray(4, 4 + want));
    }
  });
}

function frame(data: Uint8Array): Buffer {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(data.length, 0);
  return Buffer.concat([head, data]);
}

/** UDP + TCP transport on one port. Create with `UdpTransport.open`. */
export class UdpTransport implements Transport {
  readonly address: string;
  readonly #udp: UdpSocket;
  readonly #tcp: Server;
  readonly #connections = new Set<Socket>();
  #handlers: TransportHandlers | undefined;
  #closed = false;

  private constructor(address: string, udp: UdpSocket, tcp: Server) {
    this.address = address;
    this.#udp = udp;
    this.#tcp = tcp;
    udp.on('message', (msg, rinfo) => {
      this.#handlers?.packet(joinHostPort(rinfo.address, rinfo.port), msg);
    });
    // A datagram error (ICMP unreachable reported on a later send) is not fatal.
    udp.on('error', () => undefined);
    tcp.on('connection', (socket) => this.#serve(socket));
  }

  /** Binds UDP and TCP on the same port. Throws `ELECTION_BIND_FAILED`. */
  static async open(options: UdpTransportOptions = {}): Promise<UdpTransport> {
    const bind = options.bindAddress ?? '0.0.0.0';
    const wildcard = bind === '0.0.0.0' || bind === '::';
    const host = options.advertiseAddress ?? (wildcard ? undefined : bind);
    if (!host) {
      throw new ElectionError(ElectionErrorCode.BindFailed, `advertiseAddress: required when bindAddress is the wildcard ${bind}`, { field: 'advertiseAddress' });
    }
    const wanted = options.port ?? DEFAULT_PORT;
    // With port 0 the UDP port is picked first; TCP may find it taken, so retry a few times.
    for (let attempt = 0; attempt < 8; attempt++) {
      const udp = createSocket({ type: isIPv6(bind) ? 'udp6' : 'udp4', reuseAddr: false });
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject);
          udp.bind(wanted, bind, () => {
            udp.off('error', reject);
            resolve();
          });
        });
      } catch (e) {
        udp.close();
        throw new ElectionError(ElectionErrorCode.BindFailed, `bind UDP ${joinHostPort(bind, wanted)}: ${(e as Error).message}`, { address: joinHostPort(bind, wanted) }, { cause: e });
      }
      const port = udp.address().port;
      const tcp = createServer();
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen({ port, host: bind, exclusive: true }, () => {
            tcp.off('error', reject);
            resolve();
          });
        });
      } catch (e) {
        udp.close();
        tcp.close();
        if (wanted === 0 && (e as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
        throw new ElectionError(ElectionErrorCode.BindFailed, `bind TCP ${joinHostPort(bind, port)}: ${(e as Error).message}`, { address: joinHostPort(bind, port) }, { cause: e });
      }
      return new UdpTransport(joinHostPort(host, port), udp, tcp);
    }
    throw new ElectionError(ElectionErrorCode.BindFailed, `bind ${bind}: no port free for both UDP and TCP after 8 tries`, { address: bind });
  }

  listen(handlers: TransportHandlers): void {
    this.#handlers = handlers;
  }

  send(to: string, data: Uint8Array): void {
    if (this.#closed) return;
    const hp = splitHostPort(to);
    if (!hp) return;
    this.#udp.send(data, hp.port, hp.host, () => undefined);
  }

  request(to: string, data: Uint8Array, timeoutMs: number, done: (error: Error | undefined, reply?: Uint8Array) => void): void {
    const hp = splitHostPort(to);
    if (!hp || this.#closed) {
      queueMicrotask(() => done(new Error(this.#closed ? 'transport closed' : `bad address ${to}`)));
      return;
    }
    let finished = false;
    const finish = (error: Error | undefined, reply?: Uint8Array): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      this.#connections.delete(socket);
      done(error, reply);
    };
    const socket = createConnection({ host: hp.host, port: hp.port });
    this.#connections.add(socket);
    const timer = setTimeout(() => finish(new Error(`push-pull to ${to} timed out after ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (e) => finish(e));
    socket.on('close', () => finish(new Error(`push-pull to ${to}: connection closed without a reply`)));
    socket.on('connect', () => socket.write(frame(data)));
    readFrame(
      socket,
      (reply) => finish(undefined, reply),
      (e) => finish(e),
    );
  }

  #serve(socket: Socket): void {
    this.#connections.add(socket);
    socket.setTimeout(30_000, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#connections.delete(socket));
    const from = joinHostPort(socket.remoteAddress ?? '', socket.remotePort ?? 0);
    readFrame(
      socket,
      (request) => {
        if (!this.#handlers) {
          socket.destroy();
          return;
        }
        this.#handlers.request(from, request, (reply) => {
          if (reply === undefined) socket.destroy();
          else socket.end(frame(reply));
        });
      },
      () => socket.destroy(),
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#connections) s.destroy();
    await Promise.all([new Promise<void>((r) => this.#udp.close(() => r())), new Promise<void>((r) => this.#tcp.close(() => r()))]);
  }
}
