// The informer against the lab's real kube-apiserver, including a restart of the server.
import t, { type Test } from 'tap';
import { withLab } from '@purelb/lab';
import { Informer, KubeApiError, KubeErrorCode, objectKey } from '../src/index.ts';
import { adminClient, type ConfigMap, configMap, testNamespace, until } from './helpers.ts';

const lab = await withLab(t, { nodes: 1 });
const client = adminClient(lab, { timeoutMs: 5000 });
t.teardown(() => client.close());

/** Mirrors an informer's events into a map and fails the test on an event that contradicts the mirror. */
function mirror(t: Test, inf: Informer<ConfigMap>): Map<string, ConfigMap> {
  const m = new Map<string, ConfigMap>();
  inf.on('add', (o) => {
    if (m.has(objectKey(o))) t.fail(`add for ${objectKey(o)} which the handlers already have`);
    m.set(objectKey(o), o);
  });
  inf.on('update', (o, old) => {
    if (m.get(objectKey(o)) !== old) t.fail(`update for ${objectKey(o)} whose old object is not the last one delivered`);
    m.set(objectKey(o), o);
  });
  inf.on('delete', (o) => {
    if (!m.delete(objectKey(o))) t.fail(`delete for ${objectKey(o)} which the handlers do not have`);
  });
  return m;
}

/** name -> data of what the server holds, what the cache holds, and what the handlers were told. */
const view = (items: Iterable<ConfigMap>): Record<string, string> =>
  Object.fromEntries([...items].map((c): [string, string] => [c.metadata.name, JSON.stringify(c.data ?? {})]).sort(([a], [b]) => (a < b ? -1 : 1)));

t.test('list then watch: adds, updates and deletes; frozen objects without managedFields', async (t) => {
  const ns = await testNamespace(t, client, 'glue-inf');
  const base = `/api/v1/namespaces/${ns}/configmaps`;
  for (let i = 0; i < 3; i++) await client.create(base, configMap(`pre-${i}`, { v: '0' }));
  const inf = new Informer<ConfigMap>(client, { path: base, watchTimeoutSeconds: 30 });
  const seen = mirror(t, inf);
  const log: string[] = [];
  inf.on('add', (o) => log.push(`add ${o.metadata.name}`));
  inf.on('update', (o, old) => log.push(`update ${o.metadata.name} ${old.data?.v}->${o.data?.v}`));
  inf.on('delete', (o) => log.push(`delete ${o.metadata.name}`));
  inf.start();
  t.teardown(() => inf.stop());
  await inf.synced();
  t.same(log, ['add pre-0', 'add pre-1', 'add pre-2'], 'the first list arrives as adds before synced() resolves');
  t.ok(inf.hasSynced);
  t.match(inf.lastSyncResourceVersion, /^\d+$/);
  const cm = inf.get(`${ns}/pre-1`);
  t.equal(cm?.kind, 'ConfigMap', 'list items get kind and apiVersion');
  t.equal(cm?.metadata.managedFields, undefined, 'managedFields are dropped by default');
  t.ok(Object.isFrozen(cm) && Object.isFrozen(cm?.data), 'cached objects are deep-frozen');
  t.throws(() => {
    (cm!.data as Record<string, string>).v = 'mutated';
  }, TypeError);

  log.length = 0;
  await client.create(base, configMap('new', { v: '1' }));
  await client.mergePatch(`${base}/pre-0`, { data: { v: '1' } });
  await client.delete(`${base}/pre-2`);
  await until('the watch to deliver three changes', () => log.length >= 3);
  t.same(log, ['add new', 'update pre-0 0->1', 'delete pre-2']);
  t.same(view(inf.list()), { new: '{"v":"1"}', 'pre-0': '{"v":"1"}', 'pre-1': '{"v":"0"}' });
  t.same(view(seen.values()), view(inf.list()), 'handlers and cache agree');
});

t.test('the informer converges across a kube-apiserver restart', async (t) => {
  const ns = await testNamespace(t, client, 'glue-restart');
  const base = `/api/v1/namespaces/${ns}/configmaps`;
  for (let i = 0; i < 5; i++) await client.create(base, configMap(`cm-${i}`, { v: '0' }));
  const inf = new Informer<ConfigMap>(client, { path: base, backoff: { initialMs: 1500, maxMs: 3000 }, watchTimeoutSeconds: 60 });
  const seen = mirror(t, inf);
  const errors: unknown[] = [];
  inf.on('error', (e) => errors.push(e));
  inf.start();
  t.teardown(() => inf.stop());
  await inf.synced();
  await client.mergePatch(`${base}/cm-0`, { data: { v: 'before' } });
  await until('the change before the restart', () => inf.get(`${ns}/cm-0`)?.data?.v === 'before');

  await lab.controlPlane.restartApiServer({ downMs: 1000 });
  // The informer is backing off now; these changes land before it is back.
  await client.create(base, configMap('made-while-away', { v: '1' }));
  await client.mergePatch(`${base}/cm-1`, { data: { v: 'while-away' } });
  await client.delete(`${base}/cm-2`);
  t.ok(errors.some((e) => e instanceof KubeApiError && (e.code === KubeErrorCode.Unavailable || e.code === KubeErrorCode.Timeout)), 'the outage was reported as an error event');

  const server = async (): Promise<Record<string, string>> => view((await client.list<ConfigMap>(base)).items);
  await until('the cache to match the server', async () => JSON.stringify(view(inf.list())) === JSON.stringify(await server()), 20_000, 100);
  // And it keeps watching after the restart.
  await client.mergePatch(`${base}/cm-3`, { data: { v: 'after' } });
  await until('a change after the restart', () => inf.get(`${ns}/cm-3`)?.data?.v === 'after', 10_000);
  const want = await server();
  t.same(view(inf.list()), want, 'cache equals the server');
  t.same(view(seen.values()), want, 'the handlers saw a consistent stream');
  t.equal(want['made-while-away'], '{"v":"1"}');
  t.equal(want['cm-2'], undefined);
});
