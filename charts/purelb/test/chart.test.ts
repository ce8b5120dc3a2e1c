// The chart without an API server: lint, what it renders for default and other values,
// the schema, the README, the committed manifest, the Dockerfiles.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parse, parseAllDocuments } from 'yaml';
import { MANIFEST_PATH, renderManifest } from '../../../tools/manifest.ts';
import { APP_BUNDLES, nodeFlagsOf } from '../../../tools/bundle.ts';
import { CHART_DIR, REPO_ROOT, Tools, objects, pick, type KObject } from './helpers.ts';

const tools = await Tools.create(t);

interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: { name: string; containerPort: number; hostPort?: number; protocol: string }[];
  securityContext: Record<string, unknown> & { capabilities?: { add?: string[]; drop?: string[] } };
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  startupProbe?: { httpGet: { path: string; port: string }; periodSeconds: number; failureThreshold: number };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface PodSpec {
  serviceAccountName: string;
  hostNetwork?: boolean;
  dnsPolicy?: string;
  securityContext?: Record<string, unknown>;
  tolerations?: unknown[];
  containers: Container[];
}
interface Workload extends KObject {
  spec: { replicas?: number; template: { spec: PodSpec } };
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  nonResourceURLs?: string[];
  verbs: string[];
  resourceNames?: string[];
}

function env(c: Container, name: string): string | undefined {
  return c.env?.find((e) => e.name === name)?.value;
}

t.test('helm lint --strict passes with default and with other values', async (t) => {
  const out = await tools.helm(['lint', '--strict', CHART_DIR]);
  t.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  const other = await tools.helm(['lint', '--strict', CHART_DIR, '--set=lbnodeagent.sendgarp=true,allocator.replicas=3,serviceGroup.create=false,metrics.serviceMonitor.enabled=true,bootstrap=apps,createNamespace=true']);
  t.match(other, /0 chart\(s\) failed/);
});

t.test('every render is clean YAML (no duplicate keys, no warnings)', async (t) => {
  for (const set of [[], ['bootstrap=apps', 'createNamespace=true', 'metrics.serviceMonitor.enabled=true', 'commonLabels.team=net']]) {
    const docs = parseAllDocuments(await tools.template({ set, includeCrds: true }));
    const problems = docs.flatMap((d) => [...d.errors, ...d.warnings].map((e) => e.message.split('\n')[0]));
    t.same(problems, [], `--set ${set.join(',') || '(defaults)'}: ${docs.length} documents`);
  }
});

t.test('default render: the allocator Deployment', async (t) => {
  const objs = objects(await tools.template());
  const d = pick<Workload>(objs, 'Deployment/allocator');
  t.equal(d.metadata.namespace, 'purelb');
  t.equal(d.spec.replicas, 2, 'two replicas');
  const pod = d.spec.template.spec;
  t.equal(pod.serviceAccountName, 'allocator');
  t.same(pod.securityContext, { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
  t.equal(pod.containers.length, 1);
  const c = pod.containers[0]!;
  t.equal(c.image, 'ghcr.io/purelb-ts/allocator:0.1.0', 'the tag defaults to appVersion');
  t.same(c.securityContext, {
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    seccompProfile: { type: 'RuntimeDefault' },
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
  });
  t.same(c.ports, [
    { name: 'metrics', containerPort: 7472, protocol: 'TCP' },
    { name: 'health', containerPort: 7474, protocol: 'TCP' },
  ]);
  t.same(c.livenessProbe?.httpGet, { path: '/healthz', port: 'health' });
  t.same(c.readinessProbe?.httpGet, { path: '/readyz', port: 'health' });
  t.same(c.startupProbe?.httpGet, { path: '/healthz', port: 'health' }, 'the other probes wait for /healthz to answer once');
  t.ok((c.startupProbe?.periodSeconds ?? 0) * (c.startupProbe?.failureThreshold ?? 0) >= 60, 'a start may take a minute or more');
  t.ok(c.resources?.requests?.cpu && c.resources.requests.memory && c.resources.limits?.memory, 'requests and a memory limit');
  t.equal(env(c, 'PURELB_LEASE_NAME'), 'purelb-allocator', 'leader election on the Lease');
  t.equal(env(c, 'PURELB_METRICS_PORT'), '7472');
  t.equal(env(c, 'PURELB_HEALTH_PORT'), '7474');
  t.equal(env(c, 'PURELB_METRICS_SECURE'), 'true', 'metrics on HTTPS with token checks by default');
  t.same(c.env?.find((e) => e.name === 'POD_NAME')?.valueFrom, { fieldRef: { fieldPath: 'metadata.name' } }, 'identity = pod name');
  t.same(c.env?.find((e) => e.name === 'POD_NAMESPACE')?.valueFrom, { fieldRef: { fieldPath: 'metadata.namespace' } });
  t.equal(env(c, 'PURELB_DEFAULT_SERVICEGROUP'), undefined, 'bootstrap=chart: the chart creates the group');
  t.notOk(pod.tolerations, 'no tolerations by default');
});

t.test('default render: the lbnodeagent DaemonSet', async (t) => {
  const objs = objects(await tools.template());
  const ds = pick<Workload>(objs, 'DaemonSet/lbnodeagent');
  const pod = ds.spec.template.spec;
  t.equal(pod.serviceAccountName, 'lbnodeagent');
  t.equal(pod.hostNetwork, true);
  t.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet');
  const c = pod.containers[0]!;
  t.same(c.securityContext.capabilities, { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] }, 'NET_ADMIN and NET_RAW only');
  t.equal(c.securityContext.privileged, false, 'not privileged');
  t.equal(c.securityContext.allowPrivilegeEscalation, false);
  t.equal(c.securityContext.readOnlyRootFilesystem, true);
  const ports = (c.ports ?? []).map((p) => `${p.containerPort}/${p.protocol}:${p.hostPort}`).sort();
  t.same(ports, ['7473/TCP:7473', '7475/TCP:7475', '7934/TCP:7934', '7934/UDP:7934'], 'gossip on 7934 TCP and UDP, metrics on 7473, probes on 7475');
  t.same(c.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } }, 'NODE_NAME from the downward API');
  t.equal(env(c, 'PURELB_MEMBERLIST_SECRET'), 'purelb-memberlist');
  t.equal(env(c, 'PURELB_MEMBERLIST_PORT'), '7934');
  t.equal(env(c, 'PURELB_VIRTUAL_LINK_KIND'), 'dummy');
  t.same(c.args, ['--lease-duration=10s', '--renew-period=2s']);
  t.same(c.livenessProbe?.httpGet, { path: '/healthz', port: 'health' });
  t.same(c.readinessProbe?.httpGet, { path: '/readyz', port: 'health' });
  t.same(c.startupProbe?.httpGet, { path: '/healthz', port: 'health' }, 'the other probes wait for /healthz to answer once');
  t.ok((c.startupProbe?.periodSeconds ?? 0) * (c.startupProbe?.failureThreshold ?? 0) >= 60, 'a start may take a minute or more');
  t.notOk(pod.tolerations, 'no tolerations by default: untainted nodes only');
});

// The probes and security contexts of chart 0.1.0, which values now carry as defaults.
// As in chart 0.1.0 but on the plain port "health": /metrics moved to HTTPS (metrics.secure).
const PROBES_0_1_0 = {
  startupProbe: { httpGet: { path: '/healthz', port: 'health' }, periodSeconds: 1, timeoutSeconds: 3, failureThreshold: 120 },
  livenessProbe: { httpGet: { path: '/healthz', port: 'health' }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
  readinessProbe: { httpGet: { path: '/readyz', port: 'health' }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 3 },
};
const SECURITY_0_1_0 = {
  allocator: {
    pod: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
    container: { allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, seccompProfile: { type: 'RuntimeDefault' }, runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
  },
  lbnodeagent: {
    pod: { seccompProfile: { type: 'RuntimeDefault' } },
    container: {
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      seccompProfile: { type: 'RuntimeDefault' },
      runAsUser: 0,
      runAsNonRoot: false,
      capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] },
    },
  },
};
const WORKLOADS = { allocator: 'Deployment/allocator', lbnodeagent: 'DaemonSet/lbnodeagent' } as const;

t.test('probes and security contexts: the defaults render as in chart 0.1.0, and values override them', async (t) => {
  const defaults = objects(await tools.template());
  for (const [app, key] of Object.entries(WORKLOADS)) {
    const pod = pick<Workload>(defaults, key).spec.template.spec;
    const c = pod.containers[0]!;
    t.same(pod.securityContext, SECURITY_0_1_0[app as keyof typeof SECURITY_0_1_0].pod, `${app}: pod securityContext unchanged`);
    t.same(c.securityContext, SECURITY_0_1_0[app as keyof typeof SECURITY_0_1_0].container, `${app}: container securityContext unchanged`);
    t.same({ startupProbe: c.startupProbe, livenessProbe: c.livenessProbe, readinessProbe: c.readinessProbe }, PROBES_0_1_0, `${app}: probes unchanged`);
  }
  const changed = objects(
    await tools.template({
      set: [
        'allocator.livenessProbe.periodSeconds=20',
        'allocator.startupProbe.initialDelaySeconds=5',
        'allocator.readinessProbe.enabled=false',
        'allocator.securityContext.runAsUser=1000',
        'allocator.podSecurityContext.fsGroup=2000',
        'lbnodeagent.startupProbe.failureThreshold=300',
        'lbnodeagent.livenessProbe.timeoutSeconds=5',
        'lbnodeagent.podSecurityContext.seccompProfile.type=Unconfined',
        'lbnodeagent.securityContext.readOnlyRootFilesystem=false',
      ],
    }),
  );
  const alloc = pick<Workload>(changed, WORKLOADS.allocator).spec.template.spec;
  const a = alloc.containers[0]!;
  t.same(a.livenessProbe, { ...PROBES_0_1_0.livenessProbe, periodSeconds: 20 }, 'allocator: liveness period overridden, the rest kept');
  t.same(a.startupProbe, { ...PROBES_0_1_0.startupProbe, initialDelaySeconds: 5 }, 'allocator: a field the defaults lack is added');
  t.equal(a.readinessProbe, undefined, 'allocator: readiness probe left out');
  t.same(a.securityContext, { ...SECURITY_0_1_0.allocator.container, runAsUser: 1000 }, 'allocator: container securityContext merged');
  t.same(alloc.securityContext, { ...SECURITY_0_1_0.allocator.pod, fsGroup: 2000 }, 'allocator: pod securityContext merged');
  const agent = pick<Workload>(changed, WORKLOADS.lbnodeagent).spec.template.spec;
  const g = agent.containers[0]!;
  t.same(g.startupProbe, { ...PROBES_0_1_0.startupProbe, failureThreshold: 300 }, 'agent: startup failureThreshold overridden');
  t.same(g.livenessProbe, { ...PROBES_0_1_0.livenessProbe, timeoutSeconds: 5 }, 'agent: liveness timeout overridden');
  t.same(g.readinessProbe, PROBES_0_1_0.readinessProbe, 'agent: readiness untouched');
  t.same(agent.securityContext, { seccompProfile: { type: 'Unconfined' } });
  t.same(g.securityContext, { ...SECURITY_0_1_0.lbnodeagent.container, readOnlyRootFilesystem: false });
  const dropped = objects(await tools.template({ values: ['allocator:\n  podSecurityContext:\n    fsGroup: null\n'] }));
  t.notOk('fsGroup' in (pick<Workload>(dropped, WORKLOADS.allocator).spec.template.spec.securityContext ?? {}), 'null drops a default key');
  // A whole map missing is what `helm upgrade --reuse-values` from 0.1.0 gives (its defaults lack them): refused, not rendered without.
  for (const set of ['allocator.securityContext=null', 'lbnodeagent.startupProbe=null', 'rbac=null']) {
    const err = await tools.template({ set: [set] }).then(
      () => 'rendered',
      (e: Error) => e.message,
    );
    t.match(err, new RegExp(`the values lack ${set.split('=')[0]!.replace('.', '\\.')}, which chart [0-9.]+ sets by default.*--reset-then-reuse-values`), `${set} is refused, saying why`);
  }
  for (const set of ['allocator.livenessProbe.periodSeconds=0', 'lbnodeagent.readinessProbe.httpGet.path=/x', 'allocator.startupProbe.enabled=maybe']) {
    const err = await tools.template({ set: [set] }).then(
      () => 'rendered',
      (e: Error) => e.message,
    );
    t.match(err, /values don't meet the specifications of the schema/, `${set} is refused`);
  }
});

t.test('default render: the gossip Secret is random on every fresh render, never a default', async (t) => {
  const keys = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const s = pick<KObject & { data: Record<string, string> }>(objects(await tools.template()), 'Secret/purelb-memberlist');
    const text = Buffer.from(s.data.key!, 'base64').toString('utf8');
    t.equal(Buffer.from(text, 'base64').length, 32, 'key = base64 text of 32 bytes');
    keys.add(text);
  }
  t.equal(keys.size, 3, 'three renders, three keys');
  t.notMatch(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'), /^\s*key:/m, 'no key in values.yaml');
});

t.test('default render: RBAC is least privilege', async (t) => {
  const objs = objects(await tools.template());
  const rules = (key: string): Rule[] => pick<KObject & { rules: Rule[] }>(objs, key).rules;
  t.same(rules('ClusterRole/purelb:allocator'), [
    { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [''], resources: ['services/status'], verbs: ['patch'] },
    { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  ]);
  t.same(rules('Role/allocator'), [
    { apiGroups: ['purelb.io'], resources: ['servicegroups'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['purelb.io'], resources: ['servicegroups/status'], verbs: ['patch'] },
    { apiGroups: [''], resources: ['secrets'], resourceNames: ['netbox-client'], verbs: ['get'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['purelb-allocator'], verbs: ['get', 'update'] },
  ]);
  const agentRole = rules('Role/lbnodeagent');
  const secretRules = agentRole.filter((r) => r.resources.includes('secrets'));
  t.same(secretRules, [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['purelb-memberlist'], verbs: ['get', 'list', 'watch'] }], 'the agent reads one Secret, by name');
  t.same(
    agentRole.filter((r) => r.resources.includes('leases')),
    [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] }],
    'agents: Leases in the namespace only (the Role), names vary by node',
  );
  for (const [key, o] of objs) {
    if (o.kind !== 'ClusterRole' && o.kind !== 'Role') continue;
    for (const r of (o as KObject & { rules: Rule[] }).rules) {
      if (r.nonResourceURLs) {
        t.same(r, { nonResourceURLs: ['/metrics'], verbs: ['get'] }, `${key}: the one non-resource rule is get /metrics`);
        continue;
      }
      t.notOk(r.verbs.includes('*') || r.resources.includes('*') || r.apiGroups.includes('*'), `${key}: no wildcards`);
      // The one delete: an agent removes its own Lease on a clean shutdown.
      const ownLease = key === 'Role/lbnodeagent' && r.resources.join() === 'leases';
      t.notOk(r.verbs.includes('deletecollection') || (r.verbs.includes('delete') && !ownLease), `${key}: deletes nothing (but an agent's Lease)`);
      if (o.kind === 'ClusterRole') t.notOk(r.resources.includes('secrets') || r.resources.includes('leases'), `${key}: Secrets and Leases only in the namespace`);
    }
  }
  const noNetbox = objects(await tools.template({ values: ['allocator:\n  netboxSecretNames: []\n'] }));
  t.notOk(
    pick<KObject & { rules: Rule[] }>(noNetbox, 'Role/allocator').rules.some((r) => r.resources.includes('secrets')),
    'netboxSecretNames: [] leaves the Secret rule out (an empty resourceNames would mean every Secret)',
  );
  const crb = pick<KObject & { subjects: { kind: string; name: string; namespace: string }[] }>(objs, 'ClusterRoleBinding/purelb:lbnodeagent');
  t.same(crb.subjects, [{ kind: 'ServiceAccount', name: 'lbnodeagent', namespace: 'purelb' }]);
});

t.test('default render: default LBNodeAgent, sample ServiceGroup, metrics Services, no ServiceMonitor', async (t) => {
  const objs = objects(await tools.template());
  const lbna = pick<KObject & { spec: unknown }>(objs, 'LBNodeAgent/default');
  t.same(lbna.spec, { local: { extlbint: 'kube-lb0', localint: 'default', sendgarp: true } }, 'sendgarp on by default');
  const sg = pick<KObject & { spec: { local: { v4pools: unknown[]; v6pools: unknown[] } } }>(objs, 'ServiceGroup/default');
  t.same(sg.spec.local.v4pools, [{ subnet: '192.0.2.0/24', pool: '192.0.2.240-192.0.2.249', aggregation: 'default' }], 'documentation addresses only');
  t.same(sg.spec.local.v6pools, [{ subnet: '2001:db8::/64', pool: '2001:db8::240-2001:db8::249', aggregation: 'default' }]);
  for (const app of ['allocator', 'lbnodeagent']) {
    const svc = pick<KObject & { spec: { clusterIP: string; ports: { name: string; port: number }[]; selector: Record<string, string> } }>(objs, `Service/${app}-metrics`);
    t.equal(svc.spec.ports[0]?.name, 'metrics');
    t.equal(svc.spec.selector['app.kubernetes.io/name'], app);
  }
  t.notOk([...objs.keys()].some((k) => k.startsWith('ServiceMonitor/')), 'ServiceMonitor off by default');
  t.notOk([...objs.keys()].some((k) => k.startsWith('Namespace/')), 'no Namespace: helm --create-namespace makes it');
});

t.test('the CRDs as templates (crds.enabled): those of crds/, kept on uninstall; none with crds.enabled=false', async (t) => {
  const files = [...objects(await tools.template({ includeCrds: true, set: ['crds.enabled=false'] })).values()].filter((o) => o.kind === 'CustomResourceDefinition');
  t.same(files.map((o) => o.metadata.name).sort(), ['lbnodeagents.purelb.io', 'servicegroups.purelb.io'], 'crds/ holds both');
  const templated = objects(await tools.template());
  for (const f of files) {
    const crd = pick<KObject & { spec: unknown }>(templated, `CustomResourceDefinition/${f.metadata.name}`);
    t.same(crd.spec, (f as KObject & { spec: unknown }).spec, `${f.metadata.name}: the spec of crds/, unchanged`);
    t.same(crd.metadata.annotations, { 'helm.sh/resource-policy': 'keep' }, `${f.metadata.name}: kept by helm uninstall`);
    t.equal(crd.metadata.labels?.['app.kubernetes.io/name'], 'purelb');
    t.equal(crd.metadata.labels?.['app.kubernetes.io/managed-by'], 'Helm');
  }
  t.notOk([...objects(await tools.template({ set: ['crds.enabled=false'] })).keys()].some((k) => k.startsWith('CustomResourceDefinition/')), 'crds.enabled=false: crds/ only');
});

t.test('the reference pages\' values work as written there', async (t) => {
  // 000: `--set=lbnodeagent.sendgarp=true` on the helm command line.
  const garp = objects(await tools.template({ set: ['lbnodeagent.sendgarp=true'] }));
  t.equal(pick<KObject & { spec: { local: { sendgarp: boolean } } }>(garp, 'LBNodeAgent/default').spec.local.sendgarp, true, 'sendgarp reaches the LBNodeAgent');
  const noGarp = objects(await tools.template({ set: ['lbnodeagent.sendgarp=false'] }));
  t.equal(pick<KObject & { spec: { local: { sendgarp: boolean } } }>(noGarp, 'LBNodeAgent/default').spec.local.sendgarp, false, 'and so does sendgarp=false');
  // 000: a values file with allocator.tolerations.
  const tolerations = '---\nallocator:\n  tolerations:\n  - effect: NoSchedule\n    key: node-role.kubernetes.io/master\n';
  const tol = objects(await tools.template({ values: [tolerations] }));
  t.same(pick<Workload>(tol, 'Deployment/allocator').spec.template.spec.tolerations, [{ effect: 'NoSchedule', key: 'node-role.kubernetes.io/master' }]);
  t.notOk(pick<Workload>(tol, 'DaemonSet/lbnodeagent').spec.template.spec.tolerations, 'the agent keeps its own (none)');
});

t.test('lbnodeagent.setARPSysctls reaches the default LBNodeAgent only when set', async (t) => {
  type Lbna = KObject & { spec: { local: Record<string, unknown> } };
  t.equal(pick<Lbna>(objects(await tools.template({ set: ['lbnodeagent.setARPSysctls=true'] })), 'LBNodeAgent/default').spec.local.setARPSysctls, true, 'true: written');
  t.notOk('setARPSysctls' in pick<Lbna>(objects(await tools.template()), 'LBNodeAgent/default').spec.local, 'default: not written (an upgrade leaves the object as it was)');
});

t.test('other values: replicas, agent tolerations, sample group off, ServiceMonitor on', async (t) => {
  const objs = objects(
    await tools.template({
      set: ['allocator.replicas=3', 'serviceGroup.create=false', 'metrics.serviceMonitor.enabled=true', 'metrics.serviceMonitor.labels.release=prom', 'lbnodeagent.createDefault=false'],
      values: ['lbnodeagent:\n  tolerations:\n  - operator: Exists\n'],
    }),
  );
  t.equal(pick<Workload>(objs, 'Deployment/allocator').spec.replicas, 3);
  t.same(pick<Workload>(objs, 'DaemonSet/lbnodeagent').spec.template.spec.tolerations, [{ operator: 'Exists' }]);
  t.notOk(objs.has('ServiceGroup/default'), 'no sample group');
  t.notOk(objs.has('LBNodeAgent/default'), 'no default LBNodeAgent');
  const sm = pick<KObject & { spec: { endpoints: { port: string }[]; selector: { matchLabels: Record<string, string> } } }>(objs, 'ServiceMonitor/purelb');
  t.equal(sm.apiVersion, 'monitoring.coreos.com/v1');
  t.equal(sm.metadata.labels?.release, 'prom');
  t.same(sm.spec.endpoints.map((e) => e.port), ['metrics']);
  const metricsServices = [...objs.values()].filter((o) => o.kind === 'Service' && Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => o.metadata.labels?.[k] === v));
  t.same(metricsServices.map((s) => s.metadata.name).sort(), ['allocator-metrics', 'lbnodeagent-metrics'], 'it selects both metrics Services');
});

t.test('bootstrap=apps: no custom resource and no Secret; the apps get them as JSON and RBAC to create them', async (t) => {
  const objs = objects(await tools.template({ set: ['bootstrap=apps', 'lbnodeagent.sendgarp=true'] }));
  t.notOk(objs.has('LBNodeAgent/default') || objs.has('ServiceGroup/default') || objs.has('Secret/purelb-memberlist'));
  const alloc = pick<Workload>(objs, 'Deployment/allocator').spec.template.spec.containers[0]!;
  const sg = JSON.parse(env(alloc, 'PURELB_DEFAULT_SERVICEGROUP') ?? 'null') as KObject & { spec: unknown };
  t.equal(sg.kind, 'ServiceGroup');
  t.equal(sg.metadata.name, 'default');
  const values = parse(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as { serviceGroup: { spec: unknown } };
  t.same(sg.spec, values.serviceGroup.spec, 'the spec from values');
  const agent = pick<Workload>(objs, 'DaemonSet/lbnodeagent').spec.template.spec.containers[0]!;
  const lbna = JSON.parse(env(agent, 'PURELB_DEFAULT_LBNODEAGENT') ?? 'null') as KObject & { spec: unknown };
  t.same(lbna.spec, { local: { extlbint: 'kube-lb0', localint: 'default', sendgarp: true } });
  t.equal(env(agent, 'PURELB_MEMBERLIST_SECRET_CREATE'), 'true');
  const agentRules = pick<KObject & { rules: Rule[] }>(objs, 'Role/lbnodeagent').rules;
  t.ok(agentRules.some((r) => r.resources.includes('secrets') && r.verbs.includes('create') && !r.verbs.includes('get')), 'agents may create a Secret (but still read only theirs)');
  t.ok(pick<KObject & { rules: Rule[] }>(objs, 'Role/allocator').rules.some((r) => r.resources.includes('servicegroups') && r.verbs.includes('create')));
  const off = objects(await tools.template({ set: ['bootstrap=apps', 'serviceGroup.create=false'] }));
  t.equal(env(pick<Workload>(off, 'Deployment/allocator').spec.template.spec.containers[0]!, 'PURELB_DEFAULT_SERVICEGROUP'), undefined, 'sample group off: nothing to create');
  t.notOk(pick<KObject & { rules: Rule[] }>(off, 'Role/allocator').rules.some((r) => r.verbs.includes('create') && r.resources.includes('servicegroups')), 'and no right to create groups');
});

t.test('values.schema.json refuses bad values', async (t) => {
  const bad: [string, string[], RegExp][] = [
    ['tolerations as a map', ['allocator.tolerations.effect=NoSchedule'], /tolerations/],
    ['an unknown key', ['allocator.replica=2'], /replica/],
    ['a bare number as a duration', ['lbnodeagent.leaseDuration=10'], /leaseDuration/],
    ['a bootstrap mode that does not exist', ['bootstrap=operator'], /bootstrap/],
    ['a port out of range', ['lbnodeagent.memberlistPort=70000'], /memberlistPort/],
    ['zero replicas', ['allocator.replicas=0'], /replicas/],
  ];
  for (const [what, set, field] of bad) {
    const err = await tools.template({ set }).then(
      () => undefined,
      (e: Error) => e.message,
    );
    t.match(err, field, `${what} is refused, naming the field`);
  }
});

t.test('README lists every value of values.yaml, and nothing that is not one', async (t) => {
  const values = parse(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<string, unknown>;
  // Kubernetes objects passed through as a whole (a probe: all but its handler) are documented as one key.
  const perApp = ['resources', 'podSecurityContext', 'securityContext', 'startupProbe', 'livenessProbe', 'readinessProbe'];
  const alerts = Object.keys((values as { metrics: { prometheusRule: { alerts: Record<string, unknown> } } }).metrics.prometheusRule.alerts).map((a) => `metrics.prometheusRule.alerts.${a}`);
  // An alert's few settings (enabled, for, severity, a threshold) are documented in its one row.
  const wholeObjects = new Set([...perApp.flatMap((k) => [`allocator.${k}`, `lbnodeagent.${k}`]), 'lbnodeagent.updateStrategy', 'serviceGroup.spec', ...alerts]);
  const leaves: string[] = [];
  const walk = (o: unknown, path: string): void => {
    if (o !== null && typeof o === 'object' && !Array.isArray(o) && Object.keys(o).length > 0 && !wholeObjects.has(path)) {
      for (const [k, v] of Object.entries(o)) walk(v, path ? `${path}.${k}` : k);
    } else leaves.push(path);
  };
  walk(values, '');
  const readme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8');
  const listed = new Set([...readme.matchAll(/^\| `([A-Za-z0-9.]+)` \|/gm)].map((m) => m[1]!));
  t.ok(leaves.length > 50, `${leaves.length} values found`);
  t.same(leaves.filter((l) => !listed.has(l)), [], 'every value is in the README table');
  t.same([...listed].filter((l) => !leaves.includes(l)), [], 'every README key is a value');
});

t.test('deploy/purelb-complete.yaml is up to date with the chart, CRDs first, no custom resources', async (t) => {
  const fresh = await renderManifest(tools.helmBin);
  const committed = readFileSync(MANIFEST_PATH, 'utf8');
  t.ok(fresh === committed, 'regenerating gives the committed file (run `npm run manifest` if not)');
  const kinds = [...committed.matchAll(/^kind: (\S+)$/gm)].map((m) => m[1]);
  t.same(kinds.slice(0, 3), ['CustomResourceDefinition', 'CustomResourceDefinition', 'Namespace']);
  t.notOk(kinds.includes('LBNodeAgent') || kinds.includes('ServiceGroup') || kinds.includes('Secret'));
});

t.test('Dockerfiles: multi-stage, Node 24, non-root where possible, copy the bundle the bundle script writes', async (t) => {
  for (const [app, spec] of Object.entries(APP_BUNDLES)) {
    const text = readFileSync(join(REPO_ROOT, 'apps', app, 'Dockerfile'), 'utf8');
    const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
    const froms = lines.filter((l) => /^FROM /i.test(l));
    t.equal(froms.length, 2, `${app}: two stages`);
    t.match(froms[0], /^FROM node:24[-\w.]* AS build$/, `${app}: build stage on Node 24`);
    t.match(froms[1], /^FROM (gcr\.io\/distroless\/nodejs24-debian\d+(:\w+)?|node:24[-\w.]*) AS runtime$/, `${app}: small Node 24 runtime`);
    const buildStage = lines.slice(lines.indexOf(froms[0]!), lines.indexOf(froms[1]!));
    const runtimeStage = lines.slice(lines.indexOf(froms[1]!));
    t.ok(buildStage.some((l) => l === `RUN node tools/bundle.ts ${app}`), `${app}: the build stage runs the bundle script`);
    const bundleName = spec.outfile.split('/').pop()!;
    const copy = runtimeStage.find((l) => l.startsWith('COPY --from=build') && l.includes(`/src/${spec.outfile}`));
    t.ok(copy, `${app}: the runtime copies ${spec.outfile} from the build stage`);
    t.equal(copy?.split(/\s+/).pop(), `/app/${bundleName}`);
    if (spec.external.length > 0) t.ok(runtimeStage.some((l) => l.startsWith('COPY --from=build') && l.includes(`/src/${spec.outfile.replace(/[^/]+$/, 'node_modules')}`)), `${app}: copies the native addons next to the bundle`);
    t.notOk(runtimeStage.some((l) => /^(RUN|ADD) /.test(l)), `${app}: nothing runs or downloads in the runtime stage`);
    const user = runtimeStage.find((l) => l.startsWith('USER '));
    if (app === 'allocator') t.equal(user, 'USER 65532:65532', 'allocator: non-root');
    else t.equal(user, 'USER 0:0', `${app}: root, explicitly (documented: capabilities need UID 0)`);
    const entry = runtimeStage.find((l) => l.startsWith('ENTRYPOINT '));
    t.same(JSON.parse(entry!.slice('ENTRYPOINT '.length)), ['/nodejs/bin/node', ...nodeFlagsOf(app), `/app/${bundleName}`], `${app}: exec-form ENTRYPOINT runs the bundle with the app's Node flags`);
  }
});
