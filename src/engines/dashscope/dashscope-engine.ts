/**
 * Alibaba Cloud Model Studio (DashScope), the hosted qwen-image models:
 *   POST {url}/api/v1/services/aigc/multimodal-generation/generation
 *   Authorization: Bearer <key>
 *   {model, input: {messages: [{role: 'user', content: [{image}..., {text}]}]},
 *    parameters: {size: "W*H", n: 1, negative_prompt?, prompt_extend: false, watermark: false, seed}}
 *   -> {output: {choices: [{message: {content: [{image: <url>}]}}]}, usage, request_id}
 * The call is synchronous; the result URL expires after 24 h, so it is downloaded at once.
 * prompt_extend is off because our own enhance_prompt step already ran; watermark is off because
 * the server embeds its own invisible watermark when the caller asks for one.
 */
import type { EngineCapabilities } from '../../domain/engine-capabilities.ts';
import type { Engine, EngineHealth, EngineRequest, EngineResult, RawImage } from '../../domain/types.ts';
import { backendErrorFailure, throwIfAborted } from '../remote/errors.ts';
import { BackendHttpClient, parseJsonBody, REMOTE_CONTROL_TIMEOUT_MS, REMOTE_REQUEST_TIMEOUT_MS } from '../remote/http.ts';
import { assertExactSize, decodeBackendImage, encodeJpeg, encodePng } from '../remote/images.ts';
import { redactSecrets, silentLogger, type EngineLogger } from '../remote/logger.ts';
import { dashscopeErrorCode, dashscopeFailure } from './dashscope-errors.ts';

export const DASHSCOPE_DEFAULT_URL = 'https://dashscope-intl.aliyuncs.com';
export const DASHSCOPE_DEFAULT_MODEL = 'qwen-image-2.0';
export const DASHSCOPE_GENERATION_PATH = '/api/v1/services/aigc/multimodal-generation/generation';
export const DASHSCOPE_TASKS_PATH = '/api/v1/tasks';
/** A well-formed task id no task has: the health check's query costs nothing and finds nothing. */
const HEALTH_PROBE_TASK_ID = '00000000-0000-0000-0000-000000000000';

/** DashScope's per-image input limit is 10 MB; stay clear of it after base64 inflation. */
const MAX_INLINE_IMAGE_BYTES = 7 * 1024 * 1024;

export interface DashscopeEngineOptions {
  id: string;
  url?: string;
  model?: string;
  apiKey: string;
  /** Named in error messages so operators know which variable to fix; never the key itself. */
  apiKeyEnv?: string;
  /** Budget for downloading the result image. */
  requestTimeoutMs?: number;
  controlTimeoutMs?: number;
  connectTimeoutMs?: number;
  retryAfterS?: number;
  logger?: EngineLogger;
}

interface DashscopeResponse {
  request_id?: string;
  output?: { choices?: Array<{ finish_reason?: string; message?: { content?: Array<{ image?: unknown; text?: unknown }> } }> };
}

export class DashscopeEngine implements Engine {
  readonly id: string;
  readonly kind = 'dashscope';
  readonly description: string;
  private readonly options: DashscopeEngineOptions;
  private readonly http: BackendHttpClient;
  private readonly logger: EngineLogger;
  private readonly model: string;

  constructor(options: DashscopeEngineOptions) {
    if (!options.apiKey) throw new Error(`DashScope backend ${options.id}: no API key`);
    this.id = options.id;
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.model = options.model ?? DASHSCOPE_DEFAULT_MODEL;
    this.http = new BackendHttpClient({
      backendId: options.id,
      baseUrl: options.url ?? DASHSCOPE_DEFAULT_URL,
      connectTimeoutMs: options.connectTimeoutMs,
      retryAfterS: options.retryAfterS,
      headers: { authorization: `Bearer ${options.apiKey}` },
      secrets: [options.apiKey],
    });
    this.description = `Alibaba Cloud DashScope ${this.model} at ${new URL(this.http.baseUrl).host}`;
  }

  async load(): Promise<void> {
    // Nothing to prepare: the key was checked at construction, reachability by health().
  }

  /**
   * qwen-image-2.0 on Model Studio: 1–3 input images for edits; `size` "W*H" with a total between
   * 512×512 and 2048×2048 pixels (Model Studio's size rule for the qwen-image-2.0 series, not
   * verified here: the API's 512..1440 sizes sit inside it). negative_prompt and seed are
   * parameters of the call. The call is synchronous: no progress.
   */
  capabilities(): EngineCapabilities {
    return {
      maxReferenceImages: 3,
      sizes: { minSidePx: 256, maxSidePx: 2048, stepPx: 1, maxPixels: 2048 * 2048 },
      negativePrompt: true,
      seed: true,
      progress: false,
      previews: false,
      masks: false,
      promptAdaptation: false,
    };
  }

  /**
   * Confirms the key with the cheapest authenticated call DashScope has: a task query
   * (GET /api/v1/tasks/{task_id}, not billed) for an id that cannot exist, which a valid key
   * gets answered with task_status UNKNOWN ("invalid or expired task ID") and a bad key with
   * 401 InvalidApiKey. Throttling proves the key was accepted. The key is scrubbed from every
   * detail (the client's `secrets`), since the router logs it.
   */
  async health(): Promise<EngineHealth> {
    try {
      const result = await this.http.call('GET', `${DASHSCOPE_TASKS_PATH}/${HEALTH_PROBE_TASK_ID}`, {
        timeoutMs: this.options.controlTimeoutMs ?? REMOTE_CONTROL_TIMEOUT_MS,
      });
      if (result.status >= 200 && result.status < 300) return { ok: true, detail: `API key accepted by ${new URL(this.http.baseUrl).host}` };
      const secrets = { secrets: [this.options.apiKey], apiKeyEnv: this.options.apiKeyEnv };
      const failure = dashscopeFailure(this.id, result, secrets);
      const code = dashscopeErrorCode(result.body);
      if (result.status === 401 || code === 'InvalidApiKey') {
        const hint = this.options.apiKeyEnv ? ` (check ${this.options.apiKeyEnv})` : '';
        return { ok: false, detail: `API key rejected${hint}: ${redactSecrets(code || `HTTP ${result.status}`, [this.options.apiKey])}` };
      }
      if (result.status === 429 || code.startsWith('Throttling')) return { ok: true, detail: 'API key accepted (throttled right now)' };
      return { ok: false, detail: failure.message };
    } catch (err) {
      return { ok: false, detail: redactSecrets((err as Error).message, [this.options.apiKey]) };
    }
  }

  async generate(request: EngineRequest, signal: AbortSignal): Promise<EngineResult> {
    throwIfAborted(signal);
    const content: Array<{ image: string } | { text: string }> = [];
    for (const image of request.referenceImages) content.push({ image: await toDataUri(image) });
    content.push({ text: request.prompt });
    const parameters: Record<string, unknown> = {
      size: `${request.width}*${request.height}`,
      n: 1,
      prompt_extend: false,
      watermark: false,
      seed: request.seed,
    };
    if (request.negativePrompt) parameters.negative_prompt = request.negativePrompt;
    const body = { model: this.model, input: { messages: [{ role: 'user', content }] }, parameters };

    const result = await this.http.call('POST', DASHSCOPE_GENERATION_PATH, { json: body, signal });
    if (result.status < 200 || result.status >= 300) {
      throw dashscopeFailure(this.id, result, { secrets: [this.options.apiKey], apiKeyEnv: this.options.apiKeyEnv });
    }
    const parsed = parseJsonBody<DashscopeResponse & { code?: string }>(this.id, result.body, 'DashScope generation');
    if (typeof parsed.code === 'string' && parsed.code && !parsed.output) {
      throw dashscopeFailure(this.id, { ...result, status: 400 }, { secrets: [this.options.apiKey], apiKeyEnv: this.options.apiKeyEnv });
    }
    const choice = parsed.output?.choices?.[0];
    const imageUrl = choice?.message?.content?.find((c) => typeof c.image === 'string' && c.image.length > 0)?.image as string | undefined;
    if (!imageUrl) {
      throw backendErrorFailure(
        this.id,
        `no image in output.choices[0].message.content (finish_reason ${choice?.finish_reason ?? 'missing'}, request ${parsed.request_id ?? '?'})`,
        { retryable: false },
      );
    }
    const bytes = await this.download(imageUrl, signal);
    const image = await decodeBackendImage(this.id, bytes);
    assertExactSize(this.id, image, request.width, request.height);
    this.logger.debug({ requestId: request.requestId, backend: this.id, dashscopeRequestId: parsed.request_id }, 'DashScope image ready');
    return { image, info: parsed.request_id ? { dashscopeRequestId: parsed.request_id } : {} };
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  /** The result lives on OSS behind a signed URL: fetched without our Authorization header. */
  private async download(url: string, signal: AbortSignal): Promise<Buffer> {
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      throw backendErrorFailure(this.id, 'the result image URL is not a URL', { retryable: false });
    }
    const client = new BackendHttpClient({ backendId: this.id, baseUrl: origin });
    try {
      const result = await client.call('GET', '', { absoluteUrl: url, signal, timeoutMs: this.options.requestTimeoutMs ?? REMOTE_REQUEST_TIMEOUT_MS });
      if (result.status < 200 || result.status >= 300) {
        throw backendErrorFailure(this.id, `downloading the result image answered HTTP ${result.status}`, { retryable: false });
      }
      return result.body;
    } finally {
      await client.close();
    }
  }
}

async function toDataUri(image: RawImage): Promise<string> {
  const png = await encodePng(image);
  if (png.length <= MAX_INLINE_IMAGE_BYTES) return `data:image/png;base64,${png.toString('base64')}`;
  const jpeg = await encodeJpeg(image);
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}
