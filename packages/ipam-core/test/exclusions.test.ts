// Addresses that are never handed out: a subnet's network, broadcast and subnet-router
// anycast addresses (option excludeSubnetReserved), and excluded addresses
// (setExclusions: a Node's own addresses, for the allocator). Sizes stay what the pools
// say; the excluded count and every refusal say why.
import t from 'tap';
import { type GroupSpec, Ipam, IpamError, formatAddress, ipv4MappedText, parseAddress, parsePool, parseSubnet, subnetReserved } from '../src/index.ts';
import { catchError, runSteps } from './helpers.ts';

const v4 = (pool: string, subnet = '192.0.2.0/24') => ({ pool, subnet, aggregation: 'default' });
const v6 = (pool: string, subnet = '2001:db8::/64') => ({ pool, subnet, aggregation: 'default' });
const reserving = (): Ipam => new Ipam({ excludeSubnetReserved: true });

t.test('which addresses of a subnet are reserved: /31, /32, /127 and /128 have none', async (t) => {
  const table: [string, string[]][] = [
    ['192.0.2.0/24', ['192.0.2.0', '192.0.2.255']],
    ['192.0.2.64/26', ['192.0.2.64', '192.0.2.127']],
    ['192.0.2.8/30', ['192.0.2.8', '192.0.2.11']],
    ['192.0.2.8/31', []],
    ['192.0.2.9/32', []],
    ['198.51.100.0/8', ['198.0.0.0', '198.255.255.255']],
    ['2001:db8::/64', ['2001:db8::']],
    ['2001:db8::40/122', ['2001:db8::40']],
    ['2001:db8::2/126', ['2001:db8::']],
    ['2001:db8::2/127', []],
    ['2001:db8::3/128', []],
  ];
  for (const [subnet, want] of table) {
    const sn = parseSubnet(subnet)!;
    t.same(subnetReserved(sn).map((v) => formatAddress(sn.family, v)), want, subnet);
  }
});

t.test('first fit skips the network and broadcast addresses; the size is the pool as written', async (t) => {
  const whole: GroupSpec = { name: 'default', v4pools: [v4('192.0.2.0/30', '192.0.2.0/30')], v6pools: [v6('2001:db8::/126', '2001:db8::/126')] };
  runSteps(
    t,
    [
      { do: 'setGroups', groups: [whole] },
      { do: 'stats', group: 'default', v4: [4n, 0n, 2n], v6: [4n, 0n, 1n] },
      { do: 'allocate', req: { service: 'a', families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' }, want: { group: 'default', addresses: ['192.0.2.1', '2001:db8::1'] } },
      { do: 'allocate', req: { service: 'b', families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' }, want: { group: 'default', addresses: ['192.0.2.2', '2001:db8::2'] } },
      { do: 'allocate', req: { service: 'c', families: ['IPv6'] }, want: { group: 'default', addresses: ['2001:db8::3'] } },
      {
        do: 'allocate',
        req: { service: 'd', families: ['IPv4'] },
        error: 'IPAM_POOL_EXHAUSTED',
        message: /is full \(192\.0\.2\.0\/30\); 2 of their free addresses are never handed out \(excluded, or a subnet's network, broadcast or anycast address\)/,
      },
      { do: 'allocate', req: { service: 'd', families: ['IPv6'] }, error: 'IPAM_POOL_EXHAUSTED', message: /is full \(2001:db8::\/126\); 1 of their free addresses is never handed out/ },
      { do: 'stats', group: 'default', v4: [4n, 2n, 2n], v6: [4n, 3n, 1n] },
      {
        do: 'allocate',
        req: { service: 'e', families: ['IPv4'], addresses: ['192.0.2.3'] },
        error: 'IPAM_ADDRESS_EXCLUDED',
        message: /Service e: address 192\.0\.2\.3 in ServiceGroup "default" is never handed out: it is the broadcast address of subnet 192\.0\.2\.0\/30/,
      },
      {
        do: 'allocate',
        req: { service: 'e', families: ['IPv6'], addresses: ['2001:db8::'] },
        error: 'IPAM_ADDRESS_EXCLUDED',
        message: /2001:db8:: .* is never handed out: it is the subnet-router anycast address of subnet 2001:db8::\/126/,
      },
    ],
    reserving(),
  );
});

t.test('a pool that does not reach the subnet edges loses nothing', async (t) => {
  runSteps(
    t,
    [
      { do: 'setGroups', groups: [{ name: 'default', v4pools: [v4('192.0.2.10-192.0.2.12')] }] },
      { do: 'stats', group: 'default', v4: [3n, 0n, 0n], v6: [0n, 0n, 0n] },
      { do: 'allocate', req: { service: 'a', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    ],
    reserving(),
  );
});

t.test('/31, /32, /127 and /128 subnets hand out every address (RFC 3021, RFC 6164)', async (t) => {
  const p2p: GroupSpec = {
    name: 'default',
    v4pools: [v4('192.0.2.8/31', '192.0.2.8/31'), v4('192.0.2.20/32', '192.0.2.20/32')],
    v6pools: [v6('2001:db8::8/127', '2001:db8::8/127'), v6('2001:db8::20/128', '2001:db8::20/128')],
  };
  const got: string[] = [];
  const ipam = reserving();
  ipam.setGroups([p2p]);
  for (let i = 0; i < 3; i++) got.push(...ipam.allocate({ service: `s${i}`, families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' }).addresses);
  t.same(got, ['192.0.2.8', '2001:db8::8', '192.0.2.9', '2001:db8::9', '192.0.2.20', '2001:db8::20']);
  t.same(ipam.stats('default'), { IPv4: { size: 3n, inUse: 3n, excluded: 0n }, IPv6: { size: 3n, inUse: 3n, excluded: 0n } });
});

t.test('without the option the subnet edges are handed out, as before', async (t) => {
  runSteps(t, [
    { do: 'setGroups', groups: [{ name: 'default', v4pools: [v4('192.0.2.0/30', '192.0.2.0/30')], v6pools: [v6('2001:db8::/64')] }] },
    { do: 'allocate', req: { service: 'a', families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' }, want: { group: 'default', addresses: ['192.0.2.0', '2001:db8::'] } },
    { do: 'allocate', req: { service: 'b', families: ['IPv4'], addresses: ['192.0.2.3'] }, want: { group: 'default', addresses: ['192.0.2.3'] } },
    { do: 'stats', group: 'default', v4: [4n, 2n, 0n], v6: [1n << 64n, 1n, 0n] },
  ]);
});

t.test('a Service that holds a reserved address keeps it and is listed', async (t) => {
  const g: GroupSpec = { name: 'default', v4pools: [v4('192.0.2.0/29')] };
  const ipam = runSteps(
    t,
    [
      { do: 'setGroups', groups: [g] },
      { do: 'adopt', req: { service: 'old', addresses: ['192.0.2.0'] }, want: { group: 'default', addresses: ['192.0.2.0'] } },
      // Asked again (a resync), it keeps the address.
      { do: 'allocate', req: { service: 'old', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.0'] } },
      { do: 'allocate', req: { service: 'old', families: ['IPv4'], addresses: ['192.0.2.0'] }, want: { group: 'default', addresses: ['192.0.2.0'] } },
      { do: 'stats', group: 'default', v4: [8n, 1n, 0n], v6: [0n, 0n, 0n] },
      { do: 'allocate', req: { service: 'new', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.1'] } },
    ],
    reserving(),
  );
  t.same(ipam.heldExclusions(), [{ service: 'old', group: 'default', family: 'IPv4', address: '192.0.2.0', reason: 'it is the network address of subnet 192.0.2.0/24' }]);
  ipam.release('old');
  t.same(ipam.heldExclusions(), []);
  t.same(ipam.stats('default').IPv4, { size: 8n, inUse: 1n, excluded: 1n }, 'released, it counts as excluded again');
});

t.test('excluded addresses: first fit skips them, a specific request is refused naming the reason', async (t) => {
  const g: GroupSpec = { name: 'default', v4pools: [v4('192.0.2.10-192.0.2.20')], v6pools: [v6('2001:db8::10-2001:db8::11')] };
  const node1 = 'Node node-1 reports it as its own (InternalIP)';
  runSteps(t, [
    { do: 'setGroups', groups: [g] },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    {
      do: 'setExclusions',
      exclusions: [
        { address: '192.0.2.10', reason: node1 },
        { address: '192.0.2.11', reason: node1 },
        { address: '192.0.2.13', reason: 'Node node-2 reports it as its own (ExternalIP)' },
        { address: '2001:db8::10', reason: node1 },
        { address: '203.0.113.9', reason: 'outside every pool' },
      ],
      held: ['a=192.0.2.10'],
    },
    { do: 'stats', group: 'default', v4: [11n, 1n, 2n], v6: [2n, 0n, 1n] },
    { do: 'allocate', req: { service: 'b', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.12'] } },
    { do: 'allocate', req: { service: 'c', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.14'] } },
    { do: 'allocate', req: { service: 'd', families: ['IPv6'] }, want: { group: 'default', addresses: ['2001:db8::11'] } },
    { do: 'allocate', req: { service: 'e', families: ['IPv6'] }, error: 'IPAM_POOL_EXHAUSTED' },
    {
      do: 'allocate',
      req: { service: 'f', families: ['IPv4'], addresses: ['192.0.2.13'] },
      error: 'IPAM_ADDRESS_EXCLUDED',
      message: /Service f: address 192\.0\.2\.13 in ServiceGroup "default" is never handed out: Node node-2 reports it as its own \(ExternalIP\)/,
    },
    // The Service that held an address before it was excluded keeps it.
    { do: 'allocate', req: { service: 'a', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'release', service: 'a', want: true },
    { do: 'stats', group: 'default', v4: [11n, 2n, 3n], v6: [2n, 1n, 1n] },
    { do: 'allocate', req: { service: 'g', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.15'] } },
    // Exclusions are replaced whole; bad text changes nothing.
    { do: 'setExclusions', exclusions: [{ address: '192.0.2.10', reason: 'x' }, { address: 'node-1.example', reason: 'x' }], error: 'IPAM_INVALID_REQUEST' },
    { do: 'setExclusions', exclusions: [], held: [] },
    { do: 'allocate', req: { service: 'h', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'stats', group: 'default', v4: [11n, 4n, 0n], v6: [2n, 1n, 0n] },
  ]);
});

t.test('exclusions interleaved with used runs: first fit still finds the lowest free address', async (t) => {
  const ipam = reserving();
  ipam.setGroups([{ name: 'default', v4pools: [v4('192.0.2.0/24')] }]);
  // Used: .1-.3, .7; excluded: .4-.6, .8, .9: the lowest free is .10.
  for (const a of ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.7']) ipam.allocate({ service: a, families: ['IPv4'], addresses: [a] });
  ipam.setExclusions(['192.0.2.4', '192.0.2.5', '192.0.2.6', '192.0.2.8', '192.0.2.9'].map((address) => ({ address, reason: 'test' })));
  t.same(ipam.allocate({ service: 'x', families: ['IPv4'] }).addresses, ['192.0.2.10']);
  // Everything but the broadcast address and an excluded .254: exhausted at the end.
  ipam.setExclusions([{ address: '192.0.2.254', reason: 'test' }]);
  let last = '';
  for (let i = 0; i < 300; i++) {
    const e = catchError(() => (last = ipam.allocate({ service: `fill${i}`, families: ['IPv4'] }).addresses[0]!));
    if (e) {
      t.equal((e as IpamError).code, 'IPAM_POOL_EXHAUSTED', `exhausted after ${i} more`);
      break;
    }
  }
  t.equal(last, '192.0.2.253', 'the last one handed out is .253: .254 is excluded, .255 is the broadcast address');
  t.same(ipam.stats('default').IPv4, { size: 256n, inUse: 253n, excluded: 3n });
});

t.test('exclusionOf says why, for messages', async (t) => {
  const ipam = reserving();
  ipam.setGroups([{ name: 'default', v4pools: [v4('192.0.2.0/28')], v6pools: [v6('2001:db8::/120', '2001:db8::/120')] }]);
  ipam.setExclusions([{ address: '192.0.2.5', reason: 'Node n1 reports it as its own (InternalIP)' }]);
  t.equal(ipam.exclusionOf('192.0.2.5'), 'Node n1 reports it as its own (InternalIP)');
  t.equal(ipam.exclusionOf('192.0.2.0'), 'it is the network address of subnet 192.0.2.0/24');
  t.equal(ipam.exclusionOf('2001:db8::'), 'it is the subnet-router anycast address of subnet 2001:db8::/120');
  t.equal(ipam.exclusionOf('192.0.2.255'), undefined, 'the broadcast address of the subnet, but outside the pool');
  t.equal(ipam.exclusionOf('192.0.2.6'), undefined);
  t.equal(ipam.exclusionOf('not an address'), undefined);
});

t.test('IPv4-mapped IPv6 addresses are refused with the text as written', async (t) => {
  t.equal(ipv4MappedText(parseAddress('::ffff:192.0.2.231')!), '192.0.2.231');
  t.equal(ipv4MappedText(parseAddress('::ffff:c000:2e7')!), '192.0.2.231');
  t.equal(ipv4MappedText(parseAddress('2001:db8::1')!), undefined);
  t.equal(ipv4MappedText(parseAddress('192.0.2.1')!), undefined);
  runSteps(t, [
    { do: 'setGroups', groups: [{ name: 'default', v4pools: [v4('192.0.2.200-192.0.2.239')], v6pools: [v6('2001:db8::200-2001:db8::209')] }] },
    {
      do: 'allocate',
      req: { service: 'a', families: ['IPv4'], addresses: ['::ffff:192.0.2.231'] },
      error: 'IPAM_INVALID_REQUEST',
      message: /Service a: addresses\[0\]: "::ffff:192\.0\.2\.231" is an IPv4-mapped IPv6 address; write the IPv4 address 192\.0\.2\.231/,
    },
    {
      do: 'allocate',
      req: { service: 'a', families: ['IPv6'], addresses: ['::FFFF:c000:2e7'] },
      error: 'IPAM_INVALID_REQUEST',
      message: /"::FFFF:c000:2e7" is an IPv4-mapped IPv6 address; write the IPv4 address 192\.0\.2\.231/,
    },
  ]);
  const e = catchError(() => parsePool({ pool: '::ffff:192.0.2.0/120', subnet: '::ffff:192.0.2.0/120' }, 'g', 'v6pools[0]', 'IPv6'));
  t.ok(e instanceof IpamError && e.code === 'IPAM_INVALID_POOL' && /IPv4-mapped/.test(e.message) && e.context.field === 'v6pools[0].pool', String(e));
});
