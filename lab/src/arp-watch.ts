// Watching who answers for addresses, continuously: one sampler process (arp-sampler.ts)
// in a namespace asks for every address every interval; this side keeps the samples and
// what the safety tests ask of them (duplicates, unavailability) up to date as they come.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { LabError, waitFor } from './exec.ts';
import { SAMPLER_TAGS_V4 } from './network.ts';

export interface ArpAnswer {
  readonly mac: string;
  /** From the request leaving to this answer arriving (kernel capture times), ms. */
  readonly afterMs: number;
}

/** One request for one address and the answers to it. */
export interface ArpSample {
  /** When the request left (wall clock, ms since the epoch: compare with Date.now()). */
  readonly atMs: number;
  /** The distinct MACs that answered this request within the answer window, sorted. */
  readonly macs: readonly string[];
  readonly answers: readonly ArpAnswer[];
}

/** A run of consecutive samples nobody answered. */
export interface Unavailability {
  /** The first unanswered request. */
  readonly fromMs: number;
  /** The next answered request; undefined while the run lasts. */
  readonly toMs: number | undefined;
  /** toMs - fromMs (up to the last sample while the run lasts). */
  readonly durationMs: number;
  readonly samples: number;
}

/** The answering MAC changed (the first answered sample counts as a change from none). */
export interface Transition {
  readonly atMs: number;
  readonly from: readonly string[];
  readonly to: readonly string[];
}

export interface ArpWatchSummary {
  readonly address: string;
  readonly samples: number;
  readonly answered: number;
  /** Samples that more than one MAC answered: two nodes answering one request. */
  readonly duplicateSamples: number;
  readonly unavailability: readonly Unavailability[];
  readonly longestUnavailableMs: number;
  readonly macs: readonly string[];
  readonly transitions: number;
  /** Longest time between two consecutive samples (the sampler's own health). */
  readonly maxGapMs: number;
}

export interface ArpWatchOptions {
  /** Time between requests, ms (default 20). */
  readonly intervalMs?: number;
  /** How long after its request a sample waits for answers, ms (default 250, or 14 intervals if that is less; at most 14 intervals). */
  readonly windowMs?: number;
  /** The sampler exits by itself after this long, ms (default 6 hours). */
  readonly maxMs?: number;
  /** Samples kept for samples() per address (default 200,000, about an hour at 20 ms); the counts cover every sample. */
  readonly keep?: number;
}

/** What watchArp returns: the samples of one address, kept up to date while it runs. */
export interface ArpWatch {
  readonly address: string;
  /** Resolves once the sampler runs (its capture is open and the first request is due). */
  readonly ready: Promise<void>;
  /** The samples so far (the last `keep` of them), oldest first. */
  samples(): readonly ArpSample[];
  /** Samples so far, all of them. */
  sampleCount(): number;
  /** Samples that more than one MAC answered. */
  duplicateSampleCount(): number;
  /** Those samples (at most the first 10,000). */
  duplicateSamples(): readonly ArpSample[];
  /** Runs of unanswered samples, the one still open (if any) last. */
  unavailability(): readonly Unavailability[];
  /** Every change of the answering MACs. */
  transitions(): readonly Transition[];
  /** The latest sample, if any. */
  last(): ArpSample | undefined;
  summary(): ArpWatchSummary;
  /** Waits for a sample taken at or after `sinceMs` (default: now) that `match` accepts; returns it. */
  waitFor(what: string, match: (s: ArpSample) => boolean, timeoutMs: number, sinceMs?: number): Promise<ArpSample>;
  /** Stops the sampler (all addresses of a watchArpAll) and waits for its last samples. */
  stop(): Promise<void>;
}

/** Several addresses sampled by one process (cheaper than a process each). */
export interface ArpWatchSet {
  readonly ready: Promise<void>;
  /** The sampler's process id (for its CPU time and memory). */
  readonly pid: number | undefined;
  readonly watches: ReadonlyMap<string, ArpWatch>;
  get(address: string): ArpWatch;
  /** Requests sent, answers that matched no open request, requests not sent because the sampler was late or the tag still open (after stop). */
  readonly counters: { sent: number; strays: number; skipped: number };
  stop(): Promise<void>;
}

const DUPLICATES_KEPT = 10_000;

class AddressRecord {
  readonly address: string;
  readonly #keep: number;
  #samples: ArpSample[] = [];
  #count = 0;
  #answered = 0;
  #duplicates: ArpSample[] = [];
  #duplicateCount = 0;
  #unavailable: Unavailability[] = [];
  #open: { fromMs: number; samples: number } | undefined;
  #transitions: Transition[] = [];
  #current: readonly string[] = [];
  #last: ArpSample | undefined;
  #maxGapMs = 0;
  #macs = new Set<string>();

  constructor(address: string, keep: number) {
    this.address = address;
    this.#keep = keep;
  }

  add(s: ArpSample): void {
    if (this.#last) this.#maxGapMs = Math.max(this.#maxGapMs, s.atMs - this.#last.atMs);
    this.#last = s;
    this.#count++;
    this.#samples.push(s);
    if (this.#samples.length > this.#keep + 1000) this.#samples.splice(0, this.#samples.length - this.#keep);
    if (s.macs.length > 1) {
      this.#duplicateCount++;
      if (this.#duplicates.length < DUPLICATES_KEPT) this.#duplicates.push(s);
    }
    if (s.macs.length === 0) {
      this.#open ??= { fromMs: s.atMs, samples: 0 };
      this.#open.samples++;
      return;
    }
    this.#answered++;
    for (const m of s.macs) this.#macs.add(m);
    if (this.#open) {
      this.#unavailable.push({ fromMs: this.#open.fromMs, toMs: s.atMs, durationMs: s.atMs - this.#open.fromMs, samples: this.#open.samples });
      this.#open = undefined;
    }
    if (s.macs.join() !== this.#current.join()) {
      this.#transitions.push({ atMs: s.atMs, from: this.#current, to: s.macs });
      this.#current = s.macs;
    }
  }

  /** The kept samples from the `index`-th sample ever added on. */
  from(index: number): readonly ArpSample[] {
    const dropped = this.#count - this.#samples.length;
    return this.#samples.slice(Math.max(0, index - dropped));
  }

  samples(): readonly ArpSample[] {
    return this.#samples.length > this.#keep ? this.#samples.slice(-this.#keep) : [...this.#samples];
  }

  sampleCount(): number {
    return this.#count;
  }

  duplicateSampleCount(): number {
    return this.#duplicateCount;
  }

  duplicateSamples(): readonly ArpSample[] {
    return [...this.#duplicates];
  }

  unavailability(): readonly Unavailability[] {
    if (!this.#open) return [...this.#unavailable];
    const lastAt = this.#last?.atMs ?? this.#open.fromMs;
    return [...this.#unavailable, { fromMs: this.#open.fromMs, toMs: undefined, durationMs: lastAt - this.#open.fromMs, samples: this.#open.samples }];
  }

  transitions(): readonly Transition[] {
    return [...this.#transitions];
  }

  last(): ArpSample | undefined {
    return this.#last;
  }

  summary(): ArpWatchSummary {
    const unavailability = this.unavailability();
    return {
      address: this.address,
      samples: this.#count,
      answered: this.#answered,
      duplicateSamples: this.#duplicateCount,
      unavailability,
      longestUnavailableMs: Math.max(0, ...unavailability.map((u) => u.durationMs)),
      macs: [...this.#macs].sort(),
      transitions: this.#transitions.length,
      maxGapMs: this.#maxGapMs,
    };
  }
}

/** Parses one sampler line's answers ("-" or mac@ms,mac@ms). */
function parseAnswers(field: string): ArpAnswer[] {
  if (field === '-') return [];
  return field.split(',').map((a) => {
    const [mac = '', after = '0'] = a.split('@');
    return { mac, afterMs: Number(after) };
  });
}

/**
 * Starts one sampler in `netns` (on `iface`) for the addresses. Used by the lab's
 * watchArp/watchArpAll from the client namespace.
 */
export function startArpWatch(netns: string, iface: string, addresses: readonly string[], opts: ArpWatchOptions = {}): ArpWatchSet {
  if (addresses.length === 0) throw new LabError('LAB_BAD_OPTION', 'watchArp: no address to watch');
  if (new Set(addresses).size !== addresses.length) throw new LabError('LAB_BAD_OPTION', `watchArp: an address is listed twice: ${addresses.join(' ')}`);
  const intervalMs = opts.intervalMs ?? 20;
  // A request's tag comes round again after SAMPLER_TAGS_V4.length requests: its sample must be closed by then.
  const maxWindowMs = intervalMs * (SAMPLER_TAGS_V4.length - 2);
  const windowMs = opts.windowMs ?? Math.min(250, maxWindowMs);
  if (!(intervalMs >= 1) || !(windowMs >= intervalMs && windowMs <= maxWindowMs)) {
    throw new LabError('LAB_BAD_OPTION', `watchArp: intervalMs ${intervalMs} and windowMs ${windowMs}: need 1 <= intervalMs <= windowMs <= ${SAMPLER_TAGS_V4.length - 2} intervals`);
  }
  const keep = opts.keep ?? 200_000;
  const records = addresses.map((a) => new AddressRecord(a, keep));
  const counters = { sent: 0, strays: 0, skipped: 0 };
  const child: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', netns, process.execPath, '--conditions=@purelb/source', join(import.meta.dirname, 'arp-sampler.ts'), '--iface', iface, '--interval', String(intervalMs), '--window', String(windowMs), '--max-ms', String(opts.maxMs ?? 6 * 3600_000), ...addresses],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  let isReady = false;
  let partial = '';
  const exited = once(child, 'exit').then(() => undefined);
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-4000);
  });
  child.stdout?.on('data', (c: Buffer) => {
    const lines = (partial + c.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('s ')) {
        const [, index, at, answers = '-'] = line.split(' ');
        const record = records[Number(index)];
        if (!record) continue;
        const list = parseAnswers(answers);
        record.add({ atMs: Number(at), macs: [...new Set(list.map((a) => a.mac))].sort(), answers: list });
      } else if (line === 'ready') {
        isReady = true;
      } else if (line.startsWith('end ')) {
        const [, sent, strays, skipped] = line.split(' ');
        counters.sent = Number(sent);
        counters.strays = Number(strays);
        counters.skipped = Number(skipped);
      }
    }
  });
  child.stdin?.on('error', () => undefined);
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const ready = waitFor(
    'the ARP sampler to start',
    () => {
      if (!running()) throw new LabError('LAB_SAMPLER_EXITED', `the ARP sampler exited: ${stderr.trim()}`);
      return isReady ? true : undefined;
    },
    15_000,
    10,
  ).then(() => undefined);
  ready.catch(() => undefined);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (running()) {
        // Closing stdin asks it to finish: it waits for its last answers and reports its counters.
        child.stdin?.end();
        const timer = setTimeout(() => child.kill('SIGKILL'), windowMs + 3000);
        await exited;
        clearTimeout(timer);
      }
    })();
    return stopping;
  };
  const watches = new Map<string, ArpWatch>();
  for (const r of records) {
    watches.set(r.address, {
      address: r.address,
      ready,
      samples: () => r.samples(),
      sampleCount: () => r.sampleCount(),
      duplicateSampleCount: () => r.duplicateSampleCount(),
      duplicateSamples: () => r.duplicateSamples(),
      unavailability: () => r.unavailability(),
      transitions: () => r.transitions(),
      last: () => r.last(),
      summary: () => r.summary(),
      waitFor: (what, match, timeoutMs, sinceMs = Date.now()) => {
        let next = 0;
        return waitFor(
          `${r.address}: ${what}`,
          () => {
            if (!running() && !stopping) throw new LabError('LAB_SAMPLER_EXITED', `the ARP sampler exited: ${stderr.trim()}`);
            const fresh = r.from(next);
            next = r.sampleCount();
            return fresh.find((s) => s.atMs >= sinceMs && match(s));
          },
          timeoutMs,
          10,
        );
      },
      stop,
    });
  }
  return {
    ready,
    pid: child.pid,
    watches,
    get: (address) => {
      const w = watches.get(address);
      if (!w) throw new LabError('LAB_BAD_OPTION', `${address} is not watched`);
      return w;
    },
    counters,
    stop,
  };
}
