// Network namespaces for tests: create, run code inside, wire together, delete. Usable
// by any package whose tests need "this code, in a namespace of its own".
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { runInNamedNetns } from '../netns.ts';

let counter = 0;
let swept = false;

/**
 * Deletes namespaces this harness made in processes that no longer exist (a run killed
 * before its teardown). Only names of the form `plb-<tag>-<pid>-<n>` are touched.
 */
export function sweepStaleTestNetns(): string[] {
  const removed: string[] = [];
  const names = existsSync('/run/netns') ? readdirSync('/run/netns') : [];
  for (const name of names) {
    const m = /^plb-[a-z0-9-]+?-(\d+)-\d+$/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // its process is alive: not ours to touch
    } catch (e) {
      if ((e as { code?: string }).code !== 'ESRCH') continue;
    }
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 10_000 });
      removed.push(name);
    } catch {
      // another sweeper got it first
    }
  }
  return removed;
}

/**
 * Fails (never skips) when the tests cannot make namespaces here, naming what is missing:
 * root, or the `ip` command (iproute2).
 */
export function assertNetnsPrerequisites(): void {
  if (process.platform !== 'linux') throw new Error(`network namespace tests need Linux, this is ${process.platform}`);
  if (process.getuid?.() !== 0) throw new Error('network namespace tests need root (uid 0) to create namespaces and links');
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new Error('network namespace tests need the `ip` command (Debian package iproute2)');
  }
}

/** A network namespace made by a test, named `plb-<tag>-<pid>-<n>` so parallel runs never collide. */
export class TestNetns {
  readonly name: string;
  #deleted = false;

  constructor(tag: string) {
    if (!swept) {
      swept = true;
      sweepStaleTestNetns();
    }
    this.name = `plb-${tag}-${process.pid}-${++counter}`;
    execFileSync('ip', ['netns', 'add', this.name], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
    // Loopback is down in a new namespace; most tests expect it up.
    this.ip('link', 'set', 'lo', 'up');
  }

  /** Runs `ip -n NAME ARGS...` and returns its stdout; throws with stderr on failure. */
  ip(...args: string[]): string {
    try {
      return execFileSync('ip', ['-n', this.name, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
    } catch (e) {
      const stderr = (e as { stderr?: string }).stderr ?? '';
      throw new Error(`ip -n ${this.name} ${args.join(' ')} failed: ${stderr.trim() || String(e)}`);
    }
  }

  /** Runs `fn` synchronously with this thread inside the namespace: sockets it opens stay there. */
  run<T>(fn: () => T): T {
    return runInNamedNetns(this.name, fn);
  }

  /** The interface index of `link` in this namespace. */
  linkIndex(link: string): number {
    const m = /^(\d+):/.exec(this.ip('-o', 'link', 'show', 'dev', link));
    if (!m) throw new Error(`no index for ${link} in ${this.name}`);
    return Number(m[1]);
  }

  /** The MAC address of `link` in this namespace. */
  linkMac(link: string): string {
    const m = /link\/\S+ ([0-9a-f:]{17})/.exec(this.ip('-o', 'link', 'show', 'dev', link));
    if (!m) throw new Error(`no MAC for ${link} in ${this.name}`);
    return m[1]!;
  }

  /** Deletes the namespace and with it every link inside. Idempotent. */
  delete(): void {
    if (this.#deleted) return;
    this.#deleted = true;
    if (existsSync(`/run/netns/${this.name}`)) execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore', timeout: 10_000 });
  }
}

/** Makes a veth pair with one end in each namespace, both up. */
export function connectVeth(a: TestNetns, aLink: string, b: TestNetns, bLink: string): void {
  a.ip('link', 'add', aLink, 'type', 'veth', 'peer', 'name', bLink, 'netns', b.name);
  a.ip('link', 'set', aLink, 'up');
  b.ip('link', 'set', bLink, 'up');
}

/** What a child process printed and how it ended. */
export interface ChildResult {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a TypeScript or JavaScript file with this Node (`process.execPath`, workspace
 * sources resolved through the `@purelb/source` condition) inside `ns`, optionally with
 * capabilities removed from its bounding and inheritable sets (`setpriv`, util-linux), so
 * not even root gets them back. Killed after `timeoutMs`.
 */
export function runNodeInNetns(
  ns: TestNetns,
  script: string,
  args: readonly string[] = [],
  options: { readonly dropCapabilities?: readonly string[]; readonly timeoutMs?: number } = {},
): Promise<ChildResult> {
  const node = [process.execPath, '--conditions=@purelb/source', script, ...args];
  const inNs = ['ip', 'netns', 'exec', ns.name, ...node];
  const drop = options.dropCapabilities ?? [];
  const argv = drop.length === 0 ? inNs : ['setpriv', `--inh-caps=${drop.map((c) => `-${c}`).join(',')}`, `--bounding-set=${drop.map((c) => `-${c}`).join(',')}`, '--', ...inNs];
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { timeout: options.timeoutMs ?? 20_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      const e = error as (Error & { code?: number | string; signal?: string }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}
