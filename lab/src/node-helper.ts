// Runs inside a lab node's network namespace (started with `ip netns exec`). It is the
// node's stand-in for what a real node has and the lab lacks:
//   - a path to the API server: 127.0.0.1:PORT inside the namespace is forwarded over a
//     Unix socket (not namespaced) to the lab, which forwards it to the API server;
//   - a backend for the demo Services: HTTP on port 80, any address of the namespace,
//     answering with the node's name. With no kube-proxy, a LoadBalancer address put on
//     this node is answered by this backend directly.
// Usage: node-helper.ts --node NAME --api-port PORT --api-socket PATH [--http-port 80]
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    node: { type: 'string' },
    'api-port': { type: 'string' },
    'api-socket': { type: 'string' },
    'http-port': { type: 'string', default: '80' },
  },
});
const node = values.node;
const apiPort = Number(values['api-port']);
const apiSocket = values['api-socket'];
if (!node || !apiPort || !apiSocket) {
  console.error('usage: node-helper.ts --node NAME --api-port PORT --api-socket PATH [--http-port N]');
  process.exit(2);
}

const forwarder = createServer((client) => {
  const upstream = connect(apiSocket);
  client.pipe(upstream).pipe(client);
  const close = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
});
forwarder.listen(apiPort, '127.0.0.1');

const backend = createHttpServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.setHeader('x-purelb-node', node);
  res.end(`${node}\n`);
  req.resume();
});
backend.keepAliveTimeout = 1000;
backend.listen({ port: Number(values['http-port']), host: '::', ipv6Only: false });

let ready = 0;
const onReady = (): void => {
  if (++ready === 2) console.log(`ready ${node}`);
};
forwarder.on('listening', onReady);
backend.on('listening', onReady);
for (const s of [forwarder, backend]) {
  s.on('error', (e) => {
    console.error(`node-helper ${node}: ${e.message}`);
    process.exit(1);
  });
}
const stop = (): void => {
  forwarder.close();
  backend.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
