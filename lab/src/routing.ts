// The routing software's configuration, as text: BIRD 2 on a node (the example that
// docs/routing.md shows, generated here so the page and the lab cannot drift apart) and
// FRR on the lab's upstream router. Pure functions; routed.ts runs them.

/** What a node's BIRD needs to know to advertise kube-lb0 to its router. */
export interface BirdNodeParams {
  /** The node's own IPv4 address on the LAN (also its BGP router id). */
  readonly nodeV4: string;
  /** The node's own IPv6 address on the LAN. */
  readonly nodeV6: string;
  /** The node's AS number. */
  readonly nodeAs: number;
  /** The router's addresses on the LAN. */
  readonly routerV4: string;
  readonly routerV6: string;
  readonly routerAs: number;
  /** The interface that holds PureLB's virtual addresses (LBNodeAgent `extlbint`). */
  readonly virtualInterface: string;
  /** The node's LAN interface, where BFD runs. */
  readonly lanInterface: string;
  /** BFD transmit and receive interval, milliseconds. */
  readonly bfdIntervalMs: number;
  /** Missed BFD packets before the session (and the routes learnt over it) goes down. */
  readonly bfdMultiplier: number;
}

/** The parameters docs/routing.md shows (documentation addresses, private AS numbers). */
export const DOC_BIRD_PARAMS: BirdNodeParams = {
  nodeV4: '192.0.2.11',
  nodeV6: '2001:db8::11',
  nodeAs: 64513,
  routerV4: '192.0.2.2',
  routerV6: '2001:db8::2',
  routerAs: 64512,
  virtualInterface: 'kube-lb0',
  lanInterface: 'eth0',
  bfdIntervalMs: 200,
  bfdMultiplier: 3,
};

/** Errors of the configuration builders: a parameter out of range. */
export class RoutingConfigError extends Error {
  override readonly name = 'RoutingConfigError';
  readonly code = 'ROUTING_BAD_PARAMETER';
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function checkAs(field: string, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 4_294_967_295) throw new RoutingConfigError(field, `${v} is not an AS number (1-4294967295)`);
}
function checkV4(field: string, v: string): void {
  const m = V4.exec(v);
  if (!m || m.slice(1).some((o) => Number(o) > 255)) throw new RoutingConfigError(field, `${JSON.stringify(v)} is not an IPv4 address`);
}
function checkV6(field: string, v: string): void {
  if (!/^[0-9a-fA-F:]+$/.test(v) || !v.includes(':')) throw new RoutingConfigError(field, `${JSON.stringify(v)} is not an IPv6 address`);
}
function checkIf(field: string, v: string): void {
  if (!IFNAME.test(v)) throw new RoutingConfigError(field, `${JSON.stringify(v)} is not an interface name (1-15 letters, digits, _ . -)`);
}
function checkBfd(p: { bfdIntervalMs: number; bfdMultiplier: number }): void {
  if (!Number.isInteger(p.bfdIntervalMs) || p.bfdIntervalMs < 10 || p.bfdIntervalMs > 60_000) throw new RoutingConfigError('bfdIntervalMs', `${p.bfdIntervalMs} is not in 10-60000`);
  if (!Number.isInteger(p.bfdMultiplier) || p.bfdMultiplier < 1 || p.bfdMultiplier > 255) throw new RoutingConfigError('bfdMultiplier', `${p.bfdMultiplier} is not in 1-255`);
}

/**
 * BIRD 2's configuration for one node: the addresses on the virtual interface, as the
 * kernel's connected routes of that interface (protocol `direct`), advertised over one
 * IPv4 and one IPv6 BGP session to the router, each watched by BFD. BIRD imports
 * nothing and writes nothing into the node's routing table.
 */
export function birdConfig(p: BirdNodeParams): string {
  checkV4('nodeV4', p.nodeV4);
  checkV6('nodeV6', p.nodeV6);
  checkV4('routerV4', p.routerV4);
  checkV6('routerV6', p.routerV6);
  checkAs('nodeAs', p.nodeAs);
  checkAs('routerAs', p.routerAs);
  checkIf('virtualInterface', p.virtualInterface);
  checkIf('lanInterface', p.lanInterface);
  checkBfd(p);
  const session = (name: string, family: 'ipv4' | 'ipv6', local: string, peer: string): string => `protocol bgp ${name} {
  local ${local} as ${p.nodeAs};
  neighbor ${peer} as ${p.routerAs};
  bfd on;
  # Come back quickly after the link or the router returns.
  connect retry time 2;
  error wait time 1, 10;
  ${family} {
    import none;
    export where proto = "purelb";
  };
}
`;
  return `# BIRD 2 on each node: advertise the addresses PureLB puts on ${p.virtualInterface}.
router id ${p.nodeV4};

# Interface states and addresses, from the kernel.
protocol device {
}

# One route per address prefix on ${p.virtualInterface}: a /32 or /128 per address with
# aggregation /32 and /128. Nothing from any other interface.
protocol direct purelb {
  ipv4;
  ipv6;
  interface "${p.virtualInterface}";
}

# A lost node is noticed within interval x multiplier, and its routes withdrawn.
protocol bfd {
  interface "${p.lanInterface}" {
    min rx interval ${p.bfdIntervalMs} ms;
    min tx interval ${p.bfdIntervalMs} ms;
    multiplier ${p.bfdMultiplier};
  };
}

${session('uplink4', 'ipv4', p.nodeV4, p.routerV4)}
${session('uplink6', 'ipv6', p.nodeV6, p.routerV6)}`;
}

/** The lab's upstream router: FRR with one BGP session per node and family. */
export interface FrrRouterParams {
  readonly routerV4: string;
  readonly routerV6: string;
  readonly routerAs: number;
  readonly nodesAs: number;
  readonly nodes: readonly { readonly v4: string; readonly v6: string }[];
  readonly bfdIntervalMs: number;
  readonly bfdMultiplier: number;
  /** Equal-cost paths per prefix (ECMP). */
  readonly maximumPaths: number;
}

/** The router of docs/routing.md: two nodes, 192.0.2.11 and 192.0.2.12. */
export const DOC_ROUTER_PARAMS: FrrRouterParams = {
  routerV4: '192.0.2.2',
  routerV6: '2001:db8::2',
  routerAs: 64512,
  nodesAs: 64513,
  nodes: [
    { v4: '192.0.2.11', v6: '2001:db8::11' },
    { v4: '192.0.2.12', v6: '2001:db8::12' },
  ],
  bfdIntervalMs: 200,
  bfdMultiplier: 3,
  maximumPaths: 8,
};

/**
 * The three FRR daemons' configuration files: zebra, bfdd, bgpd (bfdd's then bgpd's text
 * is also a valid integrated frr.conf).
 */
export function frrRouterConfig(p: FrrRouterParams): { zebra: string; bfdd: string; bgpd: string } {
  checkV4('routerV4', p.routerV4);
  checkV6('routerV6', p.routerV6);
  checkAs('routerAs', p.routerAs);
  checkAs('nodesAs', p.nodesAs);
  checkBfd(p);
  if (!Number.isInteger(p.maximumPaths) || p.maximumPaths < 1 || p.maximumPaths > 64) throw new RoutingConfigError('maximumPaths', `${p.maximumPaths} is not in 1-64`);
  p.nodes.forEach((n, i) => {
    checkV4(`nodes[${i}].v4`, n.v4);
    checkV6(`nodes[${i}].v6`, n.v6);
  });
  const zebra = 'hostname router\n!\n';
  const bfdd = `bfd
 profile nodes
  transmit-interval ${p.bfdIntervalMs}
  receive-interval ${p.bfdIntervalMs}
  detect-multiplier ${p.bfdMultiplier}
 exit
exit
!
`;
  const neighbours = p.nodes.flatMap((n) => [` neighbor ${n.v4} peer-group NODES4`, ` neighbor ${n.v6} peer-group NODES6`]);
  const group = (g: string): string[] => [
    ` neighbor ${g} peer-group`,
    ` neighbor ${g} remote-as ${p.nodesAs}`,
    ` neighbor ${g} bfd`,
    ` neighbor ${g} bfd profile nodes`,
    ` neighbor ${g} timers connect 2`,
  ];
  const bgpd = [
    `router bgp ${p.routerAs}`,
    ` bgp router-id ${p.routerV4}`,
    ' no bgp ebgp-requires-policy',
    ' no bgp default ipv4-unicast',
    ...group('NODES4'),
    ...group('NODES6'),
    ...neighbours,
    ' !',
    ' address-family ipv4 unicast',
    '  neighbor NODES4 activate',
    `  maximum-paths ${p.maximumPaths}`,
    ' exit-address-family',
    ' !',
    ' address-family ipv6 unicast',
    '  neighbor NODES6 activate',
    `  maximum-paths ${p.maximumPaths}`,
    ' exit-address-family',
    'exit',
    '!',
    '',
  ].join('\n');
  return { zebra, bfdd, bgpd };
}
