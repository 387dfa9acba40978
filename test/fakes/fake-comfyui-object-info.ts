/**
 * The fake ComfyUI's node catalogue: what GET /object_info and GET /object_info/{Class} answer
 * (shapes in ../../../shared/protocols/comfyui.md), with a configurable set of installed model
 * files per models/ folder, so health checks and workflow validation can find a file missing.
 *
 * Loader inputs list the files of their folder, like folder_paths.get_filename_list:
 * UNETLoader.unet_name <- diffusion_models, CLIPLoader.clip_name <- text_encoders,
 * VAELoader.vae_name <- vae, CheckpointLoaderSimple.ckpt_name <- checkpoints,
 * LoraLoader(ModelOnly).lora_name <- loras. `comboStyle` chooses how those lists are written:
 * classic nodes `[[...options]]`, v3-schema nodes `["COMBO", {options: [...]}]`.
 *
 * A class not in the catalogue is answered as if it existed with no inputs (so tests with their
 * own workflows keep working), unless it is named in `missingClasses`: then, like a server without
 * that node, /object_info/{Class} answers `{}` and POST /prompt rejects it.
 */

export type ModelFolder = 'diffusion_models' | 'text_encoders' | 'vae' | 'checkpoints' | 'loras';

export type ComboStyle = 'classic' | 'v3';

export interface FakeObjectInfo {
  /** File names present in each models/ folder. */
  installed: Record<ModelFolder, string[]>;
  comboStyle: ComboStyle;
  /** Node classes this server does not have. */
  missingClasses: Set<string>;
  /** false: GET /object_info/{Class} answers 404 (a server older than that route). */
  perClassRoute: boolean;
  /** Every GET /object_info or /object_info/{Class}, by class ('*' for the whole catalogue). */
  readonly reads: string[];
  reset(): void;
}

/**
 * Installed by default: the model files the bundled workflows (workflows/comfyui/*.json) load, and
 * the checkpoint of the small hand-written workflows in the tests (`qwen.safetensors`).
 */
export const BUNDLED_MODEL_FILES: Readonly<Record<ModelFolder, readonly string[]>> = {
  diffusion_models: [
    'qwen_image_fp8_e4m3fn.safetensors',
    'qwen_image_edit_2509_fp8_e4m3fn.safetensors',
    'qwen_image_2.1_bf16.safetensors',
    'qwen_image_2.1_turbo_bf16.safetensors',
  ],
  text_encoders: ['qwen_2.5_vl_7b_fp8_scaled.safetensors', 'qwen3vl_8b_bf16.safetensors'],
  vae: ['qwen_image_vae.safetensors', 'qwen_image_2.1_vae_bf16.safetensors'],
  checkpoints: ['qwen.safetensors'],
  loras: [],
};

const LOADER_INPUTS: Record<string, Record<string, ModelFolder>> = {
  UNETLoader: { unet_name: 'diffusion_models' },
  CLIPLoader: { clip_name: 'text_encoders' },
  VAELoader: { vae_name: 'vae' },
  CheckpointLoaderSimple: { ckpt_name: 'checkpoints' },
  LoraLoader: { lora_name: 'loras' },
  LoraLoaderModelOnly: { lora_name: 'loras' },
};

/** comfy/samplers.py (abridged). */
const SAMPLERS = ['euler', 'euler_ancestral', 'heun', 'dpm_2', 'dpmpp_2m', 'dpmpp_sde', 'res_multistep', 'uni_pc', 'lcm'];
const SCHEDULERS = ['simple', 'sgm_uniform', 'karras', 'exponential', 'ddim_uniform', 'beta', 'normal', 'linear_quadratic', 'kl_optimal'];
const CLIP_TYPES = ['stable_diffusion', 'sd3', 'flux', 'wan', 'hidream', 'chroma', 'omnigen2', 'qwen_image', 'hunyuan_image'];

export function createFakeObjectInfo(): FakeObjectInfo {
  const info: FakeObjectInfo = {
    installed: copyInstalled(BUNDLED_MODEL_FILES),
    comboStyle: 'classic',
    missingClasses: new Set(),
    perClassRoute: true,
    reads: [],
    reset: () => {
      info.installed = copyInstalled(BUNDLED_MODEL_FILES);
      info.comboStyle = 'classic';
      info.missingClasses = new Set();
      info.perClassRoute = true;
      info.reads.length = 0;
    },
  };
  return info;
}

function copyInstalled(files: Readonly<Record<ModelFolder, readonly string[]>>): Record<ModelFolder, string[]> {
  return {
    diffusion_models: [...files.diffusion_models],
    text_encoders: [...files.text_encoders],
    vae: [...files.vae],
    checkpoints: [...files.checkpoints],
    loras: [...files.loras],
  };
}

type InputSpec = unknown[];

/** One class's entry as server.py's node_info writes it; undefined for a class this server lacks. */
export function objectInfoFor(info: FakeObjectInfo, classType: string, inputFiles: readonly string[]): Record<string, unknown> | undefined {
  if (info.missingClasses.has(classType)) return undefined;
  const combo = (options: readonly string[], extra?: Record<string, unknown>): InputSpec =>
    info.comboStyle === 'v3' ? ['COMBO', { multiselect: false, options: [...options], ...extra }] : extra ? [[...options], extra] : [[...options]];
  const required: Record<string, InputSpec> = {};
  const optional: Record<string, InputSpec> = {};
  const loader = LOADER_INPUTS[classType];
  if (loader) for (const [input, folder] of Object.entries(loader)) required[input] = combo(info.installed[folder]);
  switch (classType) {
    case 'UNETLoader':
      required.weight_dtype = combo(['default', 'fp8_e4m3fn', 'fp8_e4m3fn_fast', 'fp8_e5m2']);
      break;
    case 'CLIPLoader':
      required.type = combo(CLIP_TYPES);
      optional.device = combo(['default', 'cpu'], { advanced: true });
      break;
    case 'KSampler':
      required.sampler_name = combo(SAMPLERS);
      required.scheduler = combo(SCHEDULERS);
      required.seed = ['INT', { default: 0, min: 0, max: 0xffffffffffffffff, control_after_generate: true }];
      required.steps = ['INT', { default: 20, min: 1, max: 10000 }];
      required.cfg = ['FLOAT', { default: 8, min: 0, max: 100, step: 0.1, round: 0.01 }];
      break;
    case 'LoadImage':
      required.image = [[...inputFiles].sort(), { image_upload: true }];
      break;
    case 'SaveImage':
      required.filename_prefix = ['STRING', { default: 'ComfyUI' }];
      break;
    default:
      break;
  }
  return {
    input: { required, ...(Object.keys(optional).length > 0 ? { optional } : {}) },
    input_order: { required: Object.keys(required), ...(Object.keys(optional).length > 0 ? { optional: Object.keys(optional) } : {}) },
    output: [],
    output_is_list: [],
    output_name: [],
    name: classType,
    display_name: classType,
    description: '',
    python_module: 'nodes',
    category: 'fake',
    output_node: classType === 'SaveImage' || classType === 'PreviewImage',
  };
}

/** Classes GET /object_info lists: the ones the catalogue describes, less the missing ones. */
export function catalogueClasses(info: FakeObjectInfo): string[] {
  return [...Object.keys(LOADER_INPUTS), 'KSampler', 'LoadImage', 'SaveImage'].filter((c) => !info.missingClasses.has(c));
}

/**
 * What POST /prompt's validation says about a loader's file input whose value is not installed
 * (execution.py's validate_inputs, `value_not_in_list`), or undefined when it is fine.
 */
export function loaderValueError(info: FakeObjectInfo, classType: string, inputs: Record<string, unknown>): Record<string, unknown> | undefined {
  const loader = LOADER_INPUTS[classType];
  if (!loader) return undefined;
  for (const [input, folder] of Object.entries(loader)) {
    const value = inputs[input];
    if (typeof value !== 'string' || info.installed[folder].includes(value)) continue;
    return {
      type: 'value_not_in_list',
      message: 'Value not in list',
      details: `${input}: '${value}' not in ${JSON.stringify(info.installed[folder])}`,
      extra_info: { input_name: input, input_config: [info.installed[folder]], received_value: value },
    };
  }
  return undefined;
}
