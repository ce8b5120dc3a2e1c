import t from 'tap';
import { type PeerLease, effectiveCandidates } from '../src/candidates.ts';

const subnets = ['192.0.2.0/24'];
const swim = new Map([['node-1', subnets], ['node-2', subnets], ['node-3', subnets]]);
const peer = (node: string, mode: PeerLease['mode'], fresh = true): PeerLease => ({ node, fresh, mode, subnets });

t.test('the guard decides in swim and fenced mode', async (t) => {
  const s = effectiveCandidates('node-1', { mode: 'swim', candidates: new Set(['node-1', 'node-3']) }, swim, subnets, [peer('node-2', 'swim'), peer('node-3', 'swim')]);
  t.same([s.basis, s.candidates.map((c) => c.name)], ['swim', ['node-1', 'node-3']]);
  const f = effectiveCandidates('node-1', { mode: 'fenced', candidates: new Set() }, swim, subnets, [peer('node-2', 'lease')]);
  t.same([f.basis, f.candidates], ['fenced', []]);
});

t.test('cut off alone: this node claims nothing (the others elect through SWIM)', async (t) => {
  const d = { mode: 'lease' as const, candidates: new Set(['node-2', 'node-3']) };
  const r = effectiveCandidates('node-1', d, swim, subnets, [peer('node-1', 'lease'), peer('node-2', 'swim'), peer('node-3', 'swim')]);
  t.equal(r.basis, 'lease');
  t.notOk(r.candidates.some((c) => c.name === 'node-1'));
  const unknown = effectiveCandidates('node-1', d, swim, subnets, [peer('node-2', undefined), peer('node-3', 'lease')]);
  t.equal(unknown.basis, 'lease', 'a peer that published no mode is not assumed cut off');
});

t.test('gossip blocked everywhere: every node elects over the same Lease view', async (t) => {
  const leases = [peer('node-1', 'lease'), peer('node-2', 'lease'), peer('node-3', 'lease'), peer('node-4', 'lease', false)];
  const views = ['node-1', 'node-2', 'node-3'].map((self) => effectiveCandidates(self, { mode: 'lease', candidates: new Set() }, new Map(), subnets, leases));
  for (const v of views) {
    t.equal(v.basis, 'lease-consensus');
    t.same(v.candidates.map((c) => c.name), ['node-1', 'node-2', 'node-3'], 'the same set on every node; stale Leases excluded');
    t.same(v.candidates[0]?.subnets, subnets, 'subnets come from the Leases when SWIM has none');
  }
});
