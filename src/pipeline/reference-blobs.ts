/**
 * Reference images travel from submit to the runner as blobs, already fetched, decoded and scaled,
 * so the runner (possibly another process later) never fetches a URL. The format is the decoded
 * pixels with a 12-byte header ("RGB8", width, height as uint32 BE): writing and reading cost a copy,
 * where a PNG round trip would cost an encode per reference at submit.
 */
import type { RawImage } from '../domain/types.ts';

const MAGIC = 'RGB8';

/** Flat names (no folder per job), so deleting a job's references leaves no empty directories behind. */
export function referenceKey(jobId: string, index: number): string {
  return `inputs/${jobId}-${index}.rgb`;
}

/** The job a stored reference belongs to; null for a name this module did not make. */
export function jobIdOfReference(key: string): string | null {
  return /^inputs\/(job_[0-9a-f-]{36})-\d+\.rgb$/.exec(key)?.[1] ?? null;
}

export function encodeReference(image: RawImage): Buffer {
  const out = Buffer.allocUnsafe(12 + image.data.length);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32BE(image.width, 4);
  out.writeUInt32BE(image.height, 8);
  out.set(image.data, 12);
  return out;
}

export function decodeReference(blob: Buffer): RawImage {
  if (blob.length < 12 || blob.toString('latin1', 0, 4) !== MAGIC) throw new Error('stored reference image is not in RGB8 format');
  const width = blob.readUInt32BE(4);
  const height = blob.readUInt32BE(8);
  if (blob.length !== 12 + width * height * 3) throw new Error(`stored reference image is truncated (${width}x${height})`);
  return { width, height, data: blob.subarray(12) };
}
