// The in-memory handle's own controls: what a consumer's unit test drives.
import t from 'tap';
import { MemoryNetlinkHandle, MemorySegment } from '../src/testing/index.ts';

t.test('announcements are recorded; refused permissions look like the kernel', async (t) => {
  const h = new MemoryNetlinkHandle();
  t.teardown(() => h.close());
  const eth = h.addLink({ name: 'eth0', mac: '02:00:5e:00:53:01' });
  await h.announce('eth0', '192.0.2.1');
  await h.announce(eth.index, '2001:db8::1', { count: 2, intervalMs: 1 });
  t.match(h.announcements, [
    { link: { name: 'eth0', mac: '02:00:5e:00:53:01' }, family: 'IPv4', address: '192.0.2.1', framesPerRound: 2, count: 1 },
    { family: 'IPv6', address: '2001:db8::1', framesPerRound: 1, count: 2 },
  ]);
  await t.rejects(h.announce('lo', '192.0.2.1'), { code: 'NETLINK_INVALID_ARGUMENT' }, 'no MAC on loopback');
  h.denyChanges = true;
  await t.rejects(h.addAddress('eth0', '192.0.2.1/24'), { code: 'NETLINK_PERMISSION', context: { errno: 'EPERM' } });
  await t.rejects(h.announce('eth0', '192.0.2.1'), { code: 'NETLINK_PERMISSION', message: /CAP_NET_RAW/ });
  await t.rejects(h.ensureVirtualLink('kube-lb0'), { code: 'NETLINK_PERMISSION' });
  t.same(await h.listAddresses({ link: 'eth0' }), [], 'reads still work, nothing changed');
  t.equal(h.announcements.length, 2);
});

t.test('removing a link takes its addresses and routes; overflow yields one resync', async (t) => {
  const h = new MemoryNetlinkHandle({ subscriptionBacklog: 3 });
  t.teardown(() => h.close());
  h.addLink({ name: 'eth0' });
  await h.addAddress('eth0', '192.0.2.1/24');
  h.setDefaultRoute('IPv4', 'eth0', { gateway: '192.0.2.254' });
  t.match(await h.defaultRoute('IPv4'), { gateway: '192.0.2.254', link: { name: 'eth0' } });
  const sub = h.subscribe();
  h.removeLink('eth0');
  t.equal(await h.defaultRoute('IPv4'), undefined);
  t.same(await h.listAddresses(), []);
  const it = sub[Symbol.asyncIterator]();
  t.match((await it.next()).value, { kind: 'address-removed', address: { address: '192.0.2.1' } });
  t.match((await it.next()).value, { kind: 'link-removed', link: { name: 'eth0' } });
  for (let i = 0; i < 5; i++) h.addLink({ name: `x${i}` });
  t.same((await it.next()).value, { kind: 'resync' }, 'the backlog collapsed into one resync');
  sub.close();
  t.equal((await it.next()).done, true);
});

t.test('a link without carrier answers no probe and keeps its addresses; the change is announced', async (t) => {
  let now = 0;
  const sleep = (ms: number): Promise<void> => {
    now += ms;
    return Promise.resolve();
  };
  const lan = new MemorySegment();
  const a = new MemoryNetlinkHandle({ now: () => now, sleep });
  const b = new MemoryNetlinkHandle({ now: () => now, sleep });
  t.teardown(() => {
    a.close();
    b.close();
  });
  a.addLink({ name: 'eth0', mac: '02:00:5e:00:53:0a', segment: lan });
  b.addLink({ name: 'eth0', mac: '02:00:5e:00:53:0b', segment: lan });
  await a.addAddress('eth0', '192.0.2.80/24');
  const sub = a.subscribe();
  const it = sub[Symbol.asyncIterator]();
  a.setCarrier('eth0', false);
  t.match((await it.next()).value, { kind: 'link-updated', link: { name: 'eth0', up: true, operState: 'down' } });
  t.same(lan.holders('192.0.2.80'), [], 'nobody hears it');
  t.same(await b.probeAddress('eth0', '192.0.2.80'), { conflict: false });
  await t.rejects(a.probeAddress('eth0', '192.0.2.81'), { code: 'NETLINK_PROBE_FAILED', message: /no carrier/ });
  t.equal((await a.listAddresses({ link: 'eth0' })).length, 1, 'the address stays on the link');
  a.setCarrier('eth0', true);
  t.match((await it.next()).value, { kind: 'link-updated', link: { up: true, operState: 'unknown' } });
  t.same(lan.holders('192.0.2.80'), ['02:00:5e:00:53:0a']);
  t.match(await b.probeAddress('eth0', '192.0.2.80'), { conflict: true, mac: '02:00:5e:00:53:0a' });
  sub.close();
});

t.test('removalTime: an expired address stays until the kernel removes it', async (t) => {
  let now = 0;
  const lan = new MemorySegment();
  // Lifetimes checked on whole seconds, 300 ms after each.
  const h = new MemoryNetlinkHandle({ now: () => now, sleep: () => new Promise(() => undefined), removalTime: (end) => Math.ceil((end - 300) / 1000) * 1000 + 300 });
  t.teardown(() => h.close());
  h.addLink({ name: 'eth0', mac: '02:00:5e:00:53:0c', segment: lan });
  now = 1500;
  await h.addAddress('eth0', '192.0.2.80/24', { validLifetime: 1, preferredLifetime: 1 });
  now = 2600;
  t.same(lan.holders('192.0.2.80'), ['02:00:5e:00:53:0c'], 'past its lifetime, before the check');
  t.match(await h.listAddresses({ link: 'eth0' }), [{ address: '192.0.2.80', validLifetime: 0 }]);
  now = 3300;
  t.same(lan.holders('192.0.2.80'), [], 'removed at the check');
  t.same(await h.listAddresses({ link: 'eth0' }), []);
});
