// Withdrawing thousands of addresses: the batch calls against a kernel, in a namespace of
// their own, on an `ifb` link (no ARP, no multicast joins: the cost is the calls'). In
// test/serial so its timings are not taken while the other test files load the machine.
import t from 'tap';
import { openNetlinkHandle, PURELB_ADDRESS_PROTOCOL, type BatchResult } from '../../src/index.ts';
import { TestNetns, assertNetnsPrerequisites } from '../../src/testing/index.ts';

assertNetnsPrerequisites();
t.setTimeout(120_000);

const N = 2000;
const v6 = (i: number): string => `2001:db8:200::${(i + 1).toString(16)}`;
// 500 IPv4 host addresses from the three documentation ranges.
const v4 = (i: number): string => `${['192.0.2', '198.51.100', '203.0.113'][Math.floor(i / 250)]}.${(i % 250) + 1}`;

const okCount = <T>(rs: BatchResult<T>[], value?: T): number => rs.filter((r) => r.ok && (value === undefined || r.value === value)).length;

t.test(`${N} addresses replaced, then withdrawn with and without /len, in batches`, async (t) => {
  const ns = new TestNetns('lbatch');
  t.teardown(() => ns.delete());
  ns.ip('link', 'add', 'vip0', 'type', 'ifb');
  ns.ip('link', 'set', 'vip0', 'up');
  const h = ns.run(() => openNetlinkHandle());
  t.teardown(() => h.close());
  const index = (await h.getLink('vip0')).index;
  const count = async (): Promise<number> => (await h.listAddresses({ link: index })).filter((a) => a.address.startsWith('2001:db8:200::') || a.family === 'IPv4').length;
  const items = Array.from({ length: N }, (_, i) => ({ link: 'vip0', address: `${v6(i)}/128`, options: { nodad: true, protocol: PURELB_ADDRESS_PROTOCOL } }));

  let t0 = performance.now();
  const added = await h.replaceAddresses(items);
  const replaceMs = performance.now() - t0;
  t.equal(okCount(added), N, `all ${N} replaced (added)`);
  const listed = (await h.listAddresses({ link: index, family: 'IPv6' })).filter((a) => a.address.startsWith('2001:db8:200::'));
  t.equal(listed.length, N, 'all listed');
  t.ok(listed.every((a) => a.protocol === PURELB_ADDRESS_PROTOCOL && a.flags.nodad), 'each with its mark and nodad');

  t0 = performance.now();
  const removed = await h.deleteAddresses(items.map(({ link, address }) => ({ link, address })));
  const deleteMs = performance.now() - t0;
  t.equal(okCount(removed, true), N, `all ${N} withdrawn`);
  t.equal(await count(), 0, 'none left');

  // Without /len: one read of the IPv6 addresses for the whole batch, not one per item.
  await h.replaceAddresses(items);
  t0 = performance.now();
  const removedNoLen = await h.deleteAddresses(items.map((i) => ({ link: index, address: i.address.replace('/128', '') })));
  const deleteNoLenMs = performance.now() - t0;
  t.equal(okCount(removedNoLen, true), N, `all ${N} withdrawn without /len`);
  t.equal(await count(), 0, 'none left');
  // One read per item would cost N dumps of up to N addresses: seconds, growing with N squared.
  t.ok(deleteNoLenMs < 5 * deleteMs + 500, `without /len ${deleteNoLenMs.toFixed(0)} ms is not far from with /len ${deleteMs.toFixed(0)} ms`);

  // IPv4 without /len is one request each: the kernel matches any length. (Only the first of
  // each range is a /24: a later /24 in its subnet would be its secondary, deleted with it.)
  const v4items = Array.from({ length: 500 }, (_, i) => ({ link: index, address: `${v4(i)}/${i % 250 === 0 ? 24 : 32}` }));
  t.equal(okCount(await h.replaceAddresses(v4items)), 500);
  t0 = performance.now();
  const removed4 = await h.deleteAddresses(v4items.map((i) => ({ link: i.link, address: i.address.replace(/\/\d+$/, '') })));
  const delete4Ms = performance.now() - t0;
  t.equal(okCount(removed4, true), 500, 'all 500 IPv4 (/32 and /24) withdrawn without /len');
  t.equal(await count(), 0, 'none left');
  t.same(
    (await h.deleteAddresses([{ link: index, address: v4(0) }])).map((r) => r.ok && r.value),
    [false],
    'an IPv4 address that is gone reports false',
  );

  // The same withdrawals one call at a time, each awaited: the round trips a batch saves.
  await h.replaceAddresses(items);
  t0 = performance.now();
  for (const i of items) await h.deleteAddress(index, i.address);
  const sequentialMs = performance.now() - t0;
  t.equal(await count(), 0);

  t.comment(
    `${N} IPv6 /128: replace batch ${replaceMs.toFixed(0)} ms, delete batch ${deleteMs.toFixed(0)} ms, ` +
      `delete batch without /len ${deleteNoLenMs.toFixed(0)} ms, one by one awaited ${sequentialMs.toFixed(0)} ms; ` +
      `500 IPv4 without /len ${delete4Ms.toFixed(0)} ms`,
  );
});
