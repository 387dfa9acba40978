/**
 * The fake's prompt worker: one prompt at a time, nodes in dependency order, the websocket events
 * in the order a real ComfyUI v0.8.0 sends them (../../../../shared/protocols/comfyui.md, "The
 * order that matters"): `execution_success` (or `execution_error` / `execution_interrupted`)
 * first, the history entry `historyDelayMs` later (GET /history/{id} answers `{}` meanwhile),
 * then `status`, then `executing` with `node: null`. Nothing is cached, like a server started
 * with --cache-none: `execution_cached` always lists no nodes.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { solidPng } from '../../../src/engines/testing/fake-http.ts';
import { OUTPUT_CLASSES, type FakeComfyState, type HistoryEntry, type Job, type Workflow } from './types.ts';
import { broadcast, queueInfo, send, sendPreview } from './websocket.ts';

function pause(state: FakeComfyState, ms: number): Promise<void> {
  return delay(ms, undefined, { signal: state.closing.signal });
}

/** main.py's prompt_worker: execute, then task_done (history, status), then `executing` null. */
export async function runQueue(state: FakeComfyState): Promise<void> {
  if (state.running) return;
  const job = state.queue.shift();
  if (!job) return;
  state.running = job;
  job.state = 'running';
  const leave = (): void => {
    job.state = 'done';
    if (state.running === job) state.running = undefined;
  };
  try {
    const entry = await execute(state, job);
    await pause(state, state.fake.historyDelayMs);
    await state.historyHold;
    // task_done writes the history and takes the prompt off the running list in one step.
    state.history.set(job.id, entry);
    leave();
    broadcast(state, 'status', { status: queueInfo(state) });
    send(state, job.clientId, 'executing', { node: null, prompt_id: job.id });
  } catch (err) {
    if (!state.closing.signal.aborted) throw err;
  } finally {
    leave();
    if (!state.closing.signal.aborted) void runQueue(state);
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
async function execute(state: FakeComfyState, job: Job): Promise<HistoryEntry> {
  const { fake } = state;
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
    if (toEveryone) broadcast(state, type, stamped);
    else send(state, client, type, stamped);
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
    send(state, client, 'progress_state', { prompt_id: pid, nodes });
  };

  addMessage('execution_start', { prompt_id: pid });
  for (const w of state.runningWaiters.splice(0)) w();
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
    send(state, client, 'executing', { node: id, display_node: id, prompt_id: pid });
    // nodes.before_node_execution: an interrupt takes effect as the next node starts.
    if (job.interrupted) return interrupted(id);
    if (node.class_type.startsWith('KSampler')) {
      for (let step = 1; step <= fake.steps; step++) {
        await pause(state, fake.stepDelayMs);
        // main.py's progress hook checks for an interrupt on every step.
        if (job.interrupted) return interrupted(id);
        progress.set(id, { value: step, max: fake.steps, state: 'running' });
        sendProgressState();
        send(state, client, 'progress', { value: step, max: fake.steps, prompt_id: pid, node: id });
        // The hook sends the progress event, then that step's preview.
        if (fake.previews !== 'none') await sendPreview(state, client, job, step);
        if (fake.failure === 'ws-close-mid-job' && step === 2) {
          state.sockets.get(client ?? '')?.terminate();
          // The server keeps "working" until interrupted or for a while, like a hung GPU.
          for (let i = 0; i < 200 && !job.interrupted; i++) await pause(state, 10);
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
      const images = fake.failure === 'no-output' ? [] : [await saveImage(state, job, node.class_type === 'SaveImage' ? 'output' : 'temp')];
      uiOutputs[id] = { images };
      meta[id] = { node_id: id, display_node: id, parent_node: null, real_node_id: id };
      send(state, client, 'executed', { node: id, display_node: id, output: { images }, prompt_id: pid });
    }
    progress.set(id, { ...progress.get(id)!, state: 'finished' });
    sendProgressState();
    executed.push(id);
  }
  addMessage('execution_success', { prompt_id: pid });
  // close(), not terminate(): execution_success is still in the send buffer and must get out.
  if (fake.failure === 'ws-close-after-success') state.sockets.get(client ?? '')?.close(1001, 'going away');
  return entry(true);
}

/** Writes the latent-sized image the way SaveImage names its files. */
async function saveImage(state: FakeComfyState, job: Job, type: 'output' | 'temp'): Promise<{ filename: string; subfolder: string; type: string }> {
  const { fake } = state;
  const width = (job.record.width ?? 512) + (fake.failure === 'wrong-size' ? 32 : 0);
  const height = job.record.height ?? 512;
  const filename = `qwen-image-api_${String(++state.counter).padStart(5, '0')}_.png`;
  state.outputs.set(`${type}//${filename}`, fake.failure === 'garbage-output' ? Buffer.from('definitely not a png') : await solidPng(width, height, job.record.seed ?? 0));
  return { filename, subfolder: '', type };
}
