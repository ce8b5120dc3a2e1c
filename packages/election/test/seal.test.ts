import t from 'tap';
import { ElectionError, Keyring, PlainEnvelope, SEAL_OVERHEAD, SealedEnvelope } from '../src/index.ts';

const k1 = Buffer.alloc(32, 1);
const k2 = Buffer.alloc(32, 2);
const payload = Buffer.from('hello members');

function pair(senderKeys: Buffer[], receiverKeys: Buffer[], clock = () => 1_000_000) {
  return {
    sender: new SealedEnvelope({ keyring: new Keyring(senderKeys), clock }),
    receiver: new SealedEnvelope({ keyring: new Keyring(receiverKeys), clock }),
  };
}

t.test('sealed packets open with the same key and carry the overhead', async (t) => {
  const { sender, receiver } = pair([k1], [k1]);
  const sealed = sender.seal(payload);
  t.equal(sealed.length, payload.length + SEAL_OVERHEAD);
  t.equal(sealed[0], 1, 'version byte');
  t.notOk(Buffer.from(sealed).includes(payload), 'the payload is not visible');
  const opened = receiver.open(sealed, 1400);
  t.ok(opened.ok);
  if (opened.ok) t.same(Buffer.from(opened.payload), payload);
  const again = sender.seal(payload);
  t.not(Buffer.from(again).toString('hex'), Buffer.from(sealed).toString('hex'), 'a fresh nonce every time');
});

t.test('drops: forged, tampered, unsealed, oversized, replayed, stale', async (t) => {
  let now = 1_000_000;
  const { sender, receiver } = pair([k1], [k1], () => now);
  const other = new SealedEnvelope({ keyring: new Keyring([k2]), clock: () => now });
  const reason = (b: Uint8Array, max = 1400) => {
    const r = receiver.open(b, max);
    return r.ok ? 'ok' : r.reason;
  };
  t.equal(reason(other.seal(payload)), 'forged', 'sealed with a key we do not hold');
  const sealed = sender.seal(payload);
  for (const at of [0, 3, 10, 20, sealed.length - 1]) {
    const bad = Uint8Array.from(sealed);
    bad[at]! ^= 0x40;
    t.equal(reason(bad), at === 0 ? 'unsealed' : 'forged', `flipping byte ${at}`);
  }
  t.equal(reason(new PlainEnvelope().seal(payload)), 'unsealed', 'a clear-text packet');
  t.equal(reason(Uint8Array.of(1, 2, 3)), 'unsealed', 'too short');
  t.equal(reason(sender.seal(Buffer.alloc(2000))), 'oversized');
  t.equal(reason(sealed), 'ok', 'first delivery');
  t.equal(reason(sealed), 'replayed', 'second delivery');
  const older = sender.seal(payload);
  const newer = sender.seal(payload);
  t.equal(reason(newer), 'ok');
  t.equal(reason(older), 'ok', 'reordering within the window is fine');
  t.equal(reason(older), 'replayed');
  const late = sender.seal(payload);
  now += 61_000;
  t.equal(reason(late), 'replayed', 'older than the replay window');
  const early = sender.seal(payload);
  now -= 122_000;
  t.equal(reason(early), 'replayed', 'from too far in the future');
  now += 61_000;
  let seq: Uint8Array[] = [];
  for (let i = 0; i < 1100; i++) seq.push(sender.seal(payload));
  t.equal(reason(seq[1099]!), 'ok');
  t.equal(reason(seq[0]!), 'replayed', 'more than 1024 packets behind the newest');
  t.equal(reason(seq[500]!), 'ok', 'within the counter window');
  seq = [];
});

t.test('keyring rotation: add, use, remove', async (t) => {
  const ring = new Keyring([k1]);
  const receiverRing = new Keyring([k1]);
  const sender = new SealedEnvelope({ keyring: ring });
  const receiver = new SealedEnvelope({ keyring: receiverRing });
  receiverRing.add(k2);
  t.ok(receiver.open(sender.seal(payload), 1400).ok, 'old key still accepted');
  ring.add(k2);
  ring.use(k2);
  t.ok(receiver.open(sender.seal(payload), 1400).ok, 'new key accepted');
  t.ok(new SealedEnvelope({ keyring: new Keyring([k1]) }).open(sender.seal(payload), 1400).ok === false, 'a member that never added the new key drops it');
  receiverRing.use(k2);
  receiverRing.remove(k1);
  t.ok(receiver.open(sender.seal(payload), 1400).ok, 'new key still accepted after the old one went');
  t.equal(ring.primary, ring.keys[0]);
  t.ok(ring.primary.equals(k2));
  t.throws(() => ring.remove(k2), ElectionError, 'cannot remove the sealing key');
  t.throws(() => new Keyring([]), ElectionError);
  t.throws(() => new Keyring([Buffer.alloc(16)]), { code: 'ELECTION_INVALID_KEY' });
  const b64 = Keyring.fromBase64([k1.toString('base64')]);
  t.ok(b64.primary.equals(k1));
  t.equal(Keyring.generateKey().length, 32);
});

t.test('plain envelope', async (t) => {
  const p = new PlainEnvelope();
  const r = p.open(p.seal(payload), 1400);
  t.ok(r.ok);
  const sealed = new SealedEnvelope({ keyring: new Keyring([k1]) }).seal(payload);
  t.same(p.open(sealed, 1400), { ok: false, reason: 'malformed' }, 'a sealed packet is unreadable without keys');
  t.same(p.open(new Uint8Array(1500), 1400), { ok: false, reason: 'oversized' });
});
