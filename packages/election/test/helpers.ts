import type { SimulatedCluster } from '../src/testing/index.ts';

/**
 * Invariants that must hold at every step of any simulation: a member sees itself alive
 * (until it leaves), and the incarnation it records for anyone never goes down while it
 * remembers them.
 */
export class InvariantChecker {
  readonly #seen = new Map<string, number>();
  violations: string[] = [];

  check(cluster: SimulatedCluster): void {
    for (const o of cluster.running()) {
      const self = o.membership.member(o.name);
      if (!self || self.status !== 'alive') this.violations.push(`${o.name} sees itself as ${self?.status ?? 'missing'}`);
      for (const m of o.membership.members()) {
        const key = `${o.name}|${m.name}|${o.membership === undefined ? '' : ''}`;
        const before = this.#seen.get(key);
        if (before !== undefined && m.incarnation < before) this.violations.push(`${o.name} lowered ${m.name}'s incarnation ${before} -> ${m.incarnation}`);
        this.#seen.set(key, m.incarnation);
      }
    }
  }

  /** Forget what `name` observed (it restarted with fresh state). */
  forgetObserver(name: string): void {
    for (const k of [...this.#seen.keys()]) if (k.startsWith(`${name}|`)) this.#seen.delete(k);
  }
}

/** Advances `ms` in steps, checking invariants after each. */
export function stepChecked(cluster: SimulatedCluster, inv: InvariantChecker, ms: number, stepMs = 10): void {
  for (let t = 0; t < ms; t += stepMs) {
    cluster.advance(Math.min(stepMs, ms - t));
    inv.check(cluster);
  }
}
