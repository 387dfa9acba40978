/**
 * The invisible watermark through each output_format, encoded exactly as the server encodes a
 * result (src/images/encode-output.ts, metadata included) and decoded again with sharp:
 *   npx tsx bench/watermark-formats.ts                  # 24 procedural + 6 bundled-model images
 *   npx tsx bench/watermark-formats.ts --images 8 --model-images 0
 * Prints a Markdown table (bit accuracy over the 48 payload bits, detections with the right payload,
 * file size) for docs/watermark.md.
 */
import type { RawImage } from '../src/domain/types.ts';
import { createWatermarker, payloadBits, PAYLOAD_BITS } from '../src/images/watermark/index.ts';
import { createRandom } from '../src/images/watermark/prng.ts';
import { syntheticSet } from '../src/images/watermark/synthetic-images.ts';
import { decodeToRaw } from '../src/images/watermark/testing/attacks.ts';
import { encodeOutput, type OutputOptions } from '../src/images/encode-output.ts';

function parseArgs(argv: string[]): { images: number; modelImages: number } {
  const options = { images: 24, modelImages: 6 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--images') options.images = Number(argv[++i]);
    else if (argv[i] === '--model-images') options.modelImages = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]} (use --images N, --model-images N)`);
  }
  return options;
}

async function modelImages(count: number): Promise<RawImage[]> {
  if (count <= 0) return [];
  const { createBuiltinEngine } = await import('../src/engines/builtin/builtin-engine.ts');
  const engine = createBuiltinEngine({ modelDir: new URL('../model/weights', import.meta.url).pathname, threads: 2 });
  await engine.load();
  const prompts = ['a red house on the left and a green tree on the right at sunset', 'a blue circle in the centre on snow at night with stars', 'a brown mountain over the sea at sunset with clouds'];
  const out: RawImage[] = [];
  for (let i = 0; i < count; i++) {
    const request = { requestId: 'bench', model: 'alibaba/qwen-image-2-0', prompt: prompts[i % prompts.length]!, negativePrompt: '', width: 1024, height: 768, seed: 2000 + i, referenceImages: [] };
    out.push((await engine.generate(request, new AbortController().signal)).image);
  }
  await engine.close();
  return out;
}

const FORMATS: Array<[string, OutputOptions]> = [
  ['png', { format: 'png' }],
  ['jpeg (output_compression 100, the default)', { format: 'jpeg' }],
  ['jpeg 75', { format: 'jpeg', compression: 75 }],
  ['jpeg 50', { format: 'jpeg', compression: 50 }],
  ['jpeg 20', { format: 'jpeg', compression: 20 }],
  ['webp (output_compression 100, the default)', { format: 'webp' }],
  ['webp 75', { format: 'webp', compression: 75 }],
  ['webp 50', { format: 'webp', compression: 50 }],
  ['webp 20', { format: 'webp', compression: 20 }],
];

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const watermarker = createWatermarker();
  const random = createRandom(20261124);
  const images = [...syntheticSet(options.images).map((s) => s.image), ...(await modelImages(options.modelImages))];
  const rows = FORMATS.map(([name]) => ({ name, accuracy: [] as number[], detected: 0, bytes: [] as number[] }));
  const facts = { software: 'bench', model: 'alibaba/qwen-image-2-0', prompt: 'bench', negativePrompt: '', seed: 0, width: 1024, height: 768, engine: 'bench', watermarked: true };
  for (const image of images) {
    const payload = { issuerId: Math.floor(random() * 65536), generationId: Math.floor(random() * 2 ** 32) >>> 0 };
    const truth = payloadBits(payload);
    const marked = watermarker.embed(image, payload);
    for (const [k, [, opts]] of FORMATS.entries()) {
      const file = await encodeOutput(marked, { ...facts, width: image.width, height: image.height }, opts);
      const analysis = watermarker.analyze(await decodeToRaw(file.data));
      const bits = analysis.payloadBits;
      let same = 0;
      for (let i = 0; i < PAYLOAD_BITS; i++) same += bits && bits[i] === truth[i] ? 1 : bits ? 0 : 0.5;
      rows[k]!.accuracy.push(same / PAYLOAD_BITS);
      const p = analysis.detection.payload;
      if (analysis.detection.detected && p && p.issuerId === payload.issuerId && p.generationId === payload.generationId) rows[k]!.detected++;
      rows[k]!.bytes.push(file.data.length);
    }
  }
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  console.log(`Images: ${options.images} procedural 1024×768 and ${options.modelImages} from the bundled model; random 48-bit payload each.\n`);
  console.log('| output_format | bit accuracy (mean) | bit accuracy (min) | detected, right payload | file size (mean) |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${mean(r.accuracy).toFixed(3)} | ${Math.min(...r.accuracy).toFixed(3)} | ${r.detected}/${images.length} | ${Math.round(mean(r.bytes) / 1024)} KiB |`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
