// The gossip Secret, without an API server: every way a Secret can be wrong and the
// message naming the Secret and the key; keys replaced in a running keyring; the
// watcher's reactions (with the in-memory API of @purelb/k8s-glue/testing).
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { Keyring, SealedEnvelope } from '@purelb/election';
import { MetricsRegistry } from '@purelb/k8s-glue';
import { FakeKubeClient } from '@purelb/k8s-glue/testing';
import { GossipSecretError, GossipSecretWatcher, parseGossipKeys, replaceKeys } from '../src/gossip-secret.ts';

const ref = { namespace: 'purelb', name: 'memberlist' };
/** A Secret's data value: base64 of the stored text, as the API serves it. */
const stored = (text: string | Buffer): string => Buffer.from(text).toString('base64');
const keyText = (n = 32): string => randomBytes(n).toString('base64');

t.test('validation: each refused Secret names the Secret, the key and what is wrong', async (t) => {
  const raw32 = randomBytes(32);
  const table: [string, Record<string, string> | undefined, string, string][] = [
    ['no data at all', undefined, 'GOSSIP_SECRET_NO_KEY', 'Secret purelb/memberlist: has no key "key"'],
    ['no "key"', { keys: stored(keyText()) }, 'GOSSIP_SECRET_NO_KEY', 'Secret purelb/memberlist: has no key "key"'],
    ['"key" empty', { key: '' }, 'GOSSIP_SECRET_NO_KEY', 'Secret purelb/memberlist key "key": is empty'],
    ['"key" blank', { key: stored('  \n') }, 'GOSSIP_SECRET_NO_KEY', 'Secret purelb/memberlist key "key": is empty'],
    ['not base64', { key: stored('not base64!') }, 'GOSSIP_SECRET_NOT_BASE64', 'Secret purelb/memberlist key "key": not base64'],
    ['base64 of 6 bytes', { key: stored('c2VjcmV0') }, 'GOSSIP_SECRET_KEY_LENGTH', 'Secret purelb/memberlist key "key": decodes to 6 bytes, need 32'],
    ['base64 of 16 bytes', { key: stored(keyText(16)) }, 'GOSSIP_SECRET_KEY_LENGTH', 'Secret purelb/memberlist key "key": decodes to 16 bytes, need 32'],
    ['base64 of 33 bytes', { key: stored(keyText(33)) }, 'GOSSIP_SECRET_KEY_LENGTH', 'Secret purelb/memberlist key "key": decodes to 33 bytes, need 32'],
    ['the 32 raw bytes instead of their text', { key: stored(raw32) }, 'GOSSIP_SECRET_NOT_BASE64', 'Secret purelb/memberlist key "key": not base64 (it holds 32 raw bytes: store their base64 text instead'],
    ['URL-safe alphabet', { key: stored(keyText().replace(/\+/g, '-').replace(/\//g, '_') + '-_') }, 'GOSSIP_SECRET_NOT_BASE64', 'Secret purelb/memberlist key "key": not base64'],
    ['padding in the middle', { key: stored('AAAA=AAA') }, 'GOSSIP_SECRET_NOT_BASE64', 'Secret purelb/memberlist key "key": not base64'],
    ['a bad rotation key', { key: stored(keyText()), keys: stored('ab!c') }, 'GOSSIP_SECRET_NOT_BASE64', 'Secret purelb/memberlist key "keys": not base64'],
    ['the second rotation key short', { key: stored(keyText()), keys: stored(`${keyText()},${keyText(8)}`) }, 'GOSSIP_SECRET_KEY_LENGTH', 'Secret purelb/memberlist key "keys" entry 2: decodes to 8 bytes, need 32'],
  ];
  for (const [what, data, code, message] of table) {
    let err: unknown;
    try {
      parseGossipKeys(ref, data);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof GossipSecretError, `${what}: a GossipSecretError`);
    if (!(err instanceof GossipSecretError)) continue;
    t.equal(err.code, code, `${what}: code`);
    t.ok(err.message.startsWith(message), `${what}: "${err.message}" starts with "${message}"`);
    t.equal(err.secret, 'purelb/memberlist', `${what}: secret`);
    t.notMatch(err.message, /\n/, `${what}: one line`);
  }
});

t.test('validation: accepted Secrets, the sealing key first, duplicates once', async (t) => {
  const a = keyText();
  const b = keyText();
  const unpadded = randomBytes(32).toString('base64').replace(/=+$/, '');
  t.same(parseGossipKeys(ref, { key: stored(a) }), [Buffer.from(a, 'base64')]);
  t.same(parseGossipKeys(ref, { key: stored(`  ${a}\n`) }), [Buffer.from(a, 'base64')], 'surrounding whitespace is fine');
  t.same(parseGossipKeys(ref, { key: stored(unpadded) }), [Buffer.from(unpadded, 'base64')], 'unpadded base64 is fine');
  t.same(parseGossipKeys(ref, { key: stored(a), keys: stored(`${b}, ${a},`) }), [Buffer.from(a, 'base64'), Buffer.from(b, 'base64')], 'rotation keys after the sealing key, each once, empty entries skipped');
});

t.test('replaceKeys: a running envelope seals with the new key at once and stops opening a removed one', async (t) => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const live = new Keyring([k1]);
  const sender = new SealedEnvelope({ keyring: live });
  const onlyK1 = new SealedEnvelope({ keyring: new Keyring([k1]) });
  const onlyK2 = new SealedEnvelope({ keyring: new Keyring([k2]) });
  const payload = Buffer.from('ping');
  t.ok(onlyK1.open(sender.seal(payload), 1024).ok, 'before: k1 seals');
  // Rotation step 1: accept k2, keep sealing with k1.
  replaceKeys(live, [k1, k2]);
  t.same(live.keys, [k1, k2]);
  t.ok(onlyK1.open(sender.seal(payload), 1024).ok, 'step 1: still k1');
  t.ok(sender.open(onlyK2.seal(payload), 1024).ok, 'step 1: k2 packets are accepted');
  // Step 2: seal with k2, drop k1.
  replaceKeys(live, [k2]);
  t.same(live.keys, [k2]);
  t.ok(onlyK2.open(sender.seal(payload), 1024).ok, 'step 2: k2 seals');
  t.same(sender.open(onlyK1.seal(payload), 1024), { ok: false, reason: 'forged' }, 'step 2: k1 packets are dropped');
  replaceKeys(live, []);
  t.same(live.keys, [k2], 'no keys: the keyring is left as it is');
});

const path = '/api/v1/namespaces/purelb/secrets';
const secretObj = (data: Record<string, string>) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'memberlist', namespace: 'purelb' }, data });
const waitUntil = async (what: string, check: () => boolean): Promise<void> => {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
};

t.test('the watcher: a valid change is applied, an invalid or deleted Secret keeps the last keys and is reported once', async (t) => {
  const client = new FakeKubeClient();
  const a = keyText();
  const b = keyText();
  await client.create(path, secretObj({ key: stored(a) }));
  const applied: Buffer[][] = [];
  const events: string[] = [];
  const logs: string[] = [];
  const log = { info: (_: object, m?: string) => logs.push(`info ${m}`), warn: (_: object, m?: string) => logs.push(`warn ${m}`), error: () => undefined, debug: () => undefined };
  const registry = new MetricsRegistry();
  const w = new GossipSecretWatcher(ref, [Buffer.from(a, 'base64')], {
    client,
    log,
    registry,
    events: { event: (r, type, reason, message) => events.push(`${r.kind} ${r.namespace}/${r.name} ${type} ${reason}: ${message}`) },
    apply: (keys) => applied.push(keys),
  });
  t.teardown(() => w.stop());
  const validMetric = (): string | undefined => /^purelb_gossip_secret_valid (\d)$/m.exec(registry.metrics())?.[1];
  w.start();
  await w.synced();
  t.same(applied, [], 'the same keys as at start: nothing to apply');
  t.equal(validMetric(), '1');

  await client.mergePatch(`${path}/memberlist`, { data: { key: stored(b) } });
  await waitUntil('the new key to be applied', () => applied.length === 1);
  t.same(applied[0], [Buffer.from(b, 'base64')], 'a valid change replaces the keys');

  await client.mergePatch(`${path}/memberlist`, { data: { key: stored('c2VjcmV0') } });
  await waitUntil('the Warning', () => events.length === 1);
  t.equal(events[0], 'Secret purelb/memberlist Warning InvalidGossipSecret: Secret purelb/memberlist key "key": decodes to 6 bytes, need 32; the last valid gossip keys stay in use');
  t.equal(validMetric(), '0');
  t.same(w.keys, [Buffer.from(b, 'base64')], 'the last valid keys stay');
  await client.mergePatch(`${path}/memberlist`, { metadata: { labels: { touched: 'yes' } } });
  await new Promise((r) => setTimeout(r, 100));
  t.equal(events.length, 1, 'the same problem again: no second Warning');
  t.equal(logs.filter((l) => l.startsWith('warn')).length, 1, 'and no second log line');

  await client.mergePatch(`${path}/memberlist`, { data: { key: stored(a) } });
  await waitUntil('the fixed Secret to be applied', () => applied.length === 2);
  t.equal(validMetric(), '1');
  t.ok(logs.includes('info the gossip Secret purelb/memberlist is valid again'));

  await client.delete(`${path}/memberlist`);
  await waitUntil('the deletion Warning', () => events.length === 2);
  t.match(events[1], /Warning GossipSecretDeleted: Secret purelb\/memberlist was deleted; the last valid gossip keys stay in use/);
  t.equal(validMetric(), '0');
  t.same(w.keys, [Buffer.from(a, 'base64')]);
  t.equal(applied.length, 2, 'nothing applied on deletion');
});
