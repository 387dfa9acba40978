import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startFakeOpenaiImages, type FakeOpenaiImages } from '../../../test/fakes/fake-openai-images.ts';
import { startHttpServer } from '../testing/fake-http.ts';
import { conformanceRequest, expectFailure, referenceImages } from '../testing/conformance.ts';
import { composePrompt, OPENAI_DIALECTS } from './openai-dialect.ts';
import { OpenaiEngine } from './openai-engine.ts';

describe('OpenAI-compatible engine', () => {
  let fake: FakeOpenaiImages;
  let engine: OpenaiEngine;
  const signal = () => new AbortController().signal;

  before(async () => {
    fake = await startFakeOpenaiImages();
    engine = new OpenaiEngine({ id: 'vllm-a', url: fake.url, flavor: 'vllm-omni', model: 'Qwen/Qwen-Image', extraParams: { num_inference_steps: 30, true_cfg_scale: 4 } });
  });
  after(async () => {
    await engine.close();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('sends size as WxH, the model, b64_json and the configured extra fields', async () => {
    await engine.generate(conformanceRequest({ width: 1024, height: 768, negativePrompt: 'blurry', seed: 5 }), signal());
    const r = fake.requests[0]!;
    assert.equal(r.endpoint, 'generations');
    assert.deepEqual(r.fields, {
      model: 'Qwen/Qwen-Image',
      prompt: r.prompt,
      n: 1,
      size: '1024x768',
      response_format: 'b64_json',
      negative_prompt: 'blurry',
      seed: 5,
      num_inference_steps: 30,
      true_cfg_scale: 4,
    });
  });

  it('generic flavor sends only OpenAI fields; edits use image[] by default, image for SGLang', async () => {
    const generic = new OpenaiEngine({ id: 'generic', url: fake.url });
    await generic.generate(conformanceRequest({ negativePrompt: 'x', referenceImages: referenceImages(2) }), signal());
    assert.equal(fake.requests[0]!.negativePrompt, undefined);
    assert.equal(fake.requests[0]!.seed, undefined);
    assert.deepEqual(fake.requests[0]!.imageFields, ['image[]', 'image[]']);
    await generic.close();
    const sglang = new OpenaiEngine({ id: 'sglang', url: fake.url, flavor: 'sglang' });
    await sglang.generate(conformanceRequest({ referenceImages: referenceImages(1) }), signal());
    assert.deepEqual(fake.requests[1]!.imageFields, ['image']);
    assert.equal(fake.requests[1]!.fields.seed, 42);
    await sglang.close();
  });

  it('downloads URL results, absolute and server-relative (SGLang)', async () => {
    fake.responseMode = 'url';
    const a = await engine.generate(conformanceRequest(), signal());
    assert.equal(a.image.width, 512);
    fake.responseMode = 'relative-url';
    const b = await engine.generate(conformanceRequest({ width: 768 }), signal());
    assert.equal(b.image.width, 768);
  });

  it('sends the bearer token from the config and never leaks it in errors', async () => {
    fake.apiKey = 'sk-secret-token-123456';
    const keyed = new OpenaiEngine({ id: 'hosted', url: fake.url, apiKey: 'sk-secret-token-123456' });
    await keyed.generate(conformanceRequest(), signal());
    assert.equal(fake.requests[0]!.authorization, 'Bearer sk-secret-token-123456');
    const wrong = new OpenaiEngine({ id: 'hosted-wrong', url: fake.url, apiKey: 'sk-wrong-token-654321' });
    await assert.rejects(
      wrong.generate(conformanceRequest(), signal()),
      expectFailure('backend_error', (e) => assert.ok(!String(e.message).includes('sk-wrong-token-654321'))),
    );
    await keyed.close();
    await wrong.close();
  });

  it('maps 429 to 503 engine_unavailable with the server\'s Retry-After', async () => {
    fake.failure = 'rate-limit';
    await assert.rejects(
      engine.generate(conformanceRequest(), signal()),
      expectFailure('engine_unavailable', (e) => {
        assert.equal(e.retryAfterS, 7);
        assert.equal(e.status, 503);
      }),
    );
  });

  it('maps 5xx to a retryable 502 and 503 to engine_unavailable', async () => {
    fake.failure = 'server-error';
    await assert.rejects(
      engine.generate(conformanceRequest(), signal()),
      expectFailure('backend_error', (e) => {
        assert.match(String(e.message), /illegal memory access/);
        assert.equal(e.retryable, true);
      }),
    );
    fake.failure = 'unavailable';
    await assert.rejects(engine.generate(conformanceRequest(), signal()), expectFailure('engine_unavailable'));
  });

  it('maps a 400 to backend_rejected carrying the server\'s reason, not retryable', async () => {
    fake.failure = 'bad-request';
    await assert.rejects(
      engine.generate(conformanceRequest(), signal()),
      expectFailure('backend_rejected', (e) => {
        assert.equal(e.status, 400);
        assert.match(String(e.message), /exceeds the maximum allowed size/);
        assert.equal(e.retryable, false);
        assert.equal(e.countsAsFailure, false);
      }),
    );
  });

  it('malformed output and wrong sizes are non-retryable 502s', async () => {
    fake.failure = 'malformed';
    await assert.rejects(engine.generate(conformanceRequest(), signal()), expectFailure('backend_error', (e) => assert.match(String(e.message), /neither data\[0\]\.b64_json nor data\[0\]\.url/)));
    fake.failure = 'not-an-image';
    await assert.rejects(engine.generate(conformanceRequest(), signal()), expectFailure('backend_error', (e) => assert.equal(e.retryable, false)));
    fake.failure = 'wrong-size';
    await assert.rejects(
      engine.generate(conformanceRequest({ width: 512, height: 768 }), signal()),
      expectFailure('backend_error', (e) => assert.match(String(e.message), /returned 528x768, asked for 512x768/)),
    );
  });

  it('connection refused is 503 engine_unavailable, unreachable, and health says so', async () => {
    const gone = await startHttpServer(() => undefined);
    await gone.close();
    const down = new OpenaiEngine({ id: 'down', url: gone.url });
    await assert.rejects(
      down.generate(conformanceRequest(), signal()),
      expectFailure('engine_unavailable', (e) => {
        assert.equal(e.unreachable, true);
        assert.match(String(e.message), /ECONNREFUSED/);
      }),
    );
    const health = await down.health();
    assert.equal(health.ok, false);
    await down.close();
  });

  it('rejects reference images when the server has no edits endpoint', async () => {
    const noEdits = new OpenaiEngine({ id: 'localai', url: fake.url, flavor: 'localai', edits: false });
    assert.equal(noEdits.capabilities().maxReferenceImages, 0);
    await assert.rejects(noEdits.generate(conformanceRequest({ referenceImages: referenceImages(1) }), signal()), expectFailure('backend_rejected'));
    await noEdits.close();
  });

  it('LocalAI edits: references as ref_images (plain base64 PNG) in the generations JSON, never /v1/images/edits', async () => {
    fake.dialect = 'localai';
    const localai = new OpenaiEngine({ id: 'localai', url: fake.url, flavor: 'localai', model: 'qwen-image-edit' });
    try {
      const result = await localai.generate(
        conformanceRequest({ prompt: 'make it blue', negativePrompt: 'fog', seed: 12, width: 768, height: 512, referenceImages: referenceImages(2) }),
        signal(),
      );
      assert.deepEqual([result.image.width, result.image.height], [768, 512]);
      const r = fake.requests.at(-1)!;
      assert.equal(r.endpoint, 'generations');
      assert.deepEqual(r.imageFields, ['ref_images', 'ref_images']);
      // Every reference decoded as sent: LocalAI drops an entry it cannot decode without saying so.
      assert.equal(fake.droppedRefImages, 0);
      assert.equal(r.imageSizes.every((size) => size !== undefined), true);
      assert.deepEqual([r.prompt, r.seed, r.size], ['make it blue|fog', 12, '768x512']);
      // The same server without its dialect: the OpenAI multipart call finds no route.
      const generic = new OpenaiEngine({ id: 'generic', url: fake.url });
      await assert.rejects(generic.generate(conformanceRequest({ referenceImages: referenceImages(1) }), signal()));
      await generic.close();
    } finally {
      await localai.close();
    }
  });

  it('declares what its dialect carries: negative prompt and seed by field or inside the prompt, no progress', () => {
    const caps = (flavor: 'generic' | 'vllm-omni' | 'localai' | 'sd-server') => new OpenaiEngine({ id: flavor, url: fake.url, flavor }).capabilities();
    assert.deepEqual([caps('generic').negativePrompt, caps('generic').seed], [false, false]);
    assert.deepEqual([caps('vllm-omni').negativePrompt, caps('vllm-omni').seed], [true, true]);
    assert.deepEqual([caps('localai').negativePrompt, caps('localai').seed, caps('localai').maxReferenceImages], [true, true, 3]);
    assert.deepEqual([caps('sd-server').negativePrompt, caps('sd-server').seed], [true, true]);
    assert.deepEqual([caps('vllm-omni').progress, caps('vllm-omni').previews, caps('vllm-omni').masks], [false, false, false]);
  });
});

describe('prompt dialects', () => {
  const parts = { prompt: 'a cat | a dog', negativePrompt: 'blurry', seed: 9 };
  it('LocalAI carries the negative prompt after a pipe', () => {
    assert.equal(composePrompt(OPENAI_DIALECTS.localai, parts), 'a cat   a dog|blurry');
  });
  it('sd-server carries seed and negative prompt in <sd_cpp_extra_args>', () => {
    const prompt = composePrompt(OPENAI_DIALECTS['sd-server'], parts);
    const extra = /<sd_cpp_extra_args>(.*)<\/sd_cpp_extra_args>/.exec(prompt)!;
    assert.deepEqual(JSON.parse(extra[1]!), { seed: 9, negative_prompt: 'blurry' });
    assert.ok(prompt.startsWith('a cat | a dog '));
  });
});
