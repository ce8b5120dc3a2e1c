// Runs the emulator as a process of its own (for end-to-end tests whose daemon reaches
// Netbox over the network): prints one JSON line `{"url": ..., "port": ...}` once it
// listens on 127.0.0.1, then serves until SIGTERM or SIGINT. Flags: --port N,
// --token T (repeatable; default: the two default tokens). State is set up through the
// `/__emulator/seed` control endpoint.
import { parseArgs } from 'node:util';
import { DEFAULT_V1_TOKEN, DEFAULT_V2_TOKEN, NetboxEmulator } from './emulator.ts';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, token: { type: 'string', multiple: true } } });
const tokens = (values.token ?? [DEFAULT_V1_TOKEN, DEFAULT_V2_TOKEN]).map((token) => ({ token }));
const emulator = await NetboxEmulator.start({ port: Number(values.port), tokens });
console.log(JSON.stringify({ url: emulator.url, port: emulator.port }));
const stop = (): void => {
  void emulator.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
