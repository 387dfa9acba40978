/**
 * The ComfyUI websocket (`/ws?clientId=...`) for one generation. It is opened before the prompt is
 * queued, so no event can be missed, and it buffers every JSON message until `waitForPrompt` is
 * called. Events (shared/protocols/comfyui.md, "WebSocket /ws"):
 *   status                 {status:{exec_info:{queue_remaining}}, sid?}
 *   execution_start        {prompt_id, timestamp}
 *   execution_cached       {nodes, prompt_id, timestamp}
 *   progress_state         {prompt_id, nodes}                 (ignored)
 *   executing              {node: id | null, prompt_id}      node null: the history is written
 *   progress               {value, max, prompt_id?, node?}
 *   executed               {node, output, prompt_id}
 *   execution_success      {prompt_id, timestamp}            sent BEFORE the history is written
 *   execution_error        {prompt_id, node_id, node_type, exception_message, exception_type, ...}
 *   execution_interrupted  {prompt_id, node_id, node_type, executed, timestamp}
 * Binary frames: a preview image after a `progress` event (comfyui-preview.ts); other binary events
 * are ignored.
 */
import WebSocket from 'ws';
import type { EngineProgress } from '../../domain/types.ts';
import { abortErrorFrom, backendErrorFailure, unavailableFailure } from '../remote/errors.ts';
import { decodePreview, MAX_PREVIEW_BYTES, parsePreviewFrame, type PreviewFrame } from './comfyui-preview.ts';

const ENDING_EVENTS = new Set(['execution_success', 'execution_error', 'execution_interrupted']);

/**
 * How long `executing` null may lag execution_success before the caller stops waiting for it and
 * polls the history instead. The gap is the server writing the history (main.py's task_done), a
 * few ms normally, more under load; the wait only matters when that event never comes.
 */
const DEFAULT_SUCCESS_GRACE_MS = 2000;

/**
 * How a prompt's success was learnt. `history-written`: `executing` null came, the history holds
 * the outputs. `history-pending`: execution_success came but not that event (the socket closed, or
 * it did not come within the grace), so the history may still answer `{}` for a moment.
 */
export type PromptSuccess = 'history-written' | 'history-pending';

interface ComfyMessage {
  type: string;
  data: Record<string, unknown>;
}

type SocketEvent = { kind: 'message'; message: ComfyMessage } | { kind: 'preview'; frame: PreviewFrame };

/** The socket went away before the prompt finished; the engine then asks /history. */
export class ComfySocketClosedError extends Error {
  constructor(detail: string) {
    super(`ComfyUI websocket closed before the job finished (${detail})`);
    this.name = 'ComfySocketClosedError';
  }
}

export interface WaitOptions {
  signal: AbortSignal;
  /**
   * Each `progress` event of the prompt; when a preview image follows it, the latest step is
   * reported again with that image as `preview`.
   */
  onProgress?: (progress: EngineProgress) => void;
  /** A preview that could not be decoded (or whose report threw); the generation goes on without it. */
  onPreviewError?: (err: unknown) => void;
  /** Default DEFAULT_SUCCESS_GRACE_MS. */
  successGraceMs?: number;
}

function frameBytes(raw: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  return Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw);
}

export class ComfySocket {
  private readonly backendId: string;
  private readonly ws: WebSocket;
  private readonly buffered: ComfyMessage[] = [];
  private listener: ((event: SocketEvent) => void) | undefined;
  private closedDetail: string | undefined;
  private onClosed: (() => void) | undefined;
  private readonly startedPrompts = new Set<string>();
  private readonly endedPrompts = new Set<string>();

  private constructor(backendId: string, ws: WebSocket) {
    this.backendId = backendId;
    this.ws = ws;
    ws.on('message', (raw, isBinary) => {
      if (isBinary) {
        // Previews are not buffered: before waitForPrompt listens they could only be of a first
        // step, and holding images for a listener that may never come would be an unbounded queue.
        if (!this.listener) return;
        const frame = parsePreviewFrame(frameBytes(raw));
        if (frame && frame.image.length <= MAX_PREVIEW_BYTES) this.listener({ kind: 'preview', frame });
        return;
      }
      let message: ComfyMessage;
      try {
        message = JSON.parse(raw.toString()) as ComfyMessage;
      } catch {
        return; // not ours to judge: ComfyUI extensions may send anything
      }
      if (!message || typeof message.type !== 'string') return;
      message.data = message.data && typeof message.data === 'object' ? message.data : {};
      const promptId = message.data.prompt_id;
      if (typeof promptId === 'string') {
        if (message.type === 'execution_start') this.startedPrompts.add(promptId);
        if (ENDING_EVENTS.has(message.type) || (message.type === 'executing' && message.data.node === null)) {
          this.endedPrompts.add(promptId);
        }
      }
      if (this.listener) this.listener({ kind: 'message', message });
      else this.buffered.push(message);
    });
    ws.on('close', (code, reason) => {
      this.closedDetail = `code ${code}${reason.length ? `, ${reason.toString()}` : ''}`;
      this.onClosed?.();
    });
    ws.on('error', () => {
      // 'close' follows every 'error'; the close handler reports it.
    });
  }

  /** Opens the socket; rejects with 503 when ComfyUI cannot be reached. */
  static connect(
    backendId: string,
    url: string,
    options: { signal: AbortSignal; timeoutMs: number; headers?: Readonly<Record<string, string>> },
  ): Promise<ComfySocket> {
    return new Promise((resolve, reject) => {
      if (options.signal.aborted) {
        reject(abortErrorFrom(options.signal));
        return;
      }
      const ws = new WebSocket(url, { handshakeTimeout: options.timeoutMs, perMessageDeflate: false, headers: { ...options.headers } });
      const cleanup = (): void => {
        options.signal.removeEventListener('abort', onAbort);
        ws.off('open', onOpen);
        ws.off('error', onError);
        ws.off('unexpected-response', onUnexpected);
      };
      const onOpen = (): void => {
        cleanup();
        resolve(new ComfySocket(backendId, ws));
      };
      const onError = (err: Error): void => {
        cleanup();
        ws.terminate();
        const code = (err as { code?: string }).code;
        reject(unavailableFailure(backendId, `websocket ${code ?? err.message}`, 5, { unreachable: code === 'ECONNREFUSED', cause: err }));
      };
      const onUnexpected = (_req: unknown, res: { statusCode?: number }): void => {
        cleanup();
        ws.terminate();
        reject(backendErrorFailure(backendId, `websocket upgrade refused with HTTP ${res.statusCode ?? '?'}; is this a ComfyUI server?`, { retryable: true }));
      };
      const onAbort = (): void => {
        cleanup();
        ws.terminate();
        reject(abortErrorFrom(options.signal));
      };
      ws.once('open', onOpen);
      ws.once('error', onError);
      ws.once('unexpected-response', onUnexpected);
      options.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Whether ComfyUI announced that this prompt finished, failed or was interrupted. */
  hasEnded(promptId: string): boolean {
    return this.endedPrompts.has(promptId);
  }

  /** Whether ComfyUI announced that it started executing this prompt. */
  hasStarted(promptId: string): boolean {
    return this.startedPrompts.has(promptId);
  }

  /**
   * Resolves when the prompt finished successfully: at `executing` null for it, the first event
   * after which its history is guaranteed; or, once execution_success was seen, when the socket
   * closes or `successGraceMs` passes without that event. Rejects with a BackendFailure on
   * execution_error / execution_interrupted, ComfySocketClosedError when the socket closes before
   * execution_success, or the abort error.
   *
   * Previews: a frame is taken only while this prompt is the one executing (the frame names no
   * prompt) and only as the first frame after one of its progress events; at most one decodes at
   * a time, so a server sending faster than we decode costs skipped previews, not a backlog.
   */
  waitForPrompt(promptId: string, options: WaitOptions): Promise<PromptSuccess> {
    return new Promise((resolve, reject) => {
      let outcome: 'pending' | 'succeeded' | 'failed' = 'pending';
      let succeeded = false;
      let graceTimer: NodeJS.Timeout | undefined;
      /** The prompt ComfyUI said it is executing (execution_start / executing name it). */
      let executing: string | undefined;
      let latest: EngineProgress | undefined;
      let wantsPreview = false;
      let decoding: Promise<void> | undefined;
      const finish = (err?: unknown, how: PromptSuccess = 'history-written'): void => {
        if (outcome !== 'pending') return;
        outcome = err ? 'failed' : 'succeeded';
        this.listener = undefined;
        this.onClosed = undefined;
        clearTimeout(graceTimer);
        options.signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        // A preview still decoding is the freshest picture; its decode is bounded (≤ 1 MB), so
        // the result waits for it rather than dropping it.
        else if (decoding) void decoding.then(() => resolve(how), () => resolve(how));
        else resolve(how);
      };
      const onClosed = (): void => {
        if (succeeded) finish(undefined, 'history-pending');
        else finish(new ComfySocketClosedError(this.closedDetail ?? 'closed'));
      };
      const onAbort = (): void => finish(abortErrorFrom(options.signal));
      const takePreview = (frame: PreviewFrame): void => {
        // The first frame after a progress event is that event's preview, whether taken or not.
        const followsProgress = wantsPreview;
        wantsPreview = false;
        const report = options.onProgress;
        if (!report || !followsProgress || executing !== promptId || decoding) return;
        decoding = (async () => {
          try {
            const preview = await decodePreview(this.backendId, frame);
            if (outcome !== 'failed' && latest) report({ ...latest, preview });
          } catch (err) {
            options.onPreviewError?.(err);
          } finally {
            decoding = undefined;
          }
        })();
      };
      const trackExecuting = (message: ComfyMessage): void => {
        const id = message.data.prompt_id;
        if (typeof id !== 'string') return;
        const ended = ENDING_EVENTS.has(message.type) || (message.type === 'executing' && message.data.node === null);
        const before = executing;
        if (message.type === 'execution_start' || (message.type === 'executing' && !ended)) executing = id;
        else if (ended && executing === id) executing = undefined;
        // A progress event of the prompt before does not vouch for a frame sent after the switch.
        if (executing !== before) wantsPreview = false;
      };
      const handleMessage = (message: ComfyMessage): void => {
        trackExecuting(message);
        const data = message.data;
        const forUs = data.prompt_id === undefined || data.prompt_id === promptId;
        if (message.type === 'progress') wantsPreview = false;
        if (!forUs) return;
        switch (message.type) {
          case 'progress': {
            const value = Number(data.value);
            const max = Number(data.max);
            if (Number.isFinite(value) && Number.isFinite(max) && max > 0) {
              latest = { step: value, totalSteps: max };
              wantsPreview = true;
              options.onProgress?.(latest);
            }
            return;
          }
          case 'executing':
            if (data.node === null && data.prompt_id === promptId) finish();
            return;
          case 'execution_success':
            // Not yet: the server writes the history after this event (comfyui.md, "The order that matters").
            if (data.prompt_id === promptId && !succeeded) {
              succeeded = true;
              graceTimer = setTimeout(() => finish(undefined, 'history-pending'), options.successGraceMs ?? DEFAULT_SUCCESS_GRACE_MS);
            }
            return;
          case 'execution_error': {
            const node = data.node_type ? `${String(data.node_type)} (node ${String(data.node_id)})` : `node ${String(data.node_id)}`;
            const what = [data.exception_type, data.exception_message].filter(Boolean).map(String).join(': ');
            // A failed execution (out of memory, missing model, a node bug) is this backend's problem.
            finish(backendErrorFailure(this.backendId, `execution error in ${node}: ${truncate(what || 'unknown error')}`, { retryable: true }));
            return;
          }
          case 'execution_interrupted':
            finish(backendErrorFailure(this.backendId, `the job was interrupted on the ComfyUI server (node ${String(data.node_id)})`, { retryable: true }));
            return;
          default:
            return;
        }
      };
      if (options.signal.aborted) {
        finish(abortErrorFrom(options.signal));
        return;
      }
      options.signal.addEventListener('abort', onAbort, { once: true });
      this.listener = (event) => (event.kind === 'message' ? handleMessage(event.message) : takePreview(event.frame));
      this.onClosed = onClosed;
      for (const message of this.buffered.splice(0)) {
        if (outcome !== 'pending') return;
        handleMessage(message);
      }
      if (outcome === 'pending' && this.closedDetail !== undefined) onClosed();
    });
  }

  close(): void {
    this.listener = undefined;
    this.onClosed = undefined;
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
  }
}

function truncate(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
