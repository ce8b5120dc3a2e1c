// The in-memory handle's own controls: what a consumer's unit test drives.
import t from 'tap';
import { MemoryNetlinkHandle } from '../src/testing/index.ts';

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
