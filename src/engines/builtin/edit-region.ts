/**
 * Edits keep the rest (model/CONTRACT.md, "Edits"). With a reference image, the first steps of the sampler measure
 * where the instruction pulls the picture away from the source: the guidance term σ·|v_p − v_∅| on the clean
 * image, averaged over the colour channels. That map becomes a soft mask; outside it, every later step puts the
 * latent back on the source's own noising path (1 − σ)·src + σ·ε, so the drawing there ends as the source, and the
 * decoded image is blended with the source image itself at the output size.
 *
 * Must match model/sampler.py (`edit_region`, `grow_mask` and the loop in `Pipeline.generate`) to float32 rounding.
 */
import type { RawImage } from '../../domain/types.ts';

export interface EditKeepConfig {
  /** Share of the sampler's steps spent measuring (the mask is fixed after round(share·steps) steps, at least 1). */
  share: number;
  /** Pull below `lo` is outside the edit, above `hi` inside; linear between. */
  lo: number;
  hi: number;
  /** The mask grows by this many drawing pixels (a max filter) before a 3×3 box blur softens its border. */
  grow: number;
  /** A mask covering more than this share of the picture marks a global edit (time of day, style): no mask. */
  global_share: number;
  /** Blend the decoded image with the source image at the output size (default true). */
  paste?: boolean;
  /**
   * Drop the parts of a local edit's mask (8-connected, before growing) whose pull never reaches `hi`: scattered
   * pull in the background, not the edit. There the source is kept exactly instead of redrawn. Default false.
   */
  prune?: boolean;
}

/** Steps that measure the pull, or 0 when `keep` is off for this step count. */
export function measureSteps(keep: EditKeepConfig | undefined, steps: number): number {
  if (!keep || !(keep.share > 0)) return 0;
  const k = Math.max(1, Math.round(keep.share * steps));
  return k < steps ? k : 0;
}

/**
 * Adds σ·|cond − uncond|, averaged over the three colours, to `acc` [h·w] (row-major pixels of the drawing);
 * cond/uncond are velocity tokens [rows·cols, 3·P·P] in patchify order.
 */
export function accumulatePull(acc: Float32Array, cond: Float32Array, uncond: Float32Array, sigma: number, rows: number, cols: number, P: number): void {
  const w = cols * P;
  const tokenDim = 3 * P * P;
  const s = Math.fround(sigma);
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < cols; q++) {
      const base = (r * cols + q) * tokenDim;
      for (let py = 0; py < P; py++) {
        for (let px = 0; px < P; px++) {
          let sum = 0;
          for (let c = 0; c < 3; c++) {
            const i = base + (c * P + py) * P + px;
            sum = Math.fround(sum + Math.abs(Math.fround(s * Math.fround(cond[i]! - uncond[i]!))));
          }
          const pix = (r * P + py) * w + (q * P + px);
          acc[pix] = Math.fround(acc[pix]! + Math.fround(sum / 3));
        }
      }
    }
  }
}

/** Max filter over (2g+1)² (edges clamped), then a 3×3 box blur (edges clamped), separable: rows, then columns. */
export function growMask(m: Float32Array, w: number, h: number, g: number): Float32Array {
  let cur = m;
  const pass = (src: Float32Array, alongX: boolean, f: (vals: number[]) => number, radius: number): Float32Array => {
    const out = new Float32Array(src.length);
    const n = alongX ? w : h;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const vals: number[] = [];
        for (let d = -radius; d <= radius; d++) {
          const k = Math.min(n - 1, Math.max(0, (alongX ? x : y) + d));
          vals.push(src[alongX ? y * w + k : k * w + x]!);
        }
        out[y * w + x] = f(vals);
      }
    }
    return out;
  };
  if (g > 0) {
    const max = (vals: number[]) => Math.max(...vals);
    cur = pass(pass(cur, false, max, g), true, max, g);
  }
  // (a + b + c) / 3 in float32, the order numpy adds them in
  const box = (vals: number[]) => Math.fround(Math.fround(Math.fround(vals[0]! + vals[1]!) + vals[2]!) / 3);
  return pass(pass(cur, false, box, 1), true, box, 1);
}

/** The mean pull [h·w] → the soft mask, or null for a global edit. */
export function editRegion(meanPull: Float32Array, w: number, h: number, keep: EditKeepConfig): Float32Array | null {
  const lo = Math.fround(keep.lo);
  const span = Math.fround(keep.hi - keep.lo);
  const m = new Float32Array(meanPull.length);
  for (let i = 0; i < m.length; i++) {
    const v = Math.fround(Math.fround(meanPull[i]! - lo) / span);
    m[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  const grown = growMask(m, w, h, Math.round(keep.grow));
  let sum = 0;
  for (const v of grown) sum += v;
  // The global test looks at the whole pull; pruning only refines a local edit's mask.
  if (sum / grown.length > keep.global_share) return null;
  return keep.prune ? growMask(pruneIslands(m, w, h), w, h, Math.round(keep.grow)) : grown;
}

/** Zeroes the 8-connected parts of m (m > 0) whose largest value is below 1 (model/sampler.py `prune_islands`). */
export function pruneIslands(m: Float32Array, w: number, h: number): Float32Array {
  const out = Float32Array.from(m);
  const seen = new Uint8Array(m.length);
  const part: number[] = [];
  for (let start = 0; start < m.length; start++) {
    if (seen[start] || !(m[start]! > 0)) continue;
    part.length = 0;
    const stack = [start];
    seen[start] = 1;
    let peak = 0;
    while (stack.length) {
      const i = stack.pop()!;
      part.push(i);
      if (m[i]! > peak) peak = m[i]!;
      const y = Math.floor(i / w);
      const x = i - y * w;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          const j = yy * w + xx;
          if (!seen[j] && m[j]! > 0) {
            seen[j] = 1;
            stack.push(j);
          }
        }
      }
    }
    if (peak < 1) for (const i of part) out[i] = 0;
  }
  return out;
}

/** The mask in token layout [rows·cols, 3·P·P] (the same value for the three colours of a pixel). */
export function regionTokens(region: Float32Array, rows: number, cols: number, P: number): Float32Array {
  const w = cols * P;
  const tokenDim = 3 * P * P;
  const out = new Float32Array(rows * cols * tokenDim);
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < cols; q++) {
      const base = (r * cols + q) * tokenDim;
      for (let c = 0; c < 3; c++) {
        for (let py = 0; py < P; py++) {
          for (let px = 0; px < P; px++) out[base + (c * P + py) * P + px] = region[(r * P + py) * w + (q * P + px)]!;
        }
      }
    }
  }
  return out;
}

/** x ← m·x + (1 − m)·((1 − σ)·src + σ·ε), in place: outside the edit the latent follows the source's path. */
export function keepSource(x: Float32Array, mask: Float32Array, src: Float32Array, eps: Float32Array, sigma: number): void {
  const s = Math.fround(sigma);
  const a = Math.fround(1 - sigma);
  for (let i = 0; i < x.length; i++) {
    const m = mask[i]!;
    const path = Math.fround(Math.fround(a * src[i]!) + Math.fround(s * eps[i]!));
    x[i] = Math.fround(Math.fround(m * x[i]!) + Math.fround(Math.fround(1 - m) * path));
  }
}

/** out·m + source·(1 − m) per pixel, with the mask resized to the output (interleaved RGB, same size). */
export function pasteSource(out: RawImage, source: RawImage, mask: Float32Array): RawImage {
  const data = new Uint8Array(out.data.length);
  const n = out.width * out.height;
  for (let p = 0; p < n; p++) {
    const m = mask[p]!;
    for (let c = 0; c < 3; c++) {
      const i = p * 3 + c;
      const v = Math.round(m * out.data[i]! + (1 - m) * source.data[i]!);
      data[i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width: out.width, height: out.height, data };
}

/** The mask [h·w] to the output size by bilinear interpolation (pixel centres, edges clamped). */
export function resizeMask(m: Float32Array, w: number, h: number, width: number, height: number): Float32Array {
  const out = new Float32Array(width * height);
  const sx = w / width;
  const sy = h / height;
  for (let y = 0; y < height; y++) {
    const v = Math.min(h - 1, Math.max(0, (y + 0.5) * sy - 0.5));
    const j0 = Math.floor(v);
    const j1 = Math.min(h - 1, j0 + 1);
    const fy = v - j0;
    for (let x = 0; x < width; x++) {
      const u = Math.min(w - 1, Math.max(0, (x + 0.5) * sx - 0.5));
      const i0 = Math.floor(u);
      const i1 = Math.min(w - 1, i0 + 1);
      const fx = u - i0;
      const top = m[j0 * w + i0]! * (1 - fx) + m[j0 * w + i1]! * fx;
      const bottom = m[j1 * w + i0]! * (1 - fx) + m[j1 * w + i1]! * fx;
      out[y * width + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}
