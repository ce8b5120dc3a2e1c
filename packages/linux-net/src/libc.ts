// The few libc calls Node does not offer: setns(2) for network namespaces and AF_PACKET
// sockets for GARP/NA. Bound through koffi, whose npm tarball ships prebuilt binaries,
// so nothing is compiled at install time. Loaded on first use, so code that never
// touches a namespace or a raw socket never loads it.
import { createRequire } from 'node:module';
import type * as Koffi from 'koffi';

interface Libc {
  setns(fd: number, nstype: number): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  /** setsockopt(SOL_SOCKET, SO_ATTACH_FILTER) with a classic BPF program (8 bytes per instruction). */
  attachFilter(fd: number, program: Buffer): number;
  ioctl(fd: number, request: number, arg: Buffer): number;
  close(fd: number): number;
  errno(): number;
  /** recv on the libuv thread pool, so a blocking read does not stall the event loop. */
  recvAsync(fd: number, buf: Buffer, len: number, flags: number): Promise<number>;
}

let libc: Libc | undefined;

const SOL_SOCKET = 1;
const SO_ATTACH_FILTER = 26;

/** The libc bindings; throws if koffi cannot load (wrong platform). */
export function loadLibc(): Libc {
  if (libc) return libc;
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as typeof Koffi;
  const lib = koffi.load('libc.so.6');
  const recv = lib.func('long recv(int, _Out_ uint8_t *buf, size_t, int)');
  // struct sock_fprog holds a pointer, which a plain byte buffer cannot carry.
  const sockFprog = koffi.struct('plb_sock_fprog', { len: 'uint16_t', filter: 'const uint8_t *' });
  const setsockoptFprog = lib.func('int setsockopt(int, int, int, const plb_sock_fprog *value, uint32_t)');
  libc = {
    setns: lib.func('int setns(int, int)') as Libc['setns'],
    socket: lib.func('int socket(int, int, int)') as Libc['socket'],
    bind: lib.func('int bind(int, const uint8_t *addr, uint32_t)') as Libc['bind'],
    sendto: lib.func('long sendto(int, const uint8_t *buf, size_t, int, const uint8_t *addr, uint32_t)') as Libc['sendto'],
    recv: recv as Libc['recv'],
    setsockopt: lib.func('int setsockopt(int, int, int, const uint8_t *value, uint32_t)') as Libc['setsockopt'],
    attachFilter: (fd, program) => setsockoptFprog(fd, SOL_SOCKET, SO_ATTACH_FILTER, { len: program.length / 8, filter: program }, koffi.sizeof(sockFprog)) as number,
    ioctl: lib.func('int ioctl(int, unsigned long, _Inout_ uint8_t *arg)') as Libc['ioctl'],
    close: lib.func('int close(int)') as Libc['close'],
    errno: () => koffi.errno(),
    recvAsync: (fd, buf, len, flags) =>
      new Promise((resolve, reject) => {
        (recv as unknown as { async: (...a: unknown[]) => void }).async(fd, buf, len, flags, (err: unknown, n: number) => {
          if (err) reject(err instanceof Error ? err : new Error('koffi async call failed'));
          else resolve(n);
        });
      }),
  };
  return libc;
}
