// EventRecorder queueing and aggregation against the in-memory fake.
import t from 'tap';
import { EventRecorder } from '../src/index.ts';
import { FakeKubeClient } from '../src/testing/index.ts';

const ref = { kind: 'Service', namespace: 'shop', name: 'web' };

t.test('the queue is bounded: distinct events over the bound are dropped and counted', async (t) => {
  const fake = new FakeKubeClient();
  const rec = new EventRecorder(fake, { component: 'test', maxQueue: 3 });
  for (let i = 0; i < 10; i++) rec.event(ref, 'Warning', 'AllocationFailed', `reason ${i}`);
  // Repeats of a queued event are folded, not dropped.
  for (let i = 0; i < 100; i++) rec.event(ref, 'Warning', 'AllocationFailed', 'reason 1');
  await rec.flush();
  const stats = rec.stats();
  t.equal(stats.dropped, 7 - 1, 'the first distinct event went out at once, three more queued, six dropped');
  t.equal(stats.created, 4);
  const events = fake.objects<{ message: string; count: number }>('/api/v1/namespaces/shop/events');
  t.same(events.map((e) => `${e.message} x${e.count}`).sort(), ['reason 0 x1', 'reason 1 x101', 'reason 2 x1', 'reason 3 x1']);
});

t.test('an aggregated Event that vanished is created again', async (t) => {
  const fake = new FakeKubeClient();
  const rec = new EventRecorder(fake, { component: 'test' });
  rec.event(ref, 'Normal', 'AddressAssigned', 'assigned 192.0.2.10');
  await rec.flush();
  const [first] = fake.objects<{ metadata: { name: string } }>('/api/v1/namespaces/shop/events');
  await fake.delete(`/api/v1/namespaces/shop/events/${first!.metadata.name}`);
  rec.event(ref, 'Normal', 'AddressAssigned', 'assigned 192.0.2.10');
  await rec.flush();
  const after = fake.objects<{ metadata: { name: string }; count: number }>('/api/v1/namespaces/shop/events');
  t.equal(after.length, 1);
  t.not(after[0]?.metadata.name, first!.metadata.name);
  t.equal(after[0]?.count, 1);
  t.same(rec.stats(), { created: 2, aggregated: 0, dropped: 0, failed: 0 });
});

t.test('failures never reach the caller; a throwing onError does not stop the queue; long messages are cut', async (t) => {
  const fake = new FakeKubeClient();
  fake.failNext(500, { method: 'POST' });
  const rec = new EventRecorder(fake, {
    component: 'test',
    onError: () => {
      throw new Error('bad callback');
    },
  });
  rec.event(ref, 'Warning', 'A', 'x');
  rec.event(ref, 'Warning', 'B', 'y'.repeat(5000));
  await rec.flush();
  t.equal(rec.stats().failed, 1);
  t.equal(rec.stats().created, 1);
  const [ev] = fake.objects<{ message: string }>('/api/v1/namespaces/shop/events');
  t.equal(ev?.message.length, 1024);
  t.ok(ev?.message.endsWith('...'));
  await rec.flush();
  t.pass('flush with nothing queued returns');
});

t.test('deferWhile holds Events back while the owner is busy, up to maxDeferMs; repeats keep folding meanwhile', async (t) => {
  const fake = new FakeKubeClient();
  let busy = true;
  const rec = new EventRecorder(fake, { component: 'test', deferWhile: () => busy, maxDeferMs: 5_000, deferPollMs: 10 });
  rec.event(ref, 'Normal', 'AddressAssigned', 'assigned 192.0.2.10');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(fake.objects('/api/v1/namespaces/shop/events').length, 0, 'nothing written while busy');
  rec.event(ref, 'Normal', 'AddressAssigned', 'assigned 192.0.2.10');
  busy = false;
  await new Promise((r) => setTimeout(r, 100));
  const written = fake.objects<{ count: number }>('/api/v1/namespaces/shop/events');
  t.same(written.map((e) => e.count), [2], 'written once the owner is idle, with the repeat folded in');
});

t.test('a deferred Event goes out after maxDeferMs even if the owner stays busy; flush does not wait', async (t) => {
  const fake = new FakeKubeClient();
  const rec = new EventRecorder(fake, { component: 'test', deferWhile: () => true, maxDeferMs: 150, deferPollMs: 10 });
  const t0 = performance.now();
  rec.event(ref, 'Warning', 'AllocationFailed', 'pool exhausted');
  for (let i = 0; i < 100 && fake.objects('/api/v1/namespaces/shop/events').length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const waited = performance.now() - t0;
  t.equal(fake.objects('/api/v1/namespaces/shop/events').length, 1, 'written');
  t.ok(waited >= 140 && waited < 900, `after about maxDeferMs (${waited.toFixed(0)} ms)`);

  const slow = new EventRecorder(fake, { component: 'test', deferWhile: () => true, maxDeferMs: 60_000, deferPollMs: 10 });
  slow.event({ ...ref, name: 'other' }, 'Normal', 'AddressAssigned', 'assigned 192.0.2.11');
  const f0 = performance.now();
  await slow.flush();
  t.ok(performance.now() - f0 < 2_000, 'flush writes what is queued at once (shutdown does not wait a minute)');
  t.equal(slow.stats().created, 1);
});

t.test('a throwing deferWhile does not hold Events', async (t) => {
  const fake = new FakeKubeClient();
  const rec = new EventRecorder(fake, { component: 'test', deferWhile: () => { throw new Error('owner bug'); }, maxDeferMs: 60_000 });
  rec.event(ref, 'Normal', 'AddressAssigned', 'assigned 192.0.2.12');
  await rec.flush();
  t.equal(rec.stats().created, 1);
});
