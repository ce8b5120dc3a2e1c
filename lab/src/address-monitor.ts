// Which node holds which address, from netlink address events: one `ip -n NS monitor
// address` per node namespace, each event timestamped as it reaches this process. Used by
// the benchmarks and tests that time an address arriving on or leaving a node's NIC, in
// both lab modes (a cluster node is a LabNode too).
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { LabNode } from './network.ts';

/** Milliseconds on the monotonic clock (process.hrtime), the clock of every timestamp here. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Parses one line of `ip monitor address`: the address and whether it was deleted. */
export function parseAddressEvent(line: string): { address: string; deleted: boolean } | undefined {
  const m = /^(Deleted )?\d+:\s+\S+\s+inet6? ([0-9a-f:.]+)\/\d+/.exec(line);
  return m ? { address: m[2]!, deleted: m[1] !== undefined } : undefined;
}

export class AddressMonitor {
  /** address -> nodes that hold it now. */
  readonly #held = new Map<string, Set<string>>();
  readonly #procs: ChildProcess[] = [];
  readonly #listeners = new Set<() => void>();

  /** Starts watching every node (events from before this call are not seen). */
  start(nodes: readonly LabNode[]): void {
    for (const n of nodes) {
      const p = spawn('ip', ['-n', n.netns, 'monitor', 'address'], { stdio: ['ignore', 'pipe', 'ignore'] });
      this.#procs.push(p);
      createInterface({ input: p.stdout }).on('line', (line) => {
        const e = parseAddressEvent(line);
        if (!e) return;
        let set = this.#held.get(e.address);
        if (!set) this.#held.set(e.address, (set = new Set()));
        if (e.deleted) set.delete(n.name);
        else set.add(n.name);
        for (const l of this.#listeners) l();
      });
    }
  }

  /** The nodes holding the address now, sorted. */
  holders(address: string): string[] {
    return [...(this.#held.get(address) ?? [])].sort();
  }

  /** Resolves with monotonicMs() at the first event after which `pred(holders)` holds (at once if it holds now). */
  when(address: string, pred: (holders: string[]) => boolean, timeoutMs: number, what: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!pred(this.holders(address))) return;
        const t = monotonicMs();
        clearTimeout(timer);
        this.#listeners.delete(check);
        resolve(t);
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(check);
        reject(new Error(`${address}: ${what} did not happen in ${timeoutMs} ms (holders now: ${this.holders(address).join(',') || 'none'})`));
      }, timeoutMs);
      this.#listeners.add(check);
      check();
    });
  }

  stop(): void {
    for (const p of this.#procs) p.kill('SIGTERM');
  }
}
