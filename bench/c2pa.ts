/**
 * Cost of content credentials per image at 1024×768: signing (median, p95), the bytes the manifest adds, and
 * where the signing time goes; reading back for comparison.
 *   npm run bench:c2pa                  # 8 photo-like images × 25 rounds
 *   npm run bench:c2pa -- --rounds 5    # quick run
 * Images: the watermark benchmark's procedural scenes, marked and encoded exactly as the server does (PNG level 3,
 * the same text chunks), so the PNG sizes are the ones the server hashes. A fresh development certificate.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { encodeOutput } from '../src/images/encode-output.ts';
import { encodePng } from '../src/images/png.ts';
import { createWatermarker } from '../src/images/watermark/index.ts';
import { syntheticSet } from '../src/images/watermark/synthetic-images.ts';
import { createContentCredentialsSigner, createDevCertificateChain, createManifestReader, type GenerationFacts } from '../src/provenance/index.ts';

function parseArgs(argv: string[]): { rounds: number; images: number } {
  const o = { rounds: 25, images: 8 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--rounds') o.rounds = Number(argv[++i]);
    else if (argv[i] === '--images') o.images = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]} (use --rounds N, --images N)`);
  }
  return o;
}

const quantile = (values: number[], q: number): number => {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
};
const ms = (v: number) => `${v.toFixed(2)} ms`;
function timeIt(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}
async function timeAsync(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const options = parseArgs(process.argv.slice(2));
const chain = createDevCertificateChain();
const software = { name: 'qwen-image-server', version: 'bench' };
const signer = await createContentCredentialsSigner({ certPem: chain.certPem, keyPem: chain.keyPem, software, includePrompt: false, thumbnail: false });
const withThumbnail = await createContentCredentialsSigner({ certPem: chain.certPem, keyPem: chain.keyPem, software, includePrompt: false, thumbnail: true });
const read = createManifestReader({ trustAnchorsPem: chain.caPem });
const watermarker = createWatermarker();

const pngs: Buffer[] = [];
for (const [i, { image }] of syntheticSet(options.images).entries()) {
  const marked = watermarker.embed(image, { issuerId: 1, generationId: i });
  // Encoded as the server encodes a PNG result: its text chunks and XMP packet included.
  const facts = {
    software: 'qwen-image-server bench',
    model: 'alibaba/qwen-image-2-0',
    prompt: 'a red house on the left and a green tree on the right at sunset',
    negativePrompt: '',
    seed: i,
    width: marked.width,
    height: marked.height,
    engine: 'builtin',
    watermarked: true,
  };
  pngs.push((await encodeOutput(marked, facts, { format: 'png' })).data);
}
const facts = (i: number): GenerationFacts => ({
  model: 'alibaba/qwen-image-2-0',
  engine: 'builtin',
  prompt: 'a red house on the left and a green tree on the right at sunset',
  drawnPrompt: 'a red house on the left and a green tree on the right at sunset',
  createdAtMs: Date.now(),
  watermark: { issuerId: 1, generationId: i },
});

// Warm-up: the first call loads c2pa-rs state.
for (let i = 0; i < pngs.length; i++) await signer.sign(pngs[i]!, 'image/png', facts(i));

const signMs: number[] = [];
const addedBytes: number[] = [];
const hashMs: number[] = [];
const es256Ms: number[] = [];
const copyMs: number[] = [];
const key = crypto.createPrivateKey(chain.keyPem);
for (let r = 0; r < options.rounds; r++) {
  for (let i = 0; i < pngs.length; i++) {
    const png = pngs[i]!;
    let signed: Buffer = png;
    signMs.push(await timeAsync(async () => void (signed = await signer.sign(png, 'image/png', facts(i)))));
    addedBytes.push(signed.length - png.length);
    // The pieces c2pa-rs cannot avoid, measured in Node for scale: one SHA-256 over the asset (the data hash),
    // one ES256 signature (the claim), and a copy of the asset (the output buffer).
    hashMs.push(timeIt(() => crypto.createHash('sha256').update(png).digest()));
    es256Ms.push(timeIt(() => crypto.sign('sha256', Buffer.alloc(2048, 1), { key, dsaEncoding: 'ieee-p1363' })));
    copyMs.push(timeIt(() => Buffer.from(png)));
  }
}

const signedOnce = await Promise.all(pngs.map((png, i) => signer.sign(png, 'image/png', facts(i))));
const readMs: number[] = [];
for (let r = 0; r < Math.max(1, Math.round(options.rounds / 5)); r++) {
  for (const s of signedOnce) {
    const t = performance.now();
    const report = await read(s);
    readMs.push(performance.now() - t);
    if (!report.present || report.state !== 'trusted') throw new Error(`benchmark image did not verify: ${JSON.stringify(report)}`);
  }
}
const thumbAdded = await Promise.all(pngs.map(async (png, i) => (await withThumbnail.sign(png, 'image/png', facts(i))).length - png.length));
// A flat picture (sky, ground, a sun), closer to what the bundled model draws: a small PNG, where fixed manifest
// bytes weigh more.
const flatRaw = Buffer.alloc(1024 * 768 * 3);
for (let y = 0; y < 768; y++) {
  for (let x = 0; x < 1024; x++) {
    const sun = (x - 700) ** 2 + (y - 200) ** 2 < 3600;
    flatRaw.set(sun ? [250, 220, 40] : y < 400 ? [120, 160, 220] : [40, 140, 60], (y * 1024 + x) * 3);
  }
}
const flatPng = await encodePng({ width: 1024, height: 768, data: flatRaw }, []);
const flatOff = (await signer.sign(flatPng, 'image/png', facts(0))).length;
const flatOn = (await withThumbnail.sign(flatPng, 'image/png', facts(0))).length;
const meanPng = pngs.reduce((s, p) => s + p.length, 0) / pngs.length;
const median = (v: number[]) => quantile(v, 0.5);

console.log(`c2pa signing at 1024x768, ${pngs.length} images x ${options.rounds} rounds (${signMs.length} signatures), ${os.cpus().length} cores, Node ${process.version}`);
console.log(`  PNG before signing      mean ${(meanPng / 1024).toFixed(0)} KiB`);
console.log(`  sign (thumbnail off)    median ${ms(median(signMs))}, p95 ${ms(quantile(signMs, 0.95))}, max ${ms(Math.max(...signMs))}`);
console.log(`  bytes added             median ${median(addedBytes)} B (${((100 * median(addedBytes)) / meanPng).toFixed(2)} % of the PNG)`);
console.log(`  with thumbnail          median ${median(thumbAdded)} B added (${((100 * median(thumbAdded)) / meanPng).toFixed(1)} % of the PNG)`);
console.log(`  flat picture            PNG ${flatPng.length} B → ${flatOff} B signed (×${(flatOff / flatPng.length).toFixed(2)}), ${flatOn} B with thumbnail (×${(flatOn / flatPng.length).toFixed(2)})`);
console.log(`  of which, in Node terms: SHA-256 of the PNG ${ms(median(hashMs))}, one ES256 signature ${ms(median(es256Ms))}, one copy of the PNG ${ms(median(copyMs))}`);
console.log(`  read + validate (trust) median ${ms(median(readMs))}, p95 ${ms(quantile(readMs, 0.95))}`);
