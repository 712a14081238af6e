// Random bytes for ids (trace and span ids, notification ids), drawn from node:crypto 4 KiB at a
// time as its randomUUID does: a randomBytes call per id cost more than the rest of making it
// (one per accepted request, one per provider call).
import { randomBytes } from 'node:crypto';

let pool = Buffer.alloc(0);
let offset = 0;

/**
 * `size` fresh random bytes. The answer is a view of a shared buffer that is
 * never handed out again: read it now or copy it, do not write into it.
 */
export function pooledRandomBytes(size: number): Buffer {
  if (offset + size > pool.length) {
    pool = randomBytes(Math.max(4096, size));
    offset = 0;
  }
  const bytes = pool.subarray(offset, offset + size);
  offset += size;
  return bytes;
}
