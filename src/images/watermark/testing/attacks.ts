/**
 * Image attacks for the watermark tests and benchmark, applied with sharp (libvips) the way a
 * re-uploading site would: lossy re-encoding, resizing, cropping, brightness changes, noise.
 * Test/bench only: production code never imports this file.
 */
import sharp, { type Sharp } from 'sharp';
import type { RawImage } from '../../../domain/types.ts';
import { createRandom } from '../prng.ts';

export interface Attack {
  name: string;
  apply(image: RawImage): Promise<RawImage>;
}

function fromRaw(image: RawImage): Sharp {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
}

/** Decodes any encoded image to 8-bit sRGB RGB, as the detector CLI does. */
export async function decodeToRaw(input: Buffer | Sharp): Promise<RawImage> {
  const pipeline = Buffer.isBuffer(input) ? sharp(input) : input;
  const { data, info } = await pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`expected 3 channels, got ${info.channels}`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

export async function jpeg(image: RawImage, quality: number): Promise<RawImage> {
  return decodeToRaw(await fromRaw(image).jpeg({ quality }).toBuffer());
}

export async function webp(image: RawImage, quality: number): Promise<RawImage> {
  return decodeToRaw(await fromRaw(image).webp({ quality }).toBuffer());
}

/** Resize by `factor` with sharp's default kernel (Lanczos-3). */
export async function rescale(image: RawImage, factor: number): Promise<RawImage> {
  return decodeToRaw(fromRaw(image).resize(Math.round(image.width * factor), Math.round(image.height * factor)));
}

/** Keeps a centred window holding `areaFraction` of the pixels, aspect ratio unchanged. */
export async function centralCrop(image: RawImage, areaFraction: number): Promise<RawImage> {
  const side = Math.sqrt(areaFraction);
  const width = Math.round(image.width * side);
  const height = Math.round(image.height * side);
  return crop(image, Math.floor((image.width - width) / 2), Math.floor((image.height - height) / 2), width, height);
}

export async function crop(image: RawImage, left: number, top: number, width: number, height: number): Promise<RawImage> {
  return decodeToRaw(fromRaw(image).extract({ left, top, width, height }));
}

/** Multiplies every channel by `factor` (1.2 = +20 %), clipping at 255. */
export async function brightness(image: RawImage, factor: number): Promise<RawImage> {
  return decodeToRaw(fromRaw(image).linear(factor, 0));
}

/** Independent Gaussian noise of `sigma` levels on every channel (Box–Muller, seeded). */
export function gaussianNoise(image: RawImage, sigma: number, seed: number): RawImage {
  const random = createRandom(seed);
  const data = new Uint8Array(image.data.length);
  const clamped = new Uint8ClampedArray(data.buffer);
  for (let i = 0; i < data.length; i += 2) {
    const radius = sigma * Math.sqrt(-2 * Math.log(1 - random()));
    const angle = 2 * Math.PI * random();
    clamped[i] = image.data[i]! + radius * Math.cos(angle);
    if (i + 1 < data.length) clamped[i + 1] = image.data[i + 1]! + radius * Math.sin(angle);
  }
  return { width: image.width, height: image.height, data };
}

/** The benchmark's attack list (docs/watermark.md). */
export function standardAttacks(): Attack[] {
  return [
    { name: 'none', apply: async (image) => image },
    { name: 'jpeg q50', apply: (image) => jpeg(image, 50) },
    { name: 'webp q50', apply: (image) => webp(image, 50) },
    { name: 'downscale 0.5x', apply: (image) => rescale(image, 0.5) },
    { name: 'crop central 80% area', apply: (image) => centralCrop(image, 0.8) },
    { name: 'brightness +20%', apply: (image) => brightness(image, 1.2) },
    { name: 'brightness -20%', apply: (image) => brightness(image, 0.8) },
    { name: 'gaussian noise sigma 5', apply: async (image) => gaussianNoise(image, 5, image.width * 31 + image.data[0]!) },
    { name: 'downscale 0.5x + jpeg q75', apply: async (image) => jpeg(await rescale(image, 0.5), 75) },
  ];
}

/** PSNR in dB between two equally sized 8-bit images (∞ when identical). */
export function psnr(a: RawImage, b: RawImage): number {
  if (a.data.length !== b.data.length) throw new RangeError('psnr: size mismatch');
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = a.data[i]! - b.data[i]!;
    sum += d * d;
  }
  const mse = sum / a.data.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}
