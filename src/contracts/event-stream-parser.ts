/**
 * Reads the API's event streams (GET /v1/jobs/:id/events, `stream: true` generations) as a client does:
 * text/event-stream per WHATWG HTML §9.2 — an event ends at a blank line, `field: value` lines, lines
 * starting with ':' are comments, CRLF and CR count as line ends. The server's `data` is JSON; anything
 * else is handed on as its text. No Node or DOM imports: the CLI and the playground page both use it.
 */
export interface StreamEvent {
  event: string;
  data: unknown;
}

/** Returns the function to feed decoded text to, chunk by chunk; `onEvent` is called for each complete event. */
export function createEventStreamParser(onEvent: (event: StreamEvent) => void): (text: string) => void {
  let buffered = '';
  return (text) => {
    buffered += text.replace(/\r\n?/g, '\n');
    let cut: number;
    while ((cut = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, cut);
      buffered = buffered.slice(cut + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (!line || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length === 0) continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(data.join('\n'));
      } catch {
        parsed = data.join('\n');
      }
      onEvent({ event, data: parsed });
    }
  };
}
