import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ShutdownCoordinator } from '../src/index.ts';

t.test('handlers run once, in reverse order, each bounded', async (t) => {
  const sc = new ShutdownCoordinator();
  const log: string[] = [];
  sc.add(async () => void log.push('first registered'));
  sc.add(() => new Promise<void>(() => log.push('hangs')), { timeoutMs: 50 });
  const remove = sc.add(async () => void log.push('removed'));
  sc.add(async () => {
    log.push('throws');
    throw new Error('x');
  });
  remove();
  const [a, b] = await Promise.all([sc.run(), sc.run()]);
  t.equal(a, 1, 'exit code 1 when a handler failed or timed out');
  t.equal(b, 1);
  t.same(log, ['throws', 'hangs', 'first registered']);
  const ok = new ShutdownCoordinator();
  ok.add(async () => undefined);
  t.equal(await ok.run(), 0);
});

t.test('SIGTERM runs the handlers and exits', async (t) => {
  const script = `
    import { onShutdown } from ${JSON.stringify(join(import.meta.dirname, '..', 'src', 'shutdown.ts'))};
    onShutdown(async () => { console.log('stop informers'); }, { timeoutMs: 1000 });
    onShutdown(async () => { await new Promise((r) => setTimeout(r, 50)); console.log('finish writes'); }, { timeoutMs: 1000 });
    console.log('ready');
    setInterval(() => undefined, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  t.teardown(() => {
    clearTimeout(killer);
    child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  await new Promise<void>((resolve) =>
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ready')) resolve();
    }),
  );
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  t.equal(code, 0, `exit code (stderr: ${err})`);
  t.same(out.trim().split('\n'), ['ready', 'finish writes', 'stop informers']);
});
