import t, { type Test } from 'tap';
import fc from 'fast-check';
import { decodeMessage, decodePacket, encodeMessage, encodePacket, LIMITS, MalformedMessage, MessageType, type Message } from '../src/index.ts';

const str = fc.string({ maxLength: 40 });
const u32 = fc.nat(0xffffffff);
const subnets = fc.array(fc.constantFrom('192.0.2.0/24', '2001:db8::/64', '198.51.100.0/25'), { maxLength: 4 });
const status = fc.constantFrom('alive' as const, 'suspect' as const, 'dead' as const, 'left' as const);
const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constant(MessageType.Ping), seq: u32, target: str }),
  fc.record({ type: fc.constant(MessageType.IndirectPing), seq: u32, target: str, targetAddress: str, wantNack: fc.boolean() }),
  fc.record({ type: fc.constant(MessageType.Ack), seq: u32 }),
  fc.record({ type: fc.constant(MessageType.Nack), seq: u32 }),
  fc.record({ type: fc.constant(MessageType.Suspect), incarnation: u32, node: str, from: str }),
  fc.record({ type: fc.constant(MessageType.Alive), incarnation: u32, node: str, address: str, subnets }),
  fc.record({ type: fc.constant(MessageType.Dead), incarnation: u32, node: str, from: str }),
  fc.record({
    type: fc.constant(MessageType.PushPull),
    join: fc.boolean(),
    members: fc.array(fc.record({ name: str, address: str, incarnation: u32, status, subnets }), { maxLength: 5 }),
  }),
);

function malformed(t: Test, bytes: Uint8Array, what: string, decode: (b: Uint8Array) => unknown = decodeMessage): void {
  let caught: unknown;
  try {
    decode(bytes);
  } catch (e) {
    caught = e;
  }
  t.ok(caught instanceof MalformedMessage, `${what}: rejected as malformed`);
}

t.test('property: every message survives a round trip, alone and in a packet', async (t) => {
  fc.assert(fc.property(message, (m) => JSON.stringify(decodeMessage(encodeMessage(m))) === JSON.stringify(m)));
  fc.assert(
    fc.property(fc.array(message, { minLength: 1, maxLength: 6 }), (ms) => JSON.stringify(decodePacket(encodePacket(ms.map(encodeMessage)))) === JSON.stringify(ms)),
  );
  t.pass('round trips held');
});

t.test('wire layout is fixed (append-only codes)', async (t) => {
  t.same([...encodeMessage({ type: MessageType.Ack, seq: 258 })], [3, 0, 0, 1, 2]);
  t.same([...encodeMessage({ type: MessageType.Ping, seq: 1, target: 'ab' })], [1, 0, 0, 0, 1, 2, 97, 98]);
  t.same([...encodePacket([Uint8Array.of(4, 0, 0, 0, 9)])], [1, 0, 5, 4, 0, 0, 0, 9]);
  t.same(MessageType, { Ping: 1, IndirectPing: 2, Ack: 3, Nack: 4, Suspect: 5, Alive: 6, Dead: 7, PushPull: 8 });
});

t.test('malformed input is rejected whole', async (t) => {
  const ack = encodeMessage({ type: MessageType.Ack, seq: 1 });
  malformed(t, ack.subarray(0, 3), 'truncated');
  malformed(t, Uint8Array.of(...ack, 0), 'trailing byte');
  malformed(t, Uint8Array.of(99, 0, 0, 0, 0), 'unknown type');
  malformed(t, Uint8Array.of(), 'empty');
  malformed(t, Uint8Array.of(1, 0, 0, 0, 1, 2, 0xff, 0xfe), 'string that is not UTF-8');
  malformed(t, Uint8Array.of(2, 0, 0, 0, 1, 0, 0, 7), 'indirect ping flag out of range');
  const alive = encodeMessage({ type: MessageType.Alive, incarnation: 1, node: 'a', address: 'b', subnets: [] });
  const tooMany = Uint8Array.of(...alive.subarray(0, alive.length - 1), LIMITS.subnets + 1);
  malformed(t, tooMany, 'too many subnets');
  const pp = encodeMessage({ type: MessageType.PushPull, join: false, members: [{ name: 'a', address: 'b', incarnation: 0, status: 'alive', subnets: [] }] });
  const badStatus = pp.slice();
  badStatus[badStatus.length - 2] = 9;
  malformed(t, badStatus, 'unknown member status');
  malformed(t, Uint8Array.of(0), 'packet with no message', decodePacket);
  malformed(t, Uint8Array.of(2, 0, 5, ...ack), 'packet missing its second message', decodePacket);
  malformed(t, Uint8Array.of(1, 0, 4, ...ack), 'packet with a short length', decodePacket);
});

t.test('encoder refuses what the decoder would refuse', async (t) => {
  t.throws(() => encodeMessage({ type: MessageType.Ping, seq: 1, target: 'x'.repeat(256) }), RangeError);
  t.throws(() => encodeMessage({ type: MessageType.Alive, incarnation: 1, node: 'a', address: 'b', subnets: Array(65).fill('192.0.2.0/24') }), RangeError);
  t.throws(() => encodePacket([]), RangeError);
});

t.test('property: random bytes never crash the decoder', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
      try {
        decodePacket(b);
      } catch (e) {
        return e instanceof MalformedMessage;
      }
      return true;
    }),
    { numRuns: 3000 },
  );
  t.pass('only MalformedMessage is ever thrown');
});
