import type { Test } from 'tap';
import { type Lab, type LabOptions, startLab } from './lab.ts';

/**
 * Starts a lab for a tap test and stops it in the test's teardown, whether the test
 * passes, fails or throws. Usage: `const lab = await withLab(t, { nodes: 3 })`.
 */
export async function withLab(t: Pick<Test, 'teardown'>, options: LabOptions = {}): Promise<Lab> {
  const lab = await startLab(options);
  t.teardown(() => lab.stop());
  return lab;
}
