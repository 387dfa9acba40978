/**
 * The Qwen-Image flow-matching sampler: sigma schedule with dynamic exponential shift and terminal
 * stretch, Euler steps, and classifier-free guidance (with a separate negative-prompt term) and norm rescaling. The constants are the
 * ones Qwen-Image's scheduler configuration uses (base_image_seq_len 256 → base_shift 0.5,
 * max_image_seq_len 8192 → max_shift 0.9, shift_terminal 0.02); the manifest may override them.
 */

export interface ScheduleConfig {
  base_image_seq_len: number;
  max_image_seq_len: number;
  base_shift: number;
  max_shift: number;
  shift_terminal: number;
}

export const QWEN_IMAGE_SCHEDULE: ScheduleConfig = {
  base_image_seq_len: 256,
  max_image_seq_len: 8192,
  base_shift: 0.5,
  max_shift: 0.9,
  shift_terminal: 0.02,
};

/** μ, linear in the image token count between the two anchor points. */
export function shiftMu(imageSeqLen: number, c: ScheduleConfig): number {
  const m = (c.max_shift - c.base_shift) / (c.max_image_seq_len - c.base_image_seq_len);
  return c.base_shift + m * (imageSeqLen - c.base_image_seq_len);
}

/** steps + 1 sigmas, from ~1 down to shift_terminal, then 0. */
export function computeSigmas(steps: number, imageSeqLen: number, c: ScheduleConfig = QWEN_IMAGE_SCHEDULE): Float64Array {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  const mu = shiftMu(imageSeqLen, c);
  const eMu = Math.exp(mu);
  const shifted = new Float64Array(steps);
  for (let i = 0; i < steps; i++) {
    // linspace(1, 1/steps, steps)
    const sigma = steps === 1 ? 1 : 1 + ((1 / steps - 1) * i) / (steps - 1);
    shifted[i] = eMu / (eMu + (1 / sigma - 1));
  }
  const out = new Float64Array(steps + 1);
  // With one step the only sigma is 1 and there is nothing to stretch (z_last = 0).
  if (c.shift_terminal > 0 && shifted[steps - 1]! < 1) {
    const scale = (1 - shifted[steps - 1]!) / (1 - c.shift_terminal);
    for (let i = 0; i < steps; i++) out[i] = 1 - (1 - shifted[i]!) / scale;
  } else {
    out.set(shifted);
  }
  out[steps] = 0;
  return out;
}

/** x ← x + (σ_next − σ)·v, in place. */
export function eulerStep(x: Float32Array, velocity: Float32Array, sigma: number, sigmaNext: number): void {
  const dt = sigmaNext - sigma;
  for (let i = 0; i < x.length; i++) x[i]! += dt * velocity[i]!;
}

/**
 * The clean sample the velocity points at: with x_t = (1 − σ)·x0 + σ·ε and v = ε − x0 (the velocity
 * eulerStep integrates, dx/dσ), x0 = x_t − σ·v. Computed as x + (0 − σ)·v, the very expression
 * eulerStep evaluates for σ_next = 0, so at the last step it is bit-identical to the sampler's
 * output. Writes into `out`.
 */
export function predictCleanSample(x: Float32Array, velocity: Float32Array, sigma: number, out: Float32Array): Float32Array {
  const dt = 0 - sigma;
  for (let i = 0; i < x.length; i++) out[i] = x[i]! + dt * velocity[i]!;
  return out;
}

/**
 * Guidance. With v_p, v_0, v_n the velocities for the prompt, the empty text and the negative prompt:
 * comb = v_0 + s·(v_p − v_0) − s_n·(v_n − v_0), the last term only when `neg` is given; then each token's
 * vector is rescaled to the norm of v_p (norms over the channel axis of `tokenDim`). Plain true CFG,
 * v_n + s·(v_p − v_n), is the case s_n = s − 1 (model/CONTRACT.md). Writes into `out`.
 */
export function guide(
  cond: Float32Array,
  uncond: Float32Array,
  neg: Float32Array | null,
  scale: number,
  negScale: number,
  tokenDim: number,
  out: Float32Array,
): Float32Array {
  const tokens = cond.length / tokenDim;
  for (let t = 0; t < tokens; t++) {
    const base = t * tokenDim;
    let condSq = 0;
    let combSq = 0;
    for (let c = 0; c < tokenDim; c++) {
      const i = base + c;
      let v = uncond[i]! + scale * (cond[i]! - uncond[i]!);
      if (neg) v -= negScale * (neg[i]! - uncond[i]!);
      out[i] = v;
      condSq += cond[i]! * cond[i]!;
      combSq += v * v;
    }
    const ratio = combSq > 0 ? Math.sqrt(condSq) / Math.sqrt(combSq) : 0;
    for (let c = 0; c < tokenDim; c++) out[base + c]! *= ratio;
  }
  return out;
}
