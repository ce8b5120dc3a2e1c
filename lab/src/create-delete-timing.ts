// Times one address arriving and leaving, Service by Service: POST -> on a node's NIC,
// POST -> first HTTP 200 at the client, DELETE -> gone from every node. Shared by the
// node agent's timing suites in the process lab and on cluster mode, so the two measure
// the same way.
import { type AddressMonitor, monotonicMs } from './address-monitor.ts';
import type { HttpProber } from './http-prober.ts';

export interface CreateDeleteOptions {
  readonly monitor: AddressMonitor;
  readonly prober: HttpProber;
  /** The address every Service gets (a one-address pool). */
  readonly address: string;
  /** Recorded repetitions, after one warm-up. */
  readonly reps: number;
  /** Creates Service `name` (t0 is taken just before). */
  create(name: string): Promise<unknown>;
  /** Deletes Service `name` (d0 is taken just before). */
  remove(name: string): Promise<unknown>;
  /** After the address is gone: whatever else the Service left behind. */
  cleanup?(name: string): Promise<unknown>;
  /** Pause with no holder before each create (ms). */
  readonly quietMs: number;
  /** Bound on the address reaching a NIC (ms). */
  readonly nicTimeoutMs: number;
}

export interface CreateDeleteTimes {
  readonly toNicMs: number[];
  readonly toHttpMs: number[];
  readonly toGoneMs: number[];
  /** Per recorded rep: the holders, and the answer's body. */
  readonly seen: { holders: string[]; body: string }[];
}

/** Runs `reps` + 1 create/delete rounds of Services m0, m1, ... (m0 is the warm-up). */
export async function timeCreateDelete(o: CreateDeleteOptions): Promise<CreateDeleteTimes> {
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const noHolder = (what: string): Promise<number> => o.monitor.when(o.address, (h) => h.length === 0, 30_000, what);
  const out: CreateDeleteTimes = { toNicMs: [], toHttpMs: [], toGoneMs: [], seen: [] };
  for (let i = -1; i < o.reps; i++) {
    const name = `m${i + 1}`;
    await noHolder(`before ${name}: no holder`);
    await sleep(o.quietMs);
    const answered = o.prober.probe(o.address);
    const onNic = o.monitor.when(o.address, (h) => h.length >= 1, o.nicTimeoutMs, `${name}: on a NIC`);
    // Awaited below; handled now so that one failing first cannot leave the other unhandled.
    answered.catch(() => undefined);
    onNic.catch(() => undefined);
    const t0 = monotonicMs();
    await o.create(name);
    const tNic = await onNic;
    const { at: tHttp, body } = await answered;
    // Let the announcement settle (annotations, GARP) before taking it away.
    await sleep(500);
    const holders = o.monitor.holders(o.address);
    const gone = noHolder(`${name}: withdrawn everywhere`);
    gone.catch(() => undefined);
    const d0 = monotonicMs();
    await o.remove(name);
    const tGone = await gone;
    await o.cleanup?.(name);
    if (i < 0) continue; // warm-up
    out.toNicMs.push(tNic - t0);
    out.toHttpMs.push(tHttp - t0);
    out.toGoneMs.push(tGone - d0);
    out.seen.push({ holders, body });
  }
  return out;
}
