// The lab LAN: a bridge in a namespace of its own, node namespaces and a client namespace
// joined to it by veth pairs. Nothing is created in the host's namespace.
import { ip, ipBatch, killAndWait, run } from './exec.ts';

/** Every name the lab creates starts with this, so a crashed run can be cleaned up. */
export const LAB_PREFIX = 'plb-';

export const LAN = {
  v4Subnet: '192.0.2.0/24',
  v6Subnet: '2001:db8::/64',
  v4Prefix: 24,
  v6Prefix: 64,
  /** The bridge's own address: the default gateway of every lab namespace. */
  gatewayV4: '192.0.2.1',
  gatewayV6: '2001:db8::1',
  clientV4: '192.0.2.100',
  clientV6: '2001:db8::100',
} as const;

/**
 * Source addresses of the ARP sampler's requests (arp-sampler.ts): a ring of tags, so an
 * answer names the request it answers. On the LAN, used by nothing else: nodes are
 * .11 to .60 (::11 to ::60), the client .100 (::100), the default pool .200 and up.
 * The nodes learn a neighbour entry for each (the client's MAC); nothing is sent to them.
 */
export const SAMPLER_TAGS_V4: readonly string[] = Array.from({ length: 16 }, (_, i) => `192.0.2.${101 + i}`);
export const SAMPLER_TAGS_V6: readonly string[] = Array.from({ length: 16 }, (_, i) => `2001:db8::${(0x101 + i).toString(16)}`);

/** The 16 bytes of an IPv6 address in text form. */
export function v6Bytes(address: string): Uint8Array {
  const [head = '', tail] = address.split('::');
  const words = (s: string): number[] => (s === '' ? [] : s.split(':').map((w) => parseInt(w, 16)));
  const h = words(head);
  const t = tail === undefined ? [] : words(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  if (all.length !== 8 || all.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffff)) throw new RangeError(`not an IPv6 address: ${address}`);
  const b = new Uint8Array(16);
  all.forEach((w, i) => {
    b[i * 2] = w >> 8;
    b[i * 2 + 1] = w & 0xff;
  });
  return b;
}

export interface LabNode {
  /** Kubernetes Node name (`node-1`, ...). */
  readonly name: string;
  /** Network namespace. */
  readonly netns: string;
  /** The LAN interface inside the namespace. */
  readonly iface: 'eth0';
  readonly v4: string;
  readonly v6: string;
}

export interface LabNetwork {
  readonly id: string;
  readonly lanNetns: string;
  readonly clientNetns: string;
  readonly nodes: readonly LabNode[];
}

export function nodeAddresses(index: number): { v4: string; v6: string } {
  return { v4: `192.0.2.${10 + index}`, v6: `2001:db8::${10 + index}` };
}

/** Names for a lab with this id and node count. */
export function planNetwork(id: string, nodeCount: number): LabNetwork {
  const nodes: LabNode[] = [];
  for (let i = 1; i <= nodeCount; i++) nodes.push({ name: `node-${i}`, netns: `${LAB_PREFIX}${id}-n${i}`, iface: 'eth0', ...nodeAddresses(i) });
  return { id, lanNetns: `${LAB_PREFIX}${id}-lan`, clientNetns: `${LAB_PREFIX}${id}-client`, nodes };
}

/** Creates the namespaces, the bridge and the veth pairs; addresses and default routes. */
export async function createNetwork(net: LabNetwork): Promise<void> {
  const spokes = [
    ...net.nodes.map((n, i) => ({ netns: n.netns, port: `n${i + 1}`, v4: n.v4, v6: n.v6 })),
    { netns: net.clientNetns, port: 'client', v4: LAN.clientV4, v6: LAN.clientV6 },
  ];
  const all = [net.lanNetns, ...spokes.map((s) => s.netns)];
  // One `ip -batch` per namespace: batch lines take no per-line -n option.
  await ipBatch([
    ...all.map((ns) => `netns add ${ns}`),
    ...spokes.map((s) => `link add eth0 netns ${s.netns} type veth peer name ${s.port} netns ${net.lanNetns}`),
  ]);
  await ipBatch(
    [
      'link set lo up',
      'link add br0 type bridge',
      `addr add ${LAN.gatewayV4}/${LAN.v4Prefix} dev br0`,
      `addr add ${LAN.gatewayV6}/${LAN.v6Prefix} dev br0 nodad`,
      'link set br0 up',
      ...spokes.flatMap((s) => [`link set ${s.port} master br0`, `link set ${s.port} up`]),
    ],
    net.lanNetns,
  );
  await Promise.all(
    spokes.map((s) =>
      ipBatch(
        [
          'link set lo up',
          `addr add ${s.v4}/${LAN.v4Prefix} dev eth0`,
          `addr add ${s.v6}/${LAN.v6Prefix} dev eth0 nodad`,
          'link set eth0 up',
          `route add default via ${LAN.gatewayV4}`,
          `route add default via ${LAN.gatewayV6}`,
        ],
        s.netns,
      ),
    ),
  );
}

/** Namespaces whose names start with the lab prefix (optionally of one lab id). */
export async function labNamespaces(id?: string): Promise<string[]> {
  const out = await ip('-json', 'netns', 'list').catch(() => '[]');
  const list = (out.trim() ? (JSON.parse(out) as { name: string }[]) : []).map((n) => n.name);
  return list.filter((n) => n.startsWith(id === undefined ? LAB_PREFIX : `${LAB_PREFIX}${id}-`));
}

/** Kills every process in the namespaces and deletes them (their links go with them). */
export async function deleteNamespaces(names: readonly string[]): Promise<void> {
  const pids: number[] = [];
  for (const ns of names) pids.push(...(await ip('netns', 'pids', ns).catch(() => '')).split('\n').filter(Boolean).map(Number));
  await killAndWait(pids);
  if (names.length > 0) await ipBatch(names.map((ns) => `netns del ${ns}`)).catch(async () => {
    for (const ns of names) await ip('netns', 'del', ns).catch(() => undefined);
  });
}

/** `ip netns exec NS cmd args...` to completion. */
export function inNetns(netns: string, cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  return run('ip', ['netns', 'exec', netns, cmd, ...args], { timeoutMs });
}
