/**
 * What a ComfyUI server must have for our workflows to run, checked against its GET /object_info
 * (shapes: shared/protocols/comfyui.md): every node class the templates use, and every literal
 * value of an input that the server lists as a choice (a combo). For loaders (UNETLoader.unet_name,
 * CLIPLoader.clip_name, VAELoader.vae_name, CheckpointLoaderSimple.ckpt_name, LoraLoader.lora_name,
 * ...) the choices are the files in the models/ folder, so a value not among them is a model file
 * that is not installed: the same check POST /prompt makes (`value_not_in_list`), made before
 * traffic arrives.
 *
 * A combo comes in two shapes: classic nodes `[[...options], {config}?]`, v3-schema nodes
 * `["COMBO", {options: [...]}]`. A combo whose options the server does not list (a v3 remote
 * combo) cannot be checked and is skipped.
 */
import path from 'node:path';
import type { WorkflowTemplate } from './workflow-template.ts';

/** The slice of one /object_info entry this check reads. */
export interface ComfyObjectInfo {
  input?: { required?: Record<string, unknown>; optional?: Record<string, unknown> };
}

export interface LiteralInput {
  classType: string;
  node: string;
  input: string;
  value: string;
  /** The template file, for messages. */
  source: string;
}

/** Extensions of model weights: a value ending so reads "not installed" rather than "not an option". */
const MODEL_FILE = /\.(safetensors|sft|ckpt|pt|pth|bin|gguf|onnx)$/i;

/** Node classes the templates use, each once, in first-use order. */
export function requiredClasses(templates: readonly WorkflowTemplate[]): string[] {
  const classes = new Set<string>();
  for (const t of templates) for (const node of Object.values(t.workflow)) classes.add(node.class_type);
  return [...classes];
}

/** String inputs that are literal values: not a placeholder, not bound by the config, not a link. */
export function literalInputs(templates: readonly WorkflowTemplate[]): LiteralInput[] {
  const out: LiteralInput[] = [];
  for (const t of templates) {
    const bound = new Set(t.bindings.map((b) => `${b.node}\u0000${b.input}`));
    for (const [id, node] of Object.entries(t.workflow)) {
      for (const [input, value] of Object.entries(node.inputs)) {
        if (typeof value !== 'string' || value.includes('{{') || bound.has(`${id}\u0000${input}`)) continue;
        out.push({ classType: node.class_type, node: id, input, value, source: t.source });
      }
    }
  }
  return out;
}

/** The options of a combo input spec, in either shape; undefined for anything else. */
export function comboOptions(spec: unknown): string[] | undefined {
  if (!Array.isArray(spec) || spec.length === 0) return undefined;
  const [head, config] = spec as [unknown, unknown];
  if (Array.isArray(head)) return head.map(String);
  if (head === 'COMBO' && config && typeof config === 'object') {
    const options = (config as { options?: unknown }).options;
    if (Array.isArray(options)) return options.map(String);
  }
  return undefined;
}

/**
 * Problems that would make POST /prompt reject our workflows on this server, one sentence each:
 * "qwen_image_2.1_bf16.safetensors not installed (UNETLoader.unet_name)". `info` maps a class to
 * its entry, or to undefined when the server does not have that class.
 */
export function findMissing(templates: readonly WorkflowTemplate[], info: ReadonlyMap<string, ComfyObjectInfo | undefined>): string[] {
  const problems: string[] = [];
  for (const classType of requiredClasses(templates)) {
    if (info.get(classType) !== undefined) continue;
    const users = templates
      .flatMap((t) => Object.entries(t.workflow).filter(([, n]) => n.class_type === classType).map(([id]) => `${path.basename(t.source)} node ${id}`))
      .slice(0, 2);
    problems.push(`ComfyUI has no node ${classType} (used by ${users.join(', ')}); update ComfyUI or install the custom node that provides it`);
  }
  const seen = new Set<string>();
  for (const literal of literalInputs(templates)) {
    const entry = info.get(literal.classType);
    if (!entry) continue;
    const spec = entry.input?.required?.[literal.input] ?? entry.input?.optional?.[literal.input];
    const options = comboOptions(spec);
    if (!options || options.includes(literal.value)) continue;
    const where = `${literal.classType}.${literal.input}`;
    const key = `${where}\u0000${literal.value}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(
      MODEL_FILE.test(literal.value)
        ? `${literal.value} not installed (${where})`
        : `${where} "${literal.value}" is not among this server's options (${options.slice(0, 5).join(', ')}${options.length > 5 ? ', …' : ''})`,
    );
  }
  return problems;
}
