import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startFakeComfyui, type FakeComfyui } from '../../../test/fakes/fake-comfyui.ts';
import { RouterEngine } from '../router/router-engine.ts';
import type { EngineLogger } from '../remote/logger.ts';
import { conformanceRequest, expectFailure } from '../testing/conformance.ts';
import { ComfyuiEngine } from './comfyui-engine.ts';
import { comboOptions } from './workflow-requirements.ts';

describe('ComfyUI health: node classes and model files from /object_info', () => {
  let fake: FakeComfyui;
  let engine: ComfyuiEngine;

  before(async () => {
    fake = await startFakeComfyui();
    // The classic pair, whose two workflows differ in their diffusion model and encoder node; the
    // default (2.1) preset's health is checked in the router test below and in qwen-image-2-1-workflows.test.ts.
    engine = new ComfyuiEngine({ id: 'comfy-a', url: fake.url, preset: 'qwen-image', controlTimeoutMs: 5000 });
    await engine.load();
  });
  after(async () => {
    await engine.close();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('is healthy when every class and model file of both workflows is there', async () => {
    const health = await engine.health();
    assert.equal(health.ok, true, health.detail);
    assert.match(health.detail ?? '', /ComfyUI .* on cuda:0/);
    for (const c of ['UNETLoader', 'CLIPLoader', 'VAELoader', 'TextEncodeQwenImageEditPlus']) assert.ok(fake.objectInfo.reads.includes(c), c);
  });

  it('names a diffusion model that is not installed, with the loader input', async () => {
    fake.objectInfo.installed.diffusion_models = fake.objectInfo.installed.diffusion_models.filter((f) => f !== 'qwen_image_fp8_e4m3fn.safetensors');
    const health = await engine.health();
    assert.equal(health.ok, false);
    assert.equal(health.detail, 'qwen_image_fp8_e4m3fn.safetensors not installed (UNETLoader.unet_name)');
  });

  it('reads v3 combos (["COMBO", {options}]) as well as classic ones, and lists every missing file once', async () => {
    fake.objectInfo.comboStyle = 'v3';
    assert.equal((await engine.health()).ok, true);
    fake.objectInfo.installed.vae = [];
    fake.objectInfo.installed.text_encoders = ['something_else.safetensors'];
    const health = await engine.health();
    assert.equal(health.ok, false);
    // Both workflows share the encoder and the VAE: each reported once.
    assert.equal(
      health.detail,
      'qwen_2.5_vl_7b_fp8_scaled.safetensors not installed (CLIPLoader.clip_name); qwen_image_vae.safetensors not installed (VAELoader.vae_name)',
    );
  });

  it('says clearly when the server lacks a node class', async () => {
    fake.objectInfo.missingClasses.add('TextEncodeQwenImageEditPlus');
    const health = await engine.health();
    assert.equal(health.ok, false);
    assert.match(health.detail ?? '', /^ComfyUI has no node TextEncodeQwenImageEditPlus \(used by qwen-image-edit-2509\.json node 6, qwen-image-edit-2509\.json node 7\); update ComfyUI or install the custom node/);
  });

  it('falls back to GET /object_info on a server without the per-class route', async () => {
    fake.objectInfo.perClassRoute = false;
    fake.objectInfo.installed.diffusion_models = [];
    const health = await engine.health();
    assert.equal(health.ok, false);
    assert.match(health.detail ?? '', /qwen_image_fp8_e4m3fn\.safetensors not installed \(UNETLoader\.unet_name\)/);
    assert.ok(fake.objectInfo.reads.includes('*'));
  });

  it('the fake rejects such a workflow the way ComfyUI does, and the engine reports the file', async () => {
    fake.objectInfo.installed.vae = [];
    await assert.rejects(
      engine.generate(conformanceRequest(), new AbortController().signal),
      expectFailure('backend_error', (e) => assert.match(String(e.message), /vae_name: 'qwen_image_vae\.safetensors' not in \[\]/)),
    );
  });

  it('the router shows the default (2.1) workflows\' missing file in its description (GET /v1/models) and logs it once', async () => {
    fake.objectInfo.installed.diffusion_models = [];
    const warnings: Array<{ obj: Record<string, unknown>; msg?: string }> = [];
    const logger: EngineLogger = { debug() {}, info() {}, error() {}, warn: (obj, msg) => warnings.push({ obj: obj as Record<string, unknown>, msg }) };
    const comfy = new ComfyuiEngine({ id: 'comfy-b', url: fake.url, controlTimeoutMs: 5000 });
    const router = new RouterEngine({
      model: 'alibaba/qwen-image-2-0',
      backends: [{ id: 'comfy-b', engine: comfy, priority: 0, weight: 1, concurrency: 1, maxReferenceImages: 3, timeoutMs: 0 }],
      healthCheck: { intervalMs: 0, timeoutMs: 5000 },
      circuitBreaker: { failureThreshold: 3, resetMs: 1000 },
      logger,
    });
    try {
      await router.load();
      const backend = router.describe().backends[0]!;
      assert.equal(backend.healthy, false);
      // Text-to-image and edit share the 2.1 diffusion model: named once.
      assert.equal(backend.healthDetail, 'qwen_image_2.1_bf16.safetensors not installed (UNETLoader.unet_name)');
      const down = warnings.filter((w) => w.msg === 'backend is down');
      assert.equal(down.length, 1);
      assert.match(String(down[0]!.obj.detail), /qwen_image_2\.1_bf16\.safetensors not installed/);
    } finally {
      await router.close();
    }
  });
});

describe('comboOptions', () => {
  it('reads both shapes and nothing else', () => {
    assert.deepEqual(comboOptions([['a', 'b']]), ['a', 'b']);
    assert.deepEqual(comboOptions([['x.png'], { image_upload: true }]), ['x.png']);
    assert.deepEqual(comboOptions(['COMBO', { multiselect: false, options: ['red', 'green'] }]), ['red', 'green']);
    assert.equal(comboOptions(['COMBO', { remote: { route: '/internal/files' } }]), undefined);
    assert.equal(comboOptions(['INT', { default: 1 }]), undefined);
    assert.equal(comboOptions(['IMAGE']), undefined);
    assert.equal(comboOptions(undefined), undefined);
  });
});
