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
import type { Engine, EngineHealth, EngineRequest, EngineResult, RawImage } from '../../domain/types.ts';
import { backendErrorFailure, throwIfAborted } from '../router/kit/errors.ts';
import { BackendHttpClient, parseJsonBody } from '../router/kit/http.ts';
import { assertExactSize, decodeBackendImage, encodeJpeg, encodePng } from '../router/kit/images.ts';
import { silentLogger, type EngineLogger } from '../router/kit/logger.ts';
import { dashscopeFailure } from './dashscope-errors.ts';

export const DASHSCOPE_DEFAULT_URL = 'https://dashscope-intl.aliyuncs.com';
export const DASHSCOPE_DEFAULT_MODEL = 'qwen-image-2.0';
export const DASHSCOPE_GENERATION_PATH = '/api/v1/services/aigc/multimodal-generation/generation';

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
   * DashScope has no health route; any HTTP answer from the API host proves it is reachable.
   * The key is not sent, so health checks cost nothing and cannot leak it.
   */
  async health(): Promise<EngineHealth> {
    const probe = new BackendHttpClient({ backendId: this.id, baseUrl: this.http.baseUrl });
    try {
      const result = await probe.call('GET', '/', { timeoutMs: this.options.controlTimeoutMs ?? 3000 });
      return { ok: true, detail: `reachable (HTTP ${result.status} on /)` };
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    } finally {
      await probe.close();
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
      const result = await client.call('GET', '', { absoluteUrl: url, signal, timeoutMs: this.options.requestTimeoutMs ?? 60_000 });
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
