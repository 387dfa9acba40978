/**
 * Edits keep the rest (model/CONTRACT.md "Edits"), through the API with the bundled model: an edit with one reference
 * leaves most of the picture exactly as the reference, and changes where the instruction points. The same edit on a
 * copy of the model whose manifest has no sampler.edit_keep (the decode as before) keeps almost nothing exactly.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { startTestServer, MODEL, REPO_ROOT, type TestServer } from '../helpers/server.ts';

const BUNDLED = path.join(REPO_ROOT, 'model/weights');
let keep: TestServer;
let plain: TestServer;
let offDir: string;

before(async () => {
  offDir = fs.mkdtempSync(path.join(os.tmpdir(), 'edit-keep-off-'));
  for (const f of fs.readdirSync(BUNDLED)) if (f !== 'manifest.json' && f !== 'torch') fs.symlinkSync(path.join(BUNDLED, f), path.join(offDir, f));
  const manifest = JSON.parse(fs.readFileSync(path.join(BUNDLED, 'manifest.json'), 'utf8'));
  assert.ok(manifest.sampler.edit_keep, 'the bundled manifest turns edit_keep on');
  delete manifest.sampler.edit_keep;
  fs.writeFileSync(path.join(offDir, 'manifest.json'), JSON.stringify(manifest));
  keep = await startTestServer({ BUILTIN_MODEL_DIR: BUNDLED, ORT_THREADS: '2' });
  plain = await startTestServer({ BUILTIN_MODEL_DIR: offDir, ORT_THREADS: '2' });
});
after(async () => {
  await keep?.close();
  await plain?.close();
  fs.rmSync(offDir, { recursive: true, force: true });
});

async function draw(server: TestServer, body: Record<string, unknown>): Promise<Buffer> {
  const res = await server.post('/v1/images/generations', {
    model: MODEL, image_size: 'landscape_4_3', enhance_prompt: false, watermark: false, response_format: 'b64_json', ...body,
  });
  assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
  return Buffer.from(res.json.data[0].b64_json, 'base64');
}

const raw = async (png: Buffer) => sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });

/** Share of pixels whose three channels all equal the reference's, and the mean |Δ| inside a box (x0, y0, x1, y1). */
async function compare(out: Buffer, ref: Buffer, box: [number, number, number, number]) {
  const a = await raw(out);
  const b = await raw(ref);
  assert.deepEqual([a.info.width, a.info.height], [b.info.width, b.info.height]);
  const w = a.info.width;
  const n = w * a.info.height;
  let same = 0;
  let boxDiff = 0;
  let boxN = 0;
  for (let p = 0; p < n; p++) {
    const i = p * 3;
    if (a.data[i] === b.data[i] && a.data[i + 1] === b.data[i + 1] && a.data[i + 2] === b.data[i + 2]) same++;
    const x = p % w;
    const y = Math.floor(p / w);
    if (x >= box[0] && x < box[2] && y >= box[1] && y < box[3]) {
      boxDiff += (Math.abs(a.data[i]! - b.data[i]!) + Math.abs(a.data[i + 1]! - b.data[i + 1]!) + Math.abs(a.data[i + 2]! - b.data[i + 2]!)) / 3;
      boxN++;
    }
  }
  return { same: same / n, boxDiff: boxDiff / boxN };
}

describe('edits keep the rest (bundled model)', () => {
  test('"remove the sun": the sun goes, and much of the picture (58% here) is the reference pixel for pixel', async () => {
    const source = await draw(keep, { prompt: 'a red house on the left and a green tree on the right during the day with the sun', seed: 3 });
    const dataUri = `data:image/png;base64,${source.toString('base64')}`;
    const edit = { prompt: 'remove the sun', seed: 5, image_urls: [dataUri] };
    const kept = await draw(keep, edit);
    const before = await draw(plain, edit);
    // the bundled model draws the sun in the top-right corner (model/scenes.py SUN_XY = 0.84, 0.17 of 1024×768)
    const sunBox: [number, number, number, number] = [800, 70, 920, 190];
    const k = await compare(kept, source, sunBox);
    const p = await compare(before, source, sunBox);
    assert.ok(k.same > 0.4, `with edit_keep ${(k.same * 100).toFixed(1)}% of the pixels are the reference's`);
    assert.ok(p.same < k.same / 2, `without it ${(p.same * 100).toFixed(1)}% are (with it ${(k.same * 100).toFixed(1)}%)`);
    assert.ok(k.boxDiff > 30, `where the sun was the picture changed (mean |Δ| ${k.boxDiff.toFixed(1)} levels)`);
  });

  test('a global edit ("make it night") is not masked: it changes the whole sky', async () => {
    const source = await draw(keep, { prompt: 'a blue square in the middle on grass during the day', seed: 8 });
    const kept = await draw(keep, { prompt: 'make it night', seed: 9, image_urls: [`data:image/png;base64,${source.toString('base64')}`] });
    const skyBox: [number, number, number, number] = [0, 0, 1024, 300];
    const k = await compare(kept, source, skyBox);
    assert.ok(k.boxDiff > 40, `the sky changed (mean |Δ| ${k.boxDiff.toFixed(1)} levels)`);
    assert.ok(k.same < 0.2, `${(k.same * 100).toFixed(1)}% of the pixels stayed the reference's`);
  });
});
