/**
 * Turns bytes from a caller into a RawImage: sniffed by content (magic bytes), pixel count checked
 * before decoding (decompression bombs), EXIF orientation applied, alpha flattened on white, scaled
 * down to fit the engine's limit.
 */
import sharp, { type Metadata } from 'sharp';
import { ApiError } from '../domain/errors.ts';
import type { RawImage } from '../domain/types.ts';

export type SniffedFormat = 'png' | 'jpeg' | 'gif' | 'webp' | 'avif' | 'heif';

export function sniffImageFormat(buf: Uint8Array): SniffedFormat | null {
  const b = Buffer.from(buf.buffer, buf.byteOffset, Math.min(buf.byteLength, 32));
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 6 && (b.toString('latin1', 0, 6) === 'GIF87a' || b.toString('latin1', 0, 6) === 'GIF89a')) return 'gif';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  if (b.length >= 12 && b.toString('latin1', 4, 8) === 'ftyp') {
    const brand = b.toString('latin1', 8, 12);
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (['heic', 'heix', 'mif1', 'msf1'].includes(brand)) return 'heif';
  }
  return null;
}

export interface DecodeLimits {
  maxPixels: number;
  /** Longest side after decoding; larger images are scaled down (aspect kept). */
  maxSidePx: number;
}

export async function decodeImage(bytes: Buffer, limits: DecodeLimits, param: string): Promise<RawImage> {
  const format = sniffImageFormat(bytes);
  if (format === null) {
    throw new ApiError('invalid_image', `${param} is not an image: expected PNG, JPEG, WebP, GIF or AVIF content`, { param });
  }
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new ApiError('invalid_image', `${param} could not be decoded as ${format.toUpperCase()}: ${(err as Error).message}`, { param, cause: err });
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width * height > limits.maxPixels) {
    throw new ApiError(
      'image_too_large',
      `${param} is ${width}x${height} = ${width * height} pixels, more than the limit of ${limits.maxPixels}`,
      { param },
    );
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'error' })
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .resize({ width: limits.maxSidePx, height: limits.maxSidePx, fit: 'inside', withoutEnlargement: true })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (err) {
    throw new ApiError('invalid_image', `${param} could not be decoded as ${format.toUpperCase()}: ${(err as Error).message}`, { param, cause: err });
  }
}
