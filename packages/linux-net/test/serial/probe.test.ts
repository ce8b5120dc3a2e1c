// probeAddress against real kernels: two namespaces on a veth pair, the peer's kernel as
// the holder that answers (or not), frames checked on the wire, timings measured. In
// test/serial so its timings are not taken while the other test files load the machine.
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { openNetlinkHandle, parseArpFrame, parseNeighbourSolicitationFrame, buildDadNeighbourSolicitation, type NetlinkHandle, type ProbeResult } from '../../src/index.ts';
import { PacketCapture, TestNetns, assertNetnsPrerequisites, connectVeth } from '../../src/testing/index.ts';
import { formatMac, parseAddressText, parseMac } from '../../src/address.ts';

assertNetnsPrerequisites();
// Mostly waiting (probe windows, the kernel's DAD); more than tap's 30 s default on a loaded machine.
t.setTimeout(180_000);

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Pair {
  readonly node: TestNetns;
  readonly peer: TestNetns;
  /** A handle in `node`, probing on lan0. */
  readonly h: NetlinkHandle;
  readonly nodeMac: string;
  readonly peerMac: string;
}

/** `node` (lan0) and `peer` (peer0) joined by a veth pair, both up, with a handle in `node`. */
function pair(t: Test): Pair {
  const node = new TestNetns('lprobe');
  t.teardown(() => node.delete());
  const peer = new TestNetns('lprobe');
  t.teardown(() => peer.delete());
  connectVeth(node, 'lan0', peer, 'peer0');
  const h = node.run(() => openNetlinkHandle());
  t.teardown(() => h.close());
  return { node, peer, h, nodeMac: node.linkMac('lan0'), peerMac: peer.linkMac('peer0') };
}

async function timed(fn: () => Promise<ProbeResult>): Promise<{ result: ProbeResult; ms: number }> {
  const start = performance.now();
  const result = await fn();
  return { result, ms: performance.now() - start };
}

/** Waits (bounded) until `ip -6 addr` in `ns` shows no tentative address on `link`, so the kernel answers neighbour solicitations. */
async function settled(ns: TestNetns, link: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (!/tentative/.test(ns.ip('-6', 'addr', 'show', 'dev', link))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`addresses on ${link} in ${ns.name} stayed tentative for 5 s`);
}

t.test('IPv4: no conflict, then the peer holds it, then it is gone again', async (t) => {
  const { peer, h, peerMac } = pair(t);
  const quiet = await timed(() => h.probeAddress('lan0', '192.0.2.50'));
  t.same(quiet.result, { conflict: false }, 'nobody holds 192.0.2.50');
  t.ok(quiet.ms >= 110 - 1, `a silent probe listens its whole window (${quiet.ms.toFixed(1)} ms >= 110)`);

  peer.ip('addr', 'add', '192.0.2.50/24', 'dev', 'peer0');
  // A long window, so ending early is unmistakable however loaded the machine is.
  const held = await timed(() => h.probeAddress('lan0', '192.0.2.50', { waitMs: 3000 }));
  t.same(held.result, { conflict: true, mac: peerMac }, "the peer's kernel answers the probe, with its MAC");
  t.ok(held.ms < 1500, `a conflict ends the probe early (${held.ms.toFixed(1)} ms of a 3000 ms window)`);
  t.same(await h.probeAddress('lan0', '192.0.2.50/24'), { conflict: true, mac: peerMac }, 'a /len in the text is ignored');

  peer.ip('addr', 'del', '192.0.2.50/24', 'dev', 'peer0');
  t.same(await h.probeAddress('lan0', '192.0.2.50'), { conflict: false }, 'after the peer deleted it, nobody answers');
});

t.test('IPv6: a holder with nodad answers duplicate address detection', async (t) => {
  const { peer, h, peerMac } = pair(t);
  t.same(await h.probeAddress('lan0', '2001:db8:a::50'), { conflict: false }, 'nobody holds it');

  // As the node agent adds addresses: with nodad, through this package.
  const peerHandle = peer.run(() => openNetlinkHandle());
  t.teardown(() => peerHandle.close());
  t.equal(await peerHandle.addAddress('peer0', '2001:db8:a::50/64', { nodad: true }), true);
  // The kernel joins the solicited-node group even with nodad, which is why it hears the probe.
  t.match(peer.ip('-6', 'maddr', 'show', 'dev', 'peer0'), /ff02::1:ff00:50/, 'holder joined ff02::1:ff00:50');
  t.notMatch(peer.ip('-6', 'addr', 'show', 'dev', 'peer0'), /2001:db8:a::50\/64.*tentative/, 'not tentative');
  const held = await timed(() => h.probeAddress('lan0', '2001:db8:a::50', { waitMs: 3000 }));
  t.same(held.result, { conflict: true, mac: peerMac }, "the peer's kernel answers with a neighbour advertisement");
  t.ok(held.ms < 1500, `early answer (${held.ms.toFixed(1)} ms of a 3000 ms window)`);

  // Added with `ip addr add ... nodad` too, a /128 on the same link.
  peer.ip('addr', 'add', '2001:db8:a::51/128', 'dev', 'peer0', 'nodad');
  t.same(await h.probeAddress('lan0', '2001:db8:a::51'), { conflict: true, mac: peerMac });

  t.equal(await peerHandle.deleteAddress('peer0', '2001:db8:a::50/64'), true);
  t.same(await h.probeAddress('lan0', '2001:db8:a::50'), { conflict: false }, 'gone again');
  t.same(await h.probeAddress('lan0', '2001:db8:a::52'), { conflict: false }, 'a neighbour of a held address is not a conflict');
});

t.test('IPv6: a holder that went through DAD itself answers too', async (t) => {
  const { peer, h, peerMac } = pair(t);
  peer.ip('addr', 'add', '2001:db8:b::50/64', 'dev', 'peer0');
  await settled(peer, 'peer0');
  t.same(await h.probeAddress('lan0', '2001:db8:b::50'), { conflict: true, mac: peerMac });
});

t.test('our own address on our own link is not a conflict (the kernel does not answer its own probe)', async (t) => {
  const { node, h } = pair(t);
  node.ip('addr', 'add', '192.0.2.60/24', 'dev', 'lan0');
  node.ip('addr', 'add', '2001:db8:c::60/64', 'dev', 'lan0', 'nodad');
  t.same(await h.probeAddress('lan0', '192.0.2.60'), { conflict: false }, 'IPv4');
  t.same(await h.probeAddress('lan0', '2001:db8:c::60'), { conflict: false }, 'IPv6');
});

t.test('two hosts probing for one address at once: never both "no conflict"', async (t) => {
  const { peer, h, nodeMac, peerMac } = pair(t);
  const other = peer.run(() => openNetlinkHandle());
  t.teardown(() => other.close());
  // Long windows, so "at the same time" holds however late a loaded machine runs our timers.
  const opts = { probes: 3, intervalMs: 100, waitMs: 1000 };
  for (const address of ['192.0.2.70', '2001:db8:d::70']) {
    // Started together, the first to hear the other stops probing (RFC 5227), so the other may hear nothing: one of them wins.
    const [ours, theirs] = await Promise.all([h.probeAddress('lan0', address, opts), other.probeAddress('peer0', address, opts)]);
    t.ok(ours.conflict || theirs.conflict, `${address}: at least one saw the other (ours ${JSON.stringify(ours)}, theirs ${JSON.stringify(theirs)})`);
    if (ours.conflict) t.equal(ours.mac, peerMac);
    if (theirs.conflict) t.equal(theirs.mac, nodeMac);

    // They start first and are listening when our first probe goes out (it always goes out):
    // they hear it and back off. We may or may not hear one of theirs before they stop.
    const theirsFirst = other.probeAddress('peer0', address, opts);
    await new Promise((r) => setTimeout(r, 15));
    const oursLater = await h.probeAddress('lan0', address, opts);
    t.same(await theirsFirst, { conflict: true, mac: nodeMac }, `${address}: they heard our probe`);
    if (oursLater.conflict) t.equal(oursLater.mac, peerMac, `${address}: and we heard theirs`);
  }
});

t.test('an announcement heard while listening is a conflict', async (t) => {
  const { peer, h, peerMac } = pair(t);
  const other = peer.run(() => openNetlinkHandle());
  t.teardown(() => other.close());
  // The peer announces 40 ms into our 3 s window without answering probes (it does not hold the address).
  const probing = h.probeAddress('lan0', '192.0.2.80', { probes: 1, waitMs: 3000 });
  await new Promise((r) => setTimeout(r, 40));
  await other.announce('peer0', '192.0.2.80');
  t.same(await probing, { conflict: true, mac: peerMac });
});

t.test('could not probe: typed errors, never a silent "no conflict"', async (t) => {
  const { node, peer, h } = pair(t);
  await t.rejects(h.probeAddress('nosuch0', '192.0.2.90'), { code: 'NETLINK_LINK_NOT_FOUND', context: { link: 'nosuch0' } });
  await t.rejects(h.probeAddress('lan0', '192.0.2.90', { probes: 0 }), { code: 'NETLINK_INVALID_ARGUMENT', context: { field: 'probes' } });
  await t.rejects(h.probeAddress('lan0', '192.0.2.90', { waitMs: -1 }), { code: 'NETLINK_INVALID_ARGUMENT', context: { field: 'waitMs' } });
  await t.rejects(h.probeAddress('lo', '192.0.2.90'), { code: 'NETLINK_PROBE_FAILED', message: /no Ethernet address/ }, 'loopback');

  node.ip('link', 'set', 'lan0', 'down');
  await t.rejects(h.probeAddress('lan0', '192.0.2.90'), { code: 'NETLINK_PROBE_FAILED', context: { link: 'lan0', address: '192.0.2.90', operation: 'arping -D -I lan0 192.0.2.90' }, message: /is down/ });
  await t.rejects(h.probeAddress('lan0', '2001:db8::90'), { code: 'NETLINK_PROBE_FAILED', message: /is down/ }, 'IPv6 too');
  node.ip('link', 'set', 'lan0', 'up');

  peer.ip('link', 'set', 'peer0', 'down');
  await t.rejects(h.probeAddress('lan0', '192.0.2.90'), { code: 'NETLINK_PROBE_FAILED', message: /no carrier/ }, 'the other end of the cable is down');
  peer.ip('link', 'set', 'peer0', 'up');

  node.ip('link', 'set', 'lan0', 'arp', 'off');
  await t.rejects(h.probeAddress('lan0', '192.0.2.90'), { code: 'NETLINK_PROBE_FAILED', message: /NOARP/ });
  node.ip('link', 'set', 'lan0', 'arp', 'on');

  // Down while listening: silence from a dead link must not read as "nobody holds it".
  const probing = h.probeAddress('lan0', '192.0.2.90', { probes: 1, waitMs: 3000 });
  await new Promise((r) => setTimeout(r, 60));
  node.ip('link', 'set', 'lan0', 'down');
  await t.rejects(probing, { code: 'NETLINK_PROBE_FAILED', message: /during the probe/ });
});

t.test('an AbortSignal stops a probe within a poll', async (t) => {
  const { h } = pair(t);
  const ac = new AbortController();
  const started = performance.now();
  const probing = h.probeAddress('lan0', '192.0.2.91', { probes: 1, waitMs: 5000, signal: ac.signal });
  setTimeout(() => ac.abort(new Error('shutting down')), 30);
  await t.rejects(probing, { code: 'NETLINK_ABORTED', cause: { message: 'shutting down' } });
  const took = performance.now() - started;
  t.ok(took < 2500, `stopped after ${took.toFixed(1)} ms, not 5 s`);
  await t.rejects(h.probeAddress('lan0', '192.0.2.91', { signal: AbortSignal.abort() }), { code: 'NETLINK_ABORTED' }, 'an aborted signal never starts');
});

t.test('on the wire: ARP probes as RFC 5227 says, at the configured interval', async (t) => {
  const { peer, h, nodeMac } = pair(t);
  const capture = peer.run(() => new PacketCapture(peer.linkIndex('peer0')));
  t.teardown(() => capture.close());
  const probing = h.probeAddress('lan0', '192.0.2.92', { probes: 3, intervalMs: 50, waitMs: 20 });
  const seen: { at: number; frame: NonNullable<ReturnType<typeof parseArpFrame>> }[] = [];
  await capture.waitFor((f) => {
    const arp = parseArpFrame(f.frame);
    if (arp && hex(arp.targetIp) === hex(parseAddressText('192.0.2.92').bytes)) seen.push({ at: f.receivedAtMs, frame: arp });
    return seen.length >= 3 ? true : undefined;
  }, 3000);
  t.same(await probing, { conflict: false });
  t.equal(seen.length, 3, 'three probes');
  for (const { frame } of seen) {
    t.equal(frame.op, 1, 'a request');
    t.equal(formatMac(frame.destinationMac), 'ff:ff:ff:ff:ff:ff', 'broadcast');
    t.equal(formatMac(frame.senderMac), nodeMac, 'sender MAC is the link MAC');
    t.equal(hex(frame.senderIp), '00000000', 'sender address 0.0.0.0');
    t.equal(hex(frame.targetMac), '000000000000', 'target MAC zero');
  }
  // Probe i goes out at i * 50 ms after the first, never earlier (a late timer may delay one, not the schedule).
  const offsets = seen.map((s) => s.at - seen[0]!.at);
  t.ok(
    offsets.every((o, i) => o >= i * 50 - 1 && o <= i * 50 + 150),
    `sent at ${offsets.map((o) => o.toFixed(1)).join(', ')} ms: 0, 50, 100 or a little later`,
  );
});

t.test("on the wire: our DAD solicitation is byte for byte the kernel's own", async (t) => {
  const { node, peer, h } = pair(t);
  const capture = peer.run(() => new PacketCapture(peer.linkIndex('peer0')));
  t.teardown(() => capture.close());
  // Without enhanced DAD the kernel's solicitation carries no nonce option, so the two can be compared whole.
  // The kernel adds the nonce when either the link's or the namespace-wide setting asks for it.
  node.run(() => {
    writeFileSync('/proc/sys/net/ipv6/conf/all/enhanced_dad', '0');
    writeFileSync('/proc/sys/net/ipv6/conf/lan0/enhanced_dad', '0');
  });
  const target = parseAddressText('2001:db8:e::93').bytes;
  node.ip('addr', 'add', '2001:db8:e::93/64', 'dev', 'lan0');
  const kernel = await capture.waitFor((f) => {
    const ns = parseNeighbourSolicitationFrame(f.frame);
    return ns && hex(ns.target) === hex(target) ? Buffer.from(f.frame) : undefined;
  }, 5000);
  t.ok(kernel, "the kernel's DAD solicitation arrived");
  const ours = buildDadNeighbourSolicitation(parseMac(node.linkMac('lan0')), target);
  t.equal(kernel && hex(kernel), hex(ours), 'identical');
  const parsed = parseNeighbourSolicitationFrame(ours)!;
  t.match(parsed, { hopLimit: 255, checksumValid: true, hasNonce: false, sourceLinkLayerAddress: undefined });
  t.equal(formatMac(parsed.destinationMac), '33:33:ff:00:00:93');

  // And the probe itself sends that frame.
  node.ip('addr', 'del', '2001:db8:e::93/64', 'dev', 'lan0');
  const probing = h.probeAddress('lan0', '2001:db8:e::94', { probes: 1, waitMs: 30 });
  const sent = await capture.waitFor((f) => {
    const ns = parseNeighbourSolicitationFrame(f.frame);
    return ns && hex(ns.target) === hex(parseAddressText('2001:db8:e::94').bytes) ? Buffer.from(f.frame) : undefined;
  }, 3000);
  t.equal(sent && hex(sent), hex(buildDadNeighbourSolicitation(parseMac(node.linkMac('lan0')), parseAddressText('2001:db8:e::94').bytes)));
  t.same(await probing, { conflict: false });
});

t.test('timing: a silent probe takes (probes - 1) * interval + wait, and a few ms more at most', async (t) => {
  const { peer, h, peerMac } = pair(t);
  peer.ip('addr', 'add', '192.0.2.95/24', 'dev', 'peer0');
  peer.ip('addr', 'add', '2001:db8:f::95/64', 'dev', 'peer0', 'nodad');
  const rows = [
    { family: 'IPv4', silent: '192.0.2.96', held: '192.0.2.95' },
    { family: 'IPv6', silent: '2001:db8:f::96', held: '2001:db8:f::95' },
  ];
  const RUNS = 9;
  // What the machine itself adds to a 110 ms wait with a link lookup on each side, measured
  // between the probes: on a loaded shared machine timers run late, and that is not the probe's.
  const control = async (): Promise<number> => {
    const start = performance.now();
    await h.getLink('lan0');
    await new Promise((r) => setTimeout(r, 110));
    await h.getLink('lan0');
    return performance.now() - start;
  };
  for (const row of rows) {
    const silent: number[] = [];
    const held: number[] = [];
    const baseline: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const s = await timed(() => h.probeAddress('lan0', row.silent));
      t.same(s.result, { conflict: false });
      silent.push(s.ms);
      baseline.push(await control());
      const c = await timed(() => h.probeAddress('lan0', row.held));
      t.same(c.result, { conflict: true, mac: peerMac });
      held.push(c.ms);
    }
    // Defaults: 2 probes 30 ms apart, 80 ms of listening after the last: 110 ms. Never less:
    // that would cut listening short.
    t.ok(
      silent.every((ms) => ms >= 109.5 && ms <= 110 + 500),
      `${row.family} silent probes ${silent.map((x) => x.toFixed(1)).join(', ')} ms: at least 110`,
    );
    t.ok(
      median(silent) <= median(baseline) + 25,
      `${row.family} silent median ${median(silent).toFixed(1)} ms, at most 25 ms over a bare 110 ms wait here (${median(baseline).toFixed(1)} ms)`,
    );
    t.ok(median(held) < median(silent) / 2, `${row.family} answered median ${median(held).toFixed(1)} ms: the first answer ends it`);
    t.comment(
      `${row.family}: silent probe median ${median(silent).toFixed(1)} ms (bare 110 ms wait: ${median(baseline).toFixed(1)} ms), answered probe median ${median(held).toFixed(1)} ms (${RUNS} runs, defaults)`,
    );
  }
});
