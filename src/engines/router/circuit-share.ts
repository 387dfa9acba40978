/**
 * Circuit breakers shared by the worker processes in front of the same backends: when one process's breaker for a
 * backend opens (or closes again), the others hear of it and follow, so a dead GPU server costs the whole fleet
 * `failureThreshold` failed requests instead of that many per process. The breaker itself stays in memory
 * (circuit-breaker.ts): routing decisions never wait on the network. Without a share (one process, the default),
 * each router keeps its own. redis-circuit-share.ts sends the news over Redis pub/sub.
 */
export interface CircuitNews {
  /** The router's model and the backend's id: two models may name a backend alike. */
  model: string;
  backendId: string;
  state: 'open' | 'closed';
  /** When it opened (epoch ms, the sender's clock); for 'closed', when it closed. */
  atMs: number;
}

export interface CircuitShare {
  /** Tells the other processes; never throws (a lost message only means they find out for themselves). */
  publish(news: CircuitNews): void;
  /** News from the other processes (never this one's own). Returns the unsubscribe. */
  subscribe(listener: (news: CircuitNews) => void): () => void;
}
