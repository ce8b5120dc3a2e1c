import type { Test } from 'tap';
import type { ClusterLab, ClusterLabOptions } from './cluster.ts';
import { type Lab, type ProcessLabOptions, startLab } from './lab.ts';

/**
 * Starts a lab for a tap test and stops it in the test's teardown, whether the test
 * passes, fails or throws. Usage: `const lab = await withLab(t, { nodes: 3 })`.
 */
export async function withLab(t: Pick<Test, 'teardown'>, options: ProcessLabOptions = {}): Promise<Lab> {
  const lab = await startLab(options);
  t.teardown(() => lab.stop());
  return lab;
}

/** withLab for cluster mode: real nodes (see cluster.ts), stopped in the test's teardown. */
export async function withClusterLab(t: Pick<Test, 'teardown'>, options: ClusterLabOptions = {}): Promise<ClusterLab> {
  const lab = await startLab({ ...options, cluster: true });
  t.teardown(() => lab.stop());
  return lab;
}
