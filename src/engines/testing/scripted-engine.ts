/**
 * An in-process Engine whose behaviour a test scripts step by step (succeed, fail with a given
 * error, take a while, wait for a gate), for router tests that need exact control. It honours
 * abort like a real engine and counts the aborts it saw.
 */
import { ANY_SIZE, type EngineCapabilities } from '../../domain/engine-capabilities.ts';
import type { Engine, EngineHealth, EngineProgress, EngineRequest, EngineResult } from '../../domain/types.ts';
import { abortErrorFrom, sleep } from '../remote/errors.ts';

export interface ScriptStep {
  /** Reject with this after the delay / gate. */
  fail?: Error;
  delayMs?: number;
  /** Resolve only once this promise resolves (or the signal aborts). */
  gate?: Promise<void>;
  /** Return an image this much wider than asked (a misbehaving backend). */
  extraWidth?: number;
}

export class ScriptedEngine implements Engine {
  readonly id: string;
  readonly kind: string;
  readonly description: string;
  readonly calls: EngineRequest[] = [];
  readonly script: ScriptStep[] = [];
  defaultStep: ScriptStep = {};
  healthResult: EngineHealth = { ok: true };
  loadError: Error | undefined;
  aborts = 0;
  closed = false;
  /** What `capabilities()` declares; a test changes fields to script a backend (reports progress: it does). */
  declared: EngineCapabilities = {
    maxReferenceImages: 3,
    sizes: { ...ANY_SIZE },
    negativePrompt: true,
    seed: true,
    progress: true,
    previews: false,
    masks: false,
    promptAdaptation: false,
  };

  constructor(id: string, kind = 'scripted') {
    this.id = id;
    this.kind = kind;
    this.description = `scripted test engine ${id}`;
  }

  /** Queue steps for the next calls. */
  then(...steps: ScriptStep[]): this {
    this.script.push(...steps);
    return this;
  }

  async load(): Promise<void> {
    if (this.loadError) throw this.loadError;
  }

  capabilities(): EngineCapabilities {
    return this.declared;
  }

  async health(): Promise<EngineHealth> {
    return this.healthResult;
  }

  async generate(request: EngineRequest, signal: AbortSignal, onProgress?: (p: EngineProgress) => void): Promise<EngineResult> {
    this.calls.push(request);
    const step = this.script.shift() ?? this.defaultStep;
    try {
      onProgress?.({ step: 0, totalSteps: 2 });
      if (step.delayMs) await sleep(step.delayMs, signal);
      if (step.gate) await waitOrAbort(step.gate, signal);
      if (signal.aborted) throw abortErrorFrom(signal);
    } catch (err) {
      if (signal.aborted) this.aborts += 1;
      throw err;
    }
    if (step.fail) throw step.fail;
    onProgress?.({ step: 2, totalSteps: 2 });
    const width = request.width + (step.extraWidth ?? 0);
    return { image: { width, height: request.height, data: new Uint8Array(width * request.height * 3) }, info: { engine: this.id } };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function waitOrAbort(gate: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortErrorFrom(signal));
      return;
    }
    const onAbort = (): void => reject(abortErrorFrom(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    gate.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, reject);
  });
}

/** A promise plus its resolver, for gates. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
