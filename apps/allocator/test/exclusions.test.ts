import t from 'tap';
import { parseGroup } from '@purelb/ipam-core';
import type { Node } from '@purelb/api';
import { exclusionsInPools, nodeExclusions } from '../src/exclusions.ts';
import { poolOverlaps } from '../src/overlaps.ts';

const node = (name: string, addresses: [string, string][]): Node => ({ metadata: { name }, status: { addresses: addresses.map(([type, address]) => ({ type, address })) } });

t.test('every IP a Node reports, of any type, once, naming the Node', async (t) => {
  const got = nodeExclusions([
    node('n2', [['InternalIP', '192.0.2.12'], ['InternalIP', '2001:db8::12'], ['Hostname', 'n2'], ['ExternalIP', '198.51.100.2']]),
    node('n1', [['InternalIP', '192.0.2.11'], ['InternalDNS', 'n1.example'], ['Hostname', '192.0.2.111'], ['ExternalIP', '2001:DB8:0::11']]),
    node('n3', [['InternalIP', '192.0.2.11'], ['InternalIP', 'not-an-ip']]),
    { metadata: { name: 'bare' } },
  ]);
  t.same(got, [
    { address: '192.0.2.11', reason: 'Node n1 reports it as its own (InternalIP)' },
    { address: '192.0.2.111', reason: 'Node n1 reports it as its own (Hostname)' },
    { address: '2001:db8::11', reason: 'Node n1 reports it as its own (ExternalIP)' },
    { address: '192.0.2.12', reason: 'Node n2 reports it as its own (InternalIP)' },
    { address: '2001:db8::12', reason: 'Node n2 reports it as its own (InternalIP)' },
    { address: '198.51.100.2', reason: 'Node n2 reports it as its own (ExternalIP)' },
  ]);
});

t.test('which group pools hold an excluded address', async (t) => {
  const groups = [
    parseGroup({ name: 'a', v4pools: [{ pool: '192.0.2.0/28', subnet: '192.0.2.0/24' }], v6pools: [{ pool: '2001:db8::/120', subnet: '2001:db8::/64' }] }),
    parseGroup({ name: 'b', v4pools: [{ pool: '198.51.100.1-198.51.100.9', subnet: '198.51.100.0/24' }] }),
  ];
  const got = exclusionsInPools(groups, [
    { address: '192.0.2.11', reason: 'r1' },
    { address: '2001:db8::12', reason: 'r2' },
    { address: '203.0.113.1', reason: 'r3' },
  ]);
  t.same(got, [
    { group: 'a', family: 'IPv4', field: 'v4pools[0]', pool: '192.0.2.0/28', address: '192.0.2.11', reason: 'r1' },
    { group: 'a', family: 'IPv6', field: 'v6pools[0]', pool: '2001:db8::/120', address: '2001:db8::12', reason: 'r2' },
  ]);
});

t.test('pools overlapping across groups are reported for both sides; within a group is another rule', async (t) => {
  const g = (name: string, v4: string[], v6: string[] = []) =>
    parseGroup({ name, v4pools: v4.map((pool) => ({ pool, subnet: '192.0.2.0/24' })), v6pools: v6.map((pool) => ({ pool, subnet: '2001:db8::/64' })) });
  const got = poolOverlaps([g('a', ['192.0.2.10-192.0.2.20', '192.0.2.100-192.0.2.110'], ['2001:db8::1-2001:db8::9']), g('b', ['192.0.2.15-192.0.2.30']), g('c', ['192.0.2.110/32'], ['2001:db8::9-2001:db8::f']), g('d', ['192.0.2.200-192.0.2.210'])]);
  t.same(
    got.map((o) => `${o.group} ${o.field} ~ ${o.other} ${o.otherField} @ ${o.range}`),
    [
      'a v4pools[0] ~ b v4pools[0] @ 192.0.2.15-192.0.2.20',
      'a v4pools[1] ~ c v4pools[0] @ 192.0.2.110',
      'a v6pools[0] ~ c v6pools[0] @ 2001:db8::9',
      'b v4pools[0] ~ a v4pools[0] @ 192.0.2.15-192.0.2.20',
      'c v4pools[0] ~ a v4pools[1] @ 192.0.2.110',
      'c v6pools[0] ~ a v6pools[0] @ 2001:db8::9',
    ],
  );
  t.same(poolOverlaps([g('a', ['192.0.2.1-192.0.2.5']), g('b', ['192.0.2.6-192.0.2.9'])]), [], 'adjacent pools do not overlap');
});
