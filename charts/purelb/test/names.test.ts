// Object names without an API server: release purelb keeps the names earlier chart
// versions (and the lab) use; every name derives from the release, so several releases, in
// one namespace or in several, render no two objects of one kind, namespace and name; each
// release's references (ServiceAccounts, roles, the Lease, the gossip Secret, selectors)
// point at its own objects; serviceAccount.* and rbac.create.
import t from 'tap';
import { Tools, objects, pick, type KObject, type TemplateOptions } from './helpers.ts';

const tools = await Tools.create(t);

interface Container {
  env?: { name: string; value?: string }[];
}
interface Workload extends KObject {
  spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: { serviceAccountName: string; containers: Container[] } } };
}
interface Binding extends KObject {
  roleRef: { kind: string; name: string };
  subjects: { kind: string; name: string; namespace: string }[];
}
interface Role extends KObject {
  rules: { resources: string[]; resourceNames?: string[] }[];
}
interface MetricsService extends KObject {
  spec: { selector: Record<string, string> };
}

const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'Namespace']);
const RBAC_KINDS = ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];

/** `Kind namespace/name` of an object as the API server identifies it (no namespace for cluster-scoped kinds). */
function identity(o: KObject, releaseNamespace: string): string {
  return CLUSTER_SCOPED.has(o.kind) ? `${o.kind} ${o.metadata.name}` : `${o.kind} ${o.metadata.namespace ?? releaseNamespace}/${o.metadata.name}`;
}

function envOf(w: Workload, name: string): string | undefined {
  return w.spec.template.spec.containers[0]?.env?.find((e) => e.name === name)?.value;
}

function ofKind<T extends KObject>(objs: Map<string, KObject>, kind: string): T[] {
  return [...objs.values()].filter((o) => o.kind === kind) as T[];
}

t.test('release purelb in namespace purelb: the names of chart 0.1.0, which the lab and its e2e suite wait for', async (t) => {
  const objs = objects(await tools.template({ set: ['metrics.serviceMonitor.enabled=true'] }));
  t.same(
    [...objs.keys()].filter((k) => !k.startsWith('CustomResourceDefinition/')).sort(),
    [
      'ClusterRole/purelb:allocator',
      'ClusterRole/purelb:lbnodeagent',
      'ClusterRole/purelb:metrics-reader',
      'ClusterRoleBinding/purelb:allocator',
      'ClusterRoleBinding/purelb:allocator:auth-delegator',
      'ClusterRoleBinding/purelb:lbnodeagent',
      'ClusterRoleBinding/purelb:lbnodeagent:auth-delegator',
      'DaemonSet/lbnodeagent',
      'Deployment/allocator',
      'LBNodeAgent/default',
      'Role/allocator',
      'Role/lbnodeagent',
      'RoleBinding/allocator',
      'RoleBinding/lbnodeagent',
      'Secret/purelb-memberlist',
      'Service/allocator-metrics',
      'Service/lbnodeagent-metrics',
      'ServiceAccount/allocator',
      'ServiceAccount/lbnodeagent',
      'ServiceGroup/default',
      'ServiceMonitor/purelb',
    ],
  );
  const alloc = pick<Workload>(objs, 'Deployment/allocator');
  const agent = pick<Workload>(objs, 'DaemonSet/lbnodeagent');
  t.equal(envOf(alloc, 'PURELB_LEASE_NAME'), 'purelb-allocator', 'the leader Lease keeps its name');
  t.equal(envOf(agent, 'PURELB_MEMBERLIST_SECRET'), 'purelb-memberlist');
  t.same(alloc.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'allocator', 'app.kubernetes.io/instance': 'purelb' }, 'selectors unchanged (they are immutable)');
  t.same(agent.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'lbnodeagent', 'app.kubernetes.io/instance': 'purelb' });
  t.equal(alloc.spec.template.spec.serviceAccountName, 'allocator');
  t.equal(agent.spec.template.spec.serviceAccountName, 'lbnodeagent');
});

// Releases installed side by side. Those sharing a namespace name their custom resources
// apart (the LBNodeAgent and ServiceGroup names are values, not derived: see the last test).
const RELEASES: (TemplateOptions & { release: string; namespace: string })[] = [
  { release: 'purelb', namespace: 'purelb' },
  { release: 'lb2', namespace: 'purelb', set: ['lbnodeagent.createDefault=false', 'serviceGroup.name=lb2'] },
  { release: 'purelb-b', namespace: 'purelb', set: ['lbnodeagent.createDefault=false', 'serviceGroup.name=b'] },
  { release: 'x', namespace: 'purelb', set: ['nameOverride=lb', 'lbnodeagent.createDefault=false', 'serviceGroup.create=false'] },
  { release: 'purelb', namespace: 'purelb-b' },
  { release: 'edge', namespace: 'edge', set: ['fullnameOverride=edge'] },
  { release: 'other', namespace: 'edge', set: ['fullnameOverride=purelb', 'lbnodeagent.createDefault=false', 'serviceGroup.create=false'] },
];
const MONITORING = ['grafanaDashboard.enabled=true', 'metrics.serviceMonitor.enabled=true', 'metrics.podMonitor.enabled=true', 'metrics.tokenSecret.name=prometheus-token', 'metrics.prometheusRule.enabled=true', 'metrics.readerSubjects[0].kind=Group', 'metrics.readerSubjects[0].name=monitoring'];

t.test('releases side by side, in one namespace and in several, render no object twice', async (t) => {
  const owner = new Map<string, string>();
  const clashes: string[] = [];
  for (const r of RELEASES) {
    const who = `${r.release} in ${r.namespace}`;
    const objs = objects(await tools.template({ ...r, set: [...(r.set ?? []), ...MONITORING] }));
    t.ok(objs.size >= 16, `${who}: ${objs.size} objects`);
    for (const o of objs.values()) {
      const id = identity(o, r.namespace);
      const first = owner.get(id);
      if (first && !id.startsWith('CustomResourceDefinition ')) clashes.push(`${id}: ${first} and ${who}`);
      else owner.set(id, who);
    }
  }
  t.same(clashes, [], 'no two releases render an object of one kind, namespace and name');
  // The forms of a cluster-scoped name (the namespace is left out where it is the full name).
  t.ok(owner.has('ClusterRole purelb:allocator') && owner.has('ClusterRole purelb-b:purelb:allocator') && owner.has('ClusterRole purelb:lb2-purelb:allocator'));
  t.ok(owner.has('ClusterRole edge:allocator') && owner.has('ClusterRole edge:purelb:allocator'), 'fullnameOverride names them');
  t.ok(owner.has('Deployment purelb/x-lb-allocator'), 'nameOverride replaces the chart name in the full name');
});

t.test('with default values, two releases in one namespace share only the custom resources, whose names are values', async (t) => {
  const ids = async (release: string): Promise<Set<string>> => new Set([...objects(await tools.template({ release })).values()].map((o) => identity(o, 'purelb')));
  const a = await ids('purelb');
  const b = await ids('second');
  t.same([...a].filter((id) => b.has(id) && !id.startsWith('CustomResourceDefinition ')).sort(), ['LBNodeAgent purelb/default', 'ServiceGroup purelb/default']);
});

t.test('each release refers to its own objects only', async (t) => {
  for (const r of RELEASES) {
    const who = `${r.release} in ${r.namespace}`;
    const objs = objects(await tools.template({ ...r, set: [...(r.set ?? []), ...MONITORING] }));
    const accounts = new Set(ofKind(objs, 'ServiceAccount').map((o) => o.metadata.name));
    const workloads = [...ofKind<Workload>(objs, 'Deployment'), ...ofKind<Workload>(objs, 'DaemonSet')];
    t.equal(workloads.length, 2, `${who}: a Deployment and a DaemonSet`);
    for (const w of workloads) {
      t.ok(accounts.has(w.spec.template.spec.serviceAccountName), `${who}: ${w.kind} ${w.metadata.name} runs as a ServiceAccount of the release`);
      t.equal(w.spec.selector.matchLabels['app.kubernetes.io/instance'], r.release, `${who}: ${w.kind} selects this release's pods only`);
    }
    for (const b of [...ofKind<Binding>(objs, 'RoleBinding'), ...ofKind<Binding>(objs, 'ClusterRoleBinding')]) {
      // Kubernetes' own ClusterRole for TokenReviews and SubjectAccessReviews (secure metrics).
      const builtIn = b.roleRef.name === 'system:auth-delegator';
      t.ok(builtIn || objs.has(`${b.roleRef.kind}/${b.roleRef.name}`), `${who}: ${b.kind} ${b.metadata.name} binds a role of the release`);
      // The metrics reader is bound to the scraper the operator names (metrics.readerSubjects).
      if (b.roleRef.name.endsWith(':metrics-reader')) {
        t.same(b.subjects, [{ kind: 'Group', name: 'monitoring' }], `${who}: the metrics reader is bound to metrics.readerSubjects`);
        continue;
      }
      for (const s of b.subjects) {
        t.ok(accounts.has(s.name) && s.namespace === r.namespace, `${who}: ${b.kind} ${b.metadata.name} binds ${s.namespace}/${s.name}, a ServiceAccount of the release`);
      }
    }
    for (const svc of ofKind<MetricsService>(objs, 'Service')) {
      const selected = workloads.filter((w) => Object.entries(svc.spec.selector).every(([k, v]) => w.spec.template.metadata.labels[k] === v));
      t.equal(selected.length, 1, `${who}: Service ${svc.metadata.name} selects the pods of one workload of the release`);
    }
    const alloc = ofKind<Workload>(objs, 'Deployment')[0]!;
    const agent = ofKind<Workload>(objs, 'DaemonSet')[0]!;
    const allocRole = ofKind<Role>(objs, 'Role').find((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'allocator')!;
    const agentRole = ofKind<Role>(objs, 'Role').find((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'lbnodeagent')!;
    const lease = envOf(alloc, 'PURELB_LEASE_NAME');
    t.ok(allocRole.rules.some((x) => x.resources.includes('leases') && x.resourceNames?.length === 1 && x.resourceNames[0] === lease), `${who}: the allocator may update its Lease ${lease}`);
    const secret = envOf(agent, 'PURELB_MEMBERLIST_SECRET');
    t.ok(objs.has(`Secret/${secret}`), `${who}: the agent reads the gossip Secret the release creates (${secret})`);
    t.ok(agentRole.rules.some((x) => x.resources.includes('secrets') && x.resourceNames?.[0] === secret), `${who}: and may read that one`);
  }
});

t.test('serviceAccount.create, .name and .annotations; rbac.create', async (t) => {
  const annotated = objects(await tools.template({ set: ['allocator.serviceAccount.annotations.team=net', 'lbnodeagent.serviceAccount.name=agent-sa'] }));
  t.same(pick(annotated, 'ServiceAccount/allocator').metadata.annotations, { team: 'net' }, 'annotations reach the ServiceAccount');
  t.notOk(pick(annotated, 'ServiceAccount/agent-sa').metadata.annotations, 'and only the one they are set on');
  t.equal(pick<Workload>(annotated, 'DaemonSet/lbnodeagent').spec.template.spec.serviceAccountName, 'agent-sa', 'name renames the created ServiceAccount');
  t.same(pick<Binding>(annotated, 'RoleBinding/lbnodeagent').subjects.map((s) => s.name), ['agent-sa'], 'and the bindings follow');

  const byName = objects(await tools.template({ set: ['allocator.serviceAccount.create=false', 'allocator.serviceAccount.name=mine', 'lbnodeagent.serviceAccount.create=false'] }));
  t.same(ofKind(byName, 'ServiceAccount').map((o) => o.metadata.name), [], 'create=false: no ServiceAccount rendered');
  t.equal(pick<Workload>(byName, 'Deployment/allocator').spec.template.spec.serviceAccountName, 'mine', 'the allocator runs as the one named');
  t.equal(pick<Workload>(byName, 'DaemonSet/lbnodeagent').spec.template.spec.serviceAccountName, 'default', 'no name: the namespace\'s default');
  t.same(pick<Binding>(byName, 'ClusterRoleBinding/purelb:allocator').subjects, [{ kind: 'ServiceAccount', name: 'mine', namespace: 'purelb' }], 'RBAC is bound to it');

  const noRbac = objects(await tools.template({ set: ['rbac.create=false'] }));
  t.same([...noRbac.values()].filter((o) => RBAC_KINDS.includes(o.kind)), [], 'rbac.create=false: no role or binding');
  t.ok(noRbac.has('ServiceAccount/allocator') && noRbac.has('Deployment/allocator'), 'the rest stays');
});

t.test('values.schema.json refuses names Kubernetes would', async (t) => {
  for (const set of ['fullnameOverride=Pure_LB', 'nameOverride=lb:2', 'allocator.serviceAccount.name=Bad', 'allocator.leaderElection.leaseName=-x', 'allocator.serviceAccount.create=yes']) {
    const err = await tools.template({ set: [set] }).then(
      () => 'rendered',
      (e: Error) => e.message,
    );
    t.match(err, /values don't meet the specifications of the schema/, `${set} is refused`);
  }
});
