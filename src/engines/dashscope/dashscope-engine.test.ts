import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startFakeDashscope, type FakeDashscope } from '../../../test/fakes/fake-dashscope.ts';
import { conformanceRequest, expectFailure, referenceImages } from '../testing/conformance.ts';
import { DashscopeEngine } from './dashscope-engine.ts';

describe('DashScope engine', () => {
  let fake: FakeDashscope;
  let engine: DashscopeEngine;
  const signal = () => new AbortController().signal;

  before(async () => {
    fake = await startFakeDashscope();
    engine = new DashscopeEngine({ id: 'dashscope', url: fake.url, apiKey: fake.apiKey, apiKeyEnv: 'DASHSCOPE_API_KEY' });
  });
  after(async () => {
    await engine.close();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('sends the documented body: images then text, W*H, prompt_extend and watermark off', async () => {
    await engine.generate(conformanceRequest({ width: 1024, height: 768, seed: 3, negativePrompt: 'low quality', referenceImages: referenceImages(2) }), signal());
    const r = fake.requests[0]!;
    assert.equal(r.authorization, `Bearer ${fake.apiKey}`);
    assert.equal(r.model, 'qwen-image-2.0');
    assert.equal(r.images.length, 2);
    assert.ok(r.images.every((uri) => uri.startsWith('data:image/png;base64,')));
    assert.deepEqual(r.parameters, { size: '1024*768', n: 1, prompt_extend: false, watermark: false, seed: 3, negative_prompt: 'low quality' });
    assert.equal(fake.downloads, 1, 'result downloaded at once');
  });

  it('omits negative_prompt when the caller gave none, and honours a configured model', async () => {
    const pro = new DashscopeEngine({ id: 'ds-pro', url: fake.url, apiKey: fake.apiKey, model: 'qwen-image-2.0-pro' });
    await pro.generate(conformanceRequest(), signal());
    assert.equal(fake.requests[0]!.model, 'qwen-image-2.0-pro');
    assert.ok(!('negative_prompt' in fake.requests[0]!.parameters));
    await pro.close();
  });

  it('Throttling / 429 -> 503 with Retry-After (header, else 10 s; 60 s for a used-up quota)', async () => {
    fake.failure = 'throttle';
    await assert.rejects(engine.generate(conformanceRequest(), signal()), expectFailure('engine_unavailable', (e) => assert.equal(e.retryAfterS, 4)));
    fake.failure = 'quota';
    await assert.rejects(engine.generate(conformanceRequest(), signal()), expectFailure('engine_unavailable', (e) => assert.equal(e.retryAfterS, 60)));
  });

  it('InvalidParameter and DataInspectionFailed -> 400 backend_rejected with the reason', async () => {
    fake.failure = 'invalid-parameter';
    await assert.rejects(
      engine.generate(conformanceRequest(), signal()),
      expectFailure('backend_rejected', (e) => assert.match(String(e.message), /InvalidParameter: The image resolution is out of range/)),
    );
    fake.failure = 'inspection';
    await assert.rejects(
      engine.generate(conformanceRequest(), signal()),
      expectFailure('backend_rejected', (e) => assert.match(String(e.message), /content inspection.*DataInspectionFailed/)),
    );
  });

  it('InvalidApiKey -> 502 backend_error naming the variable, never the key', async () => {
    const wrongKey = 'sk-wrong-key-that-must-not-leak';
    const wrong = new DashscopeEngine({ id: 'ds-wrong', url: fake.url, apiKey: wrongKey, apiKeyEnv: 'DASHSCOPE_API_KEY' });
    await assert.rejects(
      wrong.generate(conformanceRequest(), signal()),
      expectFailure('backend_error', (e) => {
        assert.equal(e.status, 502);
        assert.match(String(e.message), /InvalidApiKey/);
        assert.match(String(e.message), /DASHSCOPE_API_KEY/);
        assert.ok(!JSON.stringify({ m: e.message, s: String(e.stack) }).includes(wrongKey));
      }),
    );
    await wrong.close();
  });

  it('account problems (Arrearage) are 502 not 400; 5xx are 502/503', async () => {
    fake.failure = 'arrearage';
    await assert.rejects(engine.generate(conformanceRequest(), signal()), expectFailure('backend_error'));
    fake.failure = 'internal';
    await assert.rejects(engine.generate(conformanceRequest(), signal()), expectFailure('backend_error', (e) => assert.equal(e.retryable, true)));
    fake.failure = 'unavailable';
    await assert.rejects(engine.generate(conformanceRequest(), signal()), expectFailure('engine_unavailable'));
  });

  it('malformed output, expired URLs and wrong sizes are non-retryable 502s', async () => {
    fake.failure = 'malformed';
    await assert.rejects(engine.generate(conformanceRequest(), signal()), expectFailure('backend_error', (e) => assert.match(String(e.message), /no image/)));
    fake.failure = 'expired-url';
    await assert.rejects(engine.generate(conformanceRequest(), signal()), expectFailure('backend_error', (e) => assert.match(String(e.message), /HTTP 403/)));
    fake.failure = 'wrong-size';
    await assert.rejects(
      engine.generate(conformanceRequest(), signal()),
      expectFailure('backend_error', (e) => {
        assert.match(String(e.message), /returned 576x512, asked for 512x512/);
        assert.equal(e.retryable, false);
      }),
    );
  });

  it('refuses to start without a key', () => {
    assert.throws(() => new DashscopeEngine({ id: 'x', apiKey: '' }), /no API key/);
  });
});
