import type { NetChange, NetChangeSubscription } from './types.ts';

/**
 * A bounded queue of changes read by one `for await`. When the reader falls behind by
 * more than `limit` changes, the backlog is replaced by one `resync`: the reader has to
 * re-read the state anyway, and memory stays bounded.
 */
export class ChangeQueue implements NetChangeSubscription {
  readonly #limit: number;
  readonly #onClose: () => void;
  #items: NetChange[] = [];
  #waiter: ((r: IteratorResult<NetChange>) => void) | undefined;
  #closed = false;

  constructor(limit: number, onClose: () => void) {
    this.#limit = limit;
    this.#onClose = onClose;
  }

  push(change: NetChange): void {
    if (this.#closed) return;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w({ value: change, done: false });
      return;
    }
    if (this.#items.length >= this.#limit) this.#items = [{ kind: 'resync' }];
    else if (change.kind !== 'resync' || this.#items.at(-1)?.kind !== 'resync') this.#items.push(change);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#items = [];
    this.#onClose();
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<NetChange> {
    return {
      next: () => {
        const item = this.#items.shift();
        if (item) return Promise.resolve({ value: item, done: false });
        if (this.#closed) return Promise.resolve({ value: undefined, done: true });
        if (this.#waiter) return Promise.reject(new Error('a subscription has one reader; it is already being read'));
        return new Promise((resolve) => (this.#waiter = resolve));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
