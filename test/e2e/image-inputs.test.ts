/** image_urls: formats, data URIs, and every way fetching can fail, each a 4xx naming the item. */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import net from 'node:net';
import { startTestServer, MODEL, type TestServer } from '../helpers/server.ts';
import { startImageServer, makeTestImages, type ImageServer } from '../helpers/image-server.ts';

const MAX_BYTES = 256 * 1024;
let server: TestServer;
let images: ImageServer;
before(async () => {
  images = await startImageServer({ maxBytesHint: MAX_BYTES });
  server = await startTestServer({ MAX_IMAGE_BYTES: String(MAX_BYTES), IMAGE_FETCH_TIMEOUT_MS: '800', MAX_IMAGE_PIXELS: '1000000' });
});
after(async () => {
  await server.close();
  await images.close();
});

const edit = (image_urls: string[]) =>
  server.post('/v1/images/generations', { model: MODEL, prompt: 'make it night', image_urls, response_format: 'b64_json', enhance_prompt: false, seed: 1, image_size: 'square' });

describe('accepted inputs', () => {
  for (const name of ['red.png', 'red.jpg', 'red.webp', 'red.gif', 'red.avif', 'misnamed.png']) {
    test(`${name} is fetched and used`, async () => {
      const res = await edit([`${images.url}/${name}`]);
      assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
      const meta = await sharp(Buffer.from(res.json.data[0].b64_json, 'base64')).metadata();
      assert.deepEqual([meta.width, meta.height], [512, 512]);
    });
  }
  test('three references, one as a data: URI, and a redirect', async () => {
    const png = (await makeTestImages())['red.png']!;
    const res = await edit([`${images.url}/red.jpg`, `data:image/png;base64,${png.toString('base64')}`, `${images.url}/redirect`]);
    assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
  });
  test('references change the output (they reach the engine)', async () => {
    const a = await edit([`${images.url}/red.png`]);
    const b = await server.post('/v1/images/generations', { model: MODEL, prompt: 'make it night', response_format: 'b64_json', enhance_prompt: false, seed: 1, image_size: 'square' });
    assert.notEqual(a.json.data[0].b64_json, b.json.data[0].b64_json);
  });
});

function assertItemError(res: { status: number; json: any }, param: string, code: string, pattern: RegExp) {
  assert.equal(res.status, 400, JSON.stringify(res.json).slice(0, 300));
  assert.equal(res.json.error.param, param);
  assert.equal(res.json.error.code, code);
  assert.match(res.json.error.message, pattern);
}

describe('failures name the item and the reason', () => {
  test('unreachable host (connection refused)', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    assertItemError(await edit([`${images.url}/red.png`, `http://127.0.0.1:${port}/x.png`]), 'image_urls[1]', 'image_fetch_failed', /image_urls\[1\] could not be fetched: ECONNREFUSED/);
  });
  test('HTTP 404', async () => {
    assertItemError(await edit([`${images.url}/missing.png`]), 'image_urls[0]', 'image_fetch_failed', /HTTP 404/);
  });
  test('not an image (content, not name, decides)', async () => {
    assertItemError(await edit([`${images.url}/text`]), 'image_urls[0]', 'invalid_image', /is not an image/);
  });
  test('empty body', async () => {
    assertItemError(await edit([`${images.url}/empty`]), 'image_urls[0]', 'invalid_image', /empty/);
  });
  test('too many bytes (declared)', async () => {
    assertItemError(await edit([`${images.url}/big`]), 'image_urls[0]', 'image_too_large', new RegExp(`limit of ${MAX_BYTES}`));
  });
  test('too many bytes (streamed, no content-length)', async () => {
    assertItemError(await edit([`${images.url}/big-chunked`]), 'image_urls[0]', 'image_too_large', new RegExp(`limit of ${MAX_BYTES}`));
  });
  test('decompression bomb (too many pixels) is refused before decoding', async () => {
    assertItemError(await edit([`${images.url}/bomb.png`]), 'image_urls[0]', 'image_too_large', /30000x30000 = 900000000 pixels, more than the limit of 1000000/);
  });
  test('slow server past the fetch timeout', async () => {
    assertItemError(await edit([`${images.url}/slow`]), 'image_urls[0]', 'image_fetch_failed', /within 800 ms/);
  });
  test('redirect loop', async () => {
    assertItemError(await edit([`${images.url}/redirect-loop`]), 'image_urls[0]', 'image_fetch_failed', /more than 3 redirects/);
  });
  test('redirect to a URL that does not parse', async () => {
    assertItemError(await edit([`${images.url}/redirect-invalid`]), 'image_urls[0]', 'image_fetch_failed', /redirected to an invalid URL/);
  });
  test('redirect to file://', async () => {
    assertItemError(await edit([`${images.url}/redirect-file`]), 'image_urls[0]', 'image_url_forbidden', /only http and https/);
  });
  test('bad data: URIs', async () => {
    assertItemError(await edit(['data:image/png,notbase64']), 'image_urls[0]', 'invalid_image', /base64/);
    assertItemError(await edit(['data:image/png;base64,!!!!']), 'image_urls[0]', 'invalid_image', /invalid base64/);
    assertItemError(await edit([`data:image/png;base64,${Buffer.from('hello world').toString('base64')}`]), 'image_urls[0]', 'invalid_image', /is not an image/);
    assertItemError(await edit([`data:image/png;base64,${Buffer.alloc(MAX_BYTES + 10).toString('base64')}`]), 'image_urls[0]', 'image_too_large', /limit/);
  });
  test('nothing was charged for any of them', async () => {
    const usage = (await server.get('/v1/usage', { authorization: 'Bearer test-key-beta' })).json;
    assert.equal(usage.generations, 0);
  });
});

describe('private addresses are refused unless ALLOW_PRIVATE_IMAGE_URLS=1', () => {
  let strict: TestServer;
  before(async () => {
    strict = await startTestServer({ ALLOW_PRIVATE_IMAGE_URLS: '0' });
  });
  after(async () => {
    await strict.close();
  });
  const post = (url: string) =>
    strict.post('/v1/images/generations', { model: MODEL, prompt: 'x', image_urls: [url], response_format: 'b64_json', enhance_prompt: false });
  const forbidden: Array<[string, RegExp]> = [
    ['loopback literal', /non-public address \(127\.0\.0\.1\)/],
    ['localhost by name', /resolves to a non-public address/],
    ['IPv6 loopback', /non-public address \(::1\)/],
    ['cloud metadata (link-local)', /non-public address \(169\.254\.169\.254\)/],
    ['RFC 1918', /non-public address \(10\.1\.2\.3\)/],
    ['decimal-encoded loopback', /non-public address \(127\.0\.0\.1\)/],
    ['IPv4-mapped IPv6 loopback', /non-public address/],
  ];
  const urls = [
    () => `${images.url}/red.png`,
    () => `http://localhost:${new URL(images.url).port}/red.png`,
    () => `http://[::1]:${new URL(images.url).port}/red.png`,
    () => 'http://169.254.169.254/latest/meta-data/',
    () => 'http://10.1.2.3/x.png',
    () => `http://2130706433:${new URL(images.url).port}/red.png`,
    () => `http://[::ffff:127.0.0.1]:${new URL(images.url).port}/red.png`,
  ];
  forbidden.forEach(([name, pattern], i) => {
    test(name, async () => {
      const hitsBefore = images.hits.length;
      const res = await post(urls[i]!());
      assertItemError(res, 'image_urls[0]', 'image_url_forbidden', pattern);
      assert.equal(images.hits.length, hitsBefore, 'no request reached the private server');
    });
  });
});
