// docs/routing.md shows the configuration the routed lab runs: the page's blocks must be
// exactly what routing.ts generates for the page's parameters. And bad parameters fail
// naming the field.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DOC_BIRD_PARAMS, DOC_ROUTER_PARAMS, RoutingConfigError, birdConfig, frrRouterConfig } from '../src/routing.ts';

const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'routing.md'), 'utf8');

/** The fenced block right after the `<!-- generated: NAME ...` comment. */
function generatedBlock(name: string): string {
  const at = doc.indexOf(`<!-- generated: ${name}`);
  if (at < 0) throw new Error(`docs/routing.md has no "<!-- generated: ${name}" comment`);
  const m = /^[^\n]*\n```\n([\s\S]*?)```\n/.exec(doc.slice(at));
  if (!m) throw new Error(`docs/routing.md: no fenced block right after the ${name} comment`);
  return m[1]!;
}

t.test('the BIRD configuration on docs/routing.md is birdConfig(DOC_BIRD_PARAMS)', async (t) => {
  t.equal(generatedBlock('birdConfig(DOC_BIRD_PARAMS)'), birdConfig(DOC_BIRD_PARAMS));
});

t.test('the router configuration on docs/routing.md is frrRouterConfig(DOC_ROUTER_PARAMS)', async (t) => {
  const c = frrRouterConfig(DOC_ROUTER_PARAMS);
  t.equal(generatedBlock('frrRouterConfig(DOC_ROUTER_PARAMS)'), c.bfdd + c.bgpd);
});

t.test('the BIRD configuration advertises kube-lb0 only, with BFD on both sessions', async (t) => {
  const c = birdConfig({ ...DOC_BIRD_PARAMS, virtualInterface: 'lb9', bfdIntervalMs: 100, bfdMultiplier: 4 });
  t.match(c, /protocol direct purelb \{\n {2}ipv4;\n {2}ipv6;\n {2}interface "lb9";\n\}/);
  t.equal(c.match(/bfd on;/g)?.length, 2);
  t.equal(c.match(/export where proto = "purelb";/g)?.length, 2);
  t.equal(c.match(/import none;/g)?.length, 2);
  t.match(c, /min tx interval 100 ms;\n {4}multiplier 4;/);
  t.notMatch(c, /protocol kernel/, 'nothing written into the node\'s routing table');
});

t.test('bad parameters fail naming the field', async (t) => {
  const cases: [Partial<typeof DOC_BIRD_PARAMS>, string][] = [
    [{ nodeV4: '192.0.2.300' }, 'nodeV4'],
    [{ routerV6: 'not-v6' }, 'routerV6'],
    [{ nodeAs: 0 }, 'nodeAs'],
    [{ routerAs: 1.5 }, 'routerAs'],
    [{ virtualInterface: 'kube lb0; }' }, 'virtualInterface'],
    [{ lanInterface: '' }, 'lanInterface'],
    [{ bfdIntervalMs: 5 }, 'bfdIntervalMs'],
    [{ bfdMultiplier: 0 }, 'bfdMultiplier'],
  ];
  for (const [bad, field] of cases) {
    t.throws(() => birdConfig({ ...DOC_BIRD_PARAMS, ...bad }), { name: 'RoutingConfigError', code: 'ROUTING_BAD_PARAMETER', field }, `${field}: ${JSON.stringify(bad)}`);
  }
  t.throws(() => frrRouterConfig({ ...DOC_ROUTER_PARAMS, maximumPaths: 0 }), new RoutingConfigError('maximumPaths', '0 is not in 1-64'));
  t.throws(() => frrRouterConfig({ ...DOC_ROUTER_PARAMS, nodes: [{ v4: '192.0.2.11', v6: 'x' }] }), { name: 'RoutingConfigError', code: 'ROUTING_BAD_PARAMETER', field: 'nodes[0].v6' });
});
