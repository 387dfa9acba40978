import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitBreaker } from './circuit-breaker.ts';

describe('CircuitBreaker.adopt (another process\'s breaker for the same backend changed)', () => {
  function breaker() {
    let now = 1_000;
    const b = new CircuitBreaker({ failureThreshold: 3, resetMs: 100, now: () => now });
    return { b, advance: (ms: number) => (now += ms) };
  }

  it('opens a closed circuit at the other process\'s time, and the probe waits resetMs from then', () => {
    const { b, advance } = breaker();
    b.adopt('open', 950);
    assert.equal(b.state, 'open');
    assert.equal(b.msUntilProbe(), 50);
    advance(50);
    assert.equal(b.state, 'half-open');
  });

  it('keeps the later of two openings', () => {
    const { b } = breaker();
    for (let i = 0; i < 3; i++) b.onFailure(b.onDispatch());
    assert.equal(b.openedAt, 1_000);
    b.adopt('open', 900);
    assert.equal(b.openedAt, 1_000);
    b.adopt('open', 1_040);
    assert.equal(b.openedAt, 1_040);
  });

  it('closes an open circuit and forgets its failures', () => {
    const { b } = breaker();
    for (let i = 0; i < 3; i++) b.onFailure(b.onDispatch());
    b.adopt('closed', 1_010);
    assert.equal(b.state, 'closed');
    assert.equal(b.consecutiveFailures, 0);
    assert.equal(b.openedAt, undefined);
  });
});
