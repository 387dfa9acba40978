/**
 * The ComfyUI websocket (`/ws?clientId=...`) for one generation. It is opened before the prompt is
 * queued, so no event can be missed, and it buffers every JSON message until `waitForPrompt` is
 * called. Events (ComfyUI server messages, docs.comfy.org "Messages"):
 *   status                 {status:{exec_info:{queue_remaining}}, sid?}
 *   execution_start        {prompt_id}
 *   execution_cached       {prompt_id, nodes}
 *   executing              {node: id | null, prompt_id}      node null = the prompt finished
 *   progress               {value, max, prompt_id?, node?}
 *   executed               {node, output, prompt_id}
 *   execution_success      {prompt_id}
 *   execution_error        {prompt_id, node_id, node_type, exception_message, exception_type, ...}
 *   execution_interrupted  {prompt_id, node_id, node_type, executed}
 * Binary frames are previews and are ignored.
 */
import WebSocket from 'ws';
import type { EngineProgress } from '../../domain/types.ts';
import { abortErrorFrom, backendErrorFailure, unavailableFailure } from '../router/kit/errors.ts';

const ENDING_EVENTS = new Set(['execution_success', 'execution_error', 'execution_interrupted']);

interface ComfyMessage {
  type: string;
  data: Record<string, unknown>;
}

/** The socket went away before the prompt finished; the engine then asks /history. */
export class ComfySocketClosedError extends Error {
  constructor(detail: string) {
    super(`ComfyUI websocket closed before the job finished (${detail})`);
    this.name = 'ComfySocketClosedError';
  }
}

export interface WaitOptions {
  signal: AbortSignal;
  onProgress?: (progress: EngineProgress) => void;
}

export class ComfySocket {
  private readonly backendId: string;
  private readonly ws: WebSocket;
  private readonly buffered: ComfyMessage[] = [];
  private listener: ((message: ComfyMessage) => void) | undefined;
  private closedDetail: string | undefined;
  private onClosed: (() => void) | undefined;
  private readonly startedPrompts = new Set<string>();
  private readonly endedPrompts = new Set<string>();

  private constructor(backendId: string, ws: WebSocket) {
    this.backendId = backendId;
    this.ws = ws;
    ws.on('message', (raw, isBinary) => {
      if (isBinary) return;
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
      if (this.listener) this.listener(message);
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
   * Resolves when the prompt finished successfully. Rejects with a BackendFailure on
   * execution_error / execution_interrupted, ComfySocketClosedError when the socket closes first,
   * or the abort error.
   */
  waitForPrompt(promptId: string, options: WaitOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        this.listener = undefined;
        this.onClosed = undefined;
        options.signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = (): void => finish(abortErrorFrom(options.signal));
      const handle = (message: ComfyMessage): void => {
        const data = message.data;
        const forUs = data.prompt_id === undefined || data.prompt_id === promptId;
        if (!forUs) return;
        switch (message.type) {
          case 'progress': {
            const value = Number(data.value);
            const max = Number(data.max);
            if (Number.isFinite(value) && Number.isFinite(max) && max > 0) {
              options.onProgress?.({ step: value, totalSteps: max });
            }
            return;
          }
          case 'executing':
            if (data.node === null && data.prompt_id === promptId) finish();
            return;
          case 'execution_success':
            if (data.prompt_id === promptId) finish();
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
      this.listener = handle;
      this.onClosed = () => finish(new ComfySocketClosedError(this.closedDetail ?? 'closed'));
      for (const message of this.buffered.splice(0)) {
        if (settled) return;
        handle(message);
      }
      if (!settled && this.closedDetail !== undefined) finish(new ComfySocketClosedError(this.closedDetail));
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
