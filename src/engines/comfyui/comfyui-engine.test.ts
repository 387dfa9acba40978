import assert from 'node:assert/strict';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { fakePreviewColour, startFakeComfyui, type FakeComfyui } from '../../../test/fakes/fake-comfyui.ts';
import { isAbortError } from '../../domain/errors.ts';
import type { EngineProgress } from '../../domain/types.ts';
import { startHttpServer } from '../testing/fake-http.ts';
import { conformanceRequest, expectFailure, referenceImages } from '../testing/conformance.ts';
import { ComfyuiEngine, pickOutputImage } from './comfyui-engine.ts';
import { waitUntil } from '../../../test/helpers/wait-until.ts';

describe('ComfyUI engine failure handling', () => {
  let fake: FakeComfyui;
  let engine: ComfyuiEngine;

  before(async () => {
    fake = await startFakeComfyui();
    engine = new ComfyuiEngine({ id: 'comfy-a', url: fake.url, controlTimeoutMs: 1000 });
    await engine.load();
  });
  after(async () => {
    await engine.close();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('maps a refused connection to 503 engine_unavailable with Retry-After, marked unreachable', async () => {
    const closed = await startHttpServer(() => undefined);
    const url = closed.url;
    await closed.close();
    const down = new ComfyuiEngine({ id: 'comfy-down', url });
    await down.load();
    await assert.rejects(
      down.generate(conformanceRequest(), new AbortController().signal),
      expectFailure('engine_unavailable', (e) => {
        assert.ok((e.retryAfterS as number) >= 1);
        assert.equal(e.unreachable, true);
        assert.equal(e.retryable, true);
      }),
    );
    assert.equal((await down.health()).ok, false);
    await down.close();
  });

  it('an execution_error is a retryable 502 carrying ComfyUI\'s exception', async () => {
    fake.failure = 'execution-error';
    await assert.rejects(
      engine.generate(conformanceRequest(), new AbortController().signal),
      expectFailure('backend_error', (e) => {
        assert.match(String(e.message), /CUDA out of memory/);
        assert.equal(e.retryable, true);
      }),
    );
  });

  it('a websocket closed mid-job is a retryable 502, and the job is cancelled on the server', async () => {
    fake.failure = 'ws-close-mid-job';
    await assert.rejects(
      engine.generate(conformanceRequest(), new AbortController().signal),
      expectFailure('backend_error', (e) => {
        assert.match(String(e.message), /websocket closed/);
        assert.equal(e.retryable, true);
      }),
    );
    const ours = fake.prompts[0]!.promptId;
    await waitUntil(() => fake.interrupts.some((i) => i.promptId === ours), 'the interrupt of our prompt');
  });

  it('a workflow ComfyUI rejects (missing model) is a 502 naming the node', async () => {
    fake.failure = 'invalid-prompt';
    await assert.rejects(
      engine.generate(conformanceRequest(), new AbortController().signal),
      expectFailure('backend_error', (e) => assert.match(String(e.message), /node 1 \(UNETLoader\).*qwen_image_fp8/)),
    );
  });

  it('a 503 from a proxy in front of ComfyUI is engine_unavailable with its Retry-After', async () => {
    fake.failure = 'prompt-503';
    await assert.rejects(
      engine.generate(conformanceRequest(), new AbortController().signal),
      expectFailure('engine_unavailable', (e) => assert.equal(e.retryAfterS, 3)),
    );
  });

  it('malformed output (no image in history, undecodable bytes) is a non-retryable 502', async () => {
    fake.failure = 'no-output';
    await assert.rejects(
      engine.generate(conformanceRequest(), new AbortController().signal),
      expectFailure('backend_error', (e) => {
        assert.match(String(e.message), /no image output/);
        assert.equal(e.retryable, false);
      }),
    );
    fake.failure = 'garbage-output';
    await assert.rejects(
      engine.generate(conformanceRequest(), new AbortController().signal),
      expectFailure('backend_error', (e) => assert.match(String(e.message), /cannot be decoded/)),
    );
  });

  it('an image of the wrong size is a 502 saying what came back and what was asked', async () => {
    fake.failure = 'wrong-size';
    await assert.rejects(
      engine.generate(conformanceRequest({ width: 512, height: 768 }), new AbortController().signal),
      expectFailure('backend_error', (e) => assert.match(String(e.message), /returned 544x768, asked for 512x768/)),
    );
  });

  it('cleans up: uploads into its own subfolder and deletes the finished prompt from history', async () => {
    await engine.generate(conformanceRequest({ referenceImages: referenceImages(2) }), new AbortController().signal);
    assert.equal(fake.uploads.length, 2);
    assert.ok(fake.uploads.every((u) => u.subfolder === 'qwen-image-api' && u.type === 'input'));
    await waitUntil(() => fake.historyDeletes.includes(fake.prompts[0]!.promptId), 'history deletion');
    // With 2 references the third LoadImage node is pruned, and nothing links to it any more.
    const workflow = fake.prompts[0]!.workflow;
    assert.equal(Object.values(workflow).filter((n) => n.class_type === 'LoadImage').length, 2);
  });

  it('aborting a prompt that is still queued removes it from the queue without interrupting anyone', async () => {
    fake.steps = 30;
    fake.stepDelayMs = 50;
    const first = new AbortController();
    const running = engine.generate(conformanceRequest(), first.signal);
    running.catch(() => undefined);
    await fake.waitForRunning();
    const second = new AbortController();
    const queued = engine.generate(conformanceRequest(), second.signal);
    await waitUntil(() => fake.prompts.length === 2, 'the second prompt');
    second.abort();
    await assert.rejects(queued, (err: unknown) => isAbortError(err));
    await waitUntil(() => fake.queueDeletes.includes(fake.prompts[1]!.promptId), 'queue deletion');
    assert.equal(fake.interrupts.length, 0, 'the running prompt of someone else is not interrupted');
    first.abort();
    await assert.rejects(running, (err: unknown) => isAbortError(err));
    await waitUntil(() => fake.interrupts.some((i) => i.promptId === fake.prompts[0]!.promptId), 'interrupt of the running prompt');
  });

  it('rejects reference images when configured without an edit workflow', async () => {
    const t2iOnly = new ComfyuiEngine({ id: 'comfy-t2i', url: fake.url, edit: false });
    await t2iOnly.load();
    assert.equal(t2iOnly.capabilities().maxReferenceImages, 0);
    await assert.rejects(
      t2iOnly.generate(conformanceRequest({ referenceImages: referenceImages(1) }), new AbortController().signal),
      expectFailure('backend_rejected'),
    );
    await t2iOnly.close();
  });
});

describe('ComfyUI engine reads the result only once the history is written (issue 11)', () => {
  let fake: FakeComfyui;
  let engine: ComfyuiEngine;
  const small = (seed: number) => conformanceRequest({ width: 64, height: 64, seed });

  before(async () => {
    // The history lands 15 ms after execution_success, many times the 1 ms between the events
    // before it: a client that reads the history on execution_success finds `{}` nearly every time.
    fake = await startFakeComfyui({ steps: 1, stepDelayMs: 1, historyDelayMs: 15 });
    engine = new ComfyuiEngine({ id: 'comfy-order', url: fake.url, historyWaitMs: 300 });
    await engine.load();
  });
  after(async () => {
    await engine.close();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('returns the image 100 times in a row, never reading the history before it exists', { timeout: 60_000 }, async () => {
    for (let i = 0; i < 100; i++) {
      const result = await engine.generate(small(i), new AbortController().signal);
      assert.deepEqual([result.image.width, result.image.height], [64, 64], `run ${i}`);
      assert.equal(result.info?.comfyPromptId, fake.prompts[i]!.promptId, `run ${i}`);
    }
    const reads = fake.historyReads.filter((r) => fake.prompts.some((p) => p.promptId === r.promptId));
    assert.equal(reads.length, 100, 'one read per prompt');
    assert.ok(reads.every((r) => r.found), 'read after `executing` null, the history is always there');
  });

  it('8 concurrent generations each get their own image', { timeout: 60_000 }, async () => {
    for (let round = 0; round < 3; round++) {
      const seeds = Array.from({ length: 8 }, (_, i) => 1000 + round * 8 + i);
      const results = await Promise.all(seeds.map((seed) => engine.generate(small(seed), new AbortController().signal)));
      results.forEach((result, i) => {
        const sent = fake.prompts.find((p) => p.promptId === result.info?.comfyPromptId);
        assert.equal(sent?.seed, seeds[i]);
        // The fake paints each image in a colour of its seed (fake-http.ts solidPng).
        assert.equal(result.image.data[0], seeds[i]! % 251);
      });
    }
    assert.equal(new Set(fake.prompts.map((p) => p.promptId)).size, 24);
    assert.ok(fake.historyReads.every((r) => r.found));
  });

  it('when the socket drops between execution_success and the history, polls the history until it is written', { timeout: 10_000 }, async () => {
    fake.failure = 'ws-close-after-success';
    const release = fake.holdHistory();
    const result = engine.generate(small(7), new AbortController().signal);
    await waitUntil(() => fake.historyReads.some((r) => !r.found), 'a history read answered {}');
    release();
    const { image, info } = await result;
    assert.deepEqual([image.width, image.height], [64, 64]);
    assert.equal(info?.comfyPromptId, fake.prompts[0]!.promptId);
    assert.equal(fake.interrupts.length + fake.queueDeletes.length, 0, 'a finished prompt is not cancelled');
  });

  it('a history that stays empty past historyWaitMs is a retryable 502', { timeout: 10_000 }, async () => {
    fake.failure = 'ws-close-after-success';
    const release = fake.holdHistory();
    try {
      await assert.rejects(
        engine.generate(small(8), new AbortController().signal),
        expectFailure('backend_error', (e) => {
          assert.match(String(e.message), /finished, but its history was still empty after 300 ms/);
          assert.equal(e.retryable, true);
        }),
      );
    } finally {
      release();
    }
  });
});

describe('ComfyUI engine live previews', () => {
  let fake: FakeComfyui;
  let engine: ComfyuiEngine;

  before(async () => {
    fake = await startFakeComfyui({ steps: 4 });
    engine = new ComfyuiEngine({ id: 'comfy-previews', url: fake.url });
    await engine.load();
  });
  after(async () => {
    await engine.close();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  /** The step (1-based) whose fake preview colour this pixel is, within `tolerance` levels. */
  function stepOfColour(pixel: ArrayLike<number>, tolerance: number): number | undefined {
    for (let step = 1; step <= fake.steps; step++) {
      const c = fakePreviewColour(step);
      if ([c.r, c.g, c.b].every((v, i) => Math.abs(v - pixel[i]!) <= tolerance)) return step;
    }
    return undefined;
  }

  for (const [format, tolerance] of [['png', 0], ['jpeg', 3]] as const) {
    it(`reports the server's ${format.toUpperCase()} previews with its progress steps`, async () => {
      fake.previews = format;
      const events: EngineProgress[] = [];
      const result = await engine.generate(conformanceRequest({ width: 1024, height: 768 }), new AbortController().signal, (p) => events.push(p));
      assert.equal(result.image.width, 1024);
      // Every step is reported as it comes; previews follow as extra reports of the latest step.
      assert.deepEqual(events.filter((e) => !e.preview).map((e) => e.step), [1, 2, 3, 4]);
      const withPreview = events.filter((e) => e.preview);
      assert.ok(withPreview.length >= 1, 'at least one preview');
      for (const e of withPreview) {
        const p = e.preview!;
        // The fake's preview: the 128x96 latent scaled to fit ComfyUI's default 512 px.
        assert.deepEqual([p.width, p.height], [512, 384]);
        assert.equal(p.data.length, p.width * p.height * 3);
        const step = stepOfColour(p.data.subarray(0, 3), tolerance);
        assert.ok(step !== undefined && step <= e.step, `preview of step ${step} reported with step ${e.step}`);
      }
    });
  }

  it('reports no preview when the server sends none', async () => {
    const events: EngineProgress[] = [];
    await engine.generate(conformanceRequest(), new AbortController().signal, (p) => events.push(p));
    assert.deepEqual(events.map((e) => [e.step, e.preview]), [[1, undefined], [2, undefined], [3, undefined], [4, undefined]]);
  });
});

describe('ComfyUI engine with a user workflow and node bindings', () => {
  let dir: string;
  let fake: FakeComfyui;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'comfy-wf-'));
    fake = await startFakeComfyui();
  });
  after(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('fills the inputs named in `nodes` and reads the configured output node', async () => {
    const workflow = {
      '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'qwen.safetensors' } },
      '6': { class_type: 'CLIPTextEncode', inputs: { text: 'placeholder', clip: ['4', 1] } },
      '7': { class_type: 'CLIPTextEncode', inputs: { text: '', clip: ['4', 1] } },
      '5': { class_type: 'EmptyLatentImage', inputs: { width: 1024, height: 1024, batch_size: 1 } },
      '3': { class_type: 'KSampler', inputs: { seed: 0, steps: 4, cfg: 1, sampler_name: 'euler', scheduler: 'simple', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] } },
      '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
      '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'mine', images: ['8', 0] } },
    };
    const file = path.join(dir, 'my-t2i.json');
    await writeFile(file, JSON.stringify(workflow));
    const engine = new ComfyuiEngine({
      id: 'comfy-user',
      url: fake.url,
      edit: false,
      textToImage: {
        file,
        nodes: {
          prompt: { node: '6', input: 'text' },
          negativePrompt: { node: '7', input: 'text' },
          seed: { node: '3', input: 'seed' },
          width: { node: '5', input: 'width' },
          height: { node: '5', input: 'height' },
          output: '9',
        },
      },
    });
    await engine.load();
    const result = await engine.generate(conformanceRequest({ width: 640, height: 512, seed: 99, negativePrompt: 'ugly' }), new AbortController().signal);
    assert.equal(result.image.width, 640);
    const seen = fake.prompts[0]!;
    assert.equal(seen.seed, 99);
    assert.equal(seen.negativePrompt, 'ugly');
    assert.equal(seen.width, 640);
    await engine.close();
  });

  it('fails load() with a clear message for a UI-format workflow', async () => {
    const file = path.join(dir, 'ui.json');
    await writeFile(file, JSON.stringify({ nodes: [], links: [], version: 0.4 }));
    const engine = new ComfyuiEngine({ id: 'comfy-ui', url: fake.url, textToImage: { file } });
    await assert.rejects(engine.load(), /UI-format workflow; save it with "Export \(API\)"/);
    await engine.close();
  });
});

describe('pickOutputImage', () => {
  it('prefers saved images over previews and honours a configured node', () => {
    const entry = {
      outputs: {
        '20': { images: [{ filename: 'preview.png', subfolder: '', type: 'temp' }] },
        '9': { images: [{ filename: 'saved.png', subfolder: '', type: 'output' }] },
      },
    };
    assert.equal(pickOutputImage(entry, undefined)?.filename, 'saved.png');
    assert.equal(pickOutputImage(entry, '20')?.filename, 'preview.png');
    assert.equal(pickOutputImage(entry, '404'), undefined);
  });
});
