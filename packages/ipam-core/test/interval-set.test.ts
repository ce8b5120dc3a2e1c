import t from 'tap';
import fc from 'fast-check';
import { IntervalSet } from '../src/interval-set.ts';

/** The set's runs must be sorted, disjoint, non-adjacent (maximal), and hold exactly the model. */
function checkAgainst(set: IntervalSet, model: Set<bigint>): string | undefined {
  let prevEnd: bigint | undefined;
  let count = 0n;
  for (const [s, e] of set.runsFrom(-1n)) {
    if (e < s) return `run [${s},${e}] is reversed`;
    if (prevEnd !== undefined && s <= prevEnd + 1n) return `run at ${s} touches the previous one ending ${prevEnd}`;
    for (let v = s; v <= e; v++) if (!model.has(v)) return `${v} is in the set but not the model`;
    count += e - s + 1n;
    prevEnd = e;
  }
  if (count !== BigInt(model.size) || set.size !== model.size) return `size ${set.size}/${count} != model ${model.size}`;
  return undefined;
}

t.test('runs merge and split', async (t) => {
  const s = new IntervalSet();
  for (const v of [5n, 7n, 6n]) t.ok(s.add(v));
  t.equal(s.runCount, 1, '5,7,6 merge into one run');
  t.notOk(s.add(6n), 'adding a member again is refused');
  t.equal(s.firstFreeAtOrAfter(5n), 8n);
  t.equal(s.firstFreeAtOrAfter(4n), 4n);
  t.ok(s.delete(6n));
  t.equal(s.runCount, 2, 'deleting the middle splits');
  t.notOk(s.delete(6n));
  t.equal(s.firstFreeAtOrAfter(5n), 6n);
  t.equal(s.countIn(0n, 100n), 2n);
  t.equal(s.countIn(6n, 7n), 1n);
});

t.test('sequential fill stays one run across chunk splits', async (t) => {
  const s = new IntervalSet();
  for (let v = 0n; v < 5000n; v++) s.add(s.firstFreeAtOrAfter(0n));
  t.equal(s.size, 5000);
  t.equal(s.runCount, 1);
  for (let v = 0n; v < 5000n; v += 2n) s.delete(v);
  t.equal(s.runCount, 2500, 'every other one freed: 2500 runs over several chunks');
  t.equal(s.firstFreeAtOrAfter(0n), 0n);
  t.equal(s.firstFreeAtOrAfter(1n), 2n);
  for (let v = 0n; v < 5000n; v += 2n) s.add(v);
  t.equal(s.runCount, 1, 'refilled: merged back into one run');
});

t.test('agrees with a plain Set over random operations (property)', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom('add', 'delete', 'first'), fc.bigInt({ min: 0n, max: 3000n })), { maxLength: 3000 }),
      (ops) => {
        const set = new IntervalSet();
        const model = new Set<bigint>();
        for (const [op, v] of ops) {
          if (op === 'add') {
            if (set.add(v) !== !model.has(v)) return false;
            model.add(v);
          } else if (op === 'delete') {
            if (set.delete(v) !== model.has(v)) return false;
            model.delete(v);
          } else {
            let want = v;
            while (model.has(want)) want++;
            if (set.firstFreeAtOrAfter(v) !== want) return false;
          }
          if (set.has(v) !== model.has(v)) return false;
        }
        const problem = checkAgainst(set, model);
        if (problem) throw new Error(problem);
        return true;
      },
    ),
    { numRuns: 150 },
  );
  t.pass('no counterexample');
});
