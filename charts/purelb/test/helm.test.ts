// The chart against the lab's real API server: every render accepted by the server,
// helm install and upgrade (the gossip key survives), the allocator run with its own
// ServiceAccount's token, the agent's API calls made with its token, and a can-i matrix
// showing neither ServiceAccount can do more than it needs.
import { copyFileSync, cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { KubeClient, LAB_VIRTUAL_LINK_KIND, type Lab, ManagedProcess, installCrds, startAllocator, waitFor, withLab } from '@purelb/lab';
import { APP_BUNDLES, bundleApp } from '../../../tools/bundle.ts';
import { CHART_DIR, Tools, ensureNamespace, objects, serviceAccountToken, serviceAddress, tempDir, tokenKubeconfig, type KObject } from './helpers.ts';

const NS = 'purelb';
const APPS_NS = 'chart-apps';
const REFERENCE_TOLERATIONS = '---\nallocator:\n  tolerations:\n  - effect: NoSchedule\n    key: node-role.kubernetes.io/master\n';

const tools = await Tools.create(t);
const lab: Lab = await withLab(t, { nodes: 1 });
const cp = lab.controlPlane;
const admin = cp.admin;
const dir = tempDir(t);
const kc = cp.kubeconfigPath;
const rootTeardown = (fn: () => Promise<void>): void => t.teardown(fn);

interface Secret {
  data: Record<string, string>;
}

t.test('every render is accepted by the API server (kubectl apply --dry-run=server)', async (t) => {
  // Namespaced custom resources need their CRDs; the monitoring cases stand-in CRDs
  // (test/fixtures/*-crd.yaml: prometheus-operator's field names and types for the fields
  // the chart writes; strict field validation refuses anything else).
  await installCrds(admin);
  for (const kind of ['servicemonitor', 'podmonitor', 'prometheusrule']) {
    await tools.kubectl(['apply', '-f', join(import.meta.dirname, 'fixtures', `${kind}-crd.yaml`)], { kubeconfig: kc });
    await tools.kubectl(['wait', '--for=condition=Established', '--timeout=30s', `crd/${kind}s.monitoring.coreos.com`], { kubeconfig: kc });
  }
  const dryNs = 'purelb-dry';
  await ensureNamespace(admin, dryNs);
  const cases: [string, Parameters<Tools['template']>[0]][] = [
    ['default values', {}],
    ['the reference page\'s tolerations file', { values: [REFERENCE_TOLERATIONS] }],
    ['--set=lbnodeagent.sendgarp=true', { set: ['lbnodeagent.sendgarp=true'] }],
    ['3 replicas, agent tolerations, no sample group, no default LBNodeAgent', { set: ['allocator.replicas=3', 'serviceGroup.create=false', 'lbnodeagent.createDefault=false'], values: ['lbnodeagent:\n  tolerations:\n  - operator: Exists\n  priorityClassName: system-node-critical\n'] }],
    ['no Netbox token Secret', { values: ['allocator:\n  netboxSecretNames: []\n'] }],
    ['ServiceMonitor on', { set: ['metrics.serviceMonitor.enabled=true', 'metrics.serviceMonitor.labels.release=prom'] }],
    [
      'ServiceMonitor with relabelings and annotations, PodMonitor, PrometheusRule, no scrape annotations',
      {
        set: ['metrics.serviceMonitor.enabled=true', 'metrics.serviceMonitor.annotations.owner=net', 'metrics.podMonitor.enabled=true', 'metrics.tokenSecret.name=prometheus-token', 'metrics.prometheusRule.enabled=true', 'metrics.prometheusRule.additionalLabels.release=prom', 'metrics.scrapeAnnotations=false'],
        values: ['metrics:\n  serviceMonitor:\n    relabelings: [{sourceLabels: [__meta_kubernetes_pod_name], targetLabel: instance}]\n    metricRelabelings: [{sourceLabels: [__name__], regex: purelb_allocator_process_.*, action: drop}]\n  podMonitor:\n    relabelings: [{action: labeldrop, regex: pod}]\n'],
      },
    ],
    [
      'secure metrics with a certificate Secret, CA verification, reader subjects, the Grafana dashboard',
      {
        set: ['metrics.serviceMonitor.enabled=true', 'metrics.certSecret=purelb-metrics-tls', 'grafanaDashboard.enabled=true'],
        values: ['metrics:\n  tlsConfig: {ca: {secret: {name: purelb-metrics-tls, key: ca.crt}}, serverName: allocator-metrics.purelb.svc}\n  readerSubjects: [{kind: ServiceAccount, name: prometheus-k8s, namespace: monitoring}]\n'],
      },
    ],
    ['plain metrics (metrics.secure=false)', { set: ['metrics.secure=false', 'metrics.serviceMonitor.enabled=true'] }],
    ['bootstrap=apps with the Namespace (the manifest\'s values)', { set: ['bootstrap=apps', 'createNamespace=true'] }],
    ['probes and security contexts overridden, a probe off', { set: ['allocator.livenessProbe.initialDelaySeconds=5', 'allocator.startupProbe.successThreshold=1', 'lbnodeagent.readinessProbe.enabled=false', 'lbnodeagent.livenessProbe.terminationGracePeriodSeconds=10', 'allocator.podSecurityContext.supplementalGroups={100}', 'lbnodeagent.securityContext.capabilities.add={NET_ADMIN}'] }],
    ['custom pools, image, ports and lease name', { set: ['allocator.image.tag=dev', 'lbnodeagent.memberlistPort=7946', 'allocator.leaderElection.leaseName=lb-leader', 'lbnodeagent.localint=^eth[0-9]+$'], values: ['serviceGroup:\n  name: lan\n  spec:\n    local:\n      v4pools:\n      - {subnet: 198.51.100.0/24, pool: 198.51.100.16/28, aggregation: /32}\n'] }],
  ];
  for (const [what, opts] of cases) {
    const rendered = await tools.template({ namespace: dryNs, ...opts });
    const kinds = [...objects(rendered).keys()];
    const out = await tools.kubectl(['apply', '--dry-run=server', '-f', '-'], { kubeconfig: kc, input: rendered });
    const accepted = out.split('\n').filter((l) => /\((server dry run)\)$/.test(l));
    t.equal(accepted.length, kinds.length, `${what}: all ${kinds.length} objects accepted by the server`);
  }
  // And the server really checks: a bad pool is refused by the ServiceGroup CRD's rules.
  const bad = await tools.template({ namespace: dryNs, values: ['serviceGroup:\n  spec:\n    local:\n      v4pools:\n      - {subnet: 192.0.2.0/24, pool: 198.51.100.1-198.51.100.9}\n'] });
  const refused = await tools.kubectlStatus(['apply', '--dry-run=server', '-f', '-'], { kubeconfig: kc, input: bad });
  t.not(refused.code, 0, 'a pool outside its subnet is refused by the server');
  t.match(refused.stderr, /ServiceGroup/);
});

let gossipKey = '';

t.test('helm install, as the install page writes it', async (t) => {
  const out = await tools.helm(['install', '--create-namespace', `--namespace=${NS}`, `--values=${writeValues('tolerations.yaml', REFERENCE_TOLERATIONS)}`, 'purelb', CHART_DIR], { kubeconfig: kc });
  t.match(out, /STATUS: deployed/);
  for (const path of [
    `/apis/apps/v1/namespaces/${NS}/deployments/allocator`,
    `/apis/apps/v1/namespaces/${NS}/daemonsets/lbnodeagent`,
    `/api/v1/namespaces/${NS}/serviceaccounts/allocator`,
    `/api/v1/namespaces/${NS}/serviceaccounts/lbnodeagent`,
    `/api/v1/namespaces/${NS}/services/allocator-metrics`,
    `/api/v1/namespaces/${NS}/services/lbnodeagent-metrics`,
    `/apis/purelb.io/v1/namespaces/${NS}/lbnodeagents/default`,
    `/apis/purelb.io/v1/namespaces/${NS}/servicegroups/default`,
    '/apis/rbac.authorization.k8s.io/v1/clusterroles/purelb:allocator',
    '/apis/rbac.authorization.k8s.io/v1/clusterroles/purelb:lbnodeagent',
  ]) {
    t.equal((await admin.raw('GET', path)).status, 200, `${path} exists`);
  }
  const d = await admin.get<{ spec: { template: { spec: { tolerations?: unknown[] } } } }>(`/apis/apps/v1/namespaces/${NS}/deployments/allocator`);
  t.same(d.spec.template.spec.tolerations, [{ effect: 'NoSchedule', key: 'node-role.kubernetes.io/master' }], 'the tolerations file reached the allocator');
  const s = await admin.get<Secret>(`/api/v1/namespaces/${NS}/secrets/purelb-memberlist`);
  gossipKey = s.data.key ?? '';
  t.equal(Buffer.from(Buffer.from(gossipKey, 'base64').toString('utf8'), 'base64').length, 32, 'a 32-byte gossip key was generated');
});

t.test('helm upgrade keeps the gossip key and applies new values', async (t) => {
  t.ok(gossipKey, 'installed first');
  t.equal((await admin.get<{ spec: { local: { sendgarp: boolean } } }>(`/apis/purelb.io/v1/namespaces/${NS}/lbnodeagents/default`)).spec.local.sendgarp, true, 'sendgarp on as installed');
  await tools.helm(['upgrade', `--namespace=${NS}`, '--reuse-values', '--set=lbnodeagent.sendgarp=false', 'purelb', CHART_DIR], { kubeconfig: kc });
  const lbna = await admin.get<{ spec: { local: { sendgarp: boolean } } }>(`/apis/purelb.io/v1/namespaces/${NS}/lbnodeagents/default`);
  t.equal(lbna.spec.local.sendgarp, false, '--set=lbnodeagent.sendgarp=false reached the LBNodeAgent');
  t.equal((await admin.get<Secret>(`/api/v1/namespaces/${NS}/secrets/purelb-memberlist`)).data.key, gossipKey, 'same key after the upgrade');
  // An operator adds a rotation key; the next upgrade keeps it too.
  const extra = Buffer.from(Buffer.alloc(32, 7).toString('base64')).toString('base64');
  await admin.mergePatch(`/api/v1/namespaces/${NS}/secrets/purelb-memberlist`, { data: { keys: extra } });
  await tools.helm(['upgrade', `--namespace=${NS}`, '--reuse-values', '--set=allocator.replicas=3', 'purelb', CHART_DIR], { kubeconfig: kc });
  const after = await admin.get<Secret>(`/api/v1/namespaces/${NS}/secrets/purelb-memberlist`);
  t.same(after.data, { key: gossipKey, keys: extra }, 'key and rotation keys survive a second upgrade');
  const d = await admin.get<{ spec: { replicas: number } }>(`/apis/apps/v1/namespaces/${NS}/deployments/allocator`);
  t.equal(d.spec.replicas, 3);
  const history = await tools.helm(['history', `--namespace=${NS}`, 'purelb'], { kubeconfig: kc });
  t.match(history, /3\s+.*deployed/, 'three revisions');
});

t.test('the allocator runs with its own ServiceAccount token and allocates an address', async (t) => {
  const token = await serviceAccountToken(admin, NS, 'allocator');
  const path = tokenKubeconfig(cp, dir, 'allocator', token);
  const alloc = await startAllocator({ ...cp, kubeconfigPath: path }, { identity: 'chart-sa-allocator' });
  // Kept running for the agent's test below; stopped with the file.
  rootTeardown(() => alloc.stop());
  await ensureNamespace(admin, APPS_NS);
  t.same(await serviceAddress(admin, APPS_NS, 'web'), ['192.0.2.240'], 'the first address of the sample group');
  const lease = await admin.get<{ spec: { holderIdentity?: string } }>(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/purelb-allocator`);
  t.equal(lease.spec.holderIdentity, 'chart-sa-allocator', 'it created and holds the leader Lease');
  const sg = await waitFor(
    'the ServiceGroup status',
    async () => {
      const g = await admin.get<{ status?: { conditions?: { type: string; status: string }[] } }>(`/apis/purelb.io/v1/namespaces/${NS}/servicegroups/default`);
      return g.status?.conditions?.length ? g : undefined;
    },
    15_000,
  );
  t.ok(sg.status?.conditions?.some((c) => c.type === 'Valid' && c.status === 'True'), 'it patched servicegroups/status');
  const events = await admin.get<{ items: { reason: string }[] }>(`/api/v1/namespaces/${APPS_NS}/events`);
  t.ok(events.items.some((e) => e.reason === 'AddressAssigned'), 'it recorded an Event');
  t.notMatch(alloc.tail(200), /forbidden/i, 'no request was refused (a 403 always says Forbidden)');
});

t.test('the agent, bundled, runs in a node namespace on its own ServiceAccount token and announces the address', async (t) => {
  const work = tempDir(t, 'plb-agent-bundle-');
  const built = await bundleApp('lbnodeagent', { ...APP_BUNDLES.lbnodeagent, outfile: join(work, 'dist', 'lbnodeagent.mjs') });
  // Laid out as the image has it: the bundle and the native addons beside it, nothing else.
  const app = tempDir(t, 'plb-agent-app-');
  copyFileSync(built.outfile, join(app, 'lbnodeagent.mjs'));
  cpSync(join(work, 'dist', 'node_modules'), join(app, 'node_modules'), { recursive: true });
  const node = lab.nodes[0]!;
  const kubeconfigPath = tokenKubeconfig(cp, dir, 'lbnodeagent', await serviceAccountToken(admin, NS, 'lbnodeagent'));
  // Settings as the DaemonSet passes them (env), except the lab's link kind and a free metrics port.
  const agent = new ManagedProcess(
    `agent ${node.name}`,
    'ip',
    ['netns', 'exec', node.netns, process.execPath, join(app, 'lbnodeagent.mjs'), '--lease-duration=10s', '--renew-period=2s'],
    {
      PATH: process.env.PATH,
      KUBECONFIG: kubeconfigPath,
      NODE_NAME: node.name,
      POD_NAMESPACE: NS,
      PURELB_MEMBERLIST_PORT: '7934',
      PURELB_MEMBERLIST_SECRET: 'purelb-memberlist',
      PURELB_VIRTUAL_LINK_KIND: LAB_VIRTUAL_LINK_KIND,
      PURELB_METRICS_HOST: '127.0.0.1',
      PURELB_METRICS_PORT: '0',
    },
  );
  t.teardown(() => agent.stop());
  await waitFor(
    'the bundled agent to start',
    () => {
      if (!agent.running) throw new Error(`the agent exited:\n${agent.tail(30)}`);
      return agent.tail(200).includes('agent started') ? true : undefined;
    },
    30_000,
    25,
  );
  const announcing = await waitFor(
    'the agent to announce web\'s address',
    async () => (await admin.get<KObject>(`/api/v1/namespaces/${APPS_NS}/services/web`)).metadata.annotations?.['purelb.io/announcing-IPv4'],
    20_000,
    50,
  );
  t.match(announcing, new RegExp(`^${node.name},`), `announced by ${node.name} (${announcing})`);
  t.equal((await admin.raw('GET', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/purelb-agent-${node.name}`)).status, 200, 'it keeps its own Lease');
  t.notMatch(agent.tail(200), /forbidden/i, 'no request was refused');
  await agent.stop(10_000);
  t.notOk((await admin.get<KObject>(`/api/v1/namespaces/${APPS_NS}/services/web`)).metadata.annotations?.['purelb.io/announcing-IPv4'], 'on shutdown it removed its annotation');
  t.equal((await admin.raw('GET', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/purelb-agent-${node.name}`)).status, 404, 'and deleted its Lease');
});

t.test('the agent\'s calls succeed with its own ServiceAccount token, and no more', async (t) => {
  const agent = new KubeClient({ url: cp.url, caPem: cp.caPem, token: await serviceAccountToken(admin, NS, 'lbnodeagent') });
  await ensureNamespace(admin, APPS_NS);
  await admin.create(`/api/v1/namespaces/${NS}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'netbox-client' }, stringData: { 'user-token': 'x' } });
  const node = lab.nodes[0]!.name;
  const lease = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/purelb-agent-${node}`;
  const allowed: [string, string, unknown?, string?][] = [
    ['GET', '/api/v1/services?limit=5'],
    ['GET', '/api/v1/services?watch=1&timeoutSeconds=1'],
    ['GET', '/apis/discovery.k8s.io/v1/endpointslices?limit=5'],
    ['GET', '/api/v1/nodes'],
    ['GET', `/api/v1/nodes/${node}`],
    ['GET', `/apis/purelb.io/v1/namespaces/${NS}/lbnodeagents`],
    ['GET', `/apis/purelb.io/v1/namespaces/${NS}/servicegroups`],
    ['GET', `/api/v1/namespaces/${NS}/secrets/purelb-memberlist`],
    ['GET', `/api/v1/namespaces/${NS}/secrets?fieldSelector=metadata.name%3Dpurelb-memberlist`],
    ['PATCH', `/api/v1/namespaces/${APPS_NS}/services/web`, { metadata: { annotations: { 'purelb.io/announcing-IPv4': `${node},eth0` } } }, 'application/merge-patch+json'],
    ['POST', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: `purelb-agent-${node}` }, spec: { holderIdentity: node, leaseDurationSeconds: 10 } }],
    ['GET', lease],
    ['POST', `/api/v1/namespaces/${APPS_NS}/events`, { apiVersion: 'v1', kind: 'Event', metadata: { name: 'web.agent-test' }, involvedObject: { kind: 'Service', namespace: APPS_NS, name: 'web' }, reason: 'AnnouncingLocal', message: 'test', type: 'Normal', source: { component: 'purelb-lbnodeagent' } }],
    ['PATCH', `/api/v1/namespaces/${APPS_NS}/events/web.agent-test`, { count: 2 }, 'application/merge-patch+json'],
  ];
  for (const [method, path, body, ct] of allowed) {
    const r = await agent.raw(method, path, body, ct);
    t.ok(r.status >= 200 && r.status < 300, `${method} ${path}: HTTP ${r.status}`);
  }
  const current = await agent.get<Record<string, unknown>>(lease);
  t.equal((await agent.raw('PUT', lease, current)).status, 200, 'it renews (updates) its Lease');
  t.equal((await agent.raw('PATCH', lease, { spec: { renewTime: new Date().toISOString().replace('Z', '000Z') } }, 'application/merge-patch+json')).status, 200, 'or patches it');
  t.equal((await agent.raw('GET', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases?labelSelector=purelb.io%2Fcomponent%3Dlbnodeagent&watch=1&timeoutSeconds=1`)).status, 200, 'it watches its peers\' Leases');
  t.equal((await agent.raw('DELETE', lease)).status, 200, 'it deletes its Lease on shutdown');
  const refused: [string, string, unknown?, string?][] = [
    ['GET', `/api/v1/namespaces/${NS}/secrets/netbox-client`],
    ['GET', `/api/v1/namespaces/${NS}/secrets`],
    ['GET', '/api/v1/secrets'],
    ['PUT', `/api/v1/namespaces/${NS}/secrets/purelb-memberlist`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'purelb-memberlist' }, data: {} }],
    ['POST', `/api/v1/namespaces/${NS}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } }],
    ['DELETE', `/api/v1/namespaces/${APPS_NS}/services/web`],
    ['PATCH', `/api/v1/namespaces/${APPS_NS}/services/web/status`, { status: { loadBalancer: { ingress: [] } } }, 'application/merge-patch+json'],
    ['PATCH', `/api/v1/nodes/${node}`, { metadata: { labels: { x: 'y' } } }, 'application/merge-patch+json'],
    ['POST', `/apis/coordination.k8s.io/v1/namespaces/kube-system/leases`, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'x' }, spec: {} }],
    ['GET', `/apis/coordination.k8s.io/v1/namespaces/${APPS_NS}/leases`],
    ['POST', `/apis/purelb.io/v1/namespaces/${NS}/lbnodeagents`, { apiVersion: 'purelb.io/v1', kind: 'LBNodeAgent', metadata: { name: 'x' }, spec: { local: {} } }],
    ['PATCH', `/apis/purelb.io/v1/namespaces/${NS}/servicegroups/default/status`, { status: {} }, 'application/merge-patch+json'],
    ['GET', `/apis/purelb.io/v1/namespaces/${APPS_NS}/servicegroups`],
    ['GET', '/api/v1/pods'],
  ];
  for (const [method, path, body, ct] of refused) {
    t.equal((await agent.raw(method, path, body, ct)).status, 403, `${method} ${path} is forbidden`);
  }
});

t.test('kubectl auth can-i matrix of both ServiceAccounts', async (t) => {
  const allocatorKc = tokenKubeconfig(cp, dir, 'allocator-cani', await serviceAccountToken(admin, NS, 'allocator'));
  const agentKc = tokenKubeconfig(cp, dir, 'lbnodeagent-cani', await serviceAccountToken(admin, NS, 'lbnodeagent'));
  // [who, expected, can-i arguments]
  const matrix: ['allocator' | 'lbnodeagent', 'yes' | 'no', string][] = [
    ['allocator', 'yes', 'list services -A'],
    ['allocator', 'yes', 'watch services -A'],
    ['allocator', 'yes', 'get services -n default'],
    ['allocator', 'yes', 'patch services --subresource=status -n default'],
    ['allocator', 'yes', 'create events -n default'],
    ['allocator', 'yes', 'patch events -n default'],
    ['allocator', 'yes', 'list servicegroups.purelb.io -n purelb'],
    ['allocator', 'yes', 'watch servicegroups.purelb.io -n purelb'],
    ['allocator', 'yes', 'patch servicegroups.purelb.io --subresource=status -n purelb'],
    ['allocator', 'yes', 'create leases.coordination.k8s.io -n purelb'],
    ['allocator', 'yes', 'get leases.coordination.k8s.io/purelb-allocator -n purelb'],
    ['allocator', 'yes', 'update leases.coordination.k8s.io/purelb-allocator -n purelb'],
    ['allocator', 'no', 'update leases.coordination.k8s.io/someone-else -n purelb'],
    ['allocator', 'no', 'get leases.coordination.k8s.io -n kube-system'],
    ['allocator', 'no', 'create leases.coordination.k8s.io -n kube-system'],
    ['allocator', 'no', 'delete leases.coordination.k8s.io/purelb-allocator -n purelb'],
    ['allocator', 'no', 'patch services -n default'],
    ['allocator', 'no', 'update services -n default'],
    ['allocator', 'no', 'update services --subresource=status -n default'],
    ['allocator', 'no', 'create services -n default'],
    ['allocator', 'no', 'delete services -n default'],
    ['allocator', 'no', 'get secrets -n purelb'],
    ['allocator', 'yes', 'get secrets/netbox-client -n purelb'],
    ['allocator', 'no', 'get secrets/purelb-memberlist -n purelb'],
    ['allocator', 'no', 'list secrets -n purelb'],
    ['allocator', 'no', 'update secrets/netbox-client -n purelb'],
    ['allocator', 'no', 'get secrets/netbox-client -n default'],
    ['allocator', 'no', 'list secrets -A'],
    ['allocator', 'yes', 'get nodes'],
    ['allocator', 'yes', 'list nodes'],
    ['allocator', 'yes', 'watch nodes'],
    ['allocator', 'no', 'update nodes'],
    ['allocator', 'no', 'patch nodes'],
    ['allocator', 'no', 'patch nodes --subresource=status'],
    ['allocator', 'no', 'create servicegroups.purelb.io -n purelb'],
    ['allocator', 'no', 'update servicegroups.purelb.io -n purelb'],
    ['allocator', 'no', 'delete servicegroups.purelb.io -n purelb'],
    ['allocator', 'no', 'list servicegroups.purelb.io -n default'],
    ['allocator', 'no', 'patch lbnodeagents.purelb.io -n purelb'],
    ['allocator', 'no', 'create pods -n purelb'],
    ['allocator', 'no', 'list endpointslices.discovery.k8s.io -A'],
    ['allocator', 'no', '* *'],
    ['lbnodeagent', 'yes', 'list services -A'],
    ['lbnodeagent', 'yes', 'watch services -A'],
    ['lbnodeagent', 'yes', 'patch services -n default'],
    ['lbnodeagent', 'yes', 'list endpointslices.discovery.k8s.io -A'],
    ['lbnodeagent', 'yes', 'watch endpointslices.discovery.k8s.io -A'],
    ['lbnodeagent', 'yes', 'get nodes'],
    ['lbnodeagent', 'yes', 'watch nodes'],
    ['lbnodeagent', 'yes', 'create events -n default'],
    ['lbnodeagent', 'yes', 'patch events -n default'],
    ['lbnodeagent', 'yes', 'list lbnodeagents.purelb.io -n purelb'],
    ['lbnodeagent', 'yes', 'watch lbnodeagents.purelb.io -n purelb'],
    ['lbnodeagent', 'yes', 'list servicegroups.purelb.io -n purelb'],
    ['lbnodeagent', 'yes', 'get secrets/purelb-memberlist -n purelb'],
    ['lbnodeagent', 'yes', 'watch secrets/purelb-memberlist -n purelb'],
    ['lbnodeagent', 'yes', 'get leases.coordination.k8s.io -n purelb'],
    ['lbnodeagent', 'yes', 'create leases.coordination.k8s.io -n purelb'],
    ['lbnodeagent', 'yes', 'update leases.coordination.k8s.io -n purelb'],
    ['lbnodeagent', 'no', 'get secrets -n purelb'],
    ['lbnodeagent', 'no', 'get secrets/netbox-client -n purelb'],
    ['lbnodeagent', 'no', 'list secrets -n purelb'],
    ['lbnodeagent', 'no', 'get secrets/purelb-memberlist -n default'],
    ['lbnodeagent', 'no', 'update secrets/purelb-memberlist -n purelb'],
    ['lbnodeagent', 'no', 'create secrets -n purelb'],
    ['lbnodeagent', 'no', 'delete services -n default'],
    ['lbnodeagent', 'no', 'create services -n default'],
    ['lbnodeagent', 'no', 'patch services --subresource=status -n default'],
    ['lbnodeagent', 'no', 'update nodes'],
    ['lbnodeagent', 'no', 'patch nodes'],
    ['lbnodeagent', 'no', 'delete nodes'],
    ['lbnodeagent', 'no', 'patch nodes --subresource=status'],
    ['lbnodeagent', 'yes', 'patch leases.coordination.k8s.io -n purelb'],
    ['lbnodeagent', 'yes', 'watch leases.coordination.k8s.io -n purelb'],
    ['lbnodeagent', 'yes', 'delete leases.coordination.k8s.io -n purelb'],
    ['lbnodeagent', 'no', 'delete leases.coordination.k8s.io -n kube-system'],
    ['lbnodeagent', 'no', 'deletecollection leases.coordination.k8s.io -n purelb'],
    ['lbnodeagent', 'no', 'update leases.coordination.k8s.io -n kube-node-lease'],
    ['lbnodeagent', 'no', 'get leases.coordination.k8s.io -n default'],
    ['lbnodeagent', 'no', 'create lbnodeagents.purelb.io -n purelb'],
    ['lbnodeagent', 'no', 'update lbnodeagents.purelb.io -n purelb'],
    ['lbnodeagent', 'no', 'patch servicegroups.purelb.io --subresource=status -n purelb'],
    ['lbnodeagent', 'no', 'list lbnodeagents.purelb.io -n default'],
    ['lbnodeagent', 'no', 'create pods -n purelb'],
    ['lbnodeagent', 'no', 'update endpointslices.discovery.k8s.io -n default'],
    ['lbnodeagent', 'no', '* *'],
  ];
  const results = await inBatches(matrix, 6, async ([who, , args]) => {
    const r = await tools.kubectlStatus(['auth', 'can-i', ...args.split(' ')], { kubeconfig: who === 'allocator' ? allocatorKc : agentKc });
    // can-i prints yes/no and exits 0/1; anything else is an error, not an answer.
    const answer = r.stdout.trim();
    return (answer === 'yes' && r.code === 0) || (answer === 'no' && r.code === 1) ? answer : `error (exit ${r.code}): ${r.stdout}${r.stderr}`;
  });
  matrix.forEach(([who, want, args], i) => t.equal(results[i], want, `${who}: can-i ${args} -> ${want}`));
});

function writeValues(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function inBatches<T, R>(items: readonly T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}
