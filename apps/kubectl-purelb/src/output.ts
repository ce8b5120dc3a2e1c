// Tables for people, JSON and YAML for scripts.
import { stringify as yamlStringify } from 'yaml';

export type OutputFormat = 'table' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'yaml'];

/** A table as kubectl prints one: upper-case headers, columns three spaces apart, `<none>` for empty cells. */
export function formatTable(headers: readonly string[], rows: readonly (readonly (string | number | undefined)[])[]): string {
  const cells = [headers.map((h) => h.toUpperCase()), ...rows.map((r) => headers.map((_, i) => cellText(r[i])))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd()).join('\n') + '\n';
}

function cellText(v: string | number | undefined): string {
  if (v === undefined || v === '') return '<none>';
  return String(v);
}

/** A report as JSON (two-space indent) or YAML. */
export function formatData(data: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? `${JSON.stringify(data, null, 2)}\n` : yamlStringify(data);
}

/** The problems section of a table output (empty when there are none). */
export function formatProblems(problems: readonly { readonly object: string; readonly field?: string | undefined; readonly message: string }[]): string {
  if (problems.length === 0) return '';
  return `\nPROBLEMS (${problems.length})\n${problems.map((p) => `- ${p.object}${p.field && !namesField(p.message, p.field) ? ` ${p.field}` : ''}: ${p.message}`).join('\n')}\n`;
}

/** True when the message already names the field (the daemons' messages name it without `spec.local.`). */
function namesField(message: string, field: string): boolean {
  return message.includes(field) || message.includes(field.replace(/^spec\.local\./, ''));
}
