// A stand-in for Slack incoming webhooks: POST /services/<team>/<bot>/<secret> with JSON
// {text} (or blocks). It checks what Slack checks (method, JSON body, non-empty text), answers
// 200 "ok", and can be told to answer any documented error for a webhook path.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackAnswer {
  status: number;
  text: string;
  headers?: Record<string, string>;
}

export class SlackWebhookStandIn {
  /** Accepted messages, per webhook path. */
  readonly accepted: {
    path: string;
    text: string;
    at: number;
    traceparent: string | string[] | undefined;
  }[] = [];
  readonly answered: { path: string; status: number; at: number }[] = [];
  private readonly scripted = new Map<string, SlackAnswer[]>();
  private server: Server | undefined;
  base = '';

  /** Answers the next requests to `path` with these, in order (then 200 "ok"). */
  script(path: string, answers: SlackAnswer[]): void {
    this.scripted.set(path, [...answers]);
  }

  url(path: string): string {
    return `${this.base}${path}`;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '';
        const reply = (answer: SlackAnswer) => {
          this.answered.push({ path, status: answer.status, at: Date.now() });
          res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers }).end(answer.text);
        };
        if (req.method !== 'POST' || !/^\/services\/T\w+\/B\w+\/\w+$/.test(path)) {
          reply({ status: 404, text: 'no_service' });
          return;
        }
        const next = this.scripted.get(path)?.shift();
        if (next !== undefined) {
          reply(next);
          return;
        }
        let body: { text?: unknown; blocks?: unknown };
        try {
          body =
            req.headers['content-type']?.startsWith('application/json') === true
              ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body)
              : {};
        } catch {
          body = {};
        }
        if ((typeof body.text !== 'string' || body.text === '') && !Array.isArray(body.blocks)) {
          reply({ status: 400, text: 'invalid_payload' });
          return;
        }
        this.accepted.push({
          path,
          text: typeof body.text === 'string' ? body.text : '',
          at: Date.now(),
          traceparent: req.headers.traceparent,
        });
        reply({ status: 200, text: 'ok' });
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server === undefined ? resolve() : this.server.close(() => resolve()),
    );
  }
}
