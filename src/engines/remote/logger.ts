/**
 * The slice of a pino logger the engines use. main.ts passes its pino instance (or a child of
 * it); tests pass `silentLogger`.
 */
export interface EngineLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => undefined;

export const silentLogger: EngineLogger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });

/**
 * Replaces every occurrence of each secret in `text` with `***`. Used on anything that may reach a
 * log or an error body after touching a request that carried an API key.
 */
export function redactSecrets(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join('***');
  }
  return out;
}
