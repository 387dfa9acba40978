import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { bundledWorkflowPath } from './comfyui-engine.ts';
import { fillWorkflow, parseWorkflowTemplate, WorkflowTemplateError } from './workflow-template.ts';

const values = { prompt: 'a cat', negativePrompt: 'blurry', seed: 7, width: 768, height: 512, images: [] as string[] };

describe('bundled workflows', () => {
  it('text-to-image: every placeholder is filled with the right type', async () => {
    const json = JSON.parse(await readFile(bundledWorkflowPath('qwen-image-t2i.json'), 'utf8'));
    const template = parseWorkflowTemplate(json, 't2i', { requireImages: false });
    assert.equal(template.imageSlots, 0);
    const wf = fillWorkflow(template, values);
    assert.equal(wf['5']!.inputs.text, 'a cat');
    assert.equal(wf['6']!.inputs.text, 'blurry');
    assert.equal(wf['7']!.inputs.width, 768);
    assert.equal(wf['7']!.inputs.height, 512);
    assert.equal(wf['8']!.inputs.seed, 7);
    assert.ok(!JSON.stringify(wf).includes('{{'), 'no placeholder left');
    assert.ok(JSON.stringify(template.workflow).includes('{{prompt}}'), 'the template itself is not modified');
  });

  it('edit 2509: unused reference slots are pruned with their links', async () => {
    const json = JSON.parse(await readFile(bundledWorkflowPath('qwen-image-edit-2509.json'), 'utf8'));
    const template = parseWorkflowTemplate(json, 'edit', { requireImages: true });
    assert.equal(template.imageSlots, 3);
    const wf = fillWorkflow(template, { ...values, images: ['qwen-image-api/a.png'] });
    assert.equal(wf['11']!.inputs.image, 'qwen-image-api/a.png');
    assert.equal(wf['12'], undefined);
    assert.equal(wf['13'], undefined);
    assert.deepEqual(wf['6']!.inputs.image1, ['11', 0]);
    assert.ok(!('image2' in wf['6']!.inputs) && !('image3' in wf['7']!.inputs));
    const full = fillWorkflow(template, { ...values, images: ['a', 'b', 'c'] });
    assert.equal(full['13']!.inputs.image, 'c');
    assert.throws(() => fillWorkflow(template, { ...values, images: ['a', 'b', 'c', 'd'] }), WorkflowTemplateError);
  });
});

describe('parseWorkflowTemplate errors', () => {
  const minimal = () => ({
    '1': { class_type: 'CLIPTextEncode', inputs: { text: '{{prompt}}' } },
    '2': { class_type: 'EmptySD3LatentImage', inputs: { width: '{{width}}', height: '{{height}}', batch_size: 1 } },
    '3': { class_type: 'KSampler', inputs: { seed: '{{seed}}' } },
  });

  it('accepts a minimal template and embedded text placeholders', () => {
    const wf = minimal();
    wf['1'].inputs.text = '{{prompt}}, highly detailed';
    const t = parseWorkflowTemplate(wf, 'x', { requireImages: false });
    assert.equal(fillWorkflow(t, values)['1']!.inputs.text, 'a cat, highly detailed');
  });

  it('names what is missing or wrong', () => {
    const noSeed = minimal() as Record<string, { class_type: string; inputs: Record<string, unknown> }>;
    noSeed['3']!.inputs.seed = 1;
    assert.throws(() => parseWorkflowTemplate(noSeed, 'x.json', { requireImages: false }), /workflow x.json: nothing receives \{\{seed\}\}/);
    const unknown = minimal() as Record<string, { class_type: string; inputs: Record<string, unknown> }>;
    unknown['3']!.inputs.steps = '{{steps}}';
    assert.throws(() => parseWorkflowTemplate(unknown, 'x', { requireImages: false }), /unknown placeholder \{\{steps\}\}/);
    const embeddedSeed = minimal() as Record<string, { class_type: string; inputs: Record<string, unknown> }>;
    embeddedSeed['1']!.inputs.text = '{{prompt}} {{seed}}';
    assert.throws(() => parseWorkflowTemplate(embeddedSeed, 'x', { requireImages: false }), /must be the whole value/);
    assert.throws(() => parseWorkflowTemplate(minimal(), 'x', { requireImages: true }), /needs at least \{\{image1\}\}/);
    assert.throws(
      () => parseWorkflowTemplate(minimal(), 'x', { requireImages: false, nodes: { seed: { node: '3', input: 'sed' } } }),
      /node "3" \(KSampler\) has no input "sed"/,
    );
    assert.throws(() => parseWorkflowTemplate([], 'x', { requireImages: false }), /must be a JSON object/);
    assert.throws(() => parseWorkflowTemplate({ a: { inputs: {} } }, 'x', { requireImages: false }), /node "a" has no class_type/);
  });
});

describe('honoursNegativePrompt', () => {
  const workflow = (cfg: unknown, negative: string | undefined) => ({
    '1': { class_type: 'CLIPTextEncode', inputs: { text: '{{prompt}}' } },
    '2': { class_type: 'CLIPTextEncode', inputs: { text: negative ?? 'fixed words' } },
    '3': { class_type: 'EmptySD3LatentImage', inputs: { width: '{{width}}', height: '{{height}}' } },
    '4': { class_type: 'KSampler', inputs: { seed: '{{seed}}', cfg } },
  });
  const honours = (cfg: unknown, negative?: string) =>
    parseWorkflowTemplate(workflow(cfg, negative), 'inline', { requireImages: false }).honoursNegativePrompt;

  it('needs both a {{negative_prompt}} input and guidance above 1 (ComfyUI skips the negative pass at CFG 1)', () => {
    assert.equal(honours(2.5, '{{negative_prompt}}'), true);
    assert.equal(honours(1, '{{negative_prompt}}'), false);
    assert.equal(honours(4, undefined), false);
    // A cfg fed by a link (another node's output) cannot be read: the binding decides.
    assert.equal(honours(['9', 0], '{{negative_prompt}}, lowres'), true);
  });

  it('the bundled pairs: Qwen-Image (CFG 2.5) honours it, the 2.1 templates (CFG 1) do not', async () => {
    const read = async (name: Parameters<typeof bundledWorkflowPath>[0], requireImages: boolean) =>
      parseWorkflowTemplate(JSON.parse(await readFile(bundledWorkflowPath(name), 'utf8')), name, { requireImages }).honoursNegativePrompt;
    assert.equal(await read('qwen-image-t2i.json', false), true);
    assert.equal(await read('qwen-image-edit-2509.json', true), true);
    assert.equal(await read('qwen-image-2.1-t2i.json', false), false);
    assert.equal(await read('qwen-image-2.1-edit.json', true), false);
    assert.equal(await read('qwen-image-2.1-turbo-t2i.json', false), false);
  });
});
