// The fault suite's webhook receiver: a ledger of every delivery it accepted (count and time
// interval per delivery id, so duplicates and overlapping sends show), answering as the
// current mode says: ok, 5xx, 429 with Retry-After, hang past the timeout, or reset.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ReceiverMode = 'ok' | 'error_503' | 'rate_limited' | 'hang' | 'reset' | 'mixed_faults';

export interface LedgerEntry {
  deliveryId: string;
  notificationId: string;
  userId: string;
  start: number;
  end: number;
}

export class FaultReceiver {
  readonly accepted: LedgerEntry[] = [];
  /** Requests per answer kind, for the report. */
  readonly answers = new Map<string, number>();
  private readonly open = new Map<string, number>();
  /** Requests for a delivery id that arrived while another for the same id was open. */
  concurrentDuplicates = 0;
  mode: ReceiverMode = 'ok';
  private server: Server | undefined;
  private faultIndex = 0;
  url = '';

  constructor(private readonly delayMs: number) {}

  async start(port = 0): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const deliveryId = String(req.headers['herald-delivery-id'] ?? '');
        const start = Date.now();
        const openNow = this.open.get(deliveryId) ?? 0;
        if (openNow > 0) this.concurrentDuplicates += 1;
        this.open.set(deliveryId, openNow + 1);
        const close = () => this.open.set(deliveryId, (this.open.get(deliveryId) ?? 1) - 1);
        const count = (kind: string) => this.answers.set(kind, (this.answers.get(kind) ?? 0) + 1);
        let mode = this.mode;
        if (mode === 'mixed_faults') {
          const kinds: ReceiverMode[] = ['error_503', 'rate_limited', 'ok', 'hang', 'reset'];
          mode = kinds[this.faultIndex++ % kinds.length] ?? 'error_503';
        }
        switch (mode) {
          case 'ok':
            setTimeout(() => {
              const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
                notification_id: string;
                user_id: string;
              };
              this.accepted.push({
                deliveryId,
                notificationId: body.notification_id,
                userId: body.user_id,
                start,
                end: Date.now(),
              });
              close();
              count('200');
              res.writeHead(200).end();
            }, this.delayMs);
            return;
          case 'error_503':
            close();
            count('503');
            res.writeHead(503).end();
            return;
          case 'rate_limited':
            close();
            count('429');
            res.writeHead(429, { 'retry-after': '1' }).end();
            return;
          case 'hang':
            // Never answers; Herald's timeout ends the attempt. The socket is closed later.
            count('hang');
            setTimeout(() => {
              close();
              res.destroy();
            }, 5000);
            return;
          case 'reset':
            close();
            count('reset');
            req.socket.destroy();
            return;
          case 'mixed_faults':
            return;
        }
      });
    });
    server.keepAliveTimeout = 60_000;
    this.server = server;
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/hook`;
  }

  /** Accepted deliveries per id. */
  counts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const e of this.accepted) counts.set(e.deliveryId, (counts.get(e.deliveryId) ?? 0) + 1);
    return counts;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server === undefined ? resolve() : this.server.close(() => resolve()),
    );
  }
}
