// Fixtures of Netbox 4.x response bodies (written from its documented API) through the
// parsers, and the emulator's own bodies through the same parsers with the same keys.
import t from 'tap';
import { parseErrorBody, parseIpAddress, parseIpRange, parsePage, parsePrefix, parseTenant, splitCidr } from '../src/index.ts';
import { DEFAULT_V1_TOKEN } from '../src/testing/index.ts';
import { fixture, startEmulator, throwsNetbox } from './helpers.ts';

t.test('prefix objects', async (t) => {
  const p = parsePrefix(fixture('prefix.json'));
  t.same(p, { id: 12, prefix: '192.0.2.0/24', family: 'IPv4', tenant: { id: 5, name: 'Kubernetes', slug: 'kubernetes' }, status: 'active', isPool: false });
  const v6 = parsePrefix(fixture('prefix-v6-pool.json'));
  t.equal(v6.family, 'IPv6');
  t.equal(v6.isPool, true);
  t.equal(v6.tenant, null);
});

t.test('ip-range objects', async (t) => {
  const r = parseIpRange(fixture('ip-range.json'));
  t.same(r, { id: 7, startAddress: '198.51.100.10/24', endAddress: '198.51.100.20/24', family: 'IPv4', size: 11, tenant: { id: 5, name: 'Kubernetes', slug: 'kubernetes' }, status: 'active' });
});

t.test('ip-address objects and a paginated list', async (t) => {
  const a = parseIpAddress(fixture('ip-address-created.json'));
  t.same(a, { id: 301, ip: '192.0.2.1', maskLength: 24, family: 'IPv4', status: 'active', tenant: { id: 5, name: 'Kubernetes', slug: 'kubernetes' }, description: 'purelb:shop/web', dnsName: '' });
  const page = parsePage(fixture('ip-addresses-page.json'), parseIpAddress);
  t.equal(page.count, 3);
  t.match(page.next, /offset=2/);
  t.same(page.results.map((x) => [x.ip, x.maskLength, x.description]), [
    ['192.0.2.1', 24, 'purelb:shop/web'],
    ['2001:db8:0:1::5', 64, 'purelb:sharing-key:web'],
  ]);
  t.equal(page.results[0]!.dnsName, 'web.shop.example.com');
  const tenants = parsePage(fixture('tenants-page.json'), (x) => parseTenant(x));
  t.same(tenants.results, [{ id: 5, name: 'Kubernetes', slug: 'kubernetes' }]);
  t.equal(tenants.next, null);
});

t.test('error bodies', async (t) => {
  t.same(parseErrorBody(fixture('error-409-insufficient.json')), { detail: 'An insufficient number of IP addresses are available within 192.0.2.0/30 (1 requested, 0 available)' });
  t.same(parseErrorBody(fixture('error-403-invalid-token.json')), { detail: 'Invalid v1 token' });
  t.same(parseErrorBody(fixture('error-404-prefix.json')), { detail: 'No Prefix matches the given query.' });
  t.same(parseErrorBody(fixture('error-400-fields.json')), {
    fields: { status: ['"bogus" is not a valid choice.'], tenant: ['Related object not found using the provided numeric ID: 99'] },
  });
  t.same(parseErrorBody([{ status: ['bad'] }]), { fields: { status: ['bad'] } }, 'a bulk 400 is a list');
  t.same(parseErrorBody('text'), {});
});

t.test('bodies that are not the documented shape are NETBOX_BAD_RESPONSE naming the field', async (t) => {
  const base = fixture('ip-address-created.json') as Record<string, unknown>;
  const cases: [unknown, RegExp][] = [
    [{ ...base, id: 'x' }, /field "id" is not an integer/],
    [{ ...base, address: 'nonsense' }, /field "address" "nonsense" is not an address/],
    [{ ...base, address: '192.0.2.1/40' }, /bad mask length/],
    [{ ...base, family: { value: 5 } }, /field "family"/],
    [{ ...base, status: 7 }, /field "status"/],
    [[], /expected a JSON object/],
    [null, /expected a JSON object/],
  ];
  for (const [body, msg] of cases) {
    throwsNetbox(t, () => parseIpAddress(body), 'NETBOX_BAD_RESPONSE', msg);
  }
  t.throws(() => parsePage({ count: 1, next: 3, results: [] }, parseIpAddress), /field "next"/);
  t.throws(() => parsePage({ count: 1, next: null, results: {} }, parseIpAddress), /field "results"/);
  t.same(splitCidr('2001:DB8::0:1/64', 'x', 'address'), { ip: '2001:db8::1', family: 'IPv6', maskLength: 64, value: 0x20010db8000000000000000000000001n }, 'canonical text');
});

t.test("the emulator's bodies have the fixtures' keys and parse the same way", async (t) => {
  const e = await startEmulator(t);
  e.addTenant('Kubernetes', 'kubernetes');
  e.addPrefix({ prefix: '192.0.2.0/24', tenant: 'kubernetes' });
  e.addIpRange({ start: '198.51.100.10/24', end: '198.51.100.20/24', tenant: 'kubernetes' });
  e.addIpAddress({ address: '192.0.2.1/24', tenant: 'kubernetes', description: 'purelb:shop/web' });
  const get = async (path: string): Promise<Record<string, unknown>> => {
    const r = await fetch(`${e.url}${path}`, { headers: { authorization: `Token ${DEFAULT_V1_TOKEN}` } });
    t.equal(r.status, 200, path);
    t.match(r.headers.get('content-type'), /application\/json/);
    return (await r.json()) as Record<string, unknown>;
  };
  const keys = (o: unknown): string[] => Object.keys(o as object).sort();
  const prefix = await get('/api/ipam/prefixes/1/');
  t.same(keys(prefix), keys(fixture('prefix.json')), 'prefix keys');
  t.same(parsePrefix(prefix).prefix, '192.0.2.0/24');
  const range = await get('/api/ipam/ip-ranges/1/');
  t.same(keys(range), keys(fixture('ip-range.json')), 'ip-range keys');
  t.equal(parseIpRange(range).size, 11);
  const ip = await get('/api/ipam/ip-addresses/1/');
  t.same(keys(ip), keys(fixture('ip-address-created.json')), 'ip-address keys');
  t.same(keys(ip.tenant), keys((fixture('ip-address-created.json') as Record<string, unknown>).tenant), 'nested tenant keys');
  const page = await get('/api/ipam/ip-addresses/?limit=1');
  t.same(keys(page), keys(fixture('ip-addresses-page.json')), 'list keys');
  const avail = (await get('/api/ipam/prefixes/1/available-ips/?limit=2')) as unknown as Record<string, unknown>[];
  const documented = fixture('available-ips.json') as Record<string, unknown>[];
  t.same(keys(avail[0]), keys(documented[0]), 'available-ips item keys');
  t.same(avail.map((x) => splitCidr(String(x.address), 'available', 'address').ip), ['192.0.2.2', '192.0.2.3'], 'the free addresses, lowest first');
  const tenants = await get('/api/tenancy/tenants/?slug=kubernetes');
  t.same(parsePage(tenants, (x) => parseTenant(x)).results, [{ id: 1, name: 'Kubernetes', slug: 'kubernetes' }]);
});
