import t from 'tap';
import fc from 'fast-check';
import { MetricsRegistry, WorkQueue, itemBackoffMs, maxAttemptsInWindow } from '../src/index.ts';
import { ManualClock } from '../src/testing/index.ts';

const drain = (q: WorkQueue): string[] => {
  const out: string[] = [];
  for (let k = q.tryGet(); k !== undefined; k = q.tryGet()) out.push(k);
  return out;
};

t.test('de-duplication: a queued key is queued once; a key added while worked is worked once more after done', async (t) => {
  const cases: { name: string; steps: (q: WorkQueue) => string[]; want: string[] }[] = [
    { name: 'repeats while queued', steps: (q) => (['a', 'b', 'a', 'c', 'b'].forEach((k) => q.add(k)), drain(q)), want: ['a', 'b', 'c'] },
    {
      name: 'added while processing: not handed out until done',
      steps: (q) => {
        q.add('a');
        const got = [q.tryGet()!];
        q.add('a');
        q.add('a');
        got.push(...drain(q));
        q.done('a');
        got.push(...drain(q));
        return got;
      },
      want: ['a', 'a'],
    },
    {
      name: 'done without a new add: not handed out again',
      steps: (q) => {
        q.add('a');
        const got = [q.tryGet()!];
        q.done('a');
        return [...got, ...drain(q)];
      },
      want: ['a'],
    },
    {
      name: 'order is first-added first',
      steps: (q) => {
        q.add('x');
        q.add('y');
        const x = q.tryGet()!;
        q.add('x');
        q.done(x);
        return [x, ...drain(q)];
      },
      want: ['x', 'y', 'x'],
    },
  ];
  for (const c of cases) t.same(c.steps(new WorkQueue({ clock: new ManualClock() })), c.want, c.name);
});

t.test('per-item backoff: 250 ms doubling to a 5 minute cap; forget resets it', async (t) => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock, qps: 1e6, burst: 1e6 });
  const delays: number[] = [];
  for (let i = 0; i < 14; i++) delays.push(q.addRateLimited('k'));
  t.same(delays, [250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000, 300000]);
  t.equal(q.retries('k'), 14);
  t.equal(q.addRateLimited('other'), 250, 'each key has its own backoff');
  q.forget('k');
  t.equal(q.retries('k'), 0);
  t.equal(q.nextDelay('k'), 250);
  t.same([itemBackoffMs(0, 250, 300_000), itemBackoffMs(100, 250, 300_000), itemBackoffMs(2000, 250, 300_000)], [250, 300_000, 300_000]);
});

t.test('a delayed key is handed out when due; the earliest due time wins; add() supersedes it', async (t) => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock });
  q.addAfter('a', 1000);
  q.addAfter('a', 5000);
  t.equal(q.waiting, 1);
  clock.advance(999);
  t.same(drain(q), []);
  clock.advance(1);
  t.same(drain(q), ['a']);
  q.done('a');
  clock.advance(10_000);
  t.same(drain(q), [], 'the later addAfter of a was folded into the earlier');
  q.addAfter('b', 2000);
  q.add('b');
  t.equal(q.waiting, 0, 'add() drops the pending delayed add');
  t.same(drain(q), ['b']);
  q.done('b');
  clock.advance(5000);
  t.same(drain(q), []);
  q.addAfter('c', 0);
  t.same(drain(q), ['c'], 'a delay of 0 is an add');
});

t.test('the token bucket holds retries of many keys to qps once the burst is spent', async (t) => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock, qps: 10, burst: 5 });
  const delays = Array.from({ length: 10 }, (_, i) => q.addRateLimited(`k${i}`));
  t.same(delays.slice(0, 5), [250, 250, 250, 250, 250], 'within the burst: the item delay');
  t.same(delays.slice(5).map(Math.round), [250, 250, 300, 400, 500], 'past the burst: 100 ms per token');
  clock.advance(60_000);
  t.equal(drain(q).length, 10);
});

t.test('get() waits for a key; shutDown ends waiters, timers and later adds', async (t) => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock });
  const waiting = q.get();
  q.add('x');
  t.equal(await waiting, 'x');
  q.addAfter('y', 100);
  const pending = q.get();
  q.shutDown();
  t.equal(await pending, undefined);
  t.equal(clock.pending, 0, 'the timer was cleared');
  q.add('z');
  t.equal(await q.get(), undefined);
  t.ok(q.shuttingDown);
});

t.test('metrics: depth, adds, retries, queue and work durations under the prefix', async (t) => {
  const clock = new ManualClock();
  const registry = new MetricsRegistry();
  const q = new WorkQueue({ clock, registry, metricsPrefix: 'purelb_test_workqueue' });
  q.add('a');
  q.add('a');
  q.add('b');
  clock.advance(500);
  const a = q.tryGet()!;
  clock.advance(2000);
  q.done(a);
  q.addRateLimited(a);
  const text = registry.metrics();
  t.match(text, /^purelb_test_workqueue_depth 1$/m);
  t.match(text, /^purelb_test_workqueue_adds_total 2$/m);
  t.match(text, /^purelb_test_workqueue_retries_total 1$/m);
  t.match(text, /^purelb_test_workqueue_queue_duration_seconds_bucket\{le="0.5"\} 1$/m);
  t.match(text, /^purelb_test_workqueue_work_duration_seconds_bucket\{le="1"\} 0$/m);
  t.match(text, /^purelb_test_workqueue_work_duration_seconds_bucket\{le="2.5"\} 1$/m);
});

t.test('the stated bound: a key that always fails is tried at most 8 times in any minute', async (t) => {
  t.equal(maxAttemptsInWindow(60_000), 8);
  // Simulated: work it, fail it, retry it, for an hour; count attempts per sliding minute.
  const clock = new ManualClock();
  const q = new WorkQueue({ clock });
  const attempts: number[] = [];
  q.add('svc');
  for (let ms = 0; ms <= 3_600_000; ms += 50) {
    for (let k = q.tryGet(); k !== undefined; k = q.tryGet()) {
      attempts.push(clock.now());
      q.done(k);
      q.addRateLimited(k);
    }
    clock.advance(50);
  }
  let worst = 0;
  for (let i = 0; i < attempts.length; i++) worst = Math.max(worst, attempts.filter((x) => x >= attempts[i]! && x < attempts[i]! + 60_000).length);
  t.equal(worst, 8);
  t.ok(attempts.length <= 8 + 60, `an hour: ${attempts.length} attempts`);
});

type Op =
  | { op: 'add'; key: string }
  | { op: 'addAfter'; key: string; ms: number }
  | { op: 'retry'; key: string }
  | { op: 'forget'; key: string }
  | { op: 'get' }
  | { op: 'done'; pick: number }
  | { op: 'advance'; ms: number };

const keyArb = fc.constantFrom('a', 'b', 'c', 'd');
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), key: keyArb }),
  fc.record({ op: fc.constant('addAfter' as const), key: keyArb, ms: fc.integer({ min: 0, max: 5000 }) }),
  fc.record({ op: fc.constant('retry' as const), key: keyArb }),
  fc.record({ op: fc.constant('forget' as const), key: keyArb }),
  fc.record({ op: fc.constant('get' as const) }),
  fc.record({ op: fc.constant('done' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 20_000 }) }),
);

t.test('property: no key is worked twice at once, every add is answered, hand-outs never outnumber adds, backoff is bounded', async (t) => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
      const clock = new ManualClock();
      const q = new WorkQueue({ clock, qps: 5, burst: 3, baseDelayMs: 100, maxDelayMs: 10_000 });
      const processing = new Set<string>();
      const adds = new Map<string, number>();
      const handouts = new Map<string, number>();
      /** Keys added since they were last handed out: each must be handed out again. */
      const owed = new Set<string>();
      const failures = new Map<string, number>();
      const take = (): void => {
        for (let k = q.tryGet(); k !== undefined; k = q.tryGet()) {
          if (processing.has(k)) throw new Error(`${k} handed out while being worked`);
          processing.add(k);
          owed.delete(k);
          handouts.set(k, (handouts.get(k) ?? 0) + 1);
          if (handouts.get(k)! > adds.get(k)!) throw new Error(`${k} handed out more often than added`);
        }
      };
      const added = (k: string): void => {
        adds.set(k, (adds.get(k) ?? 0) + 1);
        owed.add(k);
      };
      for (const o of ops) {
        switch (o.op) {
          case 'add':
            added(o.key);
            q.add(o.key);
            break;
          case 'addAfter':
            added(o.key);
            q.addAfter(o.key, o.ms);
            break;
          case 'retry': {
            added(o.key);
            const n = failures.get(o.key) ?? 0;
            const delay = q.addRateLimited(o.key);
            failures.set(o.key, n + 1);
            if (delay < Math.min(10_000, 100 * 2 ** n)) throw new Error(`retry of ${o.key} after ${delay} ms, under its backoff`);
            break;
          }
          case 'forget':
            q.forget(o.key);
            failures.delete(o.key);
            break;
          case 'get': {
            const k = q.tryGet();
            if (k !== undefined) {
              if (processing.has(k)) throw new Error(`${k} handed out while being worked`);
              processing.add(k);
              owed.delete(k);
              handouts.set(k, (handouts.get(k) ?? 0) + 1);
              if (handouts.get(k)! > adds.get(k)!) throw new Error(`${k} handed out more often than added`);
            }
            break;
          }
          case 'done': {
            const list = [...processing];
            if (list.length === 0) break;
            const k = list[o.pick % list.length]!;
            processing.delete(k);
            q.done(k);
            break;
          }
          case 'advance':
            clock.advance(o.ms);
            break;
        }
        if (q.length + q.processing > 4) throw new Error('more entries than keys');
        if (q.processing !== processing.size) throw new Error('processing count differs');
      }
      // Liveness: finish everything, let every timer fire; every owed key is handed out.
      for (let round = 0; round < 20 && (owed.size > 0 || processing.size > 0 || clock.pending > 0); round++) {
        for (const k of [...processing]) {
          processing.delete(k);
          q.done(k);
        }
        clock.advance(60_000);
        take();
      }
      if (owed.size > 0) throw new Error(`never handed out again: ${[...owed].join(', ')}`);
    }),
    { numRuns: 500 },
  );
  t.pass('invariants held');
});
