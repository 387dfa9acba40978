/** POST /v1/images/generations over HTTP against a started server: shape, sizes, seeds, metadata. */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { startTestServer, MODEL, type TestServer } from '../helpers/server.ts';
import { readPngText } from '../../src/images/png.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.close();
});

async function download(url: string): Promise<Buffer> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'image/png');
  return Buffer.from(await res.arrayBuffer());
}

describe('response shape', () => {
  test('the seed shape, with a URL on this server that downloads a PNG of the requested size', async () => {
    const before = Date.now();
    const res = await server.post('/v1/images/generations', { model: MODEL, prompt: 'a red house on grass', seed: 7 });
    assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
    const body = res.json;
    assert.ok(body.created >= before && body.created <= Date.now(), 'created is ms since epoch');
    assert.equal(body.data.length, 1);
    assert.match(body.data[0].url, new RegExp(`^${server.url}/files/generations/\\d+-[0-9a-f-]{36}\\.png$`));
    assert.equal(body.data[0].seed, 7);
    assert.deepEqual(body.meta, { usage: { credits_used: 91000, usd_spent: 0.0455 } });
    assert.match(res.headers.get('x-request-id') ?? '', /^req_/);
    const png = await download(body.data[0].url);
    const meta = await sharp(png).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 1024); // landscape_4_3 is the default
    assert.equal(meta.height, 768);
  });

  test('PNG text chunks carry model, prompt used, seed, size and the AI-generated marks', async () => {
    const res = await server.post('/v1/images/generations', { model: MODEL, prompt: 'a blue circle, «quoted»', seed: 11, enhance_prompt: false, negative_prompt: 'tree' });
    assert.equal(res.status, 200);
    const text = readPngText(await download(res.json.data[0].url));
    assert.equal(text.Model, MODEL);
    assert.equal(text.Prompt, 'a blue circle, «quoted»');
    assert.equal(text['Negative prompt'], 'tree');
    assert.equal(text.Seed, '11');
    assert.equal(text.Size, '1024x768');
    assert.equal(text.DigitalSourceType, 'http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia');
    assert.match(text['XML:com.adobe.xmp']!, /Iptc4xmpExt:DigitalSourceType="http:\/\/cv\.iptc\.org\/newscodes\/digitalsourcetype\/trainedAlgorithmicMedia"/);
    assert.equal(res.json.data[0].revised_prompt, 'a blue circle, «quoted»', 'enhance_prompt false: revised equals original');
  });

  test('response_format b64_json returns the PNG inline and stores no file URL', async () => {
    const res = await server.post('/v1/images/generations', { model: MODEL, prompt: 'a moon', seed: 3, response_format: 'b64_json', image_size: 'square' });
    assert.equal(res.status, 200);
    assert.equal(res.json.data[0].url, undefined);
    const png = Buffer.from(res.json.data[0].b64_json, 'base64');
    const meta = await sharp(png).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 512, 512]);
  });

  test('enhance_prompt defaults to true: revised_prompt is the rewritten prompt and is what the PNG says', async () => {
    const res = await server.post('/v1/images/generations', { model: MODEL, prompt: '  a   crimson cottage  ', seed: 5, response_format: 'b64_json', image_size: 'square' });
    assert.equal(res.status, 200);
    const revised = res.json.data[0].revised_prompt as string;
    assert.notEqual(revised, '  a   crimson cottage  ');
    assert.equal(readPngText(Buffer.from(res.json.data[0].b64_json, 'base64')).Prompt, revised);
  });
});

describe('sizes', () => {
  const presets: Array<[string, number, number]> = [
    ['square_hd', 1024, 1024],
    ['square', 512, 512],
    ['portrait_4_3', 768, 1024],
    ['portrait_16_9', 576, 1024],
    ['landscape_4_3', 1024, 768],
    ['landscape_16_9', 1024, 576],
  ];
  for (const [name, w, h] of presets) {
    test(`preset ${name} is exactly ${w}x${h}`, async () => {
      const res = await server.post('/v1/images/generations', { model: MODEL, prompt: 'sun', seed: 1, image_size: name, response_format: 'b64_json', enhance_prompt: false });
      assert.equal(res.status, 200);
      const meta = await sharp(Buffer.from(res.json.data[0].b64_json, 'base64')).metadata();
      assert.deepEqual([meta.width, meta.height], [w, h]);
    });
  }
  for (const [w, h] of [[512, 512], [1440, 1440], [512, 1440], [1440, 512], [544, 1408]] as const) {
    test(`custom ${w}x${h} (at the bounds) is exactly that size`, async () => {
      const res = await server.post('/v1/images/generations', { model: MODEL, prompt: 'sun', seed: 1, image_size: { width: w, height: h }, response_format: 'b64_json', enhance_prompt: false });
      assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
      const meta = await sharp(Buffer.from(res.json.data[0].b64_json, 'base64')).metadata();
      assert.deepEqual([meta.width, meta.height], [w, h]);
    });
  }
});

describe('seeds', () => {
  const raw = async (body: object) => {
    const res = await server.post('/v1/images/generations', { model: MODEL, response_format: 'b64_json', image_size: 'square', ...body });
    assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
    return { seed: res.json.data[0].seed as number, pixels: await sharp(Buffer.from(res.json.data[0].b64_json, 'base64')).raw().toBuffer() };
  };
  test('same prompt and seed give the same pixels; another seed differs', async () => {
    const a = await raw({ prompt: 'a green tree', seed: 1234 });
    const b = await raw({ prompt: 'a green tree', seed: 1234 });
    const c = await raw({ prompt: 'a green tree', seed: 1235 });
    assert.ok(a.pixels.equals(b.pixels), 'same seed, same pixels');
    assert.ok(!a.pixels.equals(c.pixels), 'different seed, different pixels');
  });
  test('without a seed a random one is chosen, returned, and reproduces the image', async () => {
    const a = await raw({ prompt: 'a pink square' });
    const b = await raw({ prompt: 'a pink square' });
    assert.ok(Number.isInteger(a.seed) && a.seed >= 0 && a.seed <= 2147483647);
    assert.notEqual(a.seed, b.seed);
    const again = await raw({ prompt: 'a pink square', seed: a.seed });
    assert.ok(again.pixels.equals(a.pixels));
  });
  test('seeds at the bounds 0 and 2147483647 work', async () => {
    assert.equal((await raw({ prompt: 'x', seed: 0 })).seed, 0);
    assert.equal((await raw({ prompt: 'x', seed: 2147483647 })).seed, 2147483647);
  });
});

describe('OpenAI fields on the JSON endpoint', () => {
  test('n: 2 draws seeds seed and seed+1, charges twice in one ledger row, and meta.usage sums them', async () => {
    const before = (await server.get('/v1/usage')).json;
    const res = await server.post('/v1/images/generations', { model: MODEL, prompt: 'a red house', seed: 41, n: 2, size: '512x512', enhance_prompt: false });
    assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
    assert.deepEqual(res.json.data.map((d: { seed: number }) => d.seed), [41, 42]);
    assert.deepEqual(res.json.meta.usage, { credits_used: 182000, usd_spent: 0.091 });
    const [a, b] = await Promise.all(res.json.data.map((d: { url: string }) => download(d.url)));
    assert.notDeepEqual(a, b, 'two seeds, two pictures');
    assert.equal(readPngText(b!).Seed, '42');
    const after = (await server.get('/v1/usage')).json;
    assert.equal(after.generations - before.generations, 1, 'one job, one ledger row');
    const [job] = (await server.get('/v1/jobs?limit=1')).json.data;
    assert.equal(job.input.n, 2);
    assert.equal(Math.round((after.usd_spent - before.usd_spent) * 1e6) / 1e6, 0.091);
    // The same request with n: 1 draws the first of those pictures.
    const one = await server.post('/v1/images/generations', { model: MODEL, prompt: 'a red house', seed: 41, size: '512x512', enhance_prompt: false });
    assert.deepEqual((await sharp(await download(one.json.data[0].url)).raw().toBuffer()), await sharp(a!).raw().toBuffer());
  });

  test('size "WxH" sets the size; "auto" is the default preset', async () => {
    const res = await server.post('/v1/images/generations', { model: MODEL, prompt: 'a tree', seed: 1, size: '768x1344', response_format: 'b64_json' });
    assert.equal(res.status, 200);
    const meta = await sharp(Buffer.from(res.json.data[0].b64_json, 'base64')).metadata();
    assert.deepEqual([meta.width, meta.height], [768, 1344]);
    const auto = await server.post('/v1/images/generations', { model: MODEL, prompt: 'a tree', seed: 1, size: 'auto', response_format: 'b64_json' });
    const autoMeta = await sharp(Buffer.from(auto.json.data[0].b64_json, 'base64')).metadata();
    assert.deepEqual([autoMeta.width, autoMeta.height], [1024, 768]);
  });
});
