// Daemon settings: flags, each with environment variables as fallback and a default.
// One table per daemon drives parsing, --help and the README (a test keeps them in step).
import { parseArgs } from 'node:util';

/** [flag, environment variables (" / "-separated, first set wins), default, meaning] */
export type Setting = readonly [flag: `--${string}`, env: string, dflt: string, meaning: string];

export class SettingsError extends Error {
  override readonly name = 'SettingsError';
  readonly code = 'SETTINGS_INVALID';
}

/**
 * Raw values for every setting: the flag if given, else the first environment variable
 * set, else the default. Unknown flags throw.
 */
export function readSettings(table: readonly Setting[], argv: readonly string[], env: NodeJS.ProcessEnv): Map<string, string> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options: Object.fromEntries(table.map(([flag]) => [flag.slice(2), { type: 'string' as const }])), strict: true }));
  } catch (e) {
    throw new SettingsError(e instanceof Error ? e.message : String(e));
  }
  const out = new Map<string, string>();
  for (const [flag, envNames, dflt] of table) {
    const v = values[flag.slice(2)];
    let chosen = typeof v === 'string' ? v : undefined;
    for (const e of envNames.split(' / ')) if (chosen === undefined && env[e] !== undefined && env[e] !== '') chosen = env[e];
    out.set(flag, chosen ?? dflt);
  }
  return out;
}

/** `250ms`, `2s`, `1m` or a bare number of milliseconds. */
export function parseDuration(setting: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new SettingsError(`${setting}: "${text}" is not a duration like 500ms, 2s or 1m`);
  const n = Number(m[1]);
  return Math.round(m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n);
}

export function parseInteger(setting: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new SettingsError(`${setting}: "${text}" is not a whole number in ${min}-${max}`);
  return n;
}

export function parseBool(setting: string, text: string): boolean {
  if (/^(true|1|yes)$/i.test(text)) return true;
  if (/^(false|0|no|)$/i.test(text)) return false;
  throw new SettingsError(`${setting}: "${text}" is not true or false`);
}

/** An optional JSON object setting; empty means none. */
export function parseJsonObject(setting: string, text: string): Record<string, unknown> | undefined {
  if (text.trim() === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new SettingsError(`${setting}: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SettingsError(`${setting}: must be a JSON object`);
  return v as Record<string, unknown>;
}

/** --help text for a settings table. */
export function settingsHelp(title: string, table: readonly Setting[]): string {
  return [title, '', ...table.map(([flag, env, dflt, what]) => `  ${flag.padEnd(30)} ${what}\n  ${''.padEnd(30)} env ${env}, default ${dflt}`)].join('\n');
}

/** The Markdown table a README carries for a settings table. */
export function settingsMarkdown(table: readonly Setting[]): string {
  return ['| flag | environment | default | meaning |', '| --- | --- | --- | --- |', ...table.map(([f, e, d, m]) => `| \`${f}\` | \`${e}\` | \`${d}\` | ${m} |`)].join('\n');
}

/** The logger the daemons hand to their controllers (pino's shape). */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/**
 * A daemon's start: `--help` prints the settings and exits 0; settings that do not parse
 * are printed, naming the setting, and exit 2; otherwise the loaded configuration.
 */
export function loadSettingsOrExit<C>(program: string, title: string, table: readonly Setting[], load: (argv: readonly string[], env: NodeJS.ProcessEnv) => C): C {
  if (process.argv.includes('--help')) {
    process.stdout.write(`${settingsHelp(`${program}: ${title}`, table)}\n`);
    process.exit(0);
  }
  try {
    return load(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof SettingsError) {
      process.stderr.write(`${program}: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}
