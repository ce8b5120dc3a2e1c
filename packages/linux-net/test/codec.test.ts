// rtnetlink messages byte for byte (little-endian hosts), and decoding what the kernel sends.
import t from 'tap';
import { endianness } from 'node:os';
import {
  NLM_F,
  RTM,
  clearAckFlag,
  encodeBarrier,
  encodeAddressRequest,
  encodeDeleteLinkRequest,
  encodeDumpRequest,
  encodeGetLinkRequest,
  encodeNewLinkRequest,
  encodeSetLinkUpRequest,
  isMainDefaultRoute,
  parseAddressPayload,
  parseErrorPayload,
  parseLinkPayload,
  parseMessages,
  parseRoutePayload,
} from '../src/rtnl/codec.ts';

t.equal(endianness(), 'LE', 'these vectors are for little-endian hosts (netlink uses host order)');
const V6 = Buffer.from('20010db8000000000000000000000010', 'hex');

t.test('requests, byte for byte', async (t) => {
  const table: [string, Buffer, string][] = [
    [
      'ip addr add 192.0.2.10/24 dev 3 noprefixroute',
      encodeAddressRequest(RTM.NEWADDR, NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL, 7, { family: 2, prefixLength: 24, linkIndex: 3, address: Uint8Array.of(192, 0, 2, 10), flags: 0x200 }),
      // nlmsghdr: len 48, RTM_NEWADDR, REQUEST|ACK|EXCL|CREATE, seq 7, pid 0 | ifaddrmsg: AF_INET /24 flags 0 scope 0 index 3
      '30000000' + '1400' + '0506' + '07000000' + '00000000' + '02' + '18' + '00' + '00' + '03000000' +
        '0800' + '0200' + 'c000020a' + // IFA_LOCAL
        '0800' + '0100' + 'c000020a' + // IFA_ADDRESS
        '0800' + '0800' + '00020000', // IFA_FLAGS = NOPREFIXROUTE
    ],
    [
      'ip addr replace 2001:db8::10/64 dev 3 nodad noprefixroute valid_lft 300 preferred_lft 100',
      encodeAddressRequest(RTM.NEWADDR, NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE, 8, { family: 10, prefixLength: 64, linkIndex: 3, address: V6, flags: 0x202, lifetimes: { valid: 300, preferred: 100 } }),
      '5c000000' + '1400' + '0505' + '08000000' + '00000000' + '0a' + '40' + '02' + '00' + '03000000' +
        '1400' + '0200' + V6.toString('hex') +
        '1400' + '0100' + V6.toString('hex') +
        '0800' + '0800' + '02020000' +
        '1400' + '0600' + '64000000' + '2c010000' + '00000000' + '00000000', // IFA_CACHEINFO preferred 100, valid 300
    ],
    ['ip -6 addr show (dump)', encodeDumpRequest(RTM.GETADDR, 9, 10), '18000000' + '1600' + '0103' + '09000000' + '00000000' + '0a000000' + '00000000'],
    [
      'ip link add kube-lb0 type dummy',
      encodeNewLinkRequest(10, 'kube-lb0', 'dummy'),
      '40000000' + '1000' + '0506' + '0a000000' + '00000000' + '00'.repeat(16) + '0d00' + '0300' + '6b7562652d6c623000' + '000000' + '1000' + '1200' + '0900' + '0100' + '64756d6d79' + '000000',
    ],
    ['ip link set 5 up', encodeSetLinkUpRequest(11, 5), '20000000' + '1000' + '0500' + '0b000000' + '00000000' + '0000' + '0000' + '05000000' + '01000000' + '01000000'],
    ['ip link show eth0', encodeGetLinkRequest(12, { name: 'eth0' }), '2c000000' + '1200' + '0500' + '0c000000' + '00000000' + '00'.repeat(16) + '0900' + '0300' + '6574683000' + '000000'],
    ['barrier: NLMSG_NOOP with REQUEST|ACK', encodeBarrier(14), '10000000' + '0100' + '0500' + '0e000000' + '00000000'],
    [
      'an address change with its ack cleared',
      (() => {
        const m = encodeDeleteLinkRequest(15, 5);
        clearAckFlag(m);
        return m;
      })(),
      '20000000' + '1100' + '0100' + '0f000000' + '00000000' + '0000' + '0000' + '05000000' + '00000000' + '00000000',
    ],
    ['ip link del 5', encodeDeleteLinkRequest(13, 5), '20000000' + '1100' + '0500' + '0d000000' + '00000000' + '0000' + '0000' + '05000000' + '00000000' + '00000000'],
  ];
  for (const [name, got, want] of table) t.equal(got.toString('hex'), want, name);
});

t.test('decoding', async (t) => {
  // Two messages in one datagram: an ack (error 0) and an EEXIST error.
  const ack = Buffer.from('24000000' + '0200' + '0001' + '05000000' + '39300000' + '00000000' + '00'.repeat(16), 'hex');
  const eexist = Buffer.from('24000000' + '0200' + '0001' + '06000000' + '39300000' + 'efffffff' + '00'.repeat(16), 'hex');
  const msgs = parseMessages(Buffer.concat([ack, eexist]));
  t.same(
    msgs.map((m) => [m.type, m.seq, m.pid, parseErrorPayload(m.payload)]),
    [
      [2, 5, 12345, 0],
      [2, 6, 12345, 17],
    ],
  );
  t.same(parseMessages(ack.subarray(0, 20)), [], 'a truncated message is not returned');

  const addr = Buffer.from('0a' + '40' + '80' + '00' + '03000000' + '1400' + '0100' + V6.toString('hex') + '1400' + '0600' + '64000000' + '2c010000' + '00000000' + '00000000' + '0800' + '0800' + '00020000', 'hex');
  t.match(parseAddressPayload(addr), { family: 10, prefixLength: 64, linkIndex: 3, flags: 0x200, preferredLifetime: 100, validLifetime: 300 });
  t.equal(Buffer.from(parseAddressPayload(addr).address).toString('hex'), V6.toString('hex'));

  const link = Buffer.from(
    '00' + '00' + '0100' + '05000000' + '43100100' + '00000000' +
      '0b00' + '0300' + '6c616e3000' + '000000' + // IFLA_IFNAME lan0
      '0a00' + '0100' + '0242ac110002' + '0000' + // IFLA_ADDRESS
      '0800' + '0400' + 'dc050000' + // IFLA_MTU 1500
      '0500' + '1000' + '06' + '000000' + // IFLA_OPERSTATE up
      '1000' + '1200' + '0b00' + '0100' + '627269646765' + '00' + '00', // IFLA_LINKINFO { KIND "bridge" }
    'hex',
  );
  t.match(parseLinkPayload(link), { index: 5, name: 'lan0', mtu: 1500, operState: 'up', kind: 'bridge', flags: 0x11043 });

  const route = Buffer.from('02' + '00' + '00' + '00' + 'fe' + '03' + '00' + '01' + '00000000' + '0800' + '0f00' + 'fe000000' + '0800' + '0400' + '02000000' + '0800' + '0600' + '64000000' + '0800' + '0500' + 'c0000201', 'hex');
  const r = parseRoutePayload(route);
  t.match(r, { family: 2, dstLength: 0, table: 254, type: 1, oif: 2, priority: 100 });
  t.equal(isMainDefaultRoute(r), true);
  t.equal(isMainDefaultRoute({ ...r, table: 255 }), false, 'local table');
  t.equal(isMainDefaultRoute({ ...r, dstLength: 24 }), false, 'not a default');
});
