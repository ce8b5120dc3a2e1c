// Informer logic against the in-memory fake: 410 Gone, disconnects, backoff, handler
// failures, resync. The lab test covers the real server.
import t, { type Test } from 'tap';
import { Informer, KubeApiError, KubeErrorCode, backoffDelay, objectKey } from '../src/index.ts';
import { FakeKubeClient } from '../src/testing/index.ts';
import { type ConfigMap, configMap, sleep, until } from './helpers.ts';

const path = '/api/v1/namespaces/ns1/configmaps';

function setup(t: Test, opts: { resyncMs?: number; freeze?: boolean } = {}): { fake: FakeKubeClient; inf: Informer<ConfigMap>; log: string[]; mirror: Map<string, ConfigMap>; errors: unknown[] } {
  const fake = new FakeKubeClient();
  const inf = new Informer<ConfigMap>(fake, { path, backoff: { initialMs: 5, maxMs: 20 }, ...opts });
  const log: string[] = [];
  const mirror = new Map<string, ConfigMap>();
  const errors: unknown[] = [];
  inf.on('add', (o) => {
    log.push(`add ${o.metadata.name}`);
    if (mirror.has(objectKey(o))) t.fail(`double add ${objectKey(o)}`);
    mirror.set(objectKey(o), o);
  });
  inf.on('update', (o, old) => {
    log.push(`update ${o.metadata.name} ${old.data?.v ?? ''}->${o.data?.v ?? ''}`);
    if (mirror.get(objectKey(o)) !== old) t.fail(`update with a stale old for ${objectKey(o)}`);
    mirror.set(objectKey(o), o);
  });
  inf.on('delete', (o) => {
    log.push(`delete ${o.metadata.name}`);
    if (!mirror.delete(objectKey(o))) t.fail(`delete of unknown ${objectKey(o)}`);
  });
  inf.on('error', (e) => errors.push(e));
  t.teardown(() => inf.stop());
  return { fake, inf, log, mirror, errors };
}

const names = (xs: Iterable<ConfigMap>): string[] => [...xs].map((x) => `${x.metadata.name}=${x.data?.v ?? ''}`).sort();

t.test('410 Gone as a watch ERROR event: relist and emit only the difference', async (t) => {
  const { fake, inf, log, mirror } = setup(t);
  for (const n of ['a', 'b', 'c']) await fake.create(path, configMap(n, { v: '1' }));
  inf.start();
  await inf.synced();
  await until('the watch to open', () => fake.openWatches === 1);
  // While the watch is down (every attempt fails), history moves on and is compacted.
  fake.failNext(503, { method: 'WATCH', times: 2 });
  fake.disconnectWatches('error');
  await fake.mergePatch(`${path}/a`, { data: { v: '2' } });
  await fake.delete(`${path}/b`);
  await fake.create(path, configMap('d', { v: '1' }));
  fake.compact();
  log.length = 0;
  await until('the cache to converge', () => names(inf.list()).join() === 'a=2,c=1,d=1');
  t.same(log.sort(), ['add d', 'delete b', 'update a 1->2'], 'only the differences, once each');
  t.same(names(mirror.values()), names(inf.list()));
  const watches = fake.calls.filter((c) => c.method === 'WATCH');
  t.ok(watches.length >= 4, 'watch retried');
  t.equal(fake.calls.filter((c) => c.method === 'GET').length, 2, 'one list at start, one relist after 410');
});

t.test('410 Gone as the HTTP status of the watch', async (t) => {
  const { fake, inf, log } = setup(t);
  await fake.create(path, configMap('a', { v: '1' }));
  inf.start();
  await inf.synced();
  await until('the watch to open', () => fake.openWatches === 1);
  fake.failNext(new KubeApiError(KubeErrorCode.Gone, 'GET', path, 410, 'Expired', 'too old resource version'), { method: 'WATCH' });
  fake.disconnectWatches();
  await until('a relist', () => fake.calls.filter((c) => c.method === 'GET').length === 2);
  await fake.mergePatch(`${path}/a`, { data: { v: '2' } });
  await until('the update after the relist', () => inf.get('ns1/a')?.data?.v === '2');
  t.same(log, ['add a', 'update a 1->2']);
});

t.test('expired watches (ERROR 410 on an open stream) relist too', async (t) => {
  const { fake, inf, log } = setup(t);
  await fake.create(path, configMap('a'));
  inf.start();
  await inf.synced();
  await until('the watch to open', () => fake.openWatches === 1);
  fake.expireWatches();
  await until('a relist', () => fake.calls.filter((c) => c.method === 'GET').length === 2);
  t.same(log, ['add a'], 'nothing changed, nothing emitted');
});

t.test('a clean disconnect resumes from the last version without a relist', async (t) => {
  const { fake, inf, log } = setup(t);
  await fake.create(path, configMap('a', { v: '1' }));
  inf.start();
  await inf.synced();
  await until('the watch to open', () => fake.openWatches === 1);
  await fake.mergePatch(`${path}/a`, { data: { v: '2' } });
  await until('the update', () => log.length === 2);
  const rv = inf.lastSyncResourceVersion;
  fake.disconnectWatches();
  await until('the watch to reopen', () => fake.calls.filter((c) => c.method === 'WATCH').length === 2 && fake.openWatches === 1);
  t.same(fake.calls.filter((c) => c.method === 'WATCH').at(-1)?.body, { resourceVersion: rv }, 'resumed from the last version seen');
  t.equal(fake.calls.filter((c) => c.method === 'GET').length, 1, 'no relist');
  fake.bookmark();
  await until('the bookmark to move the version', () => inf.lastSyncResourceVersion === fake.resourceVersion);
});

t.test('list failures back off with a bound and are reported; synced after recovery', async (t) => {
  const { fake, inf, errors } = setup(t);
  await fake.create(path, configMap('a'));
  fake.failNext(503, { method: 'GET', times: 3 });
  const started = performance.now();
  inf.start();
  await inf.synced();
  t.equal(errors.length, 3);
  t.ok(errors.every((e) => e instanceof KubeApiError && e.code === KubeErrorCode.Unavailable));
  t.ok(performance.now() - started >= 5 * 0.5 + 10 * 0.5 + 20 * 0.5 - 1, 'waited between attempts');
  t.equal(inf.list().length, 1);
});

t.test('backoffDelay grows exponentially within bounds, jittered 50-100%', async (t) => {
  const b = { initialMs: 100, maxMs: 1000 };
  t.same([1, 2, 3, 4, 5, 50].map((n) => backoffDelay(n, b, () => 1)), [100, 200, 400, 800, 1000, 1000]);
  t.same([1, 2, 5].map((n) => backoffDelay(n, b, () => 0)), [50, 100, 500]);
});

t.test('a throwing handler is reported and does not stop the stream', async (t) => {
  const { fake, inf, errors, log } = setup(t);
  inf.on('add', (o) => {
    if (o.metadata.name === 'bad') throw new Error('handler bug');
  });
  inf.start();
  await inf.synced();
  await fake.create(path, configMap('bad'));
  await fake.create(path, configMap('good'));
  await until('both adds', () => log.length === 2);
  t.same(log, ['add bad', 'add good']);
  t.match(String(errors[0]), /handler bug/);
});

t.test('stored objects are frozen unless freeze is false; selectors pass through', async (t) => {
  const frozen = setup(t);
  await frozen.fake.create(path, configMap('a', { v: '1' }));
  frozen.inf.start();
  await frozen.inf.synced();
  t.ok(Object.isFrozen(frozen.inf.get('ns1/a')?.data));
  const loose = setup(t, { freeze: false });
  await loose.fake.create(path, configMap('a', { v: '1' }));
  loose.inf.start();
  await loose.inf.synced();
  t.notOk(Object.isFrozen(loose.inf.get('ns1/a')));

  const fake = new FakeKubeClient();
  await fake.create(path, configMap('x', {}, { app: 'purelb' }));
  await fake.create(path, configMap('y', {}, { app: 'other' }));
  const sel = new Informer<ConfigMap>(fake, { path, labelSelector: 'app=purelb' });
  t.teardown(() => sel.stop());
  sel.start();
  await sel.synced();
  t.same(sel.list().map((o) => o.metadata.name), ['x']);
  await fake.create(path, configMap('z', {}, { app: 'other' }));
  await fake.create(path, configMap('w', {}, { app: 'purelb' }));
  await until('w', () => sel.get('ns1/w') !== undefined);
  t.equal(sel.get('ns1/z'), undefined, 'the selector applies to the watch');
});

t.test('resync re-delivers cached objects as updates', async (t) => {
  const { fake, inf, log } = setup(t, { resyncMs: 30 });
  await fake.create(path, configMap('a', { v: '1' }));
  inf.start();
  await inf.synced();
  await until('a resync', () => log.includes('update a 1->1'), 2000);
  t.pass('update(obj, obj) seen');
});

t.test('stop() ends the loop, rejects synced() if never synced, and is idempotent', async (t) => {
  const fake = new FakeKubeClient();
  fake.failNext(503, { method: 'GET', times: 1000 });
  const inf = new Informer<ConfigMap>(fake, { path, backoff: { initialMs: 5, maxMs: 10 } });
  inf.start();
  inf.start();
  await sleep(30);
  await inf.stop();
  await t.rejects(inf.synced(), { code: KubeErrorCode.Aborted });
  await inf.stop();
  const calls = fake.calls.length;
  await sleep(50);
  t.equal(fake.calls.length, calls, 'no request after stop');
});
