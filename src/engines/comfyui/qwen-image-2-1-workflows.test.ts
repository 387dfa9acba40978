import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startFakeComfyui, type FakeComfyui } from '../../../test/fakes/fake-comfyui.ts';
import { conformanceRequest, referenceImages } from '../testing/conformance.ts';
import { bundledWorkflowPath, ComfyuiEngine, type BundledWorkflow } from './comfyui-engine.ts';
import { fillWorkflow, parseWorkflowTemplate } from './workflow-template.ts';
import { parseBackendsConfig } from '../../config/backends.ts';

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

describe('workflow presets: Qwen-Image-2.1 is the default, the others by name', () => {
  let fake: FakeComfyui;

  before(async () => {
    fake = await startFakeComfyui();
  });
  after(async () => {
    await fake.close();
  });
  beforeEach(() => fake.reset());

  /** What one generation with these options sent to ComfyUI: diffusion model file, encoder node class, steps, cfg. */
  async function sent(options: Partial<ConstructorParameters<typeof ComfyuiEngine>[0]>, references = 0) {
    const engine = new ComfyuiEngine({ id: 'comfy-preset', url: fake.url, controlTimeoutMs: 5000, ...options });
    await engine.load();
    try {
      await engine.generate(conformanceRequest({ referenceImages: referenceImages(references) }), new AbortController().signal);
      const workflow = fake.prompts.at(-1)!.workflow;
      const nodes = Object.values(workflow);
      const sampler = nodes.find((n) => n.class_type === 'KSampler')!;
      return {
        unet: nodes.find((n) => n.class_type === 'UNETLoader')!.inputs.unet_name,
        encoder: nodes.find((n) => /^(TextEncodeQwenImage|CLIPTextEncode)/.test(n.class_type))!.class_type,
        steps: sampler.inputs.steps,
        cfg: sampler.inputs.cfg,
        capabilities: engine.capabilities(),
      };
    } finally {
      await engine.close();
    }
  }

  it('no preset and no files: the 2.1 workflows, 40 steps at CFG 1, so the negative prompt is declared unused', async () => {
    const t2i = await sent({});
    assert.deepEqual([t2i.unet, t2i.encoder, t2i.steps, t2i.cfg], ['qwen_image_2.1_bf16.safetensors', 'TextEncodeQwenImage21', 40, 1]);
    const edit = await sent({}, 3);
    assert.deepEqual([edit.unet, edit.encoder, edit.steps], ['qwen_image_2.1_bf16.safetensors', 'TextEncodeQwenImage21', 40]);
    assert.equal(fake.prompts.at(-1)!.images.length, 3);
    assert.equal(t2i.capabilities.maxReferenceImages, 3);
    assert.equal(t2i.capabilities.negativePrompt, false);
    assert.deepEqual([t2i.capabilities.seed, t2i.capabilities.progress, t2i.capabilities.previews, t2i.capabilities.masks], [true, true, true, false]);
    assert.equal(t2i.capabilities.sizes.stepPx, 32);
  });

  it('qwen-image-2.1-turbo: the 8-step Turbo model for text-to-image, the full 2.1 model for edits', async () => {
    const t2i = await sent({ preset: 'qwen-image-2.1-turbo' });
    assert.deepEqual([t2i.unet, t2i.steps, t2i.cfg], ['qwen_image_2.1_turbo_bf16.safetensors', 8, 1]);
    const edit = await sent({ preset: 'qwen-image-2.1-turbo' }, 1);
    assert.deepEqual([edit.unet, edit.steps], ['qwen_image_2.1_bf16.safetensors', 40]);
  });

  it('qwen-image: the first Qwen-Image and Edit-2509, whose CFG 2.5 uses the negative prompt', async () => {
    const t2i = await sent({ preset: 'qwen-image' });
    assert.deepEqual([t2i.unet, t2i.encoder, t2i.cfg], ['qwen_image_fp8_e4m3fn.safetensors', 'CLIPTextEncode', 2.5]);
    const edit = await sent({ preset: 'qwen-image' }, 2);
    assert.deepEqual([edit.unet, edit.encoder], ['qwen_image_edit_2509_fp8_e4m3fn.safetensors', 'TextEncodeQwenImageEditPlus']);
    assert.equal(t2i.capabilities.negativePrompt, true);
    assert.equal(t2i.capabilities.sizes.stepPx, 16);
  });

  it('a file given for one workflow replaces only that one; `edit: false` declares text-to-image only', async () => {
    const mixed = await sent({ preset: 'qwen-image', textToImage: { file: bundledWorkflowPath('qwen-image-2.1-t2i.json') } });
    assert.equal(mixed.unet, 'qwen_image_2.1_bf16.safetensors');
    // 2.1 at CFG 1 for text-to-image, Edit-2509 at CFG > 1: not every workflow uses the negative prompt.
    assert.equal(mixed.capabilities.negativePrompt, false);
    const t2iOnly = await sent({ edit: false });
    assert.equal(t2iOnly.capabilities.maxReferenceImages, 0);
  });
});

describe('workflows.preset in the routing file', () => {
  it('accepts the three names and refuses another, naming the field and the choices', () => {
    const config = (preset: string) =>
      JSON.stringify({ models: { m: { backends: [{ id: 'c', type: 'comfyui', url: 'http://gpu:8188', workflows: { preset } }] } } });
    for (const name of ['qwen-image-2.1', 'qwen-image-2.1-turbo', 'qwen-image']) {
      const parsed = parseBackendsConfig(config(name), 'json');
      const backend = parsed.models.m!.backends[0]!;
      assert.equal(backend.type === 'comfyui' && backend.workflows?.preset, name);
    }
    assert.throws(() => parseBackendsConfig(config('qwen-image-3'), 'json'), (err: Error) => {
      assert.match(err.message, /models\["m"\]\.backends\[0\]\.workflows\.preset: must be one of "qwen-image-2\.1", "qwen-image-2\.1-turbo", "qwen-image"/);
      return true;
    });
  });
});
