// Pure helpers for writes that happen only when something changed: the smallest JSON
// merge patch between two states, and Kubernetes condition bookkeeping.

/** A status condition as in metav1.Condition. */
export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  /** RFC 3339; changes only when status changes. */
  readonly lastTransitionTime: string;
  readonly observedGeneration?: number;
}

/** What a caller sets: a condition without its transition time. */
export type ConditionUpdate = Omit<Condition, 'lastTransitionTime'>;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Structural equality of JSON values (key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/**
 * The smallest JSON merge patch (RFC 7386) that turns `current` into `desired`, or
 * undefined when they are equal, so a caller writes nothing when nothing changed. Keys
 * missing (or undefined, or null) in `desired` become null (removal); arrays are replaced
 * whole, as merge patch has no way to edit one element. Neither argument is modified.
 */
export function mergePatchIfChanged(current: unknown, desired: unknown): Record<string, unknown> | undefined {
  if (!isPlainObject(desired)) throw new TypeError('mergePatchIfChanged: desired must be an object');
  const patch = diff(isPlainObject(current) ? current : {}, desired);
  return patch;
}

function diff(current: Record<string, unknown>, desired: Record<string, unknown>): Record<string, unknown> | undefined {
  const patch: Record<string, unknown> = {};
  let changed = false;
  for (const [k, want] of Object.entries(desired)) {
    const have = current[k];
    if (want === undefined || want === null) {
      if (have !== undefined && have !== null) {
        patch[k] = null;
        changed = true;
      }
      continue;
    }
    if (isPlainObject(want) && isPlainObject(have)) {
      const sub = diff(have, want);
      if (sub) {
        patch[k] = sub;
        changed = true;
      }
    } else if (!jsonEqual(have, want)) {
      patch[k] = isPlainObject(want) ? withoutNulls(want) : want;
      changed = true;
    }
  }
  for (const k of Object.keys(current)) {
    if (current[k] !== undefined && current[k] !== null && !Object.hasOwn(desired, k)) {
      patch[k] = null;
      changed = true;
    }
  }
  return changed ? patch : undefined;
}

/** A copy without null members: inside a merge patch they would mean "delete", not "set to null". */
function withoutNulls(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === null || v === undefined) continue;
    out[k] = isPlainObject(v) ? withoutNulls(v) : v;
  }
  return out;
}

/**
 * Conditions with `cond` set, as Kubernetes defines it: lastTransitionTime moves to `now`
 * only when the status of that type changes (or the type is new); reason, message and
 * observedGeneration are taken as given. Returns `conditions` itself when nothing changed
 * and never modifies it. Order is kept; a new type is appended.
 */
export function setCondition(conditions: readonly Condition[] | undefined, cond: ConditionUpdate, now: Date | string): readonly Condition[] {
  const list = conditions ?? [];
  const time = typeof now === 'string' ? now : rfc3339Seconds(now);
  const i = list.findIndex((c) => c.type === cond.type);
  if (i < 0) return [...list, { ...cond, lastTransitionTime: time }];
  const old = list[i]!;
  const next: Condition = { ...cond, lastTransitionTime: old.status === cond.status ? old.lastTransitionTime : time };
  if (jsonEqual(old, next)) return list;
  return list.map((c, j) => (j === i ? next : c));
}

/** The condition of a type, if present. */
export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** metav1.Time text: RFC 3339 in UTC with whole seconds, as the server stores it. */
export function rfc3339Seconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
