// Shared by the tests: a client for a lab, polling with a bound, small object builders.
import type { Lab } from '@purelb/lab';
import { KubeClient } from '../src/index.ts';

/** An admin client for the lab's API server. */
export function adminClient(lab: Lab, opts: { timeoutMs?: number } = {}): KubeClient {
  const cp = lab.controlPlane;
  return new KubeClient({ server: cp.url, caPem: cp.caPem, token: cp.adminToken }, { userAgent: 'k8s-glue-test', ...opts });
}

/** Polls `check` every `intervalMs` until it returns true; fails with `what` after `timeoutMs`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000, intervalMs = 20): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < 1_000_000; i++) {
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    if (performance.now() > deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

/** A namespace with a unique name, deleted in teardown. */
export async function testNamespace(t: { teardown(fn: () => unknown): void }, client: KubeClient, prefix: string): Promise<string> {
  const name = `${prefix}-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  t.teardown(() => client.delete(`/api/v1/namespaces/${name}`, { ignoreNotFound: true }));
  return name;
}

export interface ConfigMap {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string; labels?: Record<string, string>; managedFields?: unknown };
  data?: Record<string, string>;
}

export function configMap(name: string, data: Record<string, string> = {}, labels?: Record<string, string>): ConfigMap {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, ...(labels ? { labels } : {}) }, data };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
