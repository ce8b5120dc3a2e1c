// Shared test set-up: an emulator per test, closed in teardown, and a client for it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { NetboxClient, type NetboxClientOptions, NetboxError } from '../src/index.ts';
import { DEFAULT_V1_TOKEN, type EmulatorOptions, NetboxEmulator } from '../src/testing/index.ts';

export async function startEmulator(t: Test, opts: EmulatorOptions = {}): Promise<NetboxEmulator> {
  const e = await NetboxEmulator.start(opts);
  t.teardown(() => e.close());
  return e;
}

/** A client for the emulator with short timeouts and backoff so failure tests stay fast. */
export function clientFor(t: Test, e: NetboxEmulator, opts: Partial<NetboxClientOptions> = {}): NetboxClient {
  const c = new NetboxClient({ url: e.url, token: DEFAULT_V1_TOKEN, timeoutMs: 2000, retries: 3, backoffBaseMs: 5, backoffMaxMs: 40, ...opts });
  t.teardown(() => c.close());
  return c;
}

export function fixture(name: string): unknown {
  return JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8'));
}

/** Rejects after `ms`: bounds a test step that must not hang. */
export function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Asserts that fn throws a NetboxError with this code (and message pattern); returns it. */
export function throwsNetbox(t: Test, fn: () => unknown, code: string, message?: RegExp): NetboxError | undefined {
  try {
    fn();
  } catch (e) {
    t.ok(e instanceof NetboxError, `a NetboxError (${String(e)})`);
    if (!(e instanceof NetboxError)) return undefined;
    t.equal(e.code, code, e.message);
    if (message) t.match(e.message, message);
    return e;
  }
  t.fail(`expected ${code}, nothing was thrown`);
  return undefined;
}

/** Asserts that p rejects with a NetboxError with this code (and message pattern); returns it. */
export async function rejectsNetbox(t: Test, p: Promise<unknown>, code: string, message?: RegExp): Promise<NetboxError | undefined> {
  try {
    await p;
  } catch (e) {
    t.ok(e instanceof NetboxError, `a NetboxError (${String(e)})`);
    if (!(e instanceof NetboxError)) return undefined;
    t.equal(e.code, code, e.message);
    if (message) t.match(e.message, message);
    return e;
  }
  t.fail(`expected ${code}, it resolved`);
  return undefined;
}
