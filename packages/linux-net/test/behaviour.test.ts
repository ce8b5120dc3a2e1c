// One behavioural table, run against the kernel (in a namespace the test makes) and
// against the in-memory handle, so the test double keeps the real handle's contract.
import t from 'tap';
import { NetlinkError, PURELB_ADDRESS_PROTOCOL, type InterfaceAddress, type NetChange } from '../src/index.ts';
import { WORLDS, memoryWorldWithKind, nextMatching, type World } from './fixtures.ts';

const byAddress = (list: InterfaceAddress[], address: string): InterfaceAddress | undefined => list.find((a) => a.address === address);

for (const [name, makeWorld] of WORLDS) {
  t.test(`${name}: addresses`, async (t) => {
    const w: World = makeWorld(t);
    await w.addLink('lan0', 'bridge');
    const h = w.handle;

    t.test('v4 add is idempotent and listed with its prefix', async (t) => {
      t.equal(await h.addAddress('lan0', '192.0.2.10/24'), true, 'first add adds');
      t.equal(await h.addAddress('lan0', '192.0.2.10/24'), false, 'second add is a no-op, not an error');
      const list = (await h.listAddresses({ link: 'lan0', family: 'IPv4' })).filter((a) => a.address === '192.0.2.10');
      t.equal(list.length, 1, 'exactly one copy');
      t.match(list[0], { family: 'IPv4', prefixLength: 24, validLifetime: Infinity, flags: { permanent: true, noprefixroute: false } });
    });

    t.test('v6 add with nodad, noprefixroute and lifetimes', async (t) => {
      t.equal(await h.addAddress('lan0', '2001:db8:0:1::a/64', { nodad: true, noprefixroute: true, validLifetime: 300, preferredLifetime: 100 }), true);
      const a = byAddress(await h.listAddresses({ link: 'lan0', family: 'IPv6' }), '2001:db8:0:1::a');
      t.ok(a, 'listed');
      t.match(a, { family: 'IPv6', prefixLength: 64, flags: { nodad: true, noprefixroute: true, permanent: false, tentative: false } });
      t.ok(a!.validLifetime <= 300 && a!.validLifetime >= 295, `valid lifetime ${a!.validLifetime} near 300`);
      t.ok(a!.preferredLifetime <= 100 && a!.preferredLifetime >= 95, `preferred lifetime ${a!.preferredLifetime} near 100`);
      t.equal(await h.addAddress('lan0', '2001:db8:0:1::a/64', { nodad: true }), false, 'already there');
    });

    t.test('replace updates lifetimes and flags in place', async (t) => {
      await h.replaceAddress('lan0', '2001:db8:0:1::a/64', { nodad: true });
      const a = byAddress(await h.listAddresses({ link: 'lan0' }), '2001:db8:0:1::a');
      t.match(a, { validLifetime: Infinity, preferredLifetime: Infinity, flags: { noprefixroute: false, permanent: true } });
      await h.replaceAddress('lan0', '198.51.100.7/25', { validLifetime: 60 });
      const b = byAddress(await h.listAddresses({ link: 'lan0' }), '198.51.100.7');
      t.ok(b && b.validLifetime <= 60 && b.validLifetime >= 55, 'replace adds an absent address with its lifetime');
    });

    t.test('delete is idempotent; without a prefix length any length matches', async (t) => {
      t.equal(await h.deleteAddress('lan0', '192.0.2.10/24'), true);
      t.equal(await h.deleteAddress('lan0', '192.0.2.10/24'), false, 'deleting a gone address is not an error');
      t.equal(await h.deleteAddress('lan0', '2001:db8:0:1::a'), true);
      t.equal(await h.deleteAddress('lan0', '2001:db8:0:1::a'), false);
      t.equal(await h.deleteAddress('lan0', '198.51.100.7'), true);
      const left = await h.listAddresses({ link: 'lan0' });
      t.notOk(left.some((a) => ['192.0.2.10', '2001:db8:0:1::a', '198.51.100.7'].includes(a.address)), 'all gone');
    });

    t.test('addresses by link index, and v6 text in canonical form', async (t) => {
      const lan = await h.getLink('lan0');
      t.equal(await h.addAddress(lan.index, '2001:0DB8:0000:0000:0000:0000:0000:00b1/128', { nodad: true }), true);
      t.ok(byAddress(await h.listAddresses({ link: lan.index }), '2001:db8::b1'), 'listed in RFC 5952 form');
      t.equal(await h.deleteAddress(lan.index, '2001:db8::b1/128'), true);
    });

    t.test('the protocol mark: set on add and replace, reported on list, reset by a replace without it', async (t) => {
      t.equal(await h.addAddress('lan0', '192.0.2.40/24', { protocol: PURELB_ADDRESS_PROTOCOL }), true);
      t.equal(await h.addAddress('lan0', '2001:db8:0:4::40/64', { nodad: true, protocol: PURELB_ADDRESS_PROTOCOL }), true);
      t.equal(await h.addAddress('lan0', '203.0.113.41/24'), true);
      const list = await h.listAddresses({ link: 'lan0' });
      t.equal(byAddress(list, '192.0.2.40')?.protocol, 80, 'IPv4 carries proto 80');
      t.equal(byAddress(list, '2001:db8:0:4::40')?.protocol, 80, 'IPv6 carries proto 80');
      t.equal(byAddress(list, '203.0.113.41')?.protocol, undefined, 'an address added without one reports none');
      t.notOk('protocol' in byAddress(list, '203.0.113.41')!, 'not even as a key');
      await h.replaceAddress('lan0', '203.0.113.41/24', { protocol: 200 });
      t.equal(byAddress(await h.listAddresses({ link: 'lan0' }), '203.0.113.41')?.protocol, 200, 'replace sets it');
      await h.replaceAddress('lan0', '2001:db8:0:4::40/64', { nodad: true });
      t.equal(byAddress(await h.listAddresses({ link: 'lan0' }), '2001:db8:0:4::40')?.protocol, undefined, 'replace without it resets it, as ip addr replace does');
      await t.rejects(h.addAddress('lan0', '192.0.2.42/24', { protocol: 256 }), { code: 'NETLINK_INVALID_ARGUMENT', context: { field: 'protocol' } });
      await t.rejects(h.addAddress('lan0', '192.0.2.42/24', { protocol: 1.5 }), { code: 'NETLINK_INVALID_ARGUMENT', context: { field: 'protocol' } });
      for (const a of ['192.0.2.40/24', '203.0.113.41/24', '2001:db8:0:4::40/64']) t.equal(await h.deleteAddress('lan0', a), true);
    });

    t.test('batches: one result per item, in order; a failed item does not stop the others', async (t) => {
      const replaced = await h.replaceAddresses([
        { link: 'lan0', address: '198.51.100.20/24', options: { protocol: PURELB_ADDRESS_PROTOCOL } },
        { link: 'nosuch0', address: '198.51.100.21/24' },
        { link: 'lan0', address: '198.51.100.300/24' },
        { link: 'lan0', address: '2001:db8:0:5::20/64', options: { nodad: true, validLifetime: 60 } },
        { link: 'lan0', address: '198.51.100.22/25' },
        { link: 'lan0', address: '198.51.100.23/24', options: { validLifetime: 5, preferredLifetime: 10 } },
      ]);
      t.match(replaced, [
        { ok: true },
        { ok: false, error: { code: 'NETLINK_LINK_NOT_FOUND', context: { link: 'nosuch0', address: '198.51.100.21/24' } } },
        { ok: false, error: { code: 'NETLINK_INVALID_ARGUMENT', context: { field: 'address' } } },
        { ok: true },
        { ok: true },
        { ok: false, error: { code: 'NETLINK_INVALID_ARGUMENT', context: { field: 'preferredLifetime' } } },
      ]);
      t.type((replaced[1] as { error: unknown }).error, NetlinkError);
      const list = await h.listAddresses({ link: 'lan0' });
      t.equal(byAddress(list, '198.51.100.20')?.protocol, 80);
      t.ok(byAddress(list, '2001:db8:0:5::20')!.validLifetime <= 60);
      t.ok(byAddress(list, '198.51.100.22'));
      t.notOk(byAddress(list, '198.51.100.23'), 'the refused item changed nothing');

      const lan = await h.getLink('lan0');
      const deleted = await h.deleteAddresses([
        { link: 'lan0', address: '198.51.100.20/24' },
        { link: lan.index, address: '198.51.100.22' },
        { link: 'lan0', address: '2001:db8:0:5::20' },
        { link: 'lan0', address: '198.51.100.20/24' },
        { link: 'nosuch0', address: '198.51.100.20/24' },
        { link: 'lan0', address: '2001:db8:0:5::99' },
      ]);
      t.match(deleted, [
        { ok: true, value: true },
        { ok: true, value: true },
        { ok: true, value: true },
        { ok: true, value: false },
        { ok: false, error: { code: 'NETLINK_LINK_NOT_FOUND' } },
        { ok: true, value: false },
      ]);
      t.same(await h.deleteAddresses([]), [], 'an empty batch');
      const left = await h.listAddresses({ link: 'lan0' });
      t.notOk(left.some((a) => ['198.51.100.20', '198.51.100.22', '2001:db8:0:5::20'].includes(a.address)), 'all gone');
    });

    t.test('errors name the link and carry a code', async (t) => {
      await t.rejects(h.addAddress('nosuch0', '192.0.2.1/24'), { code: 'NETLINK_LINK_NOT_FOUND', context: { link: 'nosuch0' } });
      await t.rejects(h.deleteAddress('nosuch0', '192.0.2.1/24'), { code: 'NETLINK_LINK_NOT_FOUND' });
      await t.rejects(h.listAddresses({ link: 'nosuch0' }), { code: 'NETLINK_LINK_NOT_FOUND' });
      await t.rejects(h.getLink(4242), { code: 'NETLINK_LINK_NOT_FOUND', message: /4242/ });
      await t.rejects(h.addAddress('lan0', '192.0.2.300/24'), { code: 'NETLINK_INVALID_ARGUMENT', context: { field: 'address' } });
      await t.rejects(h.addAddress('lan0', '192.0.2.3/33'), { code: 'NETLINK_INVALID_ARGUMENT', context: { field: 'prefixLength' } });
      await t.rejects(h.addAddress('lan0', '2001:db8::3/64', { validLifetime: 10, preferredLifetime: 20 }), { code: 'NETLINK_INVALID_ARGUMENT', context: { field: 'preferredLifetime' } });
      await t.rejects(h.addAddress('lan0', '2001:db8::3/64', { validLifetime: -1 }), { code: 'NETLINK_INVALID_ARGUMENT', context: { field: 'validLifetime' } });
      await t.rejects(h.announce('lan0', '192.0.2.3', { count: 0 }), { code: 'NETLINK_INVALID_ARGUMENT', context: { field: 'count' } });
      const e = await h.getLink('nosuch0').catch((x: unknown) => x);
      t.type(e, NetlinkError);
    });
  });

  t.test(`${name}: links`, async (t) => {
    const w = makeWorld(t);
    await w.addLink('eth1', 'bridge');
    await w.addLink('eth2', 'ifb');
    await w.addLink('wan9', 'bridge');
    const h = w.handle;

    const names = (await h.listLinks()).map((l) => l.name);
    t.ok(['lo', 'eth1', 'eth2', 'wan9'].every((n) => names.includes(n)), `all links listed: ${names.join(',')}`);
    const eth1 = await h.getLink('eth1');
    t.match(eth1, { name: 'eth1', kind: 'bridge', up: true });
    t.match(eth1.mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    t.same(await h.getLink(eth1.index), eth1, 'by index, the same link');
    t.same((await h.findLinks(/^eth\d$/g)).map((l) => l.name), ['eth1', 'eth2'], 'regex match in index order (a /g flag does not skip names)');
    t.same(await h.findLinks(/^nothing/), []);

    t.test('ensureVirtualLink creates the link up, then finds it', async (t) => {
      const first = await h.ensureVirtualLink('kube-lb0');
      t.match(first, { created: true, link: { name: 'kube-lb0', kind: 'bridge', up: true } });
      const again = await h.ensureVirtualLink('kube-lb0');
      t.match(again, { created: false, link: { index: first.link.index, up: true } });
      await t.rejects(h.ensureVirtualLink('eth2'), { code: 'NETLINK_LINK_KIND_MISMATCH', context: { field: 'virtualLinkKind', link: 'eth2' } });
      t.equal(await h.deleteLink('kube-lb0'), true);
      t.equal(await h.deleteLink('kube-lb0'), false, 'deleting a gone link is not an error');
      await t.rejects(h.getLink('kube-lb0'), { code: 'NETLINK_LINK_NOT_FOUND' });
    });

    t.test('a missing driver is named, with the setting to change', async (t) => {
      const dummy = w.kind === 'kernel' ? w.handleWithKind('dummy') : memoryWorldWithKind(t, 'dummy');
      const e = await dummy.ensureVirtualLink('kube-lb1').catch((x: unknown) => x);
      t.match(e, { code: 'NETLINK_LINK_KIND_UNSUPPORTED', context: { field: 'virtualLinkKind', link: 'kube-lb1' } });
      t.match((e as Error).message, /"dummy" link driver.*virtualLinkKind/);
      await t.rejects(dummy.getLink('kube-lb1'), { code: 'NETLINK_LINK_NOT_FOUND' }, 'nothing half-made left behind');
    });
  });

  t.test(`${name}: default route and local subnet with several interfaces`, async (t) => {
    const w = makeWorld(t);
    const h = w.handle;
    for (const l of ['lan0', 'lan1', 'lan2']) await w.addLink(l, 'bridge');
    t.equal(await h.defaultRoute('IPv4'), undefined, 'no default route yet');
    t.equal(await h.defaultRoute('IPv6'), undefined);

    await w.addAddressExternally('lan0', '192.0.2.1/24');
    await w.addAddressExternally('lan1', '198.51.100.1/24');
    await w.addAddressExternally('lan2', '198.51.100.129/25');
    await w.addAddressExternally('lan1', '2001:db8:1::1/64');
    await w.addAddressExternally('lan2', '2001:db8:2::1/64');
    await w.addDefaultRoute('IPv4', 'lan1', 200);
    await w.addDefaultRoute('IPv4', 'lan0', 100);
    await w.addDefaultRoute('IPv6', 'lan2', 50);

    t.match(await h.defaultRoute('IPv4'), { family: 'IPv4', link: { name: 'lan0' }, metric: 100 }, 'lowest metric wins');
    t.match(await h.defaultRoute('IPv6'), { family: 'IPv6', link: { name: 'lan2' }, metric: 50 }, 'per family');

    t.match(await h.localSubnetFor('192.0.2.77'), { link: { name: 'lan0' }, subnet: { network: '192.0.2.0', prefixLength: 24 }, interfaceAddress: { address: '192.0.2.1' } });
    t.match(await h.localSubnetFor('198.51.100.200'), { link: { name: 'lan2' }, subnet: { network: '198.51.100.128', prefixLength: 25 } }, 'longest prefix wins');
    t.match(await h.localSubnetFor('198.51.100.5'), { link: { name: 'lan1' }, subnet: { network: '198.51.100.0', prefixLength: 24 } });
    t.match(await h.localSubnetFor('198.51.100.200', /^lan1$/), { link: { name: 'lan1' } }, 'the pattern restricts the links');
    t.match(await h.localSubnetFor('2001:db8:2::99'), { link: { name: 'lan2' }, subnet: { family: 'IPv6', network: '2001:db8:2::', prefixLength: 64 } });
    t.equal(await h.localSubnetFor('203.0.113.9'), undefined, 'outside every subnet');
    t.equal(await h.localSubnetFor('2001:db8:3::1'), undefined);
  });

  t.test(`${name}: subscription reports removals so an address can be restored`, async (t) => {
    const w = makeWorld(t);
    const h = w.handle;
    await w.addLink('lan0', 'bridge');
    const sub = h.subscribe();
    t.teardown(() => sub.close());
    const it = sub[Symbol.asyncIterator]();
    await h.addAddress('lan0', '203.0.113.10/24');
    await h.addAddress('lan0', '2001:db8:5::10/64', { nodad: true });
    const isAddr = (kind: string, address: string) => (c: NetChange) => c.kind === kind && 'address' in c && c.address.address === address;
    await nextMatching(it, isAddr('address-added', '203.0.113.10'), 3000);
    await nextMatching(it, isAddr('address-added', '2001:db8:5::10'), 3000);

    await w.removeAddressExternally('lan0', '203.0.113.10/24');
    const removed = await nextMatching(it, isAddr('address-removed', '203.0.113.10'), 3000);
    t.match(removed, { kind: 'address-removed', address: { prefixLength: 24, family: 'IPv4' } });
    // What the agent does with it: put the address back.
    t.equal(await h.addAddress('lan0', '203.0.113.10/24'), true, 'restored');
    await nextMatching(it, isAddr('address-added', '203.0.113.10'), 3000);

    await w.removeAddressExternally('lan0', '2001:db8:5::10/64');
    await nextMatching(it, isAddr('address-removed', '2001:db8:5::10'), 3000);

    await w.addLink('lan7', 'bridge');
    await nextMatching(it, (c) => c.kind === 'link-updated' && c.link.name === 'lan7', 3000);
    t.ok(await h.deleteLink('lan7'));
    await nextMatching(it, (c) => c.kind === 'link-removed' && c.link.name === 'lan7', 3000);

    sub.close();
    t.same(await it.next(), { value: undefined, done: true }, 'a closed subscription ends');
  });

  t.test(`${name}: a closed handle refuses calls`, async (t) => {
    const w = makeWorld(t);
    w.handle.close();
    w.handle.close();
    await t.rejects(w.handle.listLinks(), { code: 'NETLINK_CLOSED' });
    t.throws(() => w.handle.subscribe(), { code: 'NETLINK_CLOSED' });
    await t.rejects(w.handle.deleteAddresses([{ link: 'lo', address: '192.0.2.1/32' }]), { code: 'NETLINK_CLOSED' });
    await t.rejects(w.handle.replaceAddresses([]), { code: 'NETLINK_CLOSED' });
    await t.rejects(w.handle.probeAddress('lo', '192.0.2.1'), { code: 'NETLINK_CLOSED' });
  });
}
