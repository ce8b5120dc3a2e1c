import t from 'tap';
import { IpamError } from '../src/errors.ts';
import { parseGroup } from '../src/group.ts';
import { parsePool, poolSize } from '../src/pool.ts';
import { formatAddress } from '../src/address.ts';
import { catchError } from './helpers.ts';

t.test('pool forms and their sizes', async (t) => {
  const table: { pool: string; subnet: string; first: string; last: string; size: bigint }[] = [
    { pool: '192.0.2.10-192.0.2.20', subnet: '192.0.2.0/24', first: '192.0.2.10', last: '192.0.2.20', size: 11n },
    { pool: '192.0.2.0/30', subnet: '192.0.2.0/24', first: '192.0.2.0', last: '192.0.2.3', size: 4n },
    { pool: '192.0.2.7-192.0.2.7', subnet: '192.0.2.0/24', first: '192.0.2.7', last: '192.0.2.7', size: 1n },
    { pool: '192.0.2.0/24', subnet: '192.0.2.0/24', first: '192.0.2.0', last: '192.0.2.255', size: 256n },
    { pool: ' 198.51.100.1 - 198.51.100.2 ', subnet: '198.51.100.0/24', first: '198.51.100.1', last: '198.51.100.2', size: 2n },
    // A CIDR pool starts at the address as written (the reference overview's v6 example).
    { pool: 'fc00:270:154:0:8100::4/64', subnet: 'fc00:270:154::/64', first: 'fc00:270:154:0:8100::4', last: 'fc00:270:154:0:ffff:ffff:ffff:ffff', size: (1n << 64n) - 0x8100000000000004n },
    { pool: '2001:db8::/64', subnet: '2001:db8::/64', first: '2001:db8::', last: '2001:db8::ffff:ffff:ffff:ffff', size: 1n << 64n },
    { pool: '2001:db8::10-2001:db8::1f', subnet: '2001:db8::/120', first: '2001:db8::10', last: '2001:db8::1f', size: 16n },
  ];
  for (const row of table) {
    const p = parsePool({ pool: row.pool, subnet: row.subnet, aggregation: 'default' }, 'g', 'v4pools[0]', undefined);
    t.equal(formatAddress(p.family, p.first), row.first, `${row.pool} first`);
    t.equal(formatAddress(p.family, p.last), row.last, `${row.pool} last`);
    t.equal(poolSize(p), row.size, `${row.pool} size`);
  }
});

t.test('aggregation', async (t) => {
  const agg = (aggregation: string | undefined, subnet = '192.0.2.0/24') =>
    parsePool({ pool: '192.0.2.1-192.0.2.2', subnet, aggregation }, 'g', 'v4pools[0]', 'IPv4').aggregation;
  t.equal(agg('default'), 24);
  t.equal(agg(undefined), 24);
  t.equal(agg('/32'), 32);
  t.equal(agg('/24'), 24);
  t.equal(agg('/28'), 28);
  t.equal(parsePool({ pool: '2001:db8::1-2001:db8::2', subnet: '2001:db8::/64', aggregation: '/128' }, 'g', 'v6pools[0]', 'IPv6').aggregation, 128);
});

t.test('invalid pools name the group, the field and the text', async (t) => {
  const table: { spec: { pool: string; subnet: string; aggregation?: string }; family?: 'IPv4' | 'IPv6'; field: string; match: RegExp }[] = [
    { spec: { pool: '192.0.2.300-192.0.2.301', subnet: '192.0.2.0/24' }, field: 'v4pools[0].pool', match: /neither a range/ },
    { spec: { pool: '192.0.2.20-192.0.2.10', subnet: '192.0.2.0/24' }, field: 'v4pools[0].pool', match: /first <= last/ },
    { spec: { pool: '192.0.2.1-2001:db8::1', subnet: '192.0.2.0/24' }, field: 'v4pools[0].pool', match: /one family/ },
    { spec: { pool: '192.0.2.1/33', subnet: '192.0.2.0/24' }, field: 'v4pools[0].pool', match: /neither/ },
    { spec: { pool: '192.0.2.1-192.0.2.5', subnet: '192.0.2.0' }, field: 'v4pools[0].subnet', match: /not a CIDR/ },
    { spec: { pool: '192.0.2.1-192.0.2.5', subnet: '' }, field: 'v4pools[0].subnet', match: /required/ },
    { spec: { pool: '198.51.100.1-198.51.100.5', subnet: '192.0.2.0/24' }, field: 'v4pools[0].pool', match: /does not lie inside subnet 192\.0\.2\.0\/24/ },
    { spec: { pool: '192.0.2.250-192.0.3.5', subnet: '192.0.2.0/24' }, field: 'v4pools[0].pool', match: /does not lie inside/ },
    { spec: { pool: '192.0.2.1-192.0.2.5', subnet: '2001:db8::/64' }, field: 'v4pools[0].subnet', match: /IPv6, but the pool is IPv4/ },
    { spec: { pool: '2001:db8::1-2001:db8::5', subnet: '2001:db8::/64' }, family: 'IPv4', field: 'v4pools[0].pool', match: /holds IPv4 pools/ },
    { spec: { pool: '192.0.2.1-192.0.2.5', subnet: '192.0.2.0/24', aggregation: '/16' }, field: 'v4pools[0].aggregation', match: /24 <= N <= 32/ },
    { spec: { pool: '192.0.2.1-192.0.2.5', subnet: '192.0.2.0/24', aggregation: '/33' }, field: 'v4pools[0].aggregation', match: /default/ },
    { spec: { pool: '192.0.2.1-192.0.2.5', subnet: '192.0.2.0/24', aggregation: '32' }, field: 'v4pools[0].aggregation', match: /default/ },
  ];
  for (const row of table) {
    const e = catchError(() => parsePool(row.spec, 'web', 'v4pools[0]', row.family));
    const ok =
      e instanceof IpamError &&
      e.code === 'IPAM_INVALID_POOL' &&
      e.context.group === 'web' &&
      e.context.field === row.field &&
      e.message.includes('ServiceGroup "web"') &&
      e.message.includes(row.field) &&
      row.match.test(e.message);
    t.ok(ok, `${JSON.stringify(row.spec)} -> ${String(e)}`);
  }
});

t.test('groups: every pool form, in declaration order', async (t) => {
  const g = parseGroup({
    name: 'g',
    subnet: '192.0.2.0/24',
    pool: '192.0.2.1-192.0.2.2',
    aggregation: 'default',
    v4pool: { pool: '192.0.2.10-192.0.2.11', subnet: '192.0.2.0/24', aggregation: '/32' },
    v6pool: { pool: '2001:db8::1-2001:db8::2', subnet: '2001:db8::/64', aggregation: 'default' },
    v4pools: [{ pool: '198.51.100.0/31', subnet: '198.51.100.0/24', aggregation: 'default' }],
    v6pools: [{ pool: '2001:db8:1::/126', subnet: '2001:db8:1::/64', aggregation: '/128' }],
  });
  t.same(g.pools.IPv4.map((p) => [p.field, p.text]), [['local', '192.0.2.1-192.0.2.2'], ['v4pool', '192.0.2.10-192.0.2.11'], ['v4pools[0]', '198.51.100.0/31']]);
  t.same(g.pools.IPv6.map((p) => p.field), ['v6pool', 'v6pools[0]']);
  const legacy6 = parseGroup({ name: 'l6', subnet: '2001:db8::/64', pool: '2001:db8::5-2001:db8::6' });
  t.same(legacy6.pools.IPv6.length, 1, 'the legacy single form takes the family of its text');
  t.same(parseGroup({ name: 'empty' }).pools, { IPv4: [], IPv6: [] });
});

t.test('groups: overlapping pools are refused, the name is required', async (t) => {
  t.throws(
    () => parseGroup({ name: 'o', v4pools: [{ pool: '192.0.2.0/28', subnet: '192.0.2.0/24' }, { pool: '192.0.2.10-192.0.2.40', subnet: '192.0.2.0/24' }] }),
    { code: 'IPAM_INVALID_POOL', message: /v4pools\[1\]\.pool "192\.0\.2\.10-192\.0\.2\.40" overlaps v4pools\[0\]\.pool/ },
  );
  t.throws(() => parseGroup({ name: '' }), { code: 'IPAM_INVALID_POOL', context: { field: 'name' } });
  t.throws(() => parseGroup({ name: 'x', subnet: '192.0.2.0/24' }), { code: 'IPAM_INVALID_POOL', context: { field: 'local.pool' } });
});
