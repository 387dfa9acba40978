/**
 * The per-backend deadline, in one place for every engine. When the deadline passes, the inner
 * engine sees its AbortSignal fire (and cancels the remote job, exactly as when the client goes
 * away); the caller gets a 504 generation_timeout marked retryable, so the router may try another
 * backend. The router calls `generateWithDeadline` for each attempt.
 */
import type { Engine, EngineProgress, EngineRequest, EngineResult } from '../../domain/types.ts';
import { abortErrorFrom, timeoutFailure } from '../remote/errors.ts';

export async function generateWithDeadline(
  engine: Engine,
  backendId: string,
  timeoutMs: number,
  request: EngineRequest,
  signal: AbortSignal,
  onProgress?: (progress: EngineProgress) => void,
): Promise<EngineResult> {
  if (!(timeoutMs > 0)) return engine.generate(request, signal, onProgress);
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`deadline of ${timeoutMs} ms passed`, 'AbortError'));
  }, timeoutMs);
  const forwardAbort = (): void => controller.abort(signal.reason);
  if (signal.aborted) forwardAbort();
  else signal.addEventListener('abort', forwardAbort, { once: true });
  try {
    return await engine.generate(request, controller.signal, onProgress);
  } catch (err) {
    if (signal.aborted) throw abortErrorFrom(signal);
    if (timedOut) throw timeoutFailure(backendId, timeoutMs);
    throw err;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', forwardAbort);
  }
}

