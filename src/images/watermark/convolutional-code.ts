/**
 * Rate-1/3, constraint-length-7 convolutional code with soft-decision Viterbi decoding.
 * Generators 133, 171, 165 (octal) are the LTE / 3GPP TS 36.212 §5.1.3.1 set (free distance 15).
 * The encoder starts in state 0 and is flushed with 6 zero tail bits, so the decoder knows both ends.
 */

const CONSTRAINT_LENGTH = 7;
const MEMORY = CONSTRAINT_LENGTH - 1;
const STATES = 1 << MEMORY;
const GENERATORS = [0o133, 0o171, 0o165] as const;
export const CODE_RATE_INVERSE = GENERATORS.length;

/** Coded bits produced for `messageBits` input bits (tail included). */
export function codedLength(messageBits: number): number {
  return (messageBits + MEMORY) * CODE_RATE_INVERSE;
}

function parity(value: number): number {
  let v = value;
  v ^= v >> 4;
  v ^= v >> 2;
  v ^= v >> 1;
  return v & 1;
}

/**
 * Output bits for every 7-bit register value: register = (state << 1) | input, newest bit in bit 0.
 * Returned as ±1 signs, 3 per register, for branch metrics.
 */
function branchSigns(): Int8Array {
  const signs = new Int8Array((1 << CONSTRAINT_LENGTH) * CODE_RATE_INVERSE);
  for (let reg = 0; reg < 1 << CONSTRAINT_LENGTH; reg++) {
    for (let g = 0; g < CODE_RATE_INVERSE; g++) {
      signs[reg * CODE_RATE_INVERSE + g] = parity(reg & GENERATORS[g]!) ? 1 : -1;
    }
  }
  return signs;
}

export function convolutionalEncode(message: ArrayLike<number>): Uint8Array {
  const coded = new Uint8Array(codedLength(message.length));
  let state = 0;
  for (let t = 0; t < message.length + MEMORY; t++) {
    const input = t < message.length ? message[t]! & 1 : 0;
    const reg = (state << 1) | input;
    for (let g = 0; g < CODE_RATE_INVERSE; g++) coded[t * CODE_RATE_INVERSE + g] = parity(reg & GENERATORS[g]!);
    state = reg & (STATES - 1);
  }
  return coded;
}

/**
 * Maximum-likelihood decoding for soft inputs: soft[i] > 0 means coded bit i is more likely 1, and
 * its magnitude is the confidence (any common scale). Returns the `messageBits` decoded bits.
 */
export function viterbiDecode(soft: ArrayLike<number>, messageBits: number): Uint8Array {
  const steps = messageBits + MEMORY;
  if (soft.length < steps * CODE_RATE_INVERSE) throw new RangeError('viterbiDecode: not enough soft bits');
  const signs = branchSigns();
  let metric = new Float64Array(STATES).fill(-Infinity);
  let next = new Float64Array(STATES);
  metric[0] = 0;
  // decisions[t * STATES + s] = the high bit of the predecessor state chosen for state s at step t.
  const decisions = new Uint8Array(steps * STATES);
  for (let t = 0; t < steps; t++) {
    const s0 = soft[t * 3]!;
    const s1 = soft[t * 3 + 1]!;
    const s2 = soft[t * 3 + 2]!;
    for (let state = 0; state < STATES; state++) {
      // Predecessors of `state` are (state >> 1) and (state >> 1) | 32; both shift in bit (state & 1).
      const regA = ((state >> 1) << 1) | (state & 1);
      const regB = (((state >> 1) | (STATES >> 1)) << 1) | (state & 1);
      const a = metric[state >> 1]! + s0 * signs[regA * 3]! + s1 * signs[regA * 3 + 1]! + s2 * signs[regA * 3 + 2]!;
      const b =
        metric[(state >> 1) | (STATES >> 1)]! + s0 * signs[regB * 3]! + s1 * signs[regB * 3 + 1]! + s2 * signs[regB * 3 + 2]!;
      if (b > a) {
        next[state] = b;
        decisions[t * STATES + state] = 1;
      } else {
        next[state] = a;
      }
    }
    const swap = metric;
    metric = next;
    next = swap;
  }
  // The tail forces the encoder back to state 0.
  const bits = new Uint8Array(steps);
  let state = 0;
  for (let t = steps - 1; t >= 0; t--) {
    bits[t] = state & 1;
    state = (state >> 1) | (decisions[t * STATES + state]! ? STATES >> 1 : 0);
  }
  return bits.slice(0, messageBits);
}
