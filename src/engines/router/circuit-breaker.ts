/**
 * Per-backend circuit breaker (closed -> open after N consecutive failures -> half-open after
 * resetMs, where exactly one probe request is let through; its outcome closes or re-opens it).
 * Time is injected so tests do not sleep.
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  failureThreshold: number;
  resetMs: number;
  now?: () => number;
}

export class CircuitBreaker {
  private readonly failureThreshold: number;
  private readonly resetMs: number;
  private readonly now: () => number;
  private openedAtMs: number | undefined;
  private probeInFlight = false;
  private consecutive = 0;

  constructor(options: CircuitBreakerOptions) {
    this.failureThreshold = options.failureThreshold;
    this.resetMs = options.resetMs;
    this.now = options.now ?? Date.now;
  }

  get state(): CircuitState {
    if (this.openedAtMs === undefined) return 'closed';
    return this.now() - this.openedAtMs >= this.resetMs ? 'half-open' : 'open';
  }

  get consecutiveFailures(): number {
    return this.consecutive;
  }

  /** Milliseconds until an open circuit lets a probe through (0 when it already would). */
  msUntilProbe(): number {
    if (this.openedAtMs === undefined) return 0;
    return Math.max(0, this.openedAtMs + this.resetMs - this.now());
  }

  /** May a request be sent now? Half-open allows one probe at a time. */
  canPass(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open') return false;
    return !this.probeInFlight;
  }

  /** Call when a request is sent; returns a token telling whether it is the half-open probe. */
  onDispatch(): { isProbe: boolean } {
    if (this.state === 'half-open') {
      this.probeInFlight = true;
      return { isProbe: true };
    }
    return { isProbe: false };
  }

  onSuccess(ticket: { isProbe: boolean }): void {
    if (ticket.isProbe) this.probeInFlight = false;
    this.consecutive = 0;
    this.openedAtMs = undefined;
  }

  onFailure(ticket: { isProbe: boolean }): void {
    if (ticket.isProbe) this.probeInFlight = false;
    this.consecutive += 1;
    if (ticket.isProbe || this.consecutive >= this.failureThreshold) this.openedAtMs = this.now();
  }

  /** When the circuit last opened (this clock's ms), or undefined while it is closed. */
  get openedAt(): number | undefined {
    return this.openedAtMs;
  }

  /**
   * Another process's breaker for the same backend changed (circuit-share.ts): 'open' at `atMs` opens this one too
   * (the later opening wins, so the probe waits resetMs from the newest failure anywhere); 'closed' closes it and
   * clears the failure count. A probe of this process still in flight reports as usual.
   */
  adopt(state: 'open' | 'closed', atMs: number): void {
    if (state === 'closed') {
      this.openedAtMs = undefined;
      this.consecutive = 0;
      return;
    }
    if (this.openedAtMs === undefined || atMs > this.openedAtMs) this.openedAtMs = atMs;
  }

  /** The request ended without telling anything about the backend (caller aborted, input rejected). */
  onNeutral(ticket: { isProbe: boolean }): void {
    if (ticket.isProbe) this.probeInFlight = false;
  }
}
