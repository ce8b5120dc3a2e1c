// Installing and running PureLB in the lab: CRDs, the install namespace, default
// configuration, and the daemons as real processes (started by path, like a container
// would run them).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ControlPlane } from './control-plane.ts';
import { LabError, ManagedProcess, waitFor } from './exec.ts';
import type { KubeClient } from './kube-client.ts';
import type { LabNode } from './network.ts';

const repoRoot = join(import.meta.dirname, '..', '..');
export const PURELB_NAMESPACE = 'purelb';
export const MEMBERLIST_SECRET = 'purelb-memberlist';
/** The kernel here has no dummy driver; a bridge with no ports serves as the virtual interface. */
export const LAB_VIRTUAL_LINK_KIND = 'bridge';
export const CRD_DIR = join(repoRoot, 'charts', 'purelb', 'crds');

/** The lab's default pools: local addresses on the LAN, and a virtual range off it. */
export const DEFAULT_SERVICE_GROUP = {
  v4pools: [{ pool: '192.0.2.200-192.0.2.239', subnet: '192.0.2.0/24', aggregation: 'default' }],
  v6pools: [{ pool: '2001:db8::200-2001:db8::23f', subnet: '2001:db8::/64', aggregation: 'default' }],
} as const;

/** Parses a YAML stream (several documents) into objects. */
export function parseYamlObjects(text: string): Record<string, unknown>[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((o): o is Record<string, unknown> => o !== null && typeof o === 'object');
}

/** Applies the CRDs from charts/purelb/crds and waits until they are served. */
export async function installCrds(admin: KubeClient): Promise<string[]> {
  const names: string[] = [];
  for (const f of readdirSync(CRD_DIR).filter((x) => x.endsWith('.yaml')).sort()) {
    for (const crd of parseYamlObjects(readFileSync(join(CRD_DIR, f), 'utf8'))) {
      const name = (crd.metadata as { name: string }).name;
      await admin.apply(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`, crd);
      names.push(name);
    }
  }
  for (const name of names) {
    await waitFor(
      `CRD ${name} to be established`,
      async () => {
        const c = await admin.get<{ status?: { conditions?: { type: string; status: string }[] } }>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
        return c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') ? true : undefined;
      },
      30_000,
    );
  }
  await waitFor('purelb.io/v1 to be served', async () => ((await admin.raw('GET', '/apis/purelb.io/v1')).status === 200 ? true : undefined), 30_000);
  return names;
}

/** CRDs, the purelb namespace, and (unless `defaults: false`) a default ServiceGroup and LBNodeAgent. */
export async function installPureLB(admin: KubeClient, opts: { defaults?: boolean; sendgarp?: boolean } = {}): Promise<void> {
  await installCrds(admin);
  const r = await admin.raw('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: PURELB_NAMESPACE } });
  if (r.status !== 201 && r.status !== 409) throw new LabError('LAB_API_ERROR', `create namespace ${PURELB_NAMESPACE}: HTTP ${r.status} ${r.body}`);
  // The gossip key, as the chart generates it: 32 random bytes, base64, under "key".
  const key = Buffer.from(randomBytes(32).toString('base64')).toString('base64');
  await admin.apply(`/api/v1/namespaces/${PURELB_NAMESPACE}/secrets/${MEMBERLIST_SECRET}`, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: MEMBERLIST_SECRET, namespace: PURELB_NAMESPACE },
    type: 'Opaque',
    data: { key },
  });
  if (opts.defaults === false) return;
  await admin.apply(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups/default`, {
    apiVersion: 'purelb.io/v1',
    kind: 'ServiceGroup',
    metadata: { name: 'default', namespace: PURELB_NAMESPACE },
    spec: { local: DEFAULT_SERVICE_GROUP },
  });
  await admin.apply(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/lbnodeagents/default`, {
    apiVersion: 'purelb.io/v1',
    kind: 'LBNodeAgent',
    metadata: { name: 'default', namespace: PURELB_NAMESPACE },
    spec: { local: { extlbint: 'kube-lb0', localint: 'default', sendgarp: opts.sendgarp ?? true } },
  });
}

/**
 * How the image runs an app, with this machine's node: the Node flags and the bundle that
 * `node tools/bundle.ts <app>` wrote to apps/<app>/dist (its report carries the flags,
 * which come from the app's package.json).
 */
export function shippedCommand(app: 'allocator' | 'lbnodeagent'): string[] {
  const dist = join(repoRoot, 'apps', app, 'dist');
  const reportFile = join(dist, `${app}.bundle.json`);
  if (!existsSync(reportFile)) throw new LabError('LAB_NOT_BUILT', `${reportFile} does not exist: run node tools/bundle.ts ${app}`);
  const report = JSON.parse(readFileSync(reportFile, 'utf8')) as { bundle?: string; nodeFlags?: string[] };
  if (!report.bundle || !Array.isArray(report.nodeFlags)) throw new LabError('LAB_NOT_BUILT', `${reportFile} names no bundle or nodeFlags: run node tools/bundle.ts ${app}`);
  return [...report.nodeFlags, join(dist, report.bundle)];
}

/** How the lab runs a daemon: from its TypeScript sources (default), or `shipped` as its image does. */
export interface DaemonStartOptions {
  /** The daemon's flags, after the lab's own (which they override). */
  readonly args?: readonly string[];
  readonly shipped?: boolean;
  /** Extra Node flags (profiling: `--cpu-prof`, `--heapsnapshot-signal=SIGUSR2`). */
  readonly nodeArgs?: readonly string[];
}

export interface DaemonProcess extends ManagedProcess {
  /** Port of its /metrics server (plain HTTP unless started with --metrics-secure=true). */
  readonly metricsPort: number;
  /** Port of its /healthz, /readyz server. */
  readonly healthPort: number;
}

/**
 * Starts an allocator replica against the lab's API server and waits until its caches
 * are synced. Extra flags override the lab's (short Lease timings for fast takeover).
 */
export async function startAllocator(cp: ControlPlane, opts: DaemonStartOptions & { identity: string }): Promise<DaemonProcess> {
  const args = [
    ...(opts.nodeArgs ?? []),
    ...(opts.shipped ? shippedCommand('allocator') : ['--conditions=@purelb/source', join(repoRoot, 'apps', 'allocator', 'src', 'main.ts')]),
    `--kubeconfig=${cp.kubeconfigPath}`,
    `--namespace=${PURELB_NAMESPACE}`,
    `--identity=${opts.identity}`,
    '--metrics-host=127.0.0.1',
    '--metrics-port=0',
    '--health-port=0',
    // Tests scrape plain HTTP; the secure endpoint is tested on its own (args override).
    '--metrics-secure=false',
    ...(opts.args ?? []),
  ];
  const p = new ManagedProcess(`allocator ${opts.identity}`, process.execPath, args);
  const ports = await waitFor(
    `allocator ${opts.identity} to sync its caches`,
    () => {
      if (!p.running) throw new LabError('LAB_DAEMON_EXITED', `allocator ${opts.identity} exited:\n${p.tail(30)}`);
      const log = p.tail(200);
      if (!log.includes('caches synced')) return undefined;
      const m = /"port":(\d+),"healthPort":(\d+)[^\n]*serving \/metrics/.exec(log);
      return m ? { metricsPort: Number(m[1]), healthPort: Number(m[2]) } : undefined;
    },
    30_000,
    25,
  );
  return Object.assign(p, ports);
}

/**
 * Starts a node agent inside a lab node's network namespace (as a DaemonSet Pod with
 * hostNetwork would run on that node) and waits until it has synced and started.
 */
export async function startAgent(cp: ControlPlane, node: LabNode, opts: DaemonStartOptions = {}): Promise<DaemonProcess> {
  const args = [
    'netns',
    'exec',
    node.netns,
    process.execPath,
    ...(opts.nodeArgs ?? []),
    ...(opts.shipped ? shippedCommand('lbnodeagent') : ['--conditions=@purelb/source', join(repoRoot, 'apps', 'lbnodeagent', 'src', 'main.ts')]),
    `--kubeconfig=${cp.kubeconfigPath}`,
    `--namespace=${PURELB_NAMESPACE}`,
    `--node-name=${node.name}`,
    `--virtual-link-kind=${LAB_VIRTUAL_LINK_KIND}`,
    '--metrics-host=127.0.0.1',
    '--metrics-port=0',
    '--health-port=0',
    // Tests scrape plain HTTP; the secure endpoint is tested on its own (args override).
    '--metrics-secure=false',
    ...(opts.args ?? []),
  ];
  const p = new ManagedProcess(`agent ${node.name}`, 'ip', args);
  const ports = await waitFor(
    `agent ${node.name} to start`,
    () => {
      if (!p.running) throw new LabError('LAB_DAEMON_EXITED', `agent ${node.name} exited:\n${p.tail(30)}`);
      const log = p.tail(200);
      if (!log.includes('agent started')) return undefined;
      const m = /"port":(\d+),"healthPort":(\d+)[^\n]*serving \/metrics/.exec(log);
      return m ? { metricsPort: Number(m[1]), healthPort: Number(m[2]) } : undefined;
    },
    30_000,
    25,
  );
  return Object.assign(p, ports);
}
