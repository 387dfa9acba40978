/**
 * Pixels ↔ patch tokens, in the order model/CONTRACT.md fixes: image [3, rows·P, cols·P] in [-1,1]
 * → tokens [rows·cols, 3·P·P], token-major over the grid, channel-major then py then px inside.
 */
import type { RawImage } from '../../domain/types.ts';

export function patchifyRgb(image: RawImage, rows: number, cols: number, patch: number, out?: Float32Array): Float32Array {
  if (image.width !== cols * patch || image.height !== rows * patch) {
    throw new Error(`patchify: image is ${image.width}x${image.height}, expected ${cols * patch}x${rows * patch}`);
  }
  const tokenDim = 3 * patch * patch;
  const tokens = out ?? new Float32Array(rows * cols * tokenDim);
  const w = image.width;
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < cols; q++) {
      const base = (r * cols + q) * tokenDim;
      for (let c = 0; c < 3; c++) {
        for (let py = 0; py < patch; py++) {
          for (let px = 0; px < patch; px++) {
            const pix = ((r * patch + py) * w + (q * patch + px)) * 3 + c;
            tokens[base + (c * patch + py) * patch + px] = image.data[pix]! / 127.5 - 1;
          }
        }
      }
    }
  }
  return tokens;
}

/** Tokens → planar [3, rows·P, cols·P] float image (NCHW without N), values as they are. */
export function unpatchifyToPlanar(tokens: Float32Array, rows: number, cols: number, patch: number): Float32Array {
  const tokenDim = 3 * patch * patch;
  const h = rows * patch;
  const w = cols * patch;
  const planar = new Float32Array(3 * h * w);
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < cols; q++) {
      const base = (r * cols + q) * tokenDim;
      for (let c = 0; c < 3; c++) {
        for (let py = 0; py < patch; py++) {
          for (let px = 0; px < patch; px++) {
            planar[c * h * w + (r * patch + py) * w + (q * patch + px)] = tokens[base + (c * patch + py) * patch + px]!;
          }
        }
      }
    }
  }
  return planar;
}

/** Planar [3,h,w] in [-1,1] → interleaved 8-bit RGB. */
export function planarToRgb(planar: Float32Array, width: number, height: number): RawImage {
  const data = new Uint8Array(width * height * 3);
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.round((planar[c * plane + i]! + 1) * 127.5);
      data[i * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width, height, data };
}

/**
 * (frame, row, col) per image-stream token: the target at frame 0, then reference k (1-based) at
 * frame k. With no references the model still gets one masked dummy token, placed at (1, 0, 0).
 */
export function tokenPositions(rows: number, cols: number, refCount: number): Float32Array {
  const perImage = rows * cols;
  const pos = new Float32Array((perImage * (1 + refCount) + (refCount === 0 ? 1 : 0)) * 3);
  let o = 0;
  for (let f = 0; f <= refCount; f++) {
    for (let r = 0; r < rows; r++) {
      for (let q = 0; q < cols; q++) {
        pos[o++] = f;
        pos[o++] = r;
        pos[o++] = q;
      }
    }
  }
  if (refCount === 0) pos[o] = 1;
  return pos;
}

/** The trained aspect bucket closest to the requested aspect, in log space. */
export function chooseGrid(width: number, height: number, grids: Array<[number, number]>): [number, number] {
  const want = Math.log(width / height);
  let best = grids[0]!;
  let bestErr = Infinity;
  for (const g of grids) {
    const err = Math.abs(Math.log(g[1] / g[0]) - want);
    if (err < bestErr) {
      bestErr = err;
      best = g;
    }
  }
  return best;
}
