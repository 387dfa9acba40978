/**
 * The ONNX models run from Node agree with PyTorch (fixtures written by model/make_parity.py), and the
 * TypeScript tokenizer, sampler schedule, noise and grid choice agree with the Python ones.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { createTokenizer } from './tokenizer.ts';
import { computeSigmas } from './sampler.ts';
import { fillStandardNormal } from './prng.ts';
import { chooseGrid } from './patches.ts';
import { readManifest } from './manifest.ts';
import { createBuiltinEngine } from './builtin-engine.ts';
import { flattenDrawing, renderEdgeField, SMOOTH_RADII, SMOOTH_TAPS, smoothInputImage, smoothInputs, smoothOutputImage, smoothPixels } from './edge-field.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const FIXTURES = path.join(ROOT, 'test/fixtures/parity');
type Tensor = { dims: number[]; data: number[] };
const common = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'common.json'), 'utf8'));

/** 8-bit images that should agree: every value within 1 level, at least 99.9% of them exactly. */
function assertLevelsMatch(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string): void {
  assert.equal(actual.length, expected.length, label);
  let worst = 0;
  let exact = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    worst = Math.max(worst, d);
    if (d === 0) exact++;
  }
  assert.ok(worst <= 1, `${label}: worst ${worst} levels`);
  assert.ok(exact / expected.length >= 0.999, `${label}: ${exact}/${expected.length} exact`);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'same length');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(Number(a[i]) - Number(b[i])));
  return m;
}

const f32 = (t: Tensor) => new ort.Tensor('float32', Float32Array.from(t.data), t.dims);

describe('model-independent parity (common.json)', () => {
  const vocab = readManifest(path.join(ROOT, 'test/fixtures/tiny-model')).text.vocab;
  test('tokenizer ids match Python for every case', () => {
    for (const c of common.tokenizer) {
      const ids = Array.from(createTokenizer(vocab, c.max_tokens)(c.text).ids, Number);
      assert.deepEqual(ids, c.ids, c.text);
    }
  });
  test('sigma schedules match Python to 1e-12', () => {
    for (const c of common.sigmas) assert.ok(maxAbsDiff(computeSigmas(c.steps, c.N), c.sigmas) < 1e-12, `steps ${c.steps} N ${c.N}`);
  });
  test('seeded noise matches Python', () => {
    for (const c of common.noise) assert.ok(maxAbsDiff(fillStandardNormal(new Float32Array(16), c.seed), c.first16) < 1e-6, `seed ${c.seed}`);
  });
  test('grid choice matches Python', () => {
    const grids = readManifest(path.join(ROOT, 'model/weights')).image.grids;
    for (const c of common.grid_choice) assert.deepEqual(chooseGrid(c.width, c.height, grids), c.grid, `${c.width}x${c.height}`);
  });
});

for (const which of ['tiny', 'bundled']) {
  const file = path.join(FIXTURES, `${which}.json`);
  if (!fs.existsSync(file)) continue;
  const fx = JSON.parse(fs.readFileSync(file, 'utf8'));
  const dir = path.join(ROOT, fx.model);
  describe(`${which} model: ONNX from Node vs PyTorch`, () => {
    const session = (name: string) => ort.InferenceSession.create(path.join(dir, name), { intraOpNumThreads: 1 });
    test('text encoder within 1e-4', async () => {
      const s = await session('text_encoder.onnx');
      const c = fx.text_encoder[0];
      const out = await s.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(c.input_ids.data.map(BigInt)), c.input_ids.dims) });
      assert.ok(maxAbsDiff(out.text_states!.data as Float32Array, c.text_states.data) < 1e-4);
    });
    test('denoiser velocity within 1e-4 (no refs, 1, 2 and 3 refs)', async () => {
      const s = await session('denoiser.onnx');
      for (const c of fx.denoiser) {
        const out = await s.run({ img: f32(c.img), sigma: f32(c.sigma), text: f32(c.text), text_mask: f32(c.text_mask), ref: f32(c.ref), ref_mask: f32(c.ref_mask), pos: f32(c.pos) });
        const d = maxAbsDiff(out.velocity!.data as Float32Array, c.velocity.data);
        assert.ok(d < 1e-4, `grid ${c.grid} refs ${c.n_refs}: max |Δ| = ${d}`);
      }
    });
    test('super-resolution within 1e-4', async () => {
      const s = await session('sr.onnx');
      for (const c of fx.sr) {
        const out = await s.run({ lowres: f32(c.lowres) });
        assert.ok(maxAbsDiff(out.highres!.data as Float32Array, c.highres.data) < 1e-4);
      }
    });
    test('whole TypeScript sampler matches the Python sampler (final latent within 1e-3)', async () => {
      const engine = createBuiltinEngine({ modelDir: dir, threads: 1 });
      await engine.load();
      try {
        for (const c of fx.sampler) {
          const out = await engine.sampleTokens(
            { prompt: c.prompt, negativePrompt: c.negative_prompt, width: c.width, height: c.height, seed: c.seed, referenceImages: [] },
            new AbortController().signal,
            undefined,
            c.steps,
          );
          assert.deepEqual([out.rows, out.cols], c.grid);
          const d = maxAbsDiff(out.tokens, c.final_tokens.data);
          assert.ok(d < 1e-3, `${c.prompt}: max |Δ| = ${d}`);
        }
      } finally {
        await engine.close();
      }
    });
  });
}

const upsamplerFixture = path.join(FIXTURES, 'upsampler.json');
if (fs.existsSync(upsamplerFixture)) {
  const fx = JSON.parse(fs.readFileSync(upsamplerFixture, 'utf8'));
  describe('edge-field upsampler: ONNX from Node and the TypeScript renderer vs PyTorch (upsampler.json)', () => {
    test('upsampler.onnx field within 1e-4', async () => {
      const manifest = readManifest(path.join(ROOT, fx.model));
      assert.ok(manifest.upsampler, 'the bundled manifest names its upsampler');
      const s = await ort.InferenceSession.create(path.join(ROOT, fx.model, manifest.upsampler.file), { intraOpNumThreads: 1 });
      for (const c of fx.cases) {
        const out = await s.run({ lowres: f32(c.lowres) });
        assert.deepEqual(out.field!.dims, c.field.dims);
        const d = maxAbsDiff(out.field!.data as Float32Array, c.field.data);
        assert.ok(d < 1e-4, `lowres ${c.lowres.dims.join('×')}: max |Δ| = ${d}`);
      }
    });
    test('the engine decodes with the field and loads sr.onnx only when a resize decode is asked for', async () => {
      const engine = createBuiltinEngine({ modelDir: path.join(ROOT, fx.model), threads: 1 });
      await engine.load();
      try {
        assert.equal(engine.decodeMethod, 'edge-field');
        assert.equal(engine.srLoaded, false);
        const c = fx.cases[0];
        const [, , h, w] = c.lowres.dims as number[];
        const planar = Float32Array.from(c.lowres.data);
        const field = await engine.decodeLowres(planar, w, h, c.width, c.height);
        assert.equal(engine.srLoaded, false);
        assert.equal(field.width, c.width);
        const resized = await engine.decodeLowres(planar, w, h, c.width, c.height, 'lanczos3');
        assert.equal(engine.srLoaded, true);
        assert.deepEqual([resized.width, resized.height], [c.width, c.height]);
      } finally {
        await engine.close();
      }
    });
    test('flattenDrawing smooths the drawing as upsampler.py flatten does (within 1e-5), with the manifest\'s settings', () => {
      const manifest = readManifest(path.join(ROOT, fx.model));
      assert.deepEqual(manifest.upsampler?.flatten, fx.flatten.params, 'the fixture was made with the shipped settings');
      const [, , h, w] = fx.flatten.lowres.dims as number[];
      const flat = flattenDrawing(Float32Array.from(fx.flatten.lowres.data), w, h, fx.flatten.params);
      const d = maxAbsDiff(flat, fx.flatten.flat);
      assert.ok(d < 1e-5, `max |Δ| = ${d}`);
      assert.ok(maxAbsDiff(flat, fx.flatten.lowres.data) > 0.01, 'the noisy drawing was smoothed');
    });
    test('renderEdgeField draws the PyTorch field as render_field does (every value within 1 level, 99.9% exact)', () => {
      for (const c of fx.cases) {
        const [, , gh, gw] = c.field.dims as number[];
        const img = renderEdgeField(Float32Array.from(c.field.data), gw, gh, c.width, c.height);
        assertLevelsMatch(img.data, c.rgb, `${c.width}×${c.height}`);
      }
    });
    test('smooth.onnx smooths the drawn image as model/smooth.py smooth_edges does (within 1 level, 99.9% exact), with the manifest\'s settings', async () => {
      const manifest = readManifest(path.join(ROOT, fx.model));
      const { file, ...params } = manifest.upsampler?.smooth ?? { file: '' };
      assert.equal(file, 'smooth.onnx');
      assert.deepEqual(params, fx.smooth.params, 'the fixture was made with the shipped settings');
      const s = await ort.InferenceSession.create(path.join(ROOT, fx.model, file), { intraOpNumThreads: 1 });
      assert.deepEqual(fx.smooth.cases.map((c: { radius_px: number }) => c.radius_px), [1, 2], 'both window radii are exercised');
      for (const c of fx.smooth.cases) {
        const [gw, gh] = c.field as number[];
        const px = smoothPixels(manifest.upsampler!.smooth!, gw, gh, c.width, c.height);
        assert.deepEqual(px, { sigma: c.sigma_px, radius: c.radius_px });
        const small = smoothInputs(manifest.upsampler!.smooth!, px.sigma, px.radius);
        const x = smoothInputImage({ width: c.width, height: c.height, data: Uint8Array.from(c.rgb as number[]) });
        const out = await s.run({
          x: new ort.Tensor('float32', x.x, [1, 3, x.height, x.width]),
          taps: new ort.Tensor('float32', small.taps, [SMOOTH_TAPS]),
          rsel: new ort.Tensor('float32', small.rsel, [SMOOTH_RADII]),
          params: new ort.Tensor('float32', small.params, [3]),
        });
        const img = smoothOutputImage(out.levels!.data as Float32Array, x.width, x.height, c.width, c.height);
        assertLevelsMatch(img.data, c.smoothed, `${c.width}×${c.height}`);
        const changed = (c.smoothed as number[]).filter((v, i) => v !== c.rgb[i]).length;
        assert.ok(changed > c.smoothed.length / 20, `the smoothing changed ${changed} values`);
      }
    });
  });
}

const editFixture = path.join(FIXTURES, 'edit_keep.json');
if (fs.existsSync(editFixture)) {
  const fx = JSON.parse(fs.readFileSync(editFixture, 'utf8'));
  describe('edits keep the rest: the TypeScript sampler vs the Python sampler on one edit (edit_keep.json)', () => {
    test('same edit_keep settings, same edit region and final latent', async () => {
      const dir = path.join(ROOT, fx.model);
      assert.deepEqual(readManifest(dir).sampler.edit_keep, fx.edit_keep, 'the fixture was written with the manifest\'s edit_keep');
      const engine = createBuiltinEngine({ modelDir: dir, threads: 1 });
      await engine.load();
      try {
        const ref = { width: fx.ref.width, height: fx.ref.height, data: Uint8Array.from(fx.ref.data as number[]) };
        const out = await engine.sampleTokens(
          { prompt: fx.prompt, negativePrompt: '', width: fx.width, height: fx.height, seed: fx.seed, referenceImages: [ref] },
          new AbortController().signal,
          undefined,
          fx.steps,
        );
        assert.deepEqual([out.rows, out.cols], fx.grid);
        assert.ok(out.region, 'the edit is local on both sides');
        const region = fx.region.data as number[];
        const dm = maxAbsDiff(out.region, region);
        assert.ok(dm < 1e-3, `region max |Δ| = ${dm}`);
        // the mask really splits the picture: some pixels stay the source's, some are the edit's
        assert.ok(region.some((v) => v === 0) && region.some((v) => v === 1));
        const d = maxAbsDiff(out.tokens, fx.final_tokens.data);
        assert.ok(d < 1e-3, `final latent max |Δ| = ${d}`);
      } finally {
        await engine.close();
      }
    });
  });
}
