/**
 * The fake ComfyUI's public face (what tests read and set) and the shapes it keeps inside: a
 * queued prompt and a history entry as ComfyUI's task_done writes it.
 */
import type { WebSocket } from 'ws';
import type { FakeObjectInfo } from '../fake-comfyui-object-info.ts';

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

export type Node = { class_type: string; inputs: Record<string, unknown> };
export type Workflow = Record<string, Node>;

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

export interface Job {
  id: string;
  number: number;
  clientId: string | undefined;
  createTime: number;
  record: FakeComfyPrompt;
  state: 'pending' | 'running' | 'done';
  interrupted: boolean;
}

/** A history entry as task_done writes it (comfyui.md, "GET /history/{prompt_id}"). */
export interface HistoryEntry {
  prompt: [number, string, Workflow, Record<string, unknown>, string[]];
  outputs: Record<string, unknown>;
  status: { status_str: 'success' | 'error'; completed: boolean; messages: Array<[string, Record<string, unknown>]> };
  meta: Record<string, unknown>;
}

/** Output nodes of the workflows we send (SaveImage, and PreviewImage for temp outputs). */
export const OUTPUT_CLASSES = new Set(['SaveImage', 'PreviewImage']);

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

export interface FakeComfyOptions {
  steps?: number;
  stepDelayMs?: number;
  /** Default 5 ms: long enough that a client reading history on execution_success finds `{}`. */
  historyDelayMs?: number;
  previews?: FakeComfyPreviews;
}

/** Everything one fake server holds; each part of the fake works on this, never on module state. */
export interface FakeComfyState {
  readonly fake: FakeComfyui;
  /** Connected websocket clients by their clientId (`sid`). */
  readonly sockets: Map<string, WebSocket>;
  /** Uploaded files by `subfolder/name` (the input directory). */
  readonly inputs: Map<string, Buffer>;
  /** Saved images by `type/subfolder/filename` (output and temp directories). */
  readonly outputs: Map<string, Buffer>;
  readonly history: Map<string, HistoryEntry>;
  readonly queue: Job[];
  running: Job | undefined;
  /** Prompt numbers and file name counter, shared as in ComfyUI. */
  counter: number;
  readonly runningWaiters: Array<() => void>;
  historyHold: Promise<void> | undefined;
  /** Pauses end (rejecting) when the fake closes, so no job keeps the process alive after a test. */
  readonly closing: AbortController;
}
