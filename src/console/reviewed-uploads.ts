// Uploaded template sheets between their dry run and Apply: kept in this console process, keyed
// by the person, the service and the SHA-256 of the file. Apply names the
// hash, so what is applied is exactly the file that was reviewed, never a report or file the
// browser sends back. Bounded in count, bytes and age; an upload that fell out must be sent again.
import { createHash } from 'node:crypto';
import type { SheetFormat } from '../templates/template-sheet.js';

export interface ReviewedUpload {
  bytes: Buffer;
  format: SheetFormat;
  serviceId: number;
  userId: number;
  /** The dry run warned of text that looks mis-decoded: applying needs "accept warnings". */
  warned: boolean;
  keptAt: number;
}

const slot = (userId: number, serviceId: number, hash: string) =>
  `${String(userId)}:${String(serviceId)}:${hash}`;

export class ReviewedUploads {
  private readonly uploads = new Map<string, ReviewedUpload>();

  constructor(
    private readonly now: () => number,
    private readonly limits = { maxFiles: 20, maxBytes: 64 * 1024 * 1024, maxAgeMs: 30 * 60_000 },
  ) {}

  static hashOf(bytes: Buffer): string {
    return createHash('sha256').update(bytes).digest('hex');
  }

  /** Keeps an upload; returns its hash. The oldest go first when over the limits. */
  keep(upload: Omit<ReviewedUpload, 'keptAt'>): string {
    const hash = ReviewedUploads.hashOf(upload.bytes);
    const key = slot(upload.userId, upload.serviceId, hash);
    this.uploads.delete(key);
    this.uploads.set(key, { ...upload, keptAt: this.now() });
    this.prune();
    return hash;
  }

  /** The upload with this hash, if this person kept it for this service and it is not too old. */
  find(hash: string, userId: number, serviceId: number): ReviewedUpload | undefined {
    this.prune();
    return this.uploads.get(slot(userId, serviceId, hash));
  }

  forget(hash: string, userId: number, serviceId: number): void {
    this.uploads.delete(slot(userId, serviceId, hash));
  }

  private prune(): void {
    const oldest = this.now() - this.limits.maxAgeMs;
    let bytes = 0;
    for (const upload of this.uploads.values()) bytes += upload.bytes.length;
    for (const [key, upload] of this.uploads) {
      const over = this.uploads.size > this.limits.maxFiles || bytes > this.limits.maxBytes;
      if (!over && upload.keptAt >= oldest) continue;
      this.uploads.delete(key);
      bytes -= upload.bytes.length;
    }
  }
}
