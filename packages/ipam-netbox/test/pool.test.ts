// NetboxPool against the emulator: resolving the source, allocating one address at a
// time, release, adoption listing, legacy reserved mode, every error path, concurrency.
import t from 'tap';
import { NetboxPool } from '../src/index.ts';
import { clientFor, rejectsNetbox, startEmulator, throwsNetbox, within } from './helpers.ts';

t.test('resolve by prefix id, prefix text, range id, or tenant', async (t) => {
  const e = await startEmulator(t);
  e.addTenant('Kubernetes', 'k8s');
  e.addTenant('Other', 'other');
  e.addPrefix({ prefix: '203.0.113.0/24', tenant: 'other' });
  const p4 = e.addPrefix({ prefix: '192.0.2.0/24', tenant: 'k8s' });
  e.addPrefix({ prefix: '2001:db8:1::/64', tenant: 'k8s' });
  const r = e.addIpRange({ start: '198.51.100.10/24', end: '198.51.100.20/24', tenant: 'k8s' });
  const c = clientFor(t, e);

  const byId = await new NetboxPool(c, { prefixId: p4.id }).resolve();
  t.same(Object.keys(byId.sources), ['IPv4']);
  t.equal(byId.sources.IPv4!.label, 'prefix 192.0.2.0/24');
  t.equal(byId.sources.IPv4!.size, 254n, 'network and broadcast are not handed out');
  const byText = await new NetboxPool(c, { prefix: '192.0.2.0/24', tenant: 'Kubernetes' }).resolve();
  t.equal(byText.sources.IPv4!.id, p4.id);
  t.same(byText.tenant, { id: 1, name: 'Kubernetes', slug: 'k8s' }, 'tenant found by name when no slug matches');
  const byRange = await new NetboxPool(c, { ipRangeId: r.id }).resolve();
  t.equal(byRange.sources.IPv4!.label, `ip-range ${r.id} (198.51.100.10-198.51.100.20)`);
  t.equal(byRange.sources.IPv4!.size, 11n);
  const byTenant = await new NetboxPool(c, { tenant: 'k8s' }).resolve();
  t.same(
    Object.values(byTenant.sources).map((s) => [s.family, s.label, s.size]),
    [
      ['IPv4', 'prefix 192.0.2.0/24', 254n],
      ['IPv6', 'prefix 2001:db8:1::/64', (1n << 64n) - 1n],
    ],
    "the tenant's first prefix of each family",
  );
});

t.test('a source that does not exist is NETBOX_PREFIX_NOT_FOUND / NETBOX_TENANT_NOT_FOUND naming it', async (t) => {
  const e = await startEmulator(t);
  e.addTenant('Kubernetes', 'k8s');
  const c = clientFor(t, e);
  await rejectsNetbox(t, new NetboxPool(c, { prefixId: 99 }).resolve(), 'NETBOX_PREFIX_NOT_FOUND', /prefix 99 does not exist \(No Prefix matches the given query\.\)/);
  await rejectsNetbox(t, new NetboxPool(c, { ipRangeId: 4 }).resolve(), 'NETBOX_PREFIX_NOT_FOUND', /ip-range 4 does not exist/);
  const err = await rejectsNetbox(t, new NetboxPool(c, { prefix: '192.0.2.0/24' }).resolve(), 'NETBOX_PREFIX_NOT_FOUND', /prefix 192\.0\.2\.0\/24 does not exist/);
  t.match(err?.message, new RegExp(`Netbox ${e.url}/api`), 'names the Netbox URL');
  await rejectsNetbox(t, new NetboxPool(c, { tenant: 'k8s' }).resolve(), 'NETBOX_PREFIX_NOT_FOUND', /any prefix of tenant "k8s" does not exist/);
  await rejectsNetbox(t, new NetboxPool(c, { tenant: 'nobody' }).resolve(), 'NETBOX_TENANT_NOT_FOUND', /tenant "nobody" does not exist/);
  throwsNetbox(t, () => new NetboxPool(c, {}), 'NETBOX_INVALID_CONFIG', /name a prefix/);
  throwsNetbox(t, () => new NetboxPool(c, { prefixId: 1, ipRangeId: 2 }), 'NETBOX_INVALID_CONFIG', /not both/);
  throwsNetbox(t, () => new NetboxPool(c, { legacyReserved: true, prefixId: 1 }), 'NETBOX_INVALID_CONFIG', /needs a tenant/);
});

t.test('allocate records tenant and Service; release deletes; held() lists what we hold', async (t) => {
  const e = await startEmulator(t);
  e.addTenant('Kubernetes', 'k8s');
  e.addPrefix({ prefix: '192.0.2.0/29', tenant: 'k8s' });
  e.addPrefix({ prefix: '2001:db8::/126', tenant: 'k8s' });
  e.addIpAddress({ address: '192.0.2.1/29', description: 'router' });
  const pool = new NetboxPool(clientFor(t, e), { tenant: 'k8s' });
  const a = await pool.allocate('shop/web', 'IPv4', { dnsName: 'web.shop.example.com' });
  t.same({ ...a, id: 0 }, { id: 0, address: '192.0.2.2', family: 'IPv4', maskLength: 29, holder: 'shop/web' }, 'lowest free, skipping the network and a used address');
  const b = await pool.allocate('shop/db', 'IPv6');
  t.equal(b.address, '2001:db8::1', 'the IPv6 subnet-router anycast address is skipped');
  t.same(e.addressSummary().filter((x) => x.description.startsWith('purelb:')), [
    { address: '192.0.2.2/29', status: 'active', description: 'purelb:shop/web', tenant: 'k8s' },
    { address: '2001:db8::1/126', status: 'active', description: 'purelb:shop/db', tenant: 'k8s' },
  ]);
  t.equal(e.ipAddresses().find((x) => x.id === a.id)?.dnsName, 'web.shop.example.com');
  e.addIpAddress({ address: '192.0.2.6/29', tenant: 'k8s', description: 'purelb:' }, );
  e.addIpAddress({ address: '203.0.113.9/24', tenant: 'k8s', description: 'purelb:elsewhere/x' });
  const held = await pool.held();
  t.same(held.map((h) => [h.address, h.holder]).sort(), [['192.0.2.2', 'shop/web'], ['2001:db8::1', 'shop/db']], 'only ours, only inside our prefixes');
  const moved = await pool.relabel(b, 'shop/db2');
  t.equal(moved.holder, 'shop/db2');
  t.equal(e.ipAddresses().find((x) => x.id === b.id)?.description, 'purelb:shop/db2', 'relabel records another holder');
  t.equal(await pool.release(b), 'not-ours', 'the old holder no longer owns it');
  t.equal(await pool.release(a), 'released');
  t.notOk(e.ipAddresses().some((x) => x.id === a.id), 'DELETEd');
  t.equal(await pool.release(a), 'already-gone');
  const c2 = await pool.allocate('shop/other', 'IPv4');
  t.equal(c2.address, '192.0.2.2', 'a released address is handed out again');
  const rec = e.ipAddresses().find((x) => x.id === c2.id)!;
  e.deleteIpAddress(c2.id);
  e.addIpAddress({ address: '192.0.2.2/29', description: 'someone else' });
  t.equal(await pool.release({ ...c2, id: rec.id }), 'already-gone');
  const other = e.ipAddresses().find((x) => x.description === 'someone else')!;
  t.equal(await pool.release({ ...c2, id: other.id }), 'not-ours', 'an address re-purposed by a person is left alone');
  t.ok(e.ipAddresses().some((x) => x.id === other.id));
});

t.test('exhaustion and a family the group lacks', async (t) => {
  const e = await startEmulator(t);
  const p = e.addPrefix({ prefix: '192.0.2.0/30' });
  const pool = new NetboxPool(clientFor(t, e), { prefixId: p.id });
  t.equal((await pool.allocate('a/one', 'IPv4')).address, '192.0.2.1');
  t.equal((await pool.allocate('a/two', 'IPv4')).address, '192.0.2.2');
  const err = await rejectsNetbox(t, pool.allocate('a/three', 'IPv4'), 'NETBOX_EXHAUSTED', /prefix 192\.0\.2\.0\/30 has no free address for Service a\/three/);
  t.equal(err?.context.service, 'a/three');
  t.equal(err?.context.prefix, 'prefix 192.0.2.0/30');
  t.match(err?.context.detail, /insufficient number of IP addresses are available within 192\.0\.2\.0\/30 \(1 requested, 0 available\)/);
  await rejectsNetbox(t, pool.allocate('a/v6', 'IPv6'), 'NETBOX_FAMILY_UNAVAILABLE', /no IPv6 prefix or range to allocate from for Service a\/v6 \(only prefix 192\.0\.2\.0\/30\)/);
  const r = e.addIpRange({ start: '198.51.100.10/24', end: '198.51.100.11/24' });
  const range = new NetboxPool(clientFor(t, e), { ipRangeId: r.id });
  t.equal((await range.allocate('r/1', 'IPv4')).maskLength, 24, 'a range hands out addresses with its mask');
  await range.allocate('r/2', 'IPv4');
  await rejectsNetbox(t, range.allocate('r/3', 'IPv4'), 'NETBOX_EXHAUSTED', /ip-range 1 \(198\.51\.100\.10-198\.51\.100\.11\) has no free address/);
});

t.test('errors of allocation name the URL, the prefix and the Service', async (t) => {
  const e = await startEmulator(t);
  const p = e.addPrefix({ prefix: '192.0.2.0/24' });
  const pool = new NetboxPool(clientFor(t, e, { retries: 1 }), { prefixId: p.id });
  await pool.resolve();
  e.faults.down = '503';
  const down = await rejectsNetbox(t, pool.allocate('shop/web', 'IPv4'), 'NETBOX_UNAVAILABLE');
  t.match(down?.message, /^prefix 192\.0\.2\.0\/24, Service shop\/web: Netbox POST http:\/\/127\.0\.0\.1:\d+\/api\/ipam\/prefixes\/1\/available-ips\/: HTTP 503/);
  t.equal(down?.context.service, 'shop/web');
  e.faults.down = false;
  e.faults.login = 'redirect';
  await rejectsNetbox(t, pool.allocate('shop/web', 'IPv4'), 'NETBOX_LOGIN_REDIRECT', /Service shop\/web/);
  e.faults.login = false;
  const bad = new NetboxPool(clientFor(t, e), { prefixId: p.id, descriptionPrefix: 'x'.repeat(199) });
  const err = await rejectsNetbox(t, bad.allocate('shop/web', 'IPv4'), 'NETBOX_BAD_REQUEST', /description: Ensure this field has no more than 200 characters/);
  t.same(err?.context.fields, { description: ['Ensure this field has no more than 200 characters.'] });
  t.equal(e.ipAddresses().length, 0, 'nothing was created by the failures');
});

t.test('a POST whose answer was lost is not repeated blindly: the address it made is found and used', async (t) => {
  const e = await startEmulator(t);
  const p = e.addPrefix({ prefix: '192.0.2.0/24' });
  // The first POST is carried out but its answer arrives after the client's timeout; the
  // retry comes after at least 250 ms of backoff, when the first one has committed.
  e.faults.allocationMs = 300;
  const pool = new NetboxPool(clientFor(t, e, { timeoutMs: 150, retries: 3, backoffBaseMs: 500, backoffMaxMs: 500 }), { prefixId: p.id });
  const a = await within(5000, pool.allocate('shop/web', 'IPv4'), 'allocate');
  t.equal(a.address, '192.0.2.1');
  t.equal(e.ipAddresses().length, 1, 'exactly one address exists for the Service');
  t.equal(e.requests.filter((r) => r.method === 'POST').length, 1, 'the POST was not sent again');
});

t.test('legacy mode: the tenant\'s first reserved address becomes active; release puts it back', async (t) => {
  const e = await startEmulator(t);
  e.addTenant('Kubernetes', 'k8s');
  e.addIpAddress({ address: '192.0.2.20/24', tenant: 'k8s', status: 'reserved' });
  e.addIpAddress({ address: '192.0.2.10/24', tenant: 'k8s', status: 'reserved' });
  e.addIpAddress({ address: '192.0.2.5/24', status: 'reserved' });
  e.addIpAddress({ address: '2001:db8::20/64', tenant: 'k8s', status: 'reserved' });
  const pool = new NetboxPool(clientFor(t, e), { tenant: 'k8s', legacyReserved: true });
  const r = await pool.resolve();
  t.same(Object.values(r.sources).map((s) => [s.family, s.kind, s.size]), [['IPv4', 'reserved', 2n], ['IPv6', 'reserved', 1n]]);
  const a = await pool.allocate('shop/web', 'IPv4');
  t.equal(a.address, '192.0.2.10', 'lowest reserved address of the tenant');
  t.equal((await pool.allocate('shop/web', 'IPv4')).id, a.id, 'asking again for the same Service returns what it holds');
  const b = await pool.allocate('shop/db', 'IPv4');
  t.equal(b.address, '192.0.2.20');
  await rejectsNetbox(t, pool.allocate('shop/x', 'IPv4'), 'NETBOX_EXHAUSTED', /reserved IPv4 addresses of tenant "k8s" has no free address for Service shop\/x/);
  t.same((await pool.held()).map((h) => h.address), ['192.0.2.10', '192.0.2.20']);
  t.equal(await pool.release(a), 'released');
  t.same(e.addressSummary().find((x) => x.address === '192.0.2.10/24'), { address: '192.0.2.10/24', status: 'reserved', description: '', tenant: 'k8s' }, 'back to reserved, description cleared');
  t.same((await pool.held()).map((h) => h.address), ['192.0.2.20']);
  throwsNetbox(t, () => new NetboxPool(clientFor(t, e), { legacyReserved: true, ipRangeId: 1, tenant: 'k8s' }), 'NETBOX_INVALID_CONFIG', /not from an IP range/);
});

t.test('50 concurrent allocations get 50 distinct addresses (the emulator serializes like the advisory lock)', async (t) => {
  const e = await startEmulator(t);
  e.faults.allocationMs = 2;
  const p = e.addPrefix({ prefix: '192.0.2.0/24' });
  const c = clientFor(t, e);
  // Several pools (as several allocator replicas would be) so the client-side limit does not serialize them.
  const pools = Array.from({ length: 5 }, () => new NetboxPool(c, { prefixId: p.id, concurrency: 50 }));
  const got = await within(15_000, Promise.all(Array.from({ length: 50 }, (_, i) => pools[i % 5]!.allocate(`ns/s${i}`, 'IPv4'))), '50 allocations');
  const addrs = new Set(got.map((g) => g.address));
  t.equal(addrs.size, 50, '50 distinct addresses');
  t.equal(e.ipAddresses().length, 50);
  t.same(new Set(e.ipAddresses().map((x) => x.description)).size, 50, 'each recorded for its Service');
});
