// The EventRecorder against the lab's real kube-apiserver.
import t from 'tap';
import { withLab } from '@purelb/lab';
import { EventRecorder } from '../src/index.ts';
import { adminClient, testNamespace } from './helpers.ts';

const lab = await withLab(t, { nodes: 1 });
const client = adminClient(lab);
t.teardown(() => client.close());

interface CoreEvent {
  metadata: { name: string; namespace: string };
  involvedObject: { kind: string; name: string; namespace?: string; uid?: string; apiVersion?: string };
  type: string;
  reason: string;
  message: string;
  count: number;
  source: { component: string; host?: string };
  reportingComponent: string;
  firstTimestamp: string;
  lastTimestamp: string;
}

const events = async (ns: string): Promise<CoreEvent[]> => (await client.list<CoreEvent>(`/api/v1/namespaces/${ns}/events`)).items;

t.test('repeats fold into one Event; the count and lastTimestamp grow', async (t) => {
  const ns = await testNamespace(t, client, 'glue-events');
  const rec = new EventRecorder(client, { component: 'purelb-allocator', host: 'replica-a' });
  const svc = { kind: 'Service', apiVersion: 'v1', namespace: ns, name: 'web', uid: '6b2f1a4e-0000-4000-8000-000000000001' };
  rec.event(svc, 'Warning', 'AllocationFailed', 'pool default is exhausted');
  rec.event(svc, 'Warning', 'AllocationFailed', 'pool default is exhausted');
  rec.event(svc, 'Normal', 'AddressAssigned', 'assigned 192.0.2.10');
  await rec.flush();
  let got = await events(ns);
  t.equal(got.length, 2, 'two distinct events');
  const warn = got.find((e) => e.reason === 'AllocationFailed')!;
  t.equal(warn.count, 2, 'queued repeats are one write with count 2');
  t.same(warn.involvedObject, { kind: 'Service', name: 'web', namespace: ns, uid: svc.uid, apiVersion: 'v1' });
  t.equal(warn.type, 'Warning');
  t.same(warn.source, { component: 'purelb-allocator', host: 'replica-a' });
  t.equal(warn.reportingComponent, 'purelb-allocator');

  await new Promise((r) => setTimeout(r, 1100));
  rec.event(svc, 'Warning', 'AllocationFailed', 'pool default is exhausted');
  await rec.flush();
  got = await events(ns);
  t.equal(got.length, 2, 'a later repeat creates nothing new');
  const again = got.find((e) => e.reason === 'AllocationFailed')!;
  t.equal(again.metadata.name, warn.metadata.name, 'the same Event');
  t.equal(again.count, 3);
  t.equal(again.firstTimestamp, warn.firstTimestamp);
  t.ok(Date.parse(again.lastTimestamp) > Date.parse(warn.lastTimestamp), 'lastTimestamp moved');
  t.same(rec.stats(), { created: 2, aggregated: 2, dropped: 0, failed: 0 });
});

t.test('outside the window a repeat starts a new Event', async (t) => {
  const ns = await testNamespace(t, client, 'glue-window');
  const rec = new EventRecorder(client, { component: 'purelb-allocator', aggregateWindowMs: 0 });
  const svc = { kind: 'Service', namespace: ns, name: 'web' };
  rec.event(svc, 'Normal', 'AddressAssigned', 'assigned 192.0.2.10');
  await rec.flush();
  rec.event(svc, 'Normal', 'AddressAssigned', 'assigned 192.0.2.10');
  await rec.flush();
  t.same((await events(ns)).map((e) => e.count), [1, 1]);
});

t.test('cluster-scoped objects get their Events in default; failures are counted, never thrown', async (t) => {
  const failures: unknown[] = [];
  const rec = new EventRecorder(client, { component: 'purelb-lbnodeagent', onError: (e) => failures.push(e) });
  rec.event({ kind: 'Node', name: 'node-1', apiVersion: 'v1' }, 'Normal', 'AnnouncingLocal', 'announcing 192.0.2.10 on eth0');
  rec.event({ kind: 'Service', namespace: 'no-such-namespace', name: 'web' }, 'Warning', 'AllocationFailed', 'unknown group');
  await rec.flush();
  const inDefault = (await events('default')).filter((e) => e.involvedObject.kind === 'Node' && e.reason === 'AnnouncingLocal');
  t.equal(inDefault.length, 1);
  t.equal(inDefault[0]?.involvedObject.namespace, undefined);
  t.equal(rec.stats().failed, 1, 'the Event in a missing namespace failed');
  t.equal(failures.length, 1);
  t.match(String(failures[0]), /no-such-namespace/);
});
