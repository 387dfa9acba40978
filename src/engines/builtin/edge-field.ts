/**
 * The edge-field renderer: the last step of the builtin engine's decode when the model ships an upsampler
 * (manifest `upsampler.kind` = "edge-field"; model/upsampler.py trains it, model/CONTRACT.md "Decode" specifies it).
 *
 * upsampler.onnx describes every cell of a grid SUB× finer than the model's drawing as two colours A and B with a
 * straight edge between them (unit normal n, offset d from the cell centre). This draws that description at the
 * requested size: each cell says "A or B, whichever side of my edge you are on", with a one-pixel ramp across the
 * edge, and draws its own square of the output, handing over to its neighbours within `blend` output pixels (a
 * bilinear blend of the four nearest cells squeezed into that band). An edge therefore stays one output pixel wide
 * at any scale, where a resize would spread it over scale-many pixels.
 *
 * Must match model/upsampler.py `render_field` to float32 rounding (src/engines/builtin/parity.test.ts).
 */
import type { RawImage } from '../../domain/types.ts';

/** Field channels, planar [FIELD_CHANNELS, gh, gw]: A r,g,b · B r,g,b · n x,y · d. */
export const FIELD_CHANNELS = 9;

/**
 * Weight of the far cell for a pixel at fraction f ∈ [0,1) of the way between two cell centres (cellPx output
 * pixels apart): the hand-over takes `blend` pixels; blend ≥ cellPx is plain bilinear.
 */
function blendWeight(f: number, cellPx: number, blend: number): number {
  const k = Math.fround(Math.max(1, cellPx / blend));
  const w = Math.fround(0.5 + Math.fround(Math.fround(f - 0.5) * k));
  return w <= 0 ? 0 : w >= 1 ? 1 : w;
}

/**
 * field: planar float32 [9, gh, gw] (colours in [−1,1], sub-grid units) → RGB at width × height.
 * `ramp`: the edge's width in output pixels; `blend`: the hand-over between cells, in output pixels (1 and 1 at run
 * time, manifest.upsampler).
 */
export function renderEdgeField(field: Float32Array, gw: number, gh: number, width: number, height: number, ramp = 1, blend = 1): RawImage {
  const plane = gw * gh;
  if (field.length !== FIELD_CHANNELS * plane) throw new Error(`edge field has ${field.length} values, expected ${FIELD_CHANNELS}·${gh}·${gw}`);
  const sx = gw / width;
  const sy = gh / height;
  const rho = Math.fround((0.5 * (width / gw + height / gh)) / ramp);
  // Per output column: the two neighbouring cell columns (clamped), their weights and the pixel's offset from each.
  const colI = new Int32Array(2 * width);
  const colW = new Float32Array(2 * width);
  const colQ = new Float32Array(2 * width);
  for (let x = 0; x < width; x++) {
    const u = Math.fround(Math.fround((x + 0.5) * sx) - 0.5);
    const i0 = Math.floor(u);
    const fx = blendWeight(Math.fround(u - i0), width / gw, blend);
    for (let k = 0; k < 2; k++) {
      const i = Math.min(gw - 1, Math.max(0, i0 + k));
      colI[2 * x + k] = i;
      colW[2 * x + k] = k === 0 ? Math.fround(1 - fx) : fx;
      colQ[2 * x + k] = Math.fround(u - i);
    }
  }
  const data = new Uint8Array(width * height * 3);
  const acc = new Float32Array(3);
  for (let y = 0; y < height; y++) {
    const v = Math.fround(Math.fround((y + 0.5) * sy) - 0.5);
    const j0 = Math.floor(v);
    const fy = blendWeight(Math.fround(v - j0), height / gh, blend);
    for (let x = 0; x < width; x++) {
      acc[0] = acc[1] = acc[2] = 0;
      for (let dj = 0; dj < 2; dj++) {
        const j = Math.min(gh - 1, Math.max(0, j0 + dj));
        const wy = dj === 0 ? Math.fround(1 - fy) : fy;
        const qy = Math.fround(v - j);
        for (let di = 0; di < 2; di++) {
          const cell = j * gw + colI[2 * x + di]!;
          const weight = Math.fround(wy * colW[2 * x + di]!);
          const t = field[6 * plane + cell]! * colQ[2 * x + di]! + field[7 * plane + cell]! * qy - field[8 * plane + cell]!;
          const s = 0.5 + t * rho;
          const alpha = s <= 0 ? 0 : s >= 1 ? 1 : s;
          for (let c = 0; c < 3; c++) {
            const b = field[(3 + c) * plane + cell]!;
            acc[c] = acc[c]! + weight * (b + alpha * (field[c * plane + cell]! - b));
          }
        }
      }
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        const value = Math.round((acc[c]! + 1) * 127.5);
        data[o + c] = value < 0 ? 0 : value > 255 ? 255 : value;
      }
    }
  }
  return { width, height, data };
}

/** manifest.upsampler.flatten: the bilateral filter run on the drawing before upsampler.onnx. */
export interface FlattenOptions {
  /** Half-width of the window, drawing pixels. */
  radius: number;
  spatial_sigma: number;
  /** On the colour distance |c − c₀| (three channels in [−1,1]). */
  range_sigma: number;
}

/**
 * Edge-preserving smoothing of the drawing (model/upsampler.py `flatten`): planar [3, h, w] in [−1,1]; each pixel
 * becomes the mean of its (2r+1)² window weighted by exp(−(dx²+dy²)/(2·ss²) − |c − c₀|²/(2·rs²)), the window
 * clamped at the borders. It takes out the denoiser's blotches and colour fringes, which the edge field would
 * otherwise draw as crisply as real edges, and leaves edges between distinct colours where they are.
 */
export function flattenDrawing(planar: Float32Array, w: number, h: number, options: FlattenOptions): Float32Array {
  const n = w * h;
  if (planar.length !== 3 * n) throw new Error(`drawing has ${planar.length} values, expected 3·${h}·${w}`);
  const r = Math.round(options.radius);
  const spatial = 2 * options.spatial_sigma * options.spatial_sigma;
  const range = 2 * options.range_sigma * options.range_sigma;
  const out = new Float32Array(3 * n);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const r0 = planar[i]!;
      const g0 = planar[n + i]!;
      const b0 = planar[2 * n + i]!;
      let sr = 0;
      let sg = 0;
      let sb = 0;
      let sw = 0;
      for (let dy = -r; dy <= r; dy++) {
        const row = Math.min(h - 1, Math.max(0, y + dy)) * w;
        for (let dx = -r; dx <= r; dx++) {
          const j = row + Math.min(w - 1, Math.max(0, x + dx));
          const rr = planar[j]!;
          const gg = planar[n + j]!;
          const bb = planar[2 * n + j]!;
          const d2 = (rr - r0) * (rr - r0) + (gg - g0) * (gg - g0) + (bb - b0) * (bb - b0);
          const wt = Math.exp(-(dx * dx + dy * dy) / spatial - d2 / range);
          sr += wt * rr;
          sg += wt * gg;
          sb += wt * bb;
          sw += wt;
        }
      }
      out[i] = sr / sw;
      out[n + i] = sg / sw;
      out[2 * n + i] = sb / sw;
    }
  }
  return out;
}

/** manifest.upsampler.smooth: puts the drawn edges on smooth curves (smooth.onnx, see smoothInputs). */
export interface SmoothOptions {
  /** The graph (model/smooth.py SmoothNet), in the model directory. */
  file: string;
  /** Gaussian σ of the smoothing, in sub-grid cells. */
  sigma: number;
  /** Half-width of the window whose min and max are the local colours, in sub-grid cells (rounded to pixels, ≥ 1). */
  radius: number;
  /** Local contrast (max over channels of max − min, in [−1,1] units) up to which a pixel is only smoothed... */
  contrast_lo: number;
  /** ...and from which it gets the full gain back to a `ramp`-pixel edge. */
  contrast_hi: number;
  /** The edge's width in output pixels. */
  ramp: number;
}

/** Half-resolution Gaussian taps smooth.onnx takes (σ up to 6 output pixels), and the window radii it can pick from. */
export const SMOOTH_TAPS = 19;
export const SMOOTH_RADII = 2;

/**
 * The smoothing's σ and window radius in output pixels for a gw×gh field drawn at width×height (model/smooth.py
 * smooth_px): cell c = ½(W/gw + H/gh), σ = min(sigma·c, 6), radius = min(2, max(1, round(radius·c))).
 */
export function smoothPixels(options: SmoothOptions, gw: number, gh: number, width: number, height: number): { sigma: number; radius: number } {
  const cell = 0.5 * (width / gw + height / gh);
  const half = (SMOOTH_TAPS - 1) / 2;
  return { sigma: Math.min(options.sigma * cell, half / 1.5), radius: Math.min(SMOOTH_RADII, Math.max(1, Math.floor(options.radius * cell + 0.5))) };
}

/**
 * smooth.onnx's small inputs for a σ and radius in output pixels (model/smooth.py smooth_inputs): the Gaussian of σ/2
 * over ±ceil(3σ/2) half-resolution pixels, normalised and zero beyond; the one-hot radius; and
 * [contrast_lo, contrast_hi, σ·√(2π)/ramp − 1].
 */
export function smoothInputs(options: SmoothOptions, sigma: number, radius: number): { taps: Float32Array; rsel: Float32Array; params: Float32Array } {
  const half = (SMOOTH_TAPS - 1) / 2;
  const s2 = sigma / 2;
  const reach = Math.ceil(3 * s2);
  const k = new Float64Array(SMOOTH_TAPS);
  let sum = 0;
  for (let t = -half; t <= half; t++) if (Math.abs(t) <= reach) sum += k[t + half] = Math.exp(-0.5 * (t / s2) ** 2);
  const rsel = new Float32Array(SMOOTH_RADII);
  rsel[radius - 1] = 1;
  return {
    taps: Float32Array.from(k, (v) => v / sum),
    rsel,
    params: Float32Array.from([options.contrast_lo, options.contrast_hi, (sigma * Math.sqrt(2 * Math.PI)) / options.ramp - 1]),
  };
}

/** The drawn 8-bit image as smooth.onnx's input: planar v/127.5 − 1, the last row and column repeated to even sizes. */
export function smoothInputImage(img: RawImage): { x: Float32Array; width: number; height: number } {
  const { width: W, height: H } = img;
  const We = W + (W % 2);
  const He = H + (H % 2);
  const plane = We * He;
  const x = new Float32Array(3 * plane);
  for (let y = 0; y < He; y++) {
    const sy = Math.min(y, H - 1) * W;
    for (let xx = 0; xx < We; xx++) {
      const s = (sy + Math.min(xx, W - 1)) * 3;
      const o = y * We + xx;
      x[o] = img.data[s]! / 127.5 - 1;
      x[plane + o] = img.data[s + 1]! / 127.5 - 1;
      x[2 * plane + o] = img.data[s + 2]! / 127.5 - 1;
    }
  }
  return { x, width: We, height: He };
}

/** smooth.onnx's output levels (planar [3, He, We]) → the W×H RGB image. */
export function smoothOutputImage(levels: Float32Array, We: number, He: number, width: number, height: number): RawImage {
  const plane = We * He;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * We + x;
      const o = (y * width + x) * 3;
      data[o] = levels[i]!;
      data[o + 1] = levels[plane + i]!;
      data[o + 2] = levels[2 * plane + i]!;
    }
  }
  return { width, height, data };
}
