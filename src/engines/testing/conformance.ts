/**
 * The conformance suite every Engine passes (builtin, ComfyUI, OpenAI-compatible, DashScope and the
 * router): exact output size, reference images / negative prompt / seed reaching the backend,
 * progress where the engine reports it, prompt abort (and, for remote engines, the backend seeing
 * the cancellation), health.
 *
 * Usage, in a *.test.ts file:
 *   runEngineConformance('comfyui', async () => ({ engine, teardown, capabilities, observer }));
 * `setup` runs once for the suite; `observer` (optional) lets the suite look at what a fake backend
 * received. Without one (the builtin engine) only the engine's own behaviour is checked.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { isAbortError } from '../../domain/errors.ts';
import { isBackendFailure } from '../remote/errors.ts';
import type { Engine, EngineProgress, EngineRequest, ImageSize, RawImage } from '../../domain/types.ts';
import { waitUntil } from '../../../test/helpers/wait-until.ts';

export interface ConformanceCapabilities {
  /** The engine reports progress through onProgress. */
  progress: boolean;
  /** Reference images the engine accepts (0 skips the reference tests). */
  maxReferenceImages: number;
  /** Run the abort test (needs a generation long enough to be interrupted). */
  abort: boolean;
  /** A square and a non-square size to draw. */
  sizes: [ImageSize, ImageSize];
}

/** What the backend received for one generation, as far as the fake can tell. */
export interface ReceivedRequest {
  prompt?: string;
  negativePrompt?: string;
  seed?: number;
  width?: number;
  height?: number;
  referenceImages: number;
  /** Decoded sizes of the references as received, when the fake can decode them. */
  referenceImageSizes?: Array<ImageSize | undefined>;
}

export interface BackendObserver {
  /** The last generation request the backend received. */
  lastReceived(): ReceivedRequest | undefined;
  /** Cancellations the backend has seen so far (interrupts, queue deletions, client disconnects). */
  cancelCount(): number;
  /**
   * Makes the next generation slow (longer than any test may run: only a cancel ends it), and resolves
   * once the backend is working on it, so that an abort lands mid-generation.
   */
  slowNextGeneration(): Promise<void>;
  /** Back to normal speed and no failure modes (called before each test). */
  reset(): void;
}

export interface ConformanceSetup {
  engine: Engine;
  teardown(): Promise<void>;
  capabilities?: Partial<ConformanceCapabilities>;
  observer?: BackendObserver;
}

const DEFAULTS: ConformanceCapabilities = {
  progress: false,
  maxReferenceImages: 3,
  abort: true,
  sizes: [
    { width: 512, height: 512 },
    { width: 768, height: 512 },
  ],
};


/** An `assert.rejects` predicate: the error is a BackendFailure with this code; `extra` checks more of it. */
export function expectFailure(code: string, extra: (err: Record<string, unknown>) => void = () => undefined) {
  return (err: unknown): boolean => {
    assert.ok(isBackendFailure(err), `expected a BackendFailure, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    extra(err as unknown as Record<string, unknown>);
    return true;
  };
}

export function conformanceRequest(overrides: Partial<EngineRequest> = {}): EngineRequest {
  return {
    requestId: `conformance-${randomUUID()}`,
    model: 'alibaba/qwen-image-2-0',
    prompt: 'a red fox reading a newspaper in a snowy forest, photorealistic',
    negativePrompt: '',
    width: 512,
    height: 512,
    seed: 42,
    referenceImages: [],
    ...overrides,
  };
}

/** Small references of distinct sizes, so the suite can check order and decoding on the way. */
export function referenceImages(count: number): RawImage[] {
  return Array.from({ length: count }, (_, i) => {
    const width = 64 + 16 * i;
    const height = 48 + 8 * i;
    const data = new Uint8Array(width * height * 3);
    for (let p = 0; p < width * height; p++) {
      data[p * 3] = (p * 7 + i * 50) % 256;
      data[p * 3 + 1] = (p * 3) % 256;
      data[p * 3 + 2] = (i * 80) % 256;
    }
    return { width, height, data };
  });
}

function assertRawImage(image: RawImage, width: number, height: number): void {
  assert.equal(image.width, width, 'width');
  assert.equal(image.height, height, 'height');
  assert.ok(image.data instanceof Uint8Array, 'data is a Uint8Array');
  assert.equal(image.data.length, width * height * 3, 'data holds width*height RGB pixels');
}


export function runEngineConformance(name: string, setup: () => Promise<ConformanceSetup>): void {
  describe(`${name} engine conformance`, () => {
    let fixture: ConformanceSetup;
    let caps: ConformanceCapabilities;

    before(async () => {
      fixture = await setup();
      caps = { ...DEFAULTS, ...fixture.capabilities };
      await fixture.engine.load();
    });

    after(async () => {
      await fixture?.engine.close();
      await fixture?.teardown();
    });

    beforeEach(() => fixture.observer?.reset());

    it('declares capabilities that agree with what the suite exercises', () => {
      const declared = fixture.engine.capabilities();
      assert.ok(Number.isInteger(declared.maxReferenceImages) && declared.maxReferenceImages >= 0, 'maxReferenceImages');
      const { minSidePx, maxSidePx, stepPx, maxPixels } = declared.sizes;
      assert.ok(minSidePx >= 1 && minSidePx <= maxSidePx && stepPx >= 1 && maxPixels >= 0, JSON.stringify(declared.sizes));
      // The suite's own expectations are this engine's declaration, so the two cannot drift apart.
      assert.equal(declared.progress, caps.progress, 'declared progress vs what the suite expects');
      assert.ok(declared.maxReferenceImages >= caps.maxReferenceImages, 'declares at least the references the suite sends');
      assert.ok(!declared.previews || declared.progress, 'previews travel on progress events');
      for (const side of caps.sizes.flatMap((size) => [size.width, size.height])) {
        assert.ok(side >= minSidePx && side <= maxSidePx && side % stepPx === 0, `suite size ${side} px within the declared sizes`);
      }
    });

    it('reports healthy', async () => {
      const health = await fixture.engine.health();
      assert.equal(health.ok, true, `health detail: ${health.detail ?? ''}`);
      assert.equal(typeof fixture.engine.id, 'string');
      assert.equal(typeof fixture.engine.kind, 'string');
      assert.equal(typeof fixture.engine.description, 'string');
    });

    it('draws text-to-image at exactly the requested sizes (square and non-square)', async () => {
      for (const size of caps.sizes) {
        const request = conformanceRequest({ width: size.width, height: size.height });
        const result = await fixture.engine.generate(request, new AbortController().signal);
        assertRawImage(result.image, size.width, size.height);
        const received = fixture.observer?.lastReceived();
        if (received) {
          assert.equal(received.referenceImages, 0);
          if (received.width !== undefined) assert.equal(received.width, size.width);
          if (received.height !== undefined) assert.equal(received.height, size.height);
          if (received.prompt !== undefined) assert.ok(received.prompt.includes(request.prompt), 'prompt reached the backend');
        }
      }
    });

    it('passes negative prompt and seed to the backend', async () => {
      const request = conformanceRequest({ negativePrompt: 'blurry, low quality, watermark', seed: 1234567 });
      const result = await fixture.engine.generate(request, new AbortController().signal);
      assertRawImage(result.image, request.width, request.height);
      const received = fixture.observer?.lastReceived();
      if (received) {
        assert.ok(received.negativePrompt?.includes('blurry, low quality, watermark'), `negative prompt reached the backend (got ${received.negativePrompt})`);
        assert.equal(received.seed, 1234567, 'seed reached the backend');
      }
    });

    for (const count of [1, 3]) {
      it(`sends ${count} reference image(s) to the backend, in order`, async (t) => {
        if (caps.maxReferenceImages < count) {
          t.skip(`engine accepts ${caps.maxReferenceImages} reference image(s)`);
          return;
        }
        const refs = referenceImages(count);
        const request = conformanceRequest({ prompt: 'put the object of image 1 on the table of image 2', referenceImages: refs, width: 512, height: 768 });
        const result = await fixture.engine.generate(request, new AbortController().signal);
        assertRawImage(result.image, 512, 768);
        const received = fixture.observer?.lastReceived();
        if (received) {
          assert.equal(received.referenceImages, count, 'reference images reaching the backend');
          if (received.referenceImageSizes) {
            assert.deepEqual(
              received.referenceImageSizes,
              refs.map((r) => ({ width: r.width, height: r.height })),
              'references arrive decodable, unchanged in size and in order',
            );
          }
        }
      });
    }

    it('reports progress', async (t) => {
      if (!caps.progress) {
        t.skip('engine has no progress channel');
        return;
      }
      const events: EngineProgress[] = [];
      const result = await fixture.engine.generate(conformanceRequest(), new AbortController().signal, (p) => events.push(p));
      assertRawImage(result.image, 512, 512);
      assert.ok(events.length > 0, 'at least one progress event');
      for (const e of events) {
        assert.ok(e.totalSteps > 0 && e.step >= 0 && e.step <= e.totalSteps, `sane progress ${JSON.stringify(e)}`);
      }
      for (let i = 1; i < events.length; i++) assert.ok(events[i]!.step >= events[i - 1]!.step, 'steps do not go backwards');
    });

    it('rejects promptly when aborted mid-generation, and the backend sees the cancel', async (t) => {
      if (!caps.abort) {
        t.skip('abort not testable on this engine');
        return;
      }
      const controller = new AbortController();
      const observer = fixture.observer;
      const cancelsBefore = observer?.cancelCount() ?? 0;
      const working = observer?.slowNextGeneration();
      let firstProgress: () => void = () => undefined;
      const progressed = new Promise<void>((resolve) => (firstProgress = resolve));
      const pending = fixture.engine.generate(conformanceRequest(), controller.signal, () => firstProgress());
      pending.catch(() => undefined);
      if (working) await working;
      else await Promise.race([progressed, new Promise((r) => setTimeout(r, 20))]);
      controller.abort();
      await assert.rejects(pending, (err: unknown) => {
        assert.ok(isAbortError(err), `expected an AbortError, got ${(err as Error)?.name}: ${(err as Error)?.message}`);
        return true;
      });
      // Promptly: a slowed backend would not finish within the test's timeout, so settling at all means the
      // engine gave up on the abort rather than on the backend's answer.
      if (observer) {
        await waitUntil(() => observer.cancelCount() > cancelsBefore, 'the backend to see the cancellation');
      }
    });

    it('rejects at once when the signal is already aborted', async () => {
      const controller = new AbortController();
      controller.abort();
      await assert.rejects(fixture.engine.generate(conformanceRequest(), controller.signal), (err: unknown) => isAbortError(err));
    });
  });
}
