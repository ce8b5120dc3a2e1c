// The gossip queue: messages wait here to be piggybacked on outgoing packets. At most
// one message per member (a newer one replaces the older), least-sent first, and each
// message leaves after `limit` sends.

interface Item {
  readonly key: string;
  readonly bytes: Uint8Array;
  readonly id: number;
  transmits: number;
}

/** A transmit-limited queue of encoded messages, keyed by the member they are about. */
export class BroadcastQueue {
  readonly #items = new Map<string, Item>();
  #sorted: Item[] | undefined;
  #nextId = 0;

  get size(): number {
    return this.#items.size;
  }

  /** Queues `bytes` about `key`, replacing whatever was queued about it. */
  queue(key: string, bytes: Uint8Array): void {
    this.#items.set(key, { key, bytes, id: this.#nextId++, transmits: 0 });
    this.#sorted = undefined;
  }

  /** Drops whatever is queued about `key`. */
  drop(key: string): void {
    if (this.#items.delete(key)) this.#sorted = undefined;
  }

  /**
   * Takes messages that fit in `budget` bytes, counting `perMessage` framing bytes each,
   * fewest sends first and newest first among equals. Each taken message counts one send
   * and leaves the queue once it reaches `limit` sends.
   */
  take(budget: number, perMessage: number, limit: number, max = 255): Uint8Array[] {
    if (this.#items.size === 0 || budget <= perMessage) return [];
    this.#sorted ??= [...this.#items.values()].sort((a, b) => a.transmits - b.transmits || b.id - a.id);
    const out: Uint8Array[] = [];
    let left = budget;
    let changed = false;
    for (const item of this.#sorted) {
      if (out.length >= max || left <= perMessage) break;
      const cost = item.bytes.length + perMessage;
      if (cost > left) continue;
      left -= cost;
      out.push(item.bytes);
      item.transmits++;
      changed = true;
      if (item.transmits >= limit) this.#items.delete(item.key);
    }
    if (changed) this.#sorted = undefined;
    return out;
  }
}
