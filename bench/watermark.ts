/**
 * Invisible-watermark benchmark: robustness, imperceptibility, speed and false positives.
 *   npx tsx bench/watermark.ts                 # 50 images, 1000 false-positive trials
 *   npx tsx bench/watermark.ts --images 8 --fp 100   # quick run
 *   npx tsx bench/watermark.ts --write-docs    # also replace the results block in docs/watermark.md
 * Images are procedural 1024×768 photo-like scenes (src/images/watermark/synthetic-images.ts);
 * attacks are applied with sharp (src/images/watermark/testing/attacks.ts).
 */
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import sharp from 'sharp';
import type { RawImage } from '../src/domain/types.ts';
import { createWatermarker, payloadBits, PAYLOAD_BITS, type WatermarkPayload } from '../src/images/watermark/index.ts';
import { createRandom } from '../src/images/watermark/prng.ts';
import { syntheticSet } from '../src/images/watermark/synthetic-images.ts';
import { crop, jpeg, psnr, rescale, standardAttacks } from '../src/images/watermark/testing/attacks.ts';

interface Options {
  images: number;
  /** Extra images drawn by the bundled model (model/weights) through the builtin engine. */
  modelImages: number;
  falsePositiveTrials: number;
  writeDocs: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { images: 50, modelImages: 12, falsePositiveTrials: 1000, writeDocs: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--images') options.images = Number(argv[++i]);
    else if (arg === '--fp') options.falsePositiveTrials = Number(argv[++i]);
    else if (arg === '--model-images') options.modelImages = Number(argv[++i]);
    else if (arg === '--write-docs') options.writeDocs = true;
    else throw new Error(`unknown argument ${arg} (use --images N, --model-images N, --fp N, --write-docs)`);
  }
  if (!(options.images >= 1) || !(options.falsePositiveTrials >= 0)) throw new Error('--images must be ≥ 1 and --fp ≥ 0');
  return options;
}

function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function bitAccuracy(bits: Uint8Array | null, truth: Uint8Array): number {
  if (!bits) return 0.5; // nothing decoded: as good as guessing
  let same = 0;
  for (let i = 0; i < PAYLOAD_BITS; i++) same += bits[i] === truth[i] ? 1 : 0;
  return same / PAYLOAD_BITS;
}

function samePayload(a: WatermarkPayload | null, b: WatermarkPayload): boolean {
  return a !== null && a.issuerId === b.issuerId && a.generationId === b.generationId;
}

interface Row {
  attack: string;
  accuracy: number[];
  detected: number;
  wrongPayload: number;
  detectMs: number[];
  /** kind#seed of the images not detected. */
  misses: string[];
}

/** 1024×768 pictures from the bundled model, varied prompts and seeds (what the server actually marks). */
async function modelImages(count: number): Promise<Array<{ kind: string; seed: number; image: RawImage }>> {
  if (count <= 0) return [];
  const { createBuiltinEngine } = await import('../src/engines/builtin/builtin-engine.ts');
  const engine = createBuiltinEngine({ modelDir: new URL('../model/weights', import.meta.url).pathname, threads: 2 });
  await engine.load();
  const prompts = [
    'a red house on the left and a green tree on the right at sunset',
    'a blue circle in the centre on snow at night with stars',
    'a yellow triangle on the right in the desert during the day',
    'a brown mountain in the centre over the sea at sunset with clouds',
    'a white square on the left on grass, day',
    'a purple house in the centre in the snow at night with a moon',
  ];
  const out: Array<{ kind: string; seed: number; image: RawImage }> = [];
  for (let i = 0; i < count; i++) {
    const request = { requestId: 'bench', model: 'alibaba/qwen-image-2-0', prompt: prompts[i % prompts.length]!, negativePrompt: '', width: 1024, height: 768, seed: 1000 + i, referenceImages: [] };
    out.push({ kind: 'bundled-model', seed: request.seed, image: (await engine.generate(request, new AbortController().signal)).image });
  }
  await engine.close();
  return out;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const watermarker = createWatermarker();
  const otherKey = createWatermarker({ key: 'some-other-deployment' });
  const random = createRandom(20240611);
  const attacks = standardAttacks();
  const rows: Row[] = attacks.map((a) => ({ attack: a.name, accuracy: [], detected: 0, wrongPayload: 0, detectMs: [], misses: [] }));
  const psnrs: number[] = [];
  const embedMs: number[] = [];
  const unmarked: RawImage[] = [];
  let otherKeyDetections = 0;

  process.stderr.write(`generating ${options.images} images…\n`);
  const set: Array<{ kind: string; seed: number; image: RawImage }> = [...syntheticSet(options.images), ...(await modelImages(options.modelImages))];
  for (const [index, { kind, seed, image }] of set.entries()) {
    const payload = { issuerId: Math.floor(random() * 65536), generationId: Math.floor(random() * 2 ** 32) };
    const truth = payloadBits(payload);
    const started = performance.now();
    const marked = watermarker.embed(image, payload);
    embedMs.push(performance.now() - started);
    psnrs.push(psnr(image, marked));
    unmarked.push(image);
    if (otherKey.detect(marked).detected) otherKeyDetections++;
    for (const [k, attack] of attacks.entries()) {
      const attacked = await attack.apply(marked);
      const t = performance.now();
      const analysis = watermarker.analyze(attacked);
      rows[k]!.detectMs.push(performance.now() - t);
      rows[k]!.accuracy.push(bitAccuracy(analysis.payloadBits, truth));
      if (analysis.detection.detected) {
        if (samePayload(analysis.detection.payload, payload)) rows[k]!.detected++;
        else rows[k]!.wrongPayload++;
      } else {
        rows[k]!.misses.push(`${kind}#${seed} (z ${analysis.syncZ.toFixed(1)})`);
      }
    }
    process.stderr.write(`  ${index + 1}/${set.length} ${kind}\n`);
  }

  // Speed on its own: the loop above interleaves libvips threads (attacks) with our code, so embed and
  // detect are timed again here, back to back after warm-up, 3 times per image.
  const quietEmbedMs: number[] = [];
  const quietDetectMs: number[] = [];
  for (const { image } of set.slice(0, 20)) {
    const payload = { issuerId: 1, generationId: 2 };
    let marked = watermarker.embed(image, payload);
    watermarker.detect(marked);
    for (let r = 0; r < 3; r++) {
      let t = performance.now();
      marked = watermarker.embed(image, payload);
      quietEmbedMs.push(performance.now() - t);
      t = performance.now();
      watermarker.detect(marked);
      quietDetectMs.push(performance.now() - t);
    }
  }

  // False positives: unmarked images, random crops (35–100 % of each side), rescales and re-encodes.
  process.stderr.write(`false-positive trials: ${options.falsePositiveTrials}…\n`);
  let falsePositives = 0;
  const nullZ: number[] = [];
  const nullMs: number[] = [];
  for (let trial = 0; trial < options.falsePositiveTrials; trial++) {
    const base = unmarked[trial % unmarked.length]!;
    let image = base;
    const op = trial % 4;
    if (op === 1 || op === 3) {
      const w = Math.round(base.width * (0.35 + 0.65 * random()));
      const h = Math.round(base.height * (0.35 + 0.65 * random()));
      image = await crop(base, Math.floor(random() * (base.width - w + 1)), Math.floor(random() * (base.height - h + 1)), w, h);
    }
    if (op === 2) image = await rescale(base, 0.3 + 0.7 * random());
    if (op === 3) image = await jpeg(image, 50 + Math.floor(random() * 45));
    const t = performance.now();
    const analysis = watermarker.analyze(image);
    nullMs.push(performance.now() - t);
    nullZ.push(analysis.syncZ);
    if (analysis.detection.detected) falsePositives++;
  }

  const fmt = (v: number, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
  const lines: string[] = [];
  lines.push(`Images: ${options.images} procedural 1024×768 and ${options.modelImages} from the bundled model (${[...new Set(set.map((s) => s.kind))].join(', ')}); payload 48 bits random per image.`);
  lines.push(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, sharp ${sharp.versions.sharp}; shared with other work, so timings are noisy.`);
  lines.push('');
  lines.push('| attack | bit accuracy (mean) | bit accuracy (min) | detected, right payload | wrong payload | detect ms (median / p95) |');
  lines.push('|---|---|---|---|---|---|');
  for (const row of rows) {
    const mean = row.accuracy.reduce((a, b) => a + b, 0) / row.accuracy.length;
    lines.push(
      `| ${row.attack} | ${fmt(mean)} | ${fmt(Math.min(...row.accuracy))} | ${row.detected}/${row.accuracy.length} (${fmt(row.detected / row.accuracy.length, 2)}) | ${row.wrongPayload} | ${fmt(quantile(row.detectMs, 0.5), 1)} / ${fmt(quantile(row.detectMs, 0.95), 1)} |`,
    );
  }
  const missed = rows.filter((row) => row.misses.length > 0);
  if (missed.length > 0) {
    lines.push('');
    lines.push('Not detected (synthetic kind#seed, best pilot z):');
    for (const row of missed) lines.push(`- ${row.attack}: ${row.misses.join(', ')}`);
  }
  lines.push('');
  lines.push('| measure | value |');
  lines.push('|---|---|');
  lines.push(`| PSNR marked vs unmarked (dB): min / median / max | ${fmt(Math.min(...psnrs), 2)} / ${fmt(quantile(psnrs, 0.5), 2)} / ${fmt(Math.max(...psnrs), 2)} |`);
  lines.push(`| embed ms at 1024×768, timed alone: median / p95 | ${fmt(quantile(quietEmbedMs, 0.5), 1)} / ${fmt(quantile(quietEmbedMs, 0.95), 1)} |`);
  lines.push(`| detect ms at 1024×768 (marked, no attack), timed alone: median / p95 | ${fmt(quantile(quietDetectMs, 0.5), 1)} / ${fmt(quantile(quietDetectMs, 0.95), 1)} |`);
  lines.push(`| embed ms inside the attack loop (first calls, JIT warm-up, libvips threads): median / p95 | ${fmt(quantile(embedMs, 0.5), 1)} / ${fmt(quantile(embedMs, 0.95), 1)} |`);
  lines.push(`| detect ms on unmarked (full search): median / p95 | ${fmt(quantile(nullMs, 0.5), 1)} / ${fmt(quantile(nullMs, 0.95), 1)} |`);
  lines.push(`| false positives on unmarked images, crops, rescales, re-encodes | ${falsePositives}/${options.falsePositiveTrials} (${fmt((100 * falsePositives) / Math.max(1, options.falsePositiveTrials), 2)} %) |`);
  lines.push(`| pilot z on unmarked: median / p99 / max (threshold 5 plus CRC-16) | ${fmt(quantile(nullZ, 0.5), 2)} / ${fmt(quantile(nullZ, 0.99), 2)} / ${fmt(Math.max(...nullZ), 2)} |`);
  lines.push(`| marked images detected by a watermarker with another key | ${otherKeyDetections}/${options.images} |`);
  const table = lines.join('\n');
  process.stdout.write(table + '\n');

  if (options.writeDocs) {
    const docsPath = new URL('../docs/watermark.md', import.meta.url);
    const docs = await readFile(docsPath, 'utf8');
    const start = '<!-- bench:start -->';
    const end = '<!-- bench:end -->';
    const a = docs.indexOf(start);
    const b = docs.indexOf(end);
    if (a < 0 || b < a) throw new Error('docs/watermark.md has no <!-- bench:start --> … <!-- bench:end --> block');
    const stamp = `Run: \`npx tsx bench/watermark.ts --images ${options.images} --fp ${options.falsePositiveTrials}\`, ${new Date().toISOString().slice(0, 10)}.`;
    await writeFile(docsPath, `${docs.slice(0, a + start.length)}\n${stamp}\n\n${table}\n${docs.slice(b)}`);
    process.stderr.write('updated docs/watermark.md\n');
  }
}

await main();
