// What the HTTP/1.1 stand-ins share: a server that hands each request over with its whole body,
// listening on a free loopback port, and a stop that does not wait for keep-alive clients.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A server calling `handle` once each request's body has arrived. */
export function bodyServer(
  handle: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void,
): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks));
    });
  });
}

/** Listens on 127.0.0.1 at a free port; resolves to the base URL. */
export async function listenOnLoopback(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
}

/** Closes the server and every connection it still has. */
export async function closeServer(server: Server | undefined): Promise<void> {
  if (server === undefined) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
