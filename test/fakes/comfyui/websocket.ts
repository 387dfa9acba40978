/**
 * The fake's websocket side (/ws?clientId=…): the greeting `status` with the `sid`, messages to
 * one client or to every client, and sampler previews as binary frames, as ComfyUI's server.py
 * sends them (../../../../shared/protocols/comfyui.md).
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import sharp from 'sharp';
import { WebSocketServer } from 'ws';
import type { FakeComfyState, Job } from './types.ts';

/** The preview colour for a step, so tests can tell which step a preview came from. */
export function fakePreviewColour(step: number): { r: number; g: number; b: number } {
  return { r: (step * 40) % 256, g: 160, b: 255 - ((step * 40) % 256) };
}

export function queueInfo(state: FakeComfyState): Record<string, unknown> {
  return { exec_info: { queue_remaining: state.queue.length + (state.running ? 1 : 0) } };
}

/** server.py's send_sync to one sid: nothing when that client is not connected. */
export function send(state: FakeComfyState, clientId: string | undefined, type: string, data: Record<string, unknown>): void {
  const ws = clientId ? state.sockets.get(clientId) : undefined;
  if (ws && ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type, data }));
}

/** server.py's send_sync with no sid: every connected client gets it. */
export function broadcast(state: FakeComfyState, type: string, data: Record<string, unknown>): void {
  const text = JSON.stringify({ type, data });
  for (const ws of state.sockets.values()) if (ws.readyState === ws.OPEN) ws.send(text);
}

/**
 * One preview frame as server.py's send_image writes it: uint32 BE event 1 (PREVIEW_IMAGE),
 * uint32 BE format (1 JPEG, 2 PNG), the image. Its size is the latent's (width/8 by height/8)
 * scaled to fit --preview-size, 512 by default, as ImageOps.contain does (up or down).
 */
export async function sendPreview(state: FakeComfyState, clientId: string | undefined, job: Job, step: number): Promise<void> {
  const latentW = Math.max(1, Math.round((job.record.width ?? 512) / 8));
  const latentH = Math.max(1, Math.round((job.record.height ?? 512) / 8));
  const fit = 512 / Math.max(latentW, latentH);
  const width = Math.max(1, Math.round(latentW * fit));
  const height = Math.max(1, Math.round(latentH * fit));
  const canvas = sharp({ create: { width, height, channels: 3, background: fakePreviewColour(step) } });
  const format = state.fake.previews === 'jpeg' ? 1 : 2;
  const image = format === 1 ? await canvas.jpeg({ quality: 95 }).toBuffer() : await canvas.png({ compressionLevel: 1 }).toBuffer();
  const head = Buffer.alloc(8);
  head.writeUInt32BE(1, 0);
  head.writeUInt32BE(format, 4);
  const ws = clientId ? state.sockets.get(clientId) : undefined;
  if (ws && ws.readyState === ws.OPEN) ws.send(Buffer.concat([head, image]), { binary: true });
}

/** Accepts /ws upgrades; a second connection with the same clientId replaces the first. */
export function attachWebsocket(server: Server, state: FakeComfyState): WebSocketServer {
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://fake.local');
    if (url.pathname !== '/ws') {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const sid = url.searchParams.get('clientId') || randomUUID().replace(/-/g, '');
      state.sockets.get(sid)?.terminate();
      state.sockets.set(sid, ws);
      ws.on('close', () => {
        if (state.sockets.get(sid) === ws) state.sockets.delete(sid);
      });
      ws.send(JSON.stringify({ type: 'status', data: { status: queueInfo(state), sid } }));
    });
  });
  return wss;
}
