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

/** manifest.upsampler.smooth: puts the drawn edges on smooth curves (smoothEdges). */
export interface SmoothOptions {
  /** Gaussian σ of the smoothing, output pixels. */
  sigma: number;
  /** Half-width of the window whose min and max are the local colours, output pixels. */
  radius: number;
  /** Local contrast (max over channels of max − min, in [−1,1] units) below which a pixel is only smoothed... */
  contrast_lo: number;
  /** ...and above which it gets the full gain back to a one-pixel edge. */
  contrast_hi: number;
  /** The edge's width in output pixels. */
  ramp: number;
}

/** Normalised 1-D Gaussian taps over ±ceil(3σ) (model/upsampler.py gaussian_kernel). */
function gaussianTaps(sigma: number): Float32Array {
  const r = Math.ceil(3 * sigma);
  const k = new Float64Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += k[i + r] = Math.exp(-0.5 * (i / sigma) ** 2);
  return Float32Array.from(k, (v) => v / sum);
}

/**
 * The drawn image with its edges on smooth curves (model/upsampler.py smooth_edges; model/CONTRACT.md "Edge-field
 * upsampler"). The field's cells hand over within one pixel, so a slanted or curved edge is drawn as a staircase of
 * cell-sized steps; this smooths the image (Gaussian σ) and pushes each channel back towards its local min or max
 * (the (2·radius+1)² window) around the smoothed image's half level, with a gain that restores a `ramp`-pixel edge
 * where the local contrast is high and leaves flat shading only smoothed. Works on the 8-bit image, as the
 * runtime's renderer writes it.
 */
export function smoothEdges(img: RawImage, options: SmoothOptions): RawImage {
  const { width: W, height: H } = img;
  const n = W * H * 3;
  if (img.data.length !== n) throw new Error(`image has ${img.data.length} values, expected ${W}·${H}·3`);
  const src = new Float32Array(n);
  for (let i = 0; i < n; i++) src[i] = img.data[i]! / 127.5 - 1;
  const taps = gaussianTaps(options.sigma);
  const tr = (taps.length - 1) / 2;
  // Gaussian: along rows, then along columns (edges repeated)
  const rows = new Float32Array(n);
  for (let y = 0; y < H; y++) {
    const base = y * W;
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let t = -tr; t <= tr; t++) {
          const xx = x + t < 0 ? 0 : x + t >= W ? W - 1 : x + t;
          s += taps[t + tr]! * src[(base + xx) * 3 + c]!;
        }
        rows[(base + x) * 3 + c] = s;
      }
    }
  }
  const smooth = new Float32Array(n);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let t = -tr; t <= tr; t++) {
          const yy = y + t < 0 ? 0 : y + t >= H ? H - 1 : y + t;
          s += taps[t + tr]! * rows[(yy * W + x) * 3 + c]!;
        }
        smooth[(y * W + x) * 3 + c] = s;
      }
    }
  }
  // local min and max over the (2r+1)² window: along rows, then along columns
  const r = Math.round(options.radius);
  const rowMin = new Float32Array(n);
  const rowMax = new Float32Array(n);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < 3; c++) {
        let lo = Infinity;
        let hi = -Infinity;
        for (let t = -r; t <= r; t++) {
          const xx = x + t < 0 ? 0 : x + t >= W ? W - 1 : x + t;
          const v = src[(y * W + xx) * 3 + c]!;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        rowMin[(y * W + x) * 3 + c] = lo;
        rowMax[(y * W + x) * 3 + c] = hi;
      }
    }
  }
  const full = Math.fround(options.sigma * Math.sqrt(2 * Math.PI)) / options.ramp - 1;
  const span = new Float32Array(3);
  const low = new Float32Array(3);
  const data = new Uint8Array(n);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let top = 0;
      for (let c = 0; c < 3; c++) {
        let lo = Infinity;
        let hi = -Infinity;
        for (let t = -r; t <= r; t++) {
          const yy = y + t < 0 ? 0 : y + t >= H ? H - 1 : y + t;
          const i = (yy * W + x) * 3 + c;
          if (rowMin[i]! < lo) lo = rowMin[i]!;
          if (rowMax[i]! > hi) hi = rowMax[i]!;
        }
        low[c] = lo;
        span[c] = hi - lo;
        if (span[c]! > top) top = span[c]!;
      }
      const q = Math.min(1, Math.max(0, (top - options.contrast_lo) / (options.contrast_hi - options.contrast_lo)));
      const gain = 1 + full * (q * q * (3 - 2 * q));
      const o = (y * W + x) * 3;
      for (let c = 0; c < 3; c++) {
        const g = smooth[o + c]!;
        const sp = span[c]!;
        let v = g;
        if (sp > 1e-6) {
          const a = 0.5 + ((g - low[c]!) / sp - 0.5) * gain;
          v = low[c]! + (a <= 0 ? 0 : a >= 1 ? 1 : a) * sp;
        }
        const level = Math.round((v + 1) * 127.5);
        data[o + c] = level < 0 ? 0 : level > 255 ? 255 : level;
      }
    }
  }
  return { width: W, height: H, data };
}
