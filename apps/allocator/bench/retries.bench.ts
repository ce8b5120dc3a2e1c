// npm run bench -- allocator-retries: how hard the allocator presses the API server about a
// Service whose status write is always refused, against the lab's real kube-apiserver.
// The refusal is the server's own: a ValidatingAdmissionPolicy (built in, no webhook)
// denies every UPDATE of services/status for Services named refused-*, answering 403. The
// figure is the refused PATCHes the API server counted (apiserver_request_total) in the
// minute after such a Service was created, one fresh Service per run.
import { type DaemonProcess, type Lab, PURELB_NAMESPACE, installPureLB, startAllocator, startLab, waitFor } from '@purelb/lab';
import { type BenchSuite, machineLoad, median, nowMs } from '../../../bench/lib.ts';

const RUNS = 3;
const WINDOW_MS = 60_000;
const NS = 'retries';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** apiserver_request_total of PATCH services/status, by HTTP code. */
async function statusPatches(lab: Lab): Promise<Map<string, number>> {
  const r = await lab.controlPlane.admin.raw('GET', '/metrics');
  if (r.status !== 200) throw new Error(`GET /metrics of the API server: HTTP ${r.status}`);
  const out = new Map<string, number>();
  for (const line of r.body.split('\n')) {
    const m = /^apiserver_request_total\{([^}]*)\}\s+([0-9.e+]+)/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (labels.verb !== 'PATCH' || labels.resource !== 'services' || labels.subresource !== 'status') continue;
    out.set(labels.code ?? '', (out.get(labels.code ?? '') ?? 0) + Number(m[2]));
  }
  return out;
}

const suite: BenchSuite = {
  suite: 'allocator-retries',
  targets: { requests_per_failing_service_per_minute: ['<=', 10] },
  async run() {
    const started = nowMs();
    const notes: Record<string, string | number> = { machine_at_start: machineLoad() };
    const lab = await startLab({ nodes: 1 });
    let allocator: DaemonProcess | undefined;
    try {
      const admin = lab.controlPlane.admin;
      await installPureLB(admin, { defaults: false });
      await admin.apply(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups/default`, {
        apiVersion: 'purelb.io/v1',
        kind: 'ServiceGroup',
        metadata: { name: 'default', namespace: PURELB_NAMESPACE },
        spec: { local: { v4pools: [{ pool: '198.51.100.10-198.51.100.200', subnet: '198.51.100.0/24', aggregation: 'default' }] } },
      });
      await admin.apply('/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/refuse-service-status', {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicy',
        metadata: { name: 'refuse-service-status' },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: { resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['services/status'] }] },
          validations: [{ expression: "!object.metadata.name.startsWith('refused-')", message: 'status writes of refused-* Services are refused (allocator-retries bench)', reason: 'Forbidden' }],
        },
      });
      await admin.apply('/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/refuse-service-status', {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicyBinding',
        metadata: { name: 'refuse-service-status' },
        spec: { policyName: 'refuse-service-status', validationActions: ['Deny'] },
      });
      await admin.apply(`/api/v1/namespaces/${NS}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
      allocator = await startAllocator(lab.controlPlane, { identity: 'bench-retries' });
      const a = allocator;
      await waitFor('the allocator to lead', () => (a.tail(200).includes('became leader') ? true : undefined), 60_000, 50);

      // The policy takes a moment to be in force: a probe Service must be refused first, and a normal one served.
      const service = (name: string) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS }, spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }] } });
      await admin.apply(`/api/v1/namespaces/${NS}/services/served`, service('served'));
      await waitFor('a normal Service to get an address', async () => {
        const s = await admin.get<{ status?: { loadBalancer?: { ingress?: unknown[] } } }>(`/api/v1/namespaces/${NS}/services/served`);
        return (s.status?.loadBalancer?.ingress?.length ?? 0) > 0 ? true : undefined;
      }, 30_000, 100);
      await waitFor('the policy to refuse a status write', async () => {
        await admin.apply(`/api/v1/namespaces/${NS}/services/refused-probe`, service('refused-probe'));
        const r = await admin.raw('PATCH', `/api/v1/namespaces/${NS}/services/refused-probe/status`, { status: { loadBalancer: { ingress: [{ ip: '198.51.100.250' }] } } }, 'application/merge-patch+json');
        return r.status === 403 ? true : undefined;
      }, 30_000, 500);
      await admin.raw('DELETE', `/api/v1/namespaces/${NS}/services/refused-probe`);
      await sleep(2000);

      const perMinute: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const before = await statusPatches(lab);
        const t0 = nowMs();
        await admin.apply(`/api/v1/namespaces/${NS}/services/refused-${run}`, service(`refused-${run}`));
        await sleep(WINDOW_MS - (nowMs() - t0));
        const after = await statusPatches(lab);
        const diff = [...after].map(([code, v]) => [code, v - (before.get(code) ?? 0)] as const).filter(([, v]) => v > 0);
        const refused = diff.filter(([code]) => code !== '200').reduce((s, [, v]) => s + v, 0);
        perMinute.push(refused);
        notes[`run_${run}`] = `refused-${run}: PATCH services/status in ${WINDOW_MS / 1000} s after its creation: ${diff.map(([c, v]) => `${v} x ${c}`).join(', ') || 'none'}`;
        await admin.raw('DELETE', `/api/v1/namespaces/${NS}/services/refused-${run}`);
      }
      const log = allocator.tail(400).split('\n').filter((l) => l.includes('refused-0') && l.includes('status write failed'));
      notes.retry_delays_ms_refused_0 = log.map((l) => /"retryInMs":(\d+)/.exec(l)?.[1] ?? '?').join(' ');
      notes.method = 'a ValidatingAdmissionPolicy denies UPDATE of services/status for names refused-* (403 Forbidden); refused PATCHes counted by the API server (apiserver_request_total, code != 200) in the 60 s after the Service was created; one fresh Service per run, median of runs';
      notes.bound = 'per-Service backoff 250 ms doubling to 5 min: at most 8 attempts in any minute (at 0, 0.25, 0.75, 1.75, 3.75, 7.75, 15.75, 31.75 s), then one every few minutes';
      notes.suite_seconds = Math.round((nowMs() - started) / 1000);
      notes.machine_at_end = machineLoad();
      return { metrics: { requests_per_failing_service_per_minute: median(perMinute) }, notes, samples: { requests_per_failing_service_per_minute: perMinute } };
    } finally {
      await allocator?.stop().catch(() => undefined);
      await lab.stop();
    }
  },
};

export default suite;
