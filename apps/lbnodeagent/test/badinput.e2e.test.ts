// The node agent's half of the bad-input suite (the allocator's is
// apps/allocator/test/badinput.e2e.test.ts): against the real API server, with three
// agents in node namespaces and the allocator running. The table below is the record of
// what the agent refuses or ignores and how the user learns of it: LBNodeAgent edits the
// API server admits but the agent must refuse at run time (written directly, and as raw
// objects admitted under a schema without the rules), Services whose status someone
// other than the allocator wrote (the node's own address, the LAN gateway, a subnet's
// reserved addresses, addresses in no pool, another class's Services), announcing
// annotations nobody should have written, aggregation edits, and gossip Secret edits.
//
// After every row: every agent and the allocator still run (restart rows restart the
// agents under the input: they must start, keep running and say what is wrong in one
// line, without a stack trace); every healthy Service keeps its address, its local
// addresses answer HTTP from the client namespace and exactly one MAC answers ARP for
// each (a sampler runs through the whole suite: never two MACs); its virtual addresses
// are on every node's virtual interface; no address or route of any node namespace (nor
// the gateway's address) differs from the snapshot taken before PureLB started; every
// agent is back to purelb_lbnodeagent_config_valid 1 and purelb_gossip_secret_valid 1
// and gossips with every other. Totals go to bench-results/badinput.json (the
// lbnodeagent part).
//
// The gossip Secret's other cases (a 6-byte key and a deleted Secret while running, and
// every unusable Secret at start: exit 1, one line) are in gossip-secret.e2e.test.ts.
//
// AGENTBAD_ROWS=<regular expression> runs only the rows whose name matches (and writes
// no totals).
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { type ArpWatchSet, type DaemonProcess, type LabNode, LAN, MEMBERLIST_SECRET, PURELB_NAMESPACE, ip, run, startAgent, startAllocator, waitFor, withLab } from '@purelb/lab';
import { recordBadInputPart } from '../../../bench/lib.ts';
import { startCluster, url, waitForSettled } from './e2e-helpers.ts';

t.setTimeout(150 * 60_000);

const NS = 'agentbad';
const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');
const AGENT = 'purelb-lbnodeagent';
const ALLOCATOR = 'purelb-allocator';
const ONLY = process.env.AGENTBAD_ROWS ? new RegExp(process.env.AGENTBAD_ROWS) : undefined;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** The longest run of unanswered ARP samples taken for the sampler's, not the address's (see `arp`). */
const UNANSWERED_MS = 600;

// --- the table's types --------------------------------------------------------------

type Category = 'lbnodeagent' | 'lbnodeagent-raw' | 'forged-status' | 'announcing' | 'aggregation' | 'gossip-secret';

/** Which agents: every one, at least one, or exactly these nodes. */
type Nodes = 'all' | 'any' | readonly string[];

interface SvcOptions {
  readonly families?: readonly ('IPv4' | 'IPv6')[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly ports?: readonly number[];
  readonly loadBalancerClass?: string;
}

/** One thing put into the cluster. */
type Input =
  /** The spec.local of LBNodeAgent "default" (replaced whole); `raw`: stored under a schema without rules. */
  | { readonly kind: 'LBNodeAgent'; readonly local: unknown; readonly raw?: boolean }
  | { readonly kind: 'ServiceGroup'; readonly name: string; readonly spec: unknown; readonly raw?: boolean }
  /**
   * A Service with an EndpointSlice per family (every node ready). `forged`: its status
   * and annotations as written by someone other than the allocator (the row runs with the
   * allocator stopped). `held`: wait until its addresses are held by one node (local) or
   * all (virtual).
   */
  | { readonly kind: 'Service'; readonly name: string; readonly svc?: SvcOptions; readonly forged?: { readonly ingress: readonly string[]; readonly annotations: Readonly<Record<string, string>> }; readonly held?: 'one' | 'all' }
  | { readonly kind: 'annotate'; readonly service: string; readonly annotations: Readonly<Record<string, string | null>> }
  /** The gossip Secret's data, replaced whole. */
  | { readonly kind: 'Secret'; readonly data: Readonly<Record<string, string>> };

interface ObjectRef {
  readonly kind: 'Service' | 'LBNodeAgent' | 'Secret' | 'ServiceGroup';
  readonly name: string;
}

/** What the user sees. */
type Expect =
  | { readonly at: 'admission'; readonly field: string; readonly message: RegExp }
  /** An Event from the agents (or the allocator) on the object, written during this phase, by exactly these nodes. */
  | { readonly at: 'event'; readonly on: ObjectRef; readonly reason: string; readonly message: RegExp; readonly from: Nodes; readonly by?: 'allocator'; readonly type?: 'Normal' }
  /** Exactly one log line saying it (since the phase began) on each of these agents. */
  | { readonly at: 'log'; readonly message: RegExp; readonly from: Nodes }
  | { readonly at: 'metric'; readonly name: string; readonly value: string; readonly from: Nodes }
  /** Who has the address on a link; `forever`: with no lifetime (a node's own address, never renewed by the agent). */
  | { readonly at: 'holders'; readonly address: string; readonly holders: 'none' | 'one' | 'all' | readonly string[]; readonly link?: string; readonly prefixLength?: number; readonly forever?: boolean; readonly notOn?: string }
  /** The node that held it before the last input still holds it, alone. */
  | { readonly at: 'holder-unchanged'; readonly address: string }
  | { readonly at: 'answers'; readonly address: string }
  /**
   * Who answers ARP / neighbour solicitations for it. `throughout`: every answered sample
   * since the last input is answered so, and no run of unanswered samples is longer than
   * UNANSWERED_MS (a loaded machine loses the odd answer; a withdrawal lasts seconds).
   */
  | { readonly at: 'arp'; readonly address: string; readonly macs: 'one' | 'none' | 'gateway' | `node-${number}`; readonly throughout?: boolean }
  | { readonly at: 'annotation'; readonly service: string; readonly name: string; readonly value: string | null }
  /** The Service's announcing annotation of the family is "<node>,<link>" of the one node holding its address. */
  | { readonly at: 'announced'; readonly service: string; readonly family: 'IPv4' | 'IPv6' }
  /** Another class's Service: status and annotations exactly as written, no Event from any agent. */
  | { readonly at: 'untouched'; readonly service: string; readonly ingress: readonly string[]; readonly annotations: Readonly<Record<string, string>> };

interface AgentBadInput {
  readonly name: string;
  readonly category: Category;
  readonly inputs: readonly Input[];
  readonly expect: readonly Expect[];
  /** Restart every agent (one after the other) with the input in place, then check `then`. */
  readonly restart?: boolean;
  readonly then?: readonly Expect[];
  /** Forged statuses: the allocator would rewrite them, so it is stopped for the row (as when it is down or another writer wrote them). */
  readonly allocator?: 'stopped';
}

// --- the table ---------------------------------------------------------------------

const NODE1_V4 = '192.0.2.11';
const NODE1_V6 = '2001:db8::11';
const NODE1_ETH1 = '198.51.100.11';
const HEALTHY_V4 = '192.0.2.200';
const LBNA: ObjectRef = { kind: 'LBNodeAgent', name: 'default' };
const SECRET: ObjectRef = { kind: 'Secret', name: MEMBERLIST_SECRET };
const svcRef = (name: string): ObjectRef => ({ kind: 'Service', name });
/** A regular expression matching the text literally. */
const lit = (s: string): RegExp => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
const BASE_AGENT = { extlbint: 'kube-lb0', localint: 'default', sendgarp: true } as const;
const agentCfg = (local: Record<string, unknown>, raw = false): Input => ({ kind: 'LBNodeAgent', local: { ...BASE_AGENT, ...local }, raw });
const rawAgentCfg = (local: unknown): Input => ({ kind: 'LBNodeAgent', local, raw: true });

/** A refused LBNodeAgent: an Event on it, one log line and the metric at 0, from these agents. */
const refused = (problem: string, from: Nodes = 'all'): Expect[] => [
  { at: 'event', on: LBNA, reason: 'InvalidLBNodeAgent', message: lit(problem), from },
  { at: 'log', message: lit(problem), from },
  { at: 'metric', name: 'purelb_lbnodeagent_config_valid', value: '0', from },
];
const noLocalint = (re: string): string => `spec.local.localint: "${re}" matches no interface of this node that can hold local addresses`;
const notRegexp = (re: string): string => `spec.local.localint: "${re}" is not a regular expression`;

const MARKS = { 'purelb.io/allocated-by': 'PureLB', 'purelb.io/allocated-from': 'default' } as const;
/** A Service whose status and marks someone other than the allocator wrote. */
const forged = (name: string, ingress: readonly string[], annotations: Record<string, string> = {}, svc: SvcOptions = {}): Input => ({
  kind: 'Service',
  name,
  svc: { families: [...new Set(ingress.map((a): 'IPv4' | 'IPv6' => (a.includes(':') ? 'IPv6' : 'IPv4')))], ...svc },
  forged: { ingress, annotations: { ...MARKS, ...annotations } },
});
/** A Service the allocator gives the address asked for, held before the row goes on. */
const pinned = (name: string, addresses: string, held: 'one' | 'all', annotations: Record<string, string> = {}): Input => ({
  kind: 'Service',
  name,
  svc: { families: addresses.split(',').map((a) => (a.includes(':') ? 'IPv6' : 'IPv4')), annotations: { 'purelb.io/addresses': addresses, ...annotations } },
  held,
});
const agentWarned = (service: string, reason: string, message: string | RegExp, from: Nodes = 'all'): Expect => ({ at: 'event', on: svcRef(service), reason, message: typeof message === 'string' ? lit(message) : message, from });
const nowhere = (address: string): Expect => ({ at: 'holders', address, holders: 'none' });

const LBNODEAGENT: AgentBadInput[] = [
  {
    name: 'extlbint eth0: the LAN interface, the default route\'s',
    category: 'lbnodeagent',
    inputs: [agentCfg({ extlbint: 'eth0' })],
    expect: refused('spec.local.extlbint: eth0 is the interface of this node\'s IPv4 default route, not a link of its own'),
  },
  {
    name: 'extlbint eth0, agents restarted under it: they start on kube-lb0',
    category: 'lbnodeagent',
    inputs: [agentCfg({ extlbint: 'eth0' })],
    expect: refused('spec.local.extlbint: eth0 is the interface of this node\'s IPv4 default route'),
    restart: true,
    then: refused('spec.local.extlbint: eth0 is the interface of this node\'s IPv4 default route, not a link of its own'),
  },
  {
    name: 'extlbint eth1: an existing link of another kind (on node-1 it holds a node address)',
    category: 'lbnodeagent',
    inputs: [agentCfg({ extlbint: 'eth1' })],
    expect: refused('spec.local.extlbint: eth1 is an existing veth link of this node; the virtual interface must be a link of its own'),
  },
  {
    name: 'extlbint eth1, agents restarted under it',
    category: 'lbnodeagent',
    inputs: [agentCfg({ extlbint: 'eth1' })],
    expect: refused('spec.local.extlbint: eth1 is an existing veth link of this node'),
    restart: true,
    then: refused('spec.local.extlbint: eth1 is an existing veth link of this node'),
  },
  {
    name: 'extlbint eth1p: the other end of that veth pair',
    category: 'lbnodeagent',
    inputs: [agentCfg({ extlbint: 'eth1p' })],
    expect: refused('spec.local.extlbint: eth1p is an existing veth link of this node'),
  },
  ...(['(?P<x>eth0)', '(?i)eth0', '(?s)eth.', '(?m)^eth0$', '(?U)eth0+'] as const).map(
    (re): AgentBadInput => ({
      name: `localint ${re}: RE2 syntax JavaScript does not compile`,
      category: 'lbnodeagent',
      inputs: [agentCfg({ localint: re })],
      expect: refused(notRegexp(re)),
    }),
  ),
  {
    name: 'localint (?P<x>eth0), agents restarted under it',
    category: 'lbnodeagent',
    inputs: [agentCfg({ localint: '(?P<x>eth0)' })],
    expect: refused(notRegexp('(?P<x>eth0)')),
    restart: true,
    then: refused(notRegexp('(?P<x>eth0)')),
  },
  ...(['\\Aeth0', 'eth0\\z', '[[:alpha:]]+0', '\\Qeth0\\E'] as const).map(
    (re): AgentBadInput => ({
      name: `localint ${re}: RE2 syntax JavaScript reads as something else, matching no interface`,
      category: 'lbnodeagent',
      inputs: [agentCfg({ localint: re })],
      expect: refused(noLocalint(re)),
    }),
  ),
  {
    name: 'localint matching no interface',
    category: 'lbnodeagent',
    inputs: [agentCfg({ localint: '^nomatch$' })],
    expect: refused(noLocalint('^nomatch$')),
  },
  {
    name: 'localint matching only lo',
    category: 'lbnodeagent',
    inputs: [agentCfg({ localint: '^lo$' })],
    expect: refused(noLocalint('^lo$')),
  },
  {
    name: 'localint matching only the virtual interface',
    category: 'lbnodeagent',
    inputs: [agentCfg({ localint: '^kube-lb0$' })],
    expect: refused(noLocalint('^kube-lb0$')),
  },
  {
    name: 'localint matching only a link with no address',
    category: 'lbnodeagent',
    inputs: [agentCfg({ localint: '^eth1p$' })],
    expect: refused(noLocalint('^eth1p$')),
  },
  {
    name: 'localint matching a second LAN only node-1 has: node-1 takes it, its eth0 addresses are not announced there; the others refuse it',
    category: 'lbnodeagent',
    inputs: [agentCfg({ localint: '^eth1$' })],
    expect: [
      ...refused(noLocalint('^eth1$'), ['node-2', 'node-3']),
      { at: 'metric', name: 'purelb_lbnodeagent_config_valid', value: '1', from: ['node-1'] },
      agentWarned('healthy-v4', 'LocalInterfaceNotFound', `${HEALTHY_V4} is in 192.0.2.0/24 of eth0 on node node-1, but localint "^eth1$" matches no interface there`, ['node-1']),
      { at: 'holders', address: HEALTHY_V4, holders: 'one', link: 'eth0', notOn: 'node-1' },
    ],
  },
  {
    name: 'localint matching no interface, agents restarted under it: they start on "default"',
    category: 'lbnodeagent',
    inputs: [agentCfg({ localint: '^nomatch$' })],
    expect: refused(noLocalint('^nomatch$')),
    restart: true,
    then: refused(noLocalint('^nomatch$')),
  },
  {
    name: 'localint \\C: RE2 documents it, the API server\'s parser refuses it',
    category: 'lbnodeagent',
    inputs: [agentCfg({ localint: '\\C' })],
    expect: [{ at: 'admission', field: 'spec.local.localint', message: /error parsing regexp: invalid escape sequence: `\\C`/ }],
  },
];

const LBNODEAGENT_RAW: AgentBadInput[] = [
  {
    name: 'localint \\C stored raw: JavaScript reads "C", matching no interface',
    category: 'lbnodeagent-raw',
    inputs: [agentCfg({ localint: '\\C' }, true)],
    expect: refused(noLocalint('\\C')),
  },
  {
    name: 'extlbint lo stored raw',
    category: 'lbnodeagent-raw',
    inputs: [agentCfg({ extlbint: 'lo' }, true)],
    expect: refused('spec.local.extlbint: "lo" is reserved (the loopback link)'),
  },
  {
    name: 'extlbint lo stored raw, agents restarted under it',
    category: 'lbnodeagent-raw',
    inputs: [agentCfg({ extlbint: 'lo' }, true)],
    expect: refused('spec.local.extlbint: "lo" is reserved (the loopback link)'),
    restart: true,
    then: refused('spec.local.extlbint: "lo" is reserved (the loopback link)'),
  },
  {
    name: 'extlbint eth0:1 (an alias label) stored raw',
    category: 'lbnodeagent-raw',
    inputs: [agentCfg({ extlbint: 'eth0:1' }, true)],
    expect: refused('spec.local.extlbint: "eth0:1" holds a "/", ":" or whitespace'),
  },
  {
    name: 'extlbint of 16 bytes stored raw',
    category: 'lbnodeagent-raw',
    inputs: [agentCfg({ extlbint: 'kube-lb-0123456x' }, true)],
    expect: refused('spec.local.extlbint: "kube-lb-0123456x" is 16 bytes; Linux link names are at most 15'),
  },
  {
    name: 'extlbint empty stored raw',
    category: 'lbnodeagent-raw',
    inputs: [agentCfg({ extlbint: '' }, true)],
    expect: refused('spec.local.extlbint: must be a link name such as kube-lb0'),
  },
  {
    name: 'extlbint a number stored raw',
    category: 'lbnodeagent-raw',
    inputs: [agentCfg({ extlbint: 7 }, true)],
    expect: refused('spec.local.extlbint: must be a link name such as kube-lb0'),
  },
  {
    name: 'localint empty stored raw',
    category: 'lbnodeagent-raw',
    inputs: [agentCfg({ localint: '' }, true)],
    expect: refused('spec.local.localint: must be "default" or a regular expression'),
  },
  {
    name: 'localint ^eth(0 stored raw',
    category: 'lbnodeagent-raw',
    inputs: [agentCfg({ localint: '^eth(0' }, true)],
    expect: refused(notRegexp('^eth(0')),
  },
  {
    name: 'localint with a lookahead stored raw: JavaScript compiles it and it matches eth0, so it is used',
    category: 'lbnodeagent-raw',
    inputs: [agentCfg({ localint: '^(?=eth)eth0$' }, true)],
    expect: [
      { at: 'metric', name: 'purelb_lbnodeagent_config_valid', value: '1', from: 'all' },
      { at: 'log', message: /LBNodeAgent changed/, from: 'all' },
    ],
  },
  {
    name: 'sendgarp "yes" stored raw',
    category: 'lbnodeagent-raw',
    inputs: [agentCfg({ sendgarp: 'yes' }, true)],
    expect: refused('spec.local.sendgarp: must be true or false'),
  },
  {
    name: 'spec.local a string stored raw',
    category: 'lbnodeagent-raw',
    inputs: [rawAgentCfg('eth0')],
    expect: refused('spec.local: must be an object'),
  },
];

const FORGED: AgentBadInput[] = [
  {
    name: 'node-1\'s own IPv4 address',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-own4', [NODE1_V4])],
    expect: [
      agentWarned('f-own4', 'AddressInUseByNode', `${NODE1_V4} is an address of node node-1 on eth0, not one PureLB added; it is not announced`, ['node-1']),
      { at: 'holders', address: NODE1_V4, holders: ['node-1'], link: 'eth0', prefixLength: 24, forever: true },
      { at: 'arp', address: NODE1_V4, macs: 'node-1', throughout: true },
    ],
  },
  {
    name: 'node-1\'s own IPv6 address',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-own6', [NODE1_V6])],
    expect: [
      agentWarned('f-own6', 'AddressInUseByNode', `${NODE1_V6} is an address of node node-1 on eth0`, ['node-1']),
      { at: 'holders', address: NODE1_V6, holders: ['node-1'], link: 'eth0', prefixLength: 64, forever: true },
      { at: 'arp', address: NODE1_V6, macs: 'node-1', throughout: true },
    ],
  },
  {
    name: 'node-1\'s own address, announced by node-1',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-own-ann', [NODE1_V4], { 'purelb.io/announcing-IPv4': 'node-1,eth0' })],
    expect: [
      agentWarned('f-own-ann', 'AddressInUseByNode', `${NODE1_V4} is an address of node node-1 on eth0`, ['node-1']),
      { at: 'annotation', service: 'f-own-ann', name: 'purelb.io/announcing-IPv4', value: null },
      { at: 'holders', address: NODE1_V4, holders: ['node-1'], link: 'eth0', prefixLength: 24, forever: true },
      { at: 'arp', address: NODE1_V4, macs: 'node-1', throughout: true },
    ],
  },
  {
    name: 'node-1\'s own address, agents restarted under it',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-own-restart', [NODE1_V4])],
    expect: [agentWarned('f-own-restart', 'AddressInUseByNode', `${NODE1_V4} is an address of node node-1 on eth0`, ['node-1'])],
    restart: true,
    then: [
      agentWarned('f-own-restart', 'AddressInUseByNode', `${NODE1_V4} is an address of node node-1 on eth0`, ['node-1']),
      { at: 'holders', address: NODE1_V4, holders: ['node-1'], link: 'eth0', prefixLength: 24, forever: true },
      { at: 'arp', address: NODE1_V4, macs: 'node-1', throughout: true },
    ],
  },
  {
    name: 'a dual-stack Service: one good address and node-1\'s own IPv6',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-own-dual', ['192.0.2.232', NODE1_V6])],
    expect: [
      agentWarned('f-own-dual', 'AddressInUseByNode', `${NODE1_V6} is an address of node node-1 on eth0`, ['node-1']),
      { at: 'holders', address: NODE1_V6, holders: ['node-1'], forever: true },
      { at: 'holders', address: '192.0.2.232', holders: 'one', link: 'eth0', prefixLength: 24 },
      { at: 'answers', address: '192.0.2.232' },
      { at: 'arp', address: '192.0.2.232', macs: 'one' },
      { at: 'announced', service: 'f-own-dual', family: 'IPv4' },
    ],
  },
  {
    name: 'the LAN gateway\'s IPv4 address',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-gw4', [LAN.gatewayV4])],
    expect: [
      agentWarned('f-gw4', 'AddressConflict', /192\.0\.2\.1: another host \([0-9a-f:]{17}\) answers for it on eth0; node node-\d does not add it while one does/, 'any'),
      { at: 'log', message: /another host answers for the address/, from: 'any' },
      nowhere(LAN.gatewayV4),
      { at: 'arp', address: LAN.gatewayV4, macs: 'gateway', throughout: true },
    ],
  },
  {
    name: 'the LAN gateway\'s IPv6 address',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-gw6', [LAN.gatewayV6])],
    expect: [
      agentWarned('f-gw6', 'AddressConflict', /2001:db8::1: another host \([0-9a-f:]{17}\) answers for it on eth0; node node-\d does not add it/, 'any'),
      nowhere(LAN.gatewayV6),
      { at: 'arp', address: LAN.gatewayV6, macs: 'gateway', throughout: true },
    ],
  },
  {
    name: 'the LAN gateway\'s address, agents restarted under it',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-gw-restart', [LAN.gatewayV4])],
    expect: [agentWarned('f-gw-restart', 'AddressConflict', /192\.0\.2\.1: another host/, 'any')],
    restart: true,
    then: [
      agentWarned('f-gw-restart', 'AddressConflict', /192\.0\.2\.1: another host \([0-9a-f:]{17}\) answers for it on eth0/, 'any'),
      { at: 'log', message: /another host answers for the address/, from: 'any' },
      nowhere(LAN.gatewayV4),
      { at: 'arp', address: LAN.gatewayV4, macs: 'gateway', throughout: true },
    ],
  },
  {
    name: 'the LAN\'s IPv4 network address',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-net4', ['192.0.2.0'])],
    expect: [agentWarned('f-net4', 'ReservedAddress', /192\.0\.2\.0 is the network address of subnet 192\.0\.2\.0\/24 on eth0 of node node-\d; not announced/), nowhere('192.0.2.0')],
  },
  {
    name: 'the LAN\'s IPv4 broadcast address',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-bcast4', ['192.0.2.255'])],
    expect: [agentWarned('f-bcast4', 'ReservedAddress', /192\.0\.2\.255 is the broadcast address of subnet 192\.0\.2\.0\/24 on eth0 of node node-\d; not announced/), nowhere('192.0.2.255')],
  },
  {
    name: 'the LAN\'s IPv6 subnet-router anycast address',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-anycast6', ['2001:db8::'])],
    expect: [agentWarned('f-anycast6', 'ReservedAddress', /2001:db8:: is the subnet-router anycast address of subnet 2001:db8::\/64 on eth0 of node node-\d; not announced/), nowhere('2001:db8::')],
  },
  {
    name: 'an address in no pool, on the LAN: announced like any (a Service keeps an address its pool lost)',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-nopool-lan', ['192.0.2.150'])],
    expect: [
      { at: 'event', on: svcRef('f-nopool-lan'), reason: 'AnnouncingLocal', message: /node-\d announces 192\.0\.2\.150 on eth0/, from: 'any', type: 'Normal' },
      { at: 'holders', address: '192.0.2.150', holders: 'one', link: 'eth0', prefixLength: 24 },
      { at: 'answers', address: '192.0.2.150' },
      { at: 'arp', address: '192.0.2.150', macs: 'one' },
      { at: 'announced', service: 'f-nopool-lan', family: 'IPv4' },
    ],
  },
  {
    name: 'an address in no pool, off the LAN: virtual, with no aggregation known (/32)',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-nopool-virt', ['203.0.113.77'])],
    expect: [
      { at: 'event', on: svcRef('f-nopool-virt'), reason: 'AnnouncingNonLocal', message: /node-\d announces 203\.0\.113\.77 on kube-lb0/, from: 'all', type: 'Normal' },
      { at: 'holders', address: '203.0.113.77', holders: 'all', link: 'kube-lb0', prefixLength: 32 },
    ],
  },
  {
    name: 'an IPv4-mapped IPv6 address (the API server stores it)',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-mapped', ['::ffff:192.0.2.233'])],
    expect: [agentWarned('f-mapped', 'InvalidAddress', 'status.loadBalancer.ingress[0].ip "::ffff:192.0.2.233" is an IPv4-mapped IPv6 address, which nothing answers for on the wire; not announced'), nowhere('::ffff:192.0.2.233'), nowhere('192.0.2.233')],
  },
  {
    name: 'an IPv4 address with a leading zero (the API server stores it)',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-octal', ['192.0.2.010'])],
    expect: [agentWarned('f-octal', 'InvalidAddress', 'status.loadBalancer.ingress[0].ip "192.0.2.010" is not an IPv4 or IPv6 address the agent reads'), nowhere('192.0.2.10'), nowhere('192.0.2.8')],
  },
  {
    name: 'an IPv6 address in capitals: announced as the same address, without flapping',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-upper6', ['2001:DB8::234'])],
    expect: [
      { at: 'holders', address: '2001:db8::234', holders: 'one', link: 'eth0', prefixLength: 64 },
      { at: 'answers', address: '2001:db8::234' },
      { at: 'arp', address: '2001:db8::234', macs: 'one' },
      { at: 'event', on: svcRef('f-upper6'), reason: 'AnnouncingLocal', message: /node-\d announces 2001:db8::234 on eth0/, from: 'any', type: 'Normal' },
    ],
    then: [{ at: 'arp', address: '2001:db8::234', macs: 'one', throughout: true }],
  },
  {
    name: 'an IPv6 address written in full: announced as the same address, without flapping',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-long6', ['2001:0db8:0000:0000:0000:0000:0000:0235'])],
    expect: [
      { at: 'holders', address: '2001:db8::235', holders: 'one', link: 'eth0', prefixLength: 64 },
      { at: 'answers', address: '2001:db8::235' },
      { at: 'arp', address: '2001:db8::235', macs: 'one' },
    ],
    then: [{ at: 'arp', address: '2001:db8::235', macs: 'one', throughout: true }],
  },
  {
    name: 'an ingress that is not an IP address',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-notip', ['192.0.2.x'])],
    expect: [{ at: 'admission', field: 'status.loadBalancer.ingress[0].ip', message: /must be a valid IP address/ }],
  },
  {
    name: 'another class with our marks, announcing node-1, a LAN address: left alone',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-class', ['192.0.2.236'], { 'purelb.io/announcing-IPv4': 'node-1,eth0' }, { loadBalancerClass: 'example.com/other' })],
    expect: [{ at: 'untouched', service: 'f-class', ingress: ['192.0.2.236'], annotations: { ...MARKS, 'purelb.io/announcing-IPv4': 'node-1,eth0' } }, nowhere('192.0.2.236')],
  },
  {
    name: 'another class with our marks, announcing node-1, agents restarted under it: left alone',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-class-restart', ['192.0.2.236'], { 'purelb.io/announcing-IPv4': 'node-1,eth0' }, { loadBalancerClass: 'example.com/other' })],
    expect: [nowhere('192.0.2.236')],
    restart: true,
    then: [{ at: 'untouched', service: 'f-class-restart', ingress: ['192.0.2.236'], annotations: { ...MARKS, 'purelb.io/announcing-IPv4': 'node-1,eth0' } }, nowhere('192.0.2.236')],
  },
  {
    name: 'another class with our marks and an address off the LAN: left alone',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-class-virt', ['203.0.113.9'], {}, { loadBalancerClass: 'example.com/other' })],
    expect: [{ at: 'untouched', service: 'f-class-virt', ingress: ['203.0.113.9'], annotations: MARKS }, nowhere('203.0.113.9')],
  },
  {
    name: 'another class with our marks naming a healthy Service\'s address and another announcer: the healthy Service is not moved',
    category: 'forged-status',
    allocator: 'stopped',
    inputs: [forged('f-class-healthy', [HEALTHY_V4], { 'purelb.io/announcing-IPv4': 'node-3,eth0' }, { loadBalancerClass: 'example.com/other' })],
    expect: [
      { at: 'untouched', service: 'f-class-healthy', ingress: [HEALTHY_V4], annotations: { ...MARKS, 'purelb.io/announcing-IPv4': 'node-3,eth0' } },
      { at: 'holder-unchanged', address: HEALTHY_V4 },
      { at: 'arp', address: HEALTHY_V4, macs: 'one', throughout: true },
    ],
  },
];

const ANNOUNCING: AgentBadInput[] = [
  ...([
    ['garbage', '!!garbage'],
    ['only commas', ',,,'],
    ['a node name in capitals (no node can have it)', 'NODE-1,eth0'],
    ['empty', ''],
  ] as const).map(
    ([what, value], i): AgentBadInput => ({
      name: `announcing-IPv4 ${what} on a held address: the holder keeps it and writes its own`,
      category: 'announcing',
      inputs: [pinned(`a-junk-${i}`, `192.0.2.${215 + i}`, 'one'), { kind: 'annotate', service: `a-junk-${i}`, annotations: { 'purelb.io/announcing-IPv4': value } }],
      expect: [
        agentWarned(`a-junk-${i}`, 'InvalidAnnotation', `purelb.io/announcing-IPv4 "${value}" does not name a node; it is written by the node agents: replaced by`, 'any'),
        { at: 'holder-unchanged', address: `192.0.2.${215 + i}` },
        { at: 'announced', service: `a-junk-${i}`, family: 'IPv4' },
        { at: 'arp', address: `192.0.2.${215 + i}`, macs: 'one', throughout: true },
      ],
    }),
  ),
  {
    name: 'announcing-IPv6 garbage on a held address',
    category: 'announcing',
    inputs: [pinned('a-junk6', '2001:db8::215', 'one'), { kind: 'annotate', service: 'a-junk6', annotations: { 'purelb.io/announcing-IPv6': '@@@' } }],
    expect: [
      agentWarned('a-junk6', 'InvalidAnnotation', 'purelb.io/announcing-IPv6 "@@@" does not name a node', 'any'),
      { at: 'holder-unchanged', address: '2001:db8::215' },
      { at: 'announced', service: 'a-junk6', family: 'IPv6' },
      { at: 'arp', address: '2001:db8::215', macs: 'one', throughout: true },
    ],
  },
  {
    name: 'announcing-IPv4 garbage, agents restarted under it',
    category: 'announcing',
    inputs: [pinned('a-junk-restart', '192.0.2.220', 'one'), { kind: 'annotate', service: 'a-junk-restart', annotations: { 'purelb.io/announcing-IPv4': '!!garbage' } }],
    expect: [{ at: 'announced', service: 'a-junk-restart', family: 'IPv4' }],
    restart: true,
    then: [
      { at: 'holders', address: '192.0.2.220', holders: 'one', link: 'eth0' },
      { at: 'announced', service: 'a-junk-restart', family: 'IPv4' },
      { at: 'arp', address: '192.0.2.220', macs: 'one' },
    ],
  },
  {
    name: 'announcing-IPv4 naming a node that does not exist: fenced as a lost node, then taken over by one node',
    category: 'announcing',
    inputs: [pinned('a-ghost', '192.0.2.221', 'one'), { kind: 'annotate', service: 'a-ghost', annotations: { 'purelb.io/announcing-IPv4': 'node-9,eth0' } }],
    expect: [
      { at: 'holders', address: '192.0.2.221', holders: 'one', link: 'eth0' },
      { at: 'announced', service: 'a-ghost', family: 'IPv4' },
      { at: 'event', on: svcRef('a-ghost'), reason: 'AnnouncingLocal', message: /node-\d announces 192\.0\.2\.221 on eth0/, from: 'any', type: 'Normal' },
      { at: 'arp', address: '192.0.2.221', macs: 'one' },
    ],
  },
  {
    name: 'announcing-IPv4 naming another live node while this one holds the address: handed over, never two answering',
    category: 'announcing',
    inputs: [pinned('a-other', '192.0.2.222', 'one'), { kind: 'annotate', service: 'a-other', annotations: { 'purelb.io/announcing-IPv4': 'OTHER' } }],
    expect: [
      { at: 'holders', address: '192.0.2.222', holders: 'one', link: 'eth0' },
      { at: 'announced', service: 'a-other', family: 'IPv4' },
      { at: 'arp', address: '192.0.2.222', macs: 'one' },
    ],
  },
  {
    name: 'announcing-IPv4 naming node-1 on a virtual address: removed by node-1, the address stays on every node',
    category: 'announcing',
    inputs: [pinned('a-virt', '203.0.113.10', 'all', { 'purelb.io/service-group': 'virtual' }), { kind: 'annotate', service: 'a-virt', annotations: { 'purelb.io/announcing-IPv4': 'node-1,kube-lb0' } }],
    expect: [
      { at: 'annotation', service: 'a-virt', name: 'purelb.io/announcing-IPv4', value: null },
      { at: 'holders', address: '203.0.113.10', holders: 'all', link: 'kube-lb0', prefixLength: 32 },
    ],
  },
];

/** A group with a virtual pool whose Service holds 203.0.113.33 on every node with /24, then an edit. */
const aggGroup = (spec: Record<string, unknown>): Input => ({ kind: 'ServiceGroup', name: 'agg', spec: { local: { v4pools: [{ pool: '203.0.113.32-203.0.113.47', subnet: '203.0.113.0/24', ...spec }] } } });
const aggRows = (['/0', '/33', '32'] as const).map(
  (aggregation): AgentBadInput => ({
    name: `aggregation ${aggregation} stored raw over a valid /24: the last valid aggregation stays`,
    category: 'aggregation',
    inputs: [aggGroup({ aggregation: '/24' }), pinned('g-agg', '203.0.113.33', 'all', { 'purelb.io/service-group': 'agg' }), { ...aggGroup({ aggregation }), raw: true } as Input],
    expect: [
      { at: 'event', on: { kind: 'ServiceGroup', name: 'agg' }, reason: 'InvalidServiceGroup', message: /spec\.local\.v4pools\[0\]\.aggregation: .*; its last valid pools stay in force/, from: 'any', by: 'allocator' },
      { at: 'holders', address: '203.0.113.33', holders: 'all', link: 'kube-lb0', prefixLength: 24 },
    ],
  }),
);

const AGGREGATION: AgentBadInput[] = [
  ...aggRows,
  {
    name: 'an IPv4 subnet /4 stored raw: its aggregation is not used (/32), with a Warning',
    category: 'aggregation',
    inputs: [aggGroup({ aggregation: 'default' }), pinned('g-agg4', '203.0.113.34', 'all', { 'purelb.io/service-group': 'agg' }), { ...aggGroup({ subnet: '203.0.113.0/4', aggregation: 'default' }), raw: true } as Input],
    expect: [
      agentWarned('g-agg4', 'InvalidAggregation', 'aggregation /4 for 203.0.113.34 is shorter than /8; using /32'),
      { at: 'event', on: { kind: 'ServiceGroup', name: 'agg' }, reason: 'InvalidServiceGroup', message: /is shorter than \/8/, from: 'any', by: 'allocator' },
      { at: 'holders', address: '203.0.113.34', holders: 'all', link: 'kube-lb0', prefixLength: 32 },
    ],
  },
  {
    name: 'an IPv4 subnet /4 stored raw, agents restarted under it',
    category: 'aggregation',
    inputs: [aggGroup({ aggregation: 'default' }), pinned('g-agg4r', '203.0.113.35', 'all', { 'purelb.io/service-group': 'agg' }), { ...aggGroup({ subnet: '203.0.113.0/4', aggregation: 'default' }), raw: true } as Input],
    expect: [agentWarned('g-agg4r', 'InvalidAggregation', 'aggregation /4 for 203.0.113.35 is shorter than /8; using /32')],
    restart: true,
    then: [agentWarned('g-agg4r', 'InvalidAggregation', 'aggregation /4 for 203.0.113.35 is shorter than /8; using /32'), { at: 'holders', address: '203.0.113.35', holders: 'all', link: 'kube-lb0', prefixLength: 32 }],
  },
  {
    name: 'an IPv6 subnet /8 stored raw: its aggregation is not used (/128), with a Warning',
    category: 'aggregation',
    inputs: [
      { kind: 'ServiceGroup', name: 'agg6', spec: { local: { v6pools: [{ pool: '2001:db8:1::100/124', subnet: '2001:db8:1::/64', aggregation: 'default' }] } } },
      pinned('g-agg6', '2001:db8:1::101', 'all', { 'purelb.io/service-group': 'agg6' }),
      { kind: 'ServiceGroup', name: 'agg6', spec: { local: { v6pools: [{ pool: '2001:db8:1::100/124', subnet: '2001:db8:1::/8', aggregation: 'default' }] } }, raw: true },
    ],
    expect: [
      agentWarned('g-agg6', 'InvalidAggregation', 'aggregation /8 for 2001:db8:1::101 is shorter than /16; using /128'),
      { at: 'holders', address: '2001:db8:1::101', holders: 'all', link: 'kube-lb0', prefixLength: 128 },
    ],
  },
  {
    name: 'aggregation /0 on a /24 subnet: refused at admission',
    category: 'aggregation',
    inputs: [aggGroup({ aggregation: '/0' })],
    expect: [{ at: 'admission', field: 'spec.local.v4pools[0].aggregation', message: /aggregation \/N must be at least the subnet's prefix length/ }],
  },
];

/** The base64 text of 32 bytes, as the Secret's value (data is base64 of the stored bytes). */
const stored = (s: string | Buffer): string => Buffer.from(s).toString('base64');
/** `problem` follows the Secret's name: ` key "key": …` or `: has no key …`. */
const secretBad = (problem: string): Expect[] => [
  { at: 'event', on: SECRET, reason: 'InvalidGossipSecret', message: lit(`Secret ${PURELB_NAMESPACE}/${MEMBERLIST_SECRET}${problem}`), from: 'all' },
  { at: 'log', message: lit(`Secret ${PURELB_NAMESPACE}/${MEMBERLIST_SECRET}${problem}`), from: 'all' },
  { at: 'metric', name: 'purelb_gossip_secret_valid', value: '0', from: 'all' },
];
const GOOD_KEY = Buffer.alloc(32, 7).toString('base64');

const GOSSIP: AgentBadInput[] = [
  { name: 'gossip Secret key emptied', category: 'gossip-secret', inputs: [{ kind: 'Secret', data: { key: '' } }], expect: secretBad(' key "key": is empty') },
  { name: 'gossip Secret with no data at all', category: 'gossip-secret', inputs: [{ kind: 'Secret', data: {} }], expect: secretBad(': has no key "key"') },
  { name: 'gossip Secret key not base64', category: 'gossip-secret', inputs: [{ kind: 'Secret', data: { key: stored('not base64!') } }], expect: secretBad(' key "key": not base64') },
  {
    name: 'gossip Secret key holding 32 raw bytes instead of their base64 text',
    category: 'gossip-secret',
    inputs: [{ kind: 'Secret', data: { key: stored(Buffer.from(Array.from({ length: 32 }, (_, i) => i))) } }],
    expect: secretBad(' key "key": not base64 (it holds 32 raw bytes: store their base64 text instead'),
  },
  { name: 'gossip Secret key of 31 bytes', category: 'gossip-secret', inputs: [{ kind: 'Secret', data: { key: stored(Buffer.alloc(31, 1).toString('base64')) } }], expect: secretBad(' key "key": decodes to 31 bytes, need 32') },
  {
    name: 'gossip Secret rotation list with a bad entry',
    category: 'gossip-secret',
    inputs: [{ kind: 'Secret', data: { key: stored(GOOD_KEY), keys: stored(`${GOOD_KEY},abc!`) } }],
    expect: secretBad(' key "keys" entry 2: not base64'),
  },
];

const ALL: readonly AgentBadInput[] = [...LBNODEAGENT, ...LBNODEAGENT_RAW, ...FORGED, ...ANNOUNCING, ...AGGREGATION, ...GOSSIP];
const CASES = ONLY ? ALL.filter((r) => ONLY.test(r.name)) : ALL;

// --- the lab ------------------------------------------------------------------------

const lab = await withLab(t, { nodes: 3 });
const cp = lab.controlPlane;
const admin = cp.admin;
const nodeNames = lab.nodes.map((n) => n.name);
const nodeOf = (name: string): LabNode => lab.nodes.find((n) => n.name === name)!;
if (lab.nodes[0]!.v4 !== NODE1_V4 || lab.nodes[0]!.v6 !== NODE1_V6) throw new Error(`node-1 is ${lab.nodes[0]!.v4} ${lab.nodes[0]!.v6}, the table expects ${NODE1_V4} ${NODE1_V6}`);

// A second link on every node (a veth pair inside the node, eth1 <-> eth1p), with a
// second LAN address on node-1 only: links of another kind for extlbint, a LAN only one
// node has for localint.
for (const n of lab.nodes) {
  const lines = ['link add eth1 type veth peer name eth1p', 'link set eth1 up', 'link set eth1p up', ...(n.name === 'node-1' ? [`addr add ${NODE1_ETH1}/24 dev eth1`] : [])];
  await run('ip', ['-n', n.netns, '-batch', '-'], { input: lines.join('\n') + '\n' });
}
// The snapshot is taken once the new links' IPv6 link-local addresses passed duplicate
// address detection (their local routes appear only then).
for (const n of lab.nodes) {
  await waitFor(`${n.name}'s link-local addresses to settle`, async () => {
    const links = JSON.parse(await ip('-n', n.netns, '-j', '-6', 'addr', 'show')) as { ifname: string; addr_info: { local: string; tentative?: boolean }[] }[];
    const ready = ['eth1', 'eth1p'].every((name) => links.find((l) => l.ifname === name)?.addr_info.some((a) => a.local.startsWith('fe80:') && !a.tentative));
    return ready ? true : undefined;
  }, 20_000, 100);
}

// --- node namespaces: what must never change ------------------------------------------

/** The links whose addresses and routes are the node's own (the virtual interface is the agent's). */
const NODE_LINKS = new Set(['lo', 'eth0', 'eth1', 'eth1p']);

interface NodeState {
  /** "link address/prefix" -> true when it has no lifetime. */
  readonly addresses: Map<string, boolean>;
  /** Routes on the node's own links (any table), as JSON without volatile fields. */
  readonly routes: Map<string, { type?: string; dst?: string; table?: string }>;
}

async function nodeState(netns: string): Promise<NodeState> {
  const addresses = new Map<string, boolean>();
  for (const l of JSON.parse(await ip('-n', netns, '-j', 'addr', 'show')) as { ifname: string; addr_info: { local: string; prefixlen: number; valid_life_time?: number }[] }[]) {
    if (!NODE_LINKS.has(l.ifname)) continue;
    for (const a of l.addr_info) addresses.set(`${l.ifname} ${a.local}/${a.prefixlen}`, a.valid_life_time === undefined || a.valid_life_time === 4294967295);
  }
  const routes = new Map<string, { type?: string; dst?: string; table?: string }>();
  for (const family of ['-4', '-6']) {
    for (const r of JSON.parse(await ip('-n', netns, '-j', family, 'route', 'show', 'table', 'all')) as Record<string, unknown>[]) {
      if (typeof r.dev === 'string' && !NODE_LINKS.has(r.dev)) continue;
      const { expires: _e, ...rest } = r;
      routes.set(JSON.stringify(Object.fromEntries(Object.entries(rest).sort(([a], [b]) => (a < b ? -1 : 1)))), r);
    }
  }
  return { addresses, routes };
}

async function gatewayAddresses(): Promise<string> {
  const l = JSON.parse(await ip('-n', lab.network.lanNetns, '-j', 'addr', 'show', 'dev', 'br0')) as { addr_info: { local: string; prefixlen: number }[] }[];
  return l.flatMap((x) => x.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).sort().join(' ');
}

const baseline = new Map<string, NodeState>();
for (const n of lab.nodes) baseline.set(n.name, await nodeState(n.netns));
const baselineGateway = await gatewayAddresses();
const gatewayMac = (JSON.parse(await ip('-n', lab.network.lanNetns, '-j', 'link', 'show', 'br0')) as { address: string }[])[0]!.address;

// --- PureLB, the healthy Services ----------------------------------------------------

const cluster = await startCluster(lab, t);
const agents = cluster.agents;
let allocator: DaemonProcess = cluster.allocator;
let allocatorGeneration = 0;
t.teardown(() => allocator.stop());
const macs = await lab.nodeMacs();

/** Everything each daemon wrote, line by line (a restarted agent starts a new record). */
class Output {
  readonly lines: string[];
  #partial: string;
  constructor(p: DaemonProcess) {
    // What it wrote before it was started (all of it: a daemon writes little until then).
    const before = p.tail(5000).split('\n');
    this.#partial = before.pop() ?? '';
    this.lines = before;
    for (const s of [p.child.stdout, p.child.stderr]) {
      s?.on('data', (c: Buffer) => {
        const parts = (this.#partial + c.toString('utf8')).split('\n');
        this.#partial = parts.pop() ?? '';
        this.lines.push(...parts);
        if (this.lines.length > 100_000) this.lines.splice(0, this.lines.length - 100_000);
      });
    }
  }
}
const outputs = new Map<string, Output>();
for (const [name, p] of agents) outputs.set(name, new Output(p));
let allocatorOutput = new Output(allocator);

const r = await admin.raw('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
if (r.status !== 201 && r.status !== 409) throw new Error(`namespace ${NS}: HTTP ${r.status}`);

async function createService(name: string, o: SvcOptions): Promise<void> {
  const families = o.families ?? ['IPv4'];
  await admin.create(`/api/v1/namespaces/${NS}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS, annotations: o.annotations ?? {} },
    spec: {
      type: 'LoadBalancer',
      selector: { app: name },
      ipFamilies: families,
      ipFamilyPolicy: families.length > 1 ? 'RequireDualStack' : 'SingleStack',
      externalTrafficPolicy: 'Cluster',
      allocateLoadBalancerNodePorts: false,
      ports: (o.ports ?? [80]).map((port) => ({ name: `p${port}`, protocol: 'TCP', port, targetPort: 80 })),
      ...(o.loadBalancerClass ? { loadBalancerClass: o.loadBalancerClass } : {}),
    },
  });
  for (const family of families) {
    await admin.create(`/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`, {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-${family.toLowerCase()}`, namespace: NS, labels: { 'kubernetes.io/service-name': name, 'endpointslice.kubernetes.io/managed-by': 'purelb-lab' } },
      addressType: family,
      ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
      endpoints: lab.nodes.map((n) => ({ addresses: [family === 'IPv4' ? n.v4 : n.v6], nodeName: n.name, conditions: { ready: true, serving: true, terminating: false } })),
    });
  }
}

async function deleteService(name: string): Promise<void> {
  await admin.delete(`/api/v1/namespaces/${NS}/services/${name}`);
  for (const f of ['ipv4', 'ipv6']) await admin.delete(`/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices/${name}-${f}`);
}

interface SvcView {
  metadata: { annotations?: Record<string, string> };
  spec: { loadBalancerClass?: string };
  status?: { loadBalancer?: { ingress?: { ip?: string }[] } };
}
const getService = (name: string): Promise<SvcView> => admin.get<SvcView>(`/api/v1/namespaces/${NS}/services/${name}`);
const ingressOf = (s: SvcView): string[] => (s.status?.loadBalancer?.ingress ?? []).flatMap((i) => (i.ip ? [i.ip] : []));

const HEALTHY: [string, SvcOptions][] = [
  ['healthy-v4', { annotations: { 'purelb.io/addresses': HEALTHY_V4 } }],
  ['healthy-v6', { families: ['IPv6'], annotations: { 'purelb.io/addresses': '2001:db8::200' } }],
  ['healthy-dual', { families: ['IPv4', 'IPv6'], annotations: { 'purelb.io/addresses': '192.0.2.201,2001:db8::201' } }],
  ['healthy-shared-a', { annotations: { 'purelb.io/addresses': '192.0.2.202', 'purelb.io/allow-shared-ip': 'healthy' }, ports: [80] }],
  ['healthy-shared-b', { annotations: { 'purelb.io/addresses': '192.0.2.202', 'purelb.io/allow-shared-ip': 'healthy' }, ports: [8080] }],
  ['healthy-virt', { families: ['IPv4', 'IPv6'], annotations: { 'purelb.io/service-group': 'virtual', 'purelb.io/addresses': '203.0.113.1,2001:db8:1::1' } }],
];
const healthy = new Map<string, string[]>();
for (const [name, o] of HEALTHY) await createService(name, o);
for (const [name, o] of HEALTHY) {
  healthy.set(name, await waitFor(`${name} to get its addresses`, async () => {
    const got = ingressOf(await getService(name));
    return got.length === (o.families?.length ?? 1) ? got : undefined;
  }, 30_000, 50));
}
const HEALTHY_LOCAL = [...new Set([...healthy.values()].flat().filter((a) => a.startsWith('192.0.2.') || a.startsWith('2001:db8::')))];
const HEALTHY_VIRTUAL = [...new Set([...healthy.values()].flat().filter((a) => !HEALTHY_LOCAL.includes(a)))];

interface Held {
  readonly node: string;
  readonly link: string;
  readonly prefixLength: number;
  readonly forever: boolean;
}

/** Every node that has the address on a link, with the link, prefix and whether it has no lifetime. */
async function holders(address: string): Promise<Held[]> {
  const out: Held[] = [];
  for (const n of lab.nodes) {
    for (const l of JSON.parse(await ip('-n', n.netns, '-j', 'addr', 'show')) as { ifname: string; addr_info: { local: string; prefixlen: number; valid_life_time?: number }[] }[]) {
      for (const a of l.addr_info) if (a.local === address) out.push({ node: n.name, link: l.ifname, prefixLength: a.prefixlen, forever: a.valid_life_time === undefined || a.valid_life_time === 4294967295 });
    }
  }
  return out;
}

for (const a of HEALTHY_LOCAL) await waitFor(`${a} to be held by one node`, async () => ((await holders(a)).length === 1 ? true : undefined), 30_000, 100);
for (const a of HEALTHY_VIRTUAL) await waitFor(`${a} to be on every node`, async () => ((await holders(a)).length === 3 ? true : undefined), 30_000, 100);
const healthyArp = lab.watchArpAll(HEALTHY_LOCAL, { intervalMs: 100 });
await healthyArp.ready;
t.teardown(() => healthyArp.stop());

// --- the raw path: objects admitted under a schema without rules -----------------------

const CRDS = { LBNodeAgent: 'lbnodeagents.purelb.io', ServiceGroup: 'servicegroups.purelb.io' } as const;
const crdPath = (name: string): string => `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`;
interface Crd {
  metadata: { resourceVersion?: string | undefined };
  spec: { versions: { schema: { openAPIV3Schema: { properties: Record<string, unknown> } } }[] };
}
const strictCrds = new Map<string, Crd>();
for (const name of Object.values(CRDS)) strictCrds.set(name, await admin.get<Crd>(crdPath(name)));
let relaxed = false;

/** Replaces both CRDs' spec schemas with "any object": what an older schema without the rules admitted. */
async function relaxCrds(): Promise<void> {
  for (const name of Object.values(CRDS)) {
    const crd = await admin.get<Crd>(crdPath(name));
    for (const v of crd.spec.versions) v.schema.openAPIV3Schema.properties.spec = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
    await admin.json('PUT', crdPath(name), crd);
  }
  relaxed = true;
}

/** Puts the CRDs back as installed and waits until they refuse again. */
async function restoreCrds(): Promise<void> {
  for (const name of Object.values(CRDS)) {
    const current = await admin.get<Crd>(crdPath(name));
    const strict = structuredClone(strictCrds.get(name)!);
    strict.metadata.resourceVersion = current.metadata.resourceVersion;
    await admin.json('PUT', crdPath(name), strict);
  }
  await waitFor('the CRDs to refuse again', async () => {
    const a = await admin.raw('POST', `/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/lbnodeagents?dryRun=All`, { apiVersion: 'purelb.io/v1', kind: 'LBNodeAgent', metadata: { name: 'strict-probe' }, spec: { local: { extlbint: 'lo' } } });
    const g = await admin.raw('POST', `/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups?dryRun=All`, { apiVersion: 'purelb.io/v1', kind: 'ServiceGroup', metadata: { name: 'strict-probe' }, spec: { local: { v4pools: [{ pool: '203.0.113.0/28', subnet: '203.0.113.0/4' }] } } });
    return a.status === 422 && g.status === 422 ? true : undefined;
  }, 30_000, 200);
  relaxed = false;
}
t.teardown(async () => {
  if (relaxed) await restoreCrds();
});

// --- putting inputs in, checking outcomes ---------------------------------------------

const secretPath = `/api/v1/namespaces/${PURELB_NAMESPACE}/secrets/${MEMBERLIST_SECRET}`;
const originalSecretData = (await admin.get<{ data: Record<string, string> }>(secretPath)).data;
const lbnaPath = `/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/lbnodeagents/default`;
const groupPath = (name: string): string => `/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups/${name}`;

interface Refusal {
  readonly status: number;
  readonly message: string;
  readonly causes: readonly { field?: string; message?: string }[];
}

const refusalOf = (status: number, body: string): Refusal => {
  const s = JSON.parse(body) as { message?: string; details?: { causes?: { field?: string; message?: string }[] } };
  return { status, message: s.message ?? body, causes: s.details?.causes ?? [] };
};

/** PUTs the spec over the existing object (creating it if missing); retried while a just-relaxed schema still refuses. */
async function replaceSpec(path: string, kind: string, spec: unknown, raw: boolean): Promise<Refusal | undefined> {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const write = async (): Promise<{ status: number; body: string }> => {
    const existing = await admin.raw('GET', path);
    const obj = { apiVersion: 'purelb.io/v1', kind, metadata: { name, namespace: PURELB_NAMESPACE }, spec };
    return existing.status === 200
      ? admin.raw('PUT', path, { ...obj, metadata: { ...obj.metadata, resourceVersion: (JSON.parse(existing.body) as { metadata: { resourceVersion: string } }).metadata.resourceVersion } })
      : admin.raw('POST', path.slice(0, path.lastIndexOf('/')), obj);
  };
  if (!raw) {
    const w = await write();
    return w.status >= 300 ? refusalOf(w.status, w.body) : undefined;
  }
  // The API server takes a moment to serve a changed schema.
  const w = await waitFor(`${kind} ${name} to be stored raw`, async () => {
    const x = await write();
    return x.status < 300 ? x : undefined;
  }, 30_000, 200);
  return w.status >= 300 ? refusalOf(w.status, w.body) : undefined;
}

interface Phase {
  /** Epoch ms when the phase began (its Events and log lines are the ones after it). */
  readonly since: number;
  /** After a restart: when each node's new agent started (its Events count from then). */
  readonly sinceByNode?: ReadonlyMap<string, number>;
  /** Each agent's log line count when the phase began. */
  readonly marks: Map<string, number>;
  /** Epoch ms just before the last input went in. */
  lastInputAt: number;
  refusal: Refusal | undefined;
  /** Who held an address when it was last looked at before the last input. */
  readonly heldBy: Map<string, string>;
  readonly watch: ArpWatchSet | undefined;
}

interface RowState {
  readonly services: Set<string>;
  readonly groups: Set<string>;
  lbnodeagent: boolean;
  secret: boolean;
}

async function put(input: Input, phase: Phase, state: RowState): Promise<void> {
  phase.lastInputAt = Date.now();
  switch (input.kind) {
    case 'LBNodeAgent': {
      if (input.raw && !relaxed) await relaxCrds();
      state.lbnodeagent = true;
      phase.refusal = await replaceSpec(lbnaPath, 'LBNodeAgent', { local: input.local }, input.raw ?? false);
      return;
    }
    case 'ServiceGroup': {
      if (input.raw && !relaxed) await relaxCrds();
      state.groups.add(input.name);
      phase.refusal = await replaceSpec(groupPath(input.name), 'ServiceGroup', input.spec, input.raw ?? false);
      return;
    }
    case 'Service': {
      state.services.add(input.name);
      await createService(input.name, input.svc ?? {});
      if (input.forged) {
        const path = `/api/v1/namespaces/${NS}/services/${input.name}/status`;
        const w = await admin.raw('PATCH', path, { metadata: { annotations: input.forged.annotations }, status: { loadBalancer: { ingress: input.forged.ingress.map((a) => ({ ip: a })) } } }, 'application/merge-patch+json');
        phase.refusal = w.status >= 300 ? refusalOf(w.status, w.body) : undefined;
      }
      if (input.held) {
        const count = input.svc?.families?.length ?? 1;
        const addresses = await waitFor(`${input.name} to get ${count} address(es)`, async () => {
          const got = ingressOf(await getService(input.name));
          return got.length === count ? got : undefined;
        }, 30_000, 50);
        for (const a of addresses) {
          const h = await waitFor(`${a} to be held by ${input.held === 'one' ? 'one node' : 'every node'}`, async () => {
            const list = await holders(a);
            return list.length === (input.held === 'one' ? 1 : 3) ? list : undefined;
          }, 30_000, 50);
          if (input.held === 'one') phase.heldBy.set(a, h[0]!.node);
        }
        // The announcement follows the add; an edit made before it lands would race the holder's own write.
        for (const a of addresses) {
          if (input.held !== 'one') continue;
          const name = a.includes(':') ? 'purelb.io/announcing-IPv6' : 'purelb.io/announcing-IPv4';
          await waitFor(`${input.name} to be announced`, async () => ((await getService(input.name)).metadata.annotations?.[name] ? true : undefined), 30_000, 50);
        }
      }
      return;
    }
    case 'annotate': {
      const annotations: Record<string, string | null> = {};
      for (const [k, v] of Object.entries(input.annotations)) {
        // OTHER: a live node that does not hold the Service's address.
        if (v === 'OTHER') {
          const s = await getService(input.service);
          const a = ingressOf(s).find((x) => (k.endsWith('IPv6') ? x.includes(':') : !x.includes(':')))!;
          const holder = phase.heldBy.get(a) ?? (await holders(a))[0]?.node;
          annotations[k] = `${nodeNames.find((n) => n !== holder)!},eth0`;
        } else annotations[k] = v;
      }
      phase.lastInputAt = Date.now();
      await admin.mergePatch(`/api/v1/namespaces/${NS}/services/${input.service}`, { metadata: { annotations } });
      return;
    }
    case 'Secret': {
      state.secret = true;
      const s = await admin.get<{ metadata: { resourceVersion: string } }>(secretPath);
      await admin.json('PUT', secretPath, { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: MEMBERLIST_SECRET, namespace: PURELB_NAMESPACE, resourceVersion: s.metadata.resourceVersion }, data: input.data });
      return;
    }
  }
}

interface EventView {
  reason: string;
  message: string;
  type: string;
  lastTimestamp?: string;
  eventTime?: string;
  source?: { component?: string; host?: string };
}

async function eventsOn(on: ObjectRef): Promise<EventView[]> {
  const ns = on.kind === 'Service' ? NS : PURELB_NAMESPACE;
  const list = await admin.get<{ items: (EventView & { involvedObject: { kind: string } })[] }>(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name%3D${encodeURIComponent(on.name)}`);
  return list.items.filter((e) => e.involvedObject.kind === on.kind);
}

const resolveNodes = (from: Nodes): readonly string[] => (from === 'all' ? nodeNames : from === 'any' ? [] : from);

/** The text of a log line: every string in its JSON (or the line itself). */
function lineText(line: string): string {
  try {
    const out: string[] = [];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') out.push(v);
      else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
    };
    walk(JSON.parse(line));
    return out.join(' ');
  } catch {
    return line;
  }
}
const linesSince = (node: string, phase: Phase): string[] => outputs.get(node)!.lines.slice(phase.marks.get(node) ?? 0);
const logCount = (node: string, phase: Phase, re: RegExp): number => linesSince(node, phase).filter((l) => re.test(lineText(l))).length;

async function metricsOf(node: string): Promise<string> {
  const n = nodeOf(node);
  const [res] = await lab.probe(n.netns, [`http://127.0.0.1:${agents.get(node)!.metricsPort}/metrics`], 3000);
  return res?.body ?? '';
}
const metricValue = (text: string, name: string): string | undefined => new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1];

function macsWanted(m: string): (got: readonly string[]) => boolean {
  if (m === 'one') return (got) => got.length === 1;
  if (m === 'none') return (got) => got.length === 0;
  const want = m === 'gateway' ? gatewayMac : macs.get(m);
  return (got) => got.length === 1 && got[0] === want;
}

/** Checks one expectation; returns what is wrong, or undefined. */
async function check(e: Expect, phase: Phase): Promise<string | undefined> {
  const within = 20_000;
  switch (e.at) {
    case 'admission': {
      const r = phase.refusal;
      if (!r) return 'not refused by the API server';
      if (r.status !== 422) return `HTTP ${r.status}: ${r.message}`;
      return r.causes.some((c) => c.field === e.field && e.message.test(c.message ?? '')) ? undefined : `no cause on ${e.field} says ${e.message}: ${r.message}`;
    }
    case 'event': {
      const component = e.by === 'allocator' ? ALLOCATOR : AGENT;
      const since = (host: string | undefined): number => Math.floor((phase.sinceByNode?.get(host ?? '') ?? phase.since) / 1000) * 1000;
      const matching = async (): Promise<EventView[]> =>
        (await eventsOn(e.on)).filter((x) => x.source?.component === component && x.reason === e.reason && e.message.test(x.message) && Date.parse(x.lastTimestamp ?? x.eventTime ?? '') >= since(x.source?.host));
      const want = resolveNodes(e.from);
      const enough = (list: EventView[]): boolean => (e.by === 'allocator' || e.from === 'any' ? list.length > 0 : want.every((n) => list.some((x) => x.source?.host === n)));
      const found = await waitFor(`${e.reason} on ${e.on.kind} ${e.on.name}`, async () => {
        const list = await matching();
        return enough(list) ? list : undefined;
      }, within, 200).catch(() => undefined);
      if (!found) {
        const seen = (await eventsOn(e.on)).filter((x) => x.source?.component === component).map((x) => `${x.source?.host ?? ''} ${x.reason}: ${x.message}`);
        return `no ${e.reason} Event on ${e.on.kind} ${e.on.name} from ${e.by ?? (typeof e.from === 'string' ? e.from : e.from.join('+'))} saying ${e.message}; seen: ${seen.join(' | ') || 'none'}`;
      }
      if (found.some((x) => x.type !== (e.type ?? 'Warning'))) return `${e.reason} is ${found[0]!.type}, not ${e.type ?? 'Warning'}`;
      if (e.by !== 'allocator' && typeof e.from !== 'string') {
        const extra = found.filter((x) => !e.from.includes(x.source?.host ?? ''));
        if (extra.length > 0) return `${e.reason} also from ${extra.map((x) => x.source?.host).join(', ')}`;
      }
      return undefined;
    }
    case 'log': {
      const want = resolveNodes(e.from);
      const ok = await waitFor(`a log line ${e.message}`, () => {
        const counts = nodeNames.map((n) => logCount(n, phase, e.message));
        return (e.from === 'any' ? counts.some((c) => c > 0) : want.every((n) => logCount(n, phase, e.message) > 0)) ? true : undefined;
      }, within, 200).catch(() => undefined);
      if (!ok) return `no log line says ${e.message} (${nodeNames.map((n) => `${n}: ${linesSince(n, phase).slice(-3).map(lineText).join(' / ')}`).join('; ')})`;
      // Once: a second line would come within a resync or two.
      await sleep(1500);
      const counts = new Map(nodeNames.map((n) => [n, logCount(n, phase, e.message)]));
      if (e.from === 'any') return [...counts.values()].every((c) => c <= 1) ? undefined : `logged more than once: ${JSON.stringify([...counts])}`;
      for (const n of nodeNames) {
        const c = counts.get(n)!;
        if (want.includes(n) ? c !== 1 : c !== 0) return `${n} logged it ${c} times: ${linesSince(n, phase).filter((l) => e.message.test(lineText(l))).slice(0, 3).join(' | ')}`;
      }
      return undefined;
    }
    case 'metric': {
      const want = resolveNodes(e.from);
      const ok = await waitFor(`${e.name} ${e.value}`, async () => {
        for (const n of want) if (metricValue(await metricsOf(n), e.name) !== e.value) return undefined;
        return true;
      }, within, 250).catch(() => undefined);
      if (ok) return undefined;
      const now = await Promise.all(want.map(async (n) => `${n}: ${metricValue(await metricsOf(n), e.name)}`));
      return `${e.name} is not ${e.value}: ${now.join(', ')}`;
    }
    case 'holders': {
      const fits = (h: Held[]): boolean => {
        const names = h.map((x) => x.node).sort();
        const who = e.holders === 'none' ? names.length === 0 : e.holders === 'one' ? names.length === 1 : e.holders === 'all' ? names.join() === nodeNames.join() : names.join() === [...e.holders].sort().join();
        return who && h.every((x) => x.node !== e.notOn && (e.link === undefined || x.link === e.link) && (e.prefixLength === undefined || x.prefixLength === e.prefixLength) && (e.forever === undefined || x.forever === e.forever));
      };
      // 'none' must hold for a while, not only at one look.
      if (e.holders === 'none') {
        for (let i = 0; i < 6; i++) {
          const h = await holders(e.address);
          if (!fits(h)) return `${e.address} is held: ${JSON.stringify(h)}`;
          await sleep(250);
        }
        return undefined;
      }
      const ok = await waitFor(`holders of ${e.address}`, async () => (fits(await holders(e.address)) ? true : undefined), within, 100).catch(() => undefined);
      return ok ? undefined : `${e.address} held as ${JSON.stringify(await holders(e.address))}`;
    }
    case 'holder-unchanged': {
      const before = phase.heldBy.get(e.address);
      if (!before) return `nobody was seen holding ${e.address} before the input`;
      await sleep(1500);
      const h = await holders(e.address);
      return h.length === 1 && h[0]!.node === before ? undefined : `${e.address} was held by ${before}, now by ${JSON.stringify(h)}`;
    }
    case 'answers': {
      const ok = await waitFor(`${e.address} to answer`, async () => {
        const [res] = await lab.probe(lab.network.clientNetns, [url(e.address)], 1000);
        return res?.ok ? true : undefined;
      }, within, 100).catch(() => undefined);
      return ok ? undefined : `${e.address} does not answer HTTP from the client`;
    }
    case 'arp': {
      const w = phase.watch?.get(e.address);
      if (!w) return `${e.address} is not watched`;
      const good = macsWanted(e.macs);
      const from = Date.now();
      const s = await w.waitFor(`${e.address} answered by ${e.macs}`, (x) => good(x.macs), within, from).catch(() => undefined);
      if (!s) return `${e.address}: last answered by ${JSON.stringify(w.last()?.macs)}, not ${e.macs}`;
      if (e.throughout) {
        const since = w.samples().filter((x) => x.atMs >= phase.lastInputAt);
        const wrong = since.filter((x) => x.macs.length > 0 && !good(x.macs));
        if (wrong.length > 0) return `${e.address}: ${wrong.length} samples since the last input answered by ${JSON.stringify(wrong[0]!.macs)}, not ${e.macs} (first at +${Math.round(wrong[0]!.atMs - phase.lastInputAt)} ms)`;
        const answeredBy = new Set(since.filter((x) => x.macs.length > 0).map((x) => x.macs.join()));
        if (e.macs === 'one' && answeredBy.size > 1) return `${e.address}: answered by ${[...answeredBy].join(' then ')} since the last input`;
        const gap = w.unavailability().filter((u) => (u.toMs ?? Date.now()) >= phase.lastInputAt).map((u) => Math.min(u.durationMs, (u.toMs ?? Date.now()) - phase.lastInputAt));
        if (e.macs !== 'none' && gap.some((d) => d > UNANSWERED_MS)) return `${e.address}: unanswered for ${Math.round(Math.max(...gap))} ms since the last input`;
      }
      return undefined;
    }
    case 'annotation': {
      const ok = await waitFor(`${e.service} ${e.name}`, async () => ((await getService(e.service)).metadata.annotations?.[e.name] ?? null) === e.value ? true : undefined, within, 100).catch(() => undefined);
      return ok ? undefined : `${e.service} ${e.name} is ${JSON.stringify((await getService(e.service)).metadata.annotations?.[e.name] ?? null)}, not ${JSON.stringify(e.value)}`;
    }
    case 'announced': {
      const name = `purelb.io/announcing-${e.family}`;
      let want = '';
      const ok = await waitFor(`${e.service} ${name}`, async () => {
        const s = await getService(e.service);
        const a = ingressOf(s).find((x) => (e.family === 'IPv6' ? x.includes(':') : !x.includes(':')));
        const h = a === undefined ? [] : await holders(e.family === 'IPv6' ? canonical6(a) : a);
        if (h.length !== 1) return undefined;
        want = `${h[0]!.node},${h[0]!.link}`;
        return s.metadata.annotations?.[name] === want ? true : undefined;
      }, within, 100).catch(() => undefined);
      return ok ? undefined : `${e.service} ${name} is ${JSON.stringify((await getService(e.service)).metadata.annotations?.[name] ?? null)}, not the holder's ${JSON.stringify(want)}`;
    }
    case 'untouched': {
      await sleep(2000);
      const s = await getService(e.service);
      const annotations = Object.fromEntries(Object.entries(s.metadata.annotations ?? {}).filter(([k]) => k.startsWith('purelb.io/')));
      if (ingressOf(s).join() !== e.ingress.join()) return `${e.service}'s ingress changed to ${JSON.stringify(ingressOf(s))}`;
      if (JSON.stringify(Object.entries(annotations).sort()) !== JSON.stringify(Object.entries(e.annotations).sort())) return `${e.service}'s annotations changed to ${JSON.stringify(annotations)}`;
      const ev = (await eventsOn(svcRef(e.service))).filter((x) => x.source?.component === AGENT);
      return ev.length === 0 ? undefined : `agents wrote Events on ${e.service}: ${ev.map((x) => `${x.reason}: ${x.message}`).join(' | ')}`;
    }
  }
}

/** 2001:0DB8::0001 -> 2001:db8::1 (as the kernel prints it). */
function canonical6(a: string): string {
  const [head = '', tail] = a.toLowerCase().split('::');
  const words = (s: string): number[] => (s === '' ? [] : s.split(':').map((w) => parseInt(w, 16)));
  const h = words(head);
  const tl = tail === undefined ? [] : words(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - tl.length).fill(0), ...tl];
  let best = [-1, 0];
  for (let i = 0; i < 8; ) {
    if (all[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && all[j] === 0) j++;
    if (j - i > best[1]! && j - i > 1) best = [i, j - i];
    i = j;
  }
  const hex = all.map((w) => w.toString(16));
  if (best[0]! < 0) return hex.join(':');
  return `${hex.slice(0, best[0]).join(':')}::${hex.slice(best[0]! + best[1]!).join(':')}`;
}

// --- after every row ---------------------------------------------------------------

const totals = { inputs_tried: 0, daemon_crashes: 0, healthy_addresses_changed: 0, node_addresses_touched: 0, silent_inputs: 0 };
const perCategory: Record<string, number> = {};
let restarts = 0;
/** A stack frame, as a line of its own or inside a JSON string. */
const STACK_FRAME = /(?:^|\\n|\n)\s+at (?:async )?\S*.*[(\s](?:file:\/\/|node:|\/)\S*:\d+:\d+/;

/** Our class's Service addresses (canonical) right now: the only addresses an agent may add to a node's links. */
async function serviceAddresses(): Promise<Set<string>> {
  const list = await admin.get<{ items: SvcView[] }>('/api/v1/services');
  return new Set(list.items.filter((s) => s.spec.loadBalancerClass === undefined || s.spec.loadBalancerClass === 'purelb.io/purelb').flatMap((s) => ingressOf(s).map((a) => (a.includes(':') ? canonical6(a) : a))));
}

/** What differs from the node's snapshot: its own addresses and routes gone or changed, or addresses and routes no Service explains. */
async function nodeDrift(n: LabNode): Promise<string[]> {
  const before = baseline.get(n.name)!;
  const now = await nodeState(n.netns);
  const ours = await serviceAddresses();
  const out: string[] = [];
  for (const [key] of before.addresses) {
    const forever = now.addresses.get(key);
    if (forever === undefined) out.push(`address ${key} is gone`);
    else if (!forever) out.push(`address ${key} has a lifetime now`);
  }
  for (const [key, forever] of now.addresses) {
    if (before.addresses.has(key)) continue;
    const address = key.split(' ')[1]!.split('/')[0]!;
    if (!ours.has(address)) out.push(`address ${key} is no Service's`);
    else if (forever) out.push(`address ${key} is a local Service address without a lifetime`);
  }
  for (const key of before.routes.keys()) if (!now.routes.has(key)) out.push(`route ${key} is gone`);
  for (const [key, route] of now.routes) {
    if (before.routes.has(key)) continue;
    if (!(route.type === 'local' && route.table === 'local' && route.dst !== undefined && ours.has(route.dst))) out.push(`route ${key} is new`);
  }
  return out;
}

async function startAgentOn(t: Test, node: string): Promise<void> {
  try {
    const p = await startAgent(cp, nodeOf(node));
    agents.set(node, p);
    outputs.set(node, new Output(p));
  } catch (e) {
    totals.daemon_crashes++;
    t.fail(`the agent on ${node} did not start: ${e instanceof Error ? e.message : String(e)}`);
  }
}

async function invariants(t: Test, phaseStartMarks: Map<string, number>): Promise<void> {
  // Daemons.
  for (const [node, p] of agents) {
    if (p.running) continue;
    totals.daemon_crashes++;
    t.fail(`the agent on ${node} exited:\n${p.tail(30)}`);
    await startAgentOn(t, node);
  }
  if (!allocator.running) {
    totals.daemon_crashes++;
    t.fail(`the allocator exited:\n${allocator.tail(30)}`);
    allocator = await startAllocator(cp, { identity: `agentbad-${++allocatorGeneration}` });
    allocatorOutput = new Output(allocator);
  }
  for (const node of nodeNames) {
    const text = outputs.get(node)!.lines.slice(phaseStartMarks.get(node) ?? 0).join('\n');
    t.notMatch(text, STACK_FRAME, `${node}: no stack trace in the agent's output`);
  }
  t.notMatch(allocatorOutput.lines.join('\n'), STACK_FRAME, 'no stack trace in the allocator\'s output');
  t.pass('every agent and the allocator run');

  // Healthy Services: same addresses, local ones answering with one MAC, virtual ones on every node.
  const problems: string[] = [];
  for (const [name, want] of healthy) {
    const have = ingressOf(await getService(name));
    if (have.join() !== want.join()) problems.push(`${name} changed from ${want.join(', ')} to ${have.join(', ')}`);
  }
  const from = Date.now();
  for (const a of HEALTHY_LOCAL) {
    const s = await healthyArp.get(a).waitFor(`${a} answered by one MAC`, (x) => x.macs.length === 1, 20_000, from).catch(() => undefined);
    if (!s) problems.push(`${a}: not answered by exactly one MAC (last: ${JSON.stringify(healthyArp.get(a).last()?.macs)})`);
  }
  const answered = await waitFor('the healthy local addresses to answer HTTP', async () => {
    const res = await lab.probe(lab.network.clientNetns, HEALTHY_LOCAL.map(url), 1000);
    return res.every((x) => x.ok) ? true : undefined;
  }, 20_000, 200).catch(() => undefined);
  if (!answered) problems.push(`not every healthy local address answers HTTP: ${JSON.stringify((await lab.probe(lab.network.clientNetns, HEALTHY_LOCAL.map(url), 1000)).map((x) => [x.url, x.ok, x.error]))}`);
  for (const a of HEALTHY_VIRTUAL) {
    const ok = await waitFor(`${a} on every node`, async () => {
      const h = await holders(a);
      return h.length === 3 && h.every((x) => x.link === 'kube-lb0' && x.prefixLength === (a.includes(':') ? 128 : 32)) ? true : undefined;
    }, 20_000, 200).catch(() => undefined);
    if (!ok) problems.push(`${a} is not on every node's kube-lb0: ${JSON.stringify(await holders(a))}`);
  }
  const dups = HEALTHY_LOCAL.map((a) => [a, healthyArp.get(a).duplicateSampleCount()] as const).filter(([, c]) => c > 0);
  if (dups.length > 0) problems.push(`two MACs answered: ${JSON.stringify(dups)}`);
  totals.healthy_addresses_changed += problems.length;
  t.same(problems, [], 'every healthy Service kept its address, answering from one node');
  if (problems.length > 0) await diagnose(t, undefined, HEALTHY_LOCAL);

  // Node namespaces.
  let drift: [string, string[]][] = [];
  await waitFor('node namespaces to match their snapshot', async () => {
    drift = [];
    for (const n of lab.nodes) {
      const d = await nodeDrift(n);
      if (d.length > 0) drift.push([n.name, d]);
    }
    return drift.length === 0 ? true : undefined;
  }, 15_000, 300).catch(() => undefined);
  if ((await gatewayAddresses()) !== baselineGateway) drift.push(['gateway', [`br0 has ${await gatewayAddresses()}, had ${baselineGateway}`]]);
  totals.node_addresses_touched += drift.reduce((sum, [, d]) => sum + d.length, 0);
  t.same(drift, [], 'no node address, gateway address or route touched');

  // Back to valid: the metrics, and the membership.
  const metricProblems: string[] = [];
  for (const node of nodeNames) {
    const ok = await waitFor(`${node}'s metrics back to valid`, async () => {
      const text = await metricsOf(node);
      return metricValue(text, 'purelb_lbnodeagent_config_valid') === '1' && metricValue(text, 'purelb_gossip_secret_valid') === '1' ? true : undefined;
    }, 15_000, 250).catch(() => undefined);
    if (!ok) {
      const text = await metricsOf(node);
      metricProblems.push(`${node}: config_valid ${metricValue(text, 'purelb_lbnodeagent_config_valid')}, gossip_secret_valid ${metricValue(text, 'purelb_gossip_secret_valid')}`);
    }
  }
  t.same(metricProblems, [], 'every agent reports a valid configuration and gossip Secret again');
  await t.resolves(waitForSettled(cluster), 'every agent gossips with every other');
}

/** Restarts the agents one after the other (as a DaemonSet rolls); returns when each new one was started. */
async function restartAgents(t: Test): Promise<Map<string, number>> {
  restarts++;
  const started = new Map<string, number>();
  for (const node of nodeNames) {
    await agents.get(node)!.stop(5000);
    started.set(node, Date.now());
    await startAgentOn(t, node);
  }
  for (const [node, p] of agents) t.ok(p.running, `${node}: running after the restart`);
  return started;
}

/** What the agents did and who holds what, for a failed row's report. */
async function diagnose(t: Test, phase: Phase | undefined, addresses: readonly string[]): Promise<void> {
  for (const a of new Set(addresses)) {
    const w = phase?.watch?.watches.get(a) ?? healthyArp.watches.get(a);
    const samples = w ? w.samples().slice(-8).map((x) => `${new Date(x.atMs).toISOString().slice(11, 23)} ${x.macs.join('+') || '-'}`).join(', ') : 'not watched';
    t.comment(`${a}: held ${JSON.stringify(await holders(a))}; last samples: ${samples}`);
  }
  for (const node of nodeNames) {
    const lines = (phase ? linesSince(node, phase) : outputs.get(node)!.lines).filter((l) => !l.includes('"guard mode"')).slice(-25);
    t.comment(`${node} (${lines.length} lines):\n${lines.join('\n')}`);
  }
}

async function runRow(t: Test, row: AgentBadInput): Promise<void> {
  const state: RowState = { services: new Set(), groups: new Set(), lbnodeagent: false, secret: false };
  const expects = [...row.expect, ...(row.then ?? [])];
  const watched = [...new Set(expects.flatMap((e) => (e.at === 'arp' ? [e.address] : [])))];
  const watch = watched.length > 0 ? lab.watchArpAll(watched, { intervalMs: 50 }) : undefined;
  if (watch) await watch.ready;
  const rowMarks = new Map(nodeNames.map((n) => [n, outputs.get(n)!.lines.length]));
  const healthyHolders = new Map<string, string>();
  for (const a of HEALTHY_LOCAL) {
    const h = await holders(a);
    if (h.length === 1) healthyHolders.set(a, h[0]!.node);
  }
  const messages = (list: readonly Expect[]): number => list.filter((e) => e.at === 'event' || e.at === 'log' || e.at === 'metric' || e.at === 'admission').length;
  const due = messages(row.expect) + messages(row.then ?? []);
  let said = 0;
  const newPhase = (): Phase => ({ since: Date.now(), marks: new Map(nodeNames.map((n) => [n, outputs.get(n)!.lines.length])), lastInputAt: Date.now(), refusal: undefined, heldBy: new Map(healthyHolders), watch });
  const verify = async (list: readonly Expect[], phase: Phase): Promise<void> => {
    let failed = false;
    // Every look but the ARP ones runs at once (each waits on its own); the ARP looks
    // come after them all, so that "throughout" covers the whole time the others took.
    const looks = new Map<Expect, Promise<string | undefined>>(list.filter((e) => e.at !== 'arp').map((e) => [e, check(e, phase)]));
    await Promise.all(looks.values());
    for (const e of list) {
      const problem = await (looks.get(e) ?? check(e, phase));
      if (problem === undefined && (e.at === 'event' || e.at === 'log' || e.at === 'metric' || e.at === 'admission')) said++;
      const what = `${e.at}${'reason' in e ? ` ${e.reason}` : ''}${'name' in e && e.at === 'metric' ? ` ${e.name}` : ''}${'address' in e ? ` ${e.address}` : ''}`;
      t.ok(problem === undefined, problem === undefined ? what : `${what}: ${problem}`);
      if (problem !== undefined) failed = true;
    }
    if (failed) await diagnose(t, phase, list.flatMap((e) => ('address' in e ? [e.address] : [])));
  };
  try {
    if (row.allocator === 'stopped') await allocator.stop();
    const phase = newPhase();
    for (const input of row.inputs) {
      await put(input, phase, state);
      if (phase.refusal) break;
    }
    await verify(row.expect, phase);
    if (row.restart) {
      const restartAt = Date.now();
      const sinceByNode = await restartAgents(t);
      await t.resolves(waitForSettled(cluster), 'the restarted agents gossip with each other');
      // Log lines: the new processes' whole output; samples: from the restart on.
      const after: Phase = { ...newPhase(), since: restartAt, sinceByNode, marks: new Map(nodeNames.map((n) => [n, 0])), heldBy: phase.heldBy, lastInputAt: restartAt };
      await verify(row.then ?? [], after);
    } else if (row.then) {
      // A second look after a while: what settled stays settled (samples from now on).
      const from = Date.now();
      await sleep(3000);
      await verify(row.then, { ...phase, lastInputAt: from });
    }
  } catch (e) {
    t.fail(`the row did not run: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  } finally {
    for (const name of state.services) await deleteService(name).catch((e: unknown) => t.fail(`delete ${name}: ${String(e)}`));
    for (const name of state.groups) await admin.delete(groupPath(name)).catch((e: unknown) => t.fail(`delete ServiceGroup ${name}: ${String(e)}`));
    if (state.lbnodeagent) await replaceSpec(lbnaPath, 'LBNodeAgent', { local: BASE_AGENT }, false);
    if (state.secret) {
      const s = await admin.get<{ metadata: { resourceVersion: string } }>(secretPath);
      await admin.json('PUT', secretPath, { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: MEMBERLIST_SECRET, namespace: PURELB_NAMESPACE, resourceVersion: s.metadata.resourceVersion }, data: originalSecretData });
    }
    if (relaxed) await restoreCrds();
    if (row.allocator === 'stopped') {
      allocator = await startAllocator(cp, { identity: `agentbad-${++allocatorGeneration}` });
      allocatorOutput = new Output(allocator);
    }
    if (watch) {
      await watch.stop();
      const dups = watched.map((a) => [a, watch.get(a).duplicateSampleCount()] as const).filter(([, c]) => c > 0);
      t.same(dups, [], 'never two MACs answering for an address of this row');
      // Two nodes answering for a node's own address or the gateway's is touching it.
      totals.node_addresses_touched += dups.filter(([a]) => a === NODE1_V4 || a === NODE1_V6 || a === LAN.gatewayV4 || a === LAN.gatewayV6).length;
    }
  }
  totals.inputs_tried++;
  perCategory[row.category] = (perCategory[row.category] ?? 0) + 1;
  if (due > 0 && said === 0) totals.silent_inputs++;
  await invariants(t, rowMarks);
}

t.test(`${CASES.length} bad inputs for the node agent`, async (t) => {
  if (!ONLY) t.ok(CASES.length >= 45, `${CASES.length} rows`);
  for (const row of CASES) await t.test(`${row.category}: ${row.name}`, (tt) => runRow(tt, row));
  t.same(totals, { inputs_tried: CASES.length, daemon_crashes: 0, healthy_addresses_changed: 0, node_addresses_touched: 0, silent_inputs: 0 }, 'totals');
});

t.teardown(() => {
  if (ONLY) return;
  recordBadInputPart(join(REPO_ROOT, 'bench-results', 'badinput.json'), 'lbnodeagent', totals, {
    ...Object.fromEntries(Object.entries(perCategory).map(([k, v]) => [`rows_${k}`, v])),
    restarts,
  });
});
