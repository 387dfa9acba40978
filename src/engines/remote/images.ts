/**
 * Image bytes <-> RawImage for the remote engines. Backends speak PNG/JPEG/WebP; the rest of the
 * server speaks 8-bit RGB (src/domain/types.ts).
 */
import sharp from 'sharp';
import type { RawImage } from '../../domain/types.ts';
import { backendErrorFailure } from './errors.ts';

/** Decodes what a backend returned. Undecodable bytes are the backend's fault: 502, not retried. */
export async function decodeBackendImage(backendId: string, bytes: Uint8Array): Promise<RawImage> {
  try {
    const { data, info } = await sharp(bytes)
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) {
      throw new Error(`decoded to ${info.channels} channels`);
    }
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (err) {
    throw backendErrorFailure(backendId, `returned an image that cannot be decoded (${(err as Error).message})`, {
      retryable: false,
      cause: err,
    });
  }
}

/** Encodes a reference image for upload. PNG keeps the caller's pixels exactly. */
export async function encodePng(image: RawImage): Promise<Buffer> {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .png({ compressionLevel: 6 })
    .toBuffer();
}

/**
 * Smaller encoding for backends with a per-image byte limit (DashScope: 10 MB). Quality 92 is
 * visually lossless for reference images and keeps a 1440×1440 photo around 1 MB.
 */
export async function encodeJpeg(image: RawImage, quality = 92): Promise<Buffer> {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .jpeg({ quality, chromaSubsampling: '4:4:4' })
    .toBuffer();
}

/** The API promises exactly the requested size; a backend that ignores it is misconfigured. */
export function assertExactSize(backendId: string, image: RawImage, width: number, height: number): void {
  if (image.width !== width || image.height !== height) {
    throw backendErrorFailure(
      backendId,
      `returned ${image.width}x${image.height}, asked for ${width}x${height}`,
      { retryable: false },
    );
  }
}
