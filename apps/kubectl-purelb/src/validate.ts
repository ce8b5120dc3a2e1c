// `kubectl purelb validate -f FILE...`: ServiceGroup and LBNodeAgent manifests checked
// offline with the functions the daemons run (parseServiceGroup, parseLBNodeAgent of
// @purelb/api). Multi-document YAML and `kind: List` are read; other kinds are listed as
// skipped.
import { type LBNodeAgent, PURELB_API_VERSION, type ServiceGroup, parseLBNodeAgent, parseServiceGroup } from '@purelb/api';
import { parseAllDocuments } from 'yaml';
import type { Problem } from './snapshot.ts';

export interface ValidationRow {
  readonly file: string;
  /** 1-based document number in the file (and `.items[i]` inside a List). */
  readonly document: string;
  readonly kind: string;
  readonly name: string;
  readonly result: 'valid' | 'invalid' | 'skipped';
  readonly message: string | undefined;
}

export interface ValidationReport {
  readonly objects: readonly ValidationRow[];
  readonly problems: readonly Problem[];
}

/** Checks every document of one file's text. */
export function validateManifests(file: string, text: string): ValidationReport {
  const objects: ValidationRow[] = [];
  const problems: Problem[] = [];
  // An empty file is an empty stream: nothing to check.
  parseAllDocuments(text, { prettyErrors: true }).forEach((doc, i) => {
    const where = `${file}#${i + 1}`;
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const line = e.linePos?.[0]?.line;
      const message = `not YAML${line !== undefined ? ` (line ${line})` : ''}: ${e.message.split('\n')[0]}`;
      objects.push({ file, document: String(i + 1), kind: '', name: '', result: 'invalid', message });
      problems.push({ object: where, message });
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    check(value, file, String(i + 1), objects, problems);
  });
  return { objects, problems };
}

function check(value: unknown, file: string, document: string, objects: ValidationRow[], problems: Problem[]): void {
  const where = `${file}#${document}`;
  if (typeof value !== 'object' || Array.isArray(value) || value === null) {
    const message = 'not a Kubernetes object (a mapping with apiVersion, kind and metadata)';
    objects.push({ file, document, kind: '', name: '', result: 'invalid', message });
    problems.push({ object: where, message });
    return;
  }
  const o = value as Record<string, unknown>;
  const kind = typeof o.kind === 'string' ? o.kind : '';
  if (kind === 'List' && Array.isArray(o.items)) {
    o.items.forEach((item: unknown, j) => check(item, file, `${document}.items[${j}]`, objects, problems));
    return;
  }
  const metadata = o.metadata && typeof o.metadata === 'object' && !Array.isArray(o.metadata) ? (o.metadata as Record<string, unknown>) : {};
  const name = typeof metadata.name === 'string' ? metadata.name : '';
  if (kind !== 'ServiceGroup' && kind !== 'LBNodeAgent') {
    objects.push({ file, document, kind, name, result: 'skipped', message: 'not a PureLB kind' });
    return;
  }
  const bad = (field: string, message: string): void => {
    const named = message.startsWith(`${kind} "`) ? message : `${kind} "${name}": ${field}: ${message}`;
    objects.push({ file, document, kind, name, result: 'invalid', message: named });
    problems.push({ object: where, field, message: named });
  };
  if (o.apiVersion !== PURELB_API_VERSION) return bad('apiVersion', `must be ${PURELB_API_VERSION}, not ${JSON.stringify(o.apiVersion ?? null)}`);
  if (name === '') return bad('metadata.name', 'is required');
  if (o.spec === undefined || o.spec === null || typeof o.spec !== 'object' || Array.isArray(o.spec)) return bad('spec', 'must be an object');
  if (kind === 'ServiceGroup') {
    const r = parseServiceGroup(o as unknown as ServiceGroup);
    if (!r.ok) return bad(r.field, r.message);
  } else {
    const r = parseLBNodeAgent(o as unknown as LBNodeAgent);
    if (!r.ok) return bad(r.field, r.message);
  }
  objects.push({ file, document, kind, name, result: 'valid', message: undefined });
}
