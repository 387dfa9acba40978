import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { startFakeChatServer, type FakeChatServer } from '../../test/fakes/fake-chat-server.ts';
import type { EnhanceInput } from '../domain/ports.ts';
import { createMemoryPromptCache, createPromptEnhancer, QUALITY_SUFFIX_EN, type PromptCache, type PromptLogger } from './index.ts';

const GOOD_REWRITE =
  'A cosy bakery at dawn, a wooden sign above the door reading "Fresh Bread" in white serif letters, warm light, realistic photography.';

function input(prompt: string, overrides: Partial<EnhanceInput> = {}): EnhanceInput {
  return { requestId: 'req-1', model: 'alibaba/qwen-image-2-0', prompt, seed: 42, isEdit: false, ...overrides };
}

function recordingLogger(): PromptLogger & { warnings: object[] } {
  const warnings: object[] = [];
  return { warnings, warn: (obj) => void warnings.push(obj), info: () => {} };
}

describe('createPromptEnhancer with an LLM', () => {
  let fake: FakeChatServer;
  before(async () => {
    fake = await startFakeChatServer({ apiKey: 'sk-test' });
  });
  after(() => fake.close());
  beforeEach(() => {
    fake.requests.length = 0;
    fake.setBehaviour({ kind: 'reply', content: GOOD_REWRITE });
  });

  const makeEnhancer = (overrides: { timeoutMs?: number; apiKey?: string; cache?: PromptCache; logger?: PromptLogger } = {}) =>
    createPromptEnhancer({
      llm: { url: fake.url, model: 'qwen2.5:7b', apiKey: overrides.apiKey ?? 'sk-test', timeoutMs: overrides.timeoutMs ?? 2000 },
      cache: overrides.cache ?? createMemoryPromptCache(),
      logger: overrides.logger,
    });

  it('uses a good rewrite and sends the protocol request', async () => {
    const enhancer = makeEnhancer();
    const result = await enhancer.enhance(input('a bakery with a sign "Fresh Bread"', { seed: 7 }));
    assert.deepEqual(result, { prompt: GOOD_REWRITE, source: 'llm' });
    assert.equal(fake.requests.length, 1);
    const sent = fake.requests[0]!;
    assert.equal(sent.model, 'qwen2.5:7b');
    assert.equal(sent.temperature, 0);
    assert.equal(sent.seed, 7);
    assert.equal(sent.authorization, 'Bearer sk-test');
    assert.equal(sent.messages[0]!.role, 'system');
    assert.match(sent.messages[0]!.content, /text-to-image/);
    assert.deepEqual(sent.messages[1], { role: 'user', content: 'a bakery with a sign "Fresh Bread"' });
    assert.deepEqual(enhancer.stats(), { llmCalls: 1, cacheHits: 0, fallbacks: 0, fallbackReasons: {} });
  });

  it('uses the Chinese rules for a Chinese prompt and the edit rules for an edit', async () => {
    fake.setBehaviour({ kind: 'reply', content: (request) => (request.messages[0]!.content.includes('文生图') ? '一只橘猫趴在窗台上，午后阳光，写实摄影。' : 'Make the sky blue, keep everything else unchanged.') });
    const enhancer = makeEnhancer();
    assert.equal((await enhancer.enhance(input('一只猫'))).source, 'llm');
    const edit = await enhancer.enhance(input('make the sky blue', { isEdit: true }));
    assert.equal(edit.prompt, 'Make the sky blue, keep everything else unchanged.');
    assert.match(fake.requests[1]!.messages[0]!.content, /image-editing/);
  });

  it('serves the second identical request from the cache', async () => {
    const enhancer = makeEnhancer();
    const first = await enhancer.enhance(input('a bakery with a sign "Fresh Bread"'));
    const second = await enhancer.enhance(input('a bakery with a sign "Fresh Bread"', { requestId: 'req-2' }));
    assert.equal(first.source, 'llm');
    assert.deepEqual(second, { prompt: first.prompt, source: 'cache' });
    assert.equal(fake.requests.length, 1);
    await enhancer.enhance(input('a bakery with a sign "Fresh Bread"', { seed: 43 }));
    assert.equal(fake.requests.length, 2, 'another seed is another key');
    assert.equal(enhancer.stats().cacheHits, 1);
  });

  it('makes one call for concurrent identical requests', async () => {
    fake.setBehaviour({ kind: 'reply', content: GOOD_REWRITE, delayMs: 50 });
    const enhancer = makeEnhancer();
    const results = await Promise.all([1, 2, 3].map((n) => enhancer.enhance(input('a bakery "Fresh Bread"', { requestId: `r${n}` }))));
    assert.equal(fake.requests.length, 1);
    assert.ok(results.every((r) => r.prompt === GOOD_REWRITE && r.source === 'llm'));
  });

  it('falls back when the LLM is slower than the budget', async () => {
    fake.setBehaviour({ kind: 'reply', content: GOOD_REWRITE, delayMs: 5000 });
    const logger = recordingLogger();
    const enhancer = makeEnhancer({ timeoutMs: 200, logger });
    // The reply would come after 5 s: an offline result with reason "timeout" is the budget at work.
    const result = await enhancer.enhance(input('a lighthouse'));
    assert.deepEqual(result, { prompt: `a lighthouse${QUALITY_SUFFIX_EN}`, source: 'offline', fallbackReason: 'timeout' });
    assert.equal(logger.warnings.length, 1);
    assert.equal((logger.warnings[0] as { requestId: string }).requestId, 'req-1');
    assert.equal((logger.warnings[0] as { reason: string }).reason, 'timeout');
  });

  it('falls back on a 500', async () => {
    fake.setBehaviour({ kind: 'error', status: 500, message: 'The server had an error', type: 'server_error' });
    const result = await makeEnhancer().enhance(input('a lighthouse'));
    assert.equal(result.source, 'offline');
    assert.equal(result.fallbackReason, 'http_500');
  });

  it('falls back on a 401', async () => {
    const result = await makeEnhancer({ apiKey: 'sk-wrong' }).enhance(input('a lighthouse'));
    assert.equal(result.fallbackReason, 'http_401');
    assert.equal(result.prompt, `a lighthouse${QUALITY_SUFFIX_EN}`);
  });

  it('falls back on garbage', async () => {
    const enhancer = makeEnhancer();
    fake.setBehaviour({ kind: 'raw', status: 200, body: '<html>oops</html>', contentType: 'text/html' });
    assert.equal((await enhancer.enhance(input('a lighthouse'))).fallbackReason, 'bad_response');
    fake.setBehaviour({ kind: 'raw', status: 200, body: '{"id":"x","object":"chat.completion"}' });
    assert.equal((await enhancer.enhance(input('a lighthouse'))).fallbackReason, 'bad_response');
    fake.setBehaviour({ kind: 'reply', content: GOOD_REWRITE, finishReason: 'length' });
    assert.equal((await enhancer.enhance(input('a lighthouse'))).fallbackReason, 'truncated');
    assert.deepEqual(enhancer.stats().fallbackReasons, { bad_response: 2, truncated: 1 });
  });

  it('refuses a rewrite that drops the quoted text', async () => {
    fake.setBehaviour({ kind: 'reply', content: 'A cosy bakery at dawn with a wooden sign above the door.' });
    const result = await makeEnhancer().enhance(input('a bakery with a sign "Fresh Bread"'));
    assert.equal(result.fallbackReason, 'refused_quote_dropped');
    assert.equal(result.prompt, `a bakery with a sign "Fresh Bread"${QUALITY_SUFFIX_EN}`);
  });

  it('refuses a rewrite in the wrong language', async () => {
    fake.setBehaviour({ kind: 'reply', content: 'A red fox standing in deep snow, soft morning light, realistic photography.' });
    const result = await makeEnhancer().enhance(input('雪地里的红狐狸'));
    assert.equal(result.fallbackReason, 'refused_language');
    assert.equal(result.prompt, '雪地里的红狐狸，超清，4K，电影级构图。');
  });

  it('refuses a chat answer', async () => {
    fake.setBehaviour({ kind: 'reply', content: "Sure! Here's an enhanced prompt: a tall lighthouse at night." });
    assert.equal((await makeEnhancer().enhance(input('a lighthouse'))).fallbackReason, 'refused_answer');
  });

  it('does not cache a fallback', async () => {
    const enhancer = makeEnhancer();
    fake.setBehaviour({ kind: 'error', status: 503, message: 'overloaded' });
    assert.equal((await enhancer.enhance(input('a bakery "Fresh Bread"'))).source, 'offline');
    fake.setBehaviour({ kind: 'reply', content: GOOD_REWRITE });
    assert.equal((await enhancer.enhance(input('a bakery "Fresh Bread"'))).source, 'llm');
    assert.equal(fake.requests.length, 2);
  });

  it('retries without seed when the server rejects it', async () => {
    const strict = await startFakeChatServer({ rejectedFields: ['seed'], behaviour: { kind: 'reply', content: GOOD_REWRITE } });
    try {
      const enhancer = createPromptEnhancer({ llm: { url: strict.url, model: 'm' }, cache: createMemoryPromptCache() });
      const result = await enhancer.enhance(input('a bakery "Fresh Bread"'));
      assert.equal(result.source, 'llm');
      assert.equal(strict.requests.length, 2);
      assert.equal(strict.requests[1]!.seed, undefined);
      assert.equal(enhancer.stats().llmCalls, 2);
    } finally {
      await strict.close();
    }
  });

  it('falls back when the caller aborts, and when the server is unreachable', async () => {
    fake.setBehaviour({ kind: 'reply', content: GOOD_REWRITE, delayMs: 5000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    const aborted = await makeEnhancer().enhance(input('a lighthouse', { signal: controller.signal }));
    assert.equal(aborted.fallbackReason, 'aborted');

    const closed = await startFakeChatServer();
    const url = closed.url;
    await closed.close();
    const enhancer = createPromptEnhancer({ llm: { url, model: 'm', timeoutMs: 1000 }, cache: createMemoryPromptCache() });
    assert.equal((await enhancer.enhance(input('a lighthouse'))).fallbackReason, 'connection');
  });

  it('survives a cache that throws', async () => {
    const broken: PromptCache = {
      get: () => {
        throw new Error('disk I/O error');
      },
      set: () => {
        throw new Error('disk I/O error');
      },
    };
    const logger = recordingLogger();
    const result = await makeEnhancer({ cache: broken, logger }).enhance(input('a bakery "Fresh Bread"'));
    assert.equal(result.source, 'llm');
    assert.equal(logger.warnings.length, 2);
  });

  it('counts fallbacks by reason', async () => {
    const enhancer = makeEnhancer();
    fake.setBehaviour({ kind: 'error', status: 500, message: 'boom' });
    await enhancer.enhance(input('a'));
    await enhancer.enhance(input('b'));
    await enhancer.enhance(input('   '));
    assert.deepEqual(enhancer.stats(), { llmCalls: 2, cacheHits: 0, fallbacks: 3, fallbackReasons: { http_500: 2, empty_prompt: 1 } });
  });
});

describe('createPromptEnhancer keeps PROMPT_ENHANCER_API_KEY out of the log', () => {
  const KEY = 'sk-proj-Zq7sEcReT0123456789abcdefXYZ';
  let fake: FakeChatServer;
  before(async () => {
    fake = await startFakeChatServer();
  });
  after(() => fake.close());

  /** The enhancer logging through a real pino logger whose destination keeps every line. */
  function enhancerWithLog(): { enhance: (prompt: string) => Promise<unknown>; lines: string[] } {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = pino({ level: 'info' }, destination);
    const enhancer = createPromptEnhancer({ llm: { url: fake.url, model: 'gpt-4o-mini', apiKey: KEY, timeoutMs: 2000 }, cache: createMemoryPromptCache(), logger });
    return { enhance: (prompt) => enhancer.enhance(input(prompt)), lines };
  }

  it('scrubs the key and any Bearer token from a 401 that quotes the Authorization header', async () => {
    fake.setBehaviour({ kind: 'error', status: 401, message: `Invalid header "Authorization: Bearer ${KEY}"; upstream saw Bearer tok_other.Secret-9 and key ${KEY}`, code: 'invalid_api_key' });
    const log = enhancerWithLog();
    await log.enhance('a lighthouse');
    assert.equal(fake.requests[fake.requests.length - 1]!.authorization, `Bearer ${KEY}`);
    const text = log.lines.join('');
    assert.match(text, /http_401/);
    assert.match(text, /Bearer \*\*\*/);
    assert.doesNotMatch(text, /Zq7sEcReT/);
    assert.doesNotMatch(text, /tok_other/);
  });

  it('scrubs a key that a non-JSON body places across the 200-character cut', async () => {
    fake.setBehaviour({ kind: 'raw', status: 401, body: `${'x'.repeat(190)}${KEY} rejected`, contentType: 'text/plain' });
    const log = enhancerWithLog();
    await log.enhance('a lighthouse');
    const text = log.lines.join('');
    assert.match(text, /http_401/);
    assert.doesNotMatch(text, /sk-proj-Zq/);
  });
});

describe('createPromptEnhancer without an LLM', () => {
  it('uses the offline rewriter and counts no fallback', async () => {
    const enhancer = createPromptEnhancer({ cache: createMemoryPromptCache() });
    assert.deepEqual(await enhancer.enhance(input('  a  lighthouse ')), { prompt: `a lighthouse${QUALITY_SUFFIX_EN}`, source: 'offline' });
    assert.deepEqual(enhancer.stats(), { llmCalls: 0, cacheHits: 0, fallbacks: 0, fallbackReasons: {} });
  });

  it('keeps the caller\'s words: the vocabulary of the bundled model is not the enhancer\'s concern', async () => {
    const enhancer = createPromptEnhancer({ cache: createMemoryPromptCache() });
    const result = await enhancer.enhance(input('a scarlet cabin beside the ocean at twilight'));
    assert.equal(result.prompt, `a scarlet cabin beside the ocean at twilight${QUALITY_SUFFIX_EN}`);
  });

  it('rejects malformed LLM settings at construction', () => {
    const cache = createMemoryPromptCache();
    assert.throws(() => createPromptEnhancer({ llm: { url: 'localhost:11434', model: 'm' }, cache }), TypeError);
    assert.throws(() => createPromptEnhancer({ llm: { url: 'http://localhost:11434/v1', model: '' }, cache }), TypeError);
    assert.throws(() => createPromptEnhancer({ llm: { url: 'http://localhost:11434/v1', model: 'm', timeoutMs: 0 }, cache }), RangeError);
  });
});
