// The lab: control plane + LAN + one helper per node namespace, and the Kubernetes
// objects a kubelet would have written (Nodes, EndpointSlices of the demo Services).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { join } from 'node:path';
import { type ControlPlane, startControlPlane } from './control-plane.ts';
import { LabError, ManagedProcess, ip, ipBatch, isAlive, killAndWait, waitFor, run } from './exec.ts';
import { type LabNetwork, type LabNode, LAN, LAB_PREFIX, createNetwork, deleteNamespaces, labNamespaces, planNetwork } from './network.ts';

/** Where lab state lives; one folder per lab, removed on stop. */
export const LAB_STATE_ROOT = '/tmp/purelb-lab';

const srcDir = import.meta.dirname;

export interface LabOptions {
  /** Number of node namespaces (default 3). */
  readonly nodes?: number;
  readonly onProgress?: ((line: string) => void) | undefined;
}

export interface ProbeResult {
  readonly url: string;
  readonly ok: boolean;
  readonly body: string;
  readonly error?: string;
}

export interface Lab {
  readonly id: string;
  readonly dir: string;
  readonly controlPlane: ControlPlane;
  readonly network: LabNetwork;
  readonly nodes: readonly LabNode[];
  /** kubeconfig (admin) valid on the host and inside every lab namespace. */
  readonly kubeconfigPath: string;
  /** GET each URL from inside a namespace; bounded by timeoutMs per URL. */
  probe(netns: string, urls: readonly string[], timeoutMs?: number): Promise<ProbeResult[]>;
  /** MACs that answer an ARP request for the (IPv4) address, asked from the client namespace. */
  arpWhoHas(address: string, timeoutMs?: number): Promise<string[]>;
  /**
   * Listens in the client namespace for gratuitous ARP for the address; resolves `ready`
   * once listening. `heard()` returns what was heard so far (MAC and capture time, ms on
   * the machine's monotonic clock in the capture process: compare only within one watch).
   */
  watchGratuitousArp(address: string, timeoutMs: number): { ready: Promise<void>; heard(): { mac: string; atMs: number }[]; stop(): Promise<void> };
  /** The MAC of each node's LAN interface. */
  nodeMacs(): Promise<Map<string, string>>;
  /** The link names in a node's namespace. */
  links(node: LabNode): Promise<string[]>;
  /** The nodes that have the address on any interface, with the interface. */
  holders(address: string): Promise<{ node: string; link: string; prefixLength: number }[]>;
  /**
   * Blocks (or unblocks) IP between the given nodes with blackhole routes: the membership
   * cannot reach them, while ARP, the client and the API server still do.
   */
  setNodeToNodeBlocked(nodes: readonly LabNode[], blocked: boolean): Promise<void>;
  /** Takes a node's LAN interface down or up (a cut cable). */
  setLinkUp(node: LabNode, up: boolean): Promise<void>;
  /** Creates a LoadBalancer Service with EndpointSlices to the backend of every node. */
  createDemoService(name: string, opts?: DemoServiceOptions): Promise<void>;
  stop(): Promise<void>;
}

export interface DemoServiceOptions {
  readonly namespace?: string;
  readonly families?: readonly ('IPv4' | 'IPv6')[];
  readonly policy?: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
  readonly annotations?: Record<string, string>;
  readonly externalTrafficPolicy?: 'Cluster' | 'Local';
  /** Nodes with a ready endpoint (default: all). */
  readonly endpointNodes?: readonly string[];
}

interface LabState {
  readonly id: string;
  readonly ownerPid: number;
  readonly pids: number[];
}

function writeState(dir: string, state: LabState): void {
  writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
}

/** Fails with a clear message when the lab cannot run here. */
export async function checkPrerequisites(): Promise<void> {
  if (process.getuid?.() !== 0) throw new LabError('LAB_NOT_ROOT', 'the lab needs root (network namespaces, veth, bridges); run as root');
  await run('ip', ['-V']).catch(() => {
    throw new LabError('LAB_NO_IPROUTE2', 'the lab needs iproute2 (`ip`); install the iproute2 package');
  });
}

export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  await checkPrerequisites();
  const nodeCount = opts.nodes ?? 3;
  if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > 50) throw new LabError('LAB_BAD_OPTION', `nodes: ${nodeCount} is not in 1-50`);
  const id = randomBytes(2).toString('hex');
  const dir = join(LAB_STATE_ROOT, id);
  mkdirSync(dir, { recursive: true });
  const state: LabState = { id, ownerPid: process.pid, pids: [] };
  writeState(dir, state);
  const network = planNetwork(id, nodeCount);
  const helpers: ManagedProcess[] = [];
  let controlPlane: ControlPlane | undefined;
  let apiBridge: Server | undefined;

  const stop = async (): Promise<void> => {
    for (const h of helpers) await h.stop(2000);
    await deleteNamespaces(await labNamespaces(id));
    apiBridge?.close();
    await controlPlane?.stop();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    opts.onProgress?.('starting etcd and kube-apiserver');
    const helperPids = (): number[] => helpers.map((h) => h.pid ?? 0);
    controlPlane = await startControlPlane({
      dir,
      onProgress: opts.onProgress,
      onProcessesChanged: (pids) => writeState(dir, { ...state, pids: [...pids, ...helperPids()] }),
    });
    const cp = controlPlane;
    state.pids.push(...cp.processes.map((p) => p.pid ?? 0));
    writeState(dir, state);

    opts.onProgress?.(`creating ${nodeCount} node namespaces, a client namespace and the LAN bridge`);
    await createNetwork(network);

    // Node namespaces reach the API server through a Unix socket: sockets on the
    // filesystem are not bound to a network namespace.
    const socketPath = join(dir, 'apiserver.sock');
    apiBridge = createServer((c) => {
      const up = connect(cp.port, '127.0.0.1');
      c.pipe(up).pipe(c);
      c.on('error', () => up.destroy());
      up.on('error', () => c.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      apiBridge!.once('error', reject);
      apiBridge!.listen(socketPath, resolve);
    });

    const helperArgs = (name: string): string[] => [
      '--conditions=@purelb/source',
      join(srcDir, 'node-helper.ts'),
      '--node',
      name,
      '--api-port',
      String(cp.port),
      '--api-socket',
      socketPath,
    ];
    for (const [name, netns] of [...network.nodes.map((n) => [n.name, n.netns] as const), ['client', network.clientNetns] as const]) {
      const h = new ManagedProcess(`helper ${name}`, 'ip', ['netns', 'exec', netns, process.execPath, ...helperArgs(name)]);
      helpers.push(h);
    }
    state.pids.push(...helpers.map((h) => h.pid ?? 0));
    writeState(dir, state);
    await Promise.all(
      helpers.map((h) =>
        waitFor(
          `${h.name} to be ready`,
          () => {
            if (!h.running) throw new LabError('LAB_HELPER_EXITED', `${h.name} exited:\n${h.tail()}`);
            return h.tail().includes('ready ') ? true : undefined;
          },
          20_000,
          25,
        ),
      ),
    );

    opts.onProgress?.('registering the Node objects');
    await Promise.all(network.nodes.map((n) => registerNode(cp, n)));

    const lab: Lab = {
      id,
      dir,
      controlPlane: cp,
      network,
      nodes: network.nodes,
      kubeconfigPath: cp.kubeconfigPath,
      probe: (netns, urls, timeoutMs = 2000) => probe(netns, urls, timeoutMs),
      createDemoService: (name, o) => createDemoService(cp, network.nodes, name, o ?? {}),
      arpWhoHas: async (address, timeoutMs = 500) =>
        JSON.parse(await run('ip', ['netns', 'exec', network.clientNetns, process.execPath, '--conditions=@purelb/source', join(srcDir, 'arp-probe.ts'), 'eth0', LAN.clientV4, address, String(timeoutMs)], { timeoutMs: timeoutMs + 15_000 })) as string[],
      watchGratuitousArp: (address, timeoutMs) => {
        const p = new ManagedProcess(`garp watch ${address}`, 'ip', ['netns', 'exec', network.clientNetns, process.execPath, '--conditions=@purelb/source', join(srcDir, 'arp-probe.ts'), '--listen', 'eth0', address, String(timeoutMs)]);
        const heard = (): { mac: string; atMs: number }[] =>
          p.tail(1000).split('\n').map((l) => /^([0-9a-f:]{17}) ([\d.]+)$/.exec(l.trim())).filter((m) => m !== null).map((m) => ({ mac: m[1]!, atMs: Number(m[2]) }));
        const ready = waitFor('the ARP listener', () => (p.tail(50).includes('listening') ? true : undefined), 10_000, 10).then(() => undefined);
        return { ready, heard, stop: () => p.stop(1000) };
      },
      links: async (node) => (JSON.parse(await ip('-n', node.netns, '-j', 'link', 'show')) as { ifname: string }[]).map((l) => l.ifname),
      nodeMacs: async () => {
        const out = new Map<string, string>();
        for (const n of network.nodes) out.set(n.name, (JSON.parse(await ip('-n', n.netns, '-j', 'link', 'show', 'eth0')) as { address: string }[])[0]!.address);
        return out;
      },
      holders: async (address) => {
        const out: { node: string; link: string; prefixLength: number }[] = [];
        for (const n of network.nodes) {
          const links = JSON.parse(await ip('-n', n.netns, '-j', 'addr', 'show')) as { ifname: string; addr_info: { local: string; prefixlen: number }[] }[];
          for (const l of links) for (const a of l.addr_info) if (a.local === address) out.push({ node: n.name, link: l.ifname, prefixLength: a.prefixlen });
        }
        return out;
      },
      setNodeToNodeBlocked: async (nodes, blocked) => {
        for (const n of nodes) {
          const lines = nodes.filter((o) => o !== n).flatMap((o) => [`route ${blocked ? 'replace' : 'del'} blackhole ${o.v4}/32`, `route ${blocked ? 'replace' : 'del'} blackhole ${o.v6}/128`]);
          if (lines.length) await ipBatch(lines, n.netns);
        }
      },
      setLinkUp: async (node, up) => {
        await ip('-n', node.netns, 'link', 'set', 'eth0', up ? 'up' : 'down');
        // Taking a link down drops its routes and its IPv6 addresses (keep_addr_on_down is
        // off); a node whose cable comes back has its configuration again.
        if (up) {
          await ipBatch(
            [
              `addr replace ${node.v4}/${LAN.v4Prefix} dev eth0`,
              `addr replace ${node.v6}/${LAN.v6Prefix} dev eth0 nodad`,
              `route replace default via ${LAN.gatewayV4}`,
              `route replace default via ${LAN.gatewayV6}`,
            ],
            node.netns,
          );
        }
      },
      stop,
    };
    return lab;
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}

async function registerNode(cp: ControlPlane, n: LabNode): Promise<void> {
  await cp.admin.create('/api/v1/nodes', {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', 'purelb.io/lab': 'true' } },
  });
  const now = new Date().toISOString();
  await cp.admin.mergePatch(`/api/v1/nodes/${n.name}/status`, {
    status: {
      addresses: [
        { type: 'InternalIP', address: n.v4 },
        { type: 'InternalIP', address: n.v6 },
        { type: 'Hostname', address: n.name },
      ],
      conditions: [{ type: 'Ready', status: 'True', reason: 'LabNode', message: 'lab node namespace is up', lastHeartbeatTime: now, lastTransitionTime: now }],
    },
  });
}

async function createDemoService(cp: ControlPlane, nodes: readonly LabNode[], name: string, o: DemoServiceOptions): Promise<void> {
  const ns = o.namespace ?? 'default';
  if (ns !== 'default') {
    const r = await cp.admin.raw('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    if (r.status !== 201 && r.status !== 409) throw new LabError('LAB_API_ERROR', `create namespace ${ns}: HTTP ${r.status}`);
  }
  const families = o.families ?? ['IPv4'];
  await cp.admin.create(`/api/v1/namespaces/${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, annotations: o.annotations ?? {} },
    spec: {
      type: 'LoadBalancer',
      selector: { app: name },
      ipFamilies: families,
      ipFamilyPolicy: o.policy ?? (families.length > 1 ? 'RequireDualStack' : 'SingleStack'),
      externalTrafficPolicy: o.externalTrafficPolicy ?? 'Cluster',
      allocateLoadBalancerNodePorts: false,
      ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 80 }],
    },
  });
  const ready = new Set(o.endpointNodes ?? nodes.map((n) => n.name));
  for (const family of families) {
    await cp.admin.create(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-${family.toLowerCase()}`, namespace: ns, labels: { 'kubernetes.io/service-name': name, 'endpointslice.kubernetes.io/managed-by': 'purelb-lab' } },
      addressType: family,
      ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
      endpoints: nodes
        .filter((n) => ready.has(n.name))
        .map((n) => ({ addresses: [family === 'IPv4' ? n.v4 : n.v6], nodeName: n.name, conditions: { ready: true, serving: true, terminating: false } })),
    });
  }
}

async function probe(netns: string, urls: readonly string[], timeoutMs: number): Promise<ProbeResult[]> {
  const out = await run('ip', ['netns', 'exec', netns, process.execPath, join(srcDir, 'probe.ts'), String(timeoutMs), ...urls], {
    timeoutMs: timeoutMs * urls.length + 10_000,
  });
  return JSON.parse(out) as ProbeResult[];
}

/**
 * Removes what crashed labs left behind: their processes, namespaces and state folders.
 * A lab whose owner process is still alive is left alone unless `force`. Namespaces with
 * the lab prefix that belong to no live lab are removed too. Returns what was removed.
 */
export async function cleanLabs(force = false): Promise<string[]> {
  const removed: string[] = [];
  const liveIds = new Set<string>();
  if (existsSync(LAB_STATE_ROOT)) {
    for (const id of readdirSync(LAB_STATE_ROOT)) {
      const dir = join(LAB_STATE_ROOT, id);
      let state: LabState | undefined;
      try {
        state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as LabState;
      } catch {
        state = undefined;
      }
      if (state && isAlive(state.ownerPid) && state.ownerPid !== process.pid && !force) {
        liveIds.add(id);
        continue;
      }
      const live = (state?.pids ?? []).filter((pid) => pid > 0 && isAlive(pid));
      await killAndWait(live);
      removed.push(...live.map((pid) => `process ${pid}`));
      rmSync(dir, { recursive: true, force: true });
      removed.push(`state ${dir}`);
    }
  }
  const stale = (await labNamespaces()).filter((ns) => ![...liveIds].some((id) => ns.startsWith(`${LAB_PREFIX}${id}-`)));
  await deleteNamespaces(stale);
  removed.push(...stale.map((ns) => `netns ${ns}`));
  return removed;
}

export { LAN };
