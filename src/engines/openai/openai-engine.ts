/**
 * OpenAI-compatible image servers (vLLM-Omni, SGLang diffusion, LocalAI, sd-server, hosted
 * OpenAI-style APIs): POST /v1/images/generations for text-to-image, /v1/images/edits (multipart)
 * with the reference images (LocalAI: `ref_images` in the generations JSON instead, see
 * openai-dialect.ts). There is no progress channel; an abort closes the HTTP request, which these
 * servers see as a client disconnect.
 */
import { FormData } from 'undici';
import type { OpenaiBackendConfig } from './config.ts';
import type { EngineCapabilities } from '../../domain/engine-capabilities.ts';
import type { Engine, EngineHealth, EngineRequest, EngineResult } from '../../domain/types.ts';
import { backendErrorFailure, rejectedFailure, throwIfAborted } from '../remote/errors.ts';
import { BackendHttpClient, REMOTE_CONTROL_TIMEOUT_MS, REMOTE_REQUEST_TIMEOUT_MS } from '../remote/http.ts';
import { assertExactSize, decodeBackendImage, encodePng } from '../remote/images.ts';
import { silentLogger, type EngineLogger } from '../remote/logger.ts';
import { composePrompt, dialectHonours, extraFieldValues, OPENAI_DIALECTS, type OpenaiDialect } from './openai-dialect.ts';

export interface OpenaiEngineOptions
  extends Pick<
    OpenaiBackendConfig,
    | 'model'
    | 'flavor'
    | 'extraFields'
    | 'extraParams'
    | 'imageField'
    | 'promptExtras'
    | 'edits'
    | 'editTransport'
    | 'responseFormat'
    | 'generationsPath'
    | 'editsPath'
    | 'healthPath'
  > {
  id: string;
  /** Server root; a trailing /v1 is removed (paths carry it). */
  url: string;
  /** Bearer token for hosted servers (resolved from apiKeyEnv by the registry). */
  apiKey?: string;
  /** Budget for downloading a result given as URL, and for health checks. */
  requestTimeoutMs?: number;
  controlTimeoutMs?: number;
  connectTimeoutMs?: number;
  retryAfterS?: number;
  logger?: EngineLogger;
}

interface ImagesResponse {
  data?: Array<{ b64_json?: unknown; url?: unknown }>;
}

export class OpenaiEngine implements Engine {
  readonly id: string;
  readonly kind = 'openai';
  readonly description: string;
  private readonly options: OpenaiEngineOptions;
  private readonly dialect: OpenaiDialect;
  private readonly http: BackendHttpClient;
  private readonly logger: EngineLogger;

  constructor(options: OpenaiEngineOptions) {
    this.id = options.id;
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    const preset = OPENAI_DIALECTS[options.flavor ?? 'generic'];
    this.dialect = {
      extraFields: options.extraFields ?? preset.extraFields,
      extraParams: options.extraParams ?? preset.extraParams,
      imageField: options.imageField ?? preset.imageField,
      promptExtras: options.promptExtras ?? preset.promptExtras,
      edits: options.edits ?? preset.edits,
      editTransport: options.editTransport ?? preset.editTransport,
      responseFormat: options.responseFormat ?? preset.responseFormat,
      generationsPath: options.generationsPath ?? preset.generationsPath,
      editsPath: options.editsPath ?? preset.editsPath,
      healthPath: options.healthPath ?? preset.healthPath,
    };
    const secrets = options.apiKey ? [options.apiKey] : [];
    this.http = new BackendHttpClient({
      backendId: options.id,
      baseUrl: options.url.replace(/\/+$/, '').replace(/\/v1$/, ''),
      connectTimeoutMs: options.connectTimeoutMs,
      retryAfterS: options.retryAfterS,
      headers: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {},
      secrets,
    });
    this.description = `OpenAI-compatible images API at ${new URL(options.url).host}${options.model ? ` (${options.model})` : ''}`;
  }

  async load(): Promise<void> {
    // Nothing to prepare; reachability is the router's health check.
  }

  /**
   * From the dialect: edits when the server has them (3 references, the API's maximum; the
   * servers take more); negative prompt and seed when the dialect carries them (a field, or inside
   * the prompt). Sizes: the Qwen-Image pipelines of vLLM-Omni, SGLang and diffusers round to
   * multiples of 16 (VAE factor 8 × 2×2 patches), so 16 is declared; 2048 px per side as for
   * ComfyUI. No progress channel.
   */
  capabilities(): EngineCapabilities {
    return {
      maxReferenceImages: this.dialect.edits ? 3 : 0,
      sizes: { minSidePx: 256, maxSidePx: 2048, stepPx: 16, maxPixels: 0 },
      ...dialectHonours(this.dialect),
      progress: false,
      previews: false,
      masks: false,
      promptAdaptation: false,
    };
  }

  async health(): Promise<EngineHealth> {
    try {
      await this.http.callOk('GET', this.dialect.healthPath, { timeoutMs: this.options.controlTimeoutMs ?? REMOTE_CONTROL_TIMEOUT_MS });
      return { ok: true, detail: `GET ${this.dialect.healthPath} ok` };
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    }
  }

  async generate(request: EngineRequest, signal: AbortSignal): Promise<EngineResult> {
    throwIfAborted(signal);
    const parts = { prompt: request.prompt, negativePrompt: request.negativePrompt, seed: request.seed };
    const fields: Record<string, string | number | boolean> = {
      ...(this.options.model ? { model: this.options.model } : {}),
      prompt: composePrompt(this.dialect, parts),
      n: 1,
      size: `${request.width}x${request.height}`,
      ...(this.dialect.responseFormat === 'none' ? {} : { response_format: this.dialect.responseFormat }),
      ...extraFieldValues(this.dialect, parts),
    };
    let body: ImagesResponse;
    if (request.referenceImages.length === 0) {
      body = await this.http.callJson<ImagesResponse>('POST', this.dialect.generationsPath, { json: fields, signal });
    } else if (!this.dialect.edits) {
      throw rejectedFailure(this.id, 'this server has no image edit endpoint, so it cannot use reference images', 'image_urls');
    } else if (this.dialect.editTransport === 'ref-images-json') {
      const refImages: string[] = [];
      for (const image of request.referenceImages) refImages.push((await encodePng(image)).toString('base64'));
      body = await this.http.callJson<ImagesResponse>('POST', this.dialect.generationsPath, { json: { ...fields, ref_images: refImages }, signal });
    } else {
      const form = new FormData();
      for (const [key, value] of Object.entries(fields)) form.append(key, String(value));
      for (const [index, image] of request.referenceImages.entries()) {
        const png = await encodePng(image);
        form.append(this.dialect.imageField, new Blob([new Uint8Array(png)], { type: 'image/png' }), `reference-${index + 1}.png`);
      }
      body = await this.http.callJson<ImagesResponse>('POST', this.dialect.editsPath, { form, signal });
    }
    const bytes = await this.imageBytes(body, signal);
    const image = await decodeBackendImage(this.id, bytes);
    assertExactSize(this.id, image, request.width, request.height);
    return { image };
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  private async imageBytes(body: ImagesResponse, signal: AbortSignal): Promise<Buffer> {
    const first = Array.isArray(body?.data) ? body.data[0] : undefined;
    if (first && typeof first.b64_json === 'string' && first.b64_json.length > 0) {
      const b64 = first.b64_json.replace(/^data:[^,]*,/, '');
      if (!/^[A-Za-z0-9+/=\s]+$/.test(b64)) {
        throw backendErrorFailure(this.id, 'data[0].b64_json is not base64', { retryable: false });
      }
      return Buffer.from(b64, 'base64');
    }
    if (first && typeof first.url === 'string' && first.url.length > 0) {
      // SGLang answers with a path relative to the server; hosted APIs with an absolute URL.
      const target = new URL(first.url, `${this.http.baseUrl}/`).toString();
      const sameOrigin = new URL(target).origin === new URL(this.http.baseUrl).origin;
      this.logger.debug({ backend: this.id, sameOrigin }, 'downloading result image');
      const result = sameOrigin
        ? await this.http.callOk('GET', '', { absoluteUrl: target, signal, timeoutMs: this.options.requestTimeoutMs ?? REMOTE_REQUEST_TIMEOUT_MS })
        : await this.downloadForeign(target, signal);
      return result.body;
    }
    throw backendErrorFailure(this.id, 'the response has neither data[0].b64_json nor data[0].url', { retryable: false });
  }

  /** Result URLs on another host (a CDN) must not receive our bearer token. */
  private async downloadForeign(target: string, signal: AbortSignal): Promise<{ body: Buffer }> {
    const anonymous = new BackendHttpClient({ backendId: this.id, baseUrl: new URL(target).origin });
    try {
      return await anonymous.callOk('GET', '', { absoluteUrl: target, signal, timeoutMs: this.options.requestTimeoutMs ?? REMOTE_REQUEST_TIMEOUT_MS });
    } finally {
      await anonymous.close();
    }
  }
}

