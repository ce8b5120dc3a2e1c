// Orderly exit on SIGTERM/SIGINT: handlers run once, last registered first (so what was
// started last stops first), each bounded in time, then the process exits.

/** Options of one shutdown handler. */
export interface ShutdownOptions {
  /** The longest this handler may take before the next one runs (default 10000). */
  readonly timeoutMs?: number | undefined;
}

interface Entry {
  readonly handler: () => Promise<void>;
  readonly timeoutMs: number;
}

/**
 * Shutdown handlers and the signals that run them. onShutdown() uses one shared instance
 * for the process; make your own to run handlers without signals (in tests).
 */
export class ShutdownCoordinator {
  readonly #entries: Entry[] = [];
  #running: Promise<number> | undefined;

  /** Adds a handler; returns a function that removes it. */
  add(handler: () => Promise<void>, opts: ShutdownOptions = {}): () => void {
    const entry = { handler, timeoutMs: opts.timeoutMs ?? 10_000 };
    this.#entries.push(entry);
    return () => {
      const i = this.#entries.indexOf(entry);
      if (i >= 0) this.#entries.splice(i, 1);
    };
  }

  /** True once run() was called. */
  get shuttingDown(): boolean {
    return this.#running !== undefined;
  }

  /**
   * Runs every handler once, in reverse order of registration, each bounded by its
   * timeout. Resolves with the exit code: 0 if all finished in time, 1 otherwise. A second
   * call returns the first call's promise.
   */
  run(): Promise<number> {
    this.#running ??= (async () => {
      let code = 0;
      for (const entry of [...this.#entries].reverse()) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), entry.timeoutMs);
        });
        try {
          const result = await Promise.race([Promise.resolve().then(entry.handler), timeout]);
          if (result === 'timeout') code = 1;
        } catch {
          code = 1;
        } finally {
          clearTimeout(timer);
        }
      }
      return code;
    })();
    return this.#running;
  }
}

const processCoordinator = new ShutdownCoordinator();
let installed = false;

/**
 * Runs `handler` when the process gets SIGTERM or SIGINT. On the first signal every
 * registered handler runs once, in reverse registration order, each bounded by its
 * timeoutMs; then the process exits (0 if all finished in time, 1 otherwise). A second
 * signal during shutdown exits at once with 130. Returns a function that unregisters.
 */
export function onShutdown(handler: () => Promise<void>, opts: ShutdownOptions = {}): () => void {
  if (!installed) {
    installed = true;
    const onSignal = (): void => {
      // A second signal means the operator does not want to wait.
      if (processCoordinator.shuttingDown) process.exit(130);
      void processCoordinator.run().then((code) => process.exit(code));
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  return processCoordinator.add(handler, opts);
}
