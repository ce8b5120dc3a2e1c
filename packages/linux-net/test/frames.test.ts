// GARP and NA frames byte for byte, checksums against known vectors, and properties.
import t from 'tap';
import fc from 'fast-check';
import { ARP_REPLY, ARP_REQUEST, buildGratuitousArp, buildUnsolicitedNeighbourAdvertisement, icmpv6Checksum, parseArpFrame, parseNeighbourAdvertisementFrame } from '../src/index.ts';
import { onesComplementSum } from '../src/announce/frames.ts';

const MAC = Uint8Array.of(0x02, 0x42, 0xac, 0x11, 0x00, 0x02);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const V6 = Buffer.from('20010db8000000000000000000000010', 'hex');

t.test('gratuitous ARP frames, field by field', async (t) => {
  const table = [
    {
      name: 'request (arping -U): target MAC zero',
      frame: buildGratuitousArp(ARP_REQUEST, MAC, Uint8Array.of(192, 0, 2, 10)),
      // dst broadcast | src | ARP | Ethernet, IPv4, 6, 4 | op 1 | sha | spa | tha | tpa
      want: 'ffffffffffff' + '0242ac110002' + '0806' + '0001' + '0800' + '06' + '04' + '0001' + '0242ac110002' + 'c000020a' + '000000000000' + 'c000020a',
    },
    {
      name: 'reply (arping -A): target MAC is the sender',
      frame: buildGratuitousArp(ARP_REPLY, MAC, Uint8Array.of(203, 0, 113, 255)),
      want: 'ffffffffffff' + '0242ac110002' + '0806' + '0001' + '0800' + '06' + '04' + '0002' + '0242ac110002' + 'cb0071ff' + '0242ac110002' + 'cb0071ff',
    },
  ];
  for (const row of table) t.equal(hex(row.frame), row.want, row.name);
  t.throws(() => buildGratuitousArp(ARP_REQUEST, MAC.subarray(0, 5), Uint8Array.of(192, 0, 2, 1)), RangeError);
  t.throws(() => buildGratuitousArp(ARP_REQUEST, MAC, V6), RangeError);
});

t.test('unsolicited neighbour advertisement, field by field', async (t) => {
  const f = buildUnsolicitedNeighbourAdvertisement(MAC, V6);
  const want =
    '333300000001' + '0242ac110002' + '86dd' + // Ethernet to the all-nodes group MAC
    '60000000' + '0020' + '3a' + 'ff' + // IPv6: payload 32, ICMPv6, hop limit 255
    '20010db8000000000000000000000010' + 'ff020000000000000000000000000001' + // from the target, to ff02::1
    '88' + '00' + '4cb8' + '20000000' + // NA, code 0, checksum, flags: Override only
    '20010db8000000000000000000000010' + // target
    '02' + '01' + '0242ac110002'; // target link-layer address option
  t.equal(hex(f), want);
  t.equal(f.length, 86);
});

t.test('checksums against known vectors', async (t) => {
  // RFC 1071 section 3's worked example.
  t.equal(onesComplementSum(Buffer.from('0001f203f4f5f6f7', 'hex')), 0xddf2);
  t.equal(onesComplementSum(Buffer.from('01', 'hex')), 0x0100, 'an odd byte is padded with zero');
  t.equal(onesComplementSum(Buffer.from('ffffffff', 'hex')), 0xffff, 'carries fold');
  const icmp = Buffer.from('880000002000000020010db800000000000000000000001002010242ac110002', 'hex');
  t.equal(icmpv6Checksum(V6, Buffer.from('ff020000000000000000000000000001', 'hex'), icmp), 0x4cb8, 'the NA above, computed independently');
});

t.test('properties: every NA verifies and parses back; every GARP parses back', async (t) => {
  const mac = fc.uint8Array({ minLength: 6, maxLength: 6 });
  t.doesNotThrow(() => fc.assert(
    fc.property(mac, fc.uint8Array({ minLength: 16, maxLength: 16 }), (m, target) => {
      const na = parseNeighbourAdvertisementFrame(buildUnsolicitedNeighbourAdvertisement(m, target));
      return !!na && na.checksumValid && na.override && !na.solicited && na.hopLimit === 255 && hex(na.target) === hex(target) && hex(na.targetMac!) === hex(m) && hex(na.sourceMac) === hex(m);
    }),
  ));
  t.doesNotThrow(() => fc.assert(
    fc.property(mac, fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.constantFrom(ARP_REQUEST, ARP_REPLY), (m, ip, op) => {
      const arp = parseArpFrame(buildGratuitousArp(op, m, ip));
      return !!arp && arp.op === op && hex(arp.senderMac) === hex(m) && hex(arp.senderIp) === hex(ip) && hex(arp.targetIp) === hex(ip) && hex(arp.destinationMac) === 'ffffffffffff';
    }),
  ));
  t.doesNotThrow(() => fc.assert(
    fc.property(mac, fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 54, max: 85 }), fc.integer({ min: 1, max: 255 }), (m, target, at, flip) => {
      const f = buildUnsolicitedNeighbourAdvertisement(m, target);
      f[at]! ^= flip;
      const na = parseNeighbourAdvertisementFrame(f);
      // Any corruption of the ICMPv6 message is either unparseable or fails the checksum.
      return !na || !na.checksumValid;
    }),
  ));
});

t.test('parsers reject other frames', async (t) => {
  t.equal(parseArpFrame(buildUnsolicitedNeighbourAdvertisement(MAC, V6)), undefined);
  t.equal(parseNeighbourAdvertisementFrame(buildGratuitousArp(ARP_REQUEST, MAC, Uint8Array.of(192, 0, 2, 1))), undefined);
  t.equal(parseArpFrame(Buffer.alloc(10)), undefined, 'too short');
});
