import t from 'tap';
import fc from 'fast-check';
import { type Condition, findCondition, jsonEqual, mergePatchIfChanged, setCondition } from '../src/index.ts';

/** RFC 7386 applied to a copy, as the API server applies it. */
function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

t.test('mergePatchIfChanged: table', async (t) => {
  const table: [string, unknown, Record<string, unknown>, Record<string, unknown> | undefined][] = [
    ['equal', { a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 }, undefined],
    ['scalar changed', { a: 1 }, { a: 2 }, { a: 2 }],
    ['key added', { a: 1 }, { a: 1, b: 'x' }, { b: 'x' }],
    ['key removed', { a: 1, b: 2 }, { a: 1 }, { b: null }],
    ['undefined means absent', { a: 1, b: 2 }, { a: 1, b: undefined }, { b: null }],
    ['null means absent', { a: 1, b: 2 }, { a: 1, b: null }, { b: null }],
    ['removing what is absent is no change', { a: 1 }, { a: 1, b: null }, undefined],
    ['nested change only', { s: { x: 1, y: 2 } }, { s: { x: 1, y: 3 } }, { s: { y: 3 } }],
    ['nested removal', { s: { x: 1, y: 2 } }, { s: { x: 1 } }, { s: { y: null } }],
    ['array replaced whole', { l: [1, 2, 3] }, { l: [1, 2] }, { l: [1, 2] }],
    ['array element object change replaces the array', { l: [{ ip: '192.0.2.1' }] }, { l: [{ ip: '192.0.2.2' }] }, { l: [{ ip: '192.0.2.2' }] }],
    ['object over scalar', { a: 1 }, { a: { b: 1 } }, { a: { b: 1 } }],
    ['scalar over object', { a: { b: 1 } }, { a: 1 }, { a: 1 }],
    ['from nothing', undefined, { a: { b: 1 } }, { a: { b: 1 } }],
    ['empty object added', {}, { a: {} }, { a: {} }],
    [
      'service status ingress',
      { status: { loadBalancer: {} } },
      { status: { loadBalancer: { ingress: [{ ip: '192.0.2.10', ipMode: 'VIP' }] } } },
      { status: { loadBalancer: { ingress: [{ ip: '192.0.2.10', ipMode: 'VIP' }] } } },
    ],
    ['annotation removed', { metadata: { annotations: { 'purelb.io/allocated-by': 'PureLB', keep: 'x' } } }, { metadata: { annotations: { keep: 'x' } } }, { metadata: { annotations: { 'purelb.io/allocated-by': null } } }],
  ];
  for (const [name, current, desired, want] of table) {
    const before = JSON.stringify(current);
    t.same(mergePatchIfChanged(current, desired), want, name);
    t.equal(JSON.stringify(current), before, `${name}: current unchanged`);
  }
  t.throws(() => mergePatchIfChanged({}, [1] as unknown), TypeError);
});

const json = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, fc.integer(), fc.string({ maxLength: 3 }), fc.boolean(), fc.array(tie('value'), { maxLength: 3 }), tie('object')),
  object: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), tie('value'), { maxKeys: 4 }),
})).object;

t.test('mergePatchIfChanged: applying the patch gives desired; no patch exactly when equal', async (t) => {
  fc.assert(
    fc.property(json, json, (current, desired) => {
      const patch = mergePatchIfChanged(current, desired);
      if (patch === undefined) return jsonEqual(current, desired);
      return !jsonEqual(current, desired) && jsonEqual(applyMergePatch(current, patch), desired);
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 random pairs');
});

t.test('setCondition: lastTransitionTime moves only when status changes', async (t) => {
  const t0 = '2026-01-01T00:00:00Z';
  const t1 = new Date('2026-01-01T00:05:00.123Z');
  const valid: Condition = { type: 'Valid', status: 'True', reason: 'Valid', message: 'ok', lastTransitionTime: t0 };
  const other: Condition = { type: 'Ready', status: 'False', reason: 'Waiting', message: '', lastTransitionTime: t0 };
  const list = [valid, other];

  const added = setCondition(undefined, { type: 'Valid', status: 'True', reason: 'Valid', message: 'ok' }, t1);
  t.same(added, [{ ...valid, lastTransitionTime: '2026-01-01T00:05:00Z' }], 'a new type gets now, in whole seconds');

  t.equal(setCondition(list, { type: 'Valid', status: 'True', reason: 'Valid', message: 'ok' }, t1), list, 'no change: the same array');

  const reworded = setCondition(list, { type: 'Valid', status: 'True', reason: 'Valid', message: 'still ok' }, t1);
  t.equal(reworded[0]?.lastTransitionTime, t0, 'same status, new message: time kept');
  t.equal(reworded[0]?.message, 'still ok');

  const flipped = setCondition(list, { type: 'Valid', status: 'False', reason: 'PoolOutsideSubnet', message: 'v4pools[0].pool is outside v4pools[0].subnet' }, t1);
  t.same(flipped[0], { type: 'Valid', status: 'False', reason: 'PoolOutsideSubnet', message: 'v4pools[0].pool is outside v4pools[0].subnet', lastTransitionTime: '2026-01-01T00:05:00Z' });
  t.equal(flipped[1], other, 'other conditions untouched and in place');
  t.equal(list[0], valid, 'the input is not modified');

  const gen = setCondition(list, { type: 'Valid', status: 'True', reason: 'Valid', message: 'ok', observedGeneration: 4 }, t1);
  t.equal(gen[0]?.observedGeneration, 4);
  t.equal(gen[0]?.lastTransitionTime, t0);
  t.equal(findCondition(flipped, 'Valid')?.status, 'False');
  t.equal(findCondition(flipped, 'Nope'), undefined);
});
