/**
 * ComfyUI's HTTP routes (server.py), one method each:
 *   POST /upload/image   multipart: image=<file>, type=input, subfolder, overwrite -> {name, subfolder, type}
 *   POST /prompt         {prompt, client_id, prompt_id?} -> {prompt_id, number, node_errors};
 *                        400 {error: {type, message, details} | string, node_errors} when invalid
 *   GET  /history/{id}   {<id>: {outputs: {<node>: {images: [{filename, subfolder, type}]}}, status}}
 *                        or `{}` while unknown or not yet written (written after execution_success)
 *   GET  /view           ?filename=&subfolder=&type= -> image bytes
 *   GET  /queue          {queue_running: [[number, prompt_id, ...]], queue_pending: [...]}
 *   POST /queue          {delete: [prompt_id]} removes pending prompts
 *   POST /interrupt      {prompt_id} (recent versions interrupt only that prompt; older ones ignore
 *                        the body and interrupt whatever runs, so callers check first)
 *   POST /history        {delete: [prompt_id]}
 *   GET  /system_stats   {system: {comfyui_version, ...}, devices: [{name, vram_free, ...}]}
 *   GET  /object_info/{Class}  {Class: {input: {required, optional}, ...}}, `{}` for an unknown class
 */
import { FormData } from 'undici';
import { backendErrorFailure, type BackendFailure } from '../remote/errors.ts';
import { BackendHttpClient, extractErrorReason, httpStatusFailure, parseJsonBody } from '../remote/http.ts';
import type { ComfyWorkflow } from './workflow-template.ts';
import type { ComfyObjectInfo } from './workflow-requirements.ts';

export interface ComfyImageRef {
  filename: string;
  subfolder: string;
  type: string;
}

export interface ComfyHistoryEntry {
  outputs?: Record<string, { images?: ComfyImageRef[] }>;
  status?: { status_str?: string; completed?: boolean; messages?: unknown[] };
}

export interface ComfySystemStats {
  system?: { comfyui_version?: string };
  devices?: Array<{ name?: string; type?: string; vram_free?: number; vram_total?: number }>;
}

export class ComfyClient {
  readonly http: BackendHttpClient;
  private readonly backendId: string;
  private readonly requestTimeoutMs: number;

  constructor(http: BackendHttpClient, requestTimeoutMs: number) {
    this.http = http;
    this.backendId = http.backendId;
    this.requestTimeoutMs = requestTimeoutMs;
  }

  async uploadImage(png: Buffer, filename: string, subfolder: string, signal: AbortSignal): Promise<string> {
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(png)], { type: 'image/png' }), filename);
    form.append('type', 'input');
    form.append('subfolder', subfolder);
    form.append('overwrite', 'true');
    const body = await this.http.callJson<{ name?: unknown; subfolder?: unknown }>('POST', '/upload/image', {
      form,
      signal,
      timeoutMs: this.requestTimeoutMs,
    });
    if (typeof body.name !== 'string' || body.name.length === 0) {
      throw backendErrorFailure(this.backendId, '/upload/image answered without a file name', { retryable: true });
    }
    const folder = typeof body.subfolder === 'string' ? body.subfolder : '';
    // LoadImage takes "subfolder/name" for files below the input directory.
    return folder ? `${folder}/${body.name}` : body.name;
  }

  async queuePrompt(workflow: ComfyWorkflow, clientId: string, promptId: string, signal: AbortSignal): Promise<string> {
    const result = await this.http.call('POST', '/prompt', {
      json: { prompt: workflow, client_id: clientId, prompt_id: promptId },
      signal,
      timeoutMs: this.requestTimeoutMs,
    });
    if (result.status === 400) throw this.promptRejected(result.body);
    if (result.status < 200 || result.status >= 300) {
      throw httpStatusFailure(this.backendId, result, { retryAfterS: 5, what: 'POST /prompt' });
    }
    const body = parseJsonBody<{ prompt_id?: unknown }>(this.backendId, result.body, 'POST /prompt');
    if (typeof body.prompt_id !== 'string') {
      throw backendErrorFailure(this.backendId, 'POST /prompt answered without a prompt_id', { retryable: true });
    }
    return body.prompt_id;
  }

  /**
   * A 400 from /prompt means the workflow does not validate on this server: a missing model file or
   * custom node, a wrong input. That is the backend's configuration, not the caller's input, so it
   * is a 502 that another backend may not share.
   */
  private promptRejected(body: Buffer): BackendFailure {
    let reason = extractErrorReason(body);
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { error?: { details?: string }; node_errors?: Record<string, { class_type?: string; errors?: Array<{ message?: string; details?: string }> }> };
      const nodeProblems = Object.entries(parsed.node_errors ?? {}).flatMap(([id, e]) =>
        (e.errors ?? []).map((x) => `node ${id} (${e.class_type ?? '?'}): ${x.message ?? ''}${x.details ? ` — ${x.details}` : ''}`),
      );
      if (parsed.error?.details) reason += `: ${parsed.error.details}`;
      if (nodeProblems.length > 0) reason += `; ${nodeProblems.slice(0, 3).join('; ')}`;
    } catch {
      // keep the generic reason
    }
    return backendErrorFailure(this.backendId, `ComfyUI rejected the workflow: ${reason}`, { retryable: true });
  }

  async history(promptId: string, signal?: AbortSignal): Promise<ComfyHistoryEntry | undefined> {
    const body = await this.http.callJson<Record<string, ComfyHistoryEntry>>('GET', `/history/${encodeURIComponent(promptId)}`, {
      signal,
      timeoutMs: this.requestTimeoutMs,
    });
    return body[promptId];
  }

  async view(image: ComfyImageRef, signal: AbortSignal): Promise<Buffer> {
    const result = await this.http.callOk('GET', '/view', {
      query: { filename: image.filename, subfolder: image.subfolder ?? '', type: image.type ?? 'output' },
      signal,
      timeoutMs: this.requestTimeoutMs,
    });
    return result.body;
  }

  async isRunning(promptId: string, timeoutMs: number): Promise<boolean> {
    const body = await this.http.callJson<{ queue_running?: unknown[][] }>('GET', '/queue', { timeoutMs });
    return (body.queue_running ?? []).some((item) => Array.isArray(item) && item[1] === promptId);
  }

  async deleteFromQueue(promptId: string, timeoutMs: number): Promise<void> {
    await this.http.callOk('POST', '/queue', { json: { delete: [promptId] }, timeoutMs });
  }

  async interrupt(promptId: string, timeoutMs: number): Promise<void> {
    await this.http.callOk('POST', '/interrupt', { json: { prompt_id: promptId }, timeoutMs });
  }

  async deleteHistory(promptId: string, timeoutMs: number): Promise<void> {
    await this.http.callOk('POST', '/history', { json: { delete: [promptId] }, timeoutMs });
  }

  /**
   * The node classes' descriptions, from GET /object_info/{Class} (one call per class; a server
   * answers `{}` for a class it lacks, here undefined). A server older than that route (404) is
   * asked GET /object_info once for everything.
   */
  async objectInfo(classes: readonly string[], timeoutMs: number): Promise<Map<string, ComfyObjectInfo | undefined>> {
    const found = new Map<string, ComfyObjectInfo | undefined>();
    const answers = await Promise.all(
      classes.map((c) => this.http.call('GET', `/object_info/${encodeURIComponent(c)}`, { timeoutMs })),
    );
    if (answers.some((a) => a.status === 404)) {
      const all = await this.http.callJson<Record<string, ComfyObjectInfo>>('GET', '/object_info', { timeoutMs });
      for (const c of classes) found.set(c, all[c]);
      return found;
    }
    answers.forEach((answer, i) => {
      const c = classes[i]!;
      if (answer.status < 200 || answer.status >= 300) {
        throw httpStatusFailure(this.backendId, answer, { retryAfterS: 5, what: `GET /object_info/${c}` });
      }
      found.set(c, parseJsonBody<Record<string, ComfyObjectInfo>>(this.backendId, answer.body, `GET /object_info/${c}`)[c]);
    });
    return found;
  }

  async systemStats(timeoutMs: number): Promise<ComfySystemStats> {
    return this.http.callJson<ComfySystemStats>('GET', '/system_stats', { timeoutMs });
  }
}
