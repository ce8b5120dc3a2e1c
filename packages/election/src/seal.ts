// AES-256-GCM sealing of every packet and stream frame, with a keyring for rotation and
// a replay window.
//
// Sealed layout: version:u8 (=1) | keyId:4 | nonce:12 | ciphertext | tag:16, where
// keyId is the first 4 bytes of sha256(key) and the 17 header bytes are authenticated
// data. The plaintext starts with sender instance:8 | counter:u32 | timestamp ms:u48,
// then the payload. A receiver drops a packet whose timestamp is outside the replay
// window or whose (instance, counter) it has already accepted.
// Unsealed layout (no keyring configured): version:u8 (=0) | payload.
import { type KeyObject, createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes } from 'node:crypto';
import { ElectionError, ElectionErrorCode } from './errors.ts';

/** Why a packet was dropped before any protocol logic saw it. */
export type DropReason = 'unsealed' | 'forged' | 'replayed' | 'oversized' | 'malformed';

export const DROP_REASONS: readonly DropReason[] = ['unsealed', 'forged', 'replayed', 'oversized', 'malformed'];

const VERSION_SEALED = 1;
const VERSION_PLAIN = 0;
const HEADER = 1 + 4 + 12;
const TAG = 16;
const INNER = 8 + 4 + 6;
/** Bytes sealing adds to a payload. */
export const SEAL_OVERHEAD = HEADER + INNER + TAG;
const WINDOW = 1024;

function keyId(key: Uint8Array): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

function checkKey(key: Uint8Array, field: string): Buffer {
  if (!(key instanceof Uint8Array) || key.length !== 32) {
    throw new ElectionError(ElectionErrorCode.InvalidKey, `${field}: an AES-256 key is 32 bytes, got ${key instanceof Uint8Array ? key.length : typeof key}`, { field });
  }
  return Buffer.from(key);
}

/**
 * The keys a member accepts, the first of which it seals with. Rotate without a gap:
 * `add(new)` on every member, then `use(new)` on every member, then `remove(old)`.
 */
export class Keyring {
  #keys: Buffer[];

  /** `keys[0]` seals; all of them open. Each key is 32 bytes. */
  constructor(keys: readonly Uint8Array[]) {
    if (keys.length === 0) throw new ElectionError(ElectionErrorCode.InvalidKey, 'keyring: at least one key is needed', { field: 'keyring' });
    this.#keys = keys.map((k, i) => checkKey(k, `keyring[${i}]`));
  }

  /** Builds a keyring from base64 texts (as a Kubernetes Secret holds them). */
  static fromBase64(texts: readonly string[]): Keyring {
    return new Keyring(texts.map((t) => Buffer.from(t.trim(), 'base64')));
  }

  /** A new random 32-byte key. */
  static generateKey(): Buffer {
    return randomBytes(32);
  }

  /** The sealing key. */
  get primary(): Buffer {
    return this.#keys[0]!;
  }

  /** Every accepted key, primary first. */
  get keys(): readonly Buffer[] {
    return this.#keys;
  }

  /** Accepts `key` for opening (no-op if present). */
  add(key: Uint8Array): void {
    const k = checkKey(key, 'key');
    if (!this.#keys.some((x) => x.equals(k))) this.#keys.push(k);
  }

  /** Seals with `key` from now on; adds it if missing. */
  use(key: Uint8Array): void {
    const k = checkKey(key, 'key');
    this.#keys = [k, ...this.#keys.filter((x) => !x.equals(k))];
  }

  /** Stops accepting `key`. The sealing key cannot be removed. */
  remove(key: Uint8Array): void {
    const k = checkKey(key, 'key');
    if (this.primary.equals(k)) throw new ElectionError(ElectionErrorCode.InvalidKey, 'keyring: the sealing key cannot be removed; use() another key first', { field: 'key' });
    this.#keys = this.#keys.filter((x) => !x.equals(k));
  }
}

/** What opening a packet gives. */
export type OpenResult = { readonly ok: true; readonly payload: Uint8Array } | { readonly ok: false; readonly reason: DropReason };

/** Seals and opens packets; one per member (it owns the member's replay state). */
export interface Envelope {
  seal(payload: Uint8Array): Uint8Array;
  open(packet: Uint8Array, maxBytes: number): OpenResult;
  /** Bytes added to each payload. */
  readonly overhead: number;
}

/** No encryption: for tests and for clusters that accept the risk. Sealed packets are refused. */
export class PlainEnvelope implements Envelope {
  readonly overhead = 1;
  seal(payload: Uint8Array): Uint8Array {
    const out = new Uint8Array(payload.length + 1);
    out[0] = VERSION_PLAIN;
    out.set(payload, 1);
    return out;
  }
  open(packet: Uint8Array, maxBytes: number): OpenResult {
    if (packet.length > maxBytes + 1) return { ok: false, reason: 'oversized' };
    if (packet.length < 2 || packet[0] !== VERSION_PLAIN) return { ok: false, reason: 'malformed' };
    return { ok: true, payload: packet.subarray(1) };
  }
}

interface ReplayState {
  maxCounter: number;
  maxTimestamp: number;
  seen: Uint8Array;
}

/** Options of a `SealedEnvelope`. */
export interface SealedEnvelopeOptions {
  readonly keyring: Keyring;
  /** Wall clock in ms, shared by the cluster within `replayWindowMs` (NTP). Default `Date.now`. */
  readonly clock?: () => number;
  /** Packets older or newer than this (ms) by their sender's clock are dropped. Default 60 s. */
  readonly replayWindowMs?: number;
  /** Senders remembered for replay checks; packets of further new senders are dropped. Default 65,536. */
  readonly maxSenders?: number;
}

/** AES-256-GCM sealing with a random 96-bit nonce per packet and a replay window. */
export class SealedEnvelope implements Envelope {
  readonly overhead = SEAL_OVERHEAD;
  readonly #keyring: Keyring;
  readonly #clock: () => number;
  readonly #window: number;
  readonly #maxSenders: number;
  #instance = randomBytes(8);
  #counter = 0;
  readonly #senders = new Map<string, ReplayState>();
  #opens = 0;
  #nonces = Buffer.alloc(0);
  #nonceAt = 0;
  readonly #ids = new Map<Buffer, string>();
  readonly #keyObjects = new Map<Buffer, KeyObject>();

  constructor(options: SealedEnvelopeOptions) {
    this.#keyring = options.keyring;
    this.#clock = options.clock ?? Date.now;
    this.#window = options.replayWindowMs ?? 60_000;
    this.#maxSenders = options.maxSenders ?? 65_536;
  }

  #idOf(key: Buffer): string {
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = keyId(key);
      this.#ids.set(key, id);
    }
    return id;
  }

  // A KeyObject is parsed once; a raw Buffer key is re-imported on every cipher.
  #keyObject(key: Buffer): KeyObject {
    let k = this.#keyObjects.get(key);
    if (!k) {
      k = createSecretKey(key);
      this.#keyObjects.set(key, k);
    }
    return k;
  }

  #nonce(out: Buffer, at: number): void {
    if (this.#nonceAt + 12 > this.#nonces.length) {
      this.#nonces = randomBytes(12 * 512);
      this.#nonceAt = 0;
    }
    this.#nonces.copy(out, at, this.#nonceAt, this.#nonceAt + 12);
    this.#nonceAt += 12;
  }

  seal(payload: Uint8Array): Uint8Array {
    const key = this.#keyring.primary;
    if (this.#counter >= 0xffffffff) {
      this.#instance = randomBytes(8);
      this.#counter = 0;
    }
    const counter = ++this.#counter;
    const header = Buffer.allocUnsafe(HEADER);
    header[0] = VERSION_SEALED;
    header.write(this.#idOf(key), 1, 'hex');
    this.#nonce(header, 5);
    const inner = Buffer.allocUnsafe(INNER);
    this.#instance.copy(inner, 0);
    inner.writeUInt32BE(counter, 8);
    inner.writeUIntBE(Math.max(0, Math.floor(this.#clock())), 12, 6);
    const cipher = createCipheriv('aes-256-gcm', this.#keyObject(key), header.subarray(5));
    cipher.setAAD(header);
    const a = cipher.update(inner);
    const b = cipher.update(payload);
    const c = cipher.final();
    return Buffer.concat([header, a, b, c, cipher.getAuthTag()]);
  }

  open(packet: Uint8Array, maxBytes: number): OpenResult {
    if (packet.length > maxBytes + SEAL_OVERHEAD) return { ok: false, reason: 'oversized' };
    if (packet.length < SEAL_OVERHEAD || packet[0] !== VERSION_SEALED) return { ok: false, reason: 'unsealed' };
    const buf = Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
    const id = buf.toString('hex', 1, 5);
    const header = buf.subarray(0, HEADER);
    const body = buf.subarray(HEADER, buf.length - TAG);
    const tag = buf.subarray(buf.length - TAG);
    let plain: Buffer | undefined;
    for (const key of this.#keyring.keys) {
      if (this.#idOf(key) !== id) continue;
      try {
        const d = createDecipheriv('aes-256-gcm', this.#keyObject(key), header.subarray(5));
        d.setAAD(header);
        d.setAuthTag(tag);
        plain = Buffer.concat([d.update(body), d.final()]);
        break;
      } catch {
        // Wrong key or tampered: try the next key with the same id, if any.
      }
    }
    if (!plain) return { ok: false, reason: 'forged' };
    const sender = plain.toString('hex', 0, 8);
    const counter = plain.readUInt32BE(8);
    const timestamp = plain.readUIntBE(12, 6);
    const now = this.#clock();
    if (Math.abs(now - timestamp) > this.#window) return { ok: false, reason: 'replayed' };
    if (!this.#accept(sender, counter, timestamp, now)) return { ok: false, reason: 'replayed' };
    return { ok: true, payload: plain.subarray(INNER) };
  }

  #accept(sender: string, counter: number, timestamp: number, now: number): boolean {
    if (++this.#opens % 4096 === 0) {
      // A forgotten sender's packets are all older than the window, so forgetting is safe.
      for (const [k, s] of this.#senders) if (s.maxTimestamp < now - this.#window) this.#senders.delete(k);
    }
    let s = this.#senders.get(sender);
    if (!s) {
      if (this.#senders.size >= this.#maxSenders) return false;
      s = { maxCounter: counter, maxTimestamp: timestamp, seen: new Uint8Array(WINDOW) };
      s.seen[counter % WINDOW] = 1;
      this.#senders.set(sender, s);
      return true;
    }
    if (counter > s.maxCounter) {
      const gap = counter - s.maxCounter;
      if (gap >= WINDOW) s.seen.fill(0);
      else {
        // Clear the ring slots of the skipped counters, in at most two runs.
        const from = (s.maxCounter + 1) % WINDOW;
        const to = from + gap;
        if (to <= WINDOW) s.seen.fill(0, from, to);
        else {
          s.seen.fill(0, from, WINDOW);
          s.seen.fill(0, 0, to - WINDOW);
        }
      }
      s.maxCounter = counter;
      s.seen[counter % WINDOW] = 1;
      if (timestamp > s.maxTimestamp) s.maxTimestamp = timestamp;
      return true;
    }
    if (s.maxCounter - counter >= WINDOW) return false;
    if (s.seen[counter % WINDOW]) return false;
    s.seen[counter % WINDOW] = 1;
    return true;
  }
}
