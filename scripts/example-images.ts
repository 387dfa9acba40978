/**
 * Writes the README's example images (docs/images/) through the API with the shipped weights: a server on a
 * temporary data folder, the bundled model, three requests as a user would send them (1024×768, fixed seeds,
 * the API's defaults otherwise, watermark off so the files show the model's own pixels). The third is an edit of
 * the first. Prints each request and what came back.
 *   npx tsx scripts/example-images.ts [--out docs/images]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { readConfig } from '../src/config/config.ts';
import { startServer } from '../src/main.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const OUT = path.resolve(outIndex >= 0 && args[outIndex + 1] ? args[outIndex + 1]! : path.join(ROOT, 'docs/images'));
const KEY = 'example-images-key';
const MODEL = 'alibaba/qwen-image-2-0';

export const EXAMPLES = [
  { file: 'house-and-tree-at-sunset.png', body: { prompt: 'a red house on the left and a green tree on the right at sunset', seed: 42 } },
  { file: 'circle-on-snow-at-night.png', body: { prompt: 'a blue circle in the middle on snow at night with a crescent moon', seed: 7 } },
  { file: 'house-and-tree-made-night.png', body: { prompt: 'make it night', seed: 42 }, editOf: 'house-and-tree-at-sunset.png' },
] as const;

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-examples-'));
  const config = readConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, API_KEYS: KEY, ORT_THREADS: '2' }, ROOT);
  const server = await startServer(config, { logger: pino({ level: 'warn' }) });
  fs.mkdirSync(OUT, { recursive: true });
  try {
    for (const example of EXAMPLES) {
      const images = 'editOf' in example ? [`data:image/png;base64,${fs.readFileSync(path.join(OUT, example.editOf)).toString('base64')}`] : undefined;
      const body = { model: MODEL, image_size: { width: 1024, height: 768 }, watermark: false, ...example.body, ...(images ? { image_urls: images } : {}) };
      const t = performance.now();
      const res = await fetch(`${server.url}/v1/images/generations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as { data?: Array<{ url: string; seed: number }>; error?: unknown };
      if (res.status !== 200 || !json.data?.[0]) throw new Error(`${example.file}: HTTP ${res.status} ${JSON.stringify(json)}`);
      const png = Buffer.from(await (await fetch(json.data[0].url)).arrayBuffer());
      fs.writeFileSync(path.join(OUT, example.file), png);
      console.log(`${example.file}: ${JSON.stringify(example.body)}${images ? ' + image_urls [the first image]' : ''} → seed ${json.data[0].seed}, ${(performance.now() - t).toFixed(0)} ms, ${png.length} bytes`);
    }
  } finally {
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
