/**
 * ComfyUI API-format workflow templates: where the request's values go, and how to fill them.
 *
 * A template is a workflow exported with "Export (API)" (`{ "<node id>": { class_type, inputs } }`)
 * whose inputs say where each value goes, either by a placeholder string as the input's whole
 * value — {{prompt}} {{negative_prompt}} {{seed}} {{width}} {{height}} {{image1}} {{image2}}
 * {{image3}} — or by `nodes` bindings in the backends config (for a workflow file you do not want
 * to edit). {{prompt}} and {{negative_prompt}} may also sit inside a longer string
 * ("{{prompt}}, ultra detailed"). See workflows/README.md.
 *
 * Reference slots the request does not use are removed: the LoadImage node for {{image3}} is
 * deleted together with every input that linked to it, so TextEncodeQwenImageEditPlus simply gets
 * fewer images.
 */
import type { ComfyuiWorkflowConfig } from './config.ts';

export interface ComfyNode {
  class_type: string;
  inputs: Record<string, unknown>;
  _meta?: { title?: string };
}

export type ComfyWorkflow = Record<string, ComfyNode>;

export type ValueName = 'prompt' | 'negative_prompt' | 'seed' | 'width' | 'height' | 'image1' | 'image2' | 'image3';

const VALUE_NAMES: ReadonlySet<string> = new Set<ValueName>([
  'prompt',
  'negative_prompt',
  'seed',
  'width',
  'height',
  'image1',
  'image2',
  'image3',
]);

/** Placeholders that may be embedded in a longer string; the others must be the whole value. */
const TEXT_VALUES: ReadonlySet<string> = new Set(['prompt', 'negative_prompt']);

interface Binding {
  node: string;
  input: string;
  name: ValueName;
  /** The input's original string when the placeholder is embedded in it. */
  template?: string;
}

export interface WorkflowTemplate {
  /** For error messages: the file it came from. */
  source: string;
  workflow: ComfyWorkflow;
  bindings: Binding[];
  /** Reference images the workflow accepts (number of consecutive {{imageN}} slots). */
  imageSlots: number;
  /** Node whose images are the result; undefined: the first node in the history with images. */
  outputNode: string | undefined;
  /**
   * The negative prompt can change the image: something receives {{negative_prompt}} and the
   * guidance is above 1. At CFG 1 ComfyUI skips the unconditional pass (comfy/samplers.py
   * `sampling_function` sets uncond to None when cond_scale is 1.0, its "cfg1 optimization"), so
   * the negative conditioning is never computed.
   */
  honoursNegativePrompt: boolean;
}

export interface WorkflowValues {
  prompt: string;
  negativePrompt: string;
  seed: number;
  width: number;
  height: number;
  /** ComfyUI input names as returned by /upload/image ("subfolder/name.png"). */
  images: string[];
}

export class WorkflowTemplateError extends Error {
  constructor(source: string, problem: string) {
    super(`workflow ${source}: ${problem}`);
    this.name = 'WorkflowTemplateError';
  }
}

const PLACEHOLDER_WHOLE = /^\{\{\s*([a-z0-9_]+)\s*\}\}$/;
const PLACEHOLDER_ANY = /\{\{\s*([a-z0-9_]+)\s*\}\}/g;

/**
 * Checks the workflow's shape, collects its placeholders and config bindings, and verifies that it
 * can receive what every request carries (prompt, seed, width, height; images for an edit workflow).
 */
export function parseWorkflowTemplate(
  value: unknown,
  source: string,
  options: { nodes?: ComfyuiWorkflowConfig['nodes']; requireImages: boolean },
): WorkflowTemplate {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new WorkflowTemplateError(source, 'must be a JSON object of nodes');
  }
  const record = value as Record<string, unknown>;
  if (Array.isArray(record.nodes) && 'links' in record) {
    throw new WorkflowTemplateError(source, 'this is a UI-format workflow; save it with "Export (API)" in ComfyUI');
  }
  const workflow: ComfyWorkflow = {};
  for (const [id, node] of Object.entries(record)) {
    const n = node as Partial<ComfyNode> | null;
    if (!n || typeof n !== 'object' || typeof n.class_type !== 'string' || !n.inputs || typeof n.inputs !== 'object') {
      throw new WorkflowTemplateError(source, `node "${id}" has no class_type/inputs (is this an API-format workflow?)`);
    }
    workflow[id] = n as ComfyNode;
  }
  if (Object.keys(workflow).length === 0) throw new WorkflowTemplateError(source, 'has no nodes');

  const bindings: Binding[] = [];
  for (const [id, node] of Object.entries(workflow)) {
    for (const [input, current] of Object.entries(node.inputs)) {
      if (typeof current !== 'string') continue;
      const whole = PLACEHOLDER_WHOLE.exec(current);
      if (whole) {
        const name = whole[1]!;
        if (!VALUE_NAMES.has(name)) throw new WorkflowTemplateError(source, `node "${id}" input "${input}": unknown placeholder {{${name}}}`);
        bindings.push({ node: id, input, name: name as ValueName });
        continue;
      }
      for (const match of current.matchAll(PLACEHOLDER_ANY)) {
        const name = match[1]!;
        if (!TEXT_VALUES.has(name)) {
          throw new WorkflowTemplateError(source, `node "${id}" input "${input}": {{${name}}} must be the whole value of the input`);
        }
        bindings.push({ node: id, input, name: name as ValueName, template: current });
      }
    }
  }

  const nodes = options.nodes ?? {};
  const configBindings: Array<[ValueName, { node: string; input: string } | undefined]> = [
    ['prompt', nodes.prompt],
    ['negative_prompt', nodes.negativePrompt],
    ['seed', nodes.seed],
    ['width', nodes.width],
    ['height', nodes.height],
    ...(nodes.images ?? []).map((b, i) => [`image${i + 1}` as ValueName, b] as [ValueName, { node: string; input: string }]),
  ];
  for (const [name, b] of configBindings) {
    if (!b) continue;
    const node = workflow[b.node];
    if (!node) throw new WorkflowTemplateError(source, `nodes binding for ${name}: there is no node "${b.node}"`);
    if (!(b.input in node.inputs)) {
      throw new WorkflowTemplateError(source, `nodes binding for ${name}: node "${b.node}" (${node.class_type}) has no input "${b.input}"`);
    }
    bindings.push({ node: b.node, input: b.input, name });
  }

  const has = (name: ValueName): boolean => bindings.some((b) => b.name === name);
  for (const name of ['prompt', 'seed', 'width', 'height'] as const) {
    if (!has(name)) throw new WorkflowTemplateError(source, `nothing receives {{${name}}} (add the placeholder or a nodes binding)`);
  }
  let imageSlots = 0;
  while (imageSlots < 3 && has(`image${imageSlots + 1}` as ValueName)) imageSlots += 1;
  for (let k = imageSlots + 1; k <= 3; k++) {
    if (has(`image${k}` as ValueName)) throw new WorkflowTemplateError(source, `{{image${k}}} is used but {{image${imageSlots + 1}}} is not`);
  }
  if (options.requireImages && imageSlots === 0) {
    throw new WorkflowTemplateError(source, 'an edit workflow needs at least {{image1}}');
  }
  for (const b of bindings.filter((x) => x.name.startsWith('image'))) {
    const sameNode = bindings.filter((x) => x.node === b.node && x.name !== b.name && !x.name.startsWith('image'));
    if (sameNode.length > 0) {
      throw new WorkflowTemplateError(source, `node "${b.node}" holds {{${b.name}}} and other values; a reference image needs its own LoadImage node`);
    }
  }
  const outputNode = nodes.output;
  if (outputNode !== undefined && !workflow[outputNode]) {
    throw new WorkflowTemplateError(source, `nodes.output: there is no node "${outputNode}"`);
  }
  return { source, workflow, bindings, imageSlots, outputNode, honoursNegativePrompt: honoursNegativePrompt(workflow, bindings) };
}

/** See WorkflowTemplate.honoursNegativePrompt; `cfg` inputs are KSampler's, KSamplerAdvanced's and CFGGuider's. */
function honoursNegativePrompt(workflow: ComfyWorkflow, bindings: Binding[]): boolean {
  if (!bindings.some((b) => b.name === 'negative_prompt')) return false;
  const guidance = Object.values(workflow)
    .map((node) => node.inputs.cfg)
    .filter((cfg): cfg is number => typeof cfg === 'number');
  return guidance.length === 0 || guidance.some((cfg) => cfg > 1);
}

/** A fresh, filled copy of the template's workflow, ready for POST /prompt. */
export function fillWorkflow(template: WorkflowTemplate, values: WorkflowValues): ComfyWorkflow {
  if (values.images.length > template.imageSlots) {
    throw new WorkflowTemplateError(template.source, `accepts ${template.imageSlots} reference image(s), got ${values.images.length}`);
  }
  const workflow = structuredClone(template.workflow);
  const scalar: Record<ValueName, string | number | undefined> = {
    prompt: values.prompt,
    negative_prompt: values.negativePrompt,
    seed: values.seed,
    width: values.width,
    height: values.height,
    image1: values.images[0],
    image2: values.images[1],
    image3: values.images[2],
  };
  const unused = new Set<string>();
  for (const b of template.bindings) {
    const value = scalar[b.name];
    if (value === undefined) {
      unused.add(b.node);
      continue;
    }
    const node = workflow[b.node]!;
    if (b.template !== undefined) {
      const current = typeof node.inputs[b.input] === 'string' ? (node.inputs[b.input] as string) : b.template;
      node.inputs[b.input] = current.replace(PLACEHOLDER_ANY, (whole, name: string) =>
        name === b.name ? String(value) : whole,
      );
    } else {
      node.inputs[b.input] = value;
    }
  }
  for (const id of unused) removeNode(workflow, id);
  return workflow;
}

/** Deletes a node and every input elsewhere that links to it (`["<id>", <output index>]`). */
function removeNode(workflow: ComfyWorkflow, id: string): void {
  delete workflow[id];
  for (const node of Object.values(workflow)) {
    for (const [input, value] of Object.entries(node.inputs)) {
      if (Array.isArray(value) && value.length === 2 && String(value[0]) === id) delete node.inputs[input];
    }
  }
}
