/**
 * ComfyUI's live previews. With previews enabled (`--preview-method`), a sampler reports each step
 * as a `progress` text event followed by one binary websocket frame (main.py `hijack_progress`,
 * server.py `send_image` / `encode_bytes`):
 *
 *   bytes 0..3  event type, uint32 big-endian: 1 = PREVIEW_IMAGE (server.py `BinaryEventTypes`)
 *   bytes 4..7  image format, uint32 big-endian: 1 = JPEG, 2 = PNG
 *   bytes 8..   the encoded image, at most `--preview-size` (default 512) px a side
 *
 * The frame names no prompt: it belongs to whichever prompt is executing. Recent servers send event
 * 4 (PREVIEW_IMAGE_WITH_METADATA, which names the prompt) only to a client that announced
 * `supports_preview_metadata` in a `feature_flags` message; this client announces nothing, so it
 * gets event 1 from old and new servers alike.
 */
import sharp from 'sharp';
import type { RawImage } from '../../domain/types.ts';
import { decodeBackendImage } from '../remote/images.ts';

export const PREVIEW_IMAGE_EVENT = 1;

/**
 * Encoded previews above this are skipped unread. A 512x512 preview of pure noise, the worst case,
 * measured 266 KB as JPEG quality 95 and 830 KB as PNG level 1 (what send_image writes).
 */
export const MAX_PREVIEW_BYTES = 1024 * 1024;

/**
 * Decoded size limit, checked from the header before decoding, since a small PNG can inflate to
 * gigabytes: 16 times the area of a preview at the default --preview-size of 512.
 */
export const MAX_PREVIEW_PIXELS = 2048 * 2048;

export interface PreviewFrame {
  format: 'jpeg' | 'png';
  /** The encoded image, a view into the frame. */
  image: Buffer;
}

/** A PREVIEW_IMAGE frame's parts, or undefined for any other binary event or a malformed frame. */
export function parsePreviewFrame(frame: Buffer): PreviewFrame | undefined {
  if (frame.length < 8 || frame.readUInt32BE(0) !== PREVIEW_IMAGE_EVENT) return undefined;
  const code = frame.readUInt32BE(4);
  const format = code === 1 ? 'jpeg' : code === 2 ? 'png' : undefined;
  if (format === undefined) return undefined;
  return { format, image: frame.subarray(8) };
}

/** Decodes a preview through the remote engines' decode path, after the header size check. */
export async function decodePreview(backendId: string, frame: PreviewFrame): Promise<RawImage> {
  const { width = 0, height = 0 } = await sharp(frame.image).metadata();
  if (width * height > MAX_PREVIEW_PIXELS) {
    throw new Error(`preview of ${width}x${height} px is over the ${MAX_PREVIEW_PIXELS} px limit`);
  }
  return decodeBackendImage(backendId, frame.image);
}
