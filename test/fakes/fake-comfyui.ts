/**
 * A fake ComfyUI server following the protocol a real v0.8.0 was seen to speak
 * (../../../shared/protocols/comfyui.md), for tests where no GPU is available. It validates the
 * submitted API-format workflow the way ComfyUI does where it matters to us (links to missing nodes,
 * LoadImage files that were never uploaded, no output node), "executes" it one prompt at a time in
 * dependency order, sends the websocket events in the documented order, and serves a solid-colour
 * PNG of the latent's size. Everything it receives is recorded. With `previews` set it also sends a
 * sampler's live previews as binary frames.
 *
 * The order that matters: `execution_success` (or `execution_error` / `execution_interrupted`) goes
 * out first; the history entry is written `historyDelayMs` later (GET /history/{id} answers `{}`
 * meanwhile), then `status`, then `executing` with `node: null`. It caches nothing, like a server
 * started with --cache-none: `execution_cached` always lists no nodes.
 *
 * Its node catalogue (GET /object_info, loaders' installed files) lives in
 * fake-comfyui-object-info.ts; POST /prompt rejects a loader file that is not installed.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import sharp from 'sharp';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  imageSize,
  parseMultipart,
  readBody,
  sendBytes,
  sendJson,
  solidPng,
  startHttpServer,
  type StartedServer,
} from '../../src/engines/testing/fake-http.ts';
import type { BackendObserver } from '../../src/engines/testing/conformance.ts';
import { catalogueClasses, createFakeObjectInfo, loaderValueError, objectInfoFor, type FakeObjectInfo } from './fake-comfyui-object-info.ts';

export type FakeComfyFailure =
  | 'none'
  /** execution_error during sampling (e.g. CUDA out of memory). */
  | 'execution-error'
  /** the websocket is closed after two progress steps; the job then stalls. */
  | 'ws-close-mid-job'
  /** POST /prompt answers 400 with node_errors, as for a missing model file. */
  | 'invalid-prompt'
  /** the job succeeds but its history has no images. */
  | 'no-output'
  /** /view returns bytes that are not an image. */
  | 'garbage-output'
  /** the image is 32 px wider than the latent asked for. */
  | 'wrong-size'
  /** a proxy in front answers 503 to POST /prompt. */
  | 'prompt-503'
  /** the websocket is closed right after execution_success, before the history is written. */
  | 'ws-close-after-success';

/**
 * Live previews as a server started with --preview-method sends them. Real samplers send JPEG
 * (latent_preview.py); PNG is the other format the frame can name.
 */
export type FakeComfyPreviews = 'none' | 'png' | 'jpeg';

type Node = { class_type: string; inputs: Record<string, unknown> };
type Workflow = Record<string, Node>;

export interface FakeComfyPrompt {
  promptId: string;
  clientId: string | undefined;
  workflow: Workflow;
  prompt: string | undefined;
  negativePrompt: string | undefined;
  seed: number | undefined;
  width: number | undefined;
  height: number | undefined;
  /** LoadImage names wired into the positive conditioning, in order. */
  images: string[];
}

interface Job {
  id: string;
  number: number;
  clientId: string | undefined;
  createTime: number;
  record: FakeComfyPrompt;
  state: 'pending' | 'running' | 'done';
  interrupted: boolean;
}

/** A history entry as task_done writes it (comfyui.md, "GET /history/{prompt_id}"). */
interface HistoryEntry {
  prompt: [number, string, Workflow, Record<string, unknown>, string[]];
  outputs: Record<string, unknown>;
  status: { status_str: 'success' | 'error'; completed: boolean; messages: Array<[string, Record<string, unknown>]> };
  meta: Record<string, unknown>;
}

/** Output nodes of the workflows we send (SaveImage, and PreviewImage for temp outputs). */
const OUTPUT_CLASSES = new Set(['SaveImage', 'PreviewImage']);

export interface FakeComfyui {
  url: string;
  port: number;
  failure: FakeComfyFailure;
  steps: number;
  stepDelayMs: number;
  /** Gap between execution_success (or the error event) and the history entry being written. */
  historyDelayMs: number;
  previews: FakeComfyPreviews;
  /** GET /object_info: installed model files, missing node classes, combo shape. */
  readonly objectInfo: FakeObjectInfo;
  readonly prompts: FakeComfyPrompt[];
  /** Every GET /history/{id}, and whether the entry was there or the answer was `{}`. */
  readonly historyReads: Array<{ promptId: string; found: boolean }>;
  readonly uploads: Array<{ name: string; subfolder: string; type: string; width?: number; height?: number }>;
  readonly interrupts: Array<{ promptId: string | undefined }>;
  readonly queueDeletes: string[];
  readonly historyDeletes: string[];
  /** Cancellations seen: interrupts plus queue deletions. */
  cancelCount(): number;
  /** Resolves when a job has started executing (after execution_start was sent). */
  waitForRunning(timeoutMs?: number): Promise<void>;
  /**
   * Until the returned function is called, finished prompts wait before their history is written
   * (after their last execution event): a test can then look at the gap without racing a timer.
   */
  holdHistory(): () => void;
  reset(): void;
  close(): Promise<void>;
}

/** The preview colour for a step, so tests can tell which step a preview came from. */
export function fakePreviewColour(step: number): { r: number; g: number; b: number } {
  return { r: (step * 40) % 256, g: 160, b: 255 - ((step * 40) % 256) };
}

export interface FakeComfyOptions {
  steps?: number;
  stepDelayMs?: number;
  /** Default 5 ms: long enough that a client reading history on execution_success finds `{}`. */
  historyDelayMs?: number;
  previews?: FakeComfyPreviews;
}

export async function startFakeComfyui(options: FakeComfyOptions = {}): Promise<FakeComfyui> {
  const sockets = new Map<string, WebSocket>();
  const inputs = new Map<string, Buffer>();
  const outputs = new Map<string, Buffer>();
  const history = new Map<string, HistoryEntry>();
  const queue: Job[] = [];
  let running: Job | undefined;
  let counter = 0;
  const runningWaiters: Array<() => void> = [];
  let historyHold: Promise<void> | undefined;
  // Pauses end (rejecting) when the fake closes, so no job keeps the process alive after a test.
  const closing = new AbortController();
  const pause = (ms: number): Promise<void> => delay(ms, undefined, { signal: closing.signal });

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
        if (running) {
          resolve();
          return;
        }
        const timer = setTimeout(() => reject(new Error('no ComfyUI job started')), timeoutMs);
        runningWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
    holdHistory: () => {
      let release!: () => void;
      historyHold = new Promise<void>((r) => (release = r));
      const held = historyHold;
      return () => {
        if (historyHold === held) historyHold = undefined;
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
      closing.abort();
      for (const ws of sockets.values()) ws.terminate();
      wss.close();
      await started.close();
    },
  };

  const send = (clientId: string | undefined, type: string, data: Record<string, unknown>): void => {
    const ws = clientId ? sockets.get(clientId) : undefined;
    if (ws && ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type, data }));
  };
  /**
   * One preview frame as server.py's send_image writes it: uint32 BE event 1 (PREVIEW_IMAGE),
   * uint32 BE format (1 JPEG, 2 PNG), the image. Its size is the latent's (width/8 by height/8)
   * scaled to fit --preview-size, 512 by default, as ImageOps.contain does (up or down).
   */
  const sendPreview = async (clientId: string | undefined, job: Job, step: number): Promise<void> => {
    const latentW = Math.max(1, Math.round((job.record.width ?? 512) / 8));
    const latentH = Math.max(1, Math.round((job.record.height ?? 512) / 8));
    const fit = 512 / Math.max(latentW, latentH);
    const width = Math.max(1, Math.round(latentW * fit));
    const height = Math.max(1, Math.round(latentH * fit));
    const canvas = sharp({ create: { width, height, channels: 3, background: fakePreviewColour(step) } });
    const format = fake.previews === 'jpeg' ? 1 : 2;
    const image = format === 1 ? await canvas.jpeg({ quality: 95 }).toBuffer() : await canvas.png({ compressionLevel: 1 }).toBuffer();
    const head = Buffer.alloc(8);
    head.writeUInt32BE(1, 0);
    head.writeUInt32BE(format, 4);
    const ws = clientId ? sockets.get(clientId) : undefined;
    if (ws && ws.readyState === ws.OPEN) ws.send(Buffer.concat([head, image]), { binary: true });
  };
  /** server.py's send_sync with no sid: every connected client gets it. */
  const broadcast = (type: string, data: Record<string, unknown>): void => {
    const text = JSON.stringify({ type, data });
    for (const ws of sockets.values()) if (ws.readyState === ws.OPEN) ws.send(text);
  };
  const queueInfo = (): Record<string, unknown> => ({ exec_info: { queue_remaining: queue.length + (running ? 1 : 0) } });

  /** main.py's prompt_worker: execute, then task_done (history, status), then `executing` null. */
  async function runQueue(): Promise<void> {
    if (running) return;
    const job = queue.shift();
    if (!job) return;
    running = job;
    job.state = 'running';
    const leave = (): void => {
      job.state = 'done';
      if (running === job) running = undefined;
    };
    try {
      const entry = await execute(job);
      await pause(fake.historyDelayMs);
      await historyHold;
      // task_done writes the history and takes the prompt off the running list in one step.
      history.set(job.id, entry);
      leave();
      broadcast('status', { status: queueInfo() });
      send(job.clientId, 'executing', { node: null, prompt_id: job.id });
    } catch (err) {
      if (!closing.signal.aborted) throw err;
    } finally {
      leave();
      if (!closing.signal.aborted) void runQueue();
    }
  }

  /** Nodes the output nodes depend on, each after its inputs (execution.py's ExecutionList). */
  function executionOrder(wf: Workflow): string[] {
    const order: string[] = [];
    const seen = new Set<string>();
    const visit = (id: string): void => {
      if (seen.has(id) || !wf[id]) return;
      seen.add(id);
      for (const value of Object.values(wf[id]!.inputs ?? {})) {
        if (Array.isArray(value) && value.length === 2) visit(String(value[0]));
      }
      order.push(id);
    };
    for (const [id, node] of Object.entries(wf)) if (OUTPUT_CLASSES.has(node.class_type)) visit(id);
    return order;
  }

  /** Runs the nodes and sends the execution events; returns the history entry task_done will write. */
  async function execute(job: Job): Promise<HistoryEntry> {
    const pid = job.id;
    const client = job.clientId;
    const wf = job.record.workflow;
    const order = executionOrder(wf);
    const outputNodes = order.filter((id) => OUTPUT_CLASSES.has(wf[id]!.class_type));
    // execution.py's add_message: stamped, kept for the history's status, sent to the prompt's
    // client (execution_interrupted goes to everyone).
    const messages: Array<[string, Record<string, unknown>]> = [];
    const addMessage = (type: string, data: Record<string, unknown>, toEveryone = false): void => {
      const stamped = { ...data, timestamp: Date.now() };
      messages.push([type, stamped]);
      if (toEveryone) broadcast(type, stamped);
      else send(client, type, stamped);
    };
    const uiOutputs: Record<string, unknown> = {};
    const meta: Record<string, unknown> = {};
    const entry = (ok: boolean): HistoryEntry => ({
      prompt: [job.number, pid, wf, { client_id: client, create_time: job.createTime }, outputNodes],
      outputs: uiOutputs,
      status: { status_str: ok ? 'success' : 'error', completed: ok, messages },
      meta,
    });
    /** comfy_execution/progress.py: the state of every node started so far. */
    const progress = new Map<string, { value: number; max: number; state: 'running' | 'finished' }>();
    const sendProgressState = (): void => {
      const nodes: Record<string, unknown> = {};
      for (const [id, p] of progress) {
        nodes[id] = { ...p, node_id: id, prompt_id: pid, display_node_id: id, parent_node_id: null, real_node_id: id };
      }
      send(client, 'progress_state', { prompt_id: pid, nodes });
    };

    addMessage('execution_start', { prompt_id: pid });
    for (const w of runningWaiters.splice(0)) w();
    addMessage('execution_cached', { nodes: [], prompt_id: pid });
    const executed: string[] = [];
    const interrupted = (id: string): HistoryEntry => {
      addMessage('execution_interrupted', { prompt_id: pid, node_id: id, node_type: wf[id]!.class_type, executed: [...executed] }, true);
      return entry(false);
    };
    for (const id of order) {
      const node = wf[id]!;
      progress.set(id, { value: 0, max: 1, state: 'running' });
      sendProgressState();
      send(client, 'executing', { node: id, display_node: id, prompt_id: pid });
      // nodes.before_node_execution: an interrupt takes effect as the next node starts.
      if (job.interrupted) return interrupted(id);
      if (node.class_type.startsWith('KSampler')) {
        for (let step = 1; step <= fake.steps; step++) {
          await pause(fake.stepDelayMs);
          // main.py's progress hook checks for an interrupt on every step.
          if (job.interrupted) return interrupted(id);
          progress.set(id, { value: step, max: fake.steps, state: 'running' });
          sendProgressState();
          send(client, 'progress', { value: step, max: fake.steps, prompt_id: pid, node: id });
          // The hook sends the progress event, then that step's preview.
          if (fake.previews !== 'none') await sendPreview(client, job, step);
          if (fake.failure === 'ws-close-mid-job' && step === 2) {
            sockets.get(client ?? '')?.terminate();
            // The server keeps "working" until interrupted or for a while, like a hung GPU.
            for (let i = 0; i < 200 && !job.interrupted; i++) await pause(10);
            job.interrupted = true;
          }
          if (fake.failure === 'execution-error' && step === 2) {
            addMessage('execution_error', {
              prompt_id: pid,
              node_id: id,
              node_type: node.class_type,
              executed: [...executed],
              exception_message: 'CUDA out of memory. Tried to allocate 2.00 GiB',
              exception_type: 'torch.OutOfMemoryError',
              traceback: ['  File "execution.py", line 496, in execute\n', 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n'],
              current_inputs: Object.fromEntries(Object.entries(node.inputs ?? {}).filter(([, v]) => !Array.isArray(v)).map(([k, v]) => [k, [String(v)]])),
              current_outputs: [...executed],
            });
            return entry(false);
          }
        }
      }
      if (OUTPUT_CLASSES.has(node.class_type)) {
        const images = fake.failure === 'no-output' ? [] : [await saveImage(job, node.class_type === 'SaveImage' ? 'output' : 'temp')];
        uiOutputs[id] = { images };
        meta[id] = { node_id: id, display_node: id, parent_node: null, real_node_id: id };
        send(client, 'executed', { node: id, display_node: id, output: { images }, prompt_id: pid });
      }
      progress.set(id, { ...progress.get(id)!, state: 'finished' });
      sendProgressState();
      executed.push(id);
    }
    addMessage('execution_success', { prompt_id: pid });
    // close(), not terminate(): execution_success is still in the send buffer and must get out.
    if (fake.failure === 'ws-close-after-success') sockets.get(client ?? '')?.close(1001, 'going away');
    return entry(true);
  }

  /** Writes the latent-sized image the way SaveImage names its files. */
  async function saveImage(job: Job, type: 'output' | 'temp'): Promise<{ filename: string; subfolder: string; type: string }> {
    const width = (job.record.width ?? 512) + (fake.failure === 'wrong-size' ? 32 : 0);
    const height = job.record.height ?? 512;
    const filename = `qwen-image-api_${String(++counter).padStart(5, '0')}_.png`;
    outputs.set(`${type}//${filename}`, fake.failure === 'garbage-output' ? Buffer.from('definitely not a png') : await solidPng(width, height, job.record.seed ?? 0));
    return { filename, subfolder: '', type };
  }

  function validate(workflow: unknown): { error: Record<string, unknown>; node_errors: unknown } | undefined {
    const fail = (type: string, message: string, details = '', nodeErrors: unknown = {}) => ({
      error: { type, message, details, extra_info: {} },
      node_errors: nodeErrors,
    });
    if (!workflow || typeof workflow !== 'object') return fail('invalid_prompt', 'Invalid prompt: not an object');
    const wf = workflow as Workflow;
    for (const [id, node] of Object.entries(wf)) {
      if (!node || typeof node.class_type !== 'string') return fail('invalid_prompt', `Cannot execute because node ${id} has no class_type`);
      if (fake.objectInfo.missingClasses.has(node.class_type)) {
        return fail('invalid_prompt', `Cannot execute because node ${node.class_type} does not exist.`, `Node ID '#${id}'`);
      }
      const notInstalled = loaderValueError(fake.objectInfo, node.class_type, node.inputs ?? {});
      if (notInstalled) {
        return fail('prompt_outputs_failed_validation', 'Prompt outputs failed validation', '', {
          [id]: { errors: [notInstalled], dependent_outputs: [], class_type: node.class_type },
        });
      }
      for (const [input, value] of Object.entries(node.inputs ?? {})) {
        if (Array.isArray(value) && value.length === 2 && !wf[String(value[0])]) {
          return fail('prompt_outputs_failed_validation', 'Prompt outputs failed validation', '', {
            [id]: { errors: [{ type: 'required_input_missing', message: 'Required input is missing', details: `${input} links to missing node ${String(value[0])}`, extra_info: {} }], dependent_outputs: [], class_type: node.class_type },
          });
        }
      }
      if (node.class_type === 'LoadImage' && !inputs.has(String(node.inputs.image))) {
        return fail('prompt_outputs_failed_validation', 'Prompt outputs failed validation', '', {
          [id]: { errors: [{ type: 'value_not_in_list', message: 'Value not in list', details: `image: '${String(node.inputs.image)}' not in (list of length ${inputs.size})`, extra_info: {} }], dependent_outputs: [], class_type: 'LoadImage' },
        });
      }
    }
    if (!Object.values(wf).some((n) => n.class_type === 'SaveImage')) {
      return fail('prompt_no_outputs', 'Prompt has no outputs', '', []);
    }
    return undefined;
  }

  function describePrompt(promptId: string, clientId: string | undefined, wf: Workflow): FakeComfyPrompt {
    const node = (link: unknown): Node | undefined => (Array.isArray(link) ? wf[String(link[0])] : undefined);
    const text = (n: Node | undefined): string | undefined => {
      const v = n?.inputs.text ?? n?.inputs.prompt;
      return typeof v === 'string' ? v : undefined;
    };
    const sampler = Object.values(wf).find((n) => n.class_type.startsWith('KSampler'));
    const positive = node(sampler?.inputs.positive);
    const latent = node(sampler?.inputs.latent_image);
    // TextEncodeQwenImage21 encodes both prompts in one node: output 1 is the negative conditioning.
    const negativeLink = sampler?.inputs.negative;
    const negativeNode = node(negativeLink);
    const negativeText =
      Array.isArray(negativeLink) && Number(negativeLink[1]) === 1 && typeof negativeNode?.inputs.negative_prompt === 'string'
        ? negativeNode.inputs.negative_prompt
        : text(negativeNode);
    // Edit-2509's TextEncodeQwenImageEditPlus names them image1..3; 2.1's v3 node images.image_1..
    const images = ['image1', 'image2', 'image3', ...Array.from({ length: 10 }, (_, i) => `images.image_${i + 1}`)]
      .map((k) => node(positive?.inputs[k]))
      .filter((n): n is Node => n?.class_type === 'LoadImage')
      .map((n) => String(n.inputs.image));
    return {
      promptId,
      clientId,
      workflow: wf,
      prompt: text(positive),
      negativePrompt: negativeText,
      seed: typeof sampler?.inputs.seed === 'number' ? sampler.inputs.seed : undefined,
      width: typeof latent?.inputs.width === 'number' ? latent.inputs.width : undefined,
      height: typeof latent?.inputs.height === 'number' ? latent.inputs.height : undefined,
      images,
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake.local');
    const path = url.pathname.replace(/^\/api(?=\/)/, '');
    const body = req.method === 'POST' ? await readBody(req) : Buffer.alloc(0);
    const json = (): Record<string, unknown> => (body.length ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {});

    if (req.method === 'GET' && path === '/system_stats') {
      sendJson(res, 200, {
        system: { os: 'posix', comfyui_version: '0.3.60-fake', python_version: '3.12', pytorch_version: '2.8.0', embedded_python: false, argv: ['main.py'] },
        devices: [{ name: 'cuda:0 NVIDIA Fake GPU', type: 'cuda', index: 0, vram_total: 24 * 2 ** 30, vram_free: 20 * 2 ** 30, torch_vram_total: 0, torch_vram_free: 0 }],
      });
      return;
    }
    if (req.method === 'GET' && (path === '/object_info' || path.startsWith('/object_info/'))) {
      const one = path.startsWith('/object_info/') ? decodeURIComponent(path.slice('/object_info/'.length)) : undefined;
      fake.objectInfo.reads.push(one ?? '*');
      if (one !== undefined && !fake.objectInfo.perClassRoute) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('404: Not Found');
        return;
      }
      const classes = one !== undefined ? [one] : catalogueClasses(fake.objectInfo);
      const body: Record<string, unknown> = {};
      for (const c of classes) {
        const entry = objectInfoFor(fake.objectInfo, c, [...inputs.keys()]);
        if (entry) body[c] = entry;
      }
      // server.py answers `{}` for a class it does not have.
      sendJson(res, 200, body);
      return;
    }
    if (req.method === 'POST' && path === '/upload/image') {
      const form = await parseMultipart(req, body);
      const file = form.get('image');
      if (!file || typeof file === 'string') {
        res.writeHead(400).end();
        return;
      }
      const subfolder = String(form.get('subfolder') ?? '');
      const type = String(form.get('type') ?? 'input');
      const bytes = Buffer.from(await file.arrayBuffer());
      const name = file.name;
      inputs.set(subfolder ? `${subfolder}/${name}` : name, bytes);
      const size = await imageSize(bytes);
      fake.uploads.push({ name, subfolder, type, ...size });
      sendJson(res, 200, { name, subfolder, type });
      return;
    }
    if (req.method === 'POST' && path === '/prompt') {
      if (fake.failure === 'prompt-503') {
        res.writeHead(503, { 'content-type': 'text/html', 'retry-after': '3' }).end('<html>503 Service Temporarily Unavailable</html>');
        return;
      }
      const data = json();
      if (!data.prompt) {
        sendJson(res, 400, { error: { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} }, node_errors: {} });
        return;
      }
      if (fake.failure === 'invalid-prompt') {
        sendJson(res, 400, {
          error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} },
          node_errors: { '1': { errors: [{ type: 'value_not_in_list', message: 'Value not in list', details: "unet_name: 'qwen_image_fp8_e4m3fn.safetensors' not in []", extra_info: {} }], dependent_outputs: ['10'], class_type: 'UNETLoader' } },
        });
        return;
      }
      const problem = validate(data.prompt);
      if (problem) {
        sendJson(res, 400, problem);
        return;
      }
      const promptId = typeof data.prompt_id === 'string' ? data.prompt_id : randomUUID();
      const clientId = typeof data.client_id === 'string' ? data.client_id : undefined;
      const record = describePrompt(promptId, clientId, data.prompt as Workflow);
      fake.prompts.push(record);
      const job: Job = { id: promptId, number: ++counter, clientId, createTime: Date.now(), record, state: 'pending', interrupted: false };
      queue.push(job);
      broadcast('status', { status: queueInfo() });
      sendJson(res, 200, { prompt_id: promptId, number: job.number, node_errors: {} });
      void runQueue();
      return;
    }
    if (req.method === 'GET' && path === '/queue') {
      const row = (j: Job) => [j.number, j.id, j.record.workflow, { client_id: j.clientId }, []];
      sendJson(res, 200, { queue_running: running ? [row(running)] : [], queue_pending: queue.map(row) });
      return;
    }
    if (req.method === 'POST' && path === '/queue') {
      const data = json();
      for (const id of (data.delete as string[] | undefined) ?? []) {
        fake.queueDeletes.push(id);
        const index = queue.findIndex((j) => j.id === id);
        if (index >= 0) queue.splice(index, 1);
      }
      if (data.clear) queue.length = 0;
      res.writeHead(200).end();
      return;
    }
    if (req.method === 'POST' && path === '/interrupt') {
      const data = body.length ? json() : {};
      const promptId = typeof data.prompt_id === 'string' ? data.prompt_id : undefined;
      fake.interrupts.push({ promptId });
      if (running && (promptId === undefined || promptId === running.id)) running.interrupted = true;
      res.writeHead(200).end();
      return;
    }
    if (req.method === 'GET' && path.startsWith('/history/')) {
      const id = decodeURIComponent(path.slice('/history/'.length));
      const entry = history.get(id);
      fake.historyReads.push({ promptId: id, found: entry !== undefined });
      sendJson(res, 200, entry ? { [id]: entry } : {});
      return;
    }
    if (req.method === 'POST' && path === '/history') {
      for (const id of (json().delete as string[] | undefined) ?? []) {
        fake.historyDeletes.push(id);
        history.delete(id);
      }
      res.writeHead(200).end();
      return;
    }
    if (req.method === 'GET' && path === '/view') {
      const key = `${url.searchParams.get('type') ?? 'output'}/${url.searchParams.get('subfolder') ?? ''}/${url.searchParams.get('filename') ?? ''}`;
      const file = outputs.get(key);
      if (!file) {
        res.writeHead(404).end();
        return;
      }
      sendBytes(res, 200, file, 'image/png');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('404: Not Found');
  }

  const started: StartedServer = await startHttpServer(handle);
  const wss = new WebSocketServer({ noServer: true });
  started.server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://fake.local');
    if (url.pathname !== '/ws') {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const sid = url.searchParams.get('clientId') || randomUUID().replace(/-/g, '');
      sockets.get(sid)?.terminate();
      sockets.set(sid, ws);
      ws.on('close', () => {
        if (sockets.get(sid) === ws) sockets.delete(sid);
      });
      ws.send(JSON.stringify({ type: 'status', data: { status: queueInfo(), sid } }));
    });
  });
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
