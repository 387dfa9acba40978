/**
 * Procedural, photo-like test images for the watermark tests and benchmark: smooth skies, fractal
 * (fBm) textures, soft-edged shapes, high-frequency gratings, fine grain, landscapes, low- and
 * high-key scenes. Deterministic per (kind, seed); no files needed.
 */
import type { RawImage } from '../../domain/types.ts';
import { createRandom } from './prng.ts';

export const SYNTHETIC_KINDS = ['sky', 'fbm', 'shapes', 'grating', 'grain', 'landscape', 'low-key', 'high-key'] as const;
export type SyntheticKind = (typeof SYNTHETIC_KINDS)[number];

type Rgb = [number, number, number];

/** Smoothly interpolated lattice noise in [0, 1) with `cellPx` pixels between lattice points. */
function valueNoise(width: number, height: number, cellPx: number, random: () => number): Float32Array {
  const cols = Math.ceil(width / cellPx) + 2;
  const rows = Math.ceil(height / cellPx) + 2;
  const lattice = new Float32Array(cols * rows);
  for (let i = 0; i < lattice.length; i++) lattice[i] = random();
  const out = new Float32Array(width * height);
  const sx = new Int32Array(width);
  const fx = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const u = x / cellPx;
    sx[x] = Math.floor(u);
    const t = u - sx[x]!;
    fx[x] = t * t * (3 - 2 * t);
  }
  for (let y = 0; y < height; y++) {
    const v = y / cellPx;
    const gy = Math.floor(v);
    const ty = v - gy;
    const wy = ty * ty * (3 - 2 * ty);
    const r0 = gy * cols;
    const r1 = r0 + cols;
    for (let x = 0; x < width; x++) {
      const g = sx[x]!;
      const top = lattice[r0 + g]! + fx[x]! * (lattice[r0 + g + 1]! - lattice[r0 + g]!);
      const bottom = lattice[r1 + g]! + fx[x]! * (lattice[r1 + g + 1]! - lattice[r1 + g]!);
      out[y * width + x] = top + wy * (bottom - top);
    }
  }
  return out;
}

/** Fractal sum of `octaves` noise layers from `basePx` down, each half the size and `gain` the weight. */
function fbm(width: number, height: number, basePx: number, octaves: number, gain: number, random: () => number): Float32Array {
  const out = new Float32Array(width * height);
  let weight = 1;
  let total = 0;
  for (let o = 0, cell = basePx; o < octaves && cell >= 1; o++, cell /= 2) {
    const layer = valueNoise(width, height, cell, random);
    for (let i = 0; i < out.length; i++) out[i]! += weight * layer[i]!;
    total += weight;
    weight *= gain;
  }
  for (let i = 0; i < out.length; i++) out[i]! /= total;
  return out;
}

function randomColour(random: () => number, lo = 0, hi = 255): Rgb {
  return [lo + random() * (hi - lo), lo + random() * (hi - lo), lo + random() * (hi - lo)];
}

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

function toImage(width: number, height: number, rgb: Float32Array): RawImage {
  const data = new Uint8Array(width * height * 3);
  const clamped = new Uint8ClampedArray(data.buffer);
  for (let i = 0; i < rgb.length; i++) clamped[i] = rgb[i]!;
  return { width, height, data };
}

/** Writes a colour ramp of `field` (0..1) between colours a, b, c into `rgb`. */
function paint(rgb: Float32Array, field: Float32Array, a: Rgb, b: Rgb, c: Rgb, contrast: number): void {
  for (let i = 0; i < field.length; i++) {
    const t = Math.min(1, Math.max(0, 0.5 + (field[i]! - 0.5) * contrast));
    const col = t < 0.5 ? mix(a, b, t * 2) : mix(b, c, t * 2 - 1);
    rgb[i * 3] = col[0];
    rgb[i * 3 + 1] = col[1];
    rgb[i * 3 + 2] = col[2];
  }
}

function addGrain(rgb: Float32Array, sigma: number, random: () => number): void {
  for (let i = 0; i < rgb.length; i += 3) {
    const n = (random() + random() + random() - 1.5) * 2 * sigma;
    rgb[i]! += n;
    rgb[i + 1]! += n;
    rgb[i + 2]! += n;
  }
}

function drawSky(width: number, height: number, random: () => number, rgb: Float32Array, rows = height): void {
  const top = randomColour(random, 20, 120);
  top[2] = 150 + random() * 100;
  const horizon = mix(top, [235, 225, 215], 0.5 + random() * 0.4);
  const clouds = fbm(width, rows, 256, 5, 0.5, random);
  const cloudAmount = random() * 0.6;
  for (let y = 0; y < rows; y++) {
    const base = mix(top, horizon, y / rows);
    for (let x = 0; x < width; x++) {
      const c = Math.max(0, clouds[y * width + x]! - 0.5) * 2 * cloudAmount;
      const col = mix(base, [250, 250, 250], Math.min(1, c));
      const i = (y * width + x) * 3;
      rgb[i] = col[0];
      rgb[i + 1] = col[1];
      rgb[i + 2] = col[2];
    }
  }
}

function drawShapes(width: number, height: number, random: () => number, rgb: Float32Array): void {
  paint(rgb, fbm(width, height, 512, 3, 0.5, random), randomColour(random), randomColour(random), randomColour(random), 1.5);
  const count = 10 + Math.floor(random() * 40);
  for (let s = 0; s < count; s++) {
    const colour = randomColour(random);
    const cx = random() * width;
    const cy = random() * height;
    const radius = 10 + random() * 200;
    const isCircle = random() < 0.5;
    const soft = 0.5 + random() * 4;
    const x0 = Math.max(0, Math.floor(cx - radius - soft * 2));
    const x1 = Math.min(width, Math.ceil(cx + radius + soft * 2));
    const y0 = Math.max(0, Math.floor(cy - radius - soft * 2));
    const y1 = Math.min(height, Math.ceil(cy + radius + soft * 2));
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const d = isCircle ? Math.hypot(x - cx, y - cy) - radius : Math.max(Math.abs(x - cx), Math.abs(y - cy)) - radius;
        const alpha = Math.min(1, Math.max(0, 0.5 - d / soft));
        if (alpha <= 0) continue;
        const i = (y * width + x) * 3;
        for (let c = 0; c < 3; c++) rgb[i + c] = rgb[i + c]! + (colour[c]! - rgb[i + c]!) * alpha;
      }
    }
  }
}

function drawGrating(width: number, height: number, random: () => number, rgb: Float32Array): void {
  const a = randomColour(random);
  const b = randomColour(random);
  const periodPx = 2 + random() * 30;
  const angle = random() * Math.PI;
  const kx = (Math.cos(angle) * 2 * Math.PI) / periodPx;
  const ky = (Math.sin(angle) * 2 * Math.PI) / periodPx;
  const checker = random() < 0.3;
  const square = random() < 0.5;
  const envelope = fbm(width, height, 256, 2, 0.5, random);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = Math.sin(kx * x + ky * y);
      if (checker) v *= Math.sin(ky * x - kx * y);
      if (square) v = v > 0 ? 1 : -1;
      const t = 0.5 + 0.5 * v * (0.3 + 0.7 * envelope[y * width + x]!);
      const col = mix(a, b, t);
      const i = (y * width + x) * 3;
      rgb[i] = col[0];
      rgb[i + 1] = col[1];
      rgb[i + 2] = col[2];
    }
  }
}

export function syntheticImage(kind: SyntheticKind, seed: number, width = 1024, height = 768): RawImage {
  const random = createRandom(seed * 7919 + SYNTHETIC_KINDS.indexOf(kind) * 104729 + 1);
  const rgb = new Float32Array(width * height * 3);
  switch (kind) {
    case 'sky':
      drawSky(width, height, random, rgb);
      addGrain(rgb, 0.5, random);
      break;
    case 'fbm':
      paint(rgb, fbm(width, height, 128 + random() * 256, 8, 0.45 + random() * 0.2, random), randomColour(random), randomColour(random), randomColour(random), 2.5);
      break;
    case 'shapes':
      drawShapes(width, height, random, rgb);
      addGrain(rgb, 1 + random() * 2, random);
      break;
    case 'grating':
      drawGrating(width, height, random, rgb);
      break;
    case 'grain':
      paint(rgb, fbm(width, height, 8 + random() * 24, 5, 0.8, random), randomColour(random), randomColour(random), randomColour(random), 3);
      addGrain(rgb, 4 + random() * 8, random);
      break;
    case 'landscape': {
      const horizon = Math.floor(height * (0.3 + random() * 0.4));
      drawSky(width, height, random, rgb, horizon);
      const ground = fbm(width, height, 64, 7, 0.6, random);
      const a = randomColour(random, 10, 120);
      const b = randomColour(random, 40, 180);
      const c = randomColour(random, 80, 230);
      for (let y = horizon; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const t = Math.min(1, Math.max(0, 0.5 + (ground[y * width + x]! - 0.5) * 3));
          const col = t < 0.5 ? mix(a, b, t * 2) : mix(b, c, t * 2 - 1);
          const i = (y * width + x) * 3;
          rgb[i] = col[0];
          rgb[i + 1] = col[1];
          rgb[i + 2] = col[2];
        }
      }
      addGrain(rgb, 1.5, random);
      break;
    }
    case 'low-key':
      paint(rgb, fbm(width, height, 200, 7, 0.55, random), [0, 0, 0], randomColour(random, 5, 40), randomColour(random, 40, 110), 2);
      addGrain(rgb, 1, random);
      break;
    case 'high-key':
      paint(rgb, fbm(width, height, 200, 7, 0.55, random), randomColour(random, 150, 220), randomColour(random, 210, 245), [255, 255, 255], 2);
      addGrain(rgb, 1, random);
      break;
  }
  return toImage(width, height, rgb);
}

/** `count` images cycling through every kind, seeds 0.. so the set is the same on every run. */
export function syntheticSet(count: number, width = 1024, height = 768): Array<{ kind: SyntheticKind; seed: number; image: RawImage }> {
  const out: Array<{ kind: SyntheticKind; seed: number; image: RawImage }> = [];
  for (let i = 0; i < count; i++) {
    const kind = SYNTHETIC_KINDS[i % SYNTHETIC_KINDS.length]!;
    const seed = Math.floor(i / SYNTHETIC_KINDS.length);
    out.push({ kind, seed, image: syntheticImage(kind, seed, width, height) });
  }
  return out;
}
