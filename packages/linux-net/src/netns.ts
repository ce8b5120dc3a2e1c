// Network namespaces of the calling thread. setns(2) moves only the calling thread, and
// every socket keeps the namespace it was created in, so "open a socket in namespace X"
// is: switch the main thread, create the socket synchronously, switch back; no JavaScript
// of anyone else runs in between.
import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { NetlinkError, NetlinkErrorCode } from './errors.ts';
import { errnoName } from './rtnl/socket.ts';
import { loadLibc } from './libc.ts';

const CLONE_NEWNET = 0x40000000;
const SELF_NETNS = '/proc/thread-self/ns/net';

function setnsOrThrow(fd: number, what: string): void {
  const libc = loadLibc();
  if (libc.setns(fd, CLONE_NEWNET) !== 0) {
    const errno = libc.errno();
    const code = errno === osConstants.errno.EPERM ? NetlinkErrorCode.Permission : NetlinkErrorCode.SocketFailed;
    throw new NetlinkError(code, `cannot enter network namespace ${what}: ${errnoName(errno)} (needs CAP_SYS_ADMIN)`, { errno: errnoName(errno) });
  }
}

/**
 * Runs `fn` synchronously with the calling thread in the network namespace open at
 * `nsFd`, then returns to the thread's own namespace, even if `fn` throws.
 */
export function runInNetnsFd<T>(nsFd: number, fn: () => T, what = `fd ${nsFd}`): T {
  const home = openSync(SELF_NETNS, 'r');
  try {
    if (fstatSync(home).ino === fstatSync(nsFd).ino) return fn();
    setnsOrThrow(nsFd, what);
    try {
      return fn();
    } finally {
      setnsOrThrow(home, 'of this process (returning)');
    }
  } finally {
    closeSync(home);
  }
}

/** Runs `fn` synchronously inside the named namespace (`ip netns add NAME` made /run/netns/NAME). */
export function runInNamedNetns<T>(name: string, fn: () => T): T {
  let fd: number;
  try {
    fd = openSync(`/run/netns/${name}`, 'r');
  } catch {
    throw new NetlinkError(NetlinkErrorCode.InvalidArgument, `network namespace "${name}" does not exist (no /run/netns/${name})`, { field: 'netns' });
  }
  try {
    return runInNetnsFd(fd, fn, `"${name}"`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Remembers the namespace a handle was opened in, so sockets it opens later (a
 * subscription) land there too, whichever namespace the thread is in by then.
 */
export class NetnsPin {
  readonly #fd: number;
  #closed = false;

  constructor() {
    this.#fd = openSync(SELF_NETNS, 'r');
  }

  /** Runs `fn` in the pinned namespace; no setns at all when the thread is already there. */
  run<T>(fn: () => T): T {
    if (this.#closed) throw new NetlinkError(NetlinkErrorCode.Closed, 'the handle is closed');
    if (statSync(SELF_NETNS).ino === fstatSync(this.#fd).ino) return fn();
    return runInNetnsFd(this.#fd, fn, 'of the handle');
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.#fd);
  }
}
