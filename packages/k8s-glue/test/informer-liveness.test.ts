// Watch liveness against the in-memory fake with a hand-driven clock: a watch that goes
// silent without closing is restarted after the idle bound and resumes where it was; the
// informer reports itself stale and fresh again; bookmarks and clean ends keep a quiet
// watch alive.
import t, { type Test } from 'tap';
import { Informer, type InformerClock, KubeApiError, KubeErrorCode, WATCH_IDLE_TIMEOUT_MS } from '../src/index.ts';
import { FakeKubeClient } from '../src/testing/index.ts';
import { type ConfigMap, configMap, until } from './helpers.ts';

const path = '/api/v1/namespaces/ns1/configmaps';

/** A clock that moves only when told; due timers run in time order as it moves. */
class ManualClock implements InformerClock {
  t = 1_000_000;
  #id = 0;
  readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  at(at: number, fn: () => void): unknown {
    const id = ++this.#id;
    this.timers.set(id, { at, fn });
    return id;
  }
  cancel(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Moves the clock forward by `ms`, running the timers that fall due on the way. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let i = 0; i < 10_000; i++) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}

interface Setup {
  fake: FakeKubeClient;
  clock: ManualClock;
  inf: Informer<ConfigMap>;
  log: string[];
  errors: unknown[];
  watches: () => { resourceVersion?: string }[];
  lists: () => number;
}

async function setup(t: Test, opts: { idleTimeoutMs?: number } = {}): Promise<Setup> {
  const fake = new FakeKubeClient();
  const clock = new ManualClock();
  await fake.create(path, configMap('a', { v: '1' }));
  const inf = new Informer<ConfigMap>(fake, { path, clock, backoff: { initialMs: 5, maxMs: 20 }, ...opts });
  const log: string[] = [];
  const errors: unknown[] = [];
  inf.on('add', (o) => log.push(`add ${o.metadata.name}`));
  inf.on('update', (o) => log.push(`update ${o.metadata.name} ${o.data?.v ?? ''}`));
  inf.on('stale', (ms) => log.push(`stale ${ms}`));
  inf.on('fresh', (ms) => log.push(`fresh ${ms}`));
  inf.on('error', (e) => errors.push(e));
  t.teardown(() => inf.stop());
  inf.start();
  await inf.synced();
  await until('the watch to open', () => fake.openWatches === 1);
  const watches = (): { resourceVersion?: string }[] => fake.calls.filter((c) => c.method === 'WATCH').map((c) => c.body as { resourceVersion?: string });
  const lists = (): number => fake.calls.filter((c) => c.method === 'GET').length;
  return { fake, clock, inf, log, errors, watches, lists };
}

t.test('the bound is the bookmark period plus its slack', async (t) => {
  t.equal(WATCH_IDLE_TIMEOUT_MS, 90_000);
});

t.test('a silently dropped watch is restarted at the bound and resumes; the change made meanwhile arrives', async (t) => {
  const { fake, clock, inf, log, errors, watches, lists } = await setup(t);
  t.equal(inf.lastHeardAt, clock.t, 'the list was heard');
  t.ok(inf.healthy);
  t.equal(inf.staleForMs(), 0);
  t.equal(inf.idleTimeoutMs, WATCH_IDLE_TIMEOUT_MS);
  const rv = inf.lastSyncResourceVersion;
  fake.dropWatches();
  await fake.mergePatch(`${path}/a`, { data: { v: '2' } });
  clock.advance(WATCH_IDLE_TIMEOUT_MS - 1);
  await new Promise((r) => setTimeout(r, 30));
  t.equal(watches().length, 1, 'not restarted before the bound');
  t.ok(inf.healthy, 'healthy until the bound');
  t.same(log, ['add a']);
  clock.advance(1);
  t.same(log, ['add a', `stale ${WATCH_IDLE_TIMEOUT_MS}`], 'stale at the bound');
  t.notOk(inf.healthy);
  await until('the watch to be restarted and the change to arrive', () => inf.get('ns1/a')?.data?.v === '2');
  t.same(watches().at(-1), { resourceVersion: rv }, 'resumed from the last version seen');
  t.equal(watches().length, 2);
  t.equal(lists(), 1, 'no relist');
  t.same(log, ['add a', `stale ${WATCH_IDLE_TIMEOUT_MS}`, `fresh ${WATCH_IDLE_TIMEOUT_MS}`, 'update a 2'], 'fresh again before the change is delivered');
  t.ok(inf.healthy);
  t.equal(errors.length, 1, 'the restart is reported once');
  t.ok(errors[0] instanceof KubeApiError && errors[0].code === KubeErrorCode.Timeout);
  t.match(String(errors[0]), /nothing heard for 90000 ms \(bound 90000 ms\)/);
  clock.advance(10_000);
  t.equal(inf.staleForMs(), 0);
});

t.test('while the path stays dead: stale once, a restart per bound, fresh once it is back', async (t) => {
  const { fake, clock, inf, log, watches } = await setup(t);
  fake.dropWatches({ alsoNew: true });
  clock.advance(WATCH_IDLE_TIMEOUT_MS);
  await until('the second watch', () => watches().length === 2 && fake.openWatches === 1);
  clock.advance(WATCH_IDLE_TIMEOUT_MS - 1);
  await new Promise((r) => setTimeout(r, 30));
  t.equal(watches().length, 2, 'a restarted watch gets the whole bound from its start');
  t.equal(inf.staleForMs(), WATCH_IDLE_TIMEOUT_MS - 1, 'stale for how long past the bound');
  clock.advance(1);
  await until('the third watch', () => watches().length === 3 && fake.openWatches === 1);
  t.same(log, ['add a', `stale ${WATCH_IDLE_TIMEOUT_MS}`], 'stale is reported once');
  fake.restoreWatches();
  await fake.mergePatch(`${path}/a`, { data: { v: '3' } });
  clock.advance(WATCH_IDLE_TIMEOUT_MS);
  await until('the change', () => inf.get('ns1/a')?.data?.v === '3');
  t.same(log, ['add a', `stale ${WATCH_IDLE_TIMEOUT_MS}`, `fresh ${3 * WATCH_IDLE_TIMEOUT_MS}`, 'update a 3']);
  t.ok(inf.healthy);
});

t.test('bookmarks keep a quiet watch alive; without them it is restarted every bound', async (t) => {
  const { fake, clock, inf, log, watches } = await setup(t);
  for (let i = 0; i < 10; i++) {
    clock.advance(60_000);
    fake.bookmark();
    await until('the bookmark', () => inf.lastHeardAt === clock.t);
  }
  t.equal(watches().length, 1, 'ten minutes with a bookmark a minute: one watch');
  t.ok(inf.healthy);
  clock.advance(WATCH_IDLE_TIMEOUT_MS);
  await until('a restart', () => watches().length === 2);
  t.same(log, ['add a', `stale ${WATCH_IDLE_TIMEOUT_MS}`]);
});

t.test('a watch the server ends cleanly counts as heard; the next one gets a full bound', async (t) => {
  const { fake, clock, inf, log, watches } = await setup(t);
  clock.advance(80_000);
  fake.disconnectWatches('clean');
  await until('the next watch', () => watches().length === 2 && fake.openWatches === 1);
  t.equal(inf.lastHeardAt, clock.t);
  clock.advance(80_000);
  await new Promise((r) => setTimeout(r, 30));
  t.ok(inf.healthy, '160 s since the list, 80 s since the clean end');
  t.equal(watches().length, 2);
  clock.advance(10_000);
  await until('a restart at the bound after the clean end', () => watches().length === 3);
  t.same(log, ['add a', `stale ${WATCH_IDLE_TIMEOUT_MS}`]);
});

t.test('a watch that ends with an error does not count as heard', async (t) => {
  const { fake, clock, inf } = await setup(t);
  const heard = inf.lastHeardAt;
  clock.advance(1000);
  fake.disconnectWatches('error');
  await until('the next watch', () => fake.calls.filter((c) => c.method === 'WATCH').length === 2 && fake.openWatches === 1);
  t.equal(inf.lastHeardAt, heard);
});

t.test('idleTimeoutMs 0 turns the check off', async (t) => {
  const { fake, clock, inf, log, watches } = await setup(t, { idleTimeoutMs: 0 });
  fake.dropWatches();
  clock.advance(3_600_000);
  await new Promise((r) => setTimeout(r, 30));
  t.equal(watches().length, 1);
  t.ok(inf.healthy);
  t.equal(clock.timers.size, 0, 'no timer at all');
  t.same(log, ['add a']);
});

t.test('not healthy before the first list; no timer left after stop', async (t) => {
  const fake = new FakeKubeClient();
  const clock = new ManualClock();
  const inf = new Informer<ConfigMap>(fake, { path, clock });
  t.notOk(inf.healthy);
  t.equal(inf.staleForMs(), Infinity);
  t.equal(inf.lastHeardAt, undefined);
  inf.start();
  await inf.synced();
  await until('the watch', () => fake.openWatches === 1);
  t.ok(clock.timers.size > 0, 'a deadline is armed');
  await inf.stop();
  t.equal(clock.timers.size, 0);
  t.equal(fake.openWatches, 0);
});
