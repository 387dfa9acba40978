/**
 * The OpenAI Node library and the Vercel AI SDK (openai-compatible and openai providers), the real
 * packages, against a started server with only the base URL and the key changed: generate, size,
 * n, the seed's fields through the body, b64_json, edits with one and several images, jpeg and webp,
 * streaming with partial images, and errors as the libraries' own error classes.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import OpenAI, { toFile } from 'openai';
import { generateImage, APICallError } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { createOpenAI } from '@ai-sdk/openai';
import { startTestServer, MODEL, TEST_KEY, type TestServer } from '../helpers/server.ts';
import { readPngText } from '../../src/images/png.ts';
import { readOutputXmp } from '../../src/images/encode-output.ts';
import { makeTestImages } from '../helpers/image-server.ts';
import { ApiError } from '../../src/domain/errors.ts';
import type { Engine, EngineProgress, EngineRequest } from '../../src/domain/types.ts';

let server: TestServer;
let client: OpenAI;
let images: Record<string, Buffer>;
before(async () => {
  server = await startTestServer();
  // maxRetries 0: a test that fails should fail once, not three times over.
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: TEST_KEY, maxRetries: 0 });
  images = await makeTestImages();
});
after(async () => {
  await server.close();
});

async function sizeOf(bytes: Buffer | Uint8Array): Promise<[string | undefined, number | undefined, number | undefined]> {
  const meta = await sharp(bytes).metadata();
  return [meta.format, meta.width, meta.height];
}

async function download(url: string): Promise<Buffer> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

const b64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64');

describe('openai-node', () => {
  test('images.generate with only model and prompt: a url to a 1024x768 PNG, as the seed answers', async () => {
    const res = await client.images.generate({ model: MODEL, prompt: 'a red house on grass' });
    assert.equal(res.data?.length, 1);
    const url = res.data![0]!.url!;
    assert.match(url, /\/files\/generations\/.+\.png$/);
    assert.deepEqual(await sizeOf(await download(url)), ['png', 1024, 768]);
  });

  test('size "1024x1024", n: 2, and the seed fields through the body', async () => {
    const res = await client.images.generate({
      model: MODEL,
      prompt: 'a blue circle',
      size: '1024x1024',
      n: 2,
      response_format: 'b64_json',
      // @ts-expect-error the seed's own fields, sent as undocumented params (openai-node's README)
      seed: 7,
      enhance_prompt: false,
      negative_prompt: 'tree',
    });
    assert.equal(res.data?.length, 2);
    for (const [i, item] of res.data!.entries()) {
      const png = b64(item.b64_json);
      assert.deepEqual(await sizeOf(png), ['png', 1024, 1024]);
      const text = readPngText(png);
      assert.equal(text.Seed, String(7 + i));
      assert.equal(text['Negative prompt'], 'tree');
      assert.equal(item.revised_prompt, 'a blue circle');
    }
    assert.deepEqual((res as unknown as { meta: unknown }).meta, { usage: { credits_used: 182000, usd_spent: 0.091 } });
  });

  test('output_format jpeg and webp: the file is that format and keeps the metadata', async () => {
    for (const format of ['jpeg', 'webp'] as const) {
      const res = await client.images.generate({ model: MODEL, prompt: 'a moon at night', output_format: format, output_compression: 80, response_format: 'b64_json', size: '512x512' });
      const file = b64(res.data![0]!.b64_json);
      assert.deepEqual(await sizeOf(file), [format, 512, 512]);
      const xmp = await readOutputXmp(file);
      assert.equal(xmp?.['Iptc4xmpExt:DigitalSourceType'], 'http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia');
      assert.equal(xmp?.['qis:Size'], '512x512');
      assert.match(xmp?.['qis:Seed'] ?? '', /^\d+$/);
      assert.ok(xmp?.description, 'the drawn prompt is dc:description');
    }
    // As a url: the file is served with its own content type.
    const res = await client.images.generate({ model: MODEL, prompt: 'a moon', output_format: 'webp', size: '512x512' });
    const served = await fetch(res.data![0]!.url!);
    assert.equal(served.headers.get('content-type'), 'image/webp');
    assert.match(res.data![0]!.url!, /\.webp$/);
  });

  test('images.edit with one image answers b64_json of the requested size', async () => {
    const res = await client.images.edit({
      model: MODEL,
      image: await toFile(images['red.png']!, 'red.png', { type: 'image/png' }),
      prompt: 'make it night',
      size: '768x768',
    });
    assert.equal(res.data?.[0]?.url, undefined);
    assert.deepEqual(await sizeOf(b64(res.data![0]!.b64_json)), ['png', 768, 768]);
  });

  test('images.edit with several images, form fields as strings and image_size flattened', async () => {
    const res = await client.images.edit({
      model: MODEL,
      image: [await toFile(images['red.png']!, 'a.png', { type: 'image/png' }), await toFile(images['red.jpg']!, 'b.jpg', { type: 'image/jpeg' })],
      prompt: 'put the tree from image 2 into image 1',
      n: 2,
      // @ts-expect-error the seed's fields as undocumented params: openai-node writes them as form strings
      seed: 11,
      enhance_prompt: false,
      watermark: true,
      image_size: { width: 768, height: 512 },
      response_format: 'url',
    });
    assert.equal(res.data?.length, 2);
    const png = await download(res.data![1]!.url!);
    assert.deepEqual(await sizeOf(png), ['png', 768, 512]);
    const text = readPngText(png);
    assert.equal(text.Seed, '12');
    assert.equal(text.Watermark, 'invisible');
    assert.equal(text.Prompt, 'put the tree from image 2 into image 1');
  });

  test('stream: true with partial_images 2: two partial images, then the completed image with usage', async () => {
    const stream = await client.images.generate({ model: MODEL, prompt: 'a green tree at sunset', stream: true, partial_images: 2, size: '512x512', output_format: 'jpeg' });
    const events: Array<{ type: string; partial_image_index?: number; b64_json: string; usage?: unknown }> = [];
    for await (const event of stream) events.push(event);
    assert.deepEqual(events.map((e) => e.type), ['image_generation.partial_image', 'image_generation.partial_image', 'image_generation.completed']);
    assert.deepEqual(events.slice(0, 2).map((e) => e.partial_image_index), [0, 1]);
    for (const e of events) assert.deepEqual(await sizeOf(b64(e.b64_json)), ['jpeg', 512, 512]);
    const completed = events[2] as unknown as { usage: { usd_spent: number; total_tokens: number }; seed: number };
    assert.equal(completed.usage.usd_spent, 0.0455);
    assert.equal(typeof completed.seed, 'number');
    assert.notDeepEqual(events[0]!.b64_json, events[2]!.b64_json, 'a partial image is not the final one');
  });

  test('an edit streams image_edit.* events', async () => {
    const stream = await client.images.edit({ model: MODEL, image: await toFile(images['red.png']!, 'red.png'), prompt: 'make it night', stream: true, partial_images: 1, size: '512x512' });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    assert.deepEqual(types, ['image_edit.partial_image', 'image_edit.completed']);
  });

  test('errors arrive as the library error classes, with the field named', async () => {
    const bad = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'not-a-key', maxRetries: 0 });
    await assert.rejects(bad.images.generate({ model: MODEL, prompt: 'x' }), OpenAI.AuthenticationError);
    await assert.rejects(client.images.generate({ model: MODEL, prompt: 'x', size: '1536x1024' }), (err: unknown) => {
      assert.ok(err instanceof OpenAI.BadRequestError);
      assert.equal(err.param, 'size');
      assert.equal(err.code, 'invalid_value');
      assert.match(err.message, /512 to 1440/);
      return true;
    });
    await assert.rejects(
      client.images.edit({ model: MODEL, image: await toFile(images['red.png']!, 'red.png'), mask: await toFile(images['red.png']!, 'mask.png'), prompt: 'x' }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'mask',
    );
    await assert.rejects(client.images.generate({ model: MODEL, prompt: 'x', background: 'transparent' }), (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'background');
    await assert.rejects(
      // @ts-expect-error an unknown field stays rejected
      client.images.generate({ model: MODEL, prompt: 'x', num_images: 2 }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && err.code === 'unknown_field',
    );
  });
});

describe('AI SDK, @ai-sdk/openai-compatible', () => {
  const qwen = () => createOpenAICompatible({ name: 'qwen', baseURL: `${server.url}/v1`, apiKey: TEST_KEY });

  test('generateImage with size, n: 2 and the seed in providerOptions', async () => {
    const { images: out, providerMetadata } = await generateImage({
      model: qwen().imageModel(MODEL),
      prompt: 'a red house on the left and a green tree on the right',
      size: '1024x1024',
      n: 2,
      providerOptions: { qwen: { seed: 21, enhance_prompt: false } },
    });
    assert.equal(out.length, 2);
    const texts = [];
    for (const image of out) {
      assert.deepEqual(await sizeOf(image.uint8Array), ['png', 1024, 1024]);
      texts.push(readPngText(Buffer.from(image.uint8Array)).Seed);
    }
    assert.deepEqual(texts, ['21', '22']);
    assert.ok(providerMetadata);
  });

  test('an edit with two images (multipart to /images/edits)', async () => {
    const { image } = await generateImage({
      model: qwen().imageModel(MODEL),
      prompt: { text: 'make the house red', images: [images['red.png']!, images['red.webp']!] },
      size: '512x512',
      providerOptions: { qwen: { seed: 3, watermark: true } },
    });
    assert.deepEqual(await sizeOf(image.uint8Array), ['png', 512, 512]);
    assert.equal(readPngText(Buffer.from(image.uint8Array)).Seed, '3');
  });

  test('a rejected request is an APICallError with the status and the message', async () => {
    await assert.rejects(generateImage({ model: qwen().imageModel(MODEL), prompt: 'x', size: '100x100', maxRetries: 0 }), (err: unknown) => {
      assert.ok(APICallError.isInstance(err));
      assert.equal(err.statusCode, 400);
      assert.match(err.message, /size must be/);
      return true;
    });
    // An object option arrives in a form as "[object Object]": refused, naming the field.
    await assert.rejects(
      generateImage({ model: qwen().imageModel(MODEL), prompt: { text: 'x', images: [images['red.png']!] }, providerOptions: { qwen: { image_size: { width: 512, height: 512 } } }, maxRetries: 0 }),
      (err: unknown) => APICallError.isInstance(err) && err.statusCode === 400 && /image_size/.test(err.message),
    );
  });
});

describe('AI SDK, @ai-sdk/openai', () => {
  const openai = () => createOpenAI({ baseURL: `${server.url}/v1`, apiKey: TEST_KEY });

  test('generateImage with size and OpenAI options (output_format webp, quality low)', async () => {
    const { image } = await generateImage({
      model: openai().image(MODEL),
      prompt: 'a mountain with snow',
      size: '768x512',
      providerOptions: { openai: { outputFormat: 'webp', quality: 'low', outputCompression: 90 } },
    });
    assert.deepEqual(await sizeOf(image.uint8Array), ['webp', 768, 512]);
    assert.equal(image.mediaType, 'image/webp');
  });

  test('n: 2 (one call per image, as the provider splits it) and an edit without response_format', async () => {
    const { images: out } = await generateImage({ model: openai().image(MODEL), prompt: 'a sun', n: 2, size: '512x512' });
    assert.equal(out.length, 2);
    const { image } = await generateImage({ model: openai().image(MODEL), prompt: { text: 'make it night', images: [images['red.png']!] }, size: '512x512' });
    assert.deepEqual(await sizeOf(image.uint8Array), ['png', 512, 512]);
  });

  test('errors are APICallErrors', async () => {
    const bad = createOpenAI({ baseURL: `${server.url}/v1`, apiKey: 'nope' });
    await assert.rejects(generateImage({ model: bad.image(MODEL), prompt: 'x', maxRetries: 0 }), (err: unknown) => APICallError.isInstance(err) && err.statusCode === 401);
  });
});

describe('streams that do not finish', () => {
  // An engine that draws (with its previews), then holds the result until the run is aborted, or
  // fails on request: what a slow or broken backend looks like to the stream.
  let held: TestServer;
  let heldClient: OpenAI;
  before(async () => {
    held = await startTestServer({}, {
      wrapEngine: (engine): Engine => ({
        id: engine.id,
        kind: engine.kind,
        description: engine.description,
        load: () => engine.load(),
        capabilities: () => engine.capabilities(),
        health: () => engine.health(),
        close: () => engine.close(),
        async generate(request: EngineRequest, signal: AbortSignal, onProgress?: (p: EngineProgress) => void) {
          const result = await engine.generate(request, signal, onProgress);
          if (request.prompt.includes('fail here')) throw new ApiError('backend_error', 'the backend broke while drawing');
          await new Promise((_, reject) => {
            const abort = () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
            // The abort may have come while the real engine was still drawing.
            if (signal.aborted) abort();
            else signal.addEventListener('abort', abort, { once: true });
          });
          return result;
        },
      }),
    });
    heldClient = new OpenAI({ baseURL: `${held.url}/v1`, apiKey: TEST_KEY, maxRetries: 0 });
  });
  after(async () => {
    await held.close();
  });

  test('a failure ends the stream with an error event, which openai-node raises as an APIError', async () => {
    const stream = await heldClient.images.generate({ model: MODEL, prompt: 'fail here', stream: true, enhance_prompt: false } as OpenAI.ImageGenerateParamsStreaming);
    await assert.rejects(
      (async () => {
        for await (const _event of stream);
      })(),
      (err: unknown) => err instanceof OpenAI.APIError && /the backend broke/.test(err.message),
    );
  });

  test('a caller that goes away after a partial image cancels the job, which is not charged', async () => {
    const before = (await held.get('/v1/usage')).json;
    const controller = new AbortController();
    const stream = await heldClient.images.generate({ model: MODEL, prompt: 'a tree', stream: true, partial_images: 1, size: '512x512' }, { signal: controller.signal });
    for await (const event of stream) {
      assert.equal(event.type, 'image_generation.partial_image');
      controller.abort();
    }
    const [job] = (await held.get('/v1/jobs?limit=1')).json.data;
    // Follow the job to its end (its event stream ends with the terminal state).
    const events = await (await fetch(`${held.url}/v1/jobs/${job.id}/events`, { headers: { authorization: `Bearer ${TEST_KEY}` } })).text();
    assert.match(events, /event: canceled/);
    const afterUsage = (await held.get('/v1/usage')).json;
    assert.equal(afterUsage.generations, before.generations);
  });
});
