// A destination for a test's logger that keeps each JSON log line as an object.
import { Writable } from 'node:stream';

export function logLines(): { sink: Writable; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { sink, lines };
}
