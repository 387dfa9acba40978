/**
 * A `type: comfyui` entry of the routing file: its fields, their JSON Schema, its defaults and the
 * ComfyuiEngine options it becomes. Documented in docs/backends/routing.md and comfyui.md.
 */
import path from 'node:path';
import type { EngineConfig } from '../engine-module.ts';
import type { BackendCommonConfig } from '../router/config.ts';
import { URL_PROPERTY } from '../router/config.ts';
import type { ComfyuiEngineOptions } from './comfyui-engine.ts';

/** Where to write one value in an API-format ComfyUI workflow. */
export interface ComfyuiNodeBinding {
  node: string;
  input: string;
}

export interface ComfyuiWorkflowConfig {
  /** API-format workflow JSON ("Export (API)" in ComfyUI). Relative paths: from the config file. */
  file?: string;
  /** For workflows without {{placeholders}}: which node input receives which value. */
  nodes?: {
    prompt?: ComfyuiNodeBinding;
    negativePrompt?: ComfyuiNodeBinding;
    seed?: ComfyuiNodeBinding;
    width?: ComfyuiNodeBinding;
    height?: ComfyuiNodeBinding;
    /** LoadImage inputs for reference 1, 2, 3. */
    images?: ComfyuiNodeBinding[];
    /** Node id whose image output is the result (default: the first node that outputs images). */
    output?: string;
  };
}

/** The bundled workflow pairs (comfyui-engine.ts WORKFLOW_PRESETS, keyed by this list). */
export const COMFYUI_WORKFLOW_PRESETS = ['qwen-image-2.1', 'qwen-image-2.1-turbo', 'qwen-image'] as const;
export type ComfyuiWorkflowPreset = (typeof COMFYUI_WORKFLOW_PRESETS)[number];

export interface ComfyuiBackendConfig extends BackendCommonConfig {
  type: 'comfyui';
  url: string;
  workflows?: {
    /** Bundled workflows used where no `file` is given. Default `qwen-image-2.1`. */
    preset?: ComfyuiWorkflowPreset;
    textToImage?: ComfyuiWorkflowConfig;
    /** `false`: this ComfyUI only does text-to-image. */
    edit?: ComfyuiWorkflowConfig | false;
  };
  /** Remove our finished prompts from ComfyUI's history (it keeps everything in memory). Default true. */
  deleteHistory?: boolean;
}

const binding = {
  type: 'object',
  required: ['node', 'input'],
  additionalProperties: false,
  properties: { node: { type: 'string', minLength: 1 }, input: { type: 'string', minLength: 1 } },
};

const workflow = {
  type: 'object',
  additionalProperties: false,
  properties: {
    file: { type: 'string', minLength: 1 },
    nodes: {
      type: 'object',
      additionalProperties: false,
      properties: {
        prompt: binding,
        negativePrompt: binding,
        seed: binding,
        width: binding,
        height: binding,
        images: { type: 'array', items: binding, minItems: 1, maxItems: 3 },
        output: { type: 'string', minLength: 1 },
      },
    },
  },
};

function resolveWorkflow<W extends ComfyuiWorkflowConfig | false | undefined>(w: W, baseDir: string): W {
  return w && w.file ? { ...w, file: path.resolve(baseDir, w.file) } : w;
}

export const comfyuiConfig: EngineConfig<ComfyuiBackendConfig, ComfyuiEngineOptions> = {
  type: 'comfyui',
  schema: {
    required: ['url'],
    properties: {
      url: URL_PROPERTY,
      workflows: {
        type: 'object',
        additionalProperties: false,
        properties: {
          preset: { enum: [...COMFYUI_WORKFLOW_PRESETS] },
          textToImage: workflow,
          edit: { anyOf: [workflow, { const: false }] },
        },
      },
      deleteHistory: { type: 'boolean' },
    },
  },
  /**
   * Concurrency 1: a GPU server runs one diffusion job at a time anyway. Five minutes covers a
   * 50-step 1440×1440 Qwen-Image run on a consumer GPU with room to spare.
   */
  defaults: { concurrency: 1, timeoutMs: 300_000 },
  resolvePaths: (entry, baseDir) =>
    entry.workflows
      ? {
          ...entry,
          workflows: {
            ...entry.workflows,
            textToImage: resolveWorkflow(entry.workflows.textToImage, baseDir),
            edit: resolveWorkflow(entry.workflows.edit, baseDir),
          },
        }
      : entry,
  // Short-call budgets (upload, health, cancel, download) are not set here: the engine defaults
  // to REMOTE_REQUEST_TIMEOUT_MS / REMOTE_CONTROL_TIMEOUT_MS (remote/http.ts), written once.
  toOptions: (entry, context) => ({
    id: entry.id,
    url: entry.url,
    preset: entry.workflows?.preset,
    textToImage: entry.workflows?.textToImage,
    edit: entry.workflows?.edit,
    deleteHistory: entry.deleteHistory,
    logger: context.logger,
  }),
};
