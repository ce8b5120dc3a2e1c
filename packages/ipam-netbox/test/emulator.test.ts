// The emulator itself, over plain HTTP: Netbox's pagination, filters, status codes and
// error bodies, and its control endpoints.
import t from 'tap';
import { DEFAULT_V2_TOKEN } from '../src/testing/index.ts';
import { startEmulator } from './helpers.ts';

const auth = { authorization: `Bearer ${DEFAULT_V2_TOKEN}`, 'content-type': 'application/json' };

async function call(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`${base}${path}`, { method, headers: auth, ...(body === undefined ? {} : { body: JSON.stringify(body) }), redirect: 'manual' });
  const text = await r.text();
  return { status: r.status, body: text && /json/.test(r.headers.get('content-type') ?? '') ? JSON.parse(text) : text };
}

t.test('listens on 127.0.0.1 only', async (t) => {
  const e = await startEmulator(t);
  t.match(e.url, /^http:\/\/127\.0\.0\.1:\d+$/);
});

t.test('pagination: count, next and previous as absolute URLs; limit capped by MAX_PAGE_SIZE', async (t) => {
  const e = await startEmulator(t, { paginateCount: 4, maxPageSize: 6 });
  for (let i = 1; i <= 10; i++) e.addIpAddress({ address: `192.0.2.${i}/24` });
  const first = (await call(e.url, 'GET', '/api/ipam/ip-addresses/')).body as { count: number; next: string; previous: null; results: { address: string }[] };
  t.equal(first.count, 10);
  t.equal(first.results.length, 4, 'PAGINATE_COUNT');
  t.equal(first.previous, null);
  t.equal(first.next, `${e.url}/api/ipam/ip-addresses/?limit=4&offset=4`);
  const second = (await call(e.url, 'GET', new URL(first.next).pathname + new URL(first.next).search)).body as { previous: string; results: { address: string }[] };
  t.equal(second.results[0]!.address, '192.0.2.5/24');
  t.equal(second.previous, `${e.url}/api/ipam/ip-addresses/?limit=4`);
  const big = (await call(e.url, 'GET', '/api/ipam/ip-addresses/?limit=100')).body as { results: unknown[] };
  t.equal(big.results.length, 6, 'MAX_PAGE_SIZE');
});

t.test('filters: tenant, status, family, parent, description, description__isw; bad values are 400', async (t) => {
  const e = await startEmulator(t);
  e.addTenant('A', 'a');
  e.addIpAddress({ address: '192.0.2.1/24', tenant: 'a', description: 'PureLB:x/y' });
  e.addIpAddress({ address: '192.0.2.2/24', tenant: 'a', status: 'reserved' });
  e.addIpAddress({ address: '198.51.100.1/24', description: 'purelb:z/w' });
  e.addIpAddress({ address: '2001:db8::1/64', tenant: 'a' });
  const addrs = async (q: string): Promise<string[]> => ((await call(e.url, 'GET', `/api/ipam/ip-addresses/?${q}`)).body as { results: { address: string }[] }).results.map((x) => x.address);
  t.same(await addrs('tenant_id=1'), ['192.0.2.1/24', '192.0.2.2/24', '2001:db8::1/64']);
  t.same(await addrs('tenant=a&status=reserved'), ['192.0.2.2/24']);
  t.same(await addrs('family=6'), ['2001:db8::1/64']);
  t.same(await addrs('parent=192.0.2.0/24'), ['192.0.2.1/24', '192.0.2.2/24']);
  t.same(await addrs('description__isw=purelb:'), ['192.0.2.1/24', '198.51.100.1/24'], 'case-insensitive');
  t.same(await addrs('description=purelb:z/w'), ['198.51.100.1/24']);
  t.same((await call(e.url, 'GET', '/api/ipam/ip-addresses/?tenant_id=9')).body, { tenant_id: ['Select a valid choice. 9 is not one of the available choices.'] });
  t.equal((await call(e.url, 'GET', '/api/ipam/ip-addresses/?status=bogus')).status, 400);
});

t.test('available-ips: GET lists, POST creates (one or a list), 400 field errors, 409 when full, 404 for no parent', async (t) => {
  const e = await startEmulator(t);
  e.addTenant('A', 'a');
  e.addPrefix({ prefix: '192.0.2.0/29' });
  const avail = (await call(e.url, 'GET', '/api/ipam/prefixes/1/available-ips/?limit=3')).body as { address: string }[];
  t.same(avail.map((x) => x.address), ['192.0.2.1/29', '192.0.2.2/29', '192.0.2.3/29']);
  const one = await call(e.url, 'POST', '/api/ipam/prefixes/1/available-ips/', { status: 'active', tenant: 1, description: 'd' });
  t.equal(one.status, 201);
  t.match(one.body, { address: '192.0.2.1/29', status: { value: 'active' }, tenant: { slug: 'a' }, description: 'd' });
  const list = await call(e.url, 'POST', '/api/ipam/prefixes/1/available-ips/', [{}, {}]);
  t.same((list.body as { address: string }[]).map((x) => x.address), ['192.0.2.2/29', '192.0.2.3/29']);
  const bad = await call(e.url, 'POST', '/api/ipam/prefixes/1/available-ips/', { status: 'bogus', tenant: 99 });
  t.equal(bad.status, 400);
  t.same(bad.body, { status: ['"bogus" is not a valid choice.'], tenant: ['Related object not found using the provided numeric ID: 99'] });
  const full = await call(e.url, 'POST', '/api/ipam/prefixes/1/available-ips/', [{}, {}, {}, {}]);
  t.equal(full.status, 409);
  t.same(full.body, { detail: 'An insufficient number of IP addresses are available within 192.0.2.0/29 (4 requested, 3 available)' });
  t.same(await call(e.url, 'POST', '/api/ipam/ip-ranges/5/available-ips/', {}), { status: 404, body: { detail: 'No IPRange matches the given query.' } });
  const patched = await call(e.url, 'PATCH', '/api/ipam/ip-addresses/1/', { status: 'reserved', description: '' });
  t.match(patched.body, { status: { value: 'reserved', label: 'Reserved' }, description: '' });
  t.equal((await call(e.url, 'DELETE', '/api/ipam/ip-addresses/1/')).status, 204);
  t.equal((await call(e.url, 'DELETE', '/api/ipam/ip-addresses/1/')).status, 404);
});

t.test('control endpoints: seed, faults, state', async (t) => {
  const e = await startEmulator(t);
  const seeded = await call(e.url, 'POST', '/__emulator/seed', { tenants: [{ name: 'K', slug: 'k' }], prefixes: [{ prefix: '192.0.2.0/24', tenant: 'k' }] });
  t.same(seeded.body, { tenants: [{ id: 1, name: 'K', slug: 'k' }], prefixes: [{ id: 1 }], ipRanges: [], ipAddresses: [] });
  await call(e.url, 'POST', '/api/ipam/prefixes/1/available-ips/', { description: 'purelb:a/b' });
  const state = (await call(e.url, 'GET', '/__emulator/state')).body as { ipAddresses: { id: number; address: string; description: string }[] };
  t.same(state.ipAddresses, [{ id: 1, address: '192.0.2.1/24', status: 'active', description: 'purelb:a/b', tenant: null }]);
  await call(e.url, 'POST', '/__emulator/faults', { down: '503' });
  t.equal((await call(e.url, 'GET', '/api/status/')).status, 503);
  await call(e.url, 'POST', '/__emulator/faults', { down: false });
  t.equal((await call(e.url, 'GET', '/api/status/')).status, 200);
});
