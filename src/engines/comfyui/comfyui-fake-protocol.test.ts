/**
 * The ComfyUI fake against ../../../shared/protocols/comfyui.md, over a raw websocket and plain
 * HTTP: the events of a prompt in the documented order and shapes, and the gap the engine must
 * survive (execution_success is out, the history still answers `{}`, `executing` null follows the
 * history). The engine tests lean on this fake, so it must not be friendlier than a real server.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startFakeComfyui, type FakeComfyui } from '../../../test/fakes/fake-comfyui.ts';

interface Message {
  type: string;
  data: Record<string, unknown>;
}

/** A websocket client that keeps every JSON message and lets a test wait for one. */
class Listener {
  readonly messages: Message[] = [];
  private waiters: Array<{ test: (m: Message) => boolean; resolve: (m: Message) => void }> = [];
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (raw, isBinary) => {
      if (isBinary) return;
      const message = JSON.parse(raw.toString()) as Message;
      this.messages.push(message);
      for (const w of this.waiters.filter((x) => x.test(message))) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(message);
      }
    });
  }
  static async open(url: string, clientId: string): Promise<Listener> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws?clientId=${clientId}`);
    const listener = new Listener(ws);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return listener;
  }
  next(test: (m: Message) => boolean): Promise<Message> {
    const seen = this.messages.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ test, resolve }));
  }
  close(): void {
    this.ws.close();
  }
}

const WORKFLOW = {
  '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'qwen.safetensors' } },
  '6': { class_type: 'CLIPTextEncode', inputs: { text: 'a fox', clip: ['4', 1] } },
  '7': { class_type: 'CLIPTextEncode', inputs: { text: '', clip: ['4', 1] } },
  '5': { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1 } },
  '3': { class_type: 'KSampler', inputs: { seed: 7, steps: 2, cfg: 1, sampler_name: 'euler', scheduler: 'simple', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] } },
  '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
  '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'mine', images: ['8', 0] } },
};

async function queuePrompt(fake: FakeComfyui, clientId: string): Promise<string> {
  const res = await fetch(`${fake.url}/prompt`, { method: 'POST', body: JSON.stringify({ prompt: WORKFLOW, client_id: clientId }) });
  const body = (await res.json()) as { prompt_id: string; number: number; node_errors: unknown };
  assert.deepEqual(Object.keys(body), ['prompt_id', 'number', 'node_errors']);
  return body.prompt_id;
}

async function history(fake: FakeComfyui, promptId: string): Promise<Record<string, any>> {
  return (await (await fetch(`${fake.url}/history/${promptId}`)).json()) as Record<string, any>;
}

const isDone = (id: string) => (m: Message) => m.type === 'executing' && m.data.node === null && m.data.prompt_id === id;
const keys = (m: Message | undefined) => Object.keys(m?.data ?? {});

describe('the ComfyUI fake follows the documented protocol', () => {
  let fake: FakeComfyui;
  before(async () => {
    fake = await startFakeComfyui({ steps: 2, stepDelayMs: 1 });
  });
  after(() => fake.close());
  beforeEach(() => fake.reset());

  it('a prompt: its events in order, execution_success before the history, `executing` null after it', { timeout: 10_000 }, async () => {
    const ws = await Listener.open(fake.url, 'client-a');
    const release = fake.holdHistory();
    const id = await queuePrompt(fake, 'client-a');
    await ws.next((m) => m.type === 'execution_success');
    assert.deepEqual(await history(fake, id), {}, 'no history yet when execution_success is out');
    assert.equal(ws.messages.some(isDone(id)), false, '`executing` null waits for the history');
    release();
    await ws.next(isDone(id));
    ws.close();

    // comfyui.md "WebSocket /ws": the smoke run's order; progress_state is checked below.
    const flow = ws.messages.filter((m) => m.type !== 'progress_state');
    const label = (m: Message) => (m.type === 'executing' || m.type === 'executed' ? `${m.type} ${String(m.data.node)}` : m.type);
    assert.deepEqual(flow.map(label), [
      'status', 'status', 'execution_start', 'execution_cached',
      'executing 4', 'executing 6', 'executing 7', 'executing 5', 'executing 3', 'progress', 'progress',
      'executing 8', 'executing 9', 'executed 9', 'execution_success', 'status', 'executing null',
    ]);
    assert.deepEqual(flow[0]!.data, { status: { exec_info: { queue_remaining: 0 } }, sid: 'client-a' });
    assert.deepEqual(flow[1]!.data, { status: { exec_info: { queue_remaining: 1 } } });
    assert.deepEqual(keys(flow[2]), ['prompt_id', 'timestamp']);
    assert.deepEqual(keys(flow[3]), ['nodes', 'prompt_id', 'timestamp']);
    assert.deepEqual(flow[4]!.data, { node: '4', display_node: '4', prompt_id: id });
    assert.deepEqual(flow[9]!.data, { value: 1, max: 2, prompt_id: id, node: '3' });
    const executed = flow[13]!.data;
    assert.deepEqual(Object.keys(executed), ['node', 'display_node', 'output', 'prompt_id']);
    assert.deepEqual(Object.keys((executed.output as { images: object[] }).images[0]!), ['filename', 'subfolder', 'type']);
    assert.deepEqual(keys(flow[14]), ['prompt_id', 'timestamp']);
    assert.deepEqual(flow[15]!.data, { status: { exec_info: { queue_remaining: 0 } } });
    assert.deepEqual(flow[16]!.data, { node: null, prompt_id: id });
    // Each node is announced running by progress_state just before its `executing`.
    ws.messages.forEach((m, i) => {
      if (m.type !== 'executing' || m.data.node === null) return;
      const state = ws.messages[i - 1]!;
      assert.equal(state.type, 'progress_state');
      assert.deepEqual((state.data.nodes as Record<string, any>)[String(m.data.node)], {
        value: 0, max: 1, state: 'running', node_id: m.data.node, prompt_id: id, display_node_id: m.data.node, parent_node_id: null, real_node_id: m.data.node,
      });
    });

    // comfyui.md "GET /history/{prompt_id}", done.
    const entry = (await history(fake, id))[id];
    assert.deepEqual(Object.keys(entry), ['prompt', 'outputs', 'status', 'meta']);
    assert.equal(entry.prompt.length, 5);
    assert.deepEqual([entry.prompt[1], entry.prompt[3].client_id, entry.prompt[4]], [id, 'client-a', ['9']]);
    assert.equal(typeof entry.prompt[3].create_time, 'number');
    assert.deepEqual(entry.outputs, { '9': executed.output });
    assert.deepEqual([entry.status.status_str, entry.status.completed], ['success', true]);
    assert.deepEqual(entry.status.messages.map((m: [string]) => m[0]), ['execution_start', 'execution_cached', 'execution_success']);
    assert.deepEqual(entry.status.messages[2][1], flow[14]!.data, 'the same message as on the socket');
    assert.deepEqual(entry.meta, { '9': { node_id: '9', display_node: '9', parent_node: null, real_node_id: '9' } });
  });

  it('an execution error: execution_error, then the history with status error, then `executing` null', { timeout: 10_000 }, async () => {
    fake.failure = 'execution-error';
    const ws = await Listener.open(fake.url, 'client-b');
    const release = fake.holdHistory();
    const id = await queuePrompt(fake, 'client-b');
    const error = await ws.next((m) => m.type === 'execution_error');
    assert.deepEqual(await history(fake, id), {});
    release();
    await ws.next(isDone(id));
    ws.close();
    assert.deepEqual(keys(error), [
      'prompt_id', 'node_id', 'node_type', 'executed', 'exception_message', 'exception_type', 'traceback', 'current_inputs', 'current_outputs', 'timestamp',
    ]);
    assert.deepEqual([error.data.node_id, error.data.node_type, error.data.executed], ['3', 'KSampler', ['4', '6', '7', '5']]);
    assert.ok(Array.isArray(error.data.current_outputs));
    const tail = ws.messages.slice(ws.messages.indexOf(error)).map((m) => m.type);
    assert.deepEqual(tail, ['execution_error', 'status', 'executing']);
    const entry = (await history(fake, id))[id];
    assert.deepEqual([entry.status.status_str, entry.status.completed], ['error', false]);
    assert.deepEqual(entry.status.messages.map((m: [string]) => m[0]), ['execution_start', 'execution_cached', 'execution_error']);
    assert.deepEqual(entry.status.messages[2][1], error.data, '"…same as ws…"');
  });

  it('an interrupt: execution_interrupted to every client, then the history, then `executing` null', { timeout: 10_000 }, async () => {
    // Long enough that the interrupt lands during sampling on however busy a machine.
    fake.steps = 1000;
    fake.stepDelayMs = 20;
    const ws = await Listener.open(fake.url, 'client-c');
    const bystander = await Listener.open(fake.url, 'client-d');
    const id = await queuePrompt(fake, 'client-c');
    await ws.next((m) => m.type === 'progress');
    await fetch(`${fake.url}/interrupt`, { method: 'POST', body: JSON.stringify({ prompt_id: id }) });
    const interrupted = await ws.next((m) => m.type === 'execution_interrupted');
    await ws.next(isDone(id));
    const seenByOther = await bystander.next((m) => m.type === 'execution_interrupted');
    ws.close();
    bystander.close();
    assert.deepEqual(keys(interrupted), ['prompt_id', 'node_id', 'node_type', 'executed', 'timestamp']);
    assert.deepEqual([interrupted.data.node_id, interrupted.data.node_type, interrupted.data.executed], ['3', 'KSampler', ['4', '6', '7', '5']]);
    assert.deepEqual(seenByOther.data, interrupted.data);
    assert.equal(bystander.messages.some((m) => m.type === 'executing' || m.type === 'progress'), false, "another client's prompt events are not broadcast");
    const entry = (await history(fake, id))[id];
    assert.deepEqual([entry.status.status_str, entry.status.completed], ['error', false]);
    assert.deepEqual(entry.status.messages.at(-1), ['execution_interrupted', interrupted.data]);
  });
});
