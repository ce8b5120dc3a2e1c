// Running commands and managing the lab's long-lived processes.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, readFileSync } from 'node:fs';

export class LabError extends Error {
  override readonly name = 'LabError';
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Runs a command to completion; rejects with its stderr on a non-zero exit. Bounded by `timeoutMs`. */
export function run(cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8', env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        if (err) reject(new LabError('LAB_COMMAND_FAILED', `${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
        else resolve(stdout);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** `ip ...` */
export function ip(...args: string[]): Promise<string> {
  return run('ip', args);
}

/** `ip [-n NETNS] -batch -`: many ip commands in one process (fast for building topologies). */
export function ipBatch(lines: readonly string[], netns?: string): Promise<string> {
  return run('ip', [...(netns ? ['-n', netns] : []), '-batch', '-'], { input: lines.join('\n') + '\n' });
}

/** A long-lived child process the lab owns; stop() is idempotent and bounded. */
export class ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  #exited: Promise<void>;
  #log: string[] = [];
  #frozen = false;

  /** `logFile`: also append everything the process writes to this file. */
  constructor(name: string, cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv, logFile?: string) {
    this.name = name;
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    const keep = (chunk: Buffer): void => {
      if (logFile !== undefined) {
        try {
          appendFileSync(logFile, chunk);
        } catch {
          // the log is a convenience; a full disk must not kill the lab
        }
      }
      this.#log.push(chunk.toString('utf8'));
      if (this.#log.length > 200) this.#log.splice(0, this.#log.length - 200);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.#exited = once(this.child, 'exit').then(() => undefined);
    this.child.on('error', (e) => keep(Buffer.from(`spawn error: ${e.message}\n`)));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** True between freeze() and thaw(). */
  get frozen(): boolean {
    return this.#frozen;
  }

  /**
   * SIGSTOP: the process (every thread) stops where it is, as in a long GC pause or a VM
   * stall; its sockets stay open and the kernel keeps answering for its addresses.
   */
  freeze(): void {
    if (!this.running || this.child.pid === undefined) throw new LabError('LAB_NOT_RUNNING', `${this.name} is not running`);
    process.kill(this.child.pid, 'SIGSTOP');
    this.#frozen = true;
  }

  /** SIGCONT: the process runs on from where freeze() stopped it. */
  thaw(): void {
    if (!this.#frozen) return;
    this.#frozen = false;
    if (this.running && this.child.pid !== undefined) process.kill(this.child.pid, 'SIGCONT');
  }

  /** The last lines the process wrote, for error messages. */
  tail(lines = 20): string {
    return this.#log.join('').split('\n').slice(-lines).join('\n');
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves once the process is gone. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    // A stopped process would hold SIGTERM pending until it runs again.
    this.thaw();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(timer);
  }

  /** Resolves when the process exits. */
  exited(): Promise<void> {
    return this.#exited;
  }
}

/** Polls `check` until it returns a value, at most `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; Date.now() < deadline && i < 1_000_000; i++) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new LabError('LAB_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

/** True while the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // Field 3 of /proc/PID/stat is the state; Z is a zombie (dead, not yet reaped).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** SIGKILLs the processes and waits (at most timeoutMs) until they are gone. */
export async function killAndWait(pids: readonly number[], timeoutMs = 5000): Promise<void> {
  for (const pid of pids) {
    if (pid > 0 && isAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
  const deadline = Date.now() + timeoutMs;
  while (pids.some((p) => p > 0 && isAlive(p)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** The state letter of a process from /proc/PID/stat (R, S, D, T stopped, Z zombie...), or undefined once it is gone. */
export function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/** Whether a command is on PATH (`command -v`, without a shell of the caller's). */
export async function hasCommand(cmd: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${cmd}`]).then(() => true, () => false);
}

/**
 * Installs the Debian packages that provide what is missing, with apt-get (the lab runs
 * as root; `apt-get update` once if the first try fails). `missing` pairs what is missing
 * (a command, a file) with its package; `who` names the mode for the errors ("cluster
 * mode", "the routed lab"). Without apt-get, or when it fails, a `LAB_MISSING_TOOLS`
 * error names what is missing and the packages to install.
 */
export async function installMissing(who: string, missing: readonly (readonly [what: string, pkg: string])[], onProgress?: (line: string) => void): Promise<void> {
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map(([, p]) => p))];
  const what = missing.map(([w]) => w).join(', ');
  if (!(await hasCommand('apt-get'))) throw new LabError('LAB_MISSING_TOOLS', `${who} needs ${what}: install ${pkgs.join(' ')}`);
  onProgress?.(`installing ${pkgs.join(' ')} (apt-get), for ${what}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    await run('apt-get', ['install', '-y', '-q', ...pkgs], { timeoutMs: 300_000, env });
  } catch {
    await run('apt-get', ['update', '-q'], { timeoutMs: 300_000, env }).catch(() => '');
    await run('apt-get', ['install', '-y', '-q', ...pkgs], { timeoutMs: 300_000, env }).catch((e: unknown) => {
      throw new LabError('LAB_MISSING_TOOLS', `${who} needs ${pkgs.join(' ')} and apt-get could not install them: ${e instanceof Error ? e.message : String(e)}`);
    });
  }
}
