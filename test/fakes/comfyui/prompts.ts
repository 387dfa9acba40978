/**
 * What the fake makes of a submitted API-format workflow: ComfyUI's validation where it matters to
 * us (unknown node classes, loader files not installed, links to missing nodes, LoadImage files
 * never uploaded, no output node), and the record tests read (prompt, seed, size, references).
 */
import { loaderValueError } from '../fake-comfyui-object-info.ts';
import type { FakeComfyPrompt, FakeComfyState, Node, Workflow } from './types.ts';

export type PromptProblem = { error: Record<string, unknown>; node_errors: unknown };

/** POST /prompt's 400 body for a workflow ComfyUI would refuse, or undefined. */
export function validatePrompt(state: FakeComfyState, workflow: unknown): PromptProblem | undefined {
  const fail = (type: string, message: string, details = '', nodeErrors: unknown = {}) => ({
    error: { type, message, details, extra_info: {} },
    node_errors: nodeErrors,
  });
  if (!workflow || typeof workflow !== 'object') return fail('invalid_prompt', 'Invalid prompt: not an object');
  const wf = workflow as Workflow;
  for (const [id, node] of Object.entries(wf)) {
    if (!node || typeof node.class_type !== 'string') return fail('invalid_prompt', `Cannot execute because node ${id} has no class_type`);
    if (state.fake.objectInfo.missingClasses.has(node.class_type)) {
      return fail('invalid_prompt', `Cannot execute because node ${node.class_type} does not exist.`, `Node ID '#${id}'`);
    }
    const notInstalled = loaderValueError(state.fake.objectInfo, node.class_type, node.inputs ?? {});
    if (notInstalled) {
      return fail('prompt_outputs_failed_validation', 'Prompt outputs failed validation', '', {
        [id]: { errors: [notInstalled], dependent_outputs: [], class_type: node.class_type },
      });
    }
    for (const [input, value] of Object.entries(node.inputs ?? {})) {
      if (Array.isArray(value) && value.length === 2 && !wf[String(value[0])]) {
        return fail('prompt_outputs_failed_validation', 'Prompt outputs failed validation', '', {
          [id]: { errors: [{ type: 'required_input_missing', message: 'Required input is missing', details: `${input} links to missing node ${String(value[0])}`, extra_info: {} }], dependent_outputs: [], class_type: node.class_type },
        });
      }
    }
    if (node.class_type === 'LoadImage' && !state.inputs.has(String(node.inputs.image))) {
      return fail('prompt_outputs_failed_validation', 'Prompt outputs failed validation', '', {
        [id]: { errors: [{ type: 'value_not_in_list', message: 'Value not in list', details: `image: '${String(node.inputs.image)}' not in (list of length ${state.inputs.size})`, extra_info: {} }], dependent_outputs: [], class_type: 'LoadImage' },
      });
    }
  }
  if (!Object.values(wf).some((n) => n.class_type === 'SaveImage')) {
    return fail('prompt_no_outputs', 'Prompt has no outputs', '', []);
  }
  return undefined;
}

/** Reads the values we fill into a workflow back out of it, following the sampler's links. */
export function describePrompt(promptId: string, clientId: string | undefined, wf: Workflow): FakeComfyPrompt {
  const node = (link: unknown): Node | undefined => (Array.isArray(link) ? wf[String(link[0])] : undefined);
  const text = (n: Node | undefined): string | undefined => {
    const v = n?.inputs.text ?? n?.inputs.prompt;
    return typeof v === 'string' ? v : undefined;
  };
  const sampler = Object.values(wf).find((n) => n.class_type.startsWith('KSampler'));
  const positive = node(sampler?.inputs.positive);
  const latent = node(sampler?.inputs.latent_image);
  // TextEncodeQwenImage21 encodes both prompts in one node: output 1 is the negative conditioning.
  const negativeLink = sampler?.inputs.negative;
  const negativeNode = node(negativeLink);
  const negativeText =
    Array.isArray(negativeLink) && Number(negativeLink[1]) === 1 && typeof negativeNode?.inputs.negative_prompt === 'string'
      ? negativeNode.inputs.negative_prompt
      : text(negativeNode);
  // Edit-2509's TextEncodeQwenImageEditPlus names them image1..3; 2.1's v3 node images.image_1..
  const images = ['image1', 'image2', 'image3', ...Array.from({ length: 10 }, (_, i) => `images.image_${i + 1}`)]
    .map((k) => node(positive?.inputs[k]))
    .filter((n): n is Node => n?.class_type === 'LoadImage')
    .map((n) => String(n.inputs.image));
  return {
    promptId,
    clientId,
    workflow: wf,
    prompt: text(positive),
    negativePrompt: negativeText,
    seed: typeof sampler?.inputs.seed === 'number' ? sampler.inputs.seed : undefined,
    width: typeof latent?.inputs.width === 'number' ? latent.inputs.width : undefined,
    height: typeof latent?.inputs.height === 'number' ? latent.inputs.height : undefined,
    images,
  };
}
