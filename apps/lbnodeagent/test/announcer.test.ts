// Which node an announcing annotation names: a value that cannot be a node name is no
// announcer (nobody to wait for), whatever else it holds.
import t from 'tap';
import { announcerOf } from '../src/agent.ts';

t.test('announcing annotations', async (t) => {
  const table: [string | undefined, string | undefined][] = [
    ['node-1,eth0', 'node-1'],
    ['node-1', 'node-1'],
    ['worker.example.com,bond0', 'worker.example.com'],
    ['node-9,eth0', 'node-9'],
    [undefined, undefined],
    ['', undefined],
    ['!!garbage', undefined],
    [',,,', undefined],
    [',eth0', undefined],
    ['NODE-1,eth0', undefined],
    [' node-1,eth0', undefined],
    ['-node,eth0', undefined],
    [`${'a'.repeat(254)},eth0`, undefined],
  ];
  for (const [value, node] of table) t.equal(announcerOf(value), node, JSON.stringify(value));
});
