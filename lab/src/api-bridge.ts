// A node's path to the API server: a Unix socket the node's helper forwards
// 127.0.0.1:PORT to (sockets on the filesystem are not bound to a network namespace),
// relayed here to the API server. One per node, so one node's path can be cut.
import { type Server, type Socket, connect, createServer } from 'node:net';

/**
 * - `open`: relayed.
 * - `refuse`: every open connection (watches included) is destroyed, new ones are closed
 *   at once: the node's clients fail fast, as behind a firewall that rejects.
 * - `drop`: nothing moves: open connections stall and new ones get no answer, as behind
 *   a firewall that drops; back to `open`, they go on where they stopped (TCP would have
 *   retransmitted), unless the client gave up meanwhile.
 */
export type ApiPathState = 'open' | 'refuse' | 'drop';

interface Relay {
  readonly client: Socket;
  upstream: Socket | undefined;
}

export class ApiBridge {
  readonly socketPath: string;
  readonly #apiPort: number;
  readonly #server: Server;
  readonly #relays = new Set<Relay>();
  #state: ApiPathState = 'open';

  constructor(socketPath: string, apiPort: number) {
    this.socketPath = socketPath;
    this.#apiPort = apiPort;
    this.#server = createServer((c) => this.#accept(c));
  }

  get state(): ApiPathState {
    return this.#state;
  }

  /** Connections relayed (or held) right now. */
  get connections(): number {
    return this.#relays.size;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.socketPath, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  set(state: ApiPathState): void {
    if (state === this.#state) return;
    const was = this.#state;
    this.#state = state;
    for (const r of [...this.#relays]) {
      if (state === 'refuse') this.#close(r);
      else if (state === 'drop') this.#hold(r);
      else if (was === 'drop') this.#release(r);
    }
  }

  close(): void {
    for (const r of [...this.#relays]) this.#close(r);
    this.#server.close();
  }

  #accept(client: Socket): void {
    if (this.#state === 'refuse') {
      client.destroy();
      return;
    }
    const r: Relay = { client, upstream: undefined };
    this.#relays.add(r);
    client.on('error', () => this.#close(r));
    client.on('close', () => this.#close(r));
    if (this.#state === 'drop') client.pause();
    else this.#release(r);
  }

  /** Connects upstream if not yet, and lets bytes flow both ways. */
  #release(r: Relay): void {
    if (!r.upstream) {
      const up = connect(this.#apiPort, '127.0.0.1');
      r.upstream = up;
      up.on('error', () => this.#close(r));
      up.on('close', () => this.#close(r));
    }
    r.client.pipe(r.upstream);
    r.upstream.pipe(r.client);
    r.client.resume();
    r.upstream.resume();
  }

  /** Stops both directions without closing anything; bytes in flight wait in the buffers. */
  #hold(r: Relay): void {
    if (r.upstream) {
      r.client.unpipe(r.upstream);
      r.upstream.unpipe(r.client);
      r.upstream.pause();
    }
    r.client.pause();
  }

  #close(r: Relay): void {
    if (!this.#relays.delete(r)) return;
    r.client.destroy();
    r.upstream?.destroy();
  }
}
