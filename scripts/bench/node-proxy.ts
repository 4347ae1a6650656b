// The floor for any proxy written on Node: node:http in, an undici keep-alive pool out, the body
// read whole and forwarded, nothing else. Run as a child by the bench; not part of Switchyard.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';

const upstream = process.env.BENCH_UPSTREAM_ORIGIN;
if (!upstream) throw new Error('BENCH_UPSTREAM_ORIGIN is required');
const pool = new Agent({ keepAliveTimeout: 10_000, connections: 128 });

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    request(upstream + (req.url ?? '/'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks), dispatcher: pool })
      .then(async (up) => {
        res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') });
        for await (const chunk of up.body) res.write(chunk);
        res.end();
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"upstream failed","type":"upstream_error","code":null,"param":null}}');
      });
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', port: (server.address() as AddressInfo).port });
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
