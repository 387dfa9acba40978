/**
 * POST /v1/images/edits with hand-written multipart bodies: every rejection names the field and the
 * rule and charges nothing; form strings are read strictly; the files are decoded like image_urls.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { startTestServer, MODEL, TEST_KEY, type TestServer } from '../helpers/server.ts';
import { makeTestImages, bombPngHeader } from '../helpers/image-server.ts';
import { readPngText } from '../../src/images/png.ts';

let server: TestServer;
let images: Record<string, Buffer>;
before(async () => {
  server = await startTestServer({ MAX_IMAGE_BYTES: String(256 * 1024) });
  images = await makeTestImages();
});
after(async () => {
  await server.close();
});

type Part = [name: string, value: string | Buffer];

async function postForm(parts: Part[]): Promise<{ status: number; json: any }> {
  const form = new FormData();
  for (const [name, value] of parts) {
    if (typeof value === 'string') form.append(name, value);
    else form.append(name, new Blob([new Uint8Array(value)]), 'blob');
  }
  const res = await fetch(`${server.url}/v1/images/edits`, { method: 'POST', headers: { authorization: `Bearer ${TEST_KEY}` }, body: form });
  return { status: res.status, json: await res.json() };
}

const base = (): Part[] => [['model', MODEL], ['prompt', 'make it night'], ['image', images['red.png']!]];

describe('edits: rejections name the field and the rule', () => {
  const cases: Array<[string, () => Part[], number, string, string | null, RegExp]> = [
    ['no image', () => [['model', MODEL], ['prompt', 'x']], 400, 'missing_field', 'image', /image is required/],
    ['four images', () => [['model', MODEL], ['prompt', 'x'], ...Array.from({ length: 4 }, (): Part => ['image[]', images['red.png']!])], 400, 'invalid_value', 'image', /at most 3/],
    ['a mask', () => [...base(), ['mask', images['red.png']!]], 400, 'invalid_value', 'mask', /mask is not supported/],
    ['an image that is not one', () => [['model', MODEL], ['prompt', 'x'], ['image', Buffer.from('hello, not an image')]], 400, 'invalid_image', 'image', /image/],
    ['a decompression bomb', () => [['model', MODEL], ['prompt', 'x'], ['image', bombPngHeader(30000, 30000)]], 400, 'image_too_large', 'image', /pixels/],
    ['a file over MAX_IMAGE_BYTES', () => [['model', MODEL], ['prompt', 'x'], ['image', Buffer.alloc(300 * 1024)]], 400, 'image_too_large', 'image', /262144 bytes/],
    ['enhance_prompt "yes"', () => [...base(), ['enhance_prompt', 'yes']], 400, 'invalid_value', 'enhance_prompt', /must be a boolean, got "yes"/],
    ['seed "1.5"', () => [...base(), ['seed', '1.5']], 400, 'invalid_value', 'seed', /must be an integer/],
    ['n "9"', () => [...base(), ['n', '9']], 400, 'invalid_value', 'n', /at most 4/],
    ['image_size "[object Object]"', () => [...base(), ['image_size', '[object Object]']], 400, 'invalid_value', 'image_size', /image_size must be one of/],
    ['image_size[width] 500', () => [...base(), ['image_size[width]', '500'], ['image_size[height]', '512']], 400, 'invalid_value', 'image_size.width', /at least 512/],
    ['image_urls on edits', () => [...base(), ['image_urls', 'http://a.example/x.png']], 400, 'invalid_value', 'image_urls', /files in image \(one\) or image\[\]/],
    ['an unknown field', () => [...base(), ['strength', '0.5']], 400, 'unknown_field', 'strength', /not a recognised field/],
    ['an unknown file field', () => [...base(), ['reference', images['red.png']!]], 400, 'unknown_field', 'reference', /not a recognised file field/],
    ['seed given twice', () => [...base(), ['seed', '1'], ['seed', '2']], 400, 'invalid_value', 'seed', /given twice/],
  ];
  for (const [name, parts, status, code, param, pattern] of cases) {
    test(name, async () => {
      const res = await postForm(parts());
      assert.equal(res.status, status, JSON.stringify(res.json).slice(0, 300));
      assert.equal(res.json.error.code, code);
      assert.equal(res.json.error.param, param);
      assert.match(res.json.error.message, pattern);
    });
  }

  test('a JSON body is a 415 that says multipart', async () => {
    const res = await server.post('/v1/images/edits', { model: MODEL, prompt: 'x' });
    assert.equal(res.status, 415);
    assert.match(res.json.error.message, /multipart\/form-data/);
  });

  test('none of the rejected requests was charged', async () => {
    const before = (await server.get('/v1/usage')).json;
    for (const [, parts] of cases) await postForm(parts());
    const after = (await server.get('/v1/usage')).json;
    assert.equal(after.generations, before.generations);
  });
});

describe('edits: accepted forms', () => {
  test('every field from its string form; the answer is b64_json by default', async () => {
    const res = await postForm([
      ['model', MODEL], ['prompt', 'make the house red'], ['image[]', images['red.png']!], ['image[]', images['red.avif']!],
      ['seed', '9'], ['enhance_prompt', 'false'], ['watermark', 'false'], ['negative_prompt', 'tree'],
      ['image_size[width]', '640'], ['image_size[height]', '512'], ['n', '1'], ['quality', 'low'], ['user', 'u-7'], ['moderation', 'auto'],
    ]);
    assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
    const png = Buffer.from(res.json.data[0].b64_json, 'base64');
    const meta = await sharp(png).metadata();
    assert.deepEqual([meta.width, meta.height], [640, 512]);
    const text = readPngText(png);
    assert.deepEqual([text.Seed, text['Negative prompt'], text.Prompt], ['9', 'tree', 'make the house red']);
    assert.equal(res.json.meta.usage.usd_spent, 0.0455);
  });

  test('the same form with an Idempotency-Key is one job; another image with that key is a 422', async () => {
    const post = async (image: Buffer) => {
      const form = new FormData();
      form.append('model', MODEL);
      form.append('prompt', 'make it night');
      form.append('seed', '4');
      form.append('size', '512x512');
      form.append('image', new Blob([new Uint8Array(image)]), 'blob');
      const res = await fetch(`${server.url}/v1/images/edits`, { method: 'POST', headers: { authorization: `Bearer ${TEST_KEY}`, 'idempotency-key': 'edit-1' }, body: form });
      return { status: res.status, replayed: res.headers.get('idempotent-replayed'), json: await res.json() };
    };
    const first = await post(images['red.png']!);
    const again = await post(images['red.png']!);
    assert.equal(first.status, 200);
    assert.equal(again.replayed, 'true');
    assert.equal(again.json.data[0].b64_json, first.json.data[0].b64_json);
    const other = await post(images['red.jpg']!);
    assert.equal(other.status, 422);
  });
});

test('quality: low draws with fewer steps than auto (a different picture); high is auto', async () => {
  const draw = async (quality?: string) => {
    const res = await server.post('/v1/images/generations', { model: MODEL, prompt: 'a red house', seed: 2, size: '512x512', enhance_prompt: false, response_format: 'b64_json', ...(quality ? { quality } : {}) });
    assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
    return sharp(Buffer.from(res.json.data[0].b64_json, 'base64')).raw().toBuffer();
  };
  const [auto, low, high] = [await draw(), await draw('low'), await draw('high')];
  assert.ok(auto.equals(high), 'high is the full step count, as auto');
  assert.ok(!auto.equals(low), 'low draws fewer steps');
});
