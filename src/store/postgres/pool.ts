/**
 * The node-postgres pool every Postgres store shares, and the one transaction helper they use.
 *
 * Column types: amounts and times are BIGINT (ms since epoch do not fit in 32 bits; neither would a large
 * key's lifetime credits). node-postgres returns BIGINT as a string by default, because it can exceed
 * 2^53; this pool reads it as a number and throws on a value a number cannot hold exactly, instead of
 * rounding money silently. The parser is set on this pool's clients only, not on pg's global registry.
 */
import pg from 'pg';

/** OID of int8 (BIGINT) in pg_type. */
const INT8_OID = 20;

function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`BIGINT ${text} is beyond what a JavaScript number holds exactly`);
  return value;
}

const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && (format ?? 'text') === 'text') return parseInt8;
    return format === 'binary' ? pg.types.getTypeParser(oid, 'binary') : pg.types.getTypeParser(oid, 'text');
  },
};

export interface PostgresPoolOptions {
  /** Connections per process (default 10, node-postgres's own default). */
  max?: number;
  /** Called with errors of idle clients (the server restarted, a network cut); without it they are ignored. */
  onIdleError?: (err: Error) => void;
}

export function createPostgresPool(url: string, options: PostgresPoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10, types: types as pg.CustomTypesConfig });
  // An idle client's error is emitted on the pool; unhandled, an 'error' event would end the process.
  pool.on('error', (err) => options.onIdleError?.(err));
  return pool;
}

/** A database URL without its password, for messages and logs: `postgres://user@host:5432/db`. */
export function describeDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    u.search = '';
    return u.toString();
  } catch {
    return 'the configured Postgres database';
  }
}

/** Runs `work` in one transaction on one client: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A failed ROLLBACK means the connection is broken: releasing it with the error destroys it instead of reusing it.
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackError: Error) => {
      broken = rollbackError;
    });
    throw err;
  } finally {
    client.release(broken);
  }
}

/** SQLSTATE of a unique-constraint violation. */
export const UNIQUE_VIOLATION = '23505';

export function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === UNIQUE_VIOLATION;
}
