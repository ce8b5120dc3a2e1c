// Monitoring without an API server: the pods' prometheus.io annotations, the ServiceMonitor
// and PodMonitor from values, and the PrometheusRule: the alerts asked for, each
// expression parsed by Prometheus's own parser (tools/promql), every purelb_* metric it
// names registered by the daemons' code (a renamed metric fails here), and the alerts'
// values. The API server checks the rendered objects in helm.test.ts (stand-in CRDs).
import { join } from 'node:path';
import t from 'tap';
import { createJsonLogger, KubeClient, type MetricsRegistry } from '@purelb/k8s-glue';
import type { Membership } from '@purelb/election';
import { runBuildScript } from '@purelb/lab';
import { runTool } from '../../../tools/manifest.ts';
import { createMetrics as allocatorMetrics } from '../../../apps/allocator/src/metrics.ts';
import { createMetrics as agentMetrics } from '../../../apps/lbnodeagent/src/metrics.ts';
import { GossipSecretWatcher } from '../../../apps/lbnodeagent/src/gossip-secret.ts';
import { REPO_ROOT, Tools, objects, pick, type KObject } from './helpers.ts';

const tools = await Tools.create(t);
const promqlCheck = await runBuildScript(join(REPO_ROOT, 'tools', 'promql', 'build.sh'));

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
type PrometheusRule = KObject & { spec: { groups: { name: string; rules: Rule[] }[] } };
interface Endpoint {
  port: string;
  scheme?: string;
  bearerTokenFile?: string;
  authorization?: { type: string; credentials: { name: string; key: string } };
  tlsConfig?: Record<string, unknown>;
  interval: string;
  scrapeTimeout: string;
  relabelings: Record<string, unknown>[];
  metricRelabelings?: Record<string, unknown>[];
}
type Monitor = KObject & {
  spec: {
    jobLabel: string;
    selector: { matchLabels: Record<string, string>; matchExpressions?: { key: string; operator: string; values: string[] }[] };
    endpoints?: Endpoint[];
    podMetricsEndpoints?: Endpoint[];
  };
};
interface Container {
  env?: { name: string; value?: string }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
type Workload = KObject & {
  spec: { template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: { containers: Container[]; volumes?: { name: string; secret?: { secretName: string } }[] } } };
};
type Binding = KObject & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace?: string }[] };

/** What the issue asks to alert on, by alert name. */
const REQUIRED_ALERTS = [
  'PureLBAddressPoolHighUsage', // a pool over 90% used
  'PureLBAddressPoolExhausted', // a pool 100% used
  'PureLBAllocationFailures', // allocation failures rising
  'PureLBAgentIsolated', // an agent fenced or isolated
  'PureLBAllocatorNoLeader', // no allocator leader
  'PureLBAgentNotRunning', // a node agent not running on a node
  'PureLBNodeARPUnsafe', // a node answering ARP for addresses it does not hold
  'PureLBServiceGroupSelectsNoNode', // a ServiceGroup whose node selector selects no node
];
/** Metrics the alerts use that PureLB does not export: Prometheus's own, and kube-state-metrics'. */
const NOT_OURS = new Set(['up', 'kube_daemonset_status_number_unavailable']);

/** The registries the daemons serve on /metrics, built by their own code. */
function daemonRegistries(): MetricsRegistry[] {
  const allocator = allocatorMetrics();
  // createMetrics reads the membership only when /metrics is collected, which never happens here.
  const agent = agentMetrics({} as Membership);
  // Registers purelb_gossip_secret_valid on the agent's registry, as the agent's main does;
  // the client is never called (the watcher is not started).
  new GossipSecretWatcher({ namespace: 'purelb', name: 'purelb-memberlist' }, [], {
    client: new KubeClient({ server: 'https://127.0.0.1:1' }),
    log: createJsonLogger({ name: 'test', level: 'silent' }),
    events: { event: () => undefined },
    registry: agent.registry,
    apply: () => undefined,
  });
  return [allocator.registry, agent.registry];
}

/** Whether a daemon registers `name` (a histogram's _bucket, _sum and _count series included). */
function registered(registries: MetricsRegistry[], name: string): boolean {
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return registries.some((r) => r.get(name) !== undefined || (base !== name && r.get(base)?.type === 'histogram'));
}

async function parse(exprs: string[]): Promise<{ expr: string; metrics?: string[]; error?: string }[]> {
  return JSON.parse(await runTool(promqlCheck, [], { input: JSON.stringify(exprs) })) as { expr: string; metrics?: string[]; error?: string }[];
}

async function rules(set: string[] = []): Promise<Rule[]> {
  const objs = objects(await tools.template({ set: ['metrics.prometheusRule.enabled=true', ...set] }));
  return pick<PrometheusRule>(objs, 'PrometheusRule/purelb').spec.groups.flatMap((g) => g.rules);
}

t.test('the parser tool parses, names metrics and reports errors (so the checks below can fail)', async (t) => {
  const [good, bad] = await parse(['sum by (node) (rate(purelb_stalls_total{namespace="purelb"}[5m])) > 0 or absent(up)', 'rate(purelb_stalls_total[5m]']);
  t.same(good, { expr: good?.expr, metrics: ['purelb_stalls_total', 'up'] });
  t.match(bad?.error, /parse error/);
  t.ok(registered(daemonRegistries(), 'purelb_event_loop_lag_seconds_bucket'), 'a histogram\'s series count as registered');
  t.notOk(registered(daemonRegistries(), 'purelb_allocations'), 'a name that is not registered does not');
});

t.test('PrometheusRule: the alerts that matter, valid PromQL, only metrics the daemons register', async (t) => {
  const all = await rules();
  const names = all.map((r) => r.alert);
  for (const a of REQUIRED_ALERTS) t.ok(names.includes(a), `${a} is there`);
  t.equal(new Set(names).size, names.length, 'no alert twice');
  const registries = daemonRegistries();
  const parsed = await parse(all.map((r) => r.expr));
  const used = new Set<string>();
  parsed.forEach((p, i) => {
    const alert = all[i]!.alert;
    t.equal(p.error, undefined, `${alert}: the expression parses`);
    t.ok((p.metrics ?? []).length > 0, `${alert}: it selects metrics (${(p.metrics ?? []).join(', ')})`);
    for (const m of p.metrics ?? []) {
      used.add(m);
      if (NOT_OURS.has(m)) continue;
      t.ok(m.startsWith('purelb_') && registered(registries, m), `${alert}: ${m} is a metric the daemons register`);
    }
    t.match(p.expr, /namespace="purelb"/, `${alert}: limited to the release's namespace`);
    t.ok(all[i]!.labels.severity && all[i]!.annotations.summary && all[i]!.annotations.description, `${alert}: severity, summary and description`);
  });
  t.same([...NOT_OURS].filter((m) => !used.has(m)), [], 'every metric from elsewhere is one an alert uses');
  const byName = new Map(all.map((r) => [r.alert, r]));
  t.match(byName.get('PureLBAddressPoolHighUsage')?.expr, /> 90 < 100$/, 'over 90% (and below the exhausted alert)');
  t.match(byName.get('PureLBAgentIsolated')?.expr, /mode=~"lease\|fenced"/, 'isolated (lease) or fenced');
  t.match(byName.get('PureLBAgentNotRunning')?.expr, /daemonset="lbnodeagent"/, 'the release\'s DaemonSet by name');
  t.match(byName.get('PureLBAgentDown')?.expr, /job="lbnodeagent"/, 'the job the monitors give the agents');
});

t.test('PrometheusRule values: thresholds, for, severity, alerts off, labels', async (t) => {
  const changed = await rules(['metrics.prometheusRule.alerts.addressPoolHighUsage.percent=80', 'metrics.prometheusRule.alerts.allocatorNoLeader.for=5m', 'metrics.prometheusRule.alerts.agentNotRunning.enabled=false', 'metrics.prometheusRule.alerts.agentIsolated.severity=critical']);
  const byName = new Map(changed.map((r) => [r.alert, r]));
  t.match(byName.get('PureLBAddressPoolHighUsage')?.expr, /> 80 < 100$/);
  t.match(byName.get('PureLBAddressPoolHighUsage')?.annotations.summary, /over 80%/);
  t.equal(byName.get('PureLBAllocatorNoLeader')?.for, '5m');
  t.notOk(byName.has('PureLBAgentNotRunning'), 'an alert turned off is left out');
  t.equal(byName.get('PureLBAgentIsolated')?.labels.severity, 'critical');
  const off = ['addressPoolHighUsage', 'addressPoolExhausted', 'allocationFailures', 'allocatorNoLeader'].map((a) => `metrics.prometheusRule.alerts.${a}.enabled=false`);
  const objs = objects(await tools.template({ set: ['metrics.prometheusRule.enabled=true', 'metrics.prometheusRule.additionalLabels.release=prom', ...off] }));
  const rule = pick<PrometheusRule>(objs, 'PrometheusRule/purelb');
  t.same(rule.spec.groups.map((g) => g.name), ['purelb.nodes'], 'a group whose alerts are all off is left out');
  t.equal(rule.metadata.labels?.release, 'prom', 'additionalLabels');
  t.notOk([...objects(await tools.template()).keys()].some((k) => k.startsWith('PrometheusRule/')), 'off by default');
  const err = await tools.template({ set: ['metrics.prometheusRule.enabled=true', 'metrics.prometheusRule.alerts.addressPoolHighUsage.percent=100'] }).then(
    () => 'rendered',
    (e: Error) => e.message,
  );
  t.match(err, /percent/, 'a threshold of 100% is refused (that is the exhausted alert)');
});

t.test('pod annotations prometheus.io/scrape and /port: on by default, switchable', async (t) => {
  const on = objects(await tools.template());
  t.same(pick<Workload>(on, 'Deployment/allocator').spec.template.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '7472', 'prometheus.io/scheme': 'https' });
  t.same(pick<Workload>(on, 'DaemonSet/lbnodeagent').spec.template.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '7473', 'prometheus.io/scheme': 'https' });
  const plain = objects(await tools.template({ set: ['metrics.secure=false'] }));
  t.same(pick<Workload>(plain, 'Deployment/allocator').spec.template.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '7472' }, 'secure=false: plain HTTP');
  const off = objects(await tools.template({ set: ['metrics.scrapeAnnotations=false', 'lbnodeagent.podAnnotations.team=net'] }));
  t.equal(pick<Workload>(off, 'Deployment/allocator').spec.template.metadata.annotations, undefined, 'off: none');
  t.same(pick<Workload>(off, 'DaemonSet/lbnodeagent').spec.template.metadata.annotations, { team: 'net' }, 'podAnnotations stay');
});

t.test('ServiceMonitor and PodMonitor from values', async (t) => {
  const objs = objects(
    await tools.template({
      set: [
        'metrics.serviceMonitor.enabled=true',
        'metrics.serviceMonitor.labels.release=old',
        'metrics.serviceMonitor.additionalLabels.team=net',
        'metrics.serviceMonitor.annotations.owner=net',
        'metrics.podMonitor.enabled=true',
        'metrics.tokenSecret.name=prometheus-token',
        'metrics.podMonitor.additionalLabels.release=prom',
        'metrics.podMonitor.interval=15s',
      ],
      values: [
        'metrics:\n  serviceMonitor:\n    relabelings:\n    - {sourceLabels: [__meta_kubernetes_pod_name], targetLabel: instance}\n    metricRelabelings:\n    - {sourceLabels: [__name__], regex: purelb_allocator_process_.*, action: drop}\n',
      ],
    }),
  );
  const sm = pick<Monitor>(objs, 'ServiceMonitor/purelb');
  t.equal(sm.metadata.labels?.release, 'old', 'the older labels key still applies');
  t.equal(sm.metadata.labels?.team, 'net', 'additionalLabels apply');
  t.same(sm.metadata.annotations, { owner: 'net' });
  const ep = sm.spec.endpoints![0]!;
  t.same(ep.relabelings, [
    { sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node', action: 'replace' },
    { sourceLabels: ['__meta_kubernetes_pod_name'], targetLabel: 'instance' },
  ], 'the node label first, then yours');
  t.same(ep.metricRelabelings, [{ sourceLabels: ['__name__'], regex: 'purelb_allocator_process_.*', action: 'drop' }]);
  const clash = pick<Monitor>(objects(await tools.template({ set: ['metrics.serviceMonitor.enabled=true', 'metrics.serviceMonitor.labels.release=old', 'metrics.serviceMonitor.additionalLabels.release=new'] })), 'ServiceMonitor/purelb');
  t.equal(clash.metadata.labels?.release, 'new', 'additionalLabels win over labels');

  const pm = pick<Monitor>(objs, 'PodMonitor/purelb');
  t.equal(pm.metadata.labels?.release, 'prom');
  t.equal(pm.spec.jobLabel, 'app.kubernetes.io/name', 'job = the component, as the ServiceMonitor\'s');
  const pe = pm.spec.podMetricsEndpoints![0]!;
  t.equal(pe.port, 'metrics');
  t.equal(pe.interval, '15s');
  t.same(pe.relabelings, [{ sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node', action: 'replace' }]);
  // Its selector takes both components' pods of this release, and no other release's.
  const other = objects(await tools.template({ release: 'lb2' }));
  const pods = [...objs.values(), ...other.values()].filter((o): o is Workload => o.kind === 'Deployment' || o.kind === 'DaemonSet');
  const selects = (w: Workload): boolean => {
    const labels = w.spec.template.metadata.labels;
    return Object.entries(pm.spec.selector.matchLabels).every(([k, v]) => labels[k] === v) && (pm.spec.selector.matchExpressions ?? []).every((e) => e.operator === 'In' && e.values.includes(labels[e.key] ?? ''));
  };
  t.same(pods.filter(selects).map((w) => w.metadata.name).sort(), ['allocator', 'lbnodeagent'], 'the PodMonitor selects both components of its release only');
});

t.test('secure metrics: HTTPS monitors with a bearer token, auth-delegator for both daemons, the metrics-reader ClusterRole', async (t) => {
  const objs = objects(await tools.template({ set: ['metrics.serviceMonitor.enabled=true'] }));
  const ep = pick<Monitor>(objs, 'ServiceMonitor/purelb').spec.endpoints![0]!;
  t.equal(ep.scheme, 'https');
  t.equal(ep.bearerTokenFile, '/var/run/secrets/kubernetes.io/serviceaccount/token', 'Prometheus sends its own service account token');
  t.same(ep.tlsConfig, { insecureSkipVerify: true }, 'the self-signed certificate is not verified');
  for (const c of ['allocator', 'lbnodeagent']) {
    const b = pick<Binding>(objs, `ClusterRoleBinding/purelb:${c}:auth-delegator`);
    t.same(b.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' }, `${c}: may ask TokenReviews and SubjectAccessReviews`);
    t.same(b.subjects, [{ kind: 'ServiceAccount', name: c, namespace: 'purelb' }]);
  }
  t.same(pick<KObject & { rules: unknown[] }>(objs, 'ClusterRole/purelb:metrics-reader').rules, [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }]);
  t.notOk(objs.has('ClusterRoleBinding/purelb:metrics-reader'), 'no readerSubjects: no binding');
  const alloc = pick<Workload>(objs, 'Deployment/allocator').spec.template.spec;
  t.notOk(alloc.containers[0]!.env?.some((e) => e.name === 'PURELB_METRICS_CERT_FILE'), 'no certSecret: self-signed at start');

  const given = objects(
    await tools.template({
      set: ['metrics.serviceMonitor.enabled=true', 'metrics.podMonitor.enabled=true', 'metrics.certSecret=purelb-metrics-tls', 'metrics.tokenSecret.name=prom-token', 'metrics.tokenSecret.key=t'],
      values: ['metrics:\n  tlsConfig: {ca: {secret: {name: purelb-metrics-tls, key: ca.crt}}, serverName: purelb}\n  readerSubjects: [{kind: ServiceAccount, name: prometheus-k8s, namespace: monitoring}]\n'],
    }),
  );
  for (const key of ['ServiceMonitor/purelb', 'PodMonitor/purelb']) {
    const m = pick<Monitor>(given, key).spec;
    const e = (m.endpoints ?? m.podMetricsEndpoints)![0]!;
    t.same(e.authorization, { type: 'Bearer', credentials: { name: 'prom-token', key: 't' } }, `${key}: the token from the Secret`);
    t.equal(e.bearerTokenFile, undefined);
    t.same(e.tlsConfig, { ca: { secret: { name: 'purelb-metrics-tls', key: 'ca.crt' } }, serverName: 'purelb' }, `${key}: tlsConfig as given`);
  }
  for (const key of ['Deployment/allocator', 'DaemonSet/lbnodeagent']) {
    const pod = pick<Workload>(given, key).spec.template.spec;
    const c = pod.containers[0]!;
    const env = (n: string) => c.env?.find((e) => e.name === n)?.value;
    t.equal(env('PURELB_METRICS_CERT_FILE'), '/etc/purelb/metrics-tls/tls.crt', `${key}: the certificate from the Secret`);
    t.equal(env('PURELB_METRICS_KEY_FILE'), '/etc/purelb/metrics-tls/tls.key');
    t.same(c.volumeMounts?.find((v) => v.name === 'metrics-tls'), { name: 'metrics-tls', mountPath: '/etc/purelb/metrics-tls', readOnly: true });
    t.same(pod.volumes?.find((v) => v.name === 'metrics-tls')?.secret, { secretName: 'purelb-metrics-tls' });
  }
  const rb = pick<Binding>(given, 'ClusterRoleBinding/purelb:metrics-reader');
  t.same(rb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'purelb:metrics-reader' });
  t.same(rb.subjects, [{ kind: 'ServiceAccount', name: 'prometheus-k8s', namespace: 'monitoring' }]);

  const err = await tools.template({ set: ['metrics.podMonitor.enabled=true'] }).then(
    () => 'rendered',
    (e: Error) => e.message,
  );
  t.match(err, /metrics\.podMonitor\.enabled with metrics\.secure needs metrics\.tokenSecret\.name/, 'a secure PodMonitor without a token Secret is refused, saying why');

  const plain = objects(await tools.template({ set: ['metrics.secure=false', 'metrics.serviceMonitor.enabled=true', 'metrics.certSecret=ignored'] }));
  const pe = pick<Monitor>(plain, 'ServiceMonitor/purelb').spec.endpoints![0]!;
  t.equal(pe.scheme, undefined, 'secure=false: plain HTTP');
  t.equal(pe.bearerTokenFile, undefined);
  t.equal(pe.tlsConfig, undefined);
  t.notOk([...plain.keys()].some((k) => k.endsWith(':auth-delegator')), 'secure=false: no auth-delegator bindings');
  const pc = pick<Workload>(plain, 'Deployment/allocator').spec.template.spec;
  t.equal(pc.containers[0]!.env?.find((e) => e.name === 'PURELB_METRICS_SECURE')?.value, 'false');
  t.notOk(pc.volumes?.some((v) => v.name === 'metrics-tls'), 'and no certificate mounted');
});

t.test('Grafana dashboard: an optional ConfigMap; its JSON parses, every query parses and names only metrics the daemons export', async (t) => {
  t.notOk([...objects(await tools.template()).keys()].some((k) => k.startsWith('ConfigMap/')), 'off by default');
  const objs = objects(await tools.template({ set: ['grafanaDashboard.enabled=true', 'grafanaDashboard.namespace=monitoring', 'grafanaDashboard.label=dashboards', 'grafanaDashboard.labelValue=purelb', 'grafanaDashboard.annotations.folder=Network'] }));
  const cm = pick<KObject & { data: Record<string, string> }>(objs, 'ConfigMap/purelb-grafana-dashboard');
  t.equal(cm.metadata.namespace, 'monitoring', 'namespace override');
  t.equal(cm.metadata.labels?.dashboards, 'purelb', 'the sidecar label, as configured');
  t.same(cm.metadata.annotations, { folder: 'Network' });
  const defaults = pick<KObject>(objects(await tools.template({ set: ['grafanaDashboard.enabled=true'] })), 'ConfigMap/purelb-grafana-dashboard');
  t.equal(defaults.metadata.labels?.grafana_dashboard, '1', 'default label grafana_dashboard: "1"');
  t.equal(defaults.metadata.namespace, 'purelb', 'default: the release namespace');

  interface Panel {
    title: string;
    type: string;
    targets?: { expr: string }[];
  }
  const dashboard = JSON.parse(cm.data['purelb.json']!) as { uid: string; title: string; panels: Panel[] };
  t.equal(dashboard.uid, 'purelb');
  const targets = dashboard.panels.flatMap((p) => (p.targets ?? []).map((x) => ({ panel: p.title, expr: x.expr })));
  t.ok(targets.length >= 20, `${targets.length} queries`);
  // Grafana replaces $__rate_interval before the query reaches Prometheus.
  const parsed = await parse(targets.map((x) => x.expr.replaceAll('$__rate_interval', '5m')));
  const registries = daemonRegistries();
  const used = new Set<string>();
  parsed.forEach((p, i) => {
    const panel = targets[i]!.panel;
    t.equal(p.error, undefined, `${panel}: ${targets[i]!.expr} parses`);
    t.ok((p.metrics ?? []).length > 0, `${panel}: it selects metrics`);
    for (const m of p.metrics ?? []) {
      used.add(m);
      t.ok(registered(registries, m), `${panel}: ${m} is a metric the daemons export`);
    }
  });
  for (const m of ['purelb_address_pool_addresses_in_use', 'purelb_allocation_failures_total', 'purelb_allocator_leader', 'purelb_guard_mode', 'purelb_addresses_announced', 'purelb_servicegroup_selected_nodes', 'purelb_memberlist_dropped_total', 'purelb_k8s_request_duration_seconds_bucket', 'process_resident_memory_bytes']) {
    t.ok(used.has(m), `the dashboard shows ${m}`);
  }
});
