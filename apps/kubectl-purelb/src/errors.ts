// The plugin's failure kinds, each with a stable code and the exit status it gives.

/** Exit statuses, as documented in docs/kubectl-plugin.md. */
export const ExitCode = {
  /** The command ran and found nothing wrong. */
  ok: 0,
  /** The command ran and found at least one problem (listed in its output). */
  problems: 1,
  /** The command line is wrong (unknown subcommand or flag, a missing value). */
  usage: 2,
  /** The cluster or a file could not be read (kubeconfig, API server, permissions, a missing file). */
  unreadable: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const PluginErrorCode = {
  Usage: 'PLUGIN_USAGE',
  Unreadable: 'PLUGIN_UNREADABLE',
} as const;
export type PluginErrorCode = (typeof PluginErrorCode)[keyof typeof PluginErrorCode];

/** The command line cannot be run: names the flag or argument. Exit status 2. */
export class UsageError extends Error {
  readonly code = PluginErrorCode.Usage;
  override readonly name = 'UsageError';
}

/** Something the command must read could not be read: names it. Exit status 3. */
export class UnreadableError extends Error {
  readonly code = PluginErrorCode.Unreadable;
  override readonly name = 'UnreadableError';
}
