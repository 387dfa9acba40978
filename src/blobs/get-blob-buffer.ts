/** A whole blob in memory, for callers that need bytes (the runner decoding stored reference images). */
import { buffer } from 'node:stream/consumers';
import type { BlobStore } from '../domain/ports.ts';

/** The blob's bytes; null when it is missing. */
export async function getBlobBuffer(blobs: BlobStore, key: string): Promise<Buffer | null> {
  const blob = await blobs.get(key);
  if (!blob) return null;
  return buffer(blob.stream);
}
