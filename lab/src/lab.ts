// The lab: control plane + LAN + one helper per node namespace, and the Kubernetes
// objects a kubelet would have written (Nodes, EndpointSlices of the demo Services).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ApiPathState, ApiBridge } from './api-bridge.ts';
import { type ArpWatch, type ArpWatchOptions, type ArpWatchSet, startArpWatch } from './arp-watch.ts';
import { type ClusterLab, removeCluster, startClusterLab } from './cluster.ts';
import { type ControlPlane, startControlPlane } from './control-plane.ts';
import { LabError, ManagedProcess, ip, ipBatch, isAlive, killAndWait, waitFor, run } from './exec.ts';
import { type LabNetwork, type LabNode, LAN, LAB_PREFIX, createNetwork, deleteNamespaces, labNamespaces, planNetwork } from './network.ts';
import { type RoutedNetwork, checkRoutedPrerequisites, startRoutedNetwork } from './routed.ts';

/** Where lab state lives; one folder per lab, removed on stop. */
export const LAB_STATE_ROOT = '/tmp/purelb-lab';

const srcDir = import.meta.dirname;

export interface LabOptions {
  /** Number of node namespaces (default 3). */
  readonly nodes?: number;
  /**
   * Cluster mode (cluster.ts): real nodes, each running containerd, runc, kubelet and
   * kube-proxy in its own namespaces, and kube-controller-manager and kube-scheduler in the
   * control plane; startLab then returns a ClusterLab. Default false: the process lab.
   */
  readonly cluster?: boolean;
  /**
   * The routed lab (routed.ts, process lab only): an upstream router namespace running FRR
   * on the LAN, a client namespace behind it, and BIRD 2 in every node advertising the
   * addresses of kube-lb0 over BGP with BFD. Installs bird2 and frr with apt-get when
   * missing. Default false.
   */
  readonly routed?: boolean;
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
  /** The router, the routed client and the nodes' BIRD; present when started with `routed: true`. */
  readonly routed?: RoutedNetwork;
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
  /**
   * Takes a node's LAN interface down or up (a cut cable). `at: 'node'` (default) sets the
   * node's own eth0 down, which also drops its routes and IPv6 addresses (put back on up);
   * `at: 'bridge'` sets the bridge's port of that node down: the node only loses carrier,
   * as when the cable is pulled at the switch, and keeps its configuration. Cuts made by
   * setGossipBlocked/partition survive the flap.
   */
  setLinkUp(node: LabNode, up: boolean, opts?: { readonly at?: 'node' | 'bridge' }): Promise<void>;
  /**
   * Samples, from the client namespace, who answers for one address: an ARP who-has
   * (IPv4) or a neighbour solicitation (IPv6) every `intervalMs` (default 20) from one
   * long-lived sampler process, each sample recording which MACs answered that request
   * and how fast. The samples, the duplicate samples (two MACs answering one request) and
   * the unavailability (runs of unanswered samples) are kept up to date as they come.
   * Stopped by `stop()`, or with the lab.
   */
  watchArp(address: string, opts?: ArpWatchOptions): ArpWatch;
  /** watchArp for several addresses, sampled by one process. */
  watchArpAll(addresses: readonly string[], opts?: ArpWatchOptions): ArpWatchSet;
  /**
   * Cuts (or restores) all IP between this node and every other node, both ways, silently
   * (packets leave and are dropped, no error at the sender, as behind a firewall that
   * drops): its membership traffic (port 7934, UDP and TCP) cannot pass, while the other
   * nodes still gossip among themselves, and ARP, the client and the API path still work.
   * Made with a permanent neighbour entry pointing each peer's address at an unused MAC.
   */
  setGossipBlocked(node: LabNode, blocked: boolean): Promise<void>;
  /**
   * Cuts (or restores) one node's path to the API server (every process of that node's
   * namespace reaches it through the node's own relay). `mode: 'refuse'` (default): open
   * connections, watches included, are closed and new ones fail at once; `mode: 'drop'`:
   * nothing passes and nothing fails, requests hang until the client's own timeout, and
   * connections go on if the path comes back first. The host's processes (the allocator)
   * are not affected.
   */
  setApiReachable(node: LabNode, reachable: boolean, opts?: { readonly mode?: 'refuse' | 'drop' }): Promise<void>;
  /** The state of a node's API path: open, refuse or drop. */
  apiPath(node: LabNode): ApiPathState;
  /**
   * A LAN partition: IP between nodes of different groups is cut both ways, as
   * setGossipBlocked cuts it (nodes in no group form one more group). `api` names the
   * nodes that keep their API path (default 'all'); every other node's is cut ('refuse'
   * unless `apiMode` says 'drop'). Not cut: ARP and neighbour discovery between the
   * groups (one broadcast domain: a node still hears another's ARP probe and answers
   * it), and the client, which reaches every node (so it sees every node that answers
   * for an address, on either side). Returns the handle that heals it.
   */
  partition(groups: readonly (readonly LabNode[])[], opts?: { readonly api?: 'all' | readonly LabNode[]; readonly apiMode?: 'refuse' | 'drop' }): Promise<{ heal(): Promise<void> }>;
  /** Undoes every partition, gossip block and API cut still in place. */
  heal(): Promise<void>;
  /** SIGSTOP: a daemon stalls as in a long pause (its sockets and addresses stay). */
  freeze(process: ManagedProcess): void;
  /** SIGCONT after freeze(). */
  thaw(process: ManagedProcess): void;
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

/** Options of the process lab (no cluster mode). */
export type ProcessLabOptions = Omit<LabOptions, 'cluster'> & { readonly cluster?: false };

interface LabState {
  readonly id: string;
  readonly ownerPid: number;
  readonly pids: number[];
  /** A cluster-mode lab (its clean-up also removes mounts, cgroups and pods). */
  readonly cluster?: boolean;
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

export async function startLab(opts: LabOptions & { readonly cluster: true }): Promise<ClusterLab>;
export async function startLab(opts?: ProcessLabOptions): Promise<Lab>;
export async function startLab(opts: LabOptions = {}): Promise<Lab | ClusterLab> {
  if (opts.cluster === true) {
    if (opts.routed === true) throw new LabError('LAB_BAD_OPTION', 'routed: the routed lab is a process-lab option; cluster mode does not support it');
    await checkPrerequisites();
    return startClusterLab(LAB_STATE_ROOT, { ...(opts.nodes !== undefined ? { nodes: opts.nodes } : {}), onProgress: opts.onProgress });
  }
  return startProcessLab(opts);
}

async function startProcessLab(opts: LabOptions): Promise<Lab> {
  await checkPrerequisites();
  if (opts.routed === true) await checkRoutedPrerequisites(opts.onProgress);
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
  const bridges = new Map<string, ApiBridge>();
  const watches = new Set<ArpWatchSet>();
  let routed: RoutedNetwork | undefined;
  let routedPids: number[] = [];

  const stop = async (): Promise<void> => {
    for (const w of watches) await w.stop();
    await routed?.stop();
    for (const h of helpers) await h.stop(2000);
    await deleteNamespaces(await labNamespaces(id));
    for (const b of bridges.values()) b.close();
    await controlPlane?.stop();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    opts.onProgress?.('starting etcd and kube-apiserver');
    const helperPids = (): number[] => helpers.map((h) => h.pid ?? 0);
    controlPlane = await startControlPlane({
      dir,
      onProgress: opts.onProgress,
      onProcessesChanged: (pids) => writeState(dir, { ...state, pids: [...pids, ...helperPids(), ...routedPids] }),
    });
    const cp = controlPlane;
    state.pids.push(...cp.processes.map((p) => p.pid ?? 0));
    writeState(dir, state);

    opts.onProgress?.(`creating ${nodeCount} node namespaces, a client namespace and the LAN bridge`);
    await createNetwork(network);

    // Node namespaces reach the API server through a Unix socket, one per namespace (so
    // one node's path can be cut): sockets on the filesystem are not bound to a network
    // namespace.
    for (const name of [...network.nodes.map((n) => n.name), 'client']) {
      const b = new ApiBridge(join(dir, `api-${name}.sock`), cp.port);
      bridges.set(name, b);
      await b.listen();
    }

    const helperArgs = (name: string): string[] => [
      '--conditions=@purelb/source',
      join(srcDir, 'node-helper.ts'),
      '--node',
      name,
      '--api-port',
      String(cp.port),
      '--api-socket',
      bridges.get(name)!.socketPath,
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

    if (opts.routed === true) {
      const basePids = [...state.pids];
      routed = await startRoutedNetwork(network, dir, (pids) => {
        routedPids = pids;
        writeState(dir, { ...state, pids: [...basePids, ...routedPids] });
      }, opts.onProgress);
      state.pids.push(...routedPids);
      writeState(dir, state);
    }

    const faults = new LabFaults(network, bridges);

    const lab: Lab = {
      id,
      dir,
      controlPlane: cp,
      network,
      nodes: network.nodes,
      kubeconfigPath: cp.kubeconfigPath,
      ...(routed ? { routed } : {}),
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
      setLinkUp: async (node, up, o) => {
        if (o?.at === 'bridge') {
          await ip('-n', network.lanNetns, 'link', 'set', bridgePort(network, node), up ? 'up' : 'down');
          return;
        }
        await ip('-n', node.netns, 'link', 'set', 'eth0', up ? 'up' : 'down');
        // Taking a link down drops its routes and its IPv6 addresses (keep_addr_on_down is
        // off), and its neighbour entries (the cuts among them); a node whose cable comes
        // back has its configuration again.
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
          await faults.reapply(node);
          await routed?.restoreNode(node);
        }
      },
      watchArp: (address, o) => {
        const set = startArpWatch(network.clientNetns, 'eth0', [address], o);
        watches.add(set);
        return set.get(address);
      },
      watchArpAll: (addresses, o) => {
        const set = startArpWatch(network.clientNetns, 'eth0', addresses, o);
        watches.add(set);
        return set;
      },
      setGossipBlocked: (node, blocked) => faults.setGossipBlocked(node, blocked),
      setApiReachable: (node, reachable, o) => {
        faults.setApiCut(node, 'manual', reachable ? undefined : (o?.mode ?? 'refuse'));
        return Promise.resolve();
      },
      apiPath: (node) => faults.apiPath(node),
      partition: (groups, o) => faults.partition(groups, o ?? {}),
      heal: () => faults.healAll(),
      freeze: (p) => p.freeze(),
      thaw: (p) => p.thaw(),
      stop,
    };
    return lab;
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}

/** The bridge's port of a node (the LAN namespace's end of its veth pair). */
function bridgePort(network: LabNetwork, node: LabNode): string {
  const i = network.nodes.indexOf(node);
  if (i < 0) throw new LabError('LAB_BAD_OPTION', `${node.name} is not a node of this lab`);
  return `n${i + 1}`;
}

/**
 * Where traffic to a cut peer goes: a documentation MAC (RFC 7042) nobody has. The bridge
 * floods such frames and every namespace drops them, so the sender sees no error.
 */
export const CUT_MAC = '00:00:5e:00:53:00';

/**
 * The lab's cuts, counted by reason (a gossip block and a partition may cut the same
 * pair; the pair opens again when neither does).
 */
class LabFaults {
  readonly #network: LabNetwork;
  readonly #bridges: ReadonlyMap<string, ApiBridge>;
  /** "from>to" (node names) -> reasons. */
  readonly #cuts = new Map<string, Set<string>>();
  /** node -> reason -> mode. */
  readonly #apiCuts = new Map<string, Map<string, 'refuse' | 'drop'>>();
  #partitions = 0;

  constructor(network: LabNetwork, bridges: ReadonlyMap<string, ApiBridge>) {
    this.#network = network;
    this.#bridges = bridges;
  }

  #node(n: LabNode): LabNode {
    const found = this.#network.nodes.find((x) => x.name === n.name);
    if (!found) throw new LabError('LAB_BAD_OPTION', `${n.name} is not a node of this lab`);
    return found;
  }

  /** Adds or removes a reason on directed pairs and applies what changed. */
  async #setCut(reason: string, pairs: readonly (readonly [LabNode, LabNode])[], on: boolean): Promise<void> {
    const changed: [LabNode, LabNode, boolean][] = [];
    for (const [a, b] of pairs) {
      const key = `${a.name}>${b.name}`;
      const reasons = this.#cuts.get(key) ?? new Set<string>();
      const before = reasons.size > 0;
      if (on) reasons.add(reason);
      else reasons.delete(reason);
      if (reasons.size > 0) this.#cuts.set(key, reasons);
      else this.#cuts.delete(key);
      if (before !== reasons.size > 0) changed.push([a, b, on]);
    }
    await this.#apply(changed);
  }

  async #apply(changes: readonly (readonly [LabNode, LabNode, boolean])[]): Promise<void> {
    const byNs = new Map<string, string[]>();
    for (const [a, b, on] of changes) {
      const lines = byNs.get(a.netns) ?? [];
      for (const addr of [b.v4, b.v6]) lines.push(on ? `neigh replace ${addr} lladdr ${CUT_MAC} nud permanent dev eth0` : `neigh del ${addr} dev eth0`);
      byNs.set(a.netns, lines);
    }
    await Promise.all(
      [...byNs].map(([ns, lines]) =>
        // -force: a removal whose entry is already gone (a link flap flushed it) is fine.
        run('ip', ['-n', ns, '-force', '-batch', '-'], { input: lines.join('\n') + '\n' }).catch((e: unknown) => {
          if (lines.some((l) => l.startsWith('neigh replace'))) throw e;
        }),
      ),
    );
  }

  /** Puts a node's own cut entries back (an admin-down link flushed them). */
  async reapply(node: LabNode): Promise<void> {
    const n = this.#node(node);
    const changes: [LabNode, LabNode, boolean][] = [];
    for (const key of this.#cuts.keys()) {
      const [from, to] = key.split('>');
      const peer = this.#network.nodes.find((x) => x.name === to);
      if (from === n.name && peer) changes.push([n, peer, true]);
    }
    await this.#apply(changes);
  }

  #pairsAround(node: LabNode): [LabNode, LabNode][] {
    const n = this.#node(node);
    return this.#network.nodes.filter((o) => o !== n).flatMap((o): [LabNode, LabNode][] => [[n, o], [o, n]]);
  }

  setGossipBlocked(node: LabNode, blocked: boolean): Promise<void> {
    return this.#setCut(`gossip ${node.name}`, this.#pairsAround(node), blocked);
  }

  apiPath(node: LabNode): ApiPathState {
    return this.#bridges.get(this.#node(node).name)!.state;
  }

  /** Adds (mode) or removes (undefined) a reason to cut a node's API path. */
  setApiCut(node: LabNode, reason: string, mode: 'refuse' | 'drop' | undefined): void {
    const n = this.#node(node);
    const reasons = this.#apiCuts.get(n.name) ?? new Map<string, 'refuse' | 'drop'>();
    if (mode) reasons.set(reason, mode);
    else reasons.delete(reason);
    this.#apiCuts.set(n.name, reasons);
    const modes = [...reasons.values()];
    this.#bridges.get(n.name)!.set(modes.length === 0 ? 'open' : modes.includes('refuse') ? 'refuse' : 'drop');
  }

  async partition(groups: readonly (readonly LabNode[])[], o: { readonly api?: 'all' | readonly LabNode[]; readonly apiMode?: 'refuse' | 'drop' }): Promise<{ heal(): Promise<void> }> {
    const seen = new Set<string>();
    const all = groups.map((g) => g.map((n) => this.#node(n)));
    for (const n of all.flat()) {
      if (seen.has(n.name)) throw new LabError('LAB_BAD_OPTION', `partition: ${n.name} is in two groups`);
      seen.add(n.name);
    }
    const rest = this.#network.nodes.filter((n) => !seen.has(n.name));
    if (rest.length > 0) all.push(rest);
    const reason = `partition ${++this.#partitions}`;
    const pairs: [LabNode, LabNode][] = [];
    all.forEach((g, i) => all.forEach((h, j) => {
      if (i !== j) for (const a of g) for (const b of h) pairs.push([a, b]);
    }));
    const keep = o.api === undefined || o.api === 'all' ? undefined : new Set(o.api.map((n) => this.#node(n).name));
    const cutApi = keep ? this.#network.nodes.filter((n) => !keep.has(n.name)) : [];
    await this.#setCut(reason, pairs, true);
    for (const n of cutApi) this.setApiCut(n, reason, o.apiMode ?? 'refuse');
    let healed = false;
    return {
      heal: async () => {
        if (healed) return;
        healed = true;
        for (const n of cutApi) this.setApiCut(n, reason, undefined);
        await this.#setCut(reason, pairs, false);
      },
    };
  }

  async healAll(): Promise<void> {
    for (const [name, reasons] of this.#apiCuts) {
      reasons.clear();
      this.#bridges.get(name)!.set('open');
    }
    const changes: [LabNode, LabNode, boolean][] = [];
    for (const key of this.#cuts.keys()) {
      const [from, to] = key.split('>');
      const a = this.#network.nodes.find((x) => x.name === from);
      const b = this.#network.nodes.find((x) => x.name === to);
      if (a && b) changes.push([a, b, false]);
    }
    this.#cuts.clear();
    await this.#apply(changes);
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
      if (state?.cluster === true) await removeCluster(LAB_STATE_ROOT, id, state.pids);
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
