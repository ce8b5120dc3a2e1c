// The CLI's teardown: on SIGINT/SIGTERM (or when called) stop everything and exit; a
// second signal exits at once, pointing at --clean.

/** Installs the signal handlers and returns shutdown(code), which never returns. */
export function onShutdown(say: (line: string) => void, stop: () => Promise<void>): (code: number) => Promise<never> {
  let stopping = false;
  const shutdown = async (code: number): Promise<never> => {
    if (stopping) {
      say('second signal: exiting now; run `npm run lab -- --clean` to remove leftovers');
      process.exit(1);
    }
    stopping = true;
    say('tearing down');
    await stop();
    say('everything removed');
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  return shutdown;
}
