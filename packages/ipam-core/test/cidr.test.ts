// Subnets and "is this address in this subnet": the one module every package asks.
import t from 'tap';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import {
  type Address,
  IpamError,
  cidrContains,
  formatAddress,
  formatSubnet,
  lastAddress,
  parseAddress,
  parseSubnet,
  parseSubnetCached,
  reservedAddressKind,
  subnetContains,
  subnetOf,
  subnetReserved,
  subnetTextOf,
} from '../src/index.ts';
import { catchError } from './helpers.ts';

const addr = (text: string): Address => {
  const a = parseAddress(text);
  if (!a) throw new Error(`test address ${text}`);
  return a;
};

t.test('parseSubnet clears host bits and refuses what is not a CIDR', async (t) => {
  const table: [string, string | undefined][] = [
    ['192.0.2.0/24', '192.0.2.0/24'],
    ['192.0.2.77/24', '192.0.2.0/24'],
    [' 192.0.2.77 / 24 ', '192.0.2.0/24'],
    ['198.51.100.200/25', '198.51.100.128/25'],
    ['203.0.113.9/32', '203.0.113.9/32'],
    ['203.0.113.9/0', '0.0.0.0/0'],
    ['2001:db8:1:2:3::9/48', '2001:db8:1::/48'],
    ['2001:DB8::FFFF:1/64', '2001:db8::/64'],
    ['2001:db8::1/128', '2001:db8::1/128'],
    ['::ffff:192.0.2.1/96', '::ffff:0:0/96'],
    ['192.0.2.0', undefined],
    ['192.0.2.0/', undefined],
    ['192.0.2.0/33', undefined],
    ['192.0.2.0/-1', undefined],
    ['192.0.2.0/2x', undefined],
    ['192.0.2.0/1024', undefined],
    ['2001:db8::/129', undefined],
    ['2001:db8::%eth0/64', undefined],
    ['127.1/8', undefined],
    ['host/24', undefined],
    ['', undefined],
  ];
  for (const [text, want] of table) {
    const s = parseSubnet(text);
    t.equal(s && formatSubnet(s), want, JSON.stringify(text));
  }
});

t.test('parseSubnetCached gives parseSubnet\'s answer, the same object for the same text', async (t) => {
  for (const text of ['192.0.2.77/24', '2001:db8::/64', 'not a cidr']) t.same(parseSubnetCached(text), parseSubnet(text), text);
  t.equal(parseSubnetCached('198.51.100.0/24'), parseSubnetCached('198.51.100.0/24'));
  // Past its bound it forgets, and still answers.
  for (let i = 0; i < 5000; i++) parseSubnetCached(`203.0.113.${i % 256}/${i % 33}`);
  t.equal(formatSubnet(parseSubnetCached('192.0.2.200/25')!), '192.0.2.128/25');
});

t.test('subnetOf, subnetTextOf and lastAddress', async (t) => {
  const table: [string, number, string, string][] = [
    ['192.0.2.11', 24, '192.0.2.0/24', '192.0.2.255'],
    ['198.51.100.200', 25, '198.51.100.128/25', '198.51.100.255'],
    ['203.0.113.9', 32, '203.0.113.9/32', '203.0.113.9'],
    ['203.0.113.9', 31, '203.0.113.8/31', '203.0.113.9'],
    ['203.0.113.9', 0, '0.0.0.0/0', '255.255.255.255'],
    ['2001:db8:1:2:3::9', 48, '2001:db8:1::/48', '2001:db8:1:ffff:ffff:ffff:ffff:ffff'],
    ['2001:db8::5', 64, '2001:db8::/64', '2001:db8::ffff:ffff:ffff:ffff'],
    ['2001:db8::5', 128, '2001:db8::5/128', '2001:db8::5'],
  ];
  for (const [address, len, cidr, last] of table) {
    const s = subnetOf(addr(address), len);
    t.equal(formatSubnet(s), cidr, `${address}/${len}`);
    t.equal(subnetTextOf(address, len), cidr, `${address}/${len} as text`);
    t.equal(formatAddress(s.family, lastAddress(s)), last, `last of ${cidr}`);
  }
});

t.test('subnetOf and subnetTextOf throw IPAM_INVALID_CIDR naming the field', async (t) => {
  const table: [() => unknown, string][] = [
    [() => subnetOf(addr('192.0.2.1'), 33), 'prefixLength'],
    [() => subnetOf(addr('192.0.2.1'), -1), 'prefixLength'],
    [() => subnetOf(addr('192.0.2.1'), 24.5), 'prefixLength'],
    [() => subnetOf(addr('2001:db8::1'), 129), 'prefixLength'],
    [() => subnetTextOf('192.0.2.1', Number.NaN), 'prefixLength'],
    [() => subnetTextOf('192.0.2.1/24', 24), 'address'],
    [() => subnetTextOf('2001:db8::1%eth0', 64), 'address'],
  ];
  for (const [call, field] of table) {
    const e = catchError(call);
    t.ok(e instanceof IpamError, `${field}: an IpamError`);
    t.match(e, { code: 'IPAM_INVALID_CIDR', context: { field } }, field);
  }
});

t.test('subnetContains and cidrContains: inside, outside, and never across families', async (t) => {
  const table: [string, string, boolean][] = [
    ['192.0.2.0/24', '192.0.2.0', true],
    ['192.0.2.0/24', '192.0.2.255', true],
    ['192.0.2.77/24', '192.0.2.1', true],
    ['192.0.2.0/25', '192.0.2.128', false],
    ['192.0.2.0/24', '198.51.100.1', false],
    ['198.51.100.128/25', '198.51.100.200', true],
    ['203.0.113.9/32', '203.0.113.9', true],
    ['203.0.113.9/32', '203.0.113.8', false],
    ['0.0.0.0/0', '203.0.113.8', true],
    ['0.0.0.0/0', '2001:db8::1', false],
    ['192.0.2.0/24', '2001:db8::1', false],
    ['2001:db8::/64', '192.0.2.1', false],
    ['2001:db8::/64', '2001:db8::ffff:1', true],
    ['2001:db8::/64', '2001:db8:0:1::1', false],
    ['2001:db8::/32', '2001:db8:ffff::1', true],
    ['::/0', '2001:db8::1', true],
    ['::ffff:0:0/96', '::ffff:192.0.2.1', true],
    ['192.0.2.0/24', '::ffff:192.0.2.1', false],
  ];
  for (const [cidr, address, want] of table) {
    t.equal(subnetContains(parseSubnet(cidr)!, addr(address)), want, `${address} in ${cidr}`);
    t.equal(cidrContains(cidr, addr(address)), want, `${address} in ${cidr} (text)`);
  }
  for (const bad of ['', '192.0.2.0', '192.0.2.0/33', 'lan', '2001:db8::/129']) t.notOk(cidrContains(bad, addr('192.0.2.1')), `${JSON.stringify(bad)} contains nothing`);
});

t.test('reservedAddressKind names the addresses subnetReserved lists', async (t) => {
  const table: [string, string, string | undefined][] = [
    ['192.0.2.0/24', '192.0.2.0', 'network'],
    ['192.0.2.0/24', '192.0.2.255', 'broadcast'],
    ['192.0.2.0/24', '192.0.2.1', undefined],
    ['192.0.2.8/30', '192.0.2.11', 'broadcast'],
    ['198.51.100.0/31', '198.51.100.0', undefined],
    ['198.51.100.0/31', '198.51.100.1', undefined],
    ['203.0.113.9/32', '203.0.113.9', undefined],
    ['192.0.2.0/24', '198.51.100.0', undefined],
    ['192.0.2.0/24', '2001:db8::', undefined],
    ['2001:db8::/64', '2001:db8::', 'subnet-router anycast'],
    ['2001:db8::/64', '2001:db8::ffff:ffff:ffff:ffff', undefined],
    ['2001:db8::/126', '2001:db8::', 'subnet-router anycast'],
    ['2001:db8::/127', '2001:db8::', undefined],
    ['2001:db8::1/128', '2001:db8::1', undefined],
  ];
  for (const [cidr, address, want] of table) t.equal(reservedAddressKind(parseSubnet(cidr)!, addr(address)), want, `${address} in ${cidr}`);
  for (const cidr of ['192.0.2.0/24', '192.0.2.8/30', '198.51.100.0/31', '2001:db8::/64', '2001:db8::/127']) {
    const s = parseSubnet(cidr)!;
    for (const v of subnetReserved(s)) t.ok(reservedAddressKind(s, { family: s.family, value: v }), `${formatAddress(s.family, v)} of ${cidr}`);
  }
});

t.test('containment agrees with ipaddr.js, and an address is in its own subnet (property)', async (t) => {
  const v4 = fc.tuple(fc.bigInt({ min: 0n, max: 0xffffffffn }), fc.bigInt({ min: 0n, max: 0xffffffffn }), fc.integer({ min: 0, max: 32 }));
  const v6 = fc.tuple(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.integer({ min: 0, max: 128 }));
  for (const [family, arb] of [
    ['IPv4', v4],
    ['IPv6', v6],
  ] as const) {
    fc.assert(
      fc.property(arb, ([n, m, len]) => {
        const a: Address = { family, value: n };
        // Half the time an address near `a`, so both answers occur.
        const b: Address = { family, value: m % 2n === 0n ? m : n ^ (m & 0xffn) };
        const s = subnetOf(a, len);
        const text = formatSubnet(s);
        const want = ipaddr.parse(formatAddress(family, b.value)).match(ipaddr.parseCIDR(text));
        return subnetContains(s, a) && subnetContains(s, b) === want && cidrContains(text, b) === want && (subnetOf(b, len).network === s.network) === want;
      }),
      { numRuns: 2000 },
    );
  }
  t.pass('no counterexample');
});
