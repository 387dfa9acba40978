/**
 * Seeded noise for the sampler: mulberry32 and Box–Muller, exactly as model/CONTRACT.md specifies,
 * so the Python sampler draws the same noise for the same seed.
 */

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Fills `out` with standard normals: one normal per pair of uint32 draws, no caching. */
export function fillStandardNormal(out: Float32Array, seed: number): Float32Array {
  const next = mulberry32(seed);
  for (let i = 0; i < out.length; i++) {
    const u1 = (next() + 1) / 4294967297;
    const u2 = next() / 4294967296;
    out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  return out;
}
