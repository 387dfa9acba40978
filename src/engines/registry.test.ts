import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeComfyui, type FakeComfyui } from '../../test/fakes/fake-comfyui.ts';
import { startFakeDashscope, type FakeDashscope } from '../../test/fakes/fake-dashscope.ts';
import { BACKEND_DEFAULTS, BackendsConfigError, defaultBackendsConfig, validateBackendsConfig } from '../config/backends.ts';
import { buildModelEngines, ENGINE_MODULES } from './registry.ts';
import type { RouterDescription } from './router/types.ts';
import { conformanceRequest, referenceImages } from './testing/conformance.ts';
import { ScriptedEngine } from './testing/scripted-engine.ts';

describe('buildModelEngines', () => {
  let comfy: FakeComfyui;
  let dashscope: FakeDashscope;
  before(async () => {
    comfy = await startFakeComfyui();
    dashscope = await startFakeDashscope();
  });
  after(async () => {
    await comfy.close();
    await dashscope.close();
  });

  it('builds one router per public model from the default config, over the builtin engine', async () => {
    const builtins: string[] = [];
    const engines = buildModelEngines({
      config: defaultBackendsConfig(),
      createBuiltin: ({ backendId, model }) => {
        builtins.push(`${model}/${backendId}`);
        return new ScriptedEngine('builtin', 'builtin');
      },
    });
    assert.deepEqual([...engines.keys()], ['alibaba/qwen-image-2-0']);
    assert.deepEqual(builtins, ['alibaba/qwen-image-2-0/builtin']);
    const engine = engines.get('alibaba/qwen-image-2-0')!;
    assert.equal(engine.kind, 'router');
    await engine.load();
    const result = await engine.generate(conformanceRequest(), new AbortController().signal);
    assert.equal(result.info?.backend, 'builtin');
    const description = (engine as unknown as { describe?: () => RouterDescription }).describe?.();
    assert.equal(description?.backends[0]?.kind, 'builtin');
    await engine.close();
  });

  it('wires every backend type with its defaults, keys from env, and serves through them', async () => {
    const config = validateBackendsConfig({
      models: {
        'alibaba/qwen-image-2-0': {
          backends: [
            { id: 'comfy', type: 'comfyui', url: comfy.url },
            { id: 'cloud', type: 'dashscope', url: dashscope.url, apiKeyEnv: 'TEST_DASHSCOPE_KEY', priority: 1 },
            { id: 'vllm', type: 'openai', url: 'http://127.0.0.1:9', flavor: 'vllm-omni', priority: 2 },
            { id: 'local', type: 'builtin', priority: 9, maxReferenceImages: 0 },
          ],
        },
      },
      // A generous check deadline: on a loaded machine a 1 s limit marked the fake ComfyUI down, and the edit went
      // to the next tier. Port 9 refuses at once, so the long limit costs nothing.
      healthCheck: { intervalMs: 60_000, timeoutMs: 60_000 },
    });
    const engines = buildModelEngines({
      config,
      createBuiltin: () => new ScriptedEngine('builtin', 'builtin'),
      env: { TEST_DASHSCOPE_KEY: dashscope.apiKey },
    });
    const engine = engines.get('alibaba/qwen-image-2-0')!;
    await engine.load();
    const d = (engine as unknown as { describe: () => RouterDescription }).describe();
    assert.deepEqual(
      d.backends.map((b) => [b.id, b.kind, b.priority, b.concurrency, b.maxReferenceImages]),
      [
        ['comfy', 'comfyui', 0, 1, 3],
        ['cloud', 'dashscope', 1, 2, 3],
        ['vllm', 'openai', 2, 1, 3],
        ['local', 'builtin', 9, 1, 0],
      ],
    );
    assert.equal(d.backends.find((b) => b.id === 'vllm')!.healthy, false, 'nothing listens on port 9');
    const edit = await engine.generate(conformanceRequest({ referenceImages: referenceImages(2) }), new AbortController().signal);
    assert.equal(edit.info?.backend, 'comfy');
    assert.equal(comfy.prompts.at(-1)!.images.length, 2);
    comfy.failure = 'execution-error';
    const fallback = await engine.generate(conformanceRequest(), new AbortController().signal);
    assert.equal(fallback.info?.backend, 'cloud');
    assert.equal(dashscope.requests.length, 1);
    await engine.close();
  });

  it('fails at start-up when an apiKeyEnv variable is not set, naming it', () => {
    const config = validateBackendsConfig({
      models: { m: { backends: [{ id: 'cloud', type: 'dashscope', apiKeyEnv: 'NOT_SET_ANYWHERE' }] } },
    });
    assert.throws(
      () => buildModelEngines({ config, createBuiltin: () => new ScriptedEngine('b'), env: {} }),
      /backend cloud: environment variable NOT_SET_ANYWHERE \(apiKeyEnv\) is not set/,
    );
  });
});

describe('ENGINE_MODULES', () => {
  const issuesOf = (backend: Record<string, unknown>): string[] => {
    try {
      validateBackendsConfig({ models: { m: { backends: [backend] } } });
    } catch (err) {
      assert.ok(err instanceof BackendsConfigError);
      return err.issues;
    }
    return [];
  };

  it('keeps every default the routing file had before each engine owned its own', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(BACKEND_DEFAULTS)), {
      priority: 0,
      weight: 1,
      maxReferenceImages: 3,
      healthCheck: { intervalMs: 15_000, timeoutMs: 3_000 },
      circuitBreaker: { failureThreshold: 3, resetMs: 30_000 },
      overloadRetry: { retries: 2, maxDelayMs: 10_000, baseDelayMs: 250 },
      concurrency: { builtin: 1, comfyui: 1, openai: 1, dashscope: 2 },
      timeoutMs: { builtin: 0, comfyui: 300_000, openai: 300_000, dashscope: 180_000 },
    });
  });

  it('puts each registered type into the validator, with its own fields only', () => {
    assert.deepEqual(issuesOf({ id: 'x', type: 'nope' }), ['models["m"].backends[0].type: must be one of "builtin", "comfyui", "openai", "dashscope"']);
    for (const module of ENGINE_MODULES) {
      const required = Object.fromEntries((module.schema.required ?? []).map((k) => [k, k === 'url' ? 'http://127.0.0.1:1' : 'SOME_KEY']));
      assert.deepEqual(issuesOf({ id: 'x', type: module.type, ...required }), [], module.type);
      assert.deepEqual(issuesOf({ id: 'x', type: module.type, ...required, bogus: 1 }), ['models["m"].backends[0]: unknown property "bogus"'], module.type);
      for (const field of module.schema.required ?? []) {
        assert.ok(issuesOf({ id: 'x', type: module.type }).includes(`models["m"].backends[0]: missing required property "${field}"`), `${module.type} ${field}`);
      }
    }
  });
});
