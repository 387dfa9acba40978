/**
 * How crisp the builtin engine's decode is, per method: the edge-field upsampler (src/engines/builtin/edge-field.ts)
 * and sr.onnx ×4 followed by each final resize (final-resize.ts). model/sharpness.py renders held-out scenes at the
 * model's resolution (56×40) and directly at 1024×768; each lo-res scene goes through the engine's own decode and is
 * scored against the direct render (sharpness ratio, PSNR, halo). Also times the whole decode per method and, with
 * --engine, whole 1024×768 generations with the first two methods.
 *   npx tsx bench/sharpness.ts [--n 12] [--runs 10] [--threads 2] [--methods edge-field,linear+snap] [--engine] [--model-dir DIR]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { createBuiltinEngine, type DecodeMethod } from '../src/engines/builtin/builtin-engine.ts';
import { FINAL_RESIZE_METHODS } from '../src/engines/builtin/final-resize.ts';
import { opt, flag } from './cli.ts';

const N = Number(opt('n', '12'));
const RUNS = Number(opt('runs', '10'));
const THREADS = Number(opt('threads', '2'));
const METHODS = opt('methods', ['edge-field', ...FINAL_RESIZE_METHODS].join(',')).split(',') as DecodeMethod[];
const ROOT = path.resolve(import.meta.dirname, '..');
const MODEL_DIR = path.resolve(opt('model-dir', path.join(ROOT, 'model/weights')));
const PY = '/usr/bin/python3';
const W = 1024;
const H = 768;

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;
const spread = (xs: number[]) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
const fileName = (m: string) => m.replace('+', '-');

async function readPlanar(file: string): Promise<{ planar: Float32Array; w: number; h: number }> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  const planar = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) planar[c * n + i] = data[i * 3 + c]! / 127.5 - 1;
  return { planar, w: info.width, h: info.height };
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sharpness-'));
  execFileSync(PY, [path.join(ROOT, 'model/sharpness.py'), '--make', dir, '--n', String(N)], { stdio: 'inherit' });
  const engine = createBuiltinEngine({ modelDir: MODEL_DIR, threads: THREADS });
  await engine.load();
  const resizeMs = new Map<string, number[]>(METHODS.map((m) => [m, []]));
  for (let i = 0; i < N; i++) {
    const lo = await readPlanar(path.join(dir, `lo_${i}.png`));
    for (const m of METHODS) {
      const img = await engine.decodeLowres(lo.planar, lo.w, lo.h, W, H, m);
      await sharp(img.data, { raw: { width: W, height: H, channels: 3 } }).png().toFile(path.join(dir, `${fileName(m)}_${i}.png`));
    }
  }
  // the whole decode (network + resize or field rendering) of one scene, RUNS times per method
  const lo0 = await readPlanar(path.join(dir, 'lo_0.png'));
  for (const m of METHODS) {
    await engine.decodeLowres(lo0.planar, lo0.w, lo0.h, W, H, m);
    for (let r = 0; r < RUNS; r++) {
      const t = performance.now();
      await engine.decodeLowres(lo0.planar, lo0.w, lo0.h, W, H, m);
      resizeMs.get(m)!.push(performance.now() - t);
    }
  }
  console.log(`\n${N} held-out scenes, 56×40 → decode → 1024×768; decode timed over ${RUNS} runs, ${THREADS} threads\n`);
  console.log('| decode | sharpness (aligned) | sharpness (alignment-free) | PSNR dB | halo (levels) | band > 8 levels | edge direction error | decode ms median (min–max) |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const m of METHODS) {
    const out = execFileSync(PY, [path.join(ROOT, 'model/sharpness.py'), '--score', dir, '--name', fileName(m)], { encoding: 'utf8' });
    const f = JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
    const ms = resizeMs.get(m)!;
    console.log(`| ${m} | ${f.sharp!.toFixed(3)} | ${f.sharp_top!.toFixed(3)} | ${f.psnr!.toFixed(2)} | ${f.halo!.toFixed(2)} | ${(f.halo_frac! * 100).toFixed(2)}% | ${f.direction!.toFixed(1)}° | ${median(ms).toFixed(1)} (${spread(ms)}) |`);
  }
  await engine.close();

  if (flag('engine')) {
    // whole generations (20 steps, guidance, decode) with each of the first two methods
    const prompt = 'a red house on the left and a green tree on the right at sunset';
    for (const m of METHODS.slice(0, 2)) {
      const e = createBuiltinEngine({ modelDir: MODEL_DIR, threads: THREADS, decode: m });
      await e.load();
      const once = (seed: number) =>
        e.generate({ requestId: 'bench', model: 'alibaba/qwen-image-2-0', prompt, negativePrompt: '', width: W, height: H, seed, referenceImages: [] }, new AbortController().signal);
      await once(0);
      const ms: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const t = performance.now();
        await once(r + 1);
        ms.push(performance.now() - t);
      }
      await e.close();
      console.log(`engine 1024×768 with ${m}: median ${median(ms).toFixed(0)} ms (${spread(ms)}) over ${RUNS} runs`);
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
