// Nothing the lab creates outlives it: not on stop, and not after a crash (--clean).
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { LAB_STATE_ROOT, cleanLabs, ip, isAlive, labNamespaces, startLab, waitFor } from '../src/index.ts';

const alive = isAlive;

async function linksInLabNamespaces(id: string): Promise<number> {
  let n = 0;
  for (const ns of await labNamespaces(id)) n += (await ip('-n', ns, '-o', 'link')).split('\n').filter(Boolean).length;
  return n;
}

t.test('stop removes every namespace, link, process and temp dir', async (t) => {
  const lab = await startLab({ nodes: 2 });
  const pids = [...lab.controlPlane.processes.map((p) => p.pid!)];
  const nsBefore = await labNamespaces(lab.id);
  t.equal(nsBefore.length, 4, 'lan, 2 nodes and the client namespace exist while it runs');
  t.ok((await linksInLabNamespaces(lab.id)) > 0);
  t.ok(pids.every(alive), 'etcd and kube-apiserver run');
  await lab.stop();
  t.same(await labNamespaces(lab.id), [], 'no namespace is left');
  t.notOk(existsSync(lab.dir), 'the state dir is gone');
  t.same(pids.filter(alive), [], 'no process is left');
});

t.test('--clean removes what a killed lab left behind', async (t) => {
  // Start a lab in a child process and SIGKILL it: nothing gets to clean up.
  const child = spawn(process.execPath, ['--conditions=@purelb/source', join(import.meta.dirname, 'fixtures', 'lab-then-hang.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const info = await waitFor('the child lab to come up', () => (out.includes('\n') ? (JSON.parse(out.split('\n')[0]!) as { id: string; pids: number[] }) : undefined), 60_000);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  t.equal((await labNamespaces(info.id)).length, 3, 'the killed lab left its namespaces');
  t.ok(info.pids.some(alive), 'and its processes');
  t.ok(existsSync(join(LAB_STATE_ROOT, info.id)), 'and its state');
  const removed = await cleanLabs();
  t.ok(removed.some((r) => r.startsWith('netns ')), 'clean reports the namespaces it removed');
  t.same(await labNamespaces(info.id), [], 'no namespace is left');
  t.same(info.pids.filter(alive), [], 'no process is left');
  t.notOk(existsSync(join(LAB_STATE_ROOT, info.id)), 'no state is left');
});
