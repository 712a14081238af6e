// A TCP port free on loopback right now, for a server whose URL must be known before it starts
// (PUBLIC_URL, a spawned process's API_PORT).
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
    server.on('error', reject);
  });
}
