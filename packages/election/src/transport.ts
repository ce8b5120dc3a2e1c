// What the protocol needs from a network: unreliable packets and a request/reply
// stream for full-state exchanges. Callbacks rather than promises, so a simulated network
// can run a whole cluster synchronously on a virtual clock.

/** Receives what arrives on a transport. */
export interface TransportHandlers {
  /** One datagram from `from` (`host:port`). */
  packet(from: string, data: Uint8Array): void;
  /** One request on the stream; call `reply` once (`undefined` closes without a reply). */
  request(from: string, data: Uint8Array, reply: (data: Uint8Array | undefined) => void): void;
}

/** A member's network endpoint. */
export interface Transport {
  /** The address peers reach this member at (`host:port`, IPv6 as `[host]:port`). */
  readonly address: string;
  /** Sends a datagram; loss is silent. */
  send(to: string, data: Uint8Array): void;
  /** Sends a request on the stream and calls `done` once with the reply or an error. */
  request(to: string, data: Uint8Array, timeoutMs: number, done: (error: Error | undefined, reply?: Uint8Array) => void): void;
  /** Starts delivering to `handlers` (called once). */
  listen(handlers: TransportHandlers): void;
  /** Stops delivering and releases the sockets. */
  close(): Promise<void>;
}

/** Schedules the protocol's work: a real clock or a virtual one. */
export interface Scheduler {
  /** Monotonic time in ms. */
  now(): number;
  /** Calls `fn` at time `at` (ms, same clock as `now`); returns a handle for `cancel`. */
  at(at: number, fn: () => void): unknown;
  cancel(handle: unknown): void;
}

/** The process's monotonic clock and `setTimeout`. */
export const realScheduler: Scheduler = {
  now: () => performance.now(),
  at(at, fn) {
    const t = setTimeout(fn, Math.max(0, at - performance.now()));
    t.unref?.();
    return t;
  },
  cancel(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/** Splits `host:port` / `[v6]:port`. */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:[\]]+):(\d+)$/.exec(address);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: m[1]!, port };
}

/** Joins a host and port the way `splitHostPort` reads them. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
