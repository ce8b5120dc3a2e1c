// lab_up_seconds: from startLab() to a lab whose API server is ready, whose 3 node
// namespaces and client namespace are on the LAN with their backends answering, and whose
// Node objects exist. Warm build cache (tools/kube/build.sh ran before the first run).
import { ensureKubeBinaries, startLab } from '../src/index.ts';
import { type BenchSuite, median, nowMs, repeat } from '../../bench/lib.ts';

const RUNS = 3;

const suite: BenchSuite = {
  suite: 'lab',
  targets: { lab_up_seconds: ['<=', 15] },
  async run() {
    await ensureKubeBinaries();
    const downs: number[] = [];
    const ups = await repeat(RUNS, async () => {
      const t0 = nowMs();
      const lab = await startLab({ nodes: 3 });
      const up = (nowMs() - t0) / 1000;
      const t1 = nowMs();
      await lab.stop();
      downs.push((nowMs() - t1) / 1000);
      return up;
    });
    return {
      metrics: { lab_up_seconds: median(ups), lab_down_seconds: median(downs) },
      notes: { runs: RUNS, nodes: 3, cache: 'warm (binaries built before the first run)' },
      samples: { lab_up_seconds: ups, lab_down_seconds: downs },
    };
  },
};

export default suite;
