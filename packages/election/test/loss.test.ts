import t from 'tap';
import { SimulatedCluster } from '../src/testing/index.ts';

t.test('5% loss for 10 simulated minutes with 20 members: no false death', async (t) => {
  const log: string[] = [];
  const cluster = new SimulatedCluster({ size: 20, seed: 77, loss: 0.05, start: 'converged', onEvent: (_o, e) => log.push(e.type) });
  let isolatedSamples = 0;
  for (let i = 0; i < 600_000 / 50; i++) {
    cluster.advance(50);
    for (const m of cluster.members) if (!m.membership.canGossip()) isolatedSamples++;
  }
  const suspicions = cluster.members.reduce((n, m) => n + m.membership.counters.suspicions, 0);
  const refutations = cluster.members.reduce((n, m) => n + m.membership.counters.refutations, 0);
  t.equal(log.filter((e) => e === 'dead').length, 0, 'no member was declared dead');
  t.ok(cluster.converged(), 'all alive at the end');
  t.ok(cluster.network.stats.packetsLost > 1000, `loss was real (${cluster.network.stats.packetsLost} lost)`);
  t.ok(suspicions > 0 && refutations > 0, `suspicions happened and were refuted (${suspicions} suspicions, ${refutations} refutations)`);
  t.equal(isolatedSamples, 0, 'no member ever believed itself cut off');
  await cluster.close();
});

