/**
 * The last step of the builtin engine's decode: the super-resolution output (rows·P·S × cols·P·S, 224×160 for
 * 1024×768) to exactly the requested size. The bundled model draws flat-coloured shapes, so the ideal output has
 * one-pixel edges; a plain resize by ~4.6× spreads each edge over several pixels. Measured by model/sharpness.py
 * through bench/sharpness.ts (numbers in docs/performance.md).
 */
import sharp, { type KernelEnum } from 'sharp';
import type { RawImage } from '../../domain/types.ts';

/**
 * `<kernel>`: a sharp resize with that kernel. `<kernel>+snap`: the resize, then `snapEdges`.
 * `lanczos3+unsharp`: the resize, then sharp's unsharp mask on lightness (measured, not the default: it rings).
 */
export const FINAL_RESIZE_METHODS = [
  'lanczos3', 'lanczos2', 'cubic', 'mitchell', 'linear', 'nearest',
  'lanczos3+unsharp', 'linear+snap', 'mitchell+snap', 'lanczos3+snap',
] as const;
export type FinalResizeMethod = (typeof FINAL_RESIZE_METHODS)[number];

/**
 * What the engine uses unless told otherwise (BuiltinEngineOptions.decode). Chosen with bench/sharpness.ts over
 * 12 held-out scenes at 1024×768 against lanczos3 (the earlier step): aligned sharpness 0.184 vs 0.145, PSNR 28.41 vs
 * 28.49 dB, halo 0.83 vs 1.00 levels, +~100 ms per image on 2 cores (docs/performance.md). The only candidate that was
 * sharper without losing 0.5 dB or adding halos. Note that sharp enlarges with the same bicubic interpolator for
 * cubic, mitchell, lanczos2 and lanczos3 (libvips maps reduction kernels to one upsampling interpolator), which is why
 * those four measure identically.
 */
export const DEFAULT_FINAL_RESIZE: FinalResizeMethod = 'linear+snap';

export interface SnapOptions {
  /** Half-width in output pixels of the window whose extremes a pixel may snap to; at least half an edge ramp. */
  radius: number;
  /** A channel snaps only where its window range is at least this (0..255): smooth sky gradients stay smooth. */
  threshold: number;
}

/**
 * Swept on model/sharpness.py's scenes at 1024×768 (radius 2/3/5 × threshold 24/64 after linear and lanczos3):
 * a window wider than r = 2 or a lower threshold sharpens more but snaps the SR net's small overshoots and the
 * lo-res staircases to full contrast (halo and PSNR worse than today).
 */
export const DEFAULT_SNAP: SnapOptions = { radius: 2, threshold: 64 };
/** Output/input scale below which `+snap` leaves the resize as it is. */
export const SNAP_MIN_SCALE = 1.5;

/**
 * Toggle mapping (a discrete shock filter, Kramer & Bruckner 1975): per channel, every pixel takes the window's
 * minimum or maximum, whichever is nearer. A ramp between two flat colours becomes a step at its midpoint, and since
 * every output value is an input value from its own window, nothing overshoots the local range (no new halos).
 * The window min/max are separable (rows, then columns), so the cost is 2·(2r+1) comparisons per channel value.
 */
export function snapEdges(img: RawImage, options: SnapOptions = DEFAULT_SNAP): RawImage {
  const { width: w, height: h, data } = img;
  const r = Math.max(1, Math.round(options.radius));
  const n = w * h * 3;
  const stride = w * 3;
  const rowMin = new Uint8Array(n);
  const rowMax = new Uint8Array(n);
  // Flat indices: one row is `stride` values, a step of 3 is the same channel one pixel on.
  for (let rowStart = 0; rowStart < n; rowStart += stride) {
    const rowEnd = rowStart + stride;
    for (let i = rowStart; i < rowEnd; i++) {
      const j0 = Math.max(rowStart + ((i - rowStart) % 3), i - 3 * r);
      const j1 = Math.min(rowEnd - 1, i + 3 * r);
      let lo = 255;
      let hi = 0;
      for (let j = j0; j <= j1; j += 3) {
        const v = data[j]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      rowMin[i] = lo;
      rowMax[i] = hi;
    }
  }
  const out = new Uint8Array(n);
  const threshold = options.threshold;
  for (let y = 0; y < h; y++) {
    const first = Math.max(0, y - r) * stride;
    const last = Math.min(h - 1, y + r) * stride;
    for (let x3 = 0, i = y * stride; x3 < stride; x3++, i++) {
      let lo = 255;
      let hi = 0;
      for (let j = first + x3; j <= last + x3; j += stride) {
        if (rowMin[j]! < lo) lo = rowMin[j]!;
        if (rowMax[j]! > hi) hi = rowMax[j]!;
      }
      const v = data[i]!;
      out[i] = hi - lo < threshold ? v : v - lo <= hi - v ? lo : hi;
    }
  }
  return { width: w, height: h, data: out };
}

export async function resizeFinal(img: RawImage, width: number, height: number, method: FinalResizeMethod = DEFAULT_FINAL_RESIZE): Promise<RawImage> {
  const [kernel, post] = method.split('+') as [keyof KernelEnum, 'snap' | 'unsharp' | undefined];
  let pipeline = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).resize(width, height, { fit: 'fill', kernel });
  // sigma in output pixels: about half the 224→1024 ramp
  if (post === 'unsharp') pipeline = pipeline.sharpen({ sigma: 2 });
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  const resized: RawImage = { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  if (post !== 'snap') return resized;
  // Near 1× the SR output's own edges are already crisp and snapping would only remove their anti-aliasing.
  const scale = Math.max(width / img.width, height / img.height);
  return scale < SNAP_MIN_SCALE ? resized : snapEdges(resized);
}
