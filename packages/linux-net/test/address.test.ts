import t from 'tap';
import fc from 'fast-check';
import { formatAddressBytes, parseAddressText, parseMac, formatMac } from '../src/address.ts';

t.test('address text', async (t) => {
  const ok: [string, string, number, boolean][] = [
    ['192.0.2.1', 'IPv4', 32, false],
    ['192.0.2.1/24', 'IPv4', 24, true],
    ['2001:db8::1', 'IPv6', 128, false],
    ['2001:DB8:0:0::1/64', 'IPv6', 64, true],
    ['0.0.0.0/0', 'IPv4', 0, true],
  ];
  for (const [text, family, len, had] of ok) t.match(parseAddressText(text), { family, prefixLength: len, hadPrefix: had }, text);
  for (const bad of ['', '10.1', '192.0.2.256', '192.0.2.1/33', '2001:db8::1/129', '192.0.2.1/', '192.0.2.1/a', 'fe80::1%eth0', 'host']) {
    t.throws(() => parseAddressText(bad), { code: 'NETLINK_INVALID_ARGUMENT' }, `rejects "${bad}"`);
  }
  t.equal(formatAddressBytes(parseAddressText('2001:0db8:0000:0000:0001:0000:0000:0001').bytes), '2001:db8::1:0:0:1', 'RFC 5952');
});

// Which subnet holds an address is ipam-core's (cidr.test.ts there); here only that the
// bytes netlink carries and the text agree.
t.test('address bytes and text round-trip', async (t) => {
  t.equal(formatAddressBytes(parseAddressText('198.51.100.200/25').bytes), '198.51.100.200');
  t.equal(formatAddressBytes(parseAddressText('::ffff:192.0.2.1').bytes), '::ffff:c000:201', 'an IPv4-mapped address stays IPv6');
  t.throws(() => formatAddressBytes(Uint8Array.of(192, 0, 2)), { code: 'NETLINK_INVALID_ARGUMENT' }, 'neither 4 nor 16 bytes');
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 4, maxLength: 4 })), (bytes) => {
      return formatAddressBytes(parseAddressText(formatAddressBytes(bytes)).bytes) === formatAddressBytes(bytes) && parseAddressText(formatAddressBytes(bytes)).bytes.every((b, i) => b === bytes[i]);
    }),
  );
});

t.test('MAC text', async (t) => {
  t.equal(formatMac(parseMac('02:42:AC:11:00:02')), '02:42:ac:11:00:02');
  t.throws(() => parseMac('02:42:ac:11:00'), { code: 'NETLINK_INVALID_ARGUMENT' });
});
