/**
 * What "edits keep the rest" (manifest sampler.edit_keep, src/engines/builtin/edit-region.ts) costs: whole 1024×768
 * edits with one reference image through the builtin engine, with the bundled manifest and with a copy of it
 * without edit_keep, alternating. Prints median and spread per setting, and how many of the edits were masked.
 *   npx tsx bench/edit-keep.ts [--runs 10] [--threads 2] [--model-dir DIR]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBuiltinEngine } from '../src/engines/builtin/builtin-engine.ts';
import type { RawImage } from '../src/domain/types.ts';
import { opt } from './cli.ts';

const RUNS = Number(opt('runs', '10'));
const THREADS = Number(opt('threads', '2'));
const ROOT = path.resolve(import.meta.dirname, '..');
const MODEL_DIR = path.resolve(opt('model-dir', path.join(ROOT, 'model/weights')));
const W = 1024;
const H = 768;
const EDITS = ['remove the house', 'make the tree blue', 'add a yellow circle in the center', 'remove the sun', 'make it night'];

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;

async function main() {
  // the same model without edit_keep: a directory of links to the weights and an edited manifest
  const off = fs.mkdtempSync(path.join(os.tmpdir(), 'edit-keep-off-'));
  for (const f of fs.readdirSync(MODEL_DIR)) if (f !== 'manifest.json') fs.symlinkSync(path.join(MODEL_DIR, f), path.join(off, f));
  const manifest = JSON.parse(fs.readFileSync(path.join(MODEL_DIR, 'manifest.json'), 'utf8'));
  if (!manifest.sampler.edit_keep) throw new Error(`${MODEL_DIR}/manifest.json has no sampler.edit_keep`);
  delete manifest.sampler.edit_keep;
  fs.writeFileSync(path.join(off, 'manifest.json'), JSON.stringify(manifest));

  const on = createBuiltinEngine({ modelDir: MODEL_DIR, threads: THREADS });
  const plain = createBuiltinEngine({ modelDir: off, threads: THREADS });
  await Promise.all([on.load(), plain.load()]);
  const signal = new AbortController().signal;
  const base = { requestId: 'bench-edit-keep', model: 'alibaba/qwen-image-2-0', negativePrompt: '', width: W, height: H, seed: 1 };
  const src: RawImage = (await on.generate({ ...base, prompt: 'a red house on the left and a green tree on the right with the sun', referenceImages: [] }, signal)).image;
  const times = { on: [] as number[], off: [] as number[] };
  let masked = 0;
  for (let r = 0; r < RUNS; r++) {
    const prompt = EDITS[r % EDITS.length]!;
    for (const [name, engine] of [['on', on], ['off', plain]] as const) {
      const t0 = performance.now();
      await engine.generate({ ...base, seed: 100 + r, prompt, referenceImages: [src] }, signal);
      times[name].push(performance.now() - t0);
    }
    const { region } = await on.sampleTokens({ ...base, seed: 100 + r, prompt, referenceImages: [src] }, signal);
    if (region) masked++;
  }
  for (const name of ['on', 'off'] as const) {
    const xs = times[name];
    console.log(`edit_keep ${name.padEnd(3)}  1024x768 edit, one reference: median ${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}), ${xs.length} runs`);
  }
  console.log(`edits masked (local): ${masked}/${RUNS}; global edits (mask over half the picture) run as before`);
  await Promise.all([on.close(), plain.close()]);
  fs.rmSync(off, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
