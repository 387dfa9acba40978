/**
 * Complex FFT (radix-2, in place): square 2-D grids for the fold correlations, and 1-D sequences
 * for the row/column spectra of the scale search.
 * Tables are built once per size by the constructor; instances are reused, never shared mutably
 * between concurrent callers (detection is synchronous).
 */
export class Fft2d {
  readonly size: number;
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly reversed: Uint32Array;
  private readonly columnRe: Float64Array;
  private readonly columnIm: Float64Array;

  constructor(size: number) {
    if (size < 2 || (size & (size - 1)) !== 0) throw new RangeError(`Fft2d size must be a power of two, got ${size}`);
    this.size = size;
    this.cos = new Float64Array(size / 2);
    this.sin = new Float64Array(size / 2);
    for (let i = 0; i < size / 2; i++) {
      this.cos[i] = Math.cos((2 * Math.PI * i) / size);
      this.sin[i] = Math.sin((2 * Math.PI * i) / size);
    }
    const bits = Math.log2(size);
    this.reversed = new Uint32Array(size);
    for (let i = 0; i < size; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.reversed[i] = r;
    }
    this.columnRe = new Float64Array(size);
    this.columnIm = new Float64Array(size);
  }

  /** Forward transform of one length-`size` sequence stored at `offset` with `stride`. */
  forward1d(re: Float64Array, im: Float64Array, offset = 0, stride = 1): void {
    this.transform1d(re, im, offset, stride, false);
  }

  /** Forward (sign -1) transform of a size×size row-major grid. */
  forward(re: Float64Array, im: Float64Array): void {
    this.transform2d(re, im, false);
  }

  /** Inverse transform, scaled by 1/size² so that inverse(forward(x)) = x. */
  inverse(re: Float64Array, im: Float64Array): void {
    this.transform2d(re, im, true);
    const scale = 1 / (this.size * this.size);
    for (let i = 0; i < re.length; i++) {
      re[i]! *= scale;
      im[i]! *= scale;
    }
  }

  private transform2d(re: Float64Array, im: Float64Array, inverse: boolean): void {
    const n = this.size;
    for (let row = 0; row < n; row++) this.transform1d(re, im, row * n, 1, inverse);
    const cr = this.columnRe;
    const ci = this.columnIm;
    for (let col = 0; col < n; col++) {
      for (let i = 0; i < n; i++) {
        cr[i] = re[i * n + col]!;
        ci[i] = im[i * n + col]!;
      }
      this.transform1d(cr, ci, 0, 1, inverse);
      for (let i = 0; i < n; i++) {
        re[i * n + col] = cr[i]!;
        im[i * n + col] = ci[i]!;
      }
    }
  }

  private transform1d(re: Float64Array, im: Float64Array, offset: number, stride: number, inverse: boolean): void {
    const n = this.size;
    const rev = this.reversed;
    for (let i = 0; i < n; i++) {
      const j = rev[i]!;
      if (j > i) {
        const a = offset + i * stride;
        const b = offset + j * stride;
        const tr = re[a]!;
        re[a] = re[b]!;
        re[b] = tr;
        const ti = im[a]!;
        im[a] = im[b]!;
        im[b] = ti;
      }
    }
    const sign = inverse ? 1 : -1;
    for (let half = 1; half < n; half <<= 1) {
      const step = n / (half * 2);
      for (let start = 0; start < n; start += half * 2) {
        for (let k = 0; k < half; k++) {
          const wr = this.cos[k * step]!;
          const wi = sign * this.sin[k * step]!;
          const a = offset + (start + k) * stride;
          const b = a + half * stride;
          const xr = re[b]! * wr - im[b]! * wi;
          const xi = re[b]! * wi + im[b]! * wr;
          re[b] = re[a]! - xr;
          im[b] = im[a]! - xi;
          re[a]! += xr;
          im[a]! += xi;
        }
      }
    }
  }
}
