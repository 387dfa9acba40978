/**
 * Routing by declared capabilities (Engine.capabilities(), domain/engine-capabilities.ts): one test
 * per capability. Hard limits (reference images, sizes) exclude a backend; the others never do, and
 * the ones a backend ignores are noted on the result.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isApiError } from '../../domain/errors.ts';
import type { EngineCapabilities } from '../../domain/engine-capabilities.ts';
import type { EngineProgress } from '../../domain/types.ts';
import { conformanceRequest, referenceImages } from '../testing/conformance.ts';
import { ScriptedEngine } from '../testing/scripted-engine.ts';
import { RouterEngine, type RouterBackendSpec } from './router-engine.ts';

function backend(id: string, declared: Partial<EngineCapabilities>, overrides: Partial<RouterBackendSpec> = {}): RouterBackendSpec {
  const engine = new ScriptedEngine(id);
  engine.declared = { ...engine.declared, ...declared, sizes: { ...engine.declared.sizes, ...declared.sizes } };
  return { id, engine, priority: 0, weight: 1, concurrency: 1, maxReferenceImages: 3, timeoutMs: 0, ...overrides };
}

async function withRouter(backends: RouterBackendSpec[], body: (r: RouterEngine, engines: Record<string, ScriptedEngine>) => Promise<void>): Promise<void> {
  const r = new RouterEngine({
    model: 'alibaba/qwen-image-2-0',
    backends,
    healthCheck: { intervalMs: 0, timeoutMs: 500 },
    circuitBreaker: { failureThreshold: 3, resetMs: 30_000 },
  });
  await r.load();
  try {
    await body(r, Object.fromEntries(backends.map((b) => [b.id, b.engine as ScriptedEngine])));
  } finally {
    await r.close();
  }
}

const signal = () => new AbortController().signal;

function rejectedFor(param: string, message: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(isApiError(err), String(err));
    assert.equal(err.code, 'backend_rejected');
    assert.equal(err.param, param);
    assert.match(err.message, message);
    return true;
  };
}

describe('routing by declared capabilities', () => {
  it('maxReferenceImages: a 3-image edit never goes to a text-to-image-only backend, even the preferred one when the editor is down', async () => {
    await withRouter(
      [backend('t2i-only', { maxReferenceImages: 0 }, { priority: 0 }), backend('editor', { maxReferenceImages: 3 }, { priority: 1 })],
      async (r, e) => {
        const edit = conformanceRequest({ referenceImages: referenceImages(3) });
        assert.equal((await r.generate(edit, signal())).info?.backend, 'editor');
        assert.equal((await r.generate(conformanceRequest(), signal())).info?.backend, 't2i-only');
        e.editor!.healthResult = { ok: false, detail: 'GPU gone' };
        await r.checkHealth();
        await assert.rejects(r.generate(edit, signal()), (err: unknown) => isApiError(err) && err.code === 'engine_unavailable');
        assert.equal(e['t2i-only']!.calls.filter((c) => c.referenceImages.length > 0).length, 0);
      },
    );
  });

  it('maxReferenceImages: the routing file can only lower what the engine declares', async () => {
    await withRouter([backend('two', { maxReferenceImages: 2 }, { maxReferenceImages: 3 }), backend('capped', { maxReferenceImages: 3 }, { maxReferenceImages: 1, priority: 1 })], async (r) => {
      assert.equal(r.describe().backends[0]!.capabilities.maxReferenceImages, 2);
      assert.equal(r.describe().backends[1]!.capabilities.maxReferenceImages, 1);
      await assert.rejects(r.generate(conformanceRequest({ referenceImages: referenceImages(3) }), signal()), rejectedFor('image_urls', /two: takes at most 2 reference image\(s\); capped: takes at most 1/));
      assert.equal((await r.generate(conformanceRequest({ referenceImages: referenceImages(2) }), signal())).info?.backend, 'two');
    });
  });

  it('sizes: a backend is skipped for a side above its maximum, below its minimum, off its step, or too many pixels', async () => {
    await withRouter(
      [
        backend('small-gpu', { sizes: { minSidePx: 512, maxSidePx: 1024, stepPx: 64, maxPixels: 0 } }, { priority: 0 }),
        backend('capped', {}, { priority: 1, maxPixels: 1024 * 1024 }),
        backend('big-gpu', {}, { priority: 2 }),
      ],
      async (r) => {
        const at = async (width: number, height: number) => (await r.generate(conformanceRequest({ width, height }), signal())).info?.backend;
        assert.equal(await at(1024, 768), 'small-gpu');
        assert.equal(await at(1088, 768), 'capped'); // above 1024 px, 835 584 px ≤ 1 MP
        assert.equal(await at(992, 768), 'capped'); // 992 is a multiple of 32, not of 64
        assert.equal(await at(1440, 1024), 'big-gpu'); // above both caps
      },
    );
  });

  it('sizes: when no backend fits, a 400 on image_size naming each backend\'s limit', async () => {
    await withRouter([backend('a', {}, { maxSidePx: 1024 }), backend('b', { sizes: { minSidePx: 1, maxSidePx: 16_384, stepPx: 1, maxPixels: 1_000_000 } })], async (r) => {
      await assert.rejects(
        r.generate(conformanceRequest({ width: 1440, height: 1024 }), signal()),
        rejectedFor('image_size', /a: width 1440 is above its maximum 1024; b: 1440×1024 is more than its 1000000 pixels/),
      );
    });
  });

  it('negativePrompt: not a filter (a CFG-1 workflow stays preferred); the result notes that it was ignored', async () => {
    await withRouter([backend('cfg1', { negativePrompt: false }, { priority: 0 }), backend('cfg4', { negativePrompt: true }, { priority: 1 })], async (r, e) => {
      const result = await r.generate(conformanceRequest({ negativePrompt: 'blurry' }), signal());
      assert.equal(result.info?.backend, 'cfg1');
      assert.equal(result.info?.negativePromptIgnored, true);
      assert.equal(e.cfg1!.calls[0]!.negativePrompt, 'blurry');
      const plain = await r.generate(conformanceRequest({ negativePrompt: '' }), signal());
      assert.equal(plain.info?.negativePromptIgnored, undefined);
      e.cfg1!.healthResult = { ok: false };
      await r.checkHealth();
      const honoured = await r.generate(conformanceRequest({ negativePrompt: 'blurry' }), signal());
      assert.deepEqual([honoured.info?.backend, honoured.info?.negativePromptIgnored], ['cfg4', undefined]);
    });
  });

  it('seed: not a filter; a backend that does not take the seed is noted (same seed, different image there)', async () => {
    await withRouter([backend('no-seed', { seed: false }, { priority: 0 }), backend('seeded', { seed: true }, { priority: 1 })], async (r, e) => {
      const result = await r.generate(conformanceRequest({ seed: 7 }), signal());
      assert.deepEqual([result.info?.backend, result.info?.seedIgnored], ['no-seed', true]);
      e['no-seed']!.healthResult = { ok: false };
      await r.checkHealth();
      assert.equal((await r.generate(conformanceRequest({ seed: 7 }), signal())).info?.seedIgnored, undefined);
    });
  });

  it('progress and previews: not filters; the progress of the backend that draws reaches the caller', async () => {
    await withRouter([backend('silent', { progress: false, previews: false }, { priority: 0 }), backend('chatty', { progress: true, previews: true }, { priority: 1 })], async (r, e) => {
      const seen: EngineProgress[] = [];
      const result = await r.generate(conformanceRequest(), signal(), (p) => seen.push(p));
      assert.equal(result.info?.backend, 'silent');
      assert.equal(e.chatty!.calls.length, 0);
      // ScriptedEngine reports two steps whatever it declares; the router passes them on unchanged.
      assert.deepEqual(seen.map((p) => p.step), [0, 2]);
      const [silent, chatty] = r.describe().backends;
      assert.deepEqual([silent!.capabilities.progress, silent!.capabilities.previews], [false, false]);
      assert.deepEqual([chatty!.capabilities.progress, chatty!.capabilities.previews], [true, true]);
    });
  });

  it('masks: reported per backend and for the model; no request carries one (the API refuses `mask`), so never a filter', async () => {
    await withRouter([backend('plain', { masks: false }), backend('inpainter', { masks: true }, { priority: 1 })], async (r) => {
      assert.deepEqual(r.describe().backends.map((b) => b.capabilities.masks), [false, true]);
      assert.equal(r.capabilities().masks, true);
      assert.equal((await r.generate(conformanceRequest(), signal())).info?.backend, 'plain');
    });
  });

  it('promptAdaptation: not a filter; a backend that does not adapt gets the prompt as sent and reports no drawnPrompt', async () => {
    await withRouter([backend('gpu', { promptAdaptation: false }), backend('builtin', { promptAdaptation: true }, { priority: 1 })], async (r, e) => {
      const result = await r.generate(conformanceRequest({ prompt: 'a scarlet cabin', mayAdaptPrompt: true }), signal());
      assert.equal(result.info?.backend, 'gpu');
      assert.equal(e.gpu!.calls[0]!.prompt, 'a scarlet cabin');
      assert.equal(result.drawnPrompt, undefined);
      assert.equal(r.capabilities().promptAdaptation, true);
    });
  });

  it('the model\'s capabilities are the most any backend offers', async () => {
    await withRouter(
      [
        backend('a', { maxReferenceImages: 0, negativePrompt: false, sizes: { minSidePx: 256, maxSidePx: 2048, stepPx: 32, maxPixels: 0 } }),
        backend('b', { maxReferenceImages: 3, negativePrompt: true, progress: false, sizes: { minSidePx: 512, maxSidePx: 1024, stepPx: 16, maxPixels: 1 << 20 } }),
      ],
      async (r) => {
        const caps = r.capabilities();
        assert.equal(caps.maxReferenceImages, 3);
        assert.deepEqual(caps.sizes, { minSidePx: 256, maxSidePx: 2048, stepPx: 16, maxPixels: 0 });
        assert.deepEqual([caps.negativePrompt, caps.progress, caps.seed], [true, true, true]);
      },
    );
  });
});
