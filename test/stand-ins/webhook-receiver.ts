// A local webhook receiver: verifies Herald's signature, keeps a ledger of every request, and
// answers as the test scripts it (status, Retry-After, delay, or hanging until released).
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhookSignature } from '../../src/channels/webhook/webhook-signature.js';

export interface ReceivedWebhook {
  deliveryId: string;
  body: Record<string, unknown>;
  signatureValid: boolean;
  /** The body as received and the request's headers, for checks with other verifiers. */
  raw: string;
  headers: IncomingHttpHeaders;
  answeredStatus: number;
  at: number;
}

export type Answer = { status: number; headers?: Record<string, string>; delayMs?: number } | { hang: true };

export class WebhookReceiver {
  readonly ledger: ReceivedWebhook[] = [];
  private server: Server | undefined;
  private script: (request: ReceivedWebhook, index: number) => Answer = () => ({ status: 200 });
  private readonly hanging = new Set<() => void>();
  url = '';

  constructor(private readonly secret: () => string | undefined) {}

  answer(script: (request: ReceivedWebhook, index: number) => Answer): void {
    this.script = script;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      void readBody(req).then(async (raw) => {
        const secret = this.secret();
        const header = req.headers['herald-signature'];
        const entry: ReceivedWebhook = {
          deliveryId: String(req.headers['herald-delivery-id'] ?? ''),
          body: JSON.parse(raw) as Record<string, unknown>,
          signatureValid:
            secret !== undefined &&
            typeof header === 'string' &&
            verifyWebhookSignature(secret, raw, header, Math.floor(Date.now() / 1000)),
          raw,
          headers: req.headers,
          answeredStatus: 0,
          at: Date.now(),
        };
        const answer = this.script(entry, this.ledger.length);
        this.ledger.push(entry);
        if ('hang' in answer) {
          await new Promise<void>((resolve) => this.hanging.add(resolve));
          res.destroy();
          return;
        }
        if (answer.delayMs !== undefined) await new Promise((r) => setTimeout(r, answer.delayMs));
        entry.answeredStatus = answer.status;
        res.writeHead(answer.status, answer.headers);
        res.end();
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/hook`;
  }

  /** Deliveries answered with 2xx, by delivery id. */
  accepted(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of this.ledger)
      if (r.answeredStatus >= 200 && r.answeredStatus < 300)
        counts.set(r.deliveryId, (counts.get(r.deliveryId) ?? 0) + 1);
    return counts;
  }

  async stop(): Promise<void> {
    for (const release of this.hanging) release();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
