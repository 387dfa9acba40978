import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startFakeDashscope, type FakeDashscope } from '../../../test/fakes/fake-dashscope.ts';
import { RouterEngine } from '../router/router-engine.ts';
import type { EngineLogger } from '../remote/logger.ts';
import { startHttpServer } from '../testing/fake-http.ts';
import { DashscopeEngine } from './dashscope-engine.ts';

describe('DashScope health confirms the API key', () => {
  let fake: FakeDashscope;

  before(async () => {
    fake = await startFakeDashscope();
  });
  after(async () => {
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('a valid key: healthy after one free task query, no generation', async () => {
    const engine = new DashscopeEngine({ id: 'ds', url: fake.url, apiKey: fake.apiKey, apiKeyEnv: 'DASHSCOPE_API_KEY' });
    try {
      const health = await engine.health();
      assert.equal(health.ok, true, health.detail);
      assert.match(health.detail ?? '', /API key accepted/);
      assert.equal(fake.taskQueries, 1);
      assert.equal(fake.requests.length, 0, 'nothing was generated (or billed)');
    } finally {
      await engine.close();
    }
  });

  it('a rejected key: unhealthy "API key rejected", naming the variable, and the key appears in no detail or log', async () => {
    const wrongKey = 'sk-wrong-key-that-must-not-leak-42';
    const logged: unknown[] = [];
    const logger: EngineLogger = {
      debug: (o, m) => logged.push([o, m]),
      info: (o, m) => logged.push([o, m]),
      warn: (o, m) => logged.push([o, m]),
      error: (o, m) => logged.push([o, m]),
    };
    const engine = new DashscopeEngine({ id: 'ds-wrong', url: fake.url, apiKey: wrongKey, apiKeyEnv: 'DASHSCOPE_API_KEY', logger });
    const health = await engine.health();
    assert.equal(health.ok, false);
    assert.match(health.detail ?? '', /^API key rejected \(check DASHSCOPE_API_KEY\): InvalidApiKey/);
    const router = new RouterEngine({
      model: 'alibaba/qwen-image-2-0',
      backends: [{ id: 'ds-wrong', engine, priority: 0, weight: 1, concurrency: 1, maxReferenceImages: 3, timeoutMs: 0 }],
      healthCheck: { intervalMs: 0, timeoutMs: 5000 },
      circuitBreaker: { failureThreshold: 3, resetMs: 1000 },
      logger,
    });
    try {
      await router.load();
      const backend = router.describe().backends[0]!;
      assert.equal(backend.healthy, false);
      assert.match(backend.healthDetail ?? '', /API key rejected/);
      assert.ok(logged.some((l) => JSON.stringify(l).includes('API key rejected')), 'the refusal is logged');
      const everything = JSON.stringify({ health, logged, description: router.describe() });
      assert.ok(!everything.includes(wrongKey), 'the key never appears');
    } finally {
      await router.close();
    }
  });

  it('an unreachable host is unhealthy with the transport reason', async () => {
    const closed = await startHttpServer(() => undefined);
    const url = closed.url;
    await closed.close();
    const engine = new DashscopeEngine({ id: 'ds-down', url, apiKey: 'sk-some-key-1234' });
    try {
      const health = await engine.health();
      assert.equal(health.ok, false);
      assert.match(health.detail ?? '', /ECONNREFUSED/);
    } finally {
      await engine.close();
    }
  });
});
