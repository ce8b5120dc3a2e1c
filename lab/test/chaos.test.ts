// A short chaos soak (npm run chaos) as part of the lab's tests: six faults on a 3-node
// lab with 50 Services. The chaos command's own exit status is the safety verdict (1 if
// any ARP sample had two MACs answering); this test checks it and the report's shape.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAULT_KINDS } from '../chaos/report.ts';

const dir = mkdtempSync(join(tmpdir(), 'purelb-chaos-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const out = join(dir, 'chaos.json');
const args = ['--conditions=@purelb/source', join(import.meta.dirname, '..', 'chaos', 'chaos.ts'), '--faults', '6', '--minutes', '2', '--seed', '20251', '--nodes', '3', '--services', '50', '--out', out];
const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
let log = '';
child.stdout.on('data', (c: Buffer) => (log += c.toString()));
child.stderr.on('data', (c: Buffer) => (log += c.toString()));
// The run tears its lab down on SIGTERM; SIGKILL only if that takes too long.
t.teardown(async () => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await new Promise((r) => child.once('exit', r));
  clearTimeout(timer);
});
const t0 = Date.now();
const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
const seconds = (Date.now() - t0) / 1000;

t.test('the chaos run finds no duplicate and writes a well-formed report', async (t) => {
  // The run's own account: the faults as injected, their figures, and any duplicate runs.
  const account = log.split('\n').filter((l) => l.startsWith('[chaos]') || l.startsWith('  #') || l.startsWith('  192.0.2.') || l.startsWith('chaos:'));
  t.equal(code, 0, `npm run chaos exited ${code} after ${seconds.toFixed(0)} s (0: no sample had two MACs)\n${account.join('\n')}`);
  let report: { suite: string; metrics: Record<string, unknown>; env: Record<string, unknown> };
  try {
    report = JSON.parse(readFileSync(out, 'utf8')) as typeof report;
  } catch (e) {
    t.fail(`no readable report at ${out}: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  t.equal(report.suite, 'chaos');
  t.ok(Object.values(report.metrics).every((v) => typeof v === 'number' && Number.isFinite(v)), 'every metric is a finite number');
  const m = report.metrics as Record<string, number>;
  t.equal(m.faults_total, 6, 'six faults');
  t.equal(FAULT_KINDS.reduce((n, k) => n + (m[`faults_${k}`] ?? Number.NaN), 0), 6, 'counted by kind');
  t.equal(m.watched_addresses, 12);
  t.ok((m.samples ?? 0) > 12 * 1000, `samples: ${m.samples}`);
  t.equal(m.duplicate_samples, 0, 'no duplicate sample in the report');
  for (const k of FAULT_KINDS) for (const q of ['p50', 'p95', 'max']) t.type(m[`unavailability_${k}_${q}_ms`], 'number', `unavailability_${k}_${q}_ms`);
  t.equal(report.env.seed, 20251);
  t.equal(report.env.nodes, 3);
  t.equal(report.env.services, 50);
  t.type(report.env.cores, 'number', 'the machine is described');
  t.type(report.env.timeline, 'string');
  t.ok(seconds < 180, `the run took ${seconds.toFixed(0)} s`);
});
