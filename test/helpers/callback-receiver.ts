// A loopback HTTP server that plays Herald's POST /v1/callbacks/<name> for provider tests:
// it hands each raw request to the named provider's handleCallback and keeps the results.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CallbackResult, ChannelProvider } from '../../src/channels/channel-provider.js';

/** Plays Herald's POST /v1/callbacks/<name>: hands the raw request to the named provider. */
export class CallbackReceiver {
  readonly providers = new Map<string, ChannelProvider>();
  readonly results: { name: string; result: CallbackResult }[] = [];
  private server: Server | undefined;
  base = '';

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const name = /^\/v1\/callbacks\/([\w-]+)$/.exec(req.url ?? '')?.[1] ?? '';
        const provider = this.providers.get(name);
        if (provider?.handleCallback === undefined) {
          res.writeHead(404).end();
          return;
        }
        void Promise.resolve(
          provider.handleCallback({
            url: `${this.base}${req.url ?? ''}`,
            headers: req.headers,
            rawBody: Buffer.concat(chunks),
          }),
        ).then((result) => {
          this.results.push({ name, result });
          res.writeHead(result.ok ? 200 : result.status).end(result.ok ? '' : result.reason);
        });
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  }

  last(): CallbackResult | undefined {
    return this.results.at(-1)?.result;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server === undefined ? resolve() : this.server.close(() => resolve()),
    );
  }
}
