import t from 'tap';
import { KeyQueue } from '../src/queue.ts';

t.test('a key queued twice is worked once, in order', async (t) => {
  const q = new KeyQueue();
  for (const k of ['a', 'b', 'a', 'c', 'b']) q.add(k);
  t.equal(q.length, 3);
  t.same([await q.next(), await q.next(), await q.next()], ['a', 'b', 'c']);
  q.add('a');
  t.equal(await q.next(), 'a', 'once taken, a key may be queued again');
});

t.test('a waiting taker gets the next key; close ends it', async (t) => {
  const q = new KeyQueue();
  const waiting = q.next();
  q.add('x');
  t.equal(await waiting, 'x');
  const pending = q.next();
  q.close();
  t.equal(await pending, undefined);
  q.add('y');
  t.equal(await q.next(), undefined, 'a closed queue takes nothing');
});

t.test('addAfter delays; close cancels the delay', async (t) => {
  const q = new KeyQueue();
  q.addAfter('late', 30);
  t.equal(q.length, 0);
  t.equal(await q.next(), 'late');
  q.addAfter('never', 10_000);
  q.close();
  t.equal(await q.next(), undefined);
});

t.test('the backing array is compacted under sustained use', async (t) => {
  const q = new KeyQueue();
  for (let i = 0; i < 5000; i++) {
    q.add(`k${i}`);
    if ((await q.next()) !== `k${i}`) t.fail(`k${i} out of order`);
  }
  t.equal(q.length, 0);
});
