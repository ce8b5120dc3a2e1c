// The lab itself, against the real kube-apiserver and real network namespaces.
import t from 'tap';
import { KubeClient, LAN, run, waitFor, withLab } from '../src/index.ts';

const lab = await withLab(t, { nodes: 3 });
const admin = lab.controlPlane.admin;

t.test('the API server answers with the version tools/kube built', async (t) => {
  const v = await admin.get<{ gitVersion: string }>('/version');
  t.match(v.gitVersion, /^v1\.34\.\d+$/);
});

t.test('RBAC is enforced', async (t) => {
  const anonymous = new KubeClient({ url: lab.controlPlane.url, caPem: lab.controlPlane.caPem });
  const nobody = new KubeClient({ url: lab.controlPlane.url, caPem: lab.controlPlane.caPem, token: lab.controlPlane.nobodyToken });
  t.equal((await admin.raw('GET', '/api/v1/namespaces')).status, 200, 'the admin token may list namespaces');
  t.ok([401, 403].includes((await anonymous.raw('GET', '/api/v1/namespaces')).status), 'an unauthenticated client may not');
  t.equal((await anonymous.raw('GET', '/api/v1/namespaces', undefined, 'application/json')).body.includes('"NamespaceList"'), false);
  t.equal((await nobody.raw('GET', '/api/v1/namespaces')).status, 403, 'an authenticated user without a binding may not');
  // The built-in `view` role is aggregated by kube-controller-manager, which the lab does
  // not run, so an explicit role is bound.
  await admin.create('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'lab-service-reader' },
    rules: [{ apiGroups: [''], resources: ['services'], verbs: ['get', 'list'] }],
  });
  t.teardown(() => admin.delete('/apis/rbac.authorization.k8s.io/v1/clusterroles/lab-service-reader'));
  await admin.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'lab-nobody-view' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'lab-service-reader' },
    subjects: [{ kind: 'User', name: 'lab-nobody', apiGroup: 'rbac.authorization.k8s.io' }],
  });
  t.teardown(() => admin.delete('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/lab-nobody-view'));
  await waitFor('the binding to take effect', async () => ((await nobody.raw('GET', '/api/v1/namespaces/default/services')).status === 200 ? true : undefined), 10_000);
  t.equal((await nobody.raw('GET', '/api/v1/namespaces/default/services')).status, 200, 'with a binding it may read services');
  t.equal((await nobody.raw('DELETE', '/api/v1/namespaces/default/services/kubernetes')).status, 403, 'but still not write');
});

t.test('a CRD installs and a custom resource round-trips', async (t) => {
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'widgets.lab.purelb.io' },
    spec: {
      group: 'lab.purelb.io',
      scope: 'Namespaced',
      names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { pool: { type: 'string' }, size: { type: 'integer' } } } } } },
        },
      ],
    },
  };
  await admin.create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  t.teardown(() => admin.delete('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.lab.purelb.io'));
  await waitFor(
    'the CRD to be Established',
    async () => {
      const got = await admin.get<{ status?: { conditions?: { type: string; status: string }[] } }>('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.lab.purelb.io');
      return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    },
    20_000,
  );
  const path = '/apis/lab.purelb.io/v1/namespaces/default/widgets';
  await waitFor('the new API to be served', async () => ((await admin.raw('GET', path)).status === 200 ? true : undefined), 20_000);
  await admin.create(path, { apiVersion: 'lab.purelb.io/v1', kind: 'Widget', metadata: { name: 'w1' }, spec: { pool: '192.0.2.10-192.0.2.20', size: 11, unknown: 'pruned' } });
  const back = await admin.get<{ spec: Record<string, unknown> }>(`${path}/w1`);
  t.same(back.spec, { pool: '192.0.2.10-192.0.2.20', size: 11 }, 'fields round-trip and unknown fields are pruned by the schema');
  const bad = await admin.raw('POST', path, { apiVersion: 'lab.purelb.io/v1', kind: 'Widget', metadata: { name: 'w2' }, spec: { size: 'eleven' } });
  t.equal(bad.status, 422, 'the schema is enforced');
});

t.test('a LoadBalancer Service gets ClusterIPs of both families', async (t) => {
  await lab.createDemoService('demo', { families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' });
  const svc = await admin.get<{ spec: { type: string; clusterIPs: string[] }; status: unknown }>('/api/v1/namespaces/default/services/demo');
  t.equal(svc.spec.type, 'LoadBalancer');
  t.equal(svc.spec.clusterIPs.length, 2);
  t.match(svc.spec.clusterIPs[0], /^10\.96\.\d+\.\d+$/);
  t.match(svc.spec.clusterIPs[1], /^2001:db8:ffff:/);
  const slices = await admin.get<{ items: { addressType: string; endpoints: { nodeName: string }[] }[] }>(
    '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Ddemo',
  );
  t.same(slices.items.map((s) => s.addressType).sort(), ['IPv4', 'IPv6']);
  t.same(slices.items[0]?.endpoints.map((e) => e.nodeName), ['node-1', 'node-2', 'node-3']);
});

t.test('Node objects carry their LAN addresses', async (t) => {
  const nodes = await admin.get<{ items: { metadata: { name: string }; status: { addresses: { type: string; address: string }[] } }[] }>('/api/v1/nodes');
  t.same(
    nodes.items.map((n) => [n.metadata.name, n.status.addresses.filter((a) => a.type === 'InternalIP').map((a) => a.address)]),
    lab.nodes.map((n) => [n.name, [n.v4, n.v6]]),
  );
  const out = await run('kubectl', ['--kubeconfig', lab.kubeconfigPath, 'get', 'nodes', '-o', 'name']);
  t.same(out.trim().split('\n'), ['node/node-1', 'node/node-2', 'node/node-3'], 'kubectl works with the written kubeconfig');
});

t.test('every namespace reaches every other over v4 and v6', async (t) => {
  const targets = [...lab.nodes.map((n) => ({ name: n.name, netns: n.netns, v4: n.v4, v6: n.v6 })), { name: 'client', netns: lab.network.clientNetns, v4: LAN.clientV4, v6: LAN.clientV6 }];
  for (const from of targets) {
    const others = targets.filter((x) => x !== from);
    const results = await lab.probe(from.netns, others.flatMap((o) => [`http://${o.v4}/`, `http://[${o.v6}]/`]));
    const got = results.map((r) => `${r.url} ${r.ok ? r.body : `FAILED ${r.error ?? ''}`}`);
    const want = others.flatMap((o) => [`http://${o.v4}/ ${o.name}`, `http://[${o.v6}]/ ${o.name}`]);
    t.same(got, want, `from ${from.name}`);
  }
});

t.test('node namespaces reach the API server', async (t) => {
  for (const n of lab.nodes) {
    const out = await run('ip', [
      'netns', 'exec', n.netns, 'curl', '-sS', '--max-time', '5', '--cacert', `${lab.dir}/certs/apiserver.crt`,
      '-H', `Authorization: Bearer ${lab.controlPlane.adminToken}`, `${lab.controlPlane.url}/api/v1/nodes/${n.name}`,
    ]);
    t.equal((JSON.parse(out) as { metadata: { name: string } }).metadata.name, n.name, `${n.name} reads its own Node`);
  }
});

t.test('the API server restarts on the same port and keeps its data', async (t) => {
  await admin.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'survives-restart' } });
  const before = lab.controlPlane.processes.find((p) => p.name === 'kube-apiserver')!.pid;
  await lab.controlPlane.restartApiServer({ kill: true });
  const after = lab.controlPlane.processes.find((p) => p.name === 'kube-apiserver')!.pid;
  t.not(after, before, 'a new process');
  t.equal((await admin.raw('GET', '/api/v1/namespaces/survives-restart')).status, 200, 'etcd kept the data');
});
