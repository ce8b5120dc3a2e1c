/**
 * Freezes `value` and everything reachable from it, so a cached object cannot be changed
 * by whoever reads it (a write to it throws in strict mode). Returns `value`.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  return value;
}
