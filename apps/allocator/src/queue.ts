// A work queue of keys: a key queued twice before it is taken is worked once.

export class KeyQueue {
  readonly #order: string[] = [];
  #head = 0;
  readonly #queued = new Set<string>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #waiter: ((key: string | undefined) => void) | undefined;
  #closed = false;

  add(key: string): void {
    if (this.#closed || this.#queued.has(key)) return;
    this.#queued.add(key);
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      this.#queued.delete(key);
      w(key);
      return;
    }
    this.#order.push(key);
  }

  /** Adds the key after a delay (a retry). */
  addAfter(key: string, ms: number): void {
    if (this.#closed) return;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      this.add(key);
    }, ms);
    this.#timers.add(t);
  }

  /** The next key; undefined once the queue is closed. */
  next(): Promise<string | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    if (this.#head < this.#order.length) {
      const key = this.#order[this.#head++]!;
      if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
        this.#order.splice(0, this.#head);
        this.#head = 0;
      }
      this.#queued.delete(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  get length(): number {
    return this.#order.length - this.#head;
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.(undefined);
  }
}
