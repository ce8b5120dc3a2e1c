// Leader election logic against the in-memory fake, with injected failures.
import t from 'tap';
import { type Lease, LeaderElector, microTime } from '../src/index.ts';
import { FakeKubeClient } from '../src/testing/index.ts';
import { sleep, until } from './helpers.ts';

const timing = { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 100 };
const leasePath = '/apis/coordination.k8s.io/v1/namespaces/purelb/leases/allocator';

t.test('options are checked', async (t) => {
  const fake = new FakeKubeClient();
  const base = { namespace: 'purelb', name: 'allocator', identity: 'a' };
  t.throws(() => new LeaderElector(fake, { ...base, identity: '' }), TypeError);
  t.throws(() => new LeaderElector(fake, { ...base, leaseDurationMs: 500 }), RangeError);
  t.throws(() => new LeaderElector(fake, { ...base, leaseDurationMs: 5000, renewDeadlineMs: 5000 }), RangeError);
  t.throws(() => new LeaderElector(fake, { ...base, renewDeadlineMs: 1000, retryPeriodMs: 1000 }), RangeError);
  t.equal(microTime(new Date('2026-03-04T05:06:07.089Z')), '2026-03-04T05:06:07.089000Z');
});

t.test('a leader that cannot renew steps down before its lease can be taken', async (t) => {
  const fake = new FakeKubeClient();
  const log: string[] = [];
  const a = new LeaderElector(fake, { namespace: 'purelb', name: 'allocator', identity: 'a', ...timing });
  t.teardown(() => a.stop());
  const done = a.run({ onStartedLeading: () => void log.push('started'), onStoppedLeading: () => log.push('stopped') });
  await until('a leads', () => a.isLeader(), 2000);
  const lease = fake.objects<Lease>('/apis/coordination.k8s.io/v1/namespaces/purelb/leases')[0]!;
  t.equal(lease.spec.holderIdentity, 'a');
  // The API server becomes unreachable for a's writes.
  fake.failNext(503, { path: 'leases', times: 1000 });
  const cut = performance.now();
  await done;
  const stepDown = performance.now() - cut;
  t.same(log, ['started', 'stopped']);
  t.notOk(a.isLeader());
  t.ok(stepDown >= timing.renewDeadlineMs - timing.retryPeriodMs - 50 && stepDown <= timing.renewDeadlineMs + timing.retryPeriodMs + 200, `stepped down after ${Math.round(stepDown)} ms (renewDeadline ${timing.renewDeadlineMs})`);
  t.ok(stepDown < timing.leaseDurationMs, 'before anyone else may take the lease');
});

t.test('a lease held by another is respected until it is seen unchanged for its duration, whatever its renewTime says', async (t) => {
  const fake = new FakeKubeClient();
  // A holder whose clock is far behind: renewTime is a year old, yet the lease is live.
  const old = microTime(new Date(Date.now() - 365 * 24 * 3600 * 1000));
  await fake.create('/apis/coordination.k8s.io/v1/namespaces/purelb/leases', {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'allocator', namespace: 'purelb' },
    spec: { holderIdentity: 'skewed', leaseDurationSeconds: 1, acquireTime: old, renewTime: old, leaseTransitions: 3 },
  });
  const b = new LeaderElector(fake, { namespace: 'purelb', name: 'allocator', identity: 'b', ...timing });
  t.teardown(() => b.stop());
  const seen: string[] = [];
  const started = performance.now();
  void b.run({ onStartedLeading: () => undefined, onStoppedLeading: () => undefined, onNewLeader: (id) => seen.push(id) });
  // The skewed holder keeps renewing for a while (renewTime moves, still a year old).
  for (let i = 0; i < 8; i++) {
    await sleep(150);
    t.notOk(b.isLeader(), `b waits while the holder renews (${i})`);
    const l = fake.objects<Lease>('/apis/coordination.k8s.io/v1/namespaces/purelb/leases')[0]!;
    await fake.replace(leasePath, { ...l, spec: { ...l.spec, renewTime: microTime(new Date(Date.now() - 365 * 24 * 3600 * 1000 + i)) } });
  }
  const lastRenew = performance.now();
  await until('b takes over', () => b.isLeader(), 3000, 5);
  t.ok(performance.now() - lastRenew >= 1000 - 50, 'only a lease duration after the last renewal b saw');
  t.ok(performance.now() - started > 1200);
  const l = fake.objects<Lease>('/apis/coordination.k8s.io/v1/namespaces/purelb/leases')[0]!;
  t.equal(l.spec.holderIdentity, 'b');
  t.equal(l.spec.leaseTransitions, 4);
  t.same(seen, ['skewed', 'b']);
});

t.test('two candidates with random API failures: never two leaders', async (t) => {
  const fake = new FakeKubeClient();
  const electors = ['a', 'b'].map((id) => new LeaderElector(fake, { namespace: 'purelb', name: 'allocator', identity: id, ...timing }));
  t.teardown(() => Promise.all(electors.map((e) => e.stop())));
  const runs = electors.map((e) => e.run({ onStartedLeading: () => undefined, onStoppedLeading: () => undefined }));
  let rng = 42;
  const random = (): number => ((rng = (rng * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  let leaderSeen = 0;
  const deadline = performance.now() + 4000;
  for (let step = 0; step < 2000 && performance.now() < deadline; step++) {
    const leaders = electors.filter((e) => e.isLeader());
    if (leaders.length > 1) t.fail(`two leaders at step ${step}`);
    if (leaders.length === 1) leaderSeen++;
    if (random() < 0.05) fake.failNext(random() < 0.5 ? 503 : 409, { path: 'leases', times: 1 + Math.floor(random() * 8) });
    await sleep(5);
  }
  t.ok(leaderSeen > 50, `a leader most of the time (${leaderSeen} steps)`);
  await Promise.all(electors.map((e) => e.stop()));
  await Promise.all(runs);
});

t.test('a failing onStartedLeading releases the lease and rejects run()', async (t) => {
  const fake = new FakeKubeClient();
  const a = new LeaderElector(fake, { namespace: 'purelb', name: 'allocator', identity: 'a', ...timing });
  await t.rejects(
    a.run({
      onStartedLeading: async () => {
        await sleep(50);
        throw new Error('the controller crashed');
      },
      onStoppedLeading: () => undefined,
    }),
    /the controller crashed/,
  );
  t.notOk(a.isLeader());
  t.equal(fake.objects<Lease>('/apis/coordination.k8s.io/v1/namespaces/purelb/leases')[0]?.spec.holderIdentity, undefined, 'released');
  t.throws(() => {
    void a.run({ onStartedLeading: () => undefined, onStoppedLeading: () => undefined });
    void a.run({ onStartedLeading: () => undefined, onStoppedLeading: () => undefined });
  }, /already running/);
  await a.stop();
});
