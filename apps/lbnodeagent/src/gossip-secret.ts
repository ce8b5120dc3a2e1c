// The gossip Secret: the keys that seal every membership packet. Read and checked at
// start (an invalid Secret stops the agent with one line naming the Secret and the key),
// then watched: a valid change replaces the keys of the running membership, an invalid,
// emptied or deleted Secret keeps the last valid keys and is reported once (log line,
// Warning Event, metric purelb_gossip_secret_valid 0).
import { randomBytes } from 'node:crypto';
import type { Keyring } from '@purelb/election';
import { Gauge, Informer, KubeApiError, type KubeClient, type Logger, type MetricsRegistry, type ObjectReference } from '@purelb/k8s-glue';

/** Bytes of an AES-256 key. */
export const GOSSIP_KEY_BYTES = 32;

/** Every way the gossip Secret can be wrong, as a stable code. */
export const GossipSecretErrorCode = {
  /** The Secret does not exist (and the agent was not asked to create it). */
  Missing: 'GOSSIP_SECRET_MISSING',
  /** The API server refused to give it (RBAC, unreachable). */
  Unreadable: 'GOSSIP_SECRET_UNREADABLE',
  /** It has no `key`, or `key` is empty. */
  NoKey: 'GOSSIP_SECRET_NO_KEY',
  /** A key is not base64 text. */
  NotBase64: 'GOSSIP_SECRET_NOT_BASE64',
  /** A key decodes to other than 32 bytes. */
  KeyLength: 'GOSSIP_SECRET_KEY_LENGTH',
} as const;

export type GossipSecretErrorCode = (typeof GossipSecretErrorCode)[keyof typeof GossipSecretErrorCode];

/** A gossip Secret that cannot be used. The message names the Secret and the key. */
export class GossipSecretError extends Error {
  override readonly name = 'GossipSecretError';
  readonly code: GossipSecretErrorCode;
  /** `namespace/name`. */
  readonly secret: string;
  /** The data key at fault (`key`, `keys`), or '' when the Secret as a whole is. */
  readonly key: string;

  /** `entry` (1-based) names one of the comma-separated keys of `keys`. */
  constructor(code: GossipSecretErrorCode, secret: string, key: string, what: string, entry?: number) {
    super(`Secret ${secret}${key ? ` key "${key}"` : ''}${entry === undefined ? '' : ` entry ${entry}`}: ${what}`);
    this.code = code;
    this.secret = secret;
    this.key = key;
  }
}

export interface SecretRef {
  readonly namespace: string;
  readonly name: string;
}

/** The parts of a Secret read here. */
export interface GossipSecret {
  readonly metadata: { readonly name: string; readonly namespace?: string | undefined; readonly resourceVersion?: string | undefined; readonly uid?: string | undefined };
  /** As the API serves it: each value base64 of the stored bytes. */
  readonly data?: Readonly<Record<string, string>> | null | undefined;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** One key's text (as the Secret holds it, decoded once) into its 32 bytes; throws naming the Secret and the key. */
function decodeKey(secret: string, key: string, raw: Buffer, entry?: number): Buffer {
  const text = raw.toString('utf8').trim();
  if (text === '') throw new GossipSecretError(GossipSecretErrorCode.NoKey, secret, key, 'is empty; it must hold the base64 text of 32 random bytes (openssl rand -base64 32)', entry);
  if (!BASE64.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    // A common slip: the 32 raw bytes stored as the value instead of their base64 text.
    const hint = raw.length === GOSSIP_KEY_BYTES ? ` (it holds ${GOSSIP_KEY_BYTES} raw bytes: store their base64 text instead, as the chart does)` : '';
    throw new GossipSecretError(GossipSecretErrorCode.NotBase64, secret, key, `not base64${hint}`, entry);
  }
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== GOSSIP_KEY_BYTES) {
    throw new GossipSecretError(GossipSecretErrorCode.KeyLength, secret, key, `decodes to ${bytes.length} bytes, need ${GOSSIP_KEY_BYTES}`, entry);
  }
  return bytes;
}

/**
 * The keys of a gossip Secret, the sealing key first: `key` seals and opens; `keys`
 * (optional, comma-separated) are also accepted, for rotation without a gap. Each is the
 * base64 text of 32 bytes. Throws a GossipSecretError naming the Secret and the key.
 */
export function parseGossipKeys(ref: SecretRef, data: Readonly<Record<string, string>> | null | undefined): Buffer[] {
  const secret = `${ref.namespace}/${ref.name}`;
  const field = (name: string): Buffer | undefined => {
    const v = data?.[name];
    return typeof v === 'string' ? Buffer.from(v, 'base64') : undefined;
  };
  const main = field('key');
  if (main === undefined) throw new GossipSecretError(GossipSecretErrorCode.NoKey, secret, '', 'has no key "key" (the sealing key: the base64 text of 32 random bytes)');
  const keys = [decodeKey(secret, 'key', main)];
  const extra = field('keys');
  if (extra !== undefined) {
    const entries = extra.toString('utf8').split(',');
    entries.forEach((entry, i) => {
      if (entry.trim() === '') return;
      const k = decodeKey(secret, 'keys', Buffer.from(entry), entries.length > 1 ? i + 1 : undefined);
      if (!keys.some((x) => x.equals(k))) keys.push(k);
    });
  }
  return keys;
}

/**
 * Makes a running keyring hold exactly `keys`, sealing with the first, in one synchronous
 * step (no packet is sealed or opened in between): new keys are accepted first, the new
 * sealing key is used, then keys no longer listed stop being accepted.
 */
export function replaceKeys(keyring: Keyring, keys: readonly Uint8Array[]): void {
  if (keys.length === 0) return;
  for (const k of keys) keyring.add(k);
  keyring.use(keys[0]!);
  for (const old of [...keyring.keys]) if (!keys.some((k) => Buffer.from(k).equals(old))) keyring.remove(old);
}

/** True when the keyring holds exactly these keys in this order. */
export function sameKeys(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return a.length === b.length && a.every((k, i) => Buffer.from(k).equals(Buffer.from(b[i]!)));
}

/**
 * Reads the gossip Secret at start. Absent and `create`: makes one with a random key
 * (another agent making it first is fine: theirs is read). Throws GossipSecretError.
 */
export async function loadGossipKeys(client: KubeClient, ref: SecretRef, create: boolean, log: Logger): Promise<Buffer[]> {
  const path = `/api/v1/namespaces/${ref.namespace}/secrets/${ref.name}`;
  const secret = `${ref.namespace}/${ref.name}`;
  const read = async (): Promise<GossipSecret> => {
    try {
      return await client.get<GossipSecret>(path);
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) throw new GossipSecretError(GossipSecretErrorCode.Missing, secret, '', 'does not exist; create it with a key "key" (the base64 text of 32 random bytes), or start the agent with --create-memberlist-secret');
      throw new GossipSecretError(GossipSecretErrorCode.Unreadable, secret, '', `cannot be read: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  let s: GossipSecret;
  try {
    s = await read();
  } catch (e) {
    if (!(create && e instanceof GossipSecretError && e.code === GossipSecretErrorCode.Missing)) throw e;
    try {
      await client.create(`/api/v1/namespaces/${ref.namespace}/secrets`, { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: ref.name, namespace: ref.namespace }, stringData: { key: randomBytes(GOSSIP_KEY_BYTES).toString('base64') } });
      log.info({}, `created the gossip Secret ${secret}`);
    } catch (c) {
      // Another agent made it first: use theirs.
      if (!(c instanceof KubeApiError && c.status === 409)) throw new GossipSecretError(GossipSecretErrorCode.Unreadable, secret, '', `cannot be created: ${c instanceof Error ? c.message : String(c)}`);
    }
    s = await read();
  }
  return parseGossipKeys(ref, s.data);
}

/** What the watcher needs from its daemon. */
export interface GossipSecretWatcherDeps {
  readonly client: KubeClient;
  readonly log: Logger;
  /** Warnings go on the Secret, reported by this node. */
  readonly events: { event(ref: ObjectReference, type: 'Normal' | 'Warning', reason: string, message: string): void };
  /** Where purelb_gossip_secret_valid is registered. */
  readonly registry: MetricsRegistry;
  /** Hands new keys to the membership (replaceKeys on its keyring). */
  readonly apply: (keys: Buffer[]) => void;
}

/**
 * Watches the gossip Secret (a list/watch of that one name, which the agent's RBAC
 * allows) and keeps the membership's keys in step with it.
 */
export class GossipSecretWatcher {
  readonly #ref: SecretRef;
  readonly #d: GossipSecretWatcherDeps;
  readonly #informer: Informer<GossipSecret>;
  readonly #valid: Gauge;
  #keys: Buffer[];
  /** The problem last reported, so a problem is logged and evented once, not per watch event. */
  #reported: string | undefined;

  constructor(ref: SecretRef, initialKeys: Buffer[], deps: GossipSecretWatcherDeps) {
    this.#ref = ref;
    this.#d = deps;
    this.#keys = initialKeys;
    this.#valid = new Gauge({ name: 'purelb_gossip_secret_valid', help: '1 while the gossip Secret holds valid keys; 0 while it is invalid, empty or deleted (the last valid keys stay in use).', registry: deps.registry });
    this.#valid.set(1);
    this.#informer = new Informer<GossipSecret>(deps.client, {
      path: `/api/v1/namespaces/${ref.namespace}/secrets`,
      fieldSelector: `metadata.name=${ref.name}`,
      transform: (raw) => {
        const r = raw as GossipSecret;
        return { metadata: { name: r.metadata.name, namespace: r.metadata.namespace, resourceVersion: r.metadata.resourceVersion, uid: r.metadata.uid }, data: r.data ?? {} };
      },
    });
    this.#informer.on('add', (s) => this.#changed(s));
    this.#informer.on('update', (s) => this.#changed(s));
    this.#informer.on('delete', (s) => this.#problem(s, 'GossipSecretDeleted', `Secret ${this.#secret} was deleted; the last valid gossip keys stay in use until it is back`));
    this.#informer.on('error', (e) => deps.log.warn({ err: e instanceof Error ? e.message : String(e) }, `watch of the gossip Secret ${this.#secret} failed; retrying`));
  }

  /** The keys in use. */
  get keys(): readonly Buffer[] {
    return this.#keys;
  }

  /** Whether the Secret as last seen was valid. */
  get valid(): boolean {
    return this.#reported === undefined;
  }

  get #secret(): string {
    return `${this.#ref.namespace}/${this.#ref.name}`;
  }

  start(): void {
    this.#informer.start();
  }

  synced(): Promise<void> {
    return this.#informer.synced();
  }

  async stop(): Promise<void> {
    await this.#informer.stop();
  }

  #changed(s: GossipSecret): void {
    let keys: Buffer[];
    try {
      keys = parseGossipKeys(this.#ref, s.data);
    } catch (e) {
      if (!(e instanceof GossipSecretError)) throw e;
      this.#problem(s, 'InvalidGossipSecret', `${e.message}; the last valid gossip keys stay in use`);
      return;
    }
    if (this.#reported !== undefined) this.#d.log.info({}, `the gossip Secret ${this.#secret} is valid again`);
    this.#reported = undefined;
    this.#valid.set(1);
    if (sameKeys(keys, this.#keys)) return;
    this.#d.apply(keys);
    this.#keys = keys;
    this.#d.log.info({ keys: keys.length }, `gossip keys replaced from Secret ${this.#secret}`);
  }

  #problem(s: GossipSecret, reason: string, message: string): void {
    this.#valid.set(0);
    if (this.#reported === message) return;
    this.#reported = message;
    this.#d.log.warn({}, message);
    this.#d.events.event({ kind: 'Secret', apiVersion: 'v1', namespace: this.#ref.namespace, name: this.#ref.name, uid: s.metadata.uid }, 'Warning', reason, message);
  }
}
