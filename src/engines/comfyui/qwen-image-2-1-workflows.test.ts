import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startFakeComfyui, type FakeComfyui } from '../../../test/fakes/fake-comfyui.ts';
import { conformanceRequest, referenceImages } from '../testing/conformance.ts';
import { bundledWorkflowPath, ComfyuiEngine, type BundledWorkflow } from './comfyui-engine.ts';
import { fillWorkflow, parseWorkflowTemplate } from './workflow-template.ts';

const values = { prompt: 'a cat', negativePrompt: 'blurry', seed: 7, width: 768, height: 512, images: [] as string[] };

async function template(name: BundledWorkflow, requireImages: boolean) {
  return parseWorkflowTemplate(JSON.parse(await readFile(bundledWorkflowPath(name), 'utf8')), name, { requireImages });
}

describe('Qwen-Image-2.1 workflow templates', () => {
  for (const [name, unet, steps] of [
    ['qwen-image-2.1-t2i.json', 'qwen_image_2.1_bf16.safetensors', 40],
    ['qwen-image-2.1-turbo-t2i.json', 'qwen_image_2.1_turbo_bf16.safetensors', 8],
  ] as const) {
    it(`${name}: every placeholder filled, ${steps} steps at CFG 1, Qwen3-VL encoder`, async () => {
      const t = await template(name, false);
      assert.equal(t.imageSlots, 0);
      const wf = fillWorkflow(t, values);
      assert.equal(wf['1']!.inputs.unet_name, unet);
      assert.equal(wf['2']!.inputs.clip_name, 'qwen3vl_8b_bf16.safetensors');
      assert.equal(wf['3']!.inputs.vae_name, 'qwen_image_2.1_vae_bf16.safetensors');
      assert.equal(wf['5']!.class_type, 'TextEncodeQwenImage21');
      assert.equal(wf['5']!.inputs.prompt, 'a cat');
      assert.equal(wf['5']!.inputs.negative_prompt, 'blurry');
      assert.deepEqual([wf['7']!.inputs.width, wf['7']!.inputs.height], [768, 512]);
      assert.deepEqual([wf['8']!.inputs.seed, wf['8']!.inputs.steps, wf['8']!.inputs.cfg], [7, steps, 1]);
      assert.deepEqual([wf['8']!.inputs.positive, wf['8']!.inputs.negative], [['5', 0], ['5', 1]]);
      assert.ok(!JSON.stringify(wf).includes('{{'));
    });
  }

  it('edit: three reference slots (the API maximum) wired to images.image_N; unused ones pruned', async () => {
    const t = await template('qwen-image-2.1-edit.json', true);
    assert.equal(t.imageSlots, 3);
    const one = fillWorkflow(t, { ...values, images: ['qwen-image-api/a.png'] });
    assert.equal(one['11']!.inputs.image, 'qwen-image-api/a.png');
    assert.deepEqual(one['5']!.inputs['images.image_1'], ['11', 0]);
    assert.equal(one['12'], undefined);
    assert.ok(!('images.image_2' in one['5']!.inputs) && !('images.image_3' in one['5']!.inputs));
    assert.equal(one['8']!.inputs.steps, 40);
    const three = fillWorkflow(t, { ...values, images: ['a', 'b', 'c'] });
    assert.deepEqual(['11', '12', '13'].map((id) => three[id]!.inputs.image), ['a', 'b', 'c']);
  });
});

describe('Qwen-Image-2.1 templates on the ComfyUI fake', () => {
  let fake: FakeComfyui;
  let engine: ComfyuiEngine;

  before(async () => {
    fake = await startFakeComfyui();
    engine = new ComfyuiEngine({
      id: 'comfy-21',
      url: fake.url,
      textToImage: { file: bundledWorkflowPath('qwen-image-2.1-t2i.json') },
      edit: { file: bundledWorkflowPath('qwen-image-2.1-edit.json') },
      controlTimeoutMs: 5000,
    });
    await engine.load();
  });
  after(async () => {
    await engine.close();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('validate and run: prompt, negative prompt, seed, size and references reach ComfyUI', async () => {
    await engine.generate(conformanceRequest({ prompt: 'a scarlet cabin', negativePrompt: 'fog', seed: 11, width: 768, height: 512 }), new AbortController().signal);
    await engine.generate(conformanceRequest({ prompt: 'make it blue', referenceImages: referenceImages(2) }), new AbortController().signal);
    const [t2i, edit] = fake.prompts;
    assert.deepEqual([t2i!.prompt, t2i!.negativePrompt, t2i!.seed, t2i!.width, t2i!.height], ['a scarlet cabin', 'fog', 11, 768, 512]);
    assert.equal(edit!.prompt, 'make it blue');
    assert.equal(edit!.images.length, 2);
  });

  it('health names the 2.1 model file when it is missing', async () => {
    assert.equal((await engine.health()).ok, true);
    fake.objectInfo.installed.diffusion_models = ['qwen_image_fp8_e4m3fn.safetensors'];
    const health = await engine.health();
    assert.equal(health.ok, false);
    assert.equal(health.detail, 'qwen_image_2.1_bf16.safetensors not installed (UNETLoader.unet_name)');
  });
});
