// A stand-in SMTP server (smtp-server) on loopback: optional AUTH PLAIN/LOGIN (535 on a bad
// password), a size limit (552), scripted replies per recipient for RCPT TO and DATA (any code,
// enhanced code and text; 421 closes the connection as RFC 5321 §3.8 has it), a hang mode, queue
// ids in the 250 reply after DATA, and every accepted message parsed with mailparser.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';

/** A reply to send instead of the normal one; 'hang' never replies. */
export type SmtpScripted = { code: number; enhanced?: string; text?: string } | 'hang';

export interface ReceivedMail {
  queueId: string;
  envelope: { from: string; to: string[] };
  raw: Buffer;
  parsed: ParsedMail;
  /** Which connection (1, 2, …) carried it. */
  connection: number;
}

export interface SmtpStandInOptions {
  /** When set, AUTH (PLAIN or LOGIN) with these credentials is required before MAIL FROM. */
  user?: string;
  password?: string;
  /** Largest accepted message in bytes (advertised with SIZE; larger → 552 5.3.4). */
  size?: number;
  /** False: count accepted messages by X-Herald-Delivery instead of parsing and keeping them (benchmarks). */
  keepMessages?: boolean;
}

function replyError(answer: { code: number; enhanced?: string; text?: string }): Error {
  const text = [answer.enhanced, answer.text ?? 'Scripted reply'].filter((p) => p !== undefined).join(' ');
  return Object.assign(new Error(text), { responseCode: answer.code });
}

export class SmtpStandIn {
  readonly messages: ReceivedMail[] = [];
  /** With keepMessages false: accepted messages per X-Herald-Delivery header. */
  readonly deliveries = new Map<string, number>();
  /** Connections accepted so far (greeted or hung). */
  connections = 0;
  /** Successful AUTH commands so far. */
  logins = 0;
  /** While true, new connections get no greeting at all. */
  hangGreeting = false;
  private readonly rcptScripts = new Map<string, SmtpScripted[]>();
  private readonly dataScripts = new Map<string, SmtpScripted[]>();
  private readonly connectionOf = new WeakMap<SMTPServerSession, number>();
  private server: SMTPServer | undefined;
  port = 0;

  constructor(private readonly options: SmtpStandInOptions = {}) {}

  /** Answers the next RCPT TO commands for `address` with these, in order (then 250). */
  scriptRcpt(address: string, answers: SmtpScripted[]): void {
    this.rcptScripts.set(address.toLowerCase(), [...answers]);
  }

  /** Answers the next DATA for a message to `address` with these, in order (then 250 queued). */
  scriptData(address: string, answers: SmtpScripted[]): void {
    this.dataScripts.set(address.toLowerCase(), [...answers]);
  }

  messagesTo(address: string): ReceivedMail[] {
    return this.messages.filter((m) => m.envelope.to.includes(address));
  }

  async start(): Promise<void> {
    const { user, password, size } = this.options;
    const requireAuth = user !== undefined;
    const server = new SMTPServer({
      // The stand-in speaks plain SMTP on loopback; TLS is the client library's business.
      disabledCommands: requireAuth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: !requireAuth,
      allowInsecureAuth: true,
      // Scripts give their own enhanced codes; the server must not add its defaults.
      hideENHANCEDSTATUSCODES: true,
      ...(size === undefined ? {} : { size }),
      closeTimeout: 200,
      logger: false,
      onConnect: (session, callback) => {
        this.connections += 1;
        this.connectionOf.set(session, this.connections);
        if (!this.hangGreeting) callback();
      },
      onAuth: (auth, _session, callback) => {
        if (auth.username === user && auth.password === password) {
          this.logins += 1;
          callback(null, { user: auth.username });
          return;
        }
        callback(replyError({ code: 535, enhanced: '5.7.8', text: 'Authentication credentials invalid' }));
      },
      onRcptTo: (address, _session, callback) => {
        const next = this.rcptScripts.get(address.address.toLowerCase())?.shift();
        if (next === 'hang') return;
        callback(next === undefined || next.code < 400 ? null : replyError(next));
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const to = session.envelope.rcptTo.map((r) => r.address);
          const scripted = to.map((a) => this.dataScripts.get(a.toLowerCase())?.shift()).find((s) => s);
          if (scripted === 'hang') return;
          if (scripted !== undefined && scripted.code >= 400) {
            callback(replyError(scripted));
            return;
          }
          if (stream.sizeExceeded) {
            callback(replyError({ code: 552, enhanced: '5.3.4', text: 'Message size exceeds fixed limit' }));
            return;
          }
          const raw = Buffer.concat(chunks);
          const queueId = randomBytes(5).toString('hex').toUpperCase();
          const mailFrom = session.envelope.mailFrom;
          if (this.options.keepMessages === false) {
            const id = /^X-Herald-Delivery: *(\S+)/im.exec(raw.toString('latin1'))?.[1] ?? '';
            this.deliveries.set(id, (this.deliveries.get(id) ?? 0) + 1);
            callback(null, `2.0.0 Ok: queued as ${queueId}`);
            return;
          }
          void simpleParser(raw).then(
            (parsed) => {
              this.messages.push({
                queueId,
                envelope: { from: mailFrom === false ? '' : mailFrom.address, to },
                raw,
                parsed,
                connection: this.connectionOf.get(session) ?? 0,
              });
              callback(null, `2.0.0 Ok: queued as ${queueId}`);
            },
            (error: unknown) => {
              callback(replyError({ code: 451, enhanced: '4.3.0', text: `Cannot parse: ${String(error)}` }));
            },
          );
        });
      },
    });
    server.on('error', () => {
      // Client sockets torn down mid-command (hang tests, aborts) are expected here.
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.port = (server.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
