/**
 * ComfyUI backend: uploads the reference images, queues an API-format workflow filled from the
 * request, follows it on the websocket (progress with live previews, completion, errors), then
 * reads the result from /history and /view. When the caller aborts (client gone, deadline passed) the prompt is removed
 * from ComfyUI's queue, or interrupted if it already runs, so the GPU stops working for nobody.
 *
 * When the result is ready: ComfyUI sends execution_success before it writes the prompt's history
 * and `executing` with node null after (shared/protocols/comfyui.md, "The order that matters"), so
 * the history is read after the latter. Where that event is lost (socket closed after
 * execution_success, or it never came), /history is polled with a bounded backoff while it still
 * answers `{}`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ComfyuiWorkflowConfig, ComfyuiWorkflowPreset } from './config.ts';
import type { EngineCapabilities } from '../../domain/engine-capabilities.ts';
import type { Engine, EngineHealth, EngineProgress, EngineRequest, EngineResult, RawImage } from '../../domain/types.ts';
import { backendErrorFailure, rejectedFailure, sleep, throwIfAborted } from '../remote/errors.ts';
import { BackendHttpClient, REMOTE_CONTROL_TIMEOUT_MS, REMOTE_REQUEST_TIMEOUT_MS } from '../remote/http.ts';
import { assertExactSize, decodeBackendImage, encodePng } from '../remote/images.ts';
import { silentLogger, type EngineLogger } from '../remote/logger.ts';
import { ComfyClient, type ComfyHistoryEntry, type ComfyImageRef } from './comfyui-client.ts';
import { ComfySocket, ComfySocketClosedError } from './comfyui-socket.ts';
import { findMissing, requiredClasses } from './workflow-requirements.ts';
import { fillWorkflow, parseWorkflowTemplate, WorkflowTemplateError, type WorkflowTemplate } from './workflow-template.ts';

export interface ComfyuiEngineOptions {
  id: string;
  /** ComfyUI root, e.g. http://10.0.0.5:8188 (a path prefix behind a proxy is kept). */
  url: string;
  /** Which bundled pair of workflows to use where `textToImage`/`edit` name no file. Default qwen-image-2.1. */
  preset?: ComfyuiWorkflowPreset;
  /** Default: the preset's text-to-image file (workflows/comfyui/). */
  textToImage?: ComfyuiWorkflowConfig;
  /** Default: the preset's edit file; `false`: text-to-image only. */
  edit?: ComfyuiWorkflowConfig | false;
  /** Remove finished prompts from ComfyUI's in-memory history. Default true. */
  deleteHistory?: boolean;
  /** Budget of each short call (upload, queue, history, view). Default REMOTE_REQUEST_TIMEOUT_MS. */
  requestTimeoutMs?: number;
  /** Budget of health checks and of the cancel calls made after an abort. Default REMOTE_CONTROL_TIMEOUT_MS. */
  controlTimeoutMs?: number;
  connectTimeoutMs?: number;
  retryAfterS?: number;
  /**
   * How long a finished prompt's history may still answer `{}` before the generation fails.
   * Default 10 s: the write is main.py's task_done, normally milliseconds after the last event.
   */
  historyWaitMs?: number;
  logger?: EngineLogger;
}

/**
 * Reference images go below ComfyUI's input directory, in a folder of their own. ComfyUI has no
 * route that deletes an input file (server.py serves /upload/image, /upload/mask and /view; the
 * DELETE routes are for the user directory), so instead of accumulating one file per image, the
 * names are reused: `<process tag>-s<slot>-<n>.png`, where the slot is held by one job of this
 * engine at a time and n is the reference's position. A job overwrites its slot's files
 * (`overwrite=true`), so the folder holds at most (jobs in flight at once) × (references per job)
 * files per process start. LoadImage hashes the file's content for its cache key, so a reused name
 * with new content is loaded again. The per-process tag keeps two servers sharing one ComfyUI off
 * each other's files.
 */
const UPLOAD_SUBFOLDER = 'qwen-image-api';

/** Backoff between history reads that found `{}`: doubling from the first, capped at the last. */
const HISTORY_RETRY_FIRST_MS = 20;
const HISTORY_RETRY_MAX_MS = 1000;

/** The templates shipped in workflows/comfyui/, located relative to this file (no cwd assumptions). */
export type BundledWorkflow =
  | 'qwen-image-t2i.json'
  | 'qwen-image-edit-2509.json'
  | 'qwen-image-2.1-t2i.json'
  | 'qwen-image-2.1-edit.json'
  | 'qwen-image-2.1-turbo-t2i.json';

export function bundledWorkflowPath(name: BundledWorkflow): string {
  return fileURLToPath(new URL(`../../../workflows/comfyui/${name}`, import.meta.url));
}

/**
 * The bundled workflows by name (the routing file's `workflows.preset`). Qwen-Image-2.1 is the
 * default: the open model closest to the API's Qwen-Image-2.0 (workflows/README.md). Turbo is the
 * 8-step distilled 2.1 for text-to-image; its edits use the full 2.1 model (no Turbo edit
 * workflow is published). `qwen-image` is the first Qwen-Image with Edit-2509.
 */
export const WORKFLOW_PRESETS: Readonly<Record<ComfyuiWorkflowPreset, { textToImage: BundledWorkflow; edit: BundledWorkflow }>> = {
  'qwen-image-2.1': { textToImage: 'qwen-image-2.1-t2i.json', edit: 'qwen-image-2.1-edit.json' },
  'qwen-image-2.1-turbo': { textToImage: 'qwen-image-2.1-turbo-t2i.json', edit: 'qwen-image-2.1-edit.json' },
  'qwen-image': { textToImage: 'qwen-image-t2i.json', edit: 'qwen-image-edit-2509.json' },
};

export const DEFAULT_WORKFLOW_PRESET: ComfyuiWorkflowPreset = 'qwen-image-2.1';

/**
 * Sizes each preset's workflows draw exactly. Qwen-Image: multiples of 16 px (its 8× VAE latent is
 * cut into the DiT's 2×2 patches; EmptySD3LatentImage steps by 16). Qwen-Image-2.1's VAE
 * downsamples 16×, so 32 px is the multiple that survives latent and patch rounding (a
 * conservative reading, not a measured limit; the API only sends multiples of 32 anyway). ComfyUI
 * itself allows up to 16384, but the models were trained at about 1–1.8 MP, so 2048 px per side is
 * the declared limit; an operator lowers it with `maxSidePx` in the routing file.
 */
const PRESET_SIZES: Readonly<Record<ComfyuiWorkflowPreset, EngineCapabilities['sizes']>> = {
  'qwen-image-2.1': { minSidePx: 256, maxSidePx: 2048, stepPx: 32, maxPixels: 0 },
  'qwen-image-2.1-turbo': { minSidePx: 256, maxSidePx: 2048, stepPx: 32, maxPixels: 0 },
  'qwen-image': { minSidePx: 256, maxSidePx: 2048, stepPx: 16, maxPixels: 0 },
};

export class ComfyuiEngine implements Engine {
  readonly id: string;
  readonly kind = 'comfyui';
  readonly description: string;
  private readonly options: ComfyuiEngineOptions;
  private readonly client: ComfyClient;
  private readonly logger: EngineLogger;
  private readonly controlTimeoutMs: number;
  private readonly pendingCleanups = new Set<Promise<void>>();
  /** Upload slots held by running jobs (see UPLOAD_SUBFOLDER). */
  private readonly uploadSlots = new Set<number>();
  private readonly uploadTag = randomBytes(4).toString('hex');
  private textToImage: WorkflowTemplate | undefined;
  private edit: WorkflowTemplate | undefined;

  constructor(options: ComfyuiEngineOptions) {
    this.id = options.id;
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.controlTimeoutMs = options.controlTimeoutMs ?? REMOTE_CONTROL_TIMEOUT_MS;
    const http = new BackendHttpClient({
      backendId: options.id,
      baseUrl: options.url,
      connectTimeoutMs: options.connectTimeoutMs,
      retryAfterS: options.retryAfterS,
    });
    this.client = new ComfyClient(http, options.requestTimeoutMs ?? REMOTE_REQUEST_TIMEOUT_MS);
    const preset = options.preset ?? DEFAULT_WORKFLOW_PRESET;
    this.description = `ComfyUI at ${new URL(http.baseUrl).host} (${preset} workflows${options.textToImage?.file || options.edit ? ', customised' : ''})`;
  }

  /** Reads and checks the workflow files; no network (the router's health check does that). */
  async load(): Promise<void> {
    const preset = WORKFLOW_PRESETS[this.options.preset ?? DEFAULT_WORKFLOW_PRESET];
    this.textToImage = await loadTemplate(this.options.textToImage, bundledWorkflowPath(preset.textToImage), false);
    if (this.options.edit !== false) {
      this.edit = await loadTemplate(this.options.edit, bundledWorkflowPath(preset.edit), true);
    }
  }

  /**
   * Read from the loaded workflows: references = the edit workflow's {{imageN}} slots (0 without
   * one); the negative prompt counts only when every workflow honours it (a CFG-1 2.1 template
   * ignores it); previews come as binary frames when ComfyUI runs with a --preview-method.
   */
  capabilities(): EngineCapabilities {
    const templates = [this.textToImage, this.edit].filter((t): t is WorkflowTemplate => t !== undefined);
    return {
      maxReferenceImages: this.edit?.imageSlots ?? 0,
      sizes: { ...PRESET_SIZES[this.options.preset ?? DEFAULT_WORKFLOW_PRESET] },
      negativePrompt: templates.length > 0 && templates.every((t) => t.honoursNegativePrompt),
      seed: true,
      progress: true,
      previews: true,
      masks: false,
      promptAdaptation: false,
    };
  }

  /**
   * Up when ComfyUI answers and has what the workflows need: every node class, and every model
   * file the loaders name (workflow-requirements.ts). A missing file makes the backend unhealthy
   * even if only the edit workflow needs it, so the problem shows before the first request fails.
   */
  async health(): Promise<EngineHealth> {
    try {
      const templates = [this.textToImage, this.edit].filter((t): t is WorkflowTemplate => t !== undefined);
      const [stats, info] = await Promise.all([
        this.client.systemStats(this.controlTimeoutMs),
        this.client.objectInfo(requiredClasses(templates), this.controlTimeoutMs),
      ]);
      const problems = findMissing(templates, info);
      if (problems.length > 0) return { ok: false, detail: problems.join('; ') };
      const device = stats.devices?.[0];
      const vram = device?.vram_free !== undefined ? `, ${Math.round(device.vram_free / 2 ** 20)} MiB VRAM free` : '';
      return { ok: true, detail: `ComfyUI ${stats.system?.comfyui_version ?? '?'} on ${device?.name ?? 'unknown device'}${vram}` };
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    }
  }

  async generate(request: EngineRequest, signal: AbortSignal, onProgress?: (progress: EngineProgress) => void): Promise<EngineResult> {
    throwIfAborted(signal);
    const template = this.templateFor(request);
    const slot = this.takeUploadSlot();
    try {
      return await this.run(request, template, slot, signal, onProgress);
    } finally {
      this.uploadSlots.delete(slot);
    }
  }

  private async run(
    request: EngineRequest,
    template: WorkflowTemplate,
    slot: number,
    signal: AbortSignal,
    onProgress?: (progress: EngineProgress) => void,
  ): Promise<EngineResult> {
    const clientId = randomUUID().replace(/-/g, '');
    const socket = await ComfySocket.connect(this.id, this.socketUrl(clientId), {
      signal,
      timeoutMs: this.options.connectTimeoutMs ?? 5000,
      headers: this.client.http.headers,
    });
    // Recent ComfyUI versions accept a client-chosen prompt_id; knowing it before the POST lets an
    // abort that lands mid-POST still cancel the prompt. Older versions answer with their own id.
    const proposedId = randomUUID();
    let promptId: string | undefined;
    let finished = false;
    try {
      const images: string[] = [];
      for (const [index, reference] of request.referenceImages.entries()) images.push(await this.upload(reference, slot, index, signal));
      const workflow = fillWorkflow(template, {
        prompt: request.prompt,
        negativePrompt: request.negativePrompt,
        seed: request.seed,
        width: request.width,
        height: request.height,
        images,
      });
      try {
        promptId = await this.client.queuePrompt(workflow, clientId, proposedId, signal);
      } catch (err) {
        if (signal.aborted) promptId = proposedId;
        throw err;
      }
      this.logger.debug({ requestId: request.requestId, backend: this.id, promptId }, 'queued on ComfyUI');
      const entry = await this.waitForCompletion(socket, promptId, request.requestId, signal, onProgress);
      finished = true;
      const image = await this.readResult(promptId, entry ?? (await this.finishedHistory(promptId, signal)), template, signal);
      assertExactSize(this.id, image, request.width, request.height);
      return { image, info: { comfyPromptId: promptId } };
    } catch (err) {
      // Cancel only a prompt that may still occupy the GPU (aborted, timed out, socket lost).
      if (promptId !== undefined && !finished && !socket.hasEnded(promptId)) {
        this.track(this.cancel(promptId, socket.hasStarted(promptId), request.requestId));
      }
      throw err;
    } finally {
      socket.close();
      if (promptId !== undefined && finished && this.options.deleteHistory !== false) {
        const id = promptId;
        this.track(this.client.deleteHistory(id, this.controlTimeoutMs).catch(() => undefined));
      }
    }
  }

  /** Waits for pending cancellations (bounded by their own timeouts) and closes the sockets. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.pendingCleanups]);
    await this.client.http.close();
  }

  private templateFor(request: EngineRequest): WorkflowTemplate {
    if (!this.textToImage) throw new Error(`ComfyUI backend ${this.id} used before load()`);
    const count = request.referenceImages.length;
    if (count === 0) return this.textToImage;
    if (!this.edit) throw rejectedFailure(this.id, 'this ComfyUI backend has no edit workflow, so it cannot use reference images', 'image_urls');
    if (count > this.edit.imageSlots) {
      throw rejectedFailure(this.id, `its edit workflow takes at most ${this.edit.imageSlots} reference image(s), got ${count}`, 'image_urls');
    }
    return this.edit;
  }

  private socketUrl(clientId: string): string {
    const url = new URL(this.client.http.url('/ws'));
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('clientId', clientId);
    return url.toString();
  }

  /** The lowest upload slot no running job holds. */
  private takeUploadSlot(): number {
    let slot = 0;
    while (this.uploadSlots.has(slot)) slot += 1;
    this.uploadSlots.add(slot);
    return slot;
  }

  private async upload(image: RawImage, slot: number, index: number, signal: AbortSignal): Promise<string> {
    const png = await encodePng(image);
    return this.client.uploadImage(png, `${this.uploadTag}-s${slot}-${index + 1}.png`, UPLOAD_SUBFOLDER, signal);
  }

  /**
   * Resolves once the prompt finished successfully, with its history entry when that was already
   * read; rejects on an execution error, an interrupt, or a socket lost before execution_success.
   */
  private async waitForCompletion(
    socket: ComfySocket,
    promptId: string,
    requestId: string,
    signal: AbortSignal,
    onProgress?: (progress: EngineProgress) => void,
  ): Promise<ComfyHistoryEntry | undefined> {
    // A broken preview costs only that preview; debug level, since a server can send one per step.
    const onPreviewError = (err: unknown): void =>
      this.logger.debug({ requestId, backend: this.id, promptId, err: (err as Error).message }, 'skipped a ComfyUI preview');
    try {
      const how = await socket.waitForPrompt(promptId, { signal, onProgress, onPreviewError });
      if (how === 'history-pending') {
        this.logger.debug({ requestId, backend: this.id, promptId }, 'ComfyUI sent execution_success but not `executing` null; polling its history');
      }
      return undefined;
    } catch (err) {
      if (!(err instanceof ComfySocketClosedError)) throw err;
      // Gone before execution_success: the prompt may still be anywhere in its run, so one look
      // (it may have finished while the socket dropped), then give up and let the caller cancel it.
      const entry = await this.client.history(promptId, signal).catch(() => undefined);
      if (entry?.status?.completed && entry.status.status_str !== 'error') return entry;
      throw backendErrorFailure(this.id, err.message, { retryable: true, cause: err });
    }
  }

  /**
   * The history entry of a prompt that finished executing. After `executing` null the first read
   * holds it; after only execution_success it may answer `{}` until the server has written it.
   */
  private async finishedHistory(promptId: string, signal: AbortSignal): Promise<ComfyHistoryEntry> {
    const budgetMs = this.options.historyWaitMs ?? 10_000;
    let waitedMs = 0;
    for (let delayMs = HISTORY_RETRY_FIRST_MS; ; delayMs = Math.min(delayMs * 2, HISTORY_RETRY_MAX_MS)) {
      const entry = await this.client.history(promptId, signal);
      if (entry && (entry.status !== undefined || Object.keys(entry.outputs ?? {}).length > 0)) return entry;
      if (waitedMs >= budgetMs) {
        throw backendErrorFailure(this.id, `prompt ${promptId} finished, but its history was still empty after ${waitedMs} ms`, { retryable: true });
      }
      const pauseMs = Math.min(delayMs, budgetMs - waitedMs);
      await sleep(pauseMs, signal);
      waitedMs += pauseMs;
    }
  }

  private async readResult(promptId: string, entry: ComfyHistoryEntry, template: WorkflowTemplate, signal: AbortSignal): Promise<RawImage> {
    const ref = pickOutputImage(entry, template.outputNode);
    if (!ref) {
      throw backendErrorFailure(
        this.id,
        `finished prompt ${promptId} has no image output${template.outputNode ? ` on node ${template.outputNode}` : ''} (status ${entry?.status?.status_str ?? 'unknown'})`,
        { retryable: false },
      );
    }
    const bytes = await this.client.view(ref, signal);
    return decodeBackendImage(this.id, bytes);
  }

  /**
   * Stops our prompt without touching anyone else's: drop it from the queue if still pending; if it
   * runs (we saw execution_start, or /queue lists it as running), interrupt it.
   */
  private async cancel(promptId: string, started: boolean, requestId: string): Promise<void> {
    const t = this.controlTimeoutMs;
    try {
      await this.client.deleteFromQueue(promptId, t);
      const running = started || (await this.client.isRunning(promptId, t));
      if (running) await this.client.interrupt(promptId, t);
      this.logger.info({ requestId, backend: this.id, promptId, interrupted: running }, 'cancelled ComfyUI prompt');
    } catch (err) {
      this.logger.warn({ requestId, backend: this.id, promptId, err: (err as Error).message }, 'could not cancel ComfyUI prompt');
    }
  }

  private track(task: Promise<void>): void {
    this.pendingCleanups.add(task);
    void task.finally(() => this.pendingCleanups.delete(task));
  }
}

async function loadTemplate(config: ComfyuiWorkflowConfig | undefined, fallbackFile: string, requireImages: boolean): Promise<WorkflowTemplate> {
  const file = config?.file ?? fallbackFile;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new WorkflowTemplateError(file, `cannot read the file (${(err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new WorkflowTemplateError(file, `is not valid JSON (${(err as Error).message})`);
  }
  return parseWorkflowTemplate(json, file, { nodes: config?.nodes, requireImages });
}

/** The configured output node, else the first output image, preferring saved ('output') over previews ('temp'). */
export function pickOutputImage(entry: ComfyHistoryEntry | undefined, outputNode: string | undefined): ComfyImageRef | undefined {
  const outputs = entry?.outputs ?? {};
  if (outputNode !== undefined) return outputs[outputNode]?.images?.find(isImageRef);
  const all = Object.values(outputs).flatMap((o) => (o.images ?? []).filter(isImageRef));
  return all.find((i) => i.type === 'output') ?? all[0];
}

function isImageRef(value: unknown): value is ComfyImageRef {
  return !!value && typeof (value as ComfyImageRef).filename === 'string';
}
