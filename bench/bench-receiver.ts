// The benchmarks' webhook receiver: a ledger of delivery ids (count per id, so duplicates
// show) and arrival times per notification, answering after a fixed delay. Lighter than the
// test stand-in: no body kept, no signature check.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export class BenchReceiver {
  readonly deliveries = new Map<string, number>();
  readonly arrivals = new Map<string, number>();
  /** When each request was answered, in order (for per-second counts). */
  readonly times: number[] = [];
  private server: Server | undefined;
  url = '';

  constructor(private readonly delayMs: number) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const id = String(req.headers['herald-delivery-id'] ?? '');
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { notification_id?: string };
        const answer = () => {
          this.deliveries.set(id, (this.deliveries.get(id) ?? 0) + 1);
          this.times.push(Date.now());
          if (body.notification_id !== undefined && !this.arrivals.has(body.notification_id))
            this.arrivals.set(body.notification_id, Date.now());
          res.writeHead(200).end();
        };
        if (this.delayMs > 0) setTimeout(answer, this.delayMs);
        else answer();
      });
    });
    server.keepAliveTimeout = 60_000;
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/hook`;
  }

  duplicates(): number {
    let extra = 0;
    for (const n of this.deliveries.values()) extra += n - 1;
    return extra;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server === undefined ? resolve() : this.server.close(() => resolve()),
    );
  }
}
