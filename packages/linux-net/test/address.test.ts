import t from 'tap';
import fc from 'fast-check';
import { formatAddressBytes, networkBytes, parseAddressText, subnetContains, parseMac, formatMac } from '../src/address.ts';

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

t.test('subnets', async (t) => {
  const b = (s: string): Uint8Array => parseAddressText(s).bytes;
  t.equal(formatAddressBytes(networkBytes(b('198.51.100.200'), 25)), '198.51.100.128');
  t.equal(formatAddressBytes(networkBytes(b('2001:db8:1:2:3::9'), 48)), '2001:db8:1::');
  t.ok(subnetContains(b('192.0.2.0'), 24, b('192.0.2.255')));
  t.notOk(subnetContains(b('192.0.2.0'), 25, b('192.0.2.128')));
  t.notOk(subnetContains(b('192.0.2.0'), 24, b('2001:db8::1')), 'families never mix');
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 128 }), (bytes, len) => {
      const net = networkBytes(bytes, len);
      return subnetContains(net, len, bytes) && formatAddressBytes(parseAddressText(formatAddressBytes(bytes)).bytes) === formatAddressBytes(bytes);
    }),
  );
});

t.test('MAC text', async (t) => {
  t.equal(formatMac(parseMac('02:42:AC:11:00:02')), '02:42:ac:11:00:02');
  t.throws(() => parseMac('02:42:ac:11:00'), { code: 'NETLINK_INVALID_ARGUMENT' });
});
