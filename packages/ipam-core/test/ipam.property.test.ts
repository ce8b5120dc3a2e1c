import t from 'tap';
import fc from 'fast-check';
import { type Exclusion, type GroupSpec, Ipam, IpamError, type ServicePort } from '../src/index.ts';
import { type HolderInfo, snapshot, violation } from './helpers.ts';

// Small pools so that exhaustion, sharing and conflicts happen often.
const CONFIGS: GroupSpec[][] = [
  [
    { name: 'default', v4pools: [{ pool: '192.0.2.0/30', subnet: '192.0.2.0/24' }], v6pools: [{ pool: '2001:db8::1-2001:db8::3', subnet: '2001:db8::/64' }] },
    { name: 'g2', v4pools: [{ pool: '198.51.100.8-198.51.100.10', subnet: '198.51.100.0/24' }] },
  ],
  [{ name: 'default', v4pools: [{ pool: '192.0.2.2-192.0.2.6', subnet: '192.0.2.0/24' }] }],
  [
    { name: 'default', v6pools: [{ pool: '2001:db8::2-2001:db8::2', subnet: '2001:db8::/64' }] },
    { name: 'g2', v4pools: [{ pool: '192.0.2.0/29', subnet: '192.0.2.0/24' }, { pool: '198.51.100.9/32', subnet: '198.51.100.0/24' }] },
  ],
  [{ name: 'bad', v4pools: [{ pool: '192.0.2.0/30', subnet: '198.51.100.0/24' }] }],
];
const ADDRESSES = ['192.0.2.1', '192.0.2.3', '192.0.2.5', '198.51.100.9', '203.0.113.1', '2001:db8::1', '2001:db8::2', '2001:db8::9'];
// Candidates for exclusion: pool members, subnet edges (192.0.2.0 is the network address
// of 192.0.2.0/24 and lies in the /30 pool), and addresses outside every pool.
const EXCLUDABLE = ['192.0.2.0', '192.0.2.1', '192.0.2.2', '192.0.2.4', '198.51.100.9', '198.51.100.10', '203.0.113.1', '2001:db8::2', '2001:db8::3', '2001:db8::'];
const PORTS: ServicePort[] = [
  { protocol: 'TCP', port: 80 },
  { protocol: 'TCP', port: 443 },
  { protocol: 'UDP', port: 53 },
];

const service = fc.constantFrom('s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7');
const key = fc.constantFrom(undefined, '', 'a', 'b');
const ports = fc.subarray(PORTS);
const group = fc.constantFrom(undefined, 'default', 'g2', 'missing');

const op = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('setGroups' as const), config: fc.nat(CONFIGS.length - 1) }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('allocate' as const),
      service,
      group,
      families: fc.constantFrom<('IPv4' | 'IPv6')[]>(['IPv4'], ['IPv6'], ['IPv4', 'IPv6'], ['IPv6', 'IPv4']),
      policy: fc.constantFrom('SingleStack' as const, 'PreferDualStack' as const, 'RequireDualStack' as const),
      addresses: fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.subarray(ADDRESSES, { maxLength: 2 }) }),
      sharingKey: key,
      ports,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('adopt' as const), service, group, addresses: fc.subarray(ADDRESSES, { minLength: 1, maxLength: 2 }), sharingKey: key, ports }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), service }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('setExclusions' as const), addresses: fc.subarray(EXCLUDABLE) }) },
);

type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

/** Runs ops; returns a description of the first broken rule, or undefined. */
function run(ops: readonly Op[], excludeSubnetReserved = false): { problem: string | undefined; ipam: Ipam } {
  const ipam = new Ipam({ excludeSubnetReserved });
  let groups: GroupSpec[] = [];
  let exclusions: Exclusion[] = [];
  const holders = new Map<string, HolderInfo>();
  for (const [i, o] of ops.entries()) {
    const before = snapshot(ipam);
    try {
      if (o.kind === 'setGroups') {
        ipam.setGroups(CONFIGS[o.config]!);
        groups = CONFIGS[o.config]!;
      } else if (o.kind === 'setExclusions') {
        exclusions = o.addresses.map((address) => ({ address, reason: `excluded ${address}` }));
        const { held } = ipam.setExclusions(exclusions);
        for (const h of held) if (ipam.get(h.service)?.addresses.includes(h.address) !== true) return { problem: `op ${i}: ${h.service} listed as holding ${h.address}, which it does not`, ipam };
      } else if (o.kind === 'allocate') {
        const had = ipam.get(o.service)?.addresses ?? [];
        const got = ipam.allocate(o);
        if (got.addresses.length === 0) return { problem: `op ${i}: allocate returned no address`, ipam };
        for (const a of got.addresses) {
          // A new address is never one that is excluded (sharing a held one is not new: it is in use already).
          const shared = ipam.holdersOf(a).length > 1;
          if (!had.includes(a) && !shared && ipam.exclusionOf(a) !== undefined) return { problem: `op ${i}: ${o.service} got ${a}, which is excluded (${ipam.exclusionOf(a)})`, ipam };
        }
        holders.set(o.service, { key: o.sharingKey || undefined, ports: o.ports });
      } else if (o.kind === 'adopt') {
        const got = ipam.adopt(o);
        if (got.addresses.join() !== o.addresses.join()) return { problem: `op ${i}: adopt changed the addresses`, ipam };
        holders.set(o.service, { key: o.sharingKey || undefined, ports: o.ports });
      } else {
        ipam.release(o.service);
        holders.delete(o.service);
      }
    } catch (e) {
      if (!(e instanceof IpamError)) return { problem: `op ${i}: threw a non-IpamError: ${String(e)}`, ipam };
      if (JSON.stringify(snapshot(ipam)) !== JSON.stringify(before)) return { problem: `op ${i}: failed with ${e.code} but changed the state`, ipam };
    }
    const bad = violation(ipam, groups, holders, exclusions);
    if (bad) return { problem: `op ${i} (${o.kind}): ${bad}`, ipam };
  }
  return { problem: undefined, ipam };
}

t.test('random allocate/release/adopt/setGroups sequences keep every rule', async (t) => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const { problem } = run(ops);
      if (problem) throw new Error(problem);
    }),
    { numRuns: 400 },
  );
  t.pass('no counterexample in 400 sequences');
});

t.test('the same with subnet reserved addresses excluded', async (t) => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const { problem } = run(ops, true);
      if (problem) throw new Error(problem);
    }),
    { numRuns: 400 },
  );
  t.pass('no counterexample in 400 sequences');
});

t.test('the same sequence always gives the same state (deterministic)', async (t) => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => JSON.stringify(snapshot(run(ops).ipam)) === JSON.stringify(snapshot(run(ops).ipam))),
    { numRuns: 100 },
  );
  t.pass('no counterexample');
});
