// A Server-Sent Events reader for tests: parses the stream of a fetch response into events as
// the WHATWG spec does (id, event, data fields; comments ignored) and lets a test wait for them.
import { waitFor } from './wait-for.js';

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: any;
}

export interface SseClient {
  status: number;
  events: SseEvent[];
  /** Waits until `count` events (other than those filtered out) have arrived. */
  waitForEvents(count: number, filter?: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent[]>;
  /** Whether the server has ended the stream. */
  ended(): boolean;
  close(): void;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  const events: SseEvent[] = [];
  let ended = false;
  if (response.ok && response.body !== null) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    void (async () => {
      let buffer = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) {
            ended = true;
            return;
          }
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event: { id?: string; event: string; data: string[] } = { event: 'message', data: [] };
            for (const line of block.split('\n')) {
              if (line.startsWith(':') || line === '') continue;
              const colon = line.indexOf(':');
              const field = colon < 0 ? line : line.slice(0, colon);
              const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
              if (field === 'id') event.id = value;
              else if (field === 'event') event.event = value;
              else if (field === 'data') event.data.push(value);
            }
            if (event.data.length === 0) continue;
            const text = event.data.join('\n');
            events.push({ id: event.id, event: event.event, data: JSON.parse(text) });
          }
        }
      } catch {
        // aborted by close(), or the connection was cut
        ended = true;
      }
    })();
  }
  return {
    status: response.status,
    events,
    async waitForEvents(count, filter = () => true, timeoutMs = 10_000) {
      await waitFor(`${String(count)} SSE events`, () => events.filter(filter).length >= count, timeoutMs);
      return events.filter(filter);
    },
    ended: () => ended,
    close: () => controller.abort(),
  };
}
