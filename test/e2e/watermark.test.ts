/** watermark: true embeds the invisible mark; POST /v1/watermark/detect finds it (JSON URL, data URI, multipart). */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { startTestServer, MODEL, TEST_KEY, type TestServer } from '../helpers/server.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer({ WATERMARK_ISSUER_ID: '4242' });
});
after(async () => {
  await server.close();
});

const generate = (watermark: boolean, seed = 5) =>
  server.post('/v1/images/generations', { model: MODEL, prompt: 'a yellow sun over the sea', seed, watermark, enhance_prompt: false });

test('a marked image is detected with the configured issuer; the same request gives the same pixels, mark included', async () => {
  const a = await generate(true);
  const b = await generate(true);
  assert.equal(a.status, 200);
  const pngA = Buffer.from(await (await fetch(a.json.data[0].url)).arrayBuffer());
  const pngB = Buffer.from(await (await fetch(b.json.data[0].url)).arrayBuffer());
  assert.ok((await sharp(pngA).raw().toBuffer()).equals(await sharp(pngB).raw().toBuffer()), 'deterministic with the mark');

  const byUrl = await server.post('/v1/watermark/detect', { image_url: a.json.data[0].url });
  assert.equal(byUrl.status, 200);
  assert.equal(byUrl.json.detected, true);
  assert.equal(byUrl.json.payload.issuer_id, 4242);
  assert.ok(byUrl.json.confidence > 0.5);

  // After a JPEG round trip at quality 75, sent inline as a data: URI.
  const jpeg = await sharp(pngA).jpeg({ quality: 75 }).toBuffer();
  const byData = await server.post('/v1/watermark/detect', { image_url: `data:image/jpeg;base64,${jpeg.toString('base64')}` });
  assert.equal(byData.json.detected, true);
  assert.equal(byData.json.payload.generation_id, byUrl.json.payload.generation_id);

  // Multipart upload.
  const form = new FormData();
  form.append('image', new Blob([pngA], { type: 'image/png' }), 'a.png');
  const res = await fetch(`${server.url}/v1/watermark/detect`, { method: 'POST', headers: { authorization: `Bearer ${TEST_KEY}` }, body: form });
  const multipart = (await res.json()) as any;
  assert.equal(res.status, 200);
  assert.equal(multipart.detected, true);
});

test('an unmarked image is not detected, and differs from the marked one only slightly', async () => {
  const plain = await generate(false);
  const marked = await generate(true);
  const res = await server.post('/v1/watermark/detect', { image_url: plain.json.data[0].url });
  assert.equal(res.json.detected, false);
  assert.equal(res.json.payload, null);
  const p = await sharp(Buffer.from(await (await fetch(plain.json.data[0].url)).arrayBuffer())).raw().toBuffer();
  const m = await sharp(Buffer.from(await (await fetch(marked.json.data[0].url)).arrayBuffer())).raw().toBuffer();
  let se = 0;
  for (let i = 0; i < p.length; i++) se += (p[i]! - m[i]!) ** 2;
  const psnr = 10 * Math.log10((255 * 255) / (se / p.length));
  assert.ok(psnr >= 38, `PSNR ${psnr.toFixed(1)} dB`);
  assert.ok(!p.equals(m), 'the mark changed some pixels');
});

test('detect: bad input is a 4xx naming the field; auth is required', async () => {
  const missing = await server.post('/v1/watermark/detect', {});
  assert.equal(missing.status, 400);
  assert.equal(missing.json.error.param, 'image_url');
  const notImage = await server.post('/v1/watermark/detect', { image_url: `data:image/png;base64,${Buffer.from('nope').toString('base64')}` });
  assert.equal(notImage.status, 400);
  assert.equal(notImage.json.error.code, 'invalid_image');
  const extra = await server.post('/v1/watermark/detect', { image_url: 'http://x.example/a.png', foo: 1 });
  assert.equal(extra.json.error.code, 'unknown_field');
  const unauth = await server.post('/v1/watermark/detect', { image_url: 'x' }, { authorization: '' });
  assert.equal(unauth.status, 401);
});

test('the offline CLI detects the mark in a local file; with another WATERMARK_KEY it does not', async () => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { REPO_ROOT } = await import('../helpers/server.ts');
  const res = await generate(true, 8);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wm-')), 'marked.png');
  fs.writeFileSync(file, Buffer.from(await (await fetch(res.json.data[0].url)).arrayBuffer()));
  const cli = (env: Record<string, string>) =>
    promisify(execFile)(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), [path.join(REPO_ROOT, 'src/cli/main.ts'), 'watermark', 'detect', file], { env: { ...process.env, ...env } })
      .then((r) => JSON.parse(r.stdout))
      .catch((err: { stdout: string }) => JSON.parse(err.stdout));
  const found = await cli({});
  assert.equal(found.detected, true);
  assert.equal(found.payload.issuerId ?? found.payload.issuer_id, 4242);
  const other = await cli({ WATERMARK_KEY: 'someone-else' });
  assert.equal(other.detected, false);
});

test('the mark survives output_format jpeg and webp (at output_compression 75), detected through /v1/watermark/detect', async () => {
  for (const format of ['jpeg', 'webp']) {
    const res = await server.post('/v1/images/generations', {
      model: MODEL, prompt: 'a yellow sun over the sea', seed: 5, watermark: true, enhance_prompt: false, output_format: format, output_compression: 75,
    });
    assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
    const file = await fetch(res.json.data[0].url);
    assert.equal(file.headers.get('content-type'), `image/${format}`);
    const detected = await server.post('/v1/watermark/detect', { image_url: res.json.data[0].url });
    assert.equal(detected.status, 200);
    assert.equal(detected.json.detected, true, format);
    assert.equal(detected.json.payload.issuer_id, 4242);
  }
});
