/**
 * npm run bench:engine — the same weights, prompt and seeds through the Node engine (ONNX Runtime +
 * the TypeScript sampler) and through the PyTorch eager sampler (model/bench_torch.py), 1024×768,
 * 20 steps, true CFG with a negative prompt, super-resolution and PNG encode included on both sides.
 * Prints images per second for each and their ratio.
 *   npx tsx bench/engine-vs-torch.ts [--runs 10] [--threads 2]
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import sharp from 'sharp';
import { createBuiltinEngine } from '../src/engines/builtin/builtin-engine.ts';
import { opt } from './cli.ts';

const RUNS = Number(opt('runs', '10'));
const THREADS = Number(opt('threads', '2'));
const ROOT = path.resolve(import.meta.dirname, '..');
const PROMPT = 'a red house on the left and a green tree on the right at sunset';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const engine = createBuiltinEngine({ modelDir: path.join(ROOT, 'model/weights'), threads: THREADS });
  await engine.load();
  const once = async (seed: number) => {
    const r = await engine.generate(
      { requestId: 'bench', model: 'alibaba/qwen-image-2-0', prompt: PROMPT, negativePrompt: 'a tree', width: 1024, height: 768, seed, referenceImages: [] },
      new AbortController().signal,
    );
    await sharp(r.image.data, { raw: { width: 1024, height: 768, channels: 3 } }).png().toBuffer();
  };
  await once(0);
  const nodeMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await once(i + 1);
    nodeMs.push(performance.now() - t);
  }
  await engine.close();
  const nodeIps = 1000 / (nodeMs.reduce((a, b) => a + b, 0) / nodeMs.length);

  const out = execFileSync('/usr/bin/python3', [path.join(ROOT, 'model/bench_torch.py'), '--runs', String(RUNS), '--ckpt', path.join(ROOT, 'model/weights/torch/ckpt.pt'), '--sr-ckpt', path.join(ROOT, 'model/weights/torch/sr.pt')], {
    env: { ...process.env, TORCH_THREADS: String(THREADS), OPENBLAS_NUM_THREADS: String(THREADS) },
    encoding: 'utf8',
  });
  const torch = JSON.parse(out.trim().split('\n').pop()!) as { images_per_sec: number; median_ms: number };

  console.log(`1024x768, 20 steps, true CFG, SR + PNG, ${RUNS} runs, ${THREADS} threads`);
  console.log(`node (onnxruntime-node): median ${median(nodeMs).toFixed(1)} ms, ${nodeIps.toFixed(3)} images/s (min ${Math.min(...nodeMs).toFixed(0)}, max ${Math.max(...nodeMs).toFixed(0)})`);
  console.log(`pytorch eager:           median ${torch.median_ms.toFixed(1)} ms, ${torch.images_per_sec.toFixed(3)} images/s`);
  console.log(`ratio node/pytorch: ${(nodeIps / torch.images_per_sec).toFixed(2)}x (goal ≥ 2x)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
