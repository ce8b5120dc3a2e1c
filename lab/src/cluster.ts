// The lab's cluster mode: real Kubernetes nodes in network namespaces. Every node runs
// containerd, runc, kubelet and kube-proxy (nftables) in its own network, mount and UTS
// namespaces; etcd, kube-apiserver, kube-controller-manager and kube-scheduler run in the
// LAN namespace (the "router"). Nothing is put in the host's network namespace: the host
// reaches the API server through a relay (a TCP port on the host's loopback, a Unix
// socket, a forwarder inside the LAN namespace).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_OUT_DIR, DEFAULT_REGISTRY, IMAGE_NAMES, type TarEntry, chartAppVersion, hostFile, makeLayer, ociArchitecture, tarChunks, writeOciImage } from '@purelb/images';
import { type ArpWatch, type ArpWatchOptions, type ArpWatchSet, startArpWatch } from './arp-watch.ts';
import { ensureKubeBinaries, kubeconfig, runBuildScript, waitForServingCert } from './control-plane.ts';
import { LabError, ManagedProcess, hasCommand as has, installMissing, ipBatch, isAlive, killAndWait, run, waitFor } from './exec.ts';
import { KubeClient } from './kube-client.ts';
import { type LabNetwork, type LabNode, LAB_PREFIX, LAN, createNetwork, deleteNamespaces, labNamespaces, planNetwork } from './network.ts';
import { freePort } from './ports.ts';
import { joinSockets } from './socket-pipe.ts';

const repoRoot = join(import.meta.dirname, '..', '..');
const srcDir = import.meta.dirname;

/**
 * The cluster's own address plan. All documentation ranges, and none reaches the host:
 * - pods: 198.51.100.0/25 (a /28 per node, so at most 8 nodes) and 2001:db8:100::/48 (a /64 per node);
 * - Services' cluster IPs: 203.0.113.0/24 and 2001:db8:ffff::/108 (`kubernetes` is 203.0.113.1);
 * - the local pool (on the LAN): 192.0.2.200-192.0.2.239 and 2001:db8::200-2001:db8::23f,
 *   the process lab's default pool;
 * - the virtual pool (off the LAN, routed by the LAN router to every node, as an upstream
 *   router would be told by BGP): 198.51.100.200-198.51.100.219 and 2001:db8:200::10-2001:db8:200::2f.
 * The process lab's suites use 203.0.113.0/24 and 198.51.100.0/24 for pools of their own,
 * but in labs of their own: no two labs share a network namespace.
 */
export const CLUSTER_ADDRESSES = {
  podCidrV4: '198.51.100.0/25',
  podCidrV6: '2001:db8:100::/48',
  serviceCidrs: '203.0.113.0/24,2001:db8:ffff::/108',
  kubernetesServiceV4: '203.0.113.1',
  localPool: {
    v4pools: [{ pool: '192.0.2.200-192.0.2.239', subnet: '192.0.2.0/24', aggregation: 'default' }],
    v6pools: [{ pool: '2001:db8::200-2001:db8::23f', subnet: '2001:db8::/64', aggregation: 'default' }],
  },
  virtualPool: {
    v4pools: [{ pool: '198.51.100.200-198.51.100.219', subnet: '198.51.100.192/27', aggregation: '/32' }],
    v6pools: [{ pool: '2001:db8:200::10-2001:db8:200::2f', subnet: '2001:db8:200::/64', aggregation: '/128' }],
  },
  virtualRouteV4: '198.51.100.192/27',
  virtualRouteV6: '2001:db8:200::/64',
} as const;

/** cpu.shares of each node's cgroup root (1024 is one process's weight). */
const NODE_CPU_SHARES = 4096;
/** Kubernetes has at most this many nodes in cluster mode (a /28 of pod addresses each). */
export const CLUSTER_MAX_NODES = 8;
const API_PORT = 6443;
/** The image containerd runs as every pod's sandbox (built from tools/kube/node/pause). */
export const PAUSE_IMAGE = 'purelb.local/pause:lab';
/** Paths kubelet, containerd and libcni use whatever they are told (gotcha 6 of the trial): each node gets its own, bind-mounted in its mount namespace. */
const HOST_PATHS = ['/var/lib/kubelet', '/var/log/containers', '/var/lib/cni', '/run/containerd'] as const;
/** Host mount points created by cluster labs (removed by the last one to stop): a file beside the state root. */
const createdHostPathsRecord = (stateRoot: string): string => `${stateRoot}-cluster-host-paths`;
/** The sysctls kubelet insists on; the real ones are global, so each node sees fake files. */
const FAKE_SYSCTLS = [
  ['vm/overcommit_memory', '1'],
  ['kernel/panic', '10'],
  ['kernel/panic_on_oops', '1'],
] as const;

export interface ClusterLabOptions {
  /** Nodes (default 3, at most 8). */
  readonly nodes?: number;
  readonly onProgress?: ((line: string) => void) | undefined;
}

export interface ClusterNode extends LabNode {
  readonly index: number;
  readonly podCidrV4: string;
  readonly podCidrV6: string;
  /** The node's cgroup root in every cgroup v1 hierarchy (`plb-<id>-n<i>`). */
  readonly cgroup: string;
  /** State of this node: containerd root and state, kubelet root dir, CNI, logs. */
  readonly dir: string;
  readonly containerdSocket: string;
}

export interface ClusterImages {
  readonly allocator: string;
  readonly lbnodeagent: string;
  readonly demo: string;
  readonly pause: string;
}

export interface ClusterLab {
  readonly cluster: true;
  readonly id: string;
  readonly dir: string;
  readonly network: LabNetwork;
  readonly nodes: readonly ClusterNode[];
  /** Admin kubeconfig for the host (a relay on 127.0.0.1). */
  readonly kubeconfigPath: string;
  readonly admin: KubeClient;
  /** Where the node binaries are (tools/kube/build-node.sh's cache). */
  readonly binDir: string;
  /** The image references imported into every node. */
  readonly images: ClusterImages;
  /** Milliseconds from start to every node Ready. */
  readonly bootMs: number;
  /** Runs helm (tools/helm's cached build) with the admin kubeconfig. */
  helm(args: readonly string[], timeoutMs?: number): Promise<string>;
  /** Runs kubectl (built with the node binaries) with the admin kubeconfig. */
  kubectl(args: readonly string[], timeoutMs?: number): Promise<string>;
  /** Runs a command in a node's network, mount and UTS namespaces. */
  inNode(node: ClusterNode, cmd: string, args: readonly string[], timeoutMs?: number): Promise<string>;
  /** GET each URL from the client namespace; bounded by timeoutMs per URL. */
  probe(urls: readonly string[], timeoutMs?: number): Promise<{ url: string; ok: boolean; body: string; error?: string }[]>;
  /**
   * probe() with the URLs' addresses routed from the client to one node (host routes in
   * the client namespace, removed afterwards): asks that node alone, whoever else holds
   * the address. Not for addresses on the LAN itself (ARP decides those).
   */
  probeVia(node: LabNode, urls: readonly string[], timeoutMs?: number): Promise<{ url: string; ok: boolean; body: string; error?: string }[]>;
  /** The nodes that have the address on any interface, with the interface. */
  holders(address: string): Promise<{ node: string; link: string; prefixLength: number }[]>;
  /** The link names in a node's namespace. */
  links(node: LabNode): Promise<string[]>;
  /** The MAC of each node's LAN interface. */
  nodeMacs(): Promise<Map<string, string>>;
  /** Samples from the client who answers ARP / neighbour solicitations for the address (see Lab.watchArp). */
  watchArp(address: string, opts?: ArpWatchOptions): ArpWatch;
  /** The last lines of a daemon's log (containerd, kubelet, kube-proxy of a node, or a control-plane process). */
  logTail(name: string, lines?: number): string;
  stop(): Promise<void>;
}

interface ClusterState {
  readonly id: string;
  readonly ownerPid: number;
  readonly pids: number[];
  readonly cluster: true;
}

/** Pod CIDRs of node `index` (1-based). */
export function nodePodCidrs(index: number): { v4: string; v4Gateway: string; v6: string } {
  const base = (index - 1) * 16;
  return { v4: `198.51.100.${base}/28`, v4Gateway: `198.51.100.${base + 1}`, v6: `2001:db8:100:${index.toString(16)}::/64` };
}

function say(opts: ClusterLabOptions, line: string): void {
  opts.onProgress?.(line);
}

/**
 * `npm run images` (tools/images) under a lock, so that labs starting at once from one
 * checkout do not bundle into the same apps/<app>/dist together; returns the images'
 * references and tarballs (dist/images/<name>.oci.tar).
 */
export async function buildLabImages(onProgress?: (line: string) => void): Promise<{ name: string; ref: string; tarPath: string }[]> {
  mkdirSync(DEFAULT_OUT_DIR, { recursive: true });
  const out = await run('flock', [join(DEFAULT_OUT_DIR, '.build.lock'), process.execPath, '--conditions=@purelb/source', join(repoRoot, 'tools', 'images', 'src', 'build.ts')], { timeoutMs: 900_000 });
  for (const line of out.split('\n')) if (line.trim()) onProgress?.(line);
  const version = chartAppVersion();
  return IMAGE_NAMES.map((name) => ({ name, ref: `${DEFAULT_REGISTRY}/${name}:${version}`, tarPath: join(DEFAULT_OUT_DIR, `${name}.oci.tar`) }));
}

/** kubelet, kube-proxy, kcm, scheduler, kubectl, containerd, runc, CNI plugins, pause: built once per version. */
export function ensureNodeBinaries(onProgress?: (line: string) => void): Promise<string> {
  return runBuildScript(join(repoRoot, 'tools', 'kube', 'build-node.sh'), onProgress);
}

/** The helm binary (tools/helm: built once per version). */
export function ensureHelm(onProgress?: (line: string) => void): Promise<string> {
  return runBuildScript(join(repoRoot, 'tools', 'helm', 'build.sh'), onProgress);
}

/**
 * Cluster mode needs, besides what the process lab needs: nsenter and unshare
 * (util-linux), nft (kube-proxy's nftables mode), conntrack and iptables (kube-proxy and
 * kubelet call them), and cgroup v1 or v2 mounted. Missing Debian packages are installed
 * with apt-get (the lab runs as root); anything else fails with what is missing.
 */
export async function checkClusterPrerequisites(onProgress?: (line: string) => void): Promise<void> {
  if (process.getuid?.() !== 0) throw new LabError('LAB_NOT_ROOT', 'the lab needs root (network namespaces, mounts, cgroups); run as root');
  const packages: [string, string][] = [
    ['nft', 'nftables'],
    ['conntrack', 'conntrack'],
    ['iptables', 'iptables'],
    ['nsenter', 'util-linux'],
    ['flock', 'util-linux'],
    ['unshare', 'util-linux'],
    ['ip', 'iproute2'],
  ];
  const missing: [string, string][] = [];
  for (const [cmd, pkg] of packages) if (!(await has(cmd))) missing.push([cmd, pkg]);
  await installMissing('cluster mode', missing, onProgress);
  if (cgroupV1Mounts().length === 0) throw new LabError('LAB_NO_CGROUPS', 'cluster mode needs cgroup v1 hierarchies under /sys/fs/cgroup (kubelet runs with cgroupfs)');
  if (!existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) await run('modprobe', ['br_netfilter']).catch(() => '');
}

/** Mount points of the cgroup v1 hierarchies (one per controller set) and of cgroup2, from /proc/self/mountinfo. */
function cgroupMounts(): { v1: string[]; v2: string[] } {
  const v1: string[] = [];
  const v2: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const mp = pre.split(' ')[4] ?? '';
    const fstype = post.split(' ')[0];
    if (fstype === 'cgroup') v1.push(mp);
    else if (fstype === 'cgroup2') v2.push(mp);
  }
  return { v1, v2 };
}

function cgroupV1Mounts(): string[] {
  return cgroupMounts().v1;
}

/** Every cgroup directory of a node cgroup root (all hierarchies), deepest first. */
function cgroupDirs(name: string): string[] {
  const { v1, v2 } = cgroupMounts();
  const out: string[] = [];
  const walk = (d: string, depth: number): void => {
    if (depth > 32) return;
    let entries: string[] = [];
    try {
      entries = readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) walk(join(d, e), depth + 1);
    out.push(d);
  };
  for (const mp of [...v1, ...v2]) if (existsSync(join(mp, name))) walk(join(mp, name), 0);
  return out;
}

function cgroupPids(name: string): number[] {
  const pids = new Set<number>();
  for (const d of cgroupDirs(name)) {
    try {
      for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (p.trim()) pids.add(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return [...pids];
}

/** Processes whose command line mentions this path (the shims: `-address <node dir>/...`, pods' runc). */
function pidsMentioning(path: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(path)) out.push(pid);
    } catch {
      // gone
    }
  }
  return out;
}

/** Mount points (host mount namespace) at or under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = (line.split(' ')[4] ?? '').replace(/\\040/g, ' ');
    if (mp === dir || mp.startsWith(`${dir}/`)) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

function readState(dir: string): Partial<ClusterState> | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as Partial<ClusterState>;
  } catch {
    return undefined;
  }
}

/** Ids of other cluster labs whose owner is alive. */
function otherLiveClusterLabs(stateRoot: string, id: string): string[] {
  if (!existsSync(stateRoot)) return [];
  return readdirSync(stateRoot).filter((other) => {
    if (other === id) return false;
    const s = readState(join(stateRoot, other));
    return s?.cluster === true && typeof s.ownerPid === 'number' && isAlive(s.ownerPid);
  });
}

/**
 * Removes everything a cluster lab made, whether it is running or crashed: its processes
 * (by recorded pid, by network namespace, by cgroup, and those naming its directory: the
 * shims and the pods' processes), its namespaces, mounts, cgroups, host mount points
 * (when no other cluster lab is alive) and its directory. Never selects a process by name.
 */
export async function removeCluster(stateRoot: string, id: string, recorded: readonly number[] = []): Promise<void> {
  const dir = join(stateRoot, id);
  const netnses = await labNamespaces(id);
  const { v1, v2 } = cgroupMounts();
  const cgroupNames = [
    ...new Set(
      [...v1, ...v2].flatMap((mp) => {
        try {
          return readdirSync(mp).filter((n) => n.startsWith(`${LAB_PREFIX}${id}-n`));
        } catch {
          return [];
        }
      }),
    ),
  ];
  // Killing may let a parent spawn (containerd restarting a shim): a few bounded rounds.
  for (let round = 0; round < 5; round++) {
    const pids = new Set<number>(recorded.filter((p) => p > 0));
    for (const ns of netnses) {
      for (const p of (await run('ip', ['netns', 'pids', ns]).catch(() => '')).split('\n')) if (p.trim()) pids.add(Number(p));
    }
    for (const c of cgroupNames) for (const p of cgroupPids(c)) pids.add(p);
    for (const p of pidsMentioning(`${dir}/`)) pids.add(p);
    pids.delete(process.pid);
    const live = [...pids].filter((p) => isAlive(p));
    if (live.length === 0) break;
    await killAndWait(live, 5000);
  }
  await deleteNamespaces(netnses);
  for (const mp of mountsUnder(dir)) await run('umount', ['-l', mp]).catch(() => '');
  for (const c of cgroupNames) {
    for (const d of cgroupDirs(c)) {
      try {
        rmdirSync(d);
      } catch {
        // busy (a process still dying) or gone: retried below
      }
    }
  }
  await waitFor('the node cgroups to be removed', () => {
    const left = cgroupNames.flatMap((c) => cgroupDirs(c));
    for (const d of left) {
      try {
        rmdirSync(d);
      } catch {
        // still busy
      }
    }
    return cgroupNames.flatMap((c) => cgroupDirs(c)).length === 0 ? true : undefined;
  }, 10_000, 50).catch(() => undefined);
  // Host mount points: the last cluster lab removes the ones cluster labs created (if empty).
  const record = createdHostPathsRecord(stateRoot);
  if (existsSync(record) && otherLiveClusterLabs(stateRoot, id).length === 0) {
    const created = readFileSync(record, 'utf8').split('\n').filter(Boolean);
    for (const p of [...new Set(created)].sort((a, b) => b.length - a.length)) {
      try {
        rmdirSync(p);
      } catch {
        // not empty (someone else's) or gone
      }
    }
    rmSync(record, { force: true });
  }
  rmSync(dir, { recursive: true, force: true });
}

/** A TCP port on the host's loopback relayed to a Unix socket (the forwarder in the LAN namespace). */
class HostRelay {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly socketPath: string;
  port = 0;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
    this.#server = createServer((c) => {
      const up = connect(this.socketPath);
      this.#sockets.add(c);
      this.#sockets.add(up);
      joinSockets(c, up, () => {
        this.#sockets.delete(c);
        this.#sockets.delete(up);
      });
    });
  }

  async listen(): Promise<number> {
    this.port = await freePort();
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.port, '127.0.0.1', () => resolve());
    });
    return this.port;
  }

  close(): void {
    for (const s of this.#sockets) s.destroy();
    this.#server.close();
  }
}

/** nsenter arguments that put a command in a node's namespaces. */
function nodeEnter(network: LabNetwork, node: { netns: string }, nsDir: string, index: number): string[] {
  return [`--net=/var/run/netns/${node.netns}`, `--mount=${join(nsDir, `n${index}.mnt`)}`, `--uts=${join(nsDir, `n${index}.uts`)}`, '--'];
}

function lanEnter(network: LabNetwork): string[] {
  return [`--net=/var/run/netns/${network.lanNetns}`, '--'];
}

/** Writes the pause image (the sandbox of every pod) as an OCI tarball; returns its path. */
function writePauseImage(binDir: string, outDir: string): string {
  const layer = makeLayer([hostFile(join(binDir, 'pause'), 'pause', { mode: 0o755 })], 'pause (tools/kube/node/pause)');
  const image = writeOciImage({
    ref: PAUSE_IMAGE,
    created: '1970-01-01T00:00:00Z',
    os: 'linux',
    architecture: ociArchitecture(),
    config: { entrypoint: ['/pause'], user: '65535:65535', env: [], workingDir: '/', exposedPorts: [], labels: {} },
    layers: [layer],
  });
  const path = join(outDir, 'pause.oci.tar');
  writeFileSync(path, Buffer.concat(image.chunks));
  return path;
}

/**
 * Merges OCI image-layout tarballs (as tools/images writes them: plain ustar, no pax)
 * into one: every blob once, every manifest in index.json. The images share their Node
 * runtime layer, so one import per node reads it once instead of once per image.
 */
export function mergeOciArchives(paths: readonly string[], out: string): void {
  const blobs = new Map<string, Buffer>();
  const manifests: unknown[] = [];
  for (const path of paths) {
    const fd = openSync(path, 'r');
    try {
      const header = Buffer.alloc(512);
      let offset = 0;
      for (let n = 0; n < 100_000; n++) {
        if (readSync(fd, header, 0, 512, offset) !== 512 || header.every((b) => b === 0)) break;
        const name = header.toString('utf8', 0, 100).replace(/\0.*$/s, '');
        const prefix = header.toString('utf8', 345, 500).replace(/\0.*$/s, '');
        const full = prefix ? `${prefix}/${name}` : name;
        const size = parseInt(header.toString('utf8', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
        const type = String.fromCharCode(header[156]!);
        if (type === 'x' || type === 'g' || type === 'L') throw new LabError('LAB_BAD_IMAGE', `${path}: extended tar headers are not expected in an image archive`);
        const dataAt = offset + 512;
        const read = (): Buffer => {
          const b = Buffer.alloc(size);
          if (readSync(fd, b, 0, size, dataAt) !== size) throw new LabError('LAB_BAD_IMAGE', `${path}: ${full} is cut short`);
          return b;
        };
        if (type === '0' || type === '\0') {
          if (full === 'index.json') manifests.push(...((JSON.parse(read().toString('utf8')) as { manifests: unknown[] }).manifests));
          else if (full.startsWith('blobs/sha256/') && !blobs.has(full)) blobs.set(full, read());
        }
        offset = dataAt + Math.ceil(size / 512) * 512;
      }
    } finally {
      closeSync(fd);
    }
  }
  const entries: TarEntry[] = [
    { type: 'file', path: 'oci-layout', data: Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })) },
    { type: 'file', path: 'index.json', data: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests })) },
    { type: 'directory', path: 'blobs' },
    { type: 'directory', path: 'blobs/sha256' },
    ...[...blobs].map(([path, data]): TarEntry => ({ type: 'file', path, data })),
  ];
  writeFileSync(out, Buffer.concat(tarChunks(entries)));
}

function yamlOf(obj: unknown): string {
  // JSON is YAML.
  return JSON.stringify(obj, null, 2);
}

/**
 * Starts a cluster lab: builds (first time) and starts everything, imports the images,
 * waits until every node is Ready. PureLB is not installed: see installPureLBChart().
 */
export async function startClusterLab(stateRoot: string, opts: ClusterLabOptions = {}): Promise<ClusterLab> {
  const t0 = Date.now();
  const nodeCount = opts.nodes ?? 3;
  if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > CLUSTER_MAX_NODES) throw new LabError('LAB_BAD_OPTION', `nodes: ${nodeCount} is not in 1-${CLUSTER_MAX_NODES} (cluster mode)`);
  await checkClusterPrerequisites(opts.onProgress);

  say(opts, 'making sure kube-apiserver and etcd are built (tools/kube/build.sh)');
  const cpBin = await ensureKubeBinaries(opts.onProgress);
  say(opts, 'making sure kubelet, kube-proxy, kube-controller-manager, kube-scheduler, containerd, runc and the CNI plugins are built (tools/kube/build-node.sh; the first build takes 6-18 min on 2 cores, depending on what else runs)');
  const binDir = await ensureNodeBinaries(opts.onProgress);
  const helmBin = await ensureHelm(opts.onProgress);
  // The images are built while the namespaces and containerd come up (they are first
  // needed for the import); a failure surfaces where they are awaited.
  say(opts, 'building the images (tools/images), meanwhile the namespaces and containerd');
  const imagesP = buildLabImages(opts.onProgress);
  imagesP.catch(() => undefined);

  const id = randomBytes(2).toString('hex');
  const dir = join(stateRoot, id);
  mkdirSync(dir, { recursive: true });
  const state: ClusterState = { id, ownerPid: process.pid, pids: [], cluster: true };
  const saveState = (): void => writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
  saveState();
  const network = planNetwork(id, nodeCount);
  const nsDir = join(dir, 'ns');
  const cpDir = join(dir, 'cp');
  const logDir = join(dir, 'logs');
  const processes = new Map<string, ManagedProcess>();
  let relay: HostRelay | undefined;
  const watches = new Set<ArpWatchSet>();
  const start = (name: string, args: readonly string[], env?: NodeJS.ProcessEnv): ManagedProcess => {
    const p = new ManagedProcess(name, 'nsenter', args, env, join(logDir, `${name}.log`));
    processes.set(name, p);
    state.pids.push(p.pid ?? 0);
    saveState();
    return p;
  };
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const w of watches) await w.stop().catch(() => undefined);
    // Fast: kill the node daemons outright (pods die with their cgroups and namespaces).
    await killAndWait([...processes.values()].map((p) => p.pid ?? 0), 5000);
    relay?.close();
    await removeCluster(stateRoot, id, state.pids);
  };

  const nodes: ClusterNode[] = network.nodes.map((n, i) => {
    const index = i + 1;
    const pod = nodePodCidrs(index);
    const nodeDir = join(dir, `n${index}`);
    return { ...n, index, podCidrV4: pod.v4, podCidrV6: pod.v6, cgroup: `${LAB_PREFIX}${id}-n${index}`, dir: nodeDir, containerdSocket: join(nodeDir, 'containerd', 'containerd.sock') };
  });

  try {
    for (const d of [nsDir, cpDir, logDir, join(dir, 'images')]) mkdirSync(d, { recursive: true });

    // ---- network -------------------------------------------------------------------
    say(opts, `creating the LAN, ${nodeCount} node namespaces and the client namespace`);
    await createNetwork(network);
    const lanLines: string[] = [];
    for (const n of nodes) {
      lanLines.push(`route add ${nodePodCidrs(n.index).v4} via ${n.v4}`, `route add ${nodePodCidrs(n.index).v6} via ${n.v6}`);
    }
    // The virtual pool is routed to every node (ECMP), as an upstream router learning it by BGP.
    lanLines.push(`route add ${CLUSTER_ADDRESSES.virtualRouteV4} ${nodes.map((n) => `nexthop via ${n.v4}`).join(' ')}`);
    lanLines.push(`route add ${CLUSTER_ADDRESSES.virtualRouteV6} ${nodes.map((n) => `nexthop via ${n.v6}`).join(' ')}`);
    await ipBatch(lanLines, network.lanNetns);
    const sysctl = (netns: string, kv: string[]): Promise<string> => run('ip', ['netns', 'exec', netns, 'sysctl', '-qw', ...kv]);
    await sysctl(network.lanNetns, ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    for (const n of nodes) {
      const others = nodes.filter((o) => o !== n).flatMap((o) => [`route add ${o.podCidrV4} via ${o.v4}`, `route add ${o.podCidrV6} via ${o.v6}`]);
      if (others.length) await ipBatch(others, n.netns);
      await sysctl(n.netns, ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
      // Per network namespace on this kernel; needs br_netfilter.
      await sysctl(n.netns, ['net.bridge.bridge-nf-call-iptables=1', 'net.bridge.bridge-nf-call-ip6tables=1']).catch(() => '');
    }

    // ---- node mount + UTS namespaces -------------------------------------------------
    say(opts, 'creating the nodes\' mount and UTS namespaces, fake sysctls, per-node host paths and cgroup roots');
    // unshare --mount=FILE needs FILE on a private mount (/ is shared under systemd).
    await run('mount', ['--bind', nsDir, nsDir]);
    await run('mount', ['--make-private', nsDir]);
    const createdRecord = createdHostPathsRecord(stateRoot);
    for (const p of HOST_PATHS) {
      if (!existsSync(p)) {
        mkdirSync(p, { recursive: true });
        appendFileSync(createdRecord, `${p}\n`);
      }
    }
    const v1 = cgroupV1Mounts();
    for (const n of nodes) {
      const mnt = join(nsDir, `n${n.index}.mnt`);
      const uts = join(nsDir, `n${n.index}.uts`);
      writeFileSync(mnt, '');
      writeFileSync(uts, '');
      await run('unshare', [`--mount=${mnt}`, `--uts=${uts}`, '--propagation', 'private', 'hostname', n.name]);
      const fake = join(n.dir, 'fake-sysctl');
      mkdirSync(fake, { recursive: true });
      const mounts: [string, string][] = [];
      for (const [key, value] of FAKE_SYSCTLS) {
        const f = join(fake, key.replace('/', '.'));
        writeFileSync(f, `${value}\n`);
        mounts.push([f, `/proc/sys/${key}`]);
      }
      for (const p of HOST_PATHS) {
        const own = join(n.dir, 'host', p);
        mkdirSync(own, { recursive: true });
        mounts.push([own, p]);
      }
      const script = mounts.map(([from, to]) => `mount --bind '${from}' '${to}'`).join(' && ');
      await run('nsenter', [`--mount=${mnt}`, '--', 'sh', '-c', script]);
      for (const mp of v1) {
        const cg = join(mp, n.cgroup);
        mkdirSync(cg, { recursive: true });
        // The node's pods compete with the machine's other work as one cgroup: weight it as
        // a few busy processes, or a loaded machine starves the agents (their event-loop
        // stall guard then withdraws addresses).
        if (existsSync(join(cg, 'cpu.shares'))) writeFileSync(join(cg, 'cpu.shares'), String(NODE_CPU_SHARES));
        if (existsSync(join(mp, 'cpuset.cpus'))) {
          writeFileSync(join(cg, 'cpuset.cpus'), readFileSync(join(mp, 'cpuset.cpus')));
          writeFileSync(join(cg, 'cpuset.mems'), readFileSync(join(mp, 'cpuset.mems')));
        }
      }
    }

    // ---- nodes --------------------------------------------------------------------
    say(opts, `starting containerd on ${nodeCount} nodes`);
    const pauseTar = writePauseImage(binDir, join(dir, 'images'));
    // containerd finds its shim on PATH.
    const nodeEnv = { ...process.env, PATH: `${binDir}:${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };
    for (const n of nodes) {
      const cd = join(n.dir, 'containerd');
      for (const d of ['root', 'state']) mkdirSync(join(cd, d), { recursive: true });
      mkdirSync(join(n.dir, 'cni', 'net.d'), { recursive: true });
      mkdirSync(join(n.dir, 'kubelet'), { recursive: true });
      mkdirSync(join(n.dir, 'pod-logs'), { recursive: true });
      writeFileSync(join(cd, 'config.toml'), containerdConfig(n, binDir));
      const pod = nodePodCidrs(n.index);
      writeFileSync(
        join(n.dir, 'cni', 'net.d', '10-bridge.conflist'),
        JSON.stringify({
          cniVersion: '1.0.0',
          name: 'lab',
          plugins: [
            {
              type: 'bridge',
              bridge: 'cni0',
              isGateway: true,
              ipMasq: false,
              hairpinMode: true,
              ipam: { type: 'host-local', dataDir: join(n.dir, 'cni', 'ipam'), ranges: [[{ subnet: pod.v4, gateway: pod.v4Gateway }], [{ subnet: pod.v6 }]], routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }] },
            },
            { type: 'portmap', capabilities: { portMappings: true }, backend: 'nftables' },
          ],
        }),
      );
      start(`containerd-${n.name}`, [...nodeEnter(network, n, nsDir, n.index), join(binDir, 'containerd'), '--config', join(cd, 'config.toml')], nodeEnv);
    }
    for (const n of nodes) {
      const p = processes.get(`containerd-${n.name}`)!;
      await waitFor(`containerd on ${n.name}`, () => {
        if (!p.running) throw new LabError('LAB_CONTAINERD_EXITED', `containerd on ${n.name} exited:\n${p.tail()}`);
        return existsSync(n.containerdSocket) ? true : undefined;
      }, 30_000, 50);
    }
    // Imported while the control plane starts (kubelet needs the images only for pods).
    const importP = (async (): Promise<Awaited<typeof imagesP>> => {
      const built = await imagesP;
      say(opts, 'importing the images into every node\'s containerd');
      const allImages = join(dir, 'images', 'all.oci.tar');
      mergeOciArchives([pauseTar, ...built.map((b) => b.tarPath)], allImages);
      await Promise.all(
        nodes.map((n) =>
          run('nsenter', [...nodeEnter(network, n, nsDir, n.index), join(binDir, 'ctr'), '-a', n.containerdSocket, '-n', 'k8s.io', 'images', 'import', allImages], { timeoutMs: 300_000 }),
        ),
      );
      rmSync(allImages, { force: true });
      return built;
    })();
    importP.catch(() => undefined);

    // ---- control plane (in the LAN namespace) -----------------------------------------
    say(opts, 'starting etcd, kube-apiserver, kube-controller-manager and kube-scheduler in the LAN namespace');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const saKey = join(cpDir, 'service-account.key');
    writeFileSync(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const tok = (): string => randomBytes(24).toString('hex');
    const tokens = { admin: tok(), kcm: tok(), scheduler: tok(), proxy: tok(), nodes: nodes.map(() => tok()) };
    writeFileSync(
      join(cpDir, 'tokens.csv'),
      [
        `${tokens.admin},lab-admin,lab-admin,"system:masters"`,
        `${tokens.kcm},system:kube-controller-manager,kcm`,
        `${tokens.scheduler},system:kube-scheduler,scheduler`,
        `${tokens.proxy},system:kube-proxy,kube-proxy`,
        ...nodes.map((n, i) => `${tokens.nodes[i]},system:node:${n.name},${n.name},"system:nodes"`),
      ].join('\n') + '\n',
      { mode: 0o600 },
    );
    const etcd = start('etcd', [
      ...lanEnter(network),
      join(cpBin, 'etcd'),
      '--name=lab',
      `--data-dir=${join(cpDir, 'etcd')}`,
      '--listen-client-urls=http://127.0.0.1:2379',
      '--advertise-client-urls=http://127.0.0.1:2379',
      '--listen-peer-urls=http://127.0.0.1:2380',
      '--initial-advertise-peer-urls=http://127.0.0.1:2380',
      '--initial-cluster=lab=http://127.0.0.1:2380',
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    const api = start('kube-apiserver', [
      ...lanEnter(network),
      join(cpBin, 'kube-apiserver'),
      '--etcd-servers=http://127.0.0.1:2379',
      '--bind-address=0.0.0.0',
      `--advertise-address=${LAN.gatewayV4}`,
      `--secure-port=${API_PORT}`,
      `--cert-dir=${join(cpDir, 'certs')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${saKey}`,
      `--service-account-signing-key-file=${saKey}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      `--token-auth-file=${join(cpDir, 'tokens.csv')}`,
      '--allow-privileged=true',
      `--service-cluster-ip-range=${CLUSTER_ADDRESSES.serviceCidrs}`,
      '--kubelet-preferred-address-types=InternalIP',
      '--profiling=false',
      '--v=0',
    ]);
    const certFile = join(cpDir, 'certs', 'apiserver.crt');
    const caPem = await waitForServingCert(certFile, api, etcd);
    // The host's way in: 127.0.0.1:PORT -> Unix socket -> forwarder in the LAN namespace -> 192.0.2.1:6443.
    const relaySocket = join(dir, 'api.sock');
    start('api-forwarder', [...lanEnter(network), process.execPath, join(srcDir, 'unix-forward.ts'), relaySocket, LAN.gatewayV4, String(API_PORT)]);
    await waitFor('the API forwarder', () => (existsSync(relaySocket) ? true : undefined), 20_000, 25);
    relay = new HostRelay(relaySocket);
    const hostPort = await relay.listen();
    const apiUrl = `https://127.0.0.1:${hostPort}`;
    // The API server's own certificate names localhost, not 127.0.0.1 (it binds 0.0.0.0).
    const admin = new KubeClient({ url: apiUrl, token: tokens.admin, caPem, servername: 'localhost' });
    await waitFor(
      'kube-apiserver /readyz',
      async () => {
        if (!api.running) throw new LabError('LAB_APISERVER_EXITED', `kube-apiserver exited:\n${api.tail()}`);
        return (await admin.raw('GET', '/readyz', undefined, undefined, 5000)).status === 200 ? true : undefined;
      },
      90_000,
      100,
    );
    const inside = `https://${LAN.gatewayV4}:${API_PORT}`;
    const kc = (name: string, token: string, user: string): string => {
      const path = join(cpDir, `${name}.kubeconfig`);
      writeFileSync(path, kubeconfig(inside, caPem, token, user), { mode: 0o600 });
      return path;
    };
    const kubeconfigPath = join(dir, 'kubeconfig');
    const hostKc = JSON.parse(kubeconfig(apiUrl, caPem, tokens.admin)) as { clusters: { cluster: Record<string, string> }[] };
    hostKc.clusters[0]!.cluster['tls-server-name'] = 'localhost';
    writeFileSync(kubeconfigPath, JSON.stringify(hostKc, null, 2), { mode: 0o600 });
    const kcmKc = kc('kcm', tokens.kcm, 'system:kube-controller-manager');
    start('kube-controller-manager', [
      ...lanEnter(network),
      join(binDir, 'kube-controller-manager'),
      `--kubeconfig=${kcmKc}`,
      `--authentication-kubeconfig=${kcmKc}`,
      `--authorization-kubeconfig=${kcmKc}`,
      '--bind-address=127.0.0.1',
      '--leader-elect=false',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${saKey}`,
      `--root-ca-file=${certFile}`,
      `--service-cluster-ip-range=${CLUSTER_ADDRESSES.serviceCidrs}`,
      `--cluster-cidr=${CLUSTER_ADDRESSES.podCidrV4},${CLUSTER_ADDRESSES.podCidrV6}`,
      '--allocate-node-cidrs=false',
      '--v=0',
    ]);
    const schedKc = kc('scheduler', tokens.scheduler, 'system:kube-scheduler');
    start('kube-scheduler', [...lanEnter(network), join(binDir, 'kube-scheduler'), `--kubeconfig=${schedKc}`, `--authentication-kubeconfig=${schedKc}`, `--authorization-kubeconfig=${schedKc}`, '--bind-address=127.0.0.1', '--leader-elect=false', '--v=0']);
    const proxyKc = kc('kube-proxy', tokens.proxy, 'system:kube-proxy');

    say(opts, `starting kubelet and kube-proxy on ${nodeCount} nodes`);
    for (const n of nodes) {
      writeFileSync(join(n.dir, 'kubelet.yaml'), yamlOf(kubeletConfig(n)));
      writeFileSync(join(n.dir, 'kube-proxy.yaml'), yamlOf(kubeProxyConfig(n, proxyKc)));
      const nodeKc = kc(n.name, tokens.nodes[n.index - 1]!, `system:node:${n.name}`);
      start(`kubelet-${n.name}`, [
        ...nodeEnter(network, n, nsDir, n.index),
        join(binDir, 'kubelet'),
        `--config=${join(n.dir, 'kubelet.yaml')}`,
        `--kubeconfig=${nodeKc}`,
        `--root-dir=${join(n.dir, 'kubelet')}`,
        `--cert-dir=${join(n.dir, 'kubelet', 'pki')}`,
        `--hostname-override=${n.name}`,
        `--node-ip=${n.v4},${n.v6}`,
        '--node-labels=purelb.io/lab=cluster',
        '--v=0',
      ], nodeEnv);
      start(`kube-proxy-${n.name}`, [...nodeEnter(network, n, nsDir, n.index), join(binDir, 'kube-proxy'), `--config=${join(n.dir, 'kube-proxy.yaml')}`, '--v=0'], nodeEnv);
    }

    const built = await importP;
    const ref = (name: string): string => built.find((b) => b.name === name)!.ref;
    say(opts, 'waiting for every node to be Ready');
    await waitFor(
      'every node to be Ready',
      async () => {
        for (const n of nodes) {
          for (const what of ['kubelet', 'kube-proxy', 'containerd']) {
            const p = processes.get(`${what}-${n.name}`)!;
            if (!p.running) throw new LabError('LAB_NODE_EXITED', `${what} on ${n.name} exited:\n${p.tail()}`);
          }
        }
        const list = await admin.get<{ items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[] }>('/api/v1/nodes');
        const ready = list.items.filter((i) => i.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
        return ready.length === nodes.length ? true : undefined;
      },
      120_000,
      200,
    );
    const bootMs = Date.now() - t0;
    say(opts, `${nodeCount} nodes Ready after ${(bootMs / 1000).toFixed(1)} s`);

    const enter = (n: ClusterNode): string[] => nodeEnter(network, n, nsDir, n.index);
    const lab: ClusterLab = {
      cluster: true,
      id,
      dir,
      network,
      nodes,
      kubeconfigPath,
      admin,
      binDir,
      images: { allocator: ref('allocator'), lbnodeagent: ref('lbnodeagent'), demo: ref('demo'), pause: PAUSE_IMAGE },
      bootMs,
      helm: (args, timeoutMs = 180_000) => run(helmBin, [...args, `--kubeconfig=${kubeconfigPath}`], { timeoutMs }),
      kubectl: (args, timeoutMs = 60_000) => run(join(binDir, 'kubectl'), [`--kubeconfig=${kubeconfigPath}`, ...args], { timeoutMs }),
      inNode: (n, cmd, args, timeoutMs = 30_000) => run('nsenter', [...enter(n), cmd, ...args], { timeoutMs }),
      probe: async (urls, timeoutMs = 2000) =>
        JSON.parse(await run('ip', ['netns', 'exec', network.clientNetns, process.execPath, join(srcDir, 'probe.ts'), String(timeoutMs), ...urls], { timeoutMs: timeoutMs * urls.length + 10_000 })) as {
          url: string;
          ok: boolean;
          body: string;
          error?: string;
        }[],
      probeVia: async (node, urls, timeoutMs = 2000) => {
        const addresses = [...new Set(urls.map((u) => new URL(u).hostname.replace(/^\[|\]$/g, '')))];
        const route = (op: 'replace' | 'del'): string[] => addresses.map((a) => (a.includes(':') ? `route ${op} ${a}/128 via ${node.v6}` : `route ${op} ${a}/32 via ${node.v4}`));
        await ipBatch(route('replace'), network.clientNetns);
        try {
          return await lab.probe(urls, timeoutMs);
        } finally {
          await ipBatch(route('del'), network.clientNetns).catch(() => '');
        }
      },
      holders: async (address) => {
        const out: { node: string; link: string; prefixLength: number }[] = [];
        for (const n of nodes) {
          const links = JSON.parse(await run('ip', ['-n', n.netns, '-j', 'addr', 'show'])) as { ifname: string; addr_info: { local: string; prefixlen: number }[] }[];
          for (const l of links) for (const a of l.addr_info) if (a.local === address) out.push({ node: n.name, link: l.ifname, prefixLength: a.prefixlen });
        }
        return out;
      },
      links: async (node) => (JSON.parse(await run('ip', ['-n', node.netns, '-j', 'link', 'show'])) as { ifname: string }[]).map((l) => l.ifname),
      nodeMacs: async () => {
        const out = new Map<string, string>();
        for (const n of nodes) out.set(n.name, (JSON.parse(await run('ip', ['-n', n.netns, '-j', 'link', 'show', 'eth0'])) as { address: string }[])[0]!.address);
        return out;
      },
      watchArp: (address, o) => {
        const set = startArpWatch(network.clientNetns, 'eth0', [address], o);
        watches.add(set);
        return set.get(address);
      },
      logTail: (name, lines = 40) => processes.get(name)?.tail(lines) ?? '',
      stop,
    };
    return lab;
  } catch (e) {
    await stop();
    throw e;
  }
}

function containerdConfig(n: ClusterNode, binDir: string): string {
  const cd = join(n.dir, 'containerd');
  const q = (s: string): string => JSON.stringify(s);
  return `# containerd of lab node ${n.name}
version = 4
imports = []
root = ${q(join(cd, 'root'))}
state = ${q(join(cd, 'state'))}

# Version 4: the sockets are plugin settings (a top-level [grpc] would be ignored, and
# containerd would serve on /run/containerd/containerd.sock).
[plugins.'io.containerd.server.v1.grpc']
  address = ${q(n.containerdSocket)}
[plugins.'io.containerd.server.v1.ttrpc']
  address = ${q(`${n.containerdSocket}.ttrpc`)}

# NRI would serve on /var/run/nri/nri.sock, a host path every node would share.
[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = ${q(PAUSE_IMAGE)}

[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under_state_dir = true
  # Where CAP_SYS_RESOURCE is dropped from every bounding set, runc cannot lower
  # oom_score_adj (kubelet asks -998 for sandboxes) and every sandbox would fail.
  restrict_oom_score_adj = true
  enable_unprivileged_ports = false
  enable_unprivileged_icmp = false
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = ${q(join(binDir, 'runc'))}
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [${q(join(binDir, 'cni'))}]
    conf_dir = ${q(join(n.dir, 'cni', 'net.d'))}
`;
}

function kubeletConfig(n: ClusterNode): Record<string, unknown> {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: n.v4,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: `/${n.cgroup}`,
    cgroupsPerQOS: true,
    failSwapOn: false,
    failCgroupV1: false,
    // Refuse instead of writing the host's global sysctls (the node sees fake files).
    protectKernelDefaults: true,
    containerRuntimeEndpoint: `unix://${n.containerdSocket}`,
    podLogsDir: join(n.dir, 'pod-logs'),
    podCIDR: n.podCidrV4,
    // Lab-grade: the API server has no kubelet client certificate.
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
    authorization: { mode: 'AlwaysAllow' },
    clusterDomain: 'cluster.local',
    resolvConf: '/etc/resolv.conf',
    serializeImagePulls: false,
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    nodeStatusUpdateFrequency: '5s',
    syncFrequency: '10s',
  };
}

function kubeProxyConfig(n: ClusterNode, kubeconfigPath: string): Record<string, unknown> {
  return {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'nftables',
    hostnameOverride: n.name,
    clientConnection: { kubeconfig: kubeconfigPath },
    clusterCIDR: `${CLUSTER_ADDRESSES.podCidrV4},${CLUSTER_ADDRESSES.podCidrV6}`,
    bindAddress: n.v4,
    healthzBindAddress: '127.0.0.1:10256',
    metricsBindAddress: '127.0.0.1:10249',
    // Zeros: kube-proxy leaves the (global) conntrack sysctls alone.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
  };
}

// ---- PureLB in the cluster ------------------------------------------------------------

export const CLUSTER_PURELB_NAMESPACE = 'purelb';
export const CHART_DIR = join(repoRoot, 'charts', 'purelb');

/** Splits `registry/name:tag` into the chart's image.repository and image.tag. */
function imageValues(ref: string): { repository: string; tag: string; pullPolicy: 'Never' } {
  const i = ref.lastIndexOf(':');
  return { repository: ref.slice(0, i), tag: ref.slice(i + 1), pullPolicy: 'Never' };
}

/** The chart values the lab installs PureLB with: the imported images, never pulled; the local pool as the default ServiceGroup. */
export function clusterChartValues(lab: Pick<ClusterLab, 'images'>): Record<string, unknown> {
  return {
    allocator: { image: imageValues(lab.images.allocator) },
    lbnodeagent: {
      image: imageValues(lab.images.lbnodeagent),
      // The lab's kernels may lack the dummy driver; a bridge with no ports does the same job.
      virtualLinkKind: 'bridge',
      sendgarp: true,
    },
    serviceGroup: { create: true, name: 'default', spec: { local: CLUSTER_ADDRESSES.localPool } },
  };
}

/**
 * `helm install` of charts/purelb into the cluster (namespace purelb) with
 * clusterChartValues() plus `values`; then a ServiceGroup `virtual` with the virtual pool.
 * Resolves when helm returns (it does not wait for the Pods).
 */
export async function installPureLBChart(lab: ClusterLab, extra: { readonly set?: readonly string[] } = {}): Promise<string> {
  const valuesPath = join(lab.dir, 'purelb-values.json');
  writeFileSync(valuesPath, JSON.stringify(clusterChartValues(lab), null, 2));
  const out = await lab.helm(['install', 'purelb', CHART_DIR, `--namespace=${CLUSTER_PURELB_NAMESPACE}`, '--create-namespace', `--values=${valuesPath}`, ...(extra.set ?? []).map((s) => `--set=${s}`)]);
  await lab.admin.apply(`/apis/purelb.io/v1/namespaces/${CLUSTER_PURELB_NAMESPACE}/servicegroups/virtual`, {
    apiVersion: 'purelb.io/v1',
    kind: 'ServiceGroup',
    metadata: { name: 'virtual', namespace: CLUSTER_PURELB_NAMESPACE },
    spec: { local: CLUSTER_ADDRESSES.virtualPool },
  });
  return out;
}

interface PodList {
  items: {
    metadata: { name: string; deletionTimestamp?: string };
    spec: { nodeName?: string };
    status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
  }[];
}

/** The Pods matching a label selector, with their node and readiness. */
export async function pods(admin: KubeClient, namespace: string, selector: string): Promise<{ name: string; node: string; ready: boolean; ip: string; deleting: boolean }[]> {
  const list = await admin.get<PodList>(`/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(selector)}`);
  return list.items.map((p) => ({
    name: p.metadata.name,
    node: p.spec.nodeName ?? '',
    ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    ip: p.status?.podIP ?? '',
    deleting: p.metadata.deletionTimestamp !== undefined,
  }));
}

export interface DemoOptions {
  readonly name?: string;
  readonly namespace?: string;
  readonly replicas?: number;
}

/** The demo Deployment (our demo image on :8080, spread over the nodes); no Service. */
export async function deployDemo(lab: ClusterLab, o: DemoOptions = {}): Promise<void> {
  const name = o.name ?? 'demo';
  const ns = o.namespace ?? 'default';
  const labels = { app: name };
  await lab.admin.apply(`/apis/apps/v1/namespaces/${ns}/deployments/${name}`, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns, labels },
    spec: {
      replicas: o.replicas ?? lab.nodes.length,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          terminationGracePeriodSeconds: 2,
          automountServiceAccountToken: false,
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: labels } }],
          containers: [
            {
              name: 'demo',
              image: lab.images.demo,
              imagePullPolicy: 'Never',
              env: [
                { name: 'PORT', value: '8080' },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
              ],
              ports: [{ name: 'http', containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1, failureThreshold: 2 },
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true },
            },
          ],
        },
      },
    },
  });
}

/** A dual-stack LoadBalancer Service to the demo pods (port 80 -> 8080). */
export async function createDemoLoadBalancer(
  lab: ClusterLab,
  name: string,
  o: { readonly app?: string; readonly namespace?: string; readonly serviceGroup?: string; readonly externalTrafficPolicy?: 'Cluster' | 'Local' } = {},
): Promise<void> {
  const ns = o.namespace ?? 'default';
  await lab.admin.apply(`/api/v1/namespaces/${ns}/services/${name}`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, annotations: o.serviceGroup ? { 'purelb.io/service-group': o.serviceGroup } : {} },
    spec: {
      type: 'LoadBalancer',
      selector: { app: o.app ?? 'demo' },
      ipFamilies: ['IPv4', 'IPv6'],
      ipFamilyPolicy: 'RequireDualStack',
      externalTrafficPolicy: o.externalTrafficPolicy ?? 'Cluster',
      ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }],
    },
  });
}

/** The Service's load-balancer addresses once it has one of each family (bounded). */
export async function loadBalancerAddresses(admin: KubeClient, name: string, namespace = 'default', timeoutMs = 60_000): Promise<{ v4: string; v6: string }> {
  return waitFor(
    `Service ${namespace}/${name} to get an IPv4 and an IPv6 address`,
    async () => {
      const s = await admin.get<{ status?: { loadBalancer?: { ingress?: { ip: string }[] } } }>(`/api/v1/namespaces/${namespace}/services/${name}`);
      const ips = (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
      const v4 = ips.find((ip) => !ip.includes(':'));
      const v6 = ips.find((ip) => ip.includes(':'));
      return v4 && v6 ? { v4, v6 } : undefined;
    },
    timeoutMs,
    200,
  );
}

/** http://ADDRESS/ with brackets for IPv6. */
export function urlOf(address: string, port = 80): string {
  return address.includes(':') ? `http://[${address}]:${port}/` : `http://${address}:${port}/`;
}

/** Parses the demo's answer `pod=<POD_NAME> node=<NODE_NAME> client=<address>`. */
export function parseDemoAnswer(body: string): { pod: string; node: string; client: string } | undefined {
  const m = /pod=(\S+) node=(\S+) client=(\S+)/.exec(body);
  return m ? { pod: m[1]!, node: m[2]!, client: m[3]! } : undefined;
}
