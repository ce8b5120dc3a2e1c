// One long-lived HTTP client in a namespace (normally the lab's client namespace), driven
// over stdin, so that timing a failover does not include starting a process:
//   probe ID URL NOTWHO   a GET (fresh connection, 1 s bound) every 10 ms until one answers
//                         200 from someone other than NOTWHO ("-": anyone); prints
//                         "ok ID BODY", or "fail ID" after 20 s.
//   watch ID URL EVERY TIMEOUT
//                         a GET every EVERY ms (fresh connection, TIMEOUT bound) until
//                         "stop ID"; prints "res ID START_MS ELAPSED_MS OK BODY" for each.
// "Who" answered is the value of `node=` in the body (the cluster demo's answer) or else the
// whole body (the process lab's backends answer with their node name).
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { monotonicMs } from './address-monitor.ts';

const PROBER = `
import { get } from 'node:http';
import { createInterface } from 'node:readline';
const now = () => Number(process.hrtime.bigint()) / 1e6;
const who = (body) => /\\bnode=(\\S+)/.exec(body)?.[1] ?? body;
const watches = new Map();
const fetchOnce = (url, timeout, done) => {
  let settled = false;
  const end = (ok, body) => { if (!settled) { settled = true; done(ok, body); } };
  const req = get(url, { timeout, agent: false }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => (body += c));
    res.on('end', () => end(res.statusCode === 200, body.trim()));
    res.on('error', () => end(false, ''));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => end(false, ''));
};
createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, id, url, a, b] = line.trim().split(' ');
  if (cmd === 'probe') {
    let done = false;
    const finish = (msg) => { if (done) return; done = true; clearInterval(timer); clearTimeout(limit); process.stdout.write(msg + '\\n'); };
    const attempt = () => fetchOnce(url, 1000, (ok, body) => { if (ok && who(body) !== a) finish('ok ' + id + ' ' + body); });
    const timer = setInterval(() => { if (!done) attempt(); }, 10);
    const limit = setTimeout(() => finish('fail ' + id), 20000);
    attempt();
  } else if (cmd === 'watch') {
    const every = Number(a), timeout = Number(b);
    const tick = () => {
      const start = now();
      fetchOnce(url, timeout, (ok, body) => process.stdout.write('res ' + id + ' ' + start + ' ' + (now() - start) + ' ' + (ok ? 1 : 0) + ' ' + body.replace(/\\s+/g, ' ') + '\\n'));
    };
    watches.set(id, setInterval(tick, every));
    tick();
  } else if (cmd === 'stop') {
    clearInterval(watches.get(id));
    watches.delete(id);
  }
});
process.stdout.write('ready\\n');
`;

/** One request of a watch: when it started (monotonicMs of this process), how long it took, and its answer. */
export interface WatchedRequest {
  readonly startMs: number;
  readonly elapsedMs: number;
  readonly ok: boolean;
  readonly body: string;
}

export class HttpProber {
  readonly #p: ChildProcess;
  readonly #waiting = new Map<string, { resolve: (v: { at: number; body: string }) => void; reject: (e: Error) => void }>();
  readonly #watches = new Map<string, WatchedRequest[]>();
  readonly ready: Promise<void>;
  #n = 0;

  /** Starts the prober in a network namespace (`ip netns exec NETNS node ...`). */
  constructor(netns: string) {
    this.#p = spawn('ip', ['netns', 'exec', netns, process.execPath, '--input-type=module', '-e', PROBER], { stdio: ['pipe', 'pipe', 'inherit'] });
    let readyResolve: () => void = () => undefined;
    this.ready = new Promise((r) => (readyResolve = r));
    createInterface({ input: this.#p.stdout! }).on('line', (line) => {
      const at = monotonicMs();
      const [kind, id, ...rest] = line.split(' ');
      if (kind === 'ready') return readyResolve();
      if (kind === 'res') {
        const [start, elapsed, ok, ...body] = rest;
        // The child prints process.hrtime milliseconds: the system's monotonic clock, as monotonicMs() here.
        this.#watches.get(id ?? '')?.push({ startMs: Number(start), elapsedMs: Number(elapsed), ok: ok === '1', body: body.join(' ') });
        return;
      }
      const w = this.#waiting.get(id ?? '');
      if (!w) return;
      this.#waiting.delete(id!);
      if (kind === 'ok') w.resolve({ at, body: rest.join(' ') });
      else w.reject(new Error(`no HTTP answer in 20 s`));
    });
  }

  /** Starts probing now; resolves with the arrival time (monotonicMs) of the first 200 from someone other than `notWho`. */
  probe(address: string, notWho = '-'): Promise<{ at: number; body: string }> {
    const id = String(++this.#n);
    const p = new Promise<{ at: number; body: string }>((resolve, reject) => this.#waiting.set(id, { resolve, reject }));
    this.#p.stdin!.write(`probe ${id} ${urlFor(address)} ${notWho}\n`);
    return p;
  }

  /** A GET every `everyMs`, each bounded by `timeoutMs`, until the returned stop() (which waits out the last ones). */
  watch(address: string, everyMs: number, timeoutMs: number): { stop: () => Promise<WatchedRequest[]> } {
    const id = String(++this.#n);
    const results: WatchedRequest[] = [];
    this.#watches.set(id, results);
    this.#p.stdin!.write(`watch ${id} ${urlFor(address)} ${everyMs} ${timeoutMs}\n`);
    return {
      stop: async () => {
        this.#p.stdin!.write(`stop ${id}\n`);
        await new Promise((r) => setTimeout(r, timeoutMs + 200));
        this.#watches.delete(id);
        return results.sort((x, y) => x.startMs - y.startMs);
      },
    };
  }

  stop(): void {
    this.#p.stdin!.end();
    this.#p.kill('SIGTERM');
  }
}

function urlFor(address: string): string {
  return address.includes(':') ? `http://[${address}]/` : `http://${address}/`;
}
