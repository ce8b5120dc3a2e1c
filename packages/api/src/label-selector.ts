// Kubernetes label selectors (metav1.LabelSelector): checking one as the API server would,
// and matching a set of labels against it. Pure.

/** The operators of `matchExpressions` (metav1.LabelSelectorOperator). */
export const LABEL_SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
export type LabelSelectorOperator = (typeof LABEL_SELECTOR_OPERATORS)[number];

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: LabelSelectorOperator;
  readonly values?: readonly string[] | undefined;
}

/** metav1.LabelSelector: every `matchLabels` pair and every expression must hold (AND). */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>> | undefined;
  readonly matchExpressions?: readonly LabelSelectorRequirement[] | undefined;
}

/** A label selector that is wrong, at `field` (for example `spec.local.nodeSelector.matchExpressions[0].operator`). */
export interface LabelSelectorProblem {
  readonly field: string;
  readonly message: string;
}

// A label key: an optional DNS-1123 subdomain prefix (at most 253) and "/", then a name of
// at most 63 characters, alphanumeric at both ends, with '-', '_' and '.' inside.
const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `key` is not a label key, or undefined. */
export function labelKeyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string' || key === '') return 'a label key must be a non-empty string';
  const slash = key.lastIndexOf('/');
  const name = slash < 0 ? key : key.slice(slash + 1);
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return `"${key}": the prefix before "/" must be a DNS subdomain (lower case, at most 253 characters)`;
  if (name.length > 63 || !LABEL_NAME.test(name)) return `"${key}": the name must be 1-63 characters, letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  return undefined;
}

/** Why `value` is not a label value, or undefined (the empty value is one). */
export function labelValueProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'a label value must be a string';
  if (value === '') return undefined;
  if (value.length > 63 || !LABEL_NAME.test(value)) return `"${value}": a label value must be at most 63 characters, letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  return undefined;
}

/**
 * The first problem of a label selector, with the field it is at (`base` is the field of
 * the selector itself), or undefined. The rules are the API server's for
 * metav1.LabelSelector: keys and values of label syntax, a known operator, `values`
 * non-empty for In and NotIn and absent (or empty) for Exists and DoesNotExist.
 */
export function labelSelectorProblem(selector: unknown, base: string): LabelSelectorProblem | undefined {
  if (selector === null || typeof selector !== 'object' || Array.isArray(selector)) return { field: base, message: 'must be an object with matchLabels and/or matchExpressions' };
  const s = selector as { matchLabels?: unknown; matchExpressions?: unknown };
  if (s.matchLabels !== undefined && s.matchLabels !== null) {
    if (typeof s.matchLabels !== 'object' || Array.isArray(s.matchLabels)) return { field: `${base}.matchLabels`, message: 'must be a map of label keys to values' };
    for (const [k, v] of Object.entries(s.matchLabels)) {
      const kp = labelKeyProblem(k);
      if (kp) return { field: `${base}.matchLabels`, message: kp };
      const vp = labelValueProblem(v);
      if (vp) return { field: `${base}.matchLabels["${k}"]`, message: vp };
    }
  }
  if (s.matchExpressions !== undefined && s.matchExpressions !== null) {
    if (!Array.isArray(s.matchExpressions)) return { field: `${base}.matchExpressions`, message: 'must be a list of {key, operator, values}' };
    for (const [i, e] of (s.matchExpressions as unknown[]).entries()) {
      const f = `${base}.matchExpressions[${i}]`;
      if (e === null || typeof e !== 'object' || Array.isArray(e)) return { field: f, message: 'must be an object {key, operator, values}' };
      const r = e as { key?: unknown; operator?: unknown; values?: unknown };
      const kp = labelKeyProblem(r.key);
      if (kp) return { field: `${f}.key`, message: kp };
      if (typeof r.operator !== 'string' || !(LABEL_SELECTOR_OPERATORS as readonly string[]).includes(r.operator)) {
        return { field: `${f}.operator`, message: `"${String(r.operator)}" is not an operator: use one of ${LABEL_SELECTOR_OPERATORS.join(', ')}` };
      }
      const values = r.values ?? [];
      if (!Array.isArray(values)) return { field: `${f}.values`, message: 'must be a list of label values' };
      if ((r.operator === 'In' || r.operator === 'NotIn') && values.length === 0) return { field: `${f}.values`, message: `must have at least one value for the operator ${r.operator}` };
      if ((r.operator === 'Exists' || r.operator === 'DoesNotExist') && values.length > 0) return { field: `${f}.values`, message: `must be empty for the operator ${r.operator}` };
      for (const [j, v] of (values as unknown[]).entries()) {
        const vp = labelValueProblem(v);
        if (vp) return { field: `${f}.values[${j}]`, message: vp };
      }
    }
  }
  return undefined;
}

/**
 * True if the labels satisfy the selector: every `matchLabels` pair is present with that
 * value, and every expression holds (In: the key is present with one of the values; NotIn:
 * absent, or present with none of them; Exists; DoesNotExist). An empty selector matches
 * every set of labels, as in Kubernetes. Pass only a selector `labelSelectorProblem`
 * accepted; an unknown operator matches nothing.
 */
export function matchesLabelSelector(selector: LabelSelector, labels: Readonly<Record<string, string>> | undefined): boolean {
  const l = labels ?? {};
  const has = (k: string): boolean => Object.hasOwn(l, k);
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (!has(k) || l[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In':
        if (!has(e.key) || !values.includes(l[e.key]!)) return false;
        break;
      case 'NotIn':
        if (has(e.key) && values.includes(l[e.key]!)) return false;
        break;
      case 'Exists':
        if (!has(e.key)) return false;
        break;
      case 'DoesNotExist':
        if (has(e.key)) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}


/**
 * A label selector in kubectl's text form, for messages and tables: `k=v` for each
 * `matchLabels` pair, `k in (a,b)`, `k notin (a,b)`, `k` (Exists), `!k` (DoesNotExist),
 * joined by commas (all must hold); `<all>` for the empty selector, which matches every node.
 */
export function formatLabelSelector(selector: LabelSelector): string {
  const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector.matchExpressions ?? []) {
    const values = `(${(e.values ?? []).join(',')})`;
    parts.push(e.operator === 'In' ? `${e.key} in ${values}` : e.operator === 'NotIn' ? `${e.key} notin ${values}` : e.operator === 'Exists' ? e.key : `!${e.key}`);
  }
  return parts.length === 0 ? '<all>' : parts.join(',');
}
