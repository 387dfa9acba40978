/** Opens the SQLite database file (WAL) and applies the schema. */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';

export type SqliteDatabase = Database.Database;

const MIGRATIONS: string[] = [
  `CREATE TABLE IF NOT EXISTS api_keys (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     prefix TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,          -- SHA-256 of the secret, hex; the secret itself is never stored
     source TEXT NOT NULL CHECK (source IN ('env', 'cli')),
     created_at_ms INTEGER NOT NULL,
     revoked_at_ms INTEGER
   );
   CREATE TABLE IF NOT EXISTS usage_ledger (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     key_id TEXT NOT NULL,
     request_id TEXT NOT NULL UNIQUE,
     model TEXT NOT NULL,
     width INTEGER NOT NULL,
     height INTEGER NOT NULL,
     seed INTEGER NOT NULL,
     credits REAL NOT NULL,
     usd REAL NOT NULL,
     created_at_ms INTEGER NOT NULL
   );
   CREATE INDEX IF NOT EXISTS usage_ledger_key ON usage_ledger (key_id, created_at_ms);`,
];

export function openDatabase(file: string): SqliteDatabase {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // FULL: a ledger row is on disk before the response that reports the charge is sent.
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  const version = db.pragma('user_version', { simple: true }) as number;
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return db;
}
