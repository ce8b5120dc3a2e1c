import t from 'tap';
import { VirtualClock } from '../src/testing/index.ts';

t.test('runNext runs one callback at a time, in time order, skipping cancelled ones', async (t) => {
  const c = new VirtualClock();
  const ran: string[] = [];
  c.at(20, () => ran.push('b'));
  const gone = c.at(5, () => ran.push('cancelled'));
  c.at(10, () => ran.push('a1'));
  c.at(10, () => ran.push('a2'));
  c.cancel(gone);
  t.equal(c.nextAt(), 10);
  t.equal(c.runNext(), true);
  t.same(ran, ['a1']);
  t.equal(c.now(), 10);
  t.equal(c.runNext(), true);
  t.same(ran, ['a1', 'a2']);
  t.equal(c.nextAt(), 20);
  t.equal(c.runNext(), true);
  t.equal(c.now(), 20);
  t.equal(c.nextAt(), undefined);
  t.equal(c.runNext(), false);
  t.same(ran, ['a1', 'a2', 'b']);
});
