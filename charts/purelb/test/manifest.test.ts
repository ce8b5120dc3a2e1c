// deploy/purelb-complete.yaml on a fresh API server: one kubectl apply succeeds; what the
// apps create at start (bootstrap=apps) is accepted from their own ServiceAccounts; and the
// allocator's bundle, run on that ServiceAccount's token, allocates an address and serves
// /metrics on HTTPS to a token allowed by purelb:metrics-reader only (401, 403, 200).
import { copyFileSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import t from 'tap';
import { KubeClient, ManagedProcess, parseYamlObjects, waitFor, withLab } from '@purelb/lab';
import { APP_BUNDLES, bundleApp } from '../../../tools/bundle.ts';
import { MANIFEST_PATH } from '../../../tools/manifest.ts';
import { Tools, ensureNamespace, serviceAccountToken, serviceAddress, tempDir, tokenKubeconfig, type KObject } from './helpers.ts';

const NS = 'purelb';
const tools = await Tools.create(t);
const manifest = readFileSync(MANIFEST_PATH, 'utf8');
const manifestObjects = parseYamlObjects(manifest) as unknown as KObject[];

interface EnvVar {
  name: string;
  value?: string;
}
type Workload = KObject & { spec: { template: { spec: { containers: { env?: EnvVar[] }[] } } } };

/** The JSON object the chart hands an app in `env` (what the app creates when absent). */
function bootstrapObject(kind: string, name: string, env: string): KObject {
  const w = manifestObjects.find((o) => o.kind === kind && o.metadata.name === name) as Workload | undefined;
  const value = w?.spec.template.spec.containers[0]?.env?.find((e) => e.name === env)?.value;
  if (!value) throw new Error(`${kind}/${name} in the manifest has no ${env}`);
  return JSON.parse(value) as KObject;
}

t.test('a fresh API server: one kubectl apply of the manifest succeeds', async (t) => {
  const lab = await withLab(t, { nodes: 1 });
  const cp = lab.controlPlane;
  const admin = cp.admin;
  const dir = tempDir(t);

  const applied = await tools.kubectlStatus(['apply', '-f', MANIFEST_PATH], { kubeconfig: cp.kubeconfigPath });
  t.equal(applied.code, 0, `the first apply exits 0${applied.code ? `:\n${applied.stderr}` : ''}`);
  t.equal(applied.stderr.trim(), '', 'and prints no error or warning');
  t.equal(applied.stdout.trim().split('\n').length, manifestObjects.length, `all ${manifestObjects.length} objects created`);
  const got = await tools.kubectlStatus(['get', '-f', MANIFEST_PATH, '-o', 'name'], { kubeconfig: cp.kubeconfigPath });
  t.equal(got.code, 0);
  t.equal(got.stdout.trim().split('\n').length, manifestObjects.length, 'every object of the manifest exists');
  for (const crd of ['lbnodeagents.purelb.io', 'servicegroups.purelb.io']) {
    await tools.kubectl(['wait', '--for=condition=Established', '--timeout=30s', `crd/${crd}`], { kubeconfig: cp.kubeconfigPath });
  }
  // Established is not yet served: the API server still initializes the new storage.
  for (const kind of ['lbnodeagents', 'servicegroups']) {
    await waitFor(`purelb.io/v1 ${kind} to be served`, async () => ((await admin.raw('GET', `/apis/purelb.io/v1/namespaces/${NS}/${kind}`)).status === 200 ? true : undefined), 30_000);
  }
  const ns = await admin.get<KObject>(`/api/v1/namespaces/${NS}`);
  t.equal(ns.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'privileged', 'the namespace admits the agent (host network, NET_ADMIN)');
  const again = await tools.kubectlStatus(['apply', '-f', MANIFEST_PATH], { kubeconfig: cp.kubeconfigPath });
  t.equal(again.code, 0, 'a second apply is a no-op that also succeeds');
  t.match(again.stdout, /deployment\.apps\/allocator unchanged/);

  t.test('what the apps create when absent is accepted, from their own ServiceAccounts', async (t) => {
    const allocator = new KubeClient({ url: cp.url, caPem: cp.caPem, token: await serviceAccountToken(admin, NS, 'allocator') });
    const agent = new KubeClient({ url: cp.url, caPem: cp.caPem, token: await serviceAccountToken(admin, NS, 'lbnodeagent') });
    t.equal((await allocator.get<{ items: unknown[] }>(`/apis/purelb.io/v1/namespaces/${NS}/servicegroups`)).items.length, 0, 'no ServiceGroup yet');
    const sg = bootstrapObject('Deployment', 'allocator', 'PURELB_DEFAULT_SERVICEGROUP');
    t.equal((await allocator.raw('POST', `/apis/purelb.io/v1/namespaces/${NS}/servicegroups`, sg)).status, 201, 'the allocator creates the sample ServiceGroup');
    const lbna = bootstrapObject('DaemonSet', 'lbnodeagent', 'PURELB_DEFAULT_LBNODEAGENT');
    t.equal((await agent.raw('POST', `/apis/purelb.io/v1/namespaces/${NS}/lbnodeagents`, lbna)).status, 201, 'the first agent creates the default LBNodeAgent');
    t.equal((await agent.raw('POST', `/apis/purelb.io/v1/namespaces/${NS}/lbnodeagents`, lbna)).status, 409, 'the next one finds it there');
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'purelb-memberlist', namespace: NS }, type: 'Opaque', stringData: { key: Buffer.alloc(32, 1).toString('base64') } };
    t.equal((await agent.raw('POST', `/api/v1/namespaces/${NS}/secrets`, secret)).status, 201, 'the first agent creates the gossip Secret');
    t.equal((await agent.raw('POST', `/api/v1/namespaces/${NS}/secrets`, secret)).status, 409, 'the next one finds it there');
    t.equal((await agent.raw('GET', `/api/v1/namespaces/${NS}/secrets/purelb-memberlist`)).status, 200, 'and reads it');
    await admin.create(`/api/v1/namespaces/${NS}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'netbox-client' }, stringData: { 'user-token': 'x' } });
    t.equal((await agent.raw('GET', `/api/v1/namespaces/${NS}/secrets/netbox-client`)).status, 403, 'but still reads no other Secret');
    t.equal((await agent.raw('GET', `/api/v1/namespaces/${NS}/secrets`)).status, 403, 'nor lists them');
    t.equal((await allocator.raw('GET', `/api/v1/namespaces/${NS}/secrets/purelb-memberlist`)).status, 403, 'the allocator may not read the gossip Secret');
  });

  t.test('the allocator bundle, alone in a directory, allocates on its ServiceAccount token', async (t) => {
    const work = tempDir(t, 'plb-manifest-bundle-');
    const built = await bundleApp('allocator', { ...APP_BUNDLES.allocator, outfile: join(work, 'dist', 'allocator.mjs') });
    const app = tempDir(t, 'plb-manifest-app-');
    const bundle = join(app, 'allocator.mjs');
    copyFileSync(built.outfile, bundle);
    const kubeconfigPath = tokenKubeconfig(cp, dir, 'allocator', await serviceAccountToken(admin, NS, 'allocator'));
    // The manifest's Deployment passes settings as env; the pod's namespace comes from the downward API.
    const p = new ManagedProcess('allocator bundle', process.execPath, [bundle, '--identity=bundle-0', '--metrics-host=127.0.0.1', '--metrics-port=0', '--health-port=0'], {
      PATH: process.env.PATH,
      KUBECONFIG: kubeconfigPath,
      POD_NAMESPACE: NS,
      PURELB_LOG_LEVEL: 'info',
    });
    t.teardown(() => p.stop());
    await waitFor(
      'the bundled allocator to sync its caches',
      () => {
        if (!p.running) throw new Error(`the bundle exited:\n${p.tail(30)}`);
        return p.tail(200).includes('caches synced') ? true : undefined;
      },
      30_000,
      25,
    );
    await ensureNamespace(admin, 'bundle-apps');
    t.same(await serviceAddress(admin, 'bundle-apps', 'web'), ['192.0.2.240'], 'the Service got the first address of the sample group');
    const lease = await admin.get<{ spec: { holderIdentity?: string } }>(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/purelb-allocator`);
    t.equal(lease.spec.holderIdentity, 'bundle-0');
    t.notMatch(p.tail(200), /forbidden/i, 'no request was refused (a 403 always says Forbidden)');

    // /metrics is secure by default: HTTPS, and a scraper's token is checked with the API
    // server from the allocator's own ServiceAccount (the manifest's auth-delegator binding).
    const ports = /"port":(\d+),"healthPort":(\d+),"secure":true,"selfSigned":true[^\n]*serving \/metrics/.exec(p.tail(200));
    t.ok(ports, 'the bundle serves secure metrics with a self-signed certificate by default');
    const [metricsPort, healthPort] = [Number(ports?.[1]), Number(ports?.[2])];
    for (const sa of ['prometheus', 'nosy']) await admin.create(`/api/v1/namespaces/${NS}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa } });
    const reader = manifestObjects.find((o) => o.kind === 'ClusterRole' && o.metadata.name === 'purelb:metrics-reader');
    t.ok(reader, 'the manifest has the ClusterRole purelb:metrics-reader');
    await admin.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'test-prometheus-metrics-reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'purelb:metrics-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'prometheus', namespace: NS }],
    });
    t.teardown(async () => {
      await admin.raw('DELETE', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/test-prometheus-metrics-reader');
    });
    const scrape = (token?: string) => httpsGet(metricsPort, '/metrics', token);
    const none = await scrape();
    t.equal(none.status, 401, 'no token: 401');
    t.notMatch(none.body, /purelb_/, 'and no metrics');
    t.equal((await scrape('not-a-token')).status, 401, 'a bad token: 401');
    const nosy = await scrape(await serviceAccountToken(admin, NS, 'nosy'));
    t.equal(nosy.status, 403, 'a ServiceAccount without the metrics-reader binding: 403');
    t.match(nosy.body, /system:serviceaccount:purelb:nosy" may not get \/metrics/);
    const ok = await scrape(await serviceAccountToken(admin, NS, 'prometheus'));
    t.equal(ok.status, 200, 'a ServiceAccount bound to purelb:metrics-reader: 200');
    t.match(ok.body, /^purelb_build_info\{.*component="allocator"\} 1$/m, 'with the metrics');
    await t.rejects(fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) }), 'no plain HTTP on the metrics port');
    for (const path of ['/healthz', '/readyz']) t.equal((await fetch(`http://127.0.0.1:${healthPort}${path}`, { signal: AbortSignal.timeout(5000) })).status, 200, `${path}: plain HTTP, no token`);
    t.equal((await fetch(`http://127.0.0.1:${healthPort}/metrics`, { signal: AbortSignal.timeout(5000) })).status, 404, 'the probe port serves no metrics');
  });
});

/** GET over HTTPS on loopback, without verifying the self-signed certificate (as a ServiceMonitor's insecureSkipVerify). */
function httpsGet(port: number, path: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path, rejectUnauthorized: false, timeout: 10_000, headers: token ? { authorization: `Bearer ${token}` } : {} },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET https://127.0.0.1:${port}${path}: no answer in 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

t.test('for contrast: the chart with its custom resources in one file fails a fresh first apply', async (t) => {
  const lab = await withLab(t, { nodes: 1 });
  const naive = await tools.template({ includeCrds: true, set: ['createNamespace=true'] });
  t.match(naive, /^kind: LBNodeAgent$/m, 'this render carries the custom resources');
  const r = await tools.kubectlStatus(['apply', '-f', '-'], { kubeconfig: lab.controlPlane.kubeconfigPath, input: naive });
  t.equal(r.code, 1, 'kubectl fails');
  t.match(r.stderr, /no matches for kind "LBNodeAgent"[\s\S]*ensure CRDs are installed first/, 'because the CRDs are not established when the objects are mapped');
});
