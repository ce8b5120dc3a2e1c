// Generates deploy/purelb-complete.yaml, the one-file install, from charts/purelb.
//   node tools/manifest.ts           (npm run manifest) rewrite it
//   node tools/manifest.ts --check   exit 1 if the committed file is out of date
// The manifest is `helm template` with the CRDs first and bootstrap=apps: it carries no
// custom resource (LBNodeAgent, ServiceGroup) and no gossip Secret, which the apps create
// when absent, so a single `kubectl apply` succeeds on a fresh cluster (a custom resource
// next to its CRD fails there: kubectl maps every object before the CRD is established).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
/** The chart directory. */
export const CHART_DIR = join(root, 'charts', 'purelb');
/** Where the generated manifest is committed. */
export const MANIFEST_PATH = join(root, 'deploy', 'purelb-complete.yaml');
/** helm values that make the chart's output apply in one go (the CRDs once, from crds/: --include-crds). */
export const MANIFEST_VALUES = ['bootstrap=apps', 'createNamespace=true', 'crds.enabled=false'] as const;
/** Release name and namespace the manifest is rendered for. */
export const MANIFEST_RELEASE = { name: 'purelb', namespace: 'purelb' } as const;

/** Runs a command; resolves with stdout, rejects with the exit code and stderr's tail. */
export function runTool(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')}: ${signal ? `killed by ${signal} (timeout?)` : `exit ${code}`}\n${err.trim().split('\n').slice(-20).join('\n')}`));
    });
    // A command that exits without reading its input must not fail the caller (EPIPE).
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input);
  });
}

/**
 * The helm binary, built by tools/helm/build.sh on first use (minutes) and cached
 * outside the repo. `onProgress` gets the build's progress lines.
 */
export async function ensureHelm(onProgress?: (line: string) => void): Promise<string> {
  const script = join(root, 'tools', 'helm', 'build.sh');
  if (!existsSync(script)) throw new Error(`missing ${script}`);
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
      for (const line of c.toString().split('\n')) if (line.trim()) onProgress?.(line);
    });
    child.on('error', (e) => reject(new Error(`cannot run ${script}: ${e.message}`)));
    child.on('close', (code) => {
      const bin = out.trim().split('\n').pop() ?? '';
      if (code === 0 && bin && existsSync(bin)) resolve(bin);
      else reject(new Error(`tools/helm/build.sh failed (exit ${code}); Go >= 1.26 is needed to build helm:\n${err.split('\n').slice(-15).join('\n')}`));
    });
  });
}

const HEADER = `# PureLB, everything in one file: kubectl apply -f purelb-complete.yaml
# Generated from charts/purelb by tools/manifest.ts (npm run manifest); do not edit.
# CRDs come first. The default LBNodeAgent, the sample ServiceGroup and the gossip key
# Secret are not in this file: the allocator and the agents create them when absent
# (chart value bootstrap=apps), so the first apply succeeds.
`;

/** Renders the manifest text from the chart. */
export async function renderManifest(helm?: string): Promise<string> {
  const bin = helm ?? (await ensureHelm());
  const args = ['template', MANIFEST_RELEASE.name, CHART_DIR, '--namespace', MANIFEST_RELEASE.namespace, '--include-crds'];
  for (const v of MANIFEST_VALUES) args.push('--set', v);
  const text = await runTool(bin, args);
  const kinds = [...text.matchAll(/^kind: (\S+)$/gm)].map((m) => m[1]);
  const firstOther = kinds.findIndex((k) => k !== 'CustomResourceDefinition');
  if (firstOther < 0 || kinds.slice(firstOther).includes('CustomResourceDefinition')) throw new Error(`helm template did not put the CRDs first: ${kinds.join(', ')}`);
  if (kinds.some((k) => k === 'LBNodeAgent' || k === 'ServiceGroup' || k === 'Secret')) throw new Error(`the manifest must carry no custom resource and no Secret: ${kinds.join(', ')}`);
  return HEADER + text;
}

if (import.meta.main) {
  const text = await renderManifest(await ensureHelm((l) => console.error(l)));
  if (process.argv.includes('--check')) {
    const have = existsSync(MANIFEST_PATH) ? readFileSync(MANIFEST_PATH, 'utf8') : '';
    if (have !== text) {
      console.error(`${MANIFEST_PATH} is out of date with charts/purelb; run: npm run manifest`);
      process.exit(1);
    }
  } else {
    writeFileSync(MANIFEST_PATH, text);
    console.log(`wrote ${MANIFEST_PATH}`);
  }
}
