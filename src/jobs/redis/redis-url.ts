/**
 * REDIS_URL → ioredis connection options. BullMQ takes options (not a URL) so that it can open and close
 * its own connections per role; our own connections use the same options so every part talks to the
 * same server with the same credentials. Accepted: redis://[user[:password]@]host[:port][/db] and
 * rediss:// (TLS, the host name checked against the certificate).
 */

/** Plain options that both ioredis and BullMQ's connection options accept. */
export interface RedisEndpoint {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  tls?: { servername: string };
}

export function redisOptionsFromUrl(url: string): RedisEndpoint {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`REDIS_URL must be a URL like redis://host:6379 or rediss://host:6380, got "${url}"`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`REDIS_URL must start with redis:// or rediss://, got "${parsed.protocol}//"`);
  }
  if (!parsed.hostname) throw new Error('REDIS_URL has no host');
  const dbPath = parsed.pathname.replace(/^\/+/, '');
  if (dbPath !== '' && !/^\d+$/.test(dbPath)) throw new Error(`REDIS_URL's path must be a database number (/0../15), got "/${dbPath}"`);
  // WHATWG URL keeps IPv6 hosts bracketed; sockets want them bare.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    host,
    port: parsed.port ? Number(parsed.port) : 6379,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(dbPath ? { db: Number(dbPath) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: { servername: host } } : {}),
  };
}
