import t, { type Test } from 'tap';
import { ElectionError, Keyring, Membership, UdpTransport, splitHostPort } from '../src/index.ts';
import { MemberGroup, NamespaceLan, requireNetns, waitFor } from './fixtures/harness.ts';

t.test('UDP transport: binds, exchanges packets and full state on loopback', async (t) => {
  const key = Keyring.generateKey();
  const a = new Membership({ name: 'a', subnets: ['192.0.2.0/24'], transport: await UdpTransport.open({ bindAddress: '127.0.0.1', port: 0 }), keyring: new Keyring([key]) });
  const b = new Membership({ name: 'b', subnets: ['192.0.2.0/24'], transport: await UdpTransport.open({ bindAddress: '127.0.0.1', port: 0 }), keyring: new Keyring([key]) });
  t.teardown(async () => {
    await a.shutdown();
    await b.shutdown();
  });
  t.match(a.address, /^127\.0\.0\.1:\d+$/);
  a.start();
  b.start();
  t.equal(await b.join([a.address]), 1, 'join answered');
  t.ok(await waitFor(() => a.liveMembers().length === 2 && b.liveMembers().length === 2, 3_000), 'both see two members');
  t.ok(await waitFor(() => a.counters.acksReceived > 2 && b.counters.acksReceived > 2, 3_000), 'probes are answered');
  const leaving = b.leave();
  t.ok(await waitFor(() => a.member('b')?.status === 'left', 2_000), 'leave seen');
  await leaving;
  t.equal(a.counters.dropped.forged, 0);
});

t.test('UDP transport errors', async (t) => {
  const taken = await UdpTransport.open({ bindAddress: '127.0.0.1', port: 0 });
  t.teardown(() => taken.close());
  const port = splitHostPort(taken.address)!.port;
  await t.rejects(UdpTransport.open({ bindAddress: '127.0.0.1', port }), { code: 'ELECTION_BIND_FAILED' }, 'port in use');
  await t.rejects(UdpTransport.open({ bindAddress: '0.0.0.0', port: 0 }), { code: 'ELECTION_BIND_FAILED', context: { field: 'advertiseAddress' } }, 'wildcard needs an advertised address');
  const lonely = new Membership({ name: 'lonely', transport: await UdpTransport.open({ bindAddress: '127.0.0.1', port: 0 }), config: { streamTimeoutMs: 300 } });
  t.teardown(() => lonely.shutdown());
  lonely.start();
  // A closed port on loopback: the connection is refused at once.
  await t.rejects(lonely.join([`127.0.0.1:${port + 1 === 65536 ? port - 1 : port + 1}`]), ElectionError, 'join with no answering seed fails');
});

async function killAndDetect(t: Test, group: MemberGroup, label: string): Promise<void> {
  const victim = 2;
  const since = group.kill(victim);
  const took = await group.deadEverywhere(victim, since, 5_000);
  t.ok(took !== undefined, `${label}: every survivor declared the SIGKILLed member dead (${took?.toFixed(0)} ms)`);
  t.ok(took !== undefined && took < 3_000, `${label}: within 3 s`);
  const wrong = group.members.flatMap((m, i) => (i === victim ? [] : m.events.filter((e) => e.event === 'dead' && e.member !== group.members[victim]!.name)));
  t.same(wrong, [], `${label}: no other member was declared dead`);
}

t.test('5 member processes on loopback: SIGKILL one', async (t) => {
  const group = await MemberGroup.start(
    Array.from({ length: 5 }, () => ({ bind: '127.0.0.1', port: 0 })),
    `lo${process.pid}`,
  ).catch((e: Error) => {
    t.fail(e.message);
    return undefined;
  });
  if (!group) return;
  t.teardown(() => group.stop());
  await new Promise((r) => setTimeout(r, 500));
  await killAndDetect(t, group, 'loopback');
});

t.test('5 member processes in network namespaces on a bridge: SIGKILL one', async (t) => {
  const missing = requireNetns();
  if (missing) {
    t.fail(`this test needs ${missing}`);
    return;
  }
  const lan = NamespaceLan.create(5);
  const running: { group?: MemberGroup } = {};
  // One teardown, in order: the processes first, then the namespaces they run in.
  t.teardown(async () => {
    await running.group?.stop();
    lan.destroy();
  });
  const group = await MemberGroup.start(
    lan.members.map((netns, i) => ({ bind: lan.addresses[i]!, port: 7934, netns })),
    `ns${process.pid}`,
  ).catch((e: Error) => {
    t.fail(e.message);
    return undefined;
  });
  if (!group) return;
  running.group = group;
  t.ok(group.members.every((m) => m.address.endsWith(':7934')), 'every member on the default port 7934');
  await new Promise((r) => setTimeout(r, 500));
  await killAndDetect(t, group, 'namespaces');
});
