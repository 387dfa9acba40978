/**
 * The whole HTTP path in front of remote GPU backends (fakes that follow the OpenAI-compatible image
 * protocol, since no GPU runs here): routing file, failover, 503 with Retry-After, usage only on success.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { startTestServer, MODEL, type TestServer } from '../helpers/server.ts';
import { startFakeOpenaiImages, type FakeOpenaiImages } from '../fakes/fake-openai-images.ts';
import { startImageServer, type ImageServer } from '../helpers/image-server.ts';

let primary: FakeOpenaiImages;
let secondary: FakeOpenaiImages;
let images: ImageServer;
let server: TestServer;

before(async () => {
  primary = await startFakeOpenaiImages();
  secondary = await startFakeOpenaiImages();
  images = await startImageServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-backends-'));
  const file = path.join(dir, 'backends.yaml');
  fs.writeFileSync(
    file,
    [
      'models:',
      '  alibaba/qwen-image-2-0:',
      '    backends:',
      `      - { id: gpu-a, type: openai, url: "${primary.url}", model: Qwen/Qwen-Image, priority: 0, extraFields: [negative_prompt, seed] }`,
      `      - { id: gpu-b, type: openai, url: "${secondary.url}", model: Qwen/Qwen-Image, priority: 1, extraFields: [negative_prompt, seed] }`,
      'circuitBreaker: { failureThreshold: 100, resetMs: 1000 }',
      '',
    ].join('\n'),
  );
  server = await startTestServer({ BACKENDS_CONFIG: file });
});
after(async () => {
  await server.close();
  await primary.close();
  await secondary.close();
  await images.close();
});

const body = { model: MODEL, prompt: 'a cat holding a sign that says "hello"', negative_prompt: 'blurry', seed: 9, image_size: 'portrait_16_9', enhance_prompt: false, response_format: 'b64_json' };

test('a request reaches the GPU backend with its fields, and the image comes back at the exact size', async () => {
  const res = await server.post('/v1/images/generations', body);
  assert.equal(res.status, 200);
  const meta = await sharp(Buffer.from(res.json.data[0].b64_json, 'base64')).metadata();
  assert.deepEqual([meta.width, meta.height], [576, 1024]);
  const seen = primary.requests.at(-1)!;
  assert.equal(seen.prompt, body.prompt);
  assert.equal(seen.size, '576x1024');
  assert.equal(seen.negativePrompt, 'blurry');
  assert.equal(seen.seed, 9);
});

test('reference images go to the edits endpoint', async () => {
  const res = await server.post('/v1/images/generations', { ...body, image_urls: [`${images.url}/red.png`, `${images.url}/red.jpg`] });
  assert.equal(res.status, 200);
  const seen = primary.requests.at(-1)!;
  assert.equal(seen.endpoint, 'edits');
  assert.equal(seen.imageFields.length, 2);
});

test('a failing primary fails over to the secondary; the caller sees one success and is charged once', async () => {
  const before = (await server.get('/v1/usage')).json.generations;
  primary.failure = 'server-error';
  const res = await server.post('/v1/images/generations', body);
  primary.failure = 'none';
  assert.equal(res.status, 200);
  assert.equal(secondary.requests.length >= 1, true);
  assert.equal((await server.get('/v1/usage')).json.generations - before, 1);
});

test('every backend overloaded → 503 with Retry-After, nothing charged', async () => {
  const before = (await server.get('/v1/usage')).json.generations;
  primary.failure = 'unavailable';
  secondary.failure = 'unavailable';
  const res = await server.post('/v1/images/generations', body);
  primary.failure = 'none';
  secondary.failure = 'none';
  assert.equal(res.status, 503);
  assert.equal(res.json.error.code, 'engine_unavailable');
  assert.ok(Number(res.headers.get('retry-after')) >= 1);
  assert.equal((await server.get('/v1/usage')).json.generations, before);
});

test('a backend returning the wrong size is a 502, not charged', async () => {
  primary.failure = 'wrong-size';
  const res = await server.post('/v1/images/generations', body);
  primary.failure = 'none';
  assert.equal(res.status, 502);
  assert.match(res.json.error.message, /576x1024|576×1024/);
});

test('GET /v1/models shows the two backends and their health', async () => {
  const res = await server.get('/v1/models');
  const model = res.json.data.find((m: any) => m.id === MODEL);
  assert.deepEqual(model.backends.map((b: any) => b.id), ['gpu-a', 'gpu-b']);
  assert.equal(model.engine.kind, 'router');
  // Declared by the OpenAI-compatible engine from its dialect (negative_prompt and seed fields), no progress channel.
  assert.deepEqual(model.backends[0].capabilities, {
    maxReferenceImages: 3,
    sizes: { minSidePx: 256, maxSidePx: 2048, stepPx: 16, maxPixels: 0 },
    negativePrompt: true,
    seed: true,
    progress: false,
    previews: false,
    masks: false,
    promptAdaptation: false,
  });
  assert.deepEqual(model.capabilities, model.backends[0].capabilities);
});

test('declared capabilities route: an edit and an oversized image skip a text-to-image-only, size-capped primary', async () => {
  const small = await startFakeOpenaiImages();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-backends-'));
  const file = path.join(dir, 'backends.yaml');
  fs.writeFileSync(
    file,
    [
      'models:',
      '  alibaba/qwen-image-2-0:',
      '    backends:',
      `      - { id: small, type: openai, url: "${small.url}", edits: false, maxSidePx: 1024, priority: 0 }`,
      `      - { id: big, type: openai, url: "${secondary.url}", priority: 1 }`,
      '',
    ].join('\n'),
  );
  const other = await startTestServer({ BACKENDS_CONFIG: file });
  try {
    const served = async (extra: Record<string, unknown>) => {
      const res = await other.post('/v1/images/generations', { ...body, ...extra });
      assert.equal(res.status, 200, JSON.stringify(res.json));
      return { small: small.requests.length, big: secondary.requests.length };
    };
    const before = secondary.requests.length;
    assert.deepEqual(await served({ image_size: { width: 1024, height: 768 } }), { small: 1, big: before });
    assert.deepEqual(await served({ image_size: { width: 1440, height: 1024 } }), { small: 1, big: before + 1 });
    assert.deepEqual(await served({ image_urls: [`${images.url}/red.png`] }), { small: 1, big: before + 2 });
    assert.equal(secondary.requests.at(-1)!.endpoint, 'edits');
    const models = await other.get('/v1/models');
    const caps = models.json.data.find((m: any) => m.id === MODEL).backends[0].capabilities;
    assert.deepEqual([caps.maxReferenceImages, caps.sizes.maxSidePx], [0, 1024]);
  } finally {
    await other.close();
    await small.close();
  }
});

test('GET /v1/models does not tell tenants where the backends are, even when one is down', async () => {
  const down = await startFakeOpenaiImages();
  const address = new URL(down.url).host;
  await down.close();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-backends-'));
  const file = path.join(dir, 'backends.yaml');
  fs.writeFileSync(file, ['models:', '  alibaba/qwen-image-2-0:', '    backends:', `      - { id: gpu-a, type: openai, url: "${primary.url}" }`, `      - { id: gpu-down, type: openai, url: "${down.url}" }`, ''].join('\n'));
  const other = await startTestServer({ BACKENDS_CONFIG: file });
  try {
    const res = await other.get('/v1/models');
    assert.equal(res.status, 200);
    const text = JSON.stringify(res.json);
    const model = res.json.data.find((m: any) => m.id === MODEL);
    assert.equal(model.backends.find((b: any) => b.id === 'gpu-down').healthy, false);
    for (const host of [new URL(primary.url).host, address, '127.0.0.1']) assert.ok(!text.includes(host), `${host} in ${text}`);
    assert.match(text, /<address>/);
  } finally {
    await other.close();
  }
});
