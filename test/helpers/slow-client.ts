// A client that sends an HTTP/1.1 request over a raw socket as slowly as an attacker would: the
// head at once (or not), then the rest one byte at a time. It reports what the server answered
// and when the server closed the connection, measured from the first byte sent.
import { connect } from 'node:net';

export interface SlowExchange {
  /** Everything the server sent. */
  text: string;
  /** The answer's status, or undefined if the server sent nothing. */
  status: number | undefined;
  /** Response headers, lower-cased names. */
  headers: Record<string, string>;
  body: string;
  /** Milliseconds from the first byte sent to the connection's close. */
  closedAfterMs: number;
  /** Bytes of `trickled` that were written before the close. */
  trickledBytes: number;
}

export interface SlowRequest {
  /** Written at once when the connection opens. */
  head: string;
  /** Then written one byte per `everyMs`, until it is all sent or the server closes. */
  trickled: string;
  everyMs: number;
  /** The test fails if the server has not closed the connection by then. */
  giveUpAfterMs: number;
}

export function slowRequest(base: string, request: SlowRequest): Promise<SlowExchange> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    let started = 0;
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${String(request.giveUpAfterMs)} ms`));
    }, request.giveUpAfterMs);
    socket.on('connect', () => {
      started = performance.now();
      socket.write(request.head);
      timer = setInterval(() => {
        if (sent >= request.trickled.length || socket.destroyed) return;
        socket.write(request.trickled.slice(sent, sent + 1));
        sent += 1;
      }, request.everyMs);
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // Writing after the server closed gives EPIPE or ECONNRESET; the close follows.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      const closedAfterMs = performance.now() - started;
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({
        ...parseResponse(Buffer.concat(chunks).toString('utf8')),
        closedAfterMs,
        trickledBytes: sent,
      });
    });
  });
}

function parseResponse(text: string): Pick<SlowExchange, 'text' | 'status' | 'headers' | 'body'> {
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const status = /^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1];
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return {
    text,
    status: status === undefined ? undefined : Number(status),
    headers,
    body: end < 0 ? '' : text.slice(end + 4),
  };
}
