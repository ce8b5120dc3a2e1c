// The routed part of the process lab (`startLab({ routed: true })`, `npm run lab --
// --routed`): an upstream router namespace running FRR (zebra, bgpd, bfdd) on the LAN, a
// client namespace on a network of its own behind it, and BIRD 2 in every node namespace
// advertising the addresses of kube-lb0 to the router over BGP with BFD (the
// configuration of docs/routing.md, from routing.ts). The router spreads each address
// over the nodes that advertise it (ECMP, hashed per flow on L4).
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError, ManagedProcess, hasCommand as has, installMissing, ip, ipBatch, run, waitFor } from './exec.ts';
import type { KubeClient } from './kube-client.ts';
import { PURELB_NAMESPACE } from './purelb.ts';
import { LAN, type LabNetwork, type LabNode } from './network.ts';
import { birdConfig, frrRouterConfig } from './routing.ts';

/** Addresses, AS numbers and timings of the routed lab (documentation ranges, private ASNs). */
export const ROUTED = {
  /** The router on the LAN (the nodes' BGP peer; bridge port `router`). */
  routerV4: '192.0.2.2',
  routerV6: '2001:db8::2',
  routerAs: 64512,
  nodesAs: 64513,
  /** The routed client's network, behind the router. */
  clientSubnetV4: '198.51.100.0/24',
  clientSubnetV6: '2001:db8:100::/64',
  routerClientV4: '198.51.100.1',
  routerClientV6: '2001:db8:100::1',
  clientV4: '198.51.100.10',
  clientV6: '2001:db8:100::10',
  /** The ServiceGroup of routed (virtual) addresses: host routes, one per address. */
  serviceGroup: 'routed',
  v4pool: { pool: '203.0.113.10-203.0.113.49', subnet: '203.0.113.0/24', aggregation: '/32' },
  v6pool: { pool: '2001:db8:1::10-2001:db8:1::4f', subnet: '2001:db8:1::/64', aggregation: '/128' },
  bfdIntervalMs: 200,
  bfdMultiplier: 3,
  maximumPaths: 8,
} as const;

const FRR_DIR = '/usr/lib/frr';


/**
 * The routed lab needs BIRD 2 (`bird`, `birdc`: Debian package bird2) and FRR (zebra,
 * bgpd, bfdd, vtysh: package frr). Missing packages are installed with apt-get (the lab
 * runs as root); where that cannot be done the error names what is missing.
 */
export async function checkRoutedPrerequisites(onProgress?: (line: string) => void): Promise<void> {
  const want: [string, () => Promise<boolean>, string][] = [
    ['bird', () => has('bird'), 'bird2'],
    ['birdc', () => has('birdc'), 'bird2'],
    ['vtysh', () => has('vtysh'), 'frr'],
    [`${FRR_DIR}/zebra, bgpd, bfdd`, () => Promise.resolve(['zebra', 'bgpd', 'bfdd'].every((d) => existsSync(join(FRR_DIR, d)))), 'frr'],
  ];
  const missing: [string, string][] = [];
  for (const [what, check, pkg] of want) if (!(await check())) missing.push([what, pkg]);
  if (missing.length === 0) return;
  await installMissing('the routed lab', missing, onProgress);
  const pkgs = [...new Set(missing.map(([, p]) => p))];
  for (const [w, check] of want) if (!(await check())) throw new LabError('LAB_MISSING_TOOLS', `the routed lab needs ${w}, still missing after installing ${pkgs.join(' ')}`);
}

/** The router's route to one address: the nodes it sends that address's traffic to. */
export interface RouterRoute {
  readonly address: string;
  /** Node names, sorted (several: ECMP). Empty: no route. */
  readonly nodes: readonly string[];
}

export interface RoutedNetwork {
  /** The router namespace (FRR). */
  readonly routerNetns: string;
  /** The routed client's namespace, behind the router. */
  readonly clientNetns: string;
  /** The nodes the router's kernel forwards this (virtual) address to, from its FIB. */
  paths(address: string): Promise<RouterRoute>;
  /** Polls paths() until `accept` holds; returns the route. */
  waitForPaths(address: string, accept: (nodes: readonly string[]) => boolean, timeoutMs: number, what: string): Promise<RouterRoute>;
  /** The router's neighbour entry for a LAN address: its MAC and NUD state. */
  neighbour(address: string): Promise<{ mac: string; state: string } | undefined>;
  /**
   * Opens `connections` HTTP connections at once (each its own source port) from the routed
   * client to the address and returns, per node name, how many it answered (`failed`: no
   * answer within timeoutMs).
   */
  spread(address: string, connections: number, timeoutMs?: number): Promise<Map<string, number>>;
  /** The router's vtysh socket folder (`vtysh --vty_socket DIR`). */
  readonly vtySocketDir: string;
  /** A node's BIRD control socket (`birdc -s PATH`). */
  birdSocket(node: LabNode): string;
  /** `vtysh -c CMD` on the router. */
  vtysh(command: string): Promise<string>;
  /** `birdc CMD` on a node. */
  birdc(node: LabNode, command: string): Promise<string>;
  /** Per BFD peer address on the router: how many times its session went down. */
  bfdDownCounts(): Promise<Map<string, number>>;
  /** The nodes whose IPv4 and IPv6 BGP sessions are Established on the router. */
  establishedNodes(): Promise<string[]>;
  /** Puts back what a node's link flap took (its route to the client network). */
  restoreNode(node: LabNode): Promise<void>;
  /** The routing daemons (for their pids and logs). */
  readonly processes: readonly ManagedProcess[];
  stop(): Promise<void>;
}

/** Lines that give a node namespace its route back to the routed client's network. */
function nodeRouteLines(): string[] {
  return [`route replace ${ROUTED.clientSubnetV4} via ${ROUTED.routerV4}`, `route replace ${ROUTED.clientSubnetV6} via ${ROUTED.routerV6}`];
}

/**
 * Creates the router and routed-client namespaces, attaches the router to the LAN bridge
 * (port `router`), starts FRR in the router and BIRD in every node, and waits until every
 * node's two BGP sessions are established.
 */
export async function startRoutedNetwork(net: LabNetwork, dir: string, onPids: (pids: number[]) => void, onProgress?: (line: string) => void): Promise<RoutedNetwork> {
  const routerNetns = `${net.lanNetns.slice(0, -'lan'.length)}router`;
  const clientNetns = `${net.lanNetns.slice(0, -'lan'.length)}rclient`;
  const processes: ManagedProcess[] = [];
  const stateDir = join(dir, 'routing');
  mkdirSync(stateDir, { recursive: true });
  const stop = async (): Promise<void> => {
    for (const p of [...processes].reverse()) await p.stop(2000);
  };
  try {
    onProgress?.('creating the router and the routed client namespaces');
    await ipBatch([
      `netns add ${routerNetns}`,
      `netns add ${clientNetns}`,
      `link add eth0 netns ${routerNetns} type veth peer name router netns ${net.lanNetns}`,
      `link add eth1 netns ${routerNetns} type veth peer name eth0 netns ${clientNetns}`,
    ]);
    await ipBatch(['link set router master br0', 'link set router up'], net.lanNetns);
    await ipBatch(
      [
        'link set lo up',
        `addr add ${ROUTED.routerV4}/${LAN.v4Prefix} dev eth0`,
        `addr add ${ROUTED.routerV6}/${LAN.v6Prefix} dev eth0 nodad`,
        'link set eth0 up',
        `addr add ${ROUTED.routerClientV4}/24 dev eth1`,
        `addr add ${ROUTED.routerClientV6}/64 dev eth1 nodad`,
        'link set eth1 up',
      ],
      routerNetns,
    );
    await ipBatch(
      [
        'link set lo up',
        `addr add ${ROUTED.clientV4}/24 dev eth0`,
        `addr add ${ROUTED.clientV6}/64 dev eth0 nodad`,
        'link set eth0 up',
        `route add default via ${ROUTED.routerClientV4}`,
        `route add default via ${ROUTED.routerClientV6}`,
      ],
      clientNetns,
    );
    // Forwarding, and ECMP hashed per flow on addresses and ports (policy 1: L4), so that
    // connections from one client spread over the nodes.
    await run('ip', [
      'netns', 'exec', routerNetns, 'sysctl', '-q', '-w',
      'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1',
      'net.ipv4.fib_multipath_hash_policy=1', 'net.ipv6.fib_multipath_hash_policy=1',
    ]);
    await Promise.all(net.nodes.map((n) => ipBatch(nodeRouteLines(), n.netns)));

    onProgress?.('starting FRR (zebra, bfdd, bgpd) in the router namespace');
    const frrDir = join(stateDir, 'frr');
    mkdirSync(frrDir, { recursive: true });
    // The daemons drop to the package's user (frr), which writes its sockets and pid files here.
    const frrUid = Number((await run('id', ['-u', 'frr'])).trim());
    const frrGid = Number((await run('id', ['-g', 'frr'])).trim());
    chownSync(frrDir, frrUid, frrGid);
    const conf = frrRouterConfig({
      routerV4: ROUTED.routerV4,
      routerV6: ROUTED.routerV6,
      routerAs: ROUTED.routerAs,
      nodesAs: ROUTED.nodesAs,
      nodes: net.nodes,
      bfdIntervalMs: ROUTED.bfdIntervalMs,
      bfdMultiplier: ROUTED.bfdMultiplier,
      maximumPaths: ROUTED.maximumPaths,
    });
    const zserv = join(frrDir, 'zserv.api');
    // The routing daemons run at nice -10: on a busy machine a late BFD packet would take a
    // healthy node's routes away (200 ms x 3 leaves little room for scheduling delays).
    const frrCommon = (daemon: string): string[] => [
      'netns', 'exec', routerNetns, 'nice', '-n', '-10', join(FRR_DIR, daemon),
      '-f', join(frrDir, `${daemon}.conf`),
      '-i', join(frrDir, `${daemon}.pid`),
      '-z', zserv,
      '--vty_socket', frrDir,
      '-A', '127.0.0.1', '-P', '0',
      '--log', 'stdout', '--log-level', 'notifications',
    ];
    writeFileSync(join(frrDir, 'zebra.conf'), conf.zebra);
    writeFileSync(join(frrDir, 'bfdd.conf'), conf.bfdd);
    writeFileSync(join(frrDir, 'bgpd.conf'), conf.bgpd);
    const start = (name: string, args: string[]): ManagedProcess => {
      const p = new ManagedProcess(name, 'ip', args, undefined, join(stateDir, `${name.replace(/\s+/g, '-')}.log`));
      processes.push(p);
      onPids(processes.map((x) => x.pid ?? 0));
      return p;
    };
    start('router zebra', frrCommon('zebra'));
    await waitFor('the router\'s zebra to listen', () => (existsSync(zserv) ? true : undefined), 15_000, 25);
    start('router bfdd', [...frrCommon('bfdd'), '--bfdctl', join(frrDir, 'bfdd.sock')]);
    start('router bgpd', frrCommon('bgpd'));

    onProgress?.(`starting BIRD 2 in ${net.nodes.length} node namespaces`);
    const birdSock = (n: LabNode): string => join(stateDir, `bird-${n.name}.ctl`);
    for (const n of net.nodes) {
      const file = join(stateDir, `bird-${n.name}.conf`);
      writeFileSync(file, birdNodeConfig(n));
      start(`bird ${n.name}`, ['netns', 'exec', n.netns, 'nice', '-n', '-10', 'bird', '-f', '-c', file, '-s', birdSock(n), '-P', join(stateDir, `bird-${n.name}.pid`)]);
    }

    const vtysh = (command: string): Promise<string> => run('ip', ['netns', 'exec', routerNetns, 'vtysh', '--vty_socket', frrDir, '-c', command], { timeoutMs: 10_000 });
    const byGateway = new Map<string, string>();
    for (const n of net.nodes) {
      byGateway.set(n.v4, n.name);
      byGateway.set(n.v6, n.name);
    }
    const nodeMacs = new Map<string, string>();
    const paths = async (address: string): Promise<RouterRoute> => {
      const plen = address.includes(':') ? 128 : 32;
      const out = await ip('-n', routerNetns, '-j', address.includes(':') ? '-6' : '-4', 'route', 'show', 'exact', `${address}/${plen}`);
      const routes = JSON.parse(out.trim() || '[]') as { gateway?: string; nexthops?: { gateway?: string; dev?: string }[] }[];
      const gws = routes.flatMap((r) => (r.nexthops ? r.nexthops.map((h) => h.gateway) : [r.gateway]));
      const nodes = new Set<string>();
      for (const g of gws) {
        if (g === undefined) continue;
        let name = byGateway.get(g);
        // An IPv6 route's next hop may be the node's link-local address.
        if (name === undefined && g.startsWith('fe80:')) name = await linkLocalOwner(g);
        nodes.add(name ?? g);
      }
      return { address, nodes: [...nodes].sort() };
    };
    const linkLocalOwner = async (ll: string): Promise<string | undefined> => {
      if (nodeMacs.size === 0) {
        for (const n of net.nodes) nodeMacs.set(n.name, (JSON.parse(await ip('-n', n.netns, '-j', 'link', 'show', 'eth0')) as { address: string }[])[0]!.address);
      }
      const neigh = JSON.parse(await ip('-n', routerNetns, '-j', '-6', 'neigh', 'show', ll)) as { lladdr?: string }[];
      const mac = neigh[0]?.lladdr;
      return [...nodeMacs].find(([, m]) => m === mac)?.[0];
    };
    const establishedNodes = async (): Promise<string[]> => {
      const s = JSON.parse(await vtysh('show bgp neighbors json')) as Record<string, { bgpState?: string }>;
      return net.nodes.filter((n) => s[n.v4]?.bgpState === 'Established' && s[n.v6]?.bgpState === 'Established').map((n) => n.name);
    };
    onProgress?.('waiting for every node\'s BGP sessions (IPv4 and IPv6) with the router');
    await waitFor(
      'every node\'s BGP sessions to be established',
      async () => {
        for (const p of processes) if (!p.running) throw new LabError('LAB_DAEMON_EXITED', `${p.name} exited:\n${p.tail(20)}`);
        return (await establishedNodes()).length === net.nodes.length ? true : undefined;
      },
      30_000,
      200,
    );
    return {
      routerNetns,
      clientNetns,
      processes,
      paths,
      waitForPaths: async (address, accept, timeoutMs, what) =>
        waitFor(`the router's route to ${address}: ${what}`, async () => {
          const r = await paths(address);
          return accept(r.nodes) ? r : undefined;
        }, timeoutMs, 20),
      neighbour: async (address) => {
        const e = (JSON.parse(await ip('-n', routerNetns, '-j', 'neigh', 'show', address, 'dev', 'eth0')) as { lladdr?: string; state?: string[] }[])[0];
        return e?.lladdr ? { mac: e.lladdr, state: (e.state ?? []).join(',') } : undefined;
      },
      spread: async (address, connections, timeoutMs = 2000) => {
        if (!Number.isInteger(connections) || connections < 1 || connections > 1000) throw new LabError('LAB_BAD_OPTION', `spread: connections ${connections} is not in 1-1000`);
        const url = address.includes(':') ? `http://[${address}]/` : `http://${address}/`;
        const out = await run('ip', ['netns', 'exec', clientNetns, process.execPath, join(import.meta.dirname, 'probe.ts'), String(timeoutMs), ...new Array<string>(connections).fill(url)], { timeoutMs: timeoutMs + 20_000 });
        const counts = new Map<string, number>();
        for (const r of JSON.parse(out) as { ok: boolean; body: string }[]) {
          const who = r.ok ? r.body : 'failed';
          counts.set(who, (counts.get(who) ?? 0) + 1);
        }
        return counts;
      },
      vtySocketDir: frrDir,
      birdSocket: birdSock,
      vtysh,
      birdc: (node, command) => run('ip', ['netns', 'exec', node.netns, 'birdc', '-s', birdSock(node), ...command.split(' ')], { timeoutMs: 10_000 }),
      establishedNodes,
      bfdDownCounts: async () => {
        const peers = JSON.parse(await vtysh('show bfd peers counters json')) as { peer?: string; 'session-down'?: number }[];
        return new Map(peers.filter((x) => x.peer !== undefined).map((x) => [x.peer!, x['session-down'] ?? 0]));
      },
      restoreNode: async (node) => {
        await ipBatch(nodeRouteLines(), node.netns);
      },
      stop,
    };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}

/** The ServiceGroup `routed` (ROUTED.v4pool and v6pool, host routes): Services with the annotation `purelb.io/service-group: routed` get virtual addresses. */
export async function applyRoutedServiceGroup(admin: KubeClient, namespace = PURELB_NAMESPACE): Promise<void> {
  await admin.apply(`/apis/purelb.io/v1/namespaces/${namespace}/servicegroups/${ROUTED.serviceGroup}`, {
    apiVersion: 'purelb.io/v1',
    kind: 'ServiceGroup',
    metadata: { name: ROUTED.serviceGroup, namespace },
    spec: { local: { v4pools: [ROUTED.v4pool], v6pools: [ROUTED.v6pool] } },
  });
}

/** A lab node's BIRD configuration: the docs' template with this node's addresses. */
export function birdNodeConfig(n: LabNode): string {
  return birdConfig({
    nodeV4: n.v4,
    nodeV6: n.v6,
    nodeAs: ROUTED.nodesAs,
    routerV4: ROUTED.routerV4,
    routerV6: ROUTED.routerV6,
    routerAs: ROUTED.routerAs,
    virtualInterface: 'kube-lb0',
    lanInterface: n.iface,
    bfdIntervalMs: ROUTED.bfdIntervalMs,
    bfdMultiplier: ROUTED.bfdMultiplier,
  });
}
