/** Reads and checks model/weights/manifest.json (model/CONTRACT.md). */
import fs from 'node:fs';
import path from 'node:path';
import type { ScheduleConfig } from './sampler.ts';
import type { EditKeepConfig } from './edit-region.ts';
import type { FlattenOptions, SmoothOptions } from './edge-field.ts';

export interface ModelManifest {
  name: string;
  version: string;
  text: { max_tokens: number; dim: number; vocab: string[] };
  image: { patch: number; channels: number; token_dim: number; grids: Array<[number, number]> };
  sr: { scale: number };
  /**
   * The edge-field upsampler (model/upsampler.py, edge-field.ts): when present the decode runs it instead of
   * sr.onnx + final resize. `sub`: field cells per drawing pixel each way; `ramp`: edge width and `blend`: the
   * hand-over between cells, in output pixels (both 1 when absent).
   */
  upsampler?: { kind: 'edge-field'; file: string; sub: number; ramp?: number; blend?: number; step?: number; flatten?: FlattenOptions; smooth?: SmoothOptions };
  /** `edit_keep`: edits with one reference image keep the rest of it (edit-region.ts); absent: off. */
  sampler: ScheduleConfig & { steps: number; true_cfg_scale: number; negative_cfg_scale?: number; edit_keep?: EditKeepConfig };
  max_refs: number;
}

export function readManifest(modelDir: string): ModelManifest {
  const file = path.join(modelDir, 'manifest.json');
  let m: ModelManifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as ModelManifest;
  } catch (err) {
    throw new Error(`cannot read the builtin model's manifest ${file}: ${(err as Error).message}`);
  }
  const problems: string[] = [];
  if (!Array.isArray(m.text?.vocab) || !(m.text.max_tokens > 0)) problems.push('text.vocab / text.max_tokens');
  if (!(m.image?.patch > 0) || m.image.token_dim !== 3 * m.image.patch * m.image.patch) problems.push('image.patch / image.token_dim');
  if (!Array.isArray(m.image?.grids) || m.image.grids.length === 0) problems.push('image.grids');
  if (!(m.sr?.scale >= 1)) problems.push('sr.scale');
  if (!(m.sampler?.steps > 0)) problems.push('sampler.steps');
  const up = m.upsampler;
  const positive = (v: number | undefined) => v === undefined || v > 0;
  if (up !== undefined && (up.kind !== 'edge-field' || typeof up.file !== 'string' || !(up.sub >= 1) || !positive(up.ramp) || !positive(up.blend))) {
    problems.push('upsampler (kind "edge-field", file, sub ≥ 1, ramp > 0, blend > 0)');
  }
  const fl = up?.flatten;
  if (fl !== undefined && !(Number.isInteger(fl.radius) && fl.radius >= 1 && fl.radius <= 4 && fl.spatial_sigma > 0 && fl.range_sigma > 0)) {
    problems.push('upsampler.flatten (integer radius 1..4, spatial_sigma > 0, range_sigma > 0)');
  }
  const sm = up?.smooth;
  if (sm !== undefined && !(typeof sm.file === 'string' && sm.sigma > 0 && sm.sigma <= 4 && sm.radius > 0 && sm.radius <= 4 && sm.contrast_hi > sm.contrast_lo && sm.contrast_lo >= 0 && sm.ramp > 0)) {
    problems.push('upsampler.smooth (file; cells: 0 < sigma ≤ 4, 0 < radius ≤ 4; 0 ≤ contrast_lo < contrast_hi, ramp > 0)');
  }
  const k = m.sampler?.edit_keep;
  if (k !== undefined && !(k.share > 0 && k.share < 1 && k.hi > k.lo && k.grow >= 0 && k.global_share > 0 && k.global_share <= 1)) {
    problems.push('sampler.edit_keep (0 < share < 1, hi > lo, grow ≥ 0, 0 < global_share ≤ 1)');
  }
  if (problems.length) throw new Error(`manifest ${file} is missing or has invalid: ${problems.join(', ')}`);
  return m;
}
