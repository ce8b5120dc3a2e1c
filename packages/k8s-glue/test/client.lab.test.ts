// The API client against the lab's real kube-apiserver.
import t from 'tap';
import { withLab } from '@purelb/lab';
import { KubeApiError, KubeClient, KubeErrorCode, loadKubeConfig } from '../src/index.ts';
import { adminClient, type ConfigMap, configMap, testNamespace } from './helpers.ts';

const lab = await withLab(t, { nodes: 1 });
const client = adminClient(lab);
t.teardown(() => client.close());

async function rejects(p: Promise<unknown>): Promise<KubeApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KubeApiError) return e;
    throw e;
  }
  throw new Error('expected a KubeApiError, the call succeeded');
}

t.test('a client from the lab kubeconfig reaches the server', async (t) => {
  const fromFile = new KubeClient(loadKubeConfig({ kubeconfig: lab.kubeconfigPath }));
  t.teardown(() => fromFile.close());
  const v = await fromFile.get<{ gitVersion: string }>('/version');
  t.match(v.gitVersion, /^v1\.34\./);
  t.equal(fromFile.config.namespace, 'default', 'the context namespace is carried');
});

t.test('create, get, paged list, patches, replace and delete', async (t) => {
  const ns = await testNamespace(t, client, 'glue-crud');
  const base = `/api/v1/namespaces/${ns}/configmaps`;
  for (let i = 0; i < 5; i++) await client.create(base, configMap(`cm-${i}`, { i: String(i) }, { app: i % 2 ? 'odd' : 'even' }), { fieldManager: 'glue-test' });
  const got = await client.get<ConfigMap>(`${base}/cm-1`);
  t.same(got.data, { i: '1' });

  const all = await client.list<ConfigMap>(base, { pageSize: 2 });
  t.same(all.items.map((c) => c.metadata.name), ['cm-0', 'cm-1', 'cm-2', 'cm-3', 'cm-4'], 'three pages joined in order');
  t.match(all.metadata.resourceVersion, /^\d+$/);
  const counts = client.requestCounts();
  const odd = await client.list<ConfigMap>(base, { labelSelector: 'app=odd', pageSize: 0 });
  t.same(odd.items.map((c) => c.metadata.name), ['cm-1', 'cm-3'], 'label selector');
  t.equal(client.requestCounts().GET, (counts.GET ?? 0) + 1, 'pageSize 0 is one request');

  const merged = await client.mergePatch<ConfigMap>(`${base}/cm-0`, { data: { extra: 'x', i: null } });
  t.same(merged.data, { extra: 'x' }, 'merge patch adds and removes');
  const jp = await client.jsonPatch<ConfigMap>(`${base}/cm-0`, [
    { op: 'test', path: '/data/extra', value: 'x' },
    { op: 'replace', path: '/data/extra', value: 'y' },
  ]);
  t.same(jp.data, { extra: 'y' }, 'json patch');
  const failedTest = await rejects(client.jsonPatch(`${base}/cm-0`, [{ op: 'test', path: '/data/extra', value: 'nope' }]));
  t.equal(failedTest.code, KubeErrorCode.Invalid, `a failed test operation is refused: ${failedTest.message}`);

  const applied = await client.applyPatch<ConfigMap>(`${base}/cm-9`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm-9' }, data: { a: '1' } }, 'glue-apply', true);
  t.same(applied.data, { a: '1' }, 'server-side apply creates');
  const reapplied = await client.applyPatch<ConfigMap>(`${base}/cm-9`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm-9' }, data: { b: '2' } }, 'glue-apply');
  t.same(reapplied.data, { b: '2' }, 'and the same manager owns and replaces its fields');

  const stale = { ...got, data: { i: 'stale' } };
  const updated = await client.replace<ConfigMap>(`${base}/cm-1`, { ...got, data: { i: 'new' } });
  t.not(updated.metadata.resourceVersion, got.metadata.resourceVersion);
  const conflict = await rejects(client.replace(`${base}/cm-1`, stale));
  t.equal(conflict.code, KubeErrorCode.Conflict);
  t.equal(conflict.status, 409);
  t.equal(conflict.reason, 'Conflict');
  t.match(conflict.message, new RegExp(`^PUT ${base}/cm-1: HTTP 409 Conflict: `), 'the message names method, path and reason');

  const exists = await rejects(client.create(base, configMap('cm-2')));
  t.equal(exists.code, KubeErrorCode.AlreadyExists);

  const deleted = await client.delete<{ kind: string }>(`${base}/cm-2`);
  t.equal(deleted?.kind, 'Status', 'a delete answers with a Status or the object');
  const missing = await rejects(client.get(`${base}/cm-2`));
  t.equal(missing.code, KubeErrorCode.NotFound);
  t.equal(missing.reason, 'NotFound');
  t.match(missing.message, `GET ${base}/cm-2: HTTP 404 NotFound:`);
  t.equal(await client.delete(`${base}/cm-2`, { ignoreNotFound: true }), undefined, 'a tolerated 404');
  t.equal((await rejects(client.delete(`${base}/cm-2`))).code, KubeErrorCode.NotFound, 'an untolerated 404');

  const invalid = await rejects(client.create(base, configMap('Not_A_Name')));
  t.equal(invalid.code, KubeErrorCode.Invalid);
  t.equal(invalid.status, 422);

  const c = client.requestCounts();
  for (const verb of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) t.ok((c[verb] ?? 0) > 0, `requests by verb count ${verb}`);
});

t.test('authentication and authorization failures', async (t) => {
  const cp = lab.controlPlane;
  const nobody = new KubeClient({ server: cp.url, caPem: cp.caPem, token: () => cp.nobodyToken });
  const wrong = new KubeClient({ server: cp.url, caPem: cp.caPem, token: 'not-a-token' });
  t.teardown(() => {
    nobody.close();
    wrong.close();
  });
  const forbidden = await rejects(nobody.get('/api/v1/namespaces/default/services'));
  t.equal(forbidden.code, KubeErrorCode.Forbidden);
  t.equal(forbidden.reason, 'Forbidden');
  t.equal((await rejects(wrong.get('/api/v1/namespaces'))).code, KubeErrorCode.Unauthorized);
  const untrusted = new KubeClient({ server: cp.url, token: cp.adminToken });
  t.teardown(() => untrusted.close());
  const tls = await rejects(untrusted.get('/version'));
  t.equal(tls.code, KubeErrorCode.Unavailable, `a server certificate from an unknown CA is refused: ${tls.message}`);
});

t.test('transport failures and bounds', async (t) => {
  const closed = new KubeClient({ server: 'https://127.0.0.1:1', caPem: lab.controlPlane.caPem });
  t.teardown(() => closed.close());
  const refused = await rejects(closed.get('/version'));
  t.equal(refused.code, KubeErrorCode.Unavailable);
  t.equal(refused.status, 0);
  t.match(refused.message, 'ECONNREFUSED');

  const slow = await rejects(client.get('/api/v1/namespaces', { timeoutMs: 1 }));
  t.equal(slow.code, KubeErrorCode.Timeout);

  const ac = new AbortController();
  ac.abort();
  t.equal((await rejects(client.get('/version', { signal: ac.signal }))).code, KubeErrorCode.Aborted);
});

t.test('watch streams changes from a list version, in order', async (t) => {
  const ns = await testNamespace(t, client, 'glue-watch');
  const base = `/api/v1/namespaces/${ns}/configmaps`;
  await client.create(base, configMap('before'));
  const list = await client.list<ConfigMap>(base);
  const ac = new AbortController();
  const seen: string[] = [];
  const timer = setTimeout(() => ac.abort(), 15_000);
  t.teardown(() => clearTimeout(timer));
  const done = (async () => {
    for await (const ev of client.watch<ConfigMap>(base, { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 30, signal: ac.signal })) {
      if (ev.type === 'BOOKMARK') continue;
      seen.push(`${ev.type} ${ev.object.metadata.name} ${JSON.stringify(ev.object.data ?? {})}`);
      if (seen.length === 3) ac.abort();
    }
  })();
  await new Promise((r) => setTimeout(r, 200));
  await client.create(base, configMap('w', { v: '1' }));
  await client.mergePatch(`${base}/w`, { data: { v: '2' } });
  await client.delete(`${base}/w`);
  await done;
  t.same(seen, ['ADDED w {"v":"1"}', 'MODIFIED w {"v":"2"}', 'DELETED w {"v":"2"}'], 'the object "before" is not replayed; changes come in order');
  t.ok((client.requestCounts().WATCH ?? 0) >= 1, 'watches are counted');
});
