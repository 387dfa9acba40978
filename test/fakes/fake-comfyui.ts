/**
 * A fake ComfyUI server following the protocol a real v0.8.0 was seen to speak
 * (../../../shared/protocols/comfyui.md), for tests where no GPU is available. It validates the
 * submitted API-format workflow the way ComfyUI does where it matters to us (links to missing nodes,
 * LoadImage files that were never uploaded, no output node), "executes" it one prompt at a time in
 * dependency order, sends the websocket events in the documented order, and serves a solid-colour
 * PNG of the latent's size. Everything it receives is recorded. With `previews` set it also sends a
 * sampler's live previews as binary frames.
 *
 * The parts, in comfyui/: types.ts (what tests read and set), routes.ts (HTTP), files.ts (uploads
 * and /view), prompts.ts (validation, what a workflow asked for), execution.ts (the prompt worker
 * and its event order: `execution_success` before the history is written, then `status`, then
 * `executing` with `node: null`), websocket.ts (/ws, previews). The node catalogue (GET
 * /object_info, loaders' installed files) lives in fake-comfyui-object-info.ts; POST /prompt
 * rejects a loader file that is not installed.
 */
import { startHttpServer, type StartedServer } from '../../src/engines/testing/fake-http.ts';
import type { BackendObserver } from '../../src/engines/testing/conformance.ts';
import { createFakeObjectInfo } from './fake-comfyui-object-info.ts';
import { handleRequest } from './comfyui/routes.ts';
import type { FakeComfyOptions, FakeComfyState, FakeComfyui } from './comfyui/types.ts';
import { attachWebsocket } from './comfyui/websocket.ts';

export type { FakeComfyFailure, FakeComfyOptions, FakeComfyPreviews, FakeComfyPrompt, FakeComfyui } from './comfyui/types.ts';
export { fakePreviewColour } from './comfyui/websocket.ts';

export async function startFakeComfyui(options: FakeComfyOptions = {}): Promise<FakeComfyui> {
  const fake: FakeComfyui = {
    url: '',
    port: 0,
    failure: 'none',
    steps: options.steps ?? 4,
    stepDelayMs: options.stepDelayMs ?? 5,
    historyDelayMs: options.historyDelayMs ?? 5,
    previews: options.previews ?? 'none',
    objectInfo: createFakeObjectInfo(),
    prompts: [],
    historyReads: [],
    uploads: [],
    interrupts: [],
    queueDeletes: [],
    historyDeletes: [],
    cancelCount: () => fake.interrupts.length + fake.queueDeletes.length,
    waitForRunning: (timeoutMs = 120_000) =>
      new Promise<void>((resolve, reject) => {
        if (state.running) {
          resolve();
          return;
        }
        const timer = setTimeout(() => reject(new Error('no ComfyUI job started')), timeoutMs);
        state.runningWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
    holdHistory: () => {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      state.historyHold = held;
      return () => {
        if (state.historyHold === held) state.historyHold = undefined;
        release();
      };
    },
    reset: () => {
      fake.failure = 'none';
      fake.steps = options.steps ?? 4;
      fake.stepDelayMs = options.stepDelayMs ?? 5;
      fake.historyDelayMs = options.historyDelayMs ?? 5;
      fake.previews = options.previews ?? 'none';
      fake.objectInfo.reset();
      fake.prompts.length = 0;
      fake.historyReads.length = 0;
      fake.uploads.length = 0;
      fake.interrupts.length = 0;
      fake.queueDeletes.length = 0;
      fake.historyDeletes.length = 0;
    },
    close: async () => {
      state.closing.abort();
      for (const ws of state.sockets.values()) ws.terminate();
      wss.close();
      await started.close();
    },
  };
  const state: FakeComfyState = {
    fake,
    sockets: new Map(),
    inputs: new Map(),
    outputs: new Map(),
    history: new Map(),
    queue: [],
    running: undefined,
    counter: 0,
    runningWaiters: [],
    historyHold: undefined,
    closing: new AbortController(),
  };

  const started: StartedServer = await startHttpServer((req, res) => handleRequest(state, req, res));
  const wss = attachWebsocket(started.server, state);
  fake.url = started.url;
  fake.port = started.port;
  return fake;
}

/** The conformance suite's view of this fake. */
export function comfyuiObserver(fake: FakeComfyui): BackendObserver {
  return {
    lastReceived() {
      const p = fake.prompts.at(-1);
      if (!p) return undefined;
      return {
        prompt: p.prompt,
        negativePrompt: p.negativePrompt,
        seed: p.seed,
        width: p.width,
        height: p.height,
        referenceImages: p.images.length,
        referenceImageSizes: p.images.map((name) => {
          const upload = fake.uploads.find((u) => (u.subfolder ? `${u.subfolder}/${u.name}` : u.name) === name);
          return upload?.width !== undefined && upload.height !== undefined ? { width: upload.width, height: upload.height } : undefined;
        }),
      };
    },
    cancelCount: () => fake.cancelCount(),
    slowNextGeneration() {
      fake.steps = 6_000; // 10 minutes at 100 ms a step: only an interrupt ends it
      fake.stepDelayMs = 100;
      return fake.waitForRunning();
    },
    reset: () => fake.reset(),
  };
}
