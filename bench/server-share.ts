/**
 * npm run bench — the server's own share of a 1024×768 request: everything except the engine
 * (validation, auth, reference fetch and decode, prompt handling, PNG encode, storage, ledger).
 * Starts the real server on loopback with the bundled model, sends sequential requests, and takes
 * share = client-observed latency − the engine time the server reports in Server-Timing.
 *   npx tsx bench/server-share.ts [--requests 50] [--model-dir model/weights]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import sharp from 'sharp';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readConfig } from '../src/config/config.ts';
import { startServer } from '../src/main.ts';
import { opt } from './cli.ts';

const REQUESTS = Number(opt('requests', '50'));
const ROOT = path.resolve(import.meta.dirname, '..');
const MODEL_DIR = path.resolve(ROOT, opt('model-dir', 'model/weights'));

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))]!;
  return { median: q(0.5), p95: q(0.95), min: s[0]!, max: s[s.length - 1]! };
}
const fmt = (x: number) => x.toFixed(1).padStart(8);

async function main() {
  // A loopback image server for the edit case (a 1024×768 JPEG reference, like a phone photo scaled down).
  const reference = await sharp({ create: { width: 1024, height: 768, channels: 3, background: '#4080c0' } })
    .composite([{ input: Buffer.from('<svg width="1024" height="768"><circle cx="512" cy="384" r="200" fill="red"/></svg>') }])
    .jpeg({ quality: 85 })
    .toBuffer();
  const imageServer = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(reference));
  await new Promise<void>((r) => imageServer.listen(0, '127.0.0.1', r));
  const imageUrl = `http://127.0.0.1:${(imageServer.address() as AddressInfo).port}/ref.jpg`;

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-bench-'));
  const config = readConfig({ PORT: '0', DATA_DIR: dataDir, API_KEYS: 'bench-key', ALLOW_PRIVATE_IMAGE_URLS: '1', BUILTIN_MODEL_DIR: MODEL_DIR, ORT_THREADS: process.env.ORT_THREADS ?? '2' }, ROOT);
  const server = await startServer(config, { logger: pino({ level: 'silent' }) });

  const cases = [
    { name: 'text-to-image', body: { model: 'alibaba/qwen-image-2-0', prompt: 'a red house on the left and a green tree on the right at sunset', image_size: 'landscape_4_3', enhance_prompt: false } },
    { name: 'edit (1 reference via URL)', body: { model: 'alibaba/qwen-image-2-0', prompt: 'make it night', image_urls: [imageUrl], image_size: 'landscape_4_3', enhance_prompt: false } },
  ];
  console.log(`server share of a 1024x768 request, ${REQUESTS} sequential requests per case, ${os.cpus().length} cores, model ${path.relative(ROOT, MODEL_DIR)}`);
  console.log('case                          |   share median      p95 |   total median      p95 | share % of total (median)');
  for (const c of cases) {
    const share: number[] = [];
    const total: number[] = [];
    const parts: Record<string, number[]> = {};
    for (let i = 0; i < REQUESTS + 3; i++) {
      const t0 = performance.now();
      const res = await fetch(`${server.url}/v1/images/generations`, {
        method: 'POST',
        headers: { authorization: 'Bearer bench-key', 'content-type': 'application/json' },
        body: JSON.stringify({ ...c.body, seed: i }),
      });
      const body = (await res.json()) as { data: Array<{ url: string }> };
      const t1 = performance.now();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(body)}`);
      const timing = Object.fromEntries(
        (res.headers.get('server-timing') ?? '').split(',').map((p) => {
          const m = /^\s*([a-z]+);dur=([\d.]+)/.exec(p);
          return m ? [m[1]!, Number(m[2])] : ['?', 0];
        }),
      ) as Record<string, number>;
      const engine = timing.engine!;
      if (i < 3) continue; // warm-up
      for (const [k, v] of Object.entries(timing)) (parts[k] ??= []).push(v);
      total.push(t1 - t0);
      share.push(t1 - t0 - engine);
    }
    const s = stats(share);
    const t = stats(total);
    console.log(`${c.name.padEnd(29)} | ${fmt(s.median)} ${fmt(s.p95)} | ${fmt(t.median)} ${fmt(t.p95)} | ${((100 * s.median) / t.median).toFixed(1)}%`);
    console.log(`    medians by stage (ms): ${Object.entries(parts).map(([k, v]) => `${k} ${stats(v).median.toFixed(1)}`).join(', ')}; http+json+download rest ${(s.median - Object.entries(parts).filter(([k]) => k !== 'engine').reduce((a, [, v]) => a + stats(v).median, 0)).toFixed(1)}`);
  }
  console.log('(ms; share = client latency − engine time from Server-Timing; goal: median < 60 ms and < 5% of the request)');
  await server.close();
  imageServer.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
