/**
 * The socket driven message by message from a scripted server: when a prompt counts as finished
 * (`executing` null, not execution_success, which real servers send before writing the history),
 * and which preview frames it takes: only while our prompt executes, one per progress event, none
 * over the size limit, and a broken one is reported without failing the prompt.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { WebSocketServer, type WebSocket } from 'ws';
import type { EngineProgress } from '../../domain/types.ts';
import { decodePreview, MAX_PREVIEW_BYTES, parsePreviewFrame } from './comfyui-preview.ts';
import { ComfySocket, ComfySocketClosedError } from './comfyui-socket.ts';

/** server.py's frame: uint32 BE event type, uint32 BE image format (1 JPEG, 2 PNG), image bytes. */
function frame(event: number, format: number, image: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(event, 0);
  head.writeUInt32BE(format, 4);
  return Buffer.concat([head, image]);
}

function solid(r: number, g: number, b: number): Promise<Buffer> {
  return sharp({ create: { width: 8, height: 6, channels: 3, background: { r, g, b } } }).png().toBuffer();
}

/** A valid PNG over MAX_PREVIEW_BYTES: random pixels do not compress. */
function noisePng(): Promise<Buffer> {
  const side = 700;
  return sharp(randomBytes(side * side * 3), { raw: { width: side, height: side, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('parsePreviewFrame', () => {
  it('reads the event type and format, and refuses other events and formats', () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47]);
    assert.deepEqual(parsePreviewFrame(frame(1, 2, png)), { format: 'png', image: png });
    assert.equal(parsePreviewFrame(frame(1, 1, png))?.format, 'jpeg');
    assert.equal(parsePreviewFrame(frame(3, 2, png)), undefined, 'event 3 is progress text');
    assert.equal(parsePreviewFrame(frame(4, 2, png)), undefined, 'event 4 needs a metadata-aware client');
    assert.equal(parsePreviewFrame(frame(1, 7, png)), undefined);
    assert.equal(parsePreviewFrame(Buffer.from([0, 0, 0, 1])), undefined);
  });
});

describe('decodePreview', () => {
  it('decodes to RGB and refuses an image whose header is over the pixel limit', async () => {
    const small = await decodePreview('comfy-test', { format: 'png', image: await solid(10, 20, 30) });
    assert.deepEqual([small.width, small.height, small.data.length], [8, 6, 8 * 6 * 3]);
    // 3000x2000 of one colour is a few kilobytes of PNG and 18 MB of pixels.
    const bomb = await sharp({ create: { width: 3000, height: 2000, channels: 3, background: '#808080' } }).png().toBuffer();
    assert.ok(bomb.length < MAX_PREVIEW_BYTES);
    await assert.rejects(decodePreview('comfy-test', { format: 'png', image: bomb }), /over the \d+ px limit/);
  });
});

describe('ComfySocket previews', () => {
  let wss: WebSocketServer;
  let url: string;
  let serverSide: Promise<WebSocket>;

  before(async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws?clientId=test`;
    serverSide = new Promise((resolve) => wss.once('connection', resolve));
  });
  after(() => new Promise<void>((r) => wss.close(() => r())));

  // A regression here tends to leave the scripted exchange waiting; fail it instead of hanging.
  it('takes only our prompt\'s previews, one per progress event, within the size limit', { timeout: 10_000 }, async () => {
    const ours = 'prompt-ours';
    const other = 'prompt-other';
    const socket = await ComfySocket.connect('comfy-test', url, { signal: new AbortController().signal, timeoutMs: 2000 });
    const ws = await serverSide;
    const events: EngineProgress[] = [];
    const errors: unknown[] = [];
    const gotPreview = deferred();
    const gotError = deferred();
    const done = socket.waitForPrompt(ours, {
      signal: new AbortController().signal,
      onProgress: (p) => {
        events.push(p);
        if (p.preview) gotPreview.resolve();
      },
      onPreviewError: (err) => {
        errors.push(err);
        gotError.resolve();
      },
    });
    const json = (type: string, data: Record<string, unknown>) => ws.send(JSON.stringify({ type, data }));

    // Someone else's prompt runs first; its untagged preview frames must not be taken as ours.
    json('execution_start', { prompt_id: other });
    json('progress', { value: 1, max: 2, prompt_id: other, node: '3' });
    ws.send(frame(1, 2, await solid(255, 0, 0)));
    // A server too old to tag progress: the step cannot be told apart and is reported as before,
    // but the frame after it is not ours, since the prompt executing is known to be another.
    json('progress', { value: 5, max: 9 });
    ws.send(frame(1, 2, await solid(255, 0, 255)));
    json('execution_success', { prompt_id: other });
    json('executing', { node: null, prompt_id: other });
    // Ours: a frame before any progress event is not taken, the first after one is, a second is not.
    json('execution_start', { prompt_id: ours });
    ws.send(frame(1, 2, await solid(255, 255, 0)));
    json('progress', { value: 1, max: 2, prompt_id: ours, node: '3' });
    ws.send(frame(1, 2, await solid(0, 0, 255)));
    ws.send(frame(1, 2, await solid(0, 255, 0)));
    await gotPreview.promise;
    // Next step: an oversized frame and a text event are skipped unread; a broken image is reported.
    json('progress', { value: 2, max: 2, prompt_id: ours, node: '3' });
    const oversized = await noisePng();
    assert.ok(oversized.length > MAX_PREVIEW_BYTES, `${oversized.length} bytes`);
    ws.send(frame(1, 2, oversized));
    ws.send(frame(3, 2, Buffer.from('node 3: sampling')));
    ws.send(frame(1, 2, Buffer.from('not a png at all')));
    await gotError.promise;
    json('execution_success', { prompt_id: ours });
    json('executing', { node: null, prompt_id: ours });
    assert.equal(await done, 'history-written');
    socket.close();

    assert.deepEqual(events.map((e) => [e.step, e.totalSteps, e.preview ? 'preview' : '-']), [[5, 9, '-'], [1, 2, '-'], [1, 2, 'preview'], [2, 2, '-']]);
    const preview = events[2]!.preview!;
    assert.deepEqual([preview.width, preview.height], [8, 6]);
    assert.deepEqual(Array.from(preview.data.subarray(0, 3)), [0, 0, 255]);
    assert.equal(errors.length, 1);
  });
});

describe('ComfySocket completion', () => {
  let wss: WebSocketServer;
  let url: string;
  const connections: WebSocket[] = [];
  const waiting: Array<(ws: WebSocket) => void> = [];

  before(async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws?clientId=test`;
    wss.on('connection', (ws) => {
      const waiter = waiting.shift();
      if (waiter) waiter(ws);
      else connections.push(ws);
    });
  });
  // wss.close waits for open connections; a failed test may leave one.
  after(() => {
    for (const ws of wss.clients) ws.terminate();
    return new Promise<void>((r) => wss.close(() => r()));
  });

  /** A client socket, and the server's end of it. */
  async function connect(): Promise<{ socket: ComfySocket; send: (type: string, data: Record<string, unknown>) => void; server: WebSocket }> {
    const server = new Promise<WebSocket>((resolve) => {
      const ready = connections.shift();
      if (ready) resolve(ready);
      else waiting.push(resolve);
    });
    const socket = await ComfySocket.connect('comfy-test', url, { signal: new AbortController().signal, timeoutMs: 2000 });
    const ws = await server;
    return { socket, server: ws, send: (type, data) => ws.send(JSON.stringify({ type, data })) };
  }

  it('waits past execution_success for `executing` null, of our prompt only', { timeout: 10_000 }, async () => {
    const { socket, send } = await connect();
    // A grace long enough that only `executing` null can end the wait within the test's timeout.
    // The probe: a progress event is reported only while the wait goes on (a finished wait stops
    // listening), and events are handled in order, so its report proves the ones before did not end it.
    const probe = deferred();
    const done = socket.waitForPrompt('p1', {
      signal: new AbortController().signal,
      successGraceMs: 60_000,
      onProgress: (p) => p.step === 99 && probe.resolve(),
    });
    send('execution_start', { prompt_id: 'p1', timestamp: 1 });
    send('execution_success', { prompt_id: 'p1', timestamp: 2 });
    send('status', { status: { exec_info: { queue_remaining: 1 } } });
    send('executing', { node: null, prompt_id: 'p0' });
    send('progress', { value: 99, max: 100, prompt_id: 'p1', node: '3' });
    await probe.promise;
    send('executing', { node: null, prompt_id: 'p1' });
    assert.equal(await done, 'history-written');
    assert.equal(socket.hasEnded('p1'), true);
    socket.close();
  });

  it('after execution_success, a closed socket or a missing `executing` null still means success, history pending', { timeout: 10_000 }, async () => {
    const closed = await connect();
    const first = closed.socket.waitForPrompt('p2', { signal: new AbortController().signal, successGraceMs: 60_000 });
    closed.send('execution_success', { prompt_id: 'p2', timestamp: 2 });
    closed.server.close(1001);
    assert.equal(await first, 'history-pending');

    const silent = await connect();
    const second = silent.socket.waitForPrompt('p3', { signal: new AbortController().signal, successGraceMs: 1 });
    silent.send('execution_success', { prompt_id: 'p3', timestamp: 2 });
    assert.equal(await second, 'history-pending');
    silent.socket.close();
  });

  it('a socket closed before execution_success is an error the engine checks against history', { timeout: 10_000 }, async () => {
    const { socket, send, server } = await connect();
    const done = socket.waitForPrompt('p4', { signal: new AbortController().signal });
    send('execution_start', { prompt_id: 'p4', timestamp: 1 });
    server.terminate();
    await assert.rejects(done, (err: unknown) => err instanceof ComfySocketClosedError);
    assert.equal(socket.hasStarted('p4'), true);
    assert.equal(socket.hasEnded('p4'), false);
  });
});
