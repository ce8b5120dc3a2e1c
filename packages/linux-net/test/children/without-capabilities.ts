// Run by kernel.test.ts inside a namespace with CAP_NET_ADMIN and CAP_NET_RAW dropped:
// prints what each call did as JSON on stdout.
import { NetlinkError, openNetlinkHandle } from '../../src/index.ts';

const outcome = async (fn: () => Promise<unknown>): Promise<unknown> => {
  try {
    return { ok: await fn() };
  } catch (e) {
    return e instanceof NetlinkError ? { code: e.code, message: e.message, errno: e.context.errno } : { other: String(e) };
  }
};

const h = openNetlinkHandle({ virtualLinkKind: 'bridge' });
const result = {
  listLinks: await outcome(async () => (await h.listLinks()).map((l) => l.name)),
  addAddress: await outcome(() => h.addAddress('lan0', '192.0.2.5/24')),
  deleteAddress: await outcome(() => h.deleteAddress('lan0', '192.0.2.1/24')),
  ensureVirtualLink: await outcome(() => h.ensureVirtualLink('kube-lb0')),
  announce: await outcome(() => h.announce('lan0', '192.0.2.1')),
  probeAddress: await outcome(() => h.probeAddress('lan0', '192.0.2.9')),
  deleteAddresses: await outcome(async () => (await h.deleteAddresses([{ link: 'lan0', address: '192.0.2.1/24' }])).map((r) => (r.ok ? r.value : r.error.code))),
};
h.close();
process.stdout.write(JSON.stringify(result));
