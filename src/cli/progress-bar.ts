/**
 * The progress display of `cli generate`, on stderr: on a terminal one line redrawn in place
 * ("[#######.....] 12/20  running"); elsewhere (a log, a pipe) one plain line per change, so the
 * log stays readable and nothing depends on carriage returns.
 */

export interface ProgressState {
  phase: 'submitted' | 'queued' | 'running' | 'done';
  queuePosition?: number | null;
  step?: number;
  steps?: number | null;
}

export interface ProgressOutput {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const BAR_WIDTH = 24;

export function describe(state: ProgressState): string {
  if (state.phase === 'queued') {
    const pos = state.queuePosition;
    return pos === null || pos === undefined ? 'queued' : pos === 0 ? 'queued: next in line' : `queued: ${pos} ahead`;
  }
  if (state.phase === 'running') {
    if (state.step === undefined) return 'running';
    return state.steps ? `step ${state.step}/${state.steps}` : `step ${state.step}`;
  }
  return state.phase;
}

function bar(state: ProgressState): string {
  const fraction = state.phase === 'done' ? 1 : state.step !== undefined && state.steps ? Math.min(1, state.step / state.steps) : 0;
  const filled = Math.round(fraction * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
}

export class ProgressBar {
  private last = '';
  private drawn = false;
  constructor(private readonly out: ProgressOutput, private readonly enabled = true) {}

  update(state: ProgressState): void {
    if (!this.enabled) return;
    const text = describe(state);
    if (text === this.last) return;
    this.last = text;
    if (this.out.isTTY) {
      const line = `${bar(state)} ${text}`;
      const width = this.out.columns || 80; // 0 or unset when the terminal does not say
      this.out.write(`\r\x1b[2K${line.slice(0, Math.max(10, width - 1))}`);
      this.drawn = true;
    } else {
      this.out.write(`${text}\n`);
    }
  }

  /** Ends the redrawn line so later output starts on a fresh one. */
  finish(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }

  /** A message of its own (submitted, canceled, ...) that must not be drawn over. */
  note(message: string): void {
    if (!this.enabled) return;
    this.finish();
    this.out.write(`${message}\n`);
    this.last = '';
  }
}
