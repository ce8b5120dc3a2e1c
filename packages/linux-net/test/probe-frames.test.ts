// The pure parts of a probe: its frames byte for byte, which received frame is a conflict,
// the socket filter (run here by a small interpreter), the timing rules, and IFA_PROTO.
import t from 'tap';
import fc from 'fast-check';
import {
  ARP_REPLY,
  ARP_REQUEST,
  buildArpProbe,
  buildDadNeighbourSolicitation,
  buildGratuitousArp,
  buildUnsolicitedNeighbourAdvertisement,
  conflictingMac,
  parseNeighbourSolicitationFrame,
  solicitedNodeMulticast,
} from '../src/index.ts';
import { icmpv6Checksum } from '../src/announce/frames.ts';
import { neighbourDiscoveryFilter, probeTiming } from '../src/announce/probe.ts';
import { NLM_F, RTM, encodeAddressRequest, parseAddressPayload } from '../src/rtnl/codec.ts';

const OURS = Uint8Array.of(0x02, 0x42, 0xac, 0x11, 0x00, 0x02);
const THEIRS = Uint8Array.of(0x02, 0x42, 0xac, 0x11, 0x00, 0x09);
const V4 = Uint8Array.of(192, 0, 2, 10);
const V6 = Buffer.from('20010db8000000000000000000abcdef', 'hex');
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

t.test('ARP probe and DAD solicitation, field by field', async (t) => {
  t.equal(
    hex(buildArpProbe(OURS, V4)),
    // broadcast | src | ARP | Ethernet, IPv4, 6, 4 | request | sha | spa 0.0.0.0 | tha zero | tpa
    'ffffffffffff' + '0242ac110002' + '0806' + '0001' + '0800' + '06' + '04' + '0001' + '0242ac110002' + '00000000' + '000000000000' + 'c000020a',
  );
  const group = solicitedNodeMulticast(V6);
  t.equal(hex(group.ip), 'ff0200000000000000000001ffabcdef');
  t.equal(hex(group.mac), '3333ffabcdef');
  const ns = buildDadNeighbourSolicitation(OURS, V6);
  t.equal(ns.length, 78);
  const icmp = Buffer.from('87000000' + '00000000' + hex(V6), 'hex');
  const sum = icmpv6Checksum(new Uint8Array(16), group.ip, icmp).toString(16).padStart(4, '0');
  t.equal(
    hex(ns),
    '3333ffabcdef' + '0242ac110002' + '86dd' + // to the solicited-node group's MAC
      '60000000' + '0018' + '3a' + 'ff' + // payload 24, ICMPv6, hop limit 255
      '00'.repeat(16) + hex(group.ip) + // from ::, to ff02::1:ffab:cdef
      '87' + '00' + sum + '00000000' + hex(V6), // NS, code 0, checksum, reserved, target; no options
  );
  t.match(parseNeighbourSolicitationFrame(ns), { hopLimit: 255, checksumValid: true, hasNonce: false, sourceLinkLayerAddress: undefined });
});

t.test('parsing a solicitation with options (the kernel adds a nonce to its own DAD probes)', async (t) => {
  const base = buildDadNeighbourSolicitation(OURS, V6);
  const withOptions = Buffer.concat([base, Buffer.from('0e01' + '112233445566' + '0101' + hex(THEIRS), 'hex')]);
  withOptions.writeUInt16BE(24 + 16, 18);
  const icmp = Buffer.from(withOptions.subarray(54));
  icmp.writeUInt16BE(0, 2);
  withOptions.writeUInt16BE(icmpv6Checksum(withOptions.subarray(22, 38), withOptions.subarray(38, 54), icmp), 56);
  const p = parseNeighbourSolicitationFrame(withOptions);
  t.match(p, { hasNonce: true, checksumValid: true });
  t.equal(hex(p!.sourceLinkLayerAddress!), hex(THEIRS));
  t.equal(parseNeighbourSolicitationFrame(buildUnsolicitedNeighbourAdvertisement(OURS, V6)), undefined, 'an NA is not an NS');
  t.equal(parseNeighbourSolicitationFrame(base.subarray(0, 70)), undefined, 'truncated');
});

t.test('which frames are conflicts', async (t) => {
  const v4 = { family: 'IPv4' as const, address: V4, mac: OURS };
  const v6 = { family: 'IPv6' as const, address: V6, mac: OURS };
  const other4 = Uint8Array.of(192, 0, 2, 11);
  const other6 = Buffer.from('20010db8000000000000000000abcdee', 'hex');
  const arp = (op: number, sha: Uint8Array, spa: Uint8Array, tpa: Uint8Array): Buffer => {
    const f = buildGratuitousArp(op === ARP_REPLY ? ARP_REPLY : ARP_REQUEST, sha, spa);
    f.set(tpa, 38);
    return f;
  };
  const badHop = buildUnsolicitedNeighbourAdvertisement(THEIRS, V6);
  badHop[21] = 64;
  const badSum = buildUnsolicitedNeighbourAdvertisement(THEIRS, V6);
  badSum[60] = badSum[60]! ^ 0xff;
  const table: [string, Uint8Array, typeof v4 | typeof v6, string | undefined][] = [
    ['ARP reply from the holder', arp(ARP_REPLY, THEIRS, V4, Uint8Array.of(0, 0, 0, 0)), v4, '02:42:ac:11:00:09'],
    ['gratuitous ARP request from the holder', buildGratuitousArp(ARP_REQUEST, THEIRS, V4), v4, '02:42:ac:11:00:09'],
    ["another host's ARP probe for it", buildArpProbe(THEIRS, V4), v4, '02:42:ac:11:00:09'],
    ['our own probe, looped back', buildArpProbe(OURS, V4), v4, undefined],
    ['our own gratuitous ARP', buildGratuitousArp(ARP_REPLY, OURS, V4), v4, undefined],
    ['a probe for another address', buildArpProbe(THEIRS, other4), v4, undefined],
    ['someone resolving the address (a normal request)', arp(ARP_REQUEST, THEIRS, other4, V4), v4, undefined],
    ['an IPv6 frame while probing IPv4', buildUnsolicitedNeighbourAdvertisement(THEIRS, V6), v4, undefined],
    ['NA for it from the holder', buildUnsolicitedNeighbourAdvertisement(THEIRS, V6), v6, '02:42:ac:11:00:09'],
    ["another host's DAD probe for it", buildDadNeighbourSolicitation(THEIRS, V6), v6, '02:42:ac:11:00:09'],
    ['our own DAD probe', buildDadNeighbourSolicitation(OURS, V6), v6, undefined],
    ['our own NA', buildUnsolicitedNeighbourAdvertisement(OURS, V6), v6, undefined],
    ['NA for another address', buildUnsolicitedNeighbourAdvertisement(THEIRS, other6), v6, undefined],
    ['NA with hop limit 64 (forged or routed)', badHop, v6, undefined],
    ['NA with a bad checksum', badSum, v6, undefined],
    ['an ARP frame while probing IPv6', buildGratuitousArp(ARP_REPLY, THEIRS, V4), v6, undefined],
    ['a runt', Buffer.alloc(20), v6, undefined],
  ];
  for (const [name, frame, subject, want] of table) t.equal(conflictingMac(frame, subject), want, name);
  // A solicitation for it from a real source address is someone resolving it, not a DAD probe.
  const resolving = buildDadNeighbourSolicitation(THEIRS, V6);
  resolving.set(other6, 22);
  t.equal(conflictingMac(resolving, v6), undefined, 'NS from a unicast source (resolution)');
});

t.test('property: a frame from our own MAC is never a conflict', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), (mac, ip4, ip6) => {
        const frames = [buildArpProbe(mac, ip4), buildGratuitousArp(ARP_REPLY, mac, ip4), buildGratuitousArp(ARP_REQUEST, mac, ip4)];
        const frames6 = [buildDadNeighbourSolicitation(mac, ip6), buildUnsolicitedNeighbourAdvertisement(mac, ip6)];
        return (
          frames.every((f) => conflictingMac(f, { family: 'IPv4', address: ip4, mac }) === undefined) &&
          frames6.every((f) => conflictingMac(f, { family: 'IPv6', address: ip6, mac }) === undefined)
        );
      }),
    ),
  );
});

/** Runs the four classic BPF instructions the filter uses: what the kernel would keep. */
function runFilter(program: Buffer, packet: Uint8Array): number {
  const b = Buffer.from(packet);
  let a = 0;
  for (let pc = 0, steps = 0; pc < program.length / 8 && steps < 100; steps++) {
    const code = program.readUInt16LE(pc * 8);
    const jt = program[pc * 8 + 2]!;
    const jf = program[pc * 8 + 3]!;
    const k = program.readUInt32LE(pc * 8 + 4);
    if (code === 0x28) a = k + 2 <= b.length ? b.readUInt16BE(k) : NaN;
    else if (code === 0x30) a = k < b.length ? b[k]! : NaN;
    else if (code === 0x15) {
      if (Number.isNaN(a)) return 0; // the kernel drops a packet on an out-of-bounds load
      pc += a === k ? jt : jf;
    } else if (code === 0x06) return k;
    else throw new Error(`opcode ${code} not expected`);
    if (Number.isNaN(a)) return 0;
    pc++;
  }
  throw new Error('filter did not return');
}

t.test('the IPv6 socket filter keeps neighbour solicitations and advertisements only', async (t) => {
  const filter = neighbourDiscoveryFilter();
  t.equal(filter.length, 9 * 8, 'nine instructions');
  t.ok(runFilter(filter, buildDadNeighbourSolicitation(THEIRS, V6)) > 0, 'NS kept');
  t.ok(runFilter(filter, buildUnsolicitedNeighbourAdvertisement(THEIRS, V6)) > 0, 'NA kept');
  const echo = buildUnsolicitedNeighbourAdvertisement(THEIRS, V6);
  echo[54] = 128;
  t.equal(runFilter(filter, echo), 0, 'ICMPv6 echo request dropped');
  const udp = buildUnsolicitedNeighbourAdvertisement(THEIRS, V6);
  udp[20] = 17;
  t.equal(runFilter(filter, udp), 0, 'UDP dropped');
  t.equal(runFilter(filter, buildArpProbe(THEIRS, V4)), 0, 'ARP dropped');
  t.equal(runFilter(filter, Buffer.alloc(13)), 0, 'a runt dropped');
});

t.test('probe timing: defaults, bounds, total', async (t) => {
  t.same(probeTiming('192.0.2.1', {}), { probes: 2, intervalMs: 30, waitMs: 80, totalMs: 110 });
  t.same(probeTiming('192.0.2.1', { probes: 3, intervalMs: 1000, waitMs: 2000 }), { probes: 3, intervalMs: 1000, waitMs: 2000, totalMs: 4000 }, "RFC 5227's own pace fits");
  for (const [options, field] of [
    [{ probes: 0 }, 'probes'],
    [{ probes: 11 }, 'probes'],
    [{ probes: 1.5 }, 'probes'],
    [{ intervalMs: -1 }, 'intervalMs'],
    [{ intervalMs: Number.NaN }, 'intervalMs'],
    [{ waitMs: 10_001 }, 'waitMs'],
    [{ waitMs: Infinity }, 'waitMs'],
  ] as const) {
    t.throws(() => probeTiming('192.0.2.1', options), { code: 'NETLINK_INVALID_ARGUMENT', context: { field, address: '192.0.2.1' } }, JSON.stringify(options));
  }
});

t.test('IFA_PROTO and a delete of any prefix length, byte for byte', async (t) => {
  const req = { family: 2, prefixLength: 24, linkIndex: 3, address: V4, flags: 0 };
  t.equal(
    hex(encodeAddressRequest(RTM.NEWADDR, NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL, 7, { ...req, protocol: 80 })),
    '38000000' + '1400' + '0506' + '07000000' + '00000000' + '02' + '18' + '00' + '00' + '03000000' +
      '0800' + '0200' + 'c000020a' + // IFA_LOCAL
      '0800' + '0100' + 'c000020a' + // IFA_ADDRESS
      '0800' + '0800' + '00000000' + // IFA_FLAGS
      '0500' + '0b00' + '50' + '000000', // IFA_PROTO 80, padded to 4
    'ip addr add 192.0.2.10/24 dev 3 proto 80',
  );
  t.equal(
    hex(encodeAddressRequest(RTM.DELADDR, NLM_F.REQUEST | NLM_F.ACK, 8, { ...req, prefixLength: 32, anyPrefixLength: true })),
    '28000000' + '1500' + '0500' + '08000000' + '00000000' + '02' + '20' + '00' + '00' + '03000000' + '0800' + '0200' + 'c000020a' + '0800' + '0800' + '00000000',
    'ip addr del 192.0.2.10 dev 3: IFA_LOCAL only',
  );
  const payload = (proto: string): Buffer => Buffer.from('02' + '18' + '00' + '00' + '03000000' + '0800' + '0200' + 'c000020a' + proto, 'hex');
  t.equal(parseAddressPayload(payload('0500' + '0b00' + '50' + '000000')).protocol, 80);
  t.equal(parseAddressPayload(payload('0500' + '0b00' + '00' + '000000')).protocol, undefined, '0 is unspec');
  t.equal(parseAddressPayload(payload('')).protocol, undefined, 'absent');
});
