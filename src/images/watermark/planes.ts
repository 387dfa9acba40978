/** Small float-plane filters used by the detector and its templates. */

/** Box mean of radius `radius` (window (2r+1)²); the window shrinks at the borders. */
export function boxMean(src: Float32Array, width: number, height: number, radius: number): Float32Array {
  const horizontal = new Float32Array(width * height);
  const prefix = new Float64Array(Math.max(width, height) + 1);
  for (let y = 0; y < height; y++) {
    const base = y * width;
    for (let x = 0; x < width; x++) prefix[x + 1] = prefix[x]! + src[base + x]!;
    for (let x = 0; x < width; x++) {
      const lo = Math.max(0, x - radius);
      const hi = Math.min(width, x + radius + 1);
      horizontal[base + x] = (prefix[hi]! - prefix[lo]!) / (hi - lo);
    }
  }
  const out = new Float32Array(width * height);
  // Vertical pass with running column sums, one row at a time (cache friendly).
  const sums = new Float64Array(width);
  let top = 0;
  let bottom = 0; // rows [top, bottom) are in `sums`
  for (let y = 0; y < height; y++) {
    const lo = Math.max(0, y - radius);
    const hi = Math.min(height, y + radius + 1);
    while (bottom < hi) {
      const base = bottom * width;
      for (let x = 0; x < width; x++) sums[x]! += horizontal[base + x]!;
      bottom++;
    }
    while (top < lo) {
      const base = top * width;
      for (let x = 0; x < width; x++) sums[x]! -= horizontal[base + x]!;
      top++;
    }
    const inv = 1 / (hi - lo);
    const base = y * width;
    for (let x = 0; x < width; x++) out[base + x] = sums[x]! * inv;
  }
  return out;
}

/** Box mean on a torus (wraps at every edge): for templates of one periodic tile. */
export function cyclicBoxMean(src: Float64Array, size: number, radius: number): Float64Array {
  const out = new Float64Array(size * size);
  const n = (2 * radius + 1) ** 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let sum = 0;
      for (let dy = -radius; dy <= radius; dy++) {
        const row = ((y + dy + size) % size) * size;
        for (let dx = -radius; dx <= radius; dx++) sum += src[row + ((x + dx + size) % size)]!;
      }
      out[y * size + x] = sum / n;
    }
  }
  return out;
}
