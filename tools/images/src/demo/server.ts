// The demo backend of the lab's cluster mode (image purelb.local/demo): an HTTP server
// that answers every request with the pod's name, the node's name and the client's
// address as this pod sees it, so a test can tell which pod and node answered and
// whether the client's source address survived (externalTrafficPolicy: Local keeps it;
// Cluster replaces it with a node's address).
//
// Settings (environment): POD_NAME and NODE_NAME (set them from the downward API:
// metadata.name and spec.nodeName), PORT (default 8080), HOST (default "::", which also
// takes IPv4 on a dual-stack node).
//
// Response: text/plain, one line "pod=<POD_NAME> node=<NODE_NAME> client=<address>", and
// the same values in the headers x-pod-name, x-node-name and x-client-address. IPv4
// clients of a dual-stack socket are shown as plain IPv4 (no ::ffff: prefix). GET
// /healthz answers "ok" (for probes).
import { createServer } from 'node:http';
import { hostname } from 'node:os';

/** The client's address as written in the answer: IPv4-mapped IPv6 shown as IPv4. */
function clientAddress(remote: string | undefined): string {
  if (!remote) return 'unknown';
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote);
  return m ? m[1]! : remote;
}

const pod = process.env.POD_NAME || hostname();
const node = process.env.NODE_NAME || 'unknown';
const port = Number(process.env.PORT || '8080');
const host = process.env.HOST || '::';
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`demo: PORT=${process.env.PORT} is not a port number`);
  process.exit(2);
}

const server = createServer((req, res) => {
  req.resume();
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  if (req.url === '/healthz') {
    res.end('ok\n');
    return;
  }
  const client = clientAddress(req.socket.remoteAddress);
  res.setHeader('x-pod-name', pod);
  res.setHeader('x-node-name', node);
  res.setHeader('x-client-address', client);
  res.end(`pod=${pod} node=${node} client=${client}\n`);
});
server.keepAliveTimeout = 1000;
server.on('error', (e) => {
  console.error(`demo: ${e.message}`);
  process.exit(1);
});
server.listen({ port, host, ...(host === '::' ? { ipv6Only: false } : {}) }, () => {
  const a = server.address();
  const where = a && typeof a === 'object' ? `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}` : String(a);
  console.log(`demo: pod ${pod} on node ${node} listening on ${where}`);
});
// As PID 1 in a container Node gets no default handler for SIGTERM: without these the
// pod would wait out its whole grace period.
const stop = (): void => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
