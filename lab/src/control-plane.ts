// etcd + kube-apiserver on loopback, built by tools/kube, with RBAC on and an admin token.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { LabError, ManagedProcess, waitFor } from './exec.ts';
import { KubeClient } from './kube-client.ts';
import { freePort } from './ports.ts';

const repoRoot = join(import.meta.dirname, '..', '..');

/**
 * Service cluster IP ranges. Cluster IPs are bookkeeping inside the API server here: the
 * lab runs no kube-proxy, so no cluster IP is ever put on an interface or routed. The v4
 * range must hold thousands of Services for the allocator's scale tests, more than any
 * documentation /24 has.
 */
export const SERVICE_CLUSTER_IP_RANGES = '10.96.0.0/16,2001:db8:ffff::/108'; // service-cluster-ip-range

export interface ControlPlaneOptions {
  /** Where state goes (etcd data, certs, tokens, kubeconfig). */
  readonly dir: string;
  /** Called with progress lines (cold builds take many minutes). */
  readonly onProgress?: ((line: string) => void) | undefined;
  /** Called with the process ids whenever a process is replaced (so crash clean-up can find them). */
  readonly onProcessesChanged?: ((pids: number[]) => void) | undefined;
}

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly adminToken: string;
  /** A token of a user with no permissions at all (for RBAC checks). */
  readonly nobodyToken: string;
  /** PEM of the CA that signed the serving certificate. */
  readonly caPem: string;
  /** A kubeconfig for kubectl and @kubernetes/client-node (admin). */
  readonly kubeconfigPath: string;
  readonly binDir: string;
  readonly admin: KubeClient;
  readonly processes: readonly ManagedProcess[];
  /** Stops kube-apiserver (SIGTERM, or SIGKILL with `kill`) and starts it again on the same port and etcd; resolves when it is ready. */
  restartApiServer(opts?: { kill?: boolean; downMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Runs one of the tools' build scripts (tools/kube/build.sh and the like: progress on
 * stderr, the result as the last stdout line) and resolves with that last line, once it
 * names something that exists. `onProgress` gets the stderr lines.
 */
export function runBuildScript(script: string, onProgress?: (line: string) => void): Promise<string> {
  if (!existsSync(script)) return Promise.reject(new LabError('LAB_NO_KUBE_BUILD', `missing ${script}`));
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
      for (const line of c.toString().split('\n')) if (line.trim()) onProgress?.(line);
    });
    child.on('error', (e) => reject(new LabError('LAB_NO_KUBE_BUILD', `cannot run ${script}: ${e.message}`)));
    child.on('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0 && last && existsSync(last)) resolve(last);
      else reject(new LabError('LAB_NO_KUBE_BUILD', `${script} failed (exit ${code}):\n${err.split('\n').slice(-15).join('\n')}`));
    });
  });
}

/**
 * Makes sure kube-apiserver and etcd are built (tools/kube/build.sh: once per version,
 * cached outside the repo) and returns the directory that holds them.
 */
export async function ensureKubeBinaries(onProgress?: (line: string) => void): Promise<string> {
  const script = join(repoRoot, 'tools', 'kube', 'build.sh');
  const dir = await runBuildScript(script, onProgress);
  if (!existsSync(join(dir, 'kube-apiserver'))) throw new LabError('LAB_NO_KUBE_BUILD', `${script} printed ${dir}, which holds no kube-apiserver`);
  return dir;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const binDir = await ensureKubeBinaries(opts.onProgress);
  const dir = opts.dir;
  mkdirSync(join(dir, 'certs'), { recursive: true });
  const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const saKey = join(dir, 'service-account.key');
  writeFileSync(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const adminToken = randomBytes(24).toString('hex');
  const nobodyToken = randomBytes(24).toString('hex');
  const tokens = join(dir, 'tokens.csv');
  writeFileSync(tokens, `${adminToken},lab-admin,lab-admin,"system:masters"\n${nobodyToken},lab-nobody,lab-nobody\n`, { mode: 0o600 });

  const processes: ManagedProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const p of [...processes].reverse()) await p.stop();
  };
  try {
    const etcd = new ManagedProcess('etcd', join(binDir, 'etcd'), [
      '--name=lab',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=lab=http://127.0.0.1:${peerPort}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    processes.push(etcd);
    const apiArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      '--bind-address=127.0.0.1',
      `--advertise-address=127.0.0.1`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'certs')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${saKey}`,
      `--service-account-signing-key-file=${saKey}`,
      '--authorization-mode=RBAC',
      `--token-auth-file=${tokens}`,
      '--disable-admission-plugins=ServiceAccount',
      '--allow-privileged=true',
      `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGES}`,
      '--endpoint-reconciler-type=none',
      '--profiling=false',
      '--v=0',
    ];
    let api = new ManagedProcess('kube-apiserver', join(binDir, 'kube-apiserver'), apiArgs);
    processes.push(api);
    const url = `https://127.0.0.1:${apiPort}`;
    const certFile = join(dir, 'certs', 'apiserver.crt');
    const caPem = await waitForServingCert(certFile, api, etcd);
    const admin = new KubeClient({ url, token: adminToken, caPem });
    const ready = (): Promise<boolean> =>
      waitFor(
        'kube-apiserver /readyz',
        async () => {
          if (!api.running) throw new LabError('LAB_APISERVER_EXITED', `kube-apiserver exited:\n${api.tail()}`);
          const r = await admin.raw('GET', '/readyz');
          return r.status === 200 ? true : undefined;
        },
        90_000,
        100,
      );
    await ready();
    const restartApiServer = async (o: { kill?: boolean; downMs?: number } = {}): Promise<void> => {
      if (o.kill) api.child.kill('SIGKILL');
      await api.stop();
      if (o.downMs) await new Promise((r) => setTimeout(r, o.downMs));
      api = new ManagedProcess('kube-apiserver', join(binDir, 'kube-apiserver'), apiArgs);
      processes[processes.findIndex((p) => p.name === 'kube-apiserver')] = api;
      opts.onProcessesChanged?.(processes.map((p) => p.pid ?? 0));
      await ready();
    };
    const kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfig(url, caPem, adminToken), { mode: 0o600 });
    return { url, port: apiPort, adminToken, nobodyToken, caPem, kubeconfigPath, binDir, admin, processes, restartApiServer, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Waits (at most 60 s) for kube-apiserver's self-signed certificate (with its CA) and returns it; fails if it or etcd exits. */
export function waitForServingCert(certFile: string, api: ManagedProcess, etcd: ManagedProcess): Promise<string> {
  return waitFor(
    'kube-apiserver to write its certificate',
    () => {
      if (!api.running) throw new LabError('LAB_APISERVER_EXITED', `kube-apiserver exited:\n${api.tail()}`);
      if (!etcd.running) throw new LabError('LAB_ETCD_EXITED', `etcd exited:\n${etcd.tail()}`);
      return existsSync(certFile) ? readFileSync(certFile, 'utf8') : undefined;
    },
    60_000,
    50,
  );
}

/** A kubeconfig (YAML is a superset of JSON, so JSON is written). */
export function kubeconfig(url: string, caPem: string, token: string, user = 'lab-admin'): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'lab', cluster: { server: url, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: 'lab', context: { cluster: 'lab', user, namespace: 'default' } }],
      'current-context': 'lab',
    },
    null,
    2,
  );
}
