// IpamSource: an Ipam's groups behind the AddressSource contract, never pending.
import t from 'tap';
import { type AddressSource, Ipam, IpamError, IpamSource, isPending } from '../src/index.ts';

t.test('IpamSource answers at once from the Ipam it reads at every call', async (t) => {
  let ipam = new Ipam();
  ipam.setGroups([{ name: 'default', v4pools: [{ pool: '192.0.2.10-192.0.2.11', subnet: '192.0.2.0/24' }] }]);
  const source: AddressSource = new IpamSource(() => ipam);
  t.ok(source.serves('default'));
  t.notOk(source.serves('nb'));
  const r = source.allocate({ service: 'shop/web', families: ['IPv4'] });
  t.notOk(isPending(r), 'never pending');
  t.same(r, { group: 'default', addresses: ['192.0.2.10'] });
  t.same(source.stats('default')?.IPv4, { size: 2n, inUse: 1n, excluded: 0n });
  t.equal(source.stats('nb'), undefined, 'no stats for a group it does not keep');
  t.equal(source.validity('default'), undefined, 'no opinion on validity');
  source.reclaim({ group: 'default', addresses: ['192.0.2.10'] });
  t.same(ipam.get('shop/web')?.addresses, ['192.0.2.10'], 'reclaim takes nothing away');
  t.throws(() => source.allocate({ service: 'shop/db', group: 'nb', families: ['IPv4'] }), IpamError);
  t.equal(source.release('shop/web'), true);
  t.equal(source.release('shop/web'), false);
  source.lead();
  source.standby();
  await source.stop();

  ipam = new Ipam();
  t.notOk(source.serves('default'), 'a replaced Ipam is the one read');
});

t.test('isPending tells a pending result from an allocation', async (t) => {
  t.ok(isPending({ pending: true, group: 'nb', waitingFor: 'an address' }));
  t.notOk(isPending({ group: 'nb', addresses: ['192.0.2.1'] }));
});
