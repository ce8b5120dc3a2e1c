// Lease leader election against the lab's real kube-apiserver. An invariant is checked
// every 10 ms for the whole file: never two leaders at once.
import t, { type Test } from 'tap';
import { withLab } from '@purelb/lab';
import { type Lease, LeaderElector } from '../src/index.ts';
import { adminClient, sleep, testNamespace, until } from './helpers.ts';

const lab = await withLab(t, { nodes: 1 });
const client = adminClient(lab, { timeoutMs: 5000 });
t.teardown(() => client.close());

const timing = { leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 250 };

interface Candidate {
  readonly elector: LeaderElector;
  readonly log: string[];
  done: Promise<void>;
  /** Calls run() again on the same elector (after it returned). */
  campaign(): void;
}

/** Runs electors and checks on every tick that at most one of them leads. */
function watchInvariant(t: Test, electors: LeaderElector[]): { checks: () => number; stop: () => void } {
  let checks = 0;
  const timer = setInterval(() => {
    checks++;
    const leaders = electors.filter((e) => e.isLeader()).map((e) => e.identity);
    if (leaders.length > 1) t.fail(`two leaders at once: ${leaders.join(', ')}`);
  }, 10);
  t.teardown(() => clearInterval(timer));
  return { checks: () => checks, stop: () => clearInterval(timer) };
}

function candidate(ns: string, identity: string): Candidate {
  const elector = new LeaderElector(client, { namespace: ns, name: 'allocator', identity, ...timing });
  const c: Candidate = {
    elector,
    log: [],
    done: Promise.resolve(),
    campaign: () => {
      c.done = elector.run({
        onStartedLeading: (signal) => {
          c.log.push('started');
          signal.addEventListener('abort', () => c.log.push('signal aborted'));
        },
        onStoppedLeading: () => c.log.push('stopped'),
        onNewLeader: (id) => c.log.push(`leader ${id}`),
      });
    },
  };
  c.campaign();
  return c;
}

t.test('one of two leads; abandoned, the other takes over after the lease duration', async (t) => {
  const ns = await testNamespace(t, client, 'glue-lease');
  const a = candidate(ns, 'replica-a');
  t.teardown(() => a.elector.stop());
  await until('replica-a to lead', () => a.elector.isLeader(), 5000);
  const b = candidate(ns, 'replica-b');
  t.teardown(() => b.elector.stop());
  const inv = watchInvariant(t, [a.elector, b.elector]);
  await sleep(1500);
  t.ok(a.elector.isLeader(), 'a keeps leading by renewing');
  t.notOk(b.elector.isLeader(), 'b waits');
  const lease = await client.get<Lease>(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/allocator`);
  t.equal(lease.spec.holderIdentity, 'replica-a');
  t.equal(lease.spec.leaseDurationSeconds, 2);
  t.match(lease.spec.renewTime, /\.\d{6}Z$/, 'renewTime is a MicroTime');
  t.ok(b.log.includes('leader replica-a'), 'b was told who leads');

  // As if replica-a were killed with -9: it stops renewing and never releases.
  const abandoned = performance.now();
  await a.elector.stop();
  t.same(a.log, ['leader replica-a', 'started', 'signal aborted', 'stopped']);
  await until('replica-b to take over', () => b.elector.isLeader(), 8000, 10);
  const took = performance.now() - abandoned;
  t.ok(took >= timing.leaseDurationMs - 300, `no takeover before the lease expired (${Math.round(took)} ms)`);
  t.ok(took <= timing.leaseDurationMs + 2 * timing.retryPeriodMs + 1500, `takeover soon after it expired (${Math.round(took)} ms)`);
  const after = await client.get<Lease>(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/allocator`);
  t.equal(after.spec.holderIdentity, 'replica-b');
  t.equal(after.spec.leaseTransitions, 1);
  await b.elector.stop();
  await Promise.all([a.done, b.done]);
  inv.stop();
  t.ok(inv.checks() > 100, `the invariant was checked ${inv.checks()} times`);
});

t.test('release hands over within one retry period', async (t) => {
  const ns = await testNamespace(t, client, 'glue-release');
  const a = candidate(ns, 'replica-a');
  t.teardown(() => a.elector.stop());
  await until('replica-a to lead', () => a.elector.isLeader(), 5000);
  const b = candidate(ns, 'replica-b');
  t.teardown(() => b.elector.stop());
  const inv = watchInvariant(t, [a.elector, b.elector]);
  await sleep(600);
  const released = performance.now();
  await a.elector.release();
  t.notOk(a.elector.isLeader(), 'a is no leader once release() resolves');
  await until('replica-b to take over', () => b.elector.isLeader(), 5000, 5);
  const took = performance.now() - released;
  t.ok(took <= timing.retryPeriodMs * 1.2 + 300, `takeover in ${Math.round(took)} ms, within one retry period (${timing.retryPeriodMs} ms) and a request`);
  await a.done;
  t.same(a.log, ['leader replica-a', 'started', 'signal aborted', 'stopped']);
  await b.elector.release();
  const lease = await client.get<Lease>(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/allocator`);
  t.equal(lease.spec.holderIdentity, undefined, 'a released Lease has no holder');
  inv.stop();
});

t.test('three candidates under churn: never two leaders', async (t) => {
  const ns = await testNamespace(t, client, 'glue-churn');
  const cs = ['x', 'y', 'z'].map((id) => candidate(ns, `replica-${id}`));
  t.teardown(() => Promise.all(cs.map((c) => c.elector.stop())));
  const inv = watchInvariant(t, cs.map((c) => c.elector));
  const leaders = new Set<string>();
  for (let round = 0; round < 4; round++) {
    await until(`a leader in round ${round}`, () => cs.some((c) => c.elector.isLeader()), 8000, 10);
    const leader = cs.find((c) => c.elector.isLeader())!;
    leaders.add(leader.elector.identity);
    // Alternate between a clean release and an abandonment, then let the replica campaign again.
    if (round % 2 === 0) await leader.elector.release();
    else await leader.elector.stop();
    await leader.done;
    // Others get a chance to win before this replica stands again.
    await until('another replica to lead', () => cs.some((c) => c.elector.isLeader()), 8000, 10);
    leader.campaign();
  }
  t.ok(leaders.size >= 2, `leadership moved between replicas: ${[...leaders].join(', ')}`);
  inv.stop();
});
