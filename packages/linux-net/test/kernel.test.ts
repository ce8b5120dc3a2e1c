// What only the kernel can show: missing capabilities, frames on the wire, the kernel's
// own GARP/NA as an independent oracle for our bytes, and many calls in flight at once.
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openNetlinkHandle, parseArpFrame, parseNeighbourAdvertisementFrame, buildGratuitousArp, buildUnsolicitedNeighbourAdvertisement, ARP_REQUEST } from '../src/index.ts';
import { PacketCapture, TestNetns, assertNetnsPrerequisites, connectVeth, runNodeInNetns } from '../src/testing/index.ts';
import { formatMac, parseAddressText, parseMac } from '../src/address.ts';

assertNetnsPrerequisites();

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Two namespaces joined by a veth pair: `node` (where the handle runs) and `peer` (where frames are captured). */
function pair(t: Test): { node: TestNetns; peer: TestNetns; capture: PacketCapture; nodeMac: string } {
  const node = new TestNetns('lnet');
  t.teardown(() => node.delete());
  const peer = new TestNetns('lnet');
  t.teardown(() => peer.delete());
  connectVeth(node, 'lan0', peer, 'peer0');
  const peerIndex = peer.linkIndex('peer0');
  const capture = peer.run(() => new PacketCapture(peerIndex));
  t.teardown(() => capture.close());
  return { node, peer, capture, nodeMac: node.linkMac('lan0') };
}

t.test('without CAP_NET_ADMIN and CAP_NET_RAW: reads work, changes and probes fail with NETLINK_PERMISSION', async (t) => {
  const ns = new TestNetns('lnet');
  t.teardown(() => ns.delete());
  ns.ip('link', 'add', 'lan0', 'type', 'bridge');
  ns.ip('addr', 'add', '192.0.2.1/24', 'dev', 'lan0');
  const child = fileURLToPath(new URL('./children/without-capabilities.ts', import.meta.url));
  const r = await runNodeInNetns(ns, child, [], { dropCapabilities: ['net_admin', 'net_raw'], timeoutMs: 20_000 });
  t.equal(r.code, 0, `child exited cleanly (stderr: ${r.stderr.slice(0, 500)})`);
  const out = JSON.parse(r.stdout) as Record<string, { ok?: unknown; code?: string; errno?: string; message?: string }>;
  t.same(out.listLinks!.ok, ['lo', 'lan0'], 'listing needs no capability');
  t.match(out.addAddress, { code: 'NETLINK_PERMISSION', errno: 'EPERM', message: /CAP_NET_ADMIN/ });
  t.match(out.deleteAddress, { code: 'NETLINK_PERMISSION', errno: 'EPERM' });
  t.match(out.ensureVirtualLink, { code: 'NETLINK_PERMISSION' });
  t.match(out.announce, { code: 'NETLINK_PERMISSION', message: /CAP_NET_RAW/ });
  t.match(out.probeAddress, { code: 'NETLINK_PERMISSION', message: /CAP_NET_RAW/ }, 'a probe without CAP_NET_RAW is an error, not "no conflict"');
  t.same(out.deleteAddresses!.ok, ['NETLINK_PERMISSION'], 'a batch reports the refusal per item');
  t.match(ns.ip('-4', 'addr', 'show', 'lan0'), /192\.0\.2\.1\/24/, 'the refused delete changed nothing');
  t.notMatch(ns.ip('-4', 'addr', 'show', 'lan0'), /192\.0\.2\.5/, 'the refused add changed nothing');
});

t.test('gratuitous ARP on the wire: request and reply, broadcast, from the link MAC', async (t) => {
  const { node, capture, nodeMac } = pair(t);
  const h = node.run(() => openNetlinkHandle());
  t.teardown(() => h.close());
  await h.addAddress('lan0', '192.0.2.20/24');
  const sent = h.announce('lan0', '192.0.2.20', { count: 2, intervalMs: 20 });
  const seen: { op: number; senderMac: string; targetMac: string; dst: string }[] = [];
  await capture.waitFor((f) => {
    const arp = parseArpFrame(f.frame);
    if (arp && hex(arp.senderIp) === hex(parseAddressText('192.0.2.20').bytes) && hex(arp.targetIp) === hex(arp.senderIp)) {
      seen.push({ op: arp.op, senderMac: formatMac(arp.senderMac), targetMac: formatMac(arp.targetMac), dst: formatMac(arp.destinationMac) });
      t.equal(formatMac(arp.sourceMac), nodeMac, 'Ethernet source is the link MAC');
    }
    return seen.length >= 4 ? true : undefined;
  }, 3000);
  await sent;
  t.equal(seen.length, 4, 'two rounds of request + reply');
  t.same(
    seen.map((s) => s.op),
    [1, 2, 1, 2],
  );
  for (const s of seen) {
    t.equal(s.dst, 'ff:ff:ff:ff:ff:ff', 'broadcast');
    t.equal(s.senderMac, nodeMac, 'sender MAC is the link MAC');
  }
  t.equal(seen[0]!.targetMac, '00:00:00:00:00:00', 'request: target MAC zero');
  t.equal(seen[1]!.targetMac, nodeMac, 'reply: target MAC is the sender');
});

t.test('unsolicited NA on the wire: ff02::1, Override, target and its MAC, hop limit 255, valid checksum', async (t) => {
  const { node, capture, nodeMac } = pair(t);
  const h = node.run(() => openNetlinkHandle());
  t.teardown(() => h.close());
  await h.addAddress('lan0', '2001:db8:7::20/64', { nodad: true });
  await h.announce('lan0', '2001:db8:7::20');
  const target = hex(parseAddressText('2001:db8:7::20').bytes);
  const na = await capture.waitFor((f) => {
    const p = parseNeighbourAdvertisementFrame(f.frame);
    return p && hex(p.target) === target ? p : undefined;
  }, 3000);
  t.ok(na, 'the advertisement arrived in the peer namespace');
  t.match(na, { hopLimit: 255, override: true, solicited: false, router: false, checksumValid: true });
  t.equal(formatMac(na!.sourceMac), nodeMac);
  t.equal(formatMac(na!.targetMac!), nodeMac, 'target link-layer address option is the link MAC');
  t.equal(formatMac(na!.destinationMac), '33:33:00:00:00:01');
  t.equal(hex(na!.destinationIp), 'ff020000000000000000000000000001');
});

t.test("our frames match the kernel's own GARP (arp_notify) and unsolicited NA (ndisc_notify) byte for byte", async (t) => {
  const { node, capture, nodeMac } = pair(t);
  node.ip('link', 'set', 'lan0', 'down');
  // With these set the kernel itself announces on link up: an independent oracle for our bytes.
  // /proc/sys/net follows the namespace of the thread that opens the file.
  const write = (path: string, v: string): void => node.run(() => writeFileSync(path, v));
  write('/proc/sys/net/ipv4/conf/lan0/arp_notify', '1');
  write('/proc/sys/net/ipv6/conf/lan0/ndisc_notify', '1');
  node.ip('addr', 'add', '192.0.2.30/24', 'dev', 'lan0');
  node.ip('addr', 'add', '2001:db8:8::30/64', 'dev', 'lan0', 'nodad');
  node.ip('link', 'set', 'lan0', 'up');
  const mac = parseMac(nodeMac);
  const ours4 = buildGratuitousArp(ARP_REQUEST, mac, parseAddressText('192.0.2.30').bytes);
  const ours6 = buildUnsolicitedNeighbourAdvertisement(mac, parseAddressText('2001:db8:8::30').bytes);
  let kernel4: Buffer | undefined;
  let kernel6: Buffer | undefined;
  await capture.waitFor((f) => {
    const arp = parseArpFrame(f.frame);
    if (arp && hex(arp.senderIp) === hex(parseAddressText('192.0.2.30').bytes)) kernel4 ??= Buffer.from(f.frame.subarray(0, 42));
    const na = parseNeighbourAdvertisementFrame(f.frame);
    if (na && hex(na.target) === hex(parseAddressText('2001:db8:8::30').bytes)) kernel6 ??= Buffer.from(f.frame);
    return kernel4 && kernel6 ? true : undefined;
  }, 5000);
  t.ok(kernel4, 'the kernel sent a gratuitous ARP');
  t.ok(kernel6, 'the kernel sent an unsolicited NA');
  t.equal(kernel4 && hex(kernel4), hex(ours4), 'GARP request identical');
  t.equal(kernel6 && hex(kernel6), hex(ours6), 'unsolicited NA identical');
});

t.test('many calls in flight at once: each gets its own answer', async (t) => {
  const ns = new TestNetns('lnet');
  t.teardown(() => ns.delete());
  ns.ip('link', 'add', 'vip0', 'type', 'ifb');
  ns.ip('link', 'set', 'vip0', 'up');
  const h = ns.run(() => openNetlinkHandle());
  t.teardown(() => h.close());
  const addrs = Array.from({ length: 600 }, (_, i) => `2001:db8:9::${(i + 1).toString(16)}/128`);
  const added = await Promise.all(addrs.map((a) => h.addAddress('vip0', a, { nodad: true })));
  t.equal(added.filter(Boolean).length, 600, 'all 600 added');
  // Half of them again plus a bad link, interleaved: answers must not cross.
  const mixed = await Promise.allSettled([...addrs.slice(0, 300).map((a) => h.addAddress('vip0', a)), h.addAddress('nosuch0', '2001:db8:9::1/128')]);
  t.equal(mixed.slice(0, 300).filter((r) => r.status === 'fulfilled' && r.value === false).length, 300, 'repeat adds report no-op');
  t.match(mixed[300], { status: 'rejected', reason: { code: 'NETLINK_LINK_NOT_FOUND' } });
  const listed = (await h.listAddresses({ link: 'vip0', family: 'IPv6' })).filter((a) => a.address.startsWith('2001:db8:9::'));
  t.equal(listed.length, 600, 'a dump of 600+ addresses reads across several datagrams');
  const removed = await Promise.all(addrs.map((a) => h.deleteAddress('vip0', a)));
  t.equal(removed.filter(Boolean).length, 600);
  t.equal(ns.ip('-6', 'addr', 'show', 'dev', 'vip0', 'scope', 'global').trim(), '', 'none left');
});

t.test('a handle keeps its namespace: a subscription opened later, from elsewhere, watches the handle namespace', async (t) => {
  const a = new TestNetns('lnet');
  t.teardown(() => a.delete());
  a.ip('link', 'add', 'lan0', 'type', 'bridge');
  const h = a.run(() => openNetlinkHandle());
  t.teardown(() => h.close());
  // Called from this process's own namespace: it must still listen inside `a`.
  const sub = h.subscribe();
  t.teardown(() => sub.close());
  a.ip('addr', 'add', '192.0.2.99/24', 'dev', 'lan0');
  const it = sub[Symbol.asyncIterator]();
  const first = await Promise.race([it.next(), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 3000))]);
  t.not(first, 'timeout');
  t.match(first, { value: { kind: 'address-added', address: { address: '192.0.2.99' } } });
  t.equal((await h.getLink('lan0')).name, 'lan0', 'and requests still go to `a`');
});
