import t from 'tap';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { addressFromBytes, formatAddress, parseAddress } from '../src/address.ts';

t.test('parseAddress accepts canonical v4 and v6 text', async (t) => {
  const table: [string, 'IPv4' | 'IPv6', bigint][] = [
    ['192.0.2.1', 'IPv4', 0xc0000201n],
    [' 203.0.113.255 ', 'IPv4', 0xcb0071ffn],
    ['0.0.0.0', 'IPv4', 0n],
    ['255.255.255.255', 'IPv4', 0xffffffffn],
    ['2001:db8::1', 'IPv6', 0x20010db8000000000000000000000001n],
    ['::', 'IPv6', 0n],
    ['2001:DB8::A', 'IPv6', 0x20010db800000000000000000000000an],
    ['::ffff:192.0.2.1', 'IPv6', 0xffffc0000201n],
  ];
  for (const [text, family, value] of table) t.same(parseAddress(text), { family, value }, text);
});

t.test('parseAddress refuses what nobody means in a pool', async (t) => {
  for (const text of ['', '192.0.2', '127.1', '0x7f.0.0.1', '192.0.2.256', '2001:db8::1%eth0', '2001:db8:::1', 'host', '192.0.2.1/24']) {
    t.equal(parseAddress(text), undefined, JSON.stringify(text));
  }
});

t.test('formatAddress writes RFC 5952', async (t) => {
  const table: [string, string][] = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['2001:db8::', '2001:db8::'],
    ['fc00:270:154:0:8100::4', 'fc00:270:154:0:8100::4'],
  ];
  for (const [input, want] of table) {
    const a = parseAddress(input)!;
    t.equal(formatAddress(a.family, a.value), want, input);
  }
  t.equal(formatAddress('IPv4', 0xc0000201n), '192.0.2.1');
});

t.test('formatAddress agrees with ipaddr.js on random values (property)', async (t) => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (v) => {
      const parts: number[] = [];
      for (let i = 7; i >= 0; i--) parts.push(Number((v >> BigInt(i * 16)) & 0xffffn));
      const want = new ipaddr.IPv6(parts).toRFC5952String();
      return formatAddress('IPv6', v) === want && parseAddress(want)?.value === v;
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 0xffffffffn }), (v) => parseAddress(formatAddress('IPv4', v))?.value === v),
    { numRuns: 2000 },
  );
  t.pass('no counterexample');
});

t.test('parseAddress answers the same from its memory, which stays bounded and cannot be altered', async (t) => {
  const first = parseAddress('2001:db8::7');
  t.ok(Object.isFrozen(first), 'a remembered answer cannot be changed by one caller for the others');
  t.equal(parseAddress('2001:db8::7'), first, 'the second answer is the remembered one');
  t.equal(parseAddress('2001:db8::07'), parseAddress('2001:db8::07'));
  t.same(parseAddress('2001:db8::07'), first, 'another spelling, the same address');
  t.equal(parseAddress('192.0.2.010'), undefined);
  t.equal(parseAddress('192.0.2.010'), undefined, 'a refusal is remembered as a refusal');
  // Far more distinct texts than the memory holds: every answer is still right.
  for (let i = 0; i < 10_000; i++) {
    const text = `2001:db8::${i.toString(16)}`;
    const a = parseAddress(text);
    if (a?.value !== 0x20010db8n * 2n ** 96n + BigInt(i)) t.fail(`${text} parsed as ${a?.value}`);
  }
  t.same(parseAddress('2001:db8::7'), { family: 'IPv6', value: 0x20010db8n * 2n ** 96n + 7n }, 'right after the memory was cleared');
});

t.test('addressFromBytes reads network order; 4 bytes are IPv4, 16 IPv6', async (t) => {
  const table: [number[], string | undefined][] = [
    [[192, 0, 2, 1], '192.0.2.1'],
    [[203, 0, 113, 255], '203.0.113.255'],
    [[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], '2001:db8::1'],
    [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1], '::ffff:c000:201'],
    [[], undefined],
    [[192, 0, 2], undefined],
    [[0, 0, 0, 0, 0, 0, 0, 0], undefined],
  ];
  for (const [bytes, want] of table) {
    const a = addressFromBytes(Uint8Array.from(bytes));
    t.equal(a && formatAddress(a.family, a.value), want, bytes.join('.'));
  }
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
      const a = addressFromBytes(bytes)!;
      return a.family === 'IPv6' && formatAddress('IPv6', a.value) === (ipaddr.fromByteArray(Array.from(bytes)) as ipaddr.IPv6).toRFC5952String();
    }),
    { numRuns: 1000 },
  );
});
