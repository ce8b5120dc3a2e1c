// Run inside a network namespace: accepts connections on a Unix socket and relays each to
// HOST:PORT of that namespace. The lab's cluster mode uses it to give the host a way to
// the API server in the LAN namespace (sockets on the filesystem are not bound to a
// network namespace). Exits when its parent (the lab) is gone.
//   node unix-forward.ts SOCKET HOST PORT
import { rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { joinSockets } from './socket-pipe.ts';

const [socketPath, host, portText] = process.argv.slice(2);
const port = Number(portText);
if (!socketPath || !host || !Number.isInteger(port)) {
  console.error('usage: unix-forward.ts SOCKET HOST PORT');
  process.exit(2);
}
rmSync(socketPath, { force: true });
const server = createServer((client) => joinSockets(client, connect(port, host)));
server.listen(socketPath, () => console.log(`ready ${socketPath} -> ${host}:${port}`));
const parent = process.ppid;
setInterval(() => {
  try {
    process.kill(parent, 0);
  } catch {
    process.exit(0);
  }
}, 1000).unref();
process.on('SIGTERM', () => process.exit(0));
