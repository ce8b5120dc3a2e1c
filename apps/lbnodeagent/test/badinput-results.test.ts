// bench-results/badinput.json holds two suites' totals (the allocator's and the node
// agent's); each writes its part without losing the other's.
import t from 'tap';
import { type BadInputTotals, mergeBadInputResults } from '../../../bench/lib.ts';

const totals = (n: number, crashes = 0): BadInputTotals => ({ inputs_tried: n, daemon_crashes: crashes, healthy_addresses_changed: 0, node_addresses_touched: 0, silent_inputs: 0 });
const host = { node: 'v24', cores: 2, date: '2026-12-01T00:00:00.000Z' };

t.test('a file from before parts is the allocator\'s, and the agent\'s part adds to it', async (t) => {
  const legacy = { suite: 'badinput', metrics: totals(113), env: { node: 'v24', rows_admission: 62, rows_servicegroup: 12, restarts: 3 } };
  const merged = mergeBadInputResults(legacy, 'lbnodeagent', totals(50, 1), { rows_forged: 20, restarts: 8 }, host);
  t.same(merged.metrics, { inputs_tried: 163, daemon_crashes: 1, healthy_addresses_changed: 0, node_addresses_touched: 0, silent_inputs: 0 });
  t.equal(merged.env.allocator_inputs_tried, 113);
  t.equal(merged.env.allocator_rows_admission, 62);
  t.equal(merged.env.allocator_restarts, 3);
  t.equal(merged.env.lbnodeagent_inputs_tried, 50);
  t.equal(merged.env.lbnodeagent_rows_forged, 20);
  t.equal(merged.env.lbnodeagent_date, host.date);
  t.notOk('rows_admission' in merged.env, 'the unprefixed keys are gone');
});

t.test('writing one part again replaces only that part', async (t) => {
  const first = mergeBadInputResults(undefined, 'allocator', totals(113), { rows_admission: 62 }, host);
  const both = mergeBadInputResults(first, 'lbnodeagent', totals(50), { rows_old: 5 }, host);
  const again = mergeBadInputResults(both, 'lbnodeagent', totals(60), { rows_new: 6 }, { ...host, date: 'later' });
  t.equal(again.metrics.inputs_tried, 173, 'the sum of 113 and the new 60');
  t.equal(again.env.allocator_rows_admission, 62, 'the other part is kept');
  t.notOk('lbnodeagent_rows_old' in again.env, 'the rewritten part\'s old notes are gone');
  t.equal(again.env.lbnodeagent_rows_new, 6);
  t.equal(again.env.allocator_date, host.date, 'each part keeps the date it was written');
  t.equal(again.env.lbnodeagent_date, 'later');
});

t.test('something that is not a bad-input result is not read', async (t) => {
  const merged = mergeBadInputResults({ suite: 'lab', metrics: { inputs_tried: 7 } }, 'allocator', totals(3), {}, host);
  t.equal(merged.metrics.inputs_tried, 3);
  t.notOk('lbnodeagent_inputs_tried' in merged.env);
});
