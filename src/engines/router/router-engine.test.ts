import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { comfyuiObserver, startFakeComfyui, type FakeComfyui } from '../../../test/fakes/fake-comfyui.ts';
import { startFakeOpenaiImages, type FakeOpenaiImages } from '../../../test/fakes/fake-openai-images.ts';
import { ComfyuiEngine } from '../comfyui/comfyui-engine.ts';
import { ApiError, isAbortError, isApiError } from '../../domain/errors.ts';
import type { Engine, EngineRequest, EngineResult } from '../../domain/types.ts';
import { OpenaiEngine } from '../openai/openai-engine.ts';
import { startHttpServer } from '../testing/fake-http.ts';
import { conformanceRequest, referenceImages, runEngineConformance } from '../testing/conformance.ts';
import { deferred, ScriptedEngine } from '../testing/scripted-engine.ts';
import { waitUntil } from '../../../test/helpers/wait-until.ts';
import { backendErrorFailure } from '../remote/errors.ts';
import { RouterEngine, type RouterBackendSpec } from './router-engine.ts';

function spec(engine: Engine, overrides: Partial<RouterBackendSpec> = {}): RouterBackendSpec {
  return { id: engine.id, engine, priority: 0, weight: 1, concurrency: 1, maxReferenceImages: 3, timeoutMs: 0, ...overrides };
}

function router(backends: RouterBackendSpec[], extra: Partial<ConstructorParameters<typeof RouterEngine>[0]> = {}): RouterEngine {
  return new RouterEngine({
    model: 'alibaba/qwen-image-2-0',
    backends,
    healthCheck: { intervalMs: 0, timeoutMs: 500 },
    circuitBreaker: { failureThreshold: 3, resetMs: 30_000 },
    ...extra,
  });
}

const signal = () => new AbortController().signal;

function backendOf(r: RouterEngine, id: string) {
  return r.describe().backends.find((b) => b.id === id)!;
}

runEngineConformance('RouterEngine (ComfyUI first, OpenAI-compatible fallback)', async () => {
  const comfy = await startFakeComfyui();
  const openai = await startFakeOpenaiImages();
  const engine = router([
    spec(new ComfyuiEngine({ id: 'comfy', url: comfy.url }), { priority: 0 }),
    spec(new OpenaiEngine({ id: 'vllm', url: openai.url, flavor: 'vllm-omni' }), { priority: 1 }),
  ]);
  return {
    engine,
    observer: comfyuiObserver(comfy),
    capabilities: { progress: true },
    teardown: async () => {
      await comfy.close();
      await openai.close();
    },
  };
});

describe('RouterEngine failover over real protocols', () => {
  let comfy: FakeComfyui;
  let openai: FakeOpenaiImages;

  before(async () => {
    comfy = await startFakeComfyui();
    openai = await startFakeOpenaiImages();
  });
  after(async () => {
    await comfy.close();
    await openai.close();
  });
  beforeEach(() => {
    comfy.reset();
    openai.reset();
  });

  it('fails over to the next backend on a 5xx, and reports which backend drew', async () => {
    openai.failure = 'server-error';
    const r = router([
      spec(new OpenaiEngine({ id: 'vllm', url: openai.url }), { priority: 0 }),
      spec(new ComfyuiEngine({ id: 'comfy', url: comfy.url }), { priority: 1 }),
    ]);
    await r.load();
    const result = await r.generate(conformanceRequest(), signal());
    assert.equal(result.info?.backend, 'comfy');
    assert.equal(result.info?.attempts, 2);
    assert.equal(backendOf(r, 'vllm').failures, 1);
    assert.equal(backendOf(r, 'comfy').successes, 1);
    assert.equal(comfy.prompts.length, 1);
    await r.close();
  });

  it('a refused connection fails over and marks that backend down until a health check says otherwise', async () => {
    const gone = await startHttpServer(() => undefined);
    await gone.close();
    const comfyEngine = new ComfyuiEngine({ id: 'comfy', url: comfy.url });
    const r = router([spec(new OpenaiEngine({ id: 'dead', url: gone.url }), { priority: 0 }), spec(comfyEngine, { priority: 1 })]);
    // No r.load(): its health check would find the dead backend first; here a call discovers it.
    await comfyEngine.load();
    const first = await r.generate(conformanceRequest(), signal());
    assert.equal(first.info?.backend, 'comfy');
    assert.equal(backendOf(r, 'dead').healthy, false);
    assert.match(backendOf(r, 'dead').healthDetail ?? '', /ECONNREFUSED/);
    await r.generate(conformanceRequest(), signal());
    assert.equal(backendOf(r, 'dead').requests, 1, 'a down backend is not tried again');
    await r.close();
  });

  it('never fails over on a 4xx rejection of the input', async () => {
    openai.failure = 'bad-request';
    const r = router([
      spec(new OpenaiEngine({ id: 'vllm', url: openai.url }), { priority: 0 }),
      spec(new ComfyuiEngine({ id: 'comfy', url: comfy.url }), { priority: 1 }),
    ]);
    await r.load();
    await assert.rejects(r.generate(conformanceRequest(), signal()), (err: unknown) => isApiError(err) && err.code === 'backend_rejected');
    assert.equal(comfy.prompts.length, 0);
    const vllm = backendOf(r, 'vllm');
    assert.equal(vllm.rejections, 1);
    assert.equal(vllm.failures, 0);
    assert.equal(vllm.circuit, 'closed');
    await r.close();
  });

  it('does not generate twice when a backend returned an image of the wrong size', async () => {
    openai.failure = 'wrong-size';
    const r = router([
      spec(new OpenaiEngine({ id: 'vllm', url: openai.url }), { priority: 0 }),
      spec(new ComfyuiEngine({ id: 'comfy', url: comfy.url }), { priority: 1 }),
    ]);
    await r.load();
    await assert.rejects(r.generate(conformanceRequest(), signal()), (err: unknown) => isApiError(err) && err.code === 'backend_error');
    assert.equal(comfy.prompts.length, 0);
    await r.close();
  });

  it('a backend slower than its timeoutMs is cancelled (the server sees it) and the next one draws', async () => {
    openai.delayMs = 600_000; // far past the test's own timeout: only the router's deadline ends this request
    const r = router([
      spec(new OpenaiEngine({ id: 'slow', url: openai.url }), { priority: 0, timeoutMs: 150 }),
      spec(new ComfyuiEngine({ id: 'comfy', url: comfy.url }), { priority: 1 }),
    ]);
    await r.load();
    const result = await r.generate(conformanceRequest(), signal());
    assert.equal(result.info?.backend, 'comfy');
    assert.equal(backendOf(r, 'slow').timeouts, 1);
    await waitUntil(() => openai.cancels > 0, 'the slow server sees its client go away');
    assert.equal(openai.cancels, 1, 'the slow server saw the client go away');
    await r.close();
  });

  it('with a single backend, a timeout is a 504 generation_timeout', async () => {
    openai.delayMs = 600_000;
    const r = router([spec(new OpenaiEngine({ id: 'slow', url: openai.url }), { timeoutMs: 100 })]);
    await r.load();
    await assert.rejects(r.generate(conformanceRequest(), signal()), (err: unknown) => isApiError(err) && err.code === 'generation_timeout' && err.status === 504);
    await r.close();
  });

  it('client disconnect mid-generation cancels the ComfyUI job behind the router', async () => {
    comfy.steps = 50;
    comfy.stepDelayMs = 50;
    const r = router([spec(new ComfyuiEngine({ id: 'comfy', url: comfy.url }))]);
    await r.load();
    const controller = new AbortController();
    const pending = r.generate(conformanceRequest(), controller.signal);
    pending.catch(() => undefined);
    await comfy.waitForRunning();
    controller.abort();
    await assert.rejects(pending, (err: unknown) => isAbortError(err));
    await waitUntil(() => comfy.interrupts.length > 0, 'ComfyUI receives the interrupt');
    assert.equal(comfy.interrupts.length, 1);
    const b = backendOf(r, 'comfy');
    assert.equal(b.aborted, 1);
    assert.equal(b.failures, 0, 'the caller leaving is not the backend\'s fault');
    await r.close();
  });

  it('health checks run on a timer and mark a stopped backend down', async () => {
    const other = await startFakeOpenaiImages();
    const r = router([spec(new OpenaiEngine({ id: 'vllm', url: other.url }))], { healthCheck: { intervalMs: 50, timeoutMs: 200 } });
    await r.load();
    assert.equal(backendOf(r, 'vllm').healthy, true);
    assert.ok(backendOf(r, 'vllm').lastHealthCheckAtMs !== null);
    await other.close();
    await waitUntil(() => !backendOf(r, 'vllm').healthy, 'a timed health check marks the stopped backend down');
    assert.equal(backendOf(r, 'vllm').healthy, false);
    assert.equal((await r.health()).ok, false);
    await assert.rejects(r.generate(conformanceRequest(), signal()), (err: unknown) => {
      assert.ok(isApiError(err) && err.code === 'engine_unavailable' && err.status === 503);
      assert.ok((err.retryAfterS ?? 0) >= 1);
      assert.match(err.message, /vllm: down/);
      return true;
    });
    await r.close();
  });
});

describe('RouterEngine scheduling (scripted backends)', () => {
  it('circuit breaker opens after N consecutive failures and recovers through a half-open probe', async () => {
    let now = 1_000_000;
    const a = new ScriptedEngine('a');
    const failure = () => backendErrorFailure('a', 'CUDA error', { retryable: true });
    a.then({ fail: failure() }, { fail: failure() });
    const r = router([spec(a)], { circuitBreaker: { failureThreshold: 2, resetMs: 10_000 }, now: () => now });
    await r.load();
    await assert.rejects(r.generate(conformanceRequest(), signal()), /CUDA error/);
    assert.equal(backendOf(r, 'a').circuit, 'closed');
    await assert.rejects(r.generate(conformanceRequest(), signal()), /CUDA error/);
    assert.equal(backendOf(r, 'a').circuit, 'open');
    await assert.rejects(r.generate(conformanceRequest(), signal()), (err: unknown) => {
      assert.ok(isApiError(err) && err.code === 'engine_unavailable');
      assert.equal(err.retryAfterS, 10, 'Retry-After is the time until the probe');
      return true;
    });
    assert.equal(a.calls.length, 2, 'an open circuit sends nothing');
    now += 10_000;
    assert.equal(backendOf(r, 'a').circuit, 'half-open');
    const probe = deferred();
    a.then({ gate: probe.promise });
    const probing = r.generate(conformanceRequest(), signal());
    await waitUntil(() => a.calls.length === 3, 'the half-open probe reaches the backend');
    await assert.rejects(r.generate(conformanceRequest(), signal()), (err: unknown) => isApiError(err) && err.code === 'engine_unavailable');
    probe.resolve();
    await probing;
    assert.equal(backendOf(r, 'a').circuit, 'closed');
    assert.equal(backendOf(r, 'a').consecutiveFailures, 0);
    await r.generate(conformanceRequest(), signal());
    await r.close();
  });

  it('a failed half-open probe opens the circuit again', async () => {
    let now = 0;
    const a = new ScriptedEngine('a');
    a.defaultStep = { fail: backendErrorFailure('a', 'boom', { retryable: true }) };
    const r = router([spec(a)], { circuitBreaker: { failureThreshold: 1, resetMs: 1000 }, now: () => now });
    await assert.rejects(r.generate(conformanceRequest(), signal()));
    now += 1000;
    await assert.rejects(r.generate(conformanceRequest(), signal()), /boom/);
    assert.equal(backendOf(r, 'a').circuit, 'open');
    await r.close();
  });

  it('waits for a free slot (concurrency), and an abort while waiting rejects promptly', async () => {
    const a = new ScriptedEngine('a');
    const gate = deferred();
    a.then({ gate: gate.promise });
    const r = router([spec(a, { concurrency: 1 })]);
    const first = r.generate(conformanceRequest(), signal());
    await waitUntil(() => a.calls.length === 1, 'the first request reaches the backend');
    const controller = new AbortController();
    const second = r.generate(conformanceRequest(), controller.signal);
    const third = r.generate(conformanceRequest(), signal());
    await waitUntil(() => r.describe().waiting === 2, 'two requests wait for the slot');
    assert.equal(backendOf(r, 'a').inFlight, 1);
    controller.abort();
    // Promptly: the slot is still held (the gate is closed), so the rejection cannot have waited for it.
    await assert.rejects(second, (err: unknown) => isAbortError(err));
    assert.equal(backendOf(r, 'a').inFlight, 1, 'rejected while the first request still holds the slot');
    assert.equal(a.calls.length, 1, 'the waiting request never reached the backend');
    gate.resolve();
    await first;
    await third;
    assert.equal(a.calls.length, 2);
    assert.equal(r.describe().waiting, 0);
    await r.close();
  });

  it('a busy lower tier makes requests wait instead of spilling to the fallback tier', async () => {
    const gpu = new ScriptedEngine('gpu');
    const cpu = new ScriptedEngine('cpu');
    const gate = deferred();
    gpu.then({ gate: gate.promise });
    const r = router([spec(gpu, { priority: 0 }), spec(cpu, { priority: 5 })]);
    const first = r.generate(conformanceRequest(), signal());
    const second = r.generate(conformanceRequest(), signal());
    await waitUntil(() => r.describe().waiting === 1, 'the second request waits for the busy GPU');
    assert.equal(cpu.calls.length, 0);
    gate.resolve();
    await Promise.all([first, second]);
    assert.equal(gpu.calls.length, 2);
    assert.equal(cpu.calls.length, 0);
    await r.close();
  });

  it('spreads equal-priority traffic by weight', async () => {
    const a = new ScriptedEngine('a');
    const b = new ScriptedEngine('b');
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const r = router([spec(a, { weight: 3 }), spec(b, { weight: 1 })], { random });
    for (let i = 0; i < 200; i++) await r.generate(conformanceRequest(), signal());
    const share = a.calls.length / 200;
    assert.ok(share > 0.65 && share < 0.85, `share of the weight-3 backend: ${share}`);
    await r.close();
  });

  it('routes edits only to backends that accept that many references', async () => {
    const t2iOnly = new ScriptedEngine('t2i-only');
    const editor = new ScriptedEngine('editor');
    editor.declared = { ...editor.declared, maxReferenceImages: 2 };
    const r = router([spec(t2iOnly, { priority: 0, maxReferenceImages: 0 }), spec(editor, { priority: 1 })]);
    const result = await r.generate(conformanceRequest({ referenceImages: referenceImages(2) }), signal());
    assert.equal(result.info?.backend, 'editor');
    await assert.rejects(r.generate(conformanceRequest({ referenceImages: referenceImages(3) }), signal()), (err: unknown) => {
      assert.ok(isApiError(err) && err.code === 'backend_rejected' && err.param === 'image_urls');
      return true;
    });
    assert.equal(backendOf(r, 'editor').maxReferenceImages, 2);
    await r.close();
  });

  it('gives every backend the prompt as the pipeline sent it and passes the drawing one\'s drawnPrompt through', async () => {
    const gpu = new ScriptedEngine('gpu');
    gpu.then({ fail: new ApiError('engine_unavailable', 'the GPU is down') });
    class AdaptingEngine extends ScriptedEngine {
      override async generate(request: EngineRequest, s: AbortSignal): Promise<EngineResult> {
        return { ...(await super.generate(request, s)), drawnPrompt: `${request.prompt}, adapted` };
      }
    }
    const builtin = new AdaptingEngine('builtin', 'builtin');
    const r = router([spec(gpu, { priority: 0 }), spec(builtin, { priority: 1 })]);
    const result = await r.generate(conformanceRequest({ prompt: 'a scarlet cabin', mayAdaptPrompt: true }), signal());
    assert.equal(result.info?.backend, 'builtin');
    assert.equal(result.drawnPrompt, 'a scarlet cabin, adapted');
    assert.deepEqual([gpu.calls[0]!.prompt, builtin.calls[0]!.prompt], ['a scarlet cabin', 'a scarlet cabin']);
    assert.equal((await r.generate(conformanceRequest(), signal())).drawnPrompt, undefined, 'a backend that drew the prompt as given reports none');
    await r.close();
  });

  it('errors that are not about the backend (invalid input) are neither retried nor charged', async () => {
    const a = new ScriptedEngine('a');
    const b = new ScriptedEngine('b');
    a.then({ fail: new ApiError('invalid_image', 'cannot decode image_urls[0]') });
    const r = router([spec(a, { priority: 0 }), spec(b, { priority: 1 })]);
    await assert.rejects(r.generate(conformanceRequest(), signal()), /cannot decode/);
    assert.equal(b.calls.length, 0);
    assert.equal(backendOf(r, 'a').failures, 0);
    await r.close();
  });

  it('checks the size of what any backend returns', async () => {
    const a = new ScriptedEngine('a');
    a.then({ extraWidth: 8 });
    const r = router([spec(a)]);
    await assert.rejects(r.generate(conformanceRequest(), signal()), /returned 520x512, asked for 512x512/);
    await r.close();
  });

  it('load() fails naming the backend whose configuration is broken; close() closes every backend', async () => {
    const good = new ScriptedEngine('good');
    const bad = new ScriptedEngine('bad');
    bad.loadError = new Error('workflow x.json: nothing receives {{seed}}');
    const r = router([spec(good), spec(bad)]);
    await assert.rejects(r.load(), /backend bad: workflow x\.json: nothing receives \{\{seed\}\}/);
    await r.close();
    assert.ok(good.closed && bad.closed);
  });

  it('describe() has the documented shape, with latency percentiles', async () => {
    const a = new ScriptedEngine('a', 'comfyui');
    // The router's clock is the test's: each generation "takes" 10, 20 and 30 ms of it.
    let now = 1_000;
    const r = router([spec(a, { concurrency: 2, weight: 2, priority: 1 })], { now: () => now });
    await r.load();
    for (let i = 0; i < 3; i++) {
      const gate = deferred();
      a.then({ gate: gate.promise });
      const pending = r.generate(conformanceRequest(), signal());
      await waitUntil(() => a.calls.length === i + 1, 'the generation reaches the backend');
      now += 10 * (i + 1);
      gate.resolve();
      await pending;
    }
    const d = r.describe();
    assert.equal(d.model, 'alibaba/qwen-image-2-0');
    assert.equal(d.waiting, 0);
    const b = d.backends[0]!;
    assert.deepEqual(
      { id: b.id, kind: b.kind, healthy: b.healthy, circuit: b.circuit, inFlight: b.inFlight, concurrency: b.concurrency, requests: b.requests, successes: b.successes, failures: b.failures, priority: b.priority, weight: b.weight },
      { id: 'a', kind: 'comfyui', healthy: true, circuit: 'closed', inFlight: 0, concurrency: 2, requests: 3, successes: 3, failures: 0, priority: 1, weight: 2 },
    );
    assert.equal(b.latencyMsP50, 20);
    assert.equal(b.latencyMsP95, 30);
    assert.doesNotThrow(() => JSON.stringify(d));
    assert.equal(r.kind, 'router');
    await r.close();
  });

  it('health() is ok while any backend is available', async () => {
    const a = new ScriptedEngine('a');
    const b = new ScriptedEngine('b');
    a.healthResult = { ok: false, detail: 'GPU lost' };
    const r = router([spec(a), spec(b)]);
    await r.load();
    const health = await r.health();
    assert.equal(health.ok, true);
    assert.match(health.detail ?? '', /1\/2 backends available.*a: down \(GPU lost\)/);
    await r.close();
  });
});
