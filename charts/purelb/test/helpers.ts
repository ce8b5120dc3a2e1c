// Helpers for the chart's tests: helm and kubectl as real processes, values files, the
// chart's own ServiceAccount tokens, and a Service that waits for its address. Not a test file.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { type ControlPlane, type KubeClient, kubeconfig, parseYamlObjects, waitFor } from '@purelb/lab';
import { CHART_DIR, ensureHelm, runTool } from '../../../tools/manifest.ts';

export { CHART_DIR };
export const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');

/** A Kubernetes object as rendered or read back. */
export interface KObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** A temp dir removed in the test's teardown. */
export function tempDir(t: Pick<Test, 'teardown'>, prefix = 'plb-chart-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Values files written so far (each render writes its own, so renders may run at once). */
let valuesFiles = 0;

/** What `Tools.template` renders: release `purelb` of this chart in namespace `purelb` unless told otherwise. */
export interface TemplateOptions {
  release?: string;
  namespace?: string;
  /** Another chart directory (e.g. an older version laid out in a temp dir). */
  chart?: string;
  set?: readonly string[];
  values?: readonly string[];
  includeCrds?: boolean;
}

/** Runs helm and kubectl with a private HOME-like state, so the user's config is never read or written. */
export class Tools {
  readonly helmBin: string;
  readonly dir: string;

  constructor(helmBin: string, dir: string) {
    this.helmBin = helmBin;
    this.dir = dir;
  }

  /** Builds helm if needed (tools/helm/build.sh: minutes once per machine, then cached). */
  static async create(t: Pick<Test, 'teardown'>): Promise<Tools> {
    return new Tools(await ensureHelm(), tempDir(t, 'plb-chart-tools-'));
  }

  env(kubeconfigPath?: string): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: this.dir,
      HELM_CACHE_HOME: join(this.dir, 'helm-cache'),
      HELM_CONFIG_HOME: join(this.dir, 'helm-config'),
      HELM_DATA_HOME: join(this.dir, 'helm-data'),
      KUBECACHEDIR: join(this.dir, 'kube-cache'),
      ...(kubeconfigPath ? { KUBECONFIG: kubeconfigPath } : { KUBECONFIG: join(this.dir, 'no-kubeconfig') }),
    };
  }

  helm(args: readonly string[], opts: { kubeconfig?: string; timeoutMs?: number } = {}): Promise<string> {
    return runTool(this.helmBin, args, { env: this.env(opts.kubeconfig), timeoutMs: opts.timeoutMs ?? 120_000 });
  }

  /** kubectl from the machine; `input` goes to stdin (for `-f -`). */
  kubectl(args: readonly string[], opts: { kubeconfig: string; input?: string; timeoutMs?: number }): Promise<string> {
    return runTool('kubectl', args, { env: this.env(opts.kubeconfig), timeoutMs: opts.timeoutMs ?? 60_000, ...(opts.input !== undefined ? { input: opts.input } : {}) });
  }

  /** Like kubectl() but resolves with the exit code and both streams instead of rejecting. Bounded by 60 s. */
  kubectlStatus(args: readonly string[], opts: { kubeconfig: string; input?: string }): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn('kubectl', args, { stdio: ['pipe', 'pipe', 'pipe'], env: this.env(opts.kubeconfig) });
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`kubectl: ${e.message}`));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input);
    });
  }

  /** `helm template` of the chart; each `set` is one --set, `values` are written to files and passed with --values. */
  template(opts: TemplateOptions = {}): Promise<string> {
    const args = ['template', opts.release ?? 'purelb', opts.chart ?? CHART_DIR, '--namespace', opts.namespace ?? 'purelb'];
    if (opts.includeCrds) args.push('--include-crds');
    for (const s of opts.set ?? []) args.push(`--set=${s}`);
    (opts.values ?? []).forEach((v, i) => {
      const f = join(this.dir, `values-${++valuesFiles}-${i}.yaml`);
      writeFileSync(f, v);
      args.push(`--values=${f}`);
    });
    return this.helm(args);
  }
}

/** Parses a rendered stream and indexes it by `Kind/name`. */
export function objects(yamlText: string): Map<string, KObject> {
  const map = new Map<string, KObject>();
  for (const o of parseYamlObjects(yamlText) as unknown as KObject[]) map.set(`${o.kind}/${o.metadata.name}`, o);
  return map;
}

/** The object `Kind/name` of a rendered map; throws naming what is missing. */
export function pick<T = KObject>(objs: Map<string, KObject>, key: string): T {
  const o = objs.get(key);
  if (!o) throw new Error(`${key} is not rendered; have: ${[...objs.keys()].join(', ')}`);
  return o as T;
}

const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'Namespace']);

/** The API path of a rendered object. */
export function pathOf(o: KObject, namespace: string): string {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const plural = { ServiceAccount: 'serviceaccounts', Secret: 'secrets', Service: 'services', Deployment: 'deployments', DaemonSet: 'daemonsets', ClusterRole: 'clusterroles', ClusterRoleBinding: 'clusterrolebindings', Role: 'roles', RoleBinding: 'rolebindings', LBNodeAgent: 'lbnodeagents', ServiceGroup: 'servicegroups', CustomResourceDefinition: 'customresourcedefinitions' }[o.kind];
  if (!plural) throw new Error(`no plural known for ${o.kind}`);
  return CLUSTER_SCOPED.has(o.kind) ? `${base}/${plural}/${o.metadata.name}` : `${base}/namespaces/${namespace}/${plural}/${o.metadata.name}`;
}

/** A token for the ServiceAccount `name` in `namespace` (TokenRequest API, 1 h). */
export async function serviceAccountToken(admin: KubeClient, namespace: string, name: string): Promise<string> {
  const r = await admin.create<{ status: { token: string } }>(`/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600 },
  });
  return r.status.token;
}

/** Writes a kubeconfig that authenticates with `token`; returns its path. */
export function tokenKubeconfig(cp: ControlPlane, dir: string, user: string, token: string): string {
  const path = join(dir, `kubeconfig-${user}`);
  writeFileSync(path, kubeconfig(cp.url, cp.caPem, token, user), { mode: 0o600 });
  return path;
}

export async function ensureNamespace(admin: KubeClient, ns: string): Promise<void> {
  const r = await admin.raw('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  if (r.status !== 201 && r.status !== 409) throw new Error(`create namespace ${ns}: HTTP ${r.status} ${r.body}`);
}

/** Creates a single-stack IPv4 LoadBalancer Service and waits (bounded) for its ingress address. */
export async function serviceAddress(admin: KubeClient, ns: string, name: string, timeoutMs = 20_000): Promise<string[]> {
  await admin.create(`/api/v1/namespaces/${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: { type: 'LoadBalancer', ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', ports: [{ name: 'http', port: 80, protocol: 'TCP' }], allocateLoadBalancerNodePorts: false },
  });
  return waitFor(
    `${ns}/${name} to get an address`,
    async () => {
      const s = await admin.get<{ status?: { loadBalancer?: { ingress?: { ip: string }[] } } }>(`/api/v1/namespaces/${ns}/services/${name}`);
      const ips = (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
      return ips.length > 0 ? ips : undefined;
    },
    timeoutMs,
    50,
  );
}
