/**
 * The fake's HTTP routes, with ComfyUI's optional /api prefix: system stats, the node catalogue,
 * uploads and views (files.ts), the prompt queue (submit, list, delete, interrupt) and history.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, sendJson } from '../../../src/engines/testing/fake-http.ts';
import { catalogueClasses, objectInfoFor } from '../fake-comfyui-object-info.ts';
import { runQueue } from './execution.ts';
import { handleUpload, handleView } from './files.ts';
import { describePrompt, validatePrompt } from './prompts.ts';
import type { FakeComfyState, Job, Workflow } from './types.ts';
import { broadcast, queueInfo } from './websocket.ts';

export async function handleRequest(state: FakeComfyState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { fake } = state;
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
    const answer: Record<string, unknown> = {};
    for (const c of classes) {
      const entry = objectInfoFor(fake.objectInfo, c, [...state.inputs.keys()]);
      if (entry) answer[c] = entry;
    }
    // server.py answers `{}` for a class it does not have.
    sendJson(res, 200, answer);
    return;
  }
  if (req.method === 'POST' && path === '/upload/image') {
    await handleUpload(state, req, res, body);
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
    const problem = validatePrompt(state, data.prompt);
    if (problem) {
      sendJson(res, 400, problem);
      return;
    }
    const promptId = typeof data.prompt_id === 'string' ? data.prompt_id : randomUUID();
    const clientId = typeof data.client_id === 'string' ? data.client_id : undefined;
    const record = describePrompt(promptId, clientId, data.prompt as Workflow);
    fake.prompts.push(record);
    const job: Job = { id: promptId, number: ++state.counter, clientId, createTime: Date.now(), record, state: 'pending', interrupted: false };
    state.queue.push(job);
    broadcast(state, 'status', { status: queueInfo(state) });
    sendJson(res, 200, { prompt_id: promptId, number: job.number, node_errors: {} });
    void runQueue(state);
    return;
  }
  if (req.method === 'GET' && path === '/queue') {
    const row = (j: Job) => [j.number, j.id, j.record.workflow, { client_id: j.clientId }, []];
    sendJson(res, 200, { queue_running: state.running ? [row(state.running)] : [], queue_pending: state.queue.map(row) });
    return;
  }
  if (req.method === 'POST' && path === '/queue') {
    const data = json();
    for (const id of (data.delete as string[] | undefined) ?? []) {
      fake.queueDeletes.push(id);
      const index = state.queue.findIndex((j) => j.id === id);
      if (index >= 0) state.queue.splice(index, 1);
    }
    if (data.clear) state.queue.length = 0;
    res.writeHead(200).end();
    return;
  }
  if (req.method === 'POST' && path === '/interrupt') {
    const data = body.length ? json() : {};
    const promptId = typeof data.prompt_id === 'string' ? data.prompt_id : undefined;
    fake.interrupts.push({ promptId });
    if (state.running && (promptId === undefined || promptId === state.running.id)) state.running.interrupted = true;
    res.writeHead(200).end();
    return;
  }
  if (req.method === 'GET' && path.startsWith('/history/')) {
    const id = decodeURIComponent(path.slice('/history/'.length));
    const entry = state.history.get(id);
    fake.historyReads.push({ promptId: id, found: entry !== undefined });
    sendJson(res, 200, entry ? { [id]: entry } : {});
    return;
  }
  if (req.method === 'POST' && path === '/history') {
    for (const id of (json().delete as string[] | undefined) ?? []) {
      fake.historyDeletes.push(id);
      state.history.delete(id);
    }
    res.writeHead(200).end();
    return;
  }
  if (req.method === 'GET' && path === '/view') {
    handleView(state, url, res);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('404: Not Found');
}
