// A status callback subscriber for tests: a loopback receiver that keeps every request in order,
// answers what the test says, and checks signatures with the stock `standardwebhooks` package.
import type { Server } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { bodyServer, closeServer, listenOnLoopback } from './loopback-server.js';

export interface Received {
  id: string;
  raw: string;
  headers: Record<string, string>;
  body: { type: string; timestamp: string; data: Record<string, unknown> };
  status: number;
}

/** A subscriber: answers what `respond` says (200 unless), and keeps every request in order. */
export class Subscriber {
  readonly log: Received[] = [];
  respond: (r: Omit<Received, 'status'>) => number = () => 200;
  private server: Server | undefined;
  url = '';
  async start(): Promise<void> {
    this.server = bodyServer((req, res, body) => {
      const raw = body.toString('utf8');
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter((e): e is [string, string] => typeof e[1] === 'string'),
      );
      const seen = {
        id: headers['webhook-id'] ?? '',
        raw,
        headers,
        body: JSON.parse(raw) as Received['body'],
      };
      const status = this.respond(seen);
      this.log.push({ ...seen, status });
      res.writeHead(status).end();
    });
    this.url = `${await listenOnLoopback(this.server)}/hooks`;
  }
  of(notificationId: string, type?: string): Received[] {
    return this.log.filter(
      (r) =>
        r.body.data['notification_id'] === notificationId && (type === undefined || r.body.type === type),
    );
  }
  stop = () => closeServer(this.server);
}

/** Whether the stock Standard Webhooks verifier accepts the request with this secret. */
export function verifies(secret: string, r: Received): boolean {
  try {
    new Webhook(secret).verify(r.raw, r.headers);
    return true;
  } catch {
    return false;
  }
}
