/**
 * Every kind of bad input gets a 4xx in OpenAI's error shape naming the field and the rule; nothing
 * is charged; the server keeps serving. Limits are tested exactly at and one past each bound.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, MODEL, type TestServer } from '../helpers/server.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer({ MAX_BODY_BYTES: String(64 * 1024) });
});
after(async () => {
  await server.close();
});

const ok = { model: MODEL, prompt: 'a tree' };

function assertError(res: { status: number; json: any }, status: number, code: string, param: string | null, messagePattern: RegExp) {
  assert.equal(res.status, status, JSON.stringify(res.json).slice(0, 300));
  assert.deepEqual(Object.keys(res.json.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(res.json.error.code, code);
  assert.equal(res.json.error.param, param);
  assert.match(res.json.error.message, messagePattern);
}

const cases: Array<[string, unknown, string, string | null, RegExp]> = [
  ['missing model', { prompt: 'x' }, 'missing_field', 'model', /model is required/],
  ['missing prompt', { model: MODEL }, 'missing_field', 'prompt', /prompt is required/],
  ['unknown model', { ...ok, model: 'openai/dall-e-3' }, 'invalid_value', 'model', /model must be one of "alibaba\/qwen-image-2-0"/],
  ['prompt not a string', { ...ok, prompt: 42 }, 'invalid_value', 'prompt', /prompt must be a string, got 42/],
  ['prompt 2001 chars', { ...ok, prompt: 'a'.repeat(2001) }, 'invalid_value', 'prompt', /at most 2000 characters.*2001/],
  // The limit is in code points (Ajv's ucs2length), so the count reported must be too, not UTF-16 units (4002).
  ['prompt 2001 emoji', { ...ok, prompt: '\u{1F600}'.repeat(2001) }, 'invalid_value', 'prompt', /at most 2000 characters long, got 2001$/],
  ['negative_prompt 501 chars', { ...ok, negative_prompt: 'a'.repeat(501) }, 'invalid_value', 'negative_prompt', /at most 500 characters/],
  ['negative_prompt null', { ...ok, negative_prompt: null }, 'invalid_value', 'negative_prompt', /must be a string, got null/],
  ['seed 1.5', { ...ok, seed: 1.5 }, 'invalid_value', 'seed', /seed must be an integer, got 1\.5/],
  ['seed "5"', { ...ok, seed: '5' }, 'invalid_value', 'seed', /seed must be an integer/],
  ['seed -1', { ...ok, seed: -1 }, 'invalid_value', 'seed', /seed must be at least 0, got -1/],
  ['seed 2147483648', { ...ok, seed: 2147483648 }, 'invalid_value', 'seed', /seed must be at most 2147483647/],
  ['enhance_prompt "maybe"', { ...ok, enhance_prompt: 'maybe' }, 'invalid_value', 'enhance_prompt', /must be a boolean, got "maybe"/],
  ['enhance_prompt "true"', { ...ok, enhance_prompt: 'true' }, 'invalid_value', 'enhance_prompt', /must be a boolean/],
  ['watermark 1', { ...ok, watermark: 1 }, 'invalid_value', 'watermark', /watermark must be a boolean, got 1/],
  ['image_size unknown preset', { ...ok, image_size: 'square_xl' }, 'invalid_value', 'image_size', /must be one of .*square_hd/],
  ['image_size a number', { ...ok, image_size: 1024 }, 'invalid_value', 'image_size', /preset.*|one of/],
  ['image_size width 480', { ...ok, image_size: { width: 480, height: 512 } }, 'invalid_value', 'image_size.width', /at least 512, got 480/],
  ['image_size width 1472', { ...ok, image_size: { width: 1472, height: 512 } }, 'invalid_value', 'image_size.width', /at most 1440, got 1472/],
  ['image_size height 513', { ...ok, image_size: { width: 512, height: 513 } }, 'invalid_value', 'image_size.height', /multiple of 32, got 513/],
  ['image_size width 1024.0001', { ...ok, image_size: { width: 1024.5, height: 512 } }, 'invalid_value', 'image_size.width', /integer/],
  ['image_size width "1024"', { ...ok, image_size: { width: '1024', height: 512 } }, 'invalid_value', 'image_size.width', /integer/],
  ['image_size missing height', { ...ok, image_size: { width: 1024 } }, 'missing_field', 'image_size.height', /image_size\.height is required/],
  ['image_size extra key', { ...ok, image_size: { width: 1024, height: 512, depth: 3 } }, 'unknown_field', 'image_size.depth', /not a recognised field/],
  ['image_urls empty', { ...ok, image_urls: [] }, 'invalid_value', 'image_urls', /at least 1 item, got 0/],
  ['image_urls 4 items', { ...ok, image_urls: ['http://a.example/1.png', 'http://a.example/2.png', 'http://a.example/3.png', 'http://a.example/4.png'] }, 'invalid_value', 'image_urls', /at most 3 items, got 4/],
  ['image_urls a string', { ...ok, image_urls: 'http://a.example/1.png' }, 'invalid_value', 'image_urls', /must be an array/],
  ['image_urls item not a URL', { ...ok, image_urls: ['http://a.example/1.png', 'not a url'] }, 'invalid_value', 'image_urls[1]', /image_urls\[1\] must be an http\(s\) URL or a data: URI/],
  ['image_urls item ftp', { ...ok, image_urls: ['ftp://a.example/1.png'] }, 'invalid_value', 'image_urls[0]', /http\(s\) URL or a data: URI/],
  ['image_urls item number', { ...ok, image_urls: [5] }, 'invalid_value', 'image_urls[0]', /must be a string/],
  ['unknown field', { ...ok, num_images: 2 }, 'unknown_field', 'num_images', /num_images is not a recognised field/],
  ['n 5 (MAX_IMAGES_PER_REQUEST 4)', { ...ok, n: 5 }, 'invalid_value', 'n', /n must be at most 4 on this server/],
  ['n 0', { ...ok, n: 0 }, 'invalid_value', 'n', /n must be at least 1, got 0/],
  ['n "2"', { ...ok, n: '2' }, 'invalid_value', 'n', /n must be an integer/],
  ['size 256x256', { ...ok, size: '256x256' }, 'invalid_value', 'size', /size must be "auto" or "WxH" with W and H from 512 to 1440 in multiples of 32.*got "256x256"/],
  ['size 1536x1024', { ...ok, size: '1536x1024' }, 'invalid_value', 'size', /from 512 to 1440.*got "1536x1024"/],
  ['size 1000x1000', { ...ok, size: '1000x1000' }, 'invalid_value', 'size', /multiples of 32/],
  ['size "big"', { ...ok, size: 'big' }, 'invalid_value', 'size', /size must be "auto" or "WxH"/],
  ['size and image_size', { ...ok, size: '1024x1024', image_size: 'square_hd' }, 'invalid_value', 'size', /size and image_size .* not both/],
  ['output_format gif', { ...ok, output_format: 'gif' }, 'invalid_value', 'output_format', /one of "png", "jpeg", "webp"/],
  ['output_compression 101', { ...ok, output_format: 'jpeg', output_compression: 101 }, 'invalid_value', 'output_compression', /at most 100/],
  ['output_compression with png', { ...ok, output_compression: 50 }, 'invalid_value', 'output_compression', /jpeg or webp/],
  ['quality ultra', { ...ok, quality: 'ultra' }, 'invalid_value', 'quality', /one of "auto", "low", "medium", "high"/],
  ['background transparent', { ...ok, background: 'transparent' }, 'invalid_value', 'background', /transparent.*not supported/],
  ['background white', { ...ok, background: 'white' }, 'invalid_value', 'background', /one of "auto", "opaque"/],
  ['moderation strict', { ...ok, moderation: 'strict' }, 'invalid_value', 'moderation', /one of "auto", "low"/],
  ['style bold', { ...ok, style: 'bold' }, 'invalid_value', 'style', /one of "vivid", "natural"/],
  ['user a number', { ...ok, user: 7 }, 'invalid_value', 'user', /must be a string/],
  ['stream "yes"', { ...ok, stream: 'yes' }, 'invalid_value', 'stream', /must be a boolean/],
  ['partial_images 4', { ...ok, stream: true, partial_images: 4 }, 'invalid_value', 'partial_images', /at most 3/],
  ['partial_images without stream', { ...ok, partial_images: 2 }, 'invalid_value', 'partial_images', /needs stream: true/],
  ['stream with response_format url', { ...ok, stream: true, response_format: 'url' }, 'invalid_value', 'response_format', /cannot be streamed/],
  ['response_format png', { ...ok, response_format: 'png' }, 'invalid_value', 'response_format', /one of "url", "b64_json"/],
  ['body an array', [ok], 'invalid_value', null, /must be a JSON object/],
  ['body a string', '"hello"', 'invalid_value', null, /must be a JSON object/],
];

describe('rejections name the field and the rule', () => {
  for (const [name, body, code, param, pattern] of cases) {
    test(name, async () => {
      assertError(await server.post('/v1/images/generations', body), code === 'unknown_field' || code === 'missing_field' || code === 'invalid_value' ? 400 : 400, code, param, pattern);
    });
  }
});

describe('limits exactly at the bound are accepted', () => {
  const accepted: Array<[string, object]> = [
    ['prompt of 2000 chars', { prompt: 'a'.repeat(2000) }],
    ['negative_prompt of 500 chars', { negative_prompt: 'b'.repeat(500) }],
    ['seed 2147483647', { seed: 2147483647 }],
    ['seed 0', { seed: 0 }],
    ['width 512, height 1440', { image_size: { width: 512, height: 1440 } }],
    ['empty prompt (the seed schema sets no minimum)', { prompt: '' }],
    ['size 512x1440', { size: '512x1440' }],
    ['size auto', { size: 'auto' }],
    ['n 4 (MAX_IMAGES_PER_REQUEST)', { n: 4, image_size: 'square' }],
    ['OpenAI fields at their documented values', { quality: 'low', background: 'opaque', moderation: 'low', style: 'natural', user: 'u-1', output_format: 'webp', output_compression: 0 }],
  ];
  for (const [name, extra] of accepted) {
    test(name, async () => {
      const res = await server.post('/v1/images/generations', { ...ok, response_format: 'b64_json', enhance_prompt: false, ...extra });
      assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
    });
  }
});

describe('malformed requests', () => {
  test('malformed JSON', async () => {
    assertError(await server.post('/v1/images/generations', '{"model": "alibaba/qwen-image-2-0", "prompt": '), 400, 'invalid_json', null, /not valid JSON/);
  });
  test('empty body', async () => {
    const res = await fetch(`${server.url}/v1/images/generations`, { method: 'POST', headers: { authorization: 'Bearer test-key-alpha', 'content-type': 'application/json' } });
    assertError({ status: res.status, json: await res.json() }, 400, 'invalid_json', null, /empty/);
  });
  test('body over MAX_BODY_BYTES', async () => {
    assertError(await server.post('/v1/images/generations', { ...ok, prompt: 'x'.repeat(70 * 1024) }), 413, 'body_too_large', null, /larger than the limit of 65536 bytes/);
  });
  test('wrong content type', async () => {
    const res = await fetch(`${server.url}/v1/images/generations`, { method: 'POST', headers: { authorization: 'Bearer test-key-alpha', 'content-type': 'text/plain' }, body: JSON.stringify(ok) });
    assertError({ status: res.status, json: await res.json() }, 415, 'unsupported_media_type', null, /application\/json/);
  });
  test('unknown route is a JSON 404', async () => {
    assertError(await server.get('/v1/images/variations'), 404, 'not_found', null, /no route for GET \/v1\/images\/variations/);
  });
});

test('no rejected request was charged, and the server still serves', async () => {
  const before = (await server.get('/v1/usage')).json;
  for (const [, body] of cases) await server.post('/v1/images/generations', body);
  await server.post('/v1/images/generations', '{bad json');
  const after = (await server.get('/v1/usage')).json;
  assert.equal(after.generations, before.generations);
  assert.equal(after.usd_spent, before.usd_spent);
  const res = await server.post('/v1/images/generations', { ...ok, response_format: 'b64_json', enhance_prompt: false });
  assert.equal(res.status, 200);
});
