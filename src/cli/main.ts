/**
 * Admin CLI over the same store (Postgres with DATABASE_URL, else the SQLite file) the server uses (DATA_DIR, and the same KEY_HASH_SECRET or key-hash-secret
 * file): API keys and usage.
 *   npm run cli -- keys create [--name NAME] [--admin] [--rpm N] [--max-concurrent N] [--daily-credits N] [--monthly-credits N]
 *   npm run cli -- keys update <key id> [--name NAME] [--role admin|user] [--rpm N|none|default] ...
 *   npm run cli -- keys list
 *   npm run cli -- keys revoke <key id>
 *   npm run cli -- usage <key id>
 *   npm run cli -- watermark detect <image file>
 *   npm run cli -- provenance dev-cert [--out DIR]
 *   npm run cli -- provenance verify <image file>
 *   npm run cli -- generate --prompt TEXT [...] / jobs list / jobs cancel <job id>   (over HTTP: remote.ts)
 * Keys take effect at once in a running server: it checks the store on every request.
 */
import path from 'node:path';
import { readConfig } from '../config/config.ts';
import { openStores } from '../store/open-stores.ts';
import { loadKeyHashSecret } from '../store/key-hash-secret.ts';
import { renderKey } from '../contracts/key-view.ts';
import { isApiError } from '../domain/errors.ts';
import { KEY_FLAGS_HELP, parseKeyFlags } from './key-flags.ts';
import { REMOTE_HELP } from './remote.ts';

function usage(): never {
  process.stderr.write(
    `usage:\n  cli keys create ${KEY_FLAGS_HELP}\n  cli keys update <key id> (the same options)\n  cli keys list\n  cli keys revoke <key id>\n  cli usage <key id>\n  cli watermark detect <image file>\n  cli provenance dev-cert [--out DIR]\n  cli provenance verify <image file>\n  cli ${REMOTE_HELP}\n`,
  );
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const [group, command, ...rest] = argv;
  if (group === 'generate' || group === 'jobs') {
    const { runRemote, processIo } = await import('./remote.ts');
    process.exitCode = await runRemote(argv, processIo());
    return;
  }
  if (group === 'watermark') {
    if (command !== 'detect' || !rest[0]) usage();
    const { detectFile } = await import('./watermark-detect.ts');
    const key = process.env.WATERMARK_KEY;
    process.stdout.write(JSON.stringify(await detectFile(rest[0], key ? { key } : {}), null, 2) + '\n');
    return;
  }
  if (group === 'provenance') {
    const { writeDevCertificate, verifyFile, verifyExitCode } = await import('./provenance.ts');
    if (command === 'dev-cert') {
      const i = rest.indexOf('--out');
      const files = writeDevCertificate(path.resolve(i >= 0 && rest[i + 1] ? rest[i + 1]! : 'c2pa-dev'));
      process.stdout.write(`C2PA_CERT=${files.cert}\nC2PA_KEY=${files.key}\nC2PA_TRUST_ANCHORS=${files.ca}\n`);
      process.stderr.write(
        'A development pair: a private root CA (ca.pem) and a signing certificate it issued (cert.pem, key key.pem).\n' +
          'Readers show manifests signed with it as valid but untrusted unless they are given ca.pem as a trust anchor.\n',
      );
      return;
    }
    if (command !== 'verify' || !rest[0]) usage();
    const report = await verifyFile(rest[0], readConfig(process.env));
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    process.exitCode = verifyExitCode(report);
    return;
  }
  const config = readConfig(process.env);
  // The server's store: Postgres with DATABASE_URL, else the SQLite file in DATA_DIR.
  const stores = await openStores({
    databaseUrl: config.database.url,
    sqlitePath: path.join(config.dataDir, 'server.sqlite'),
    hashKey: loadKeyHashSecret(config.keys.hashSecret, config.dataDir),
  });
  try {
    const keys = stores.keys;
    const view = (record: Parameters<typeof renderKey>[0]) => {
      const { created_at, revoked_at, ...rest } = renderKey(record, config.keys.defaultLimits);
      return { ...rest, created: new Date(created_at).toISOString(), revoked: revoked_at ? new Date(revoked_at).toISOString() : null };
    };
    if (group === 'keys' && command === 'create') {
      const options = parseKeyFlags(rest);
      const { record, secret } = await keys.create(options.name ?? 'cli', 'cli', undefined, { role: options.role, limits: options.limits });
      const webhookSecret = await keys.rotateWebhookSecret(record.id);
      process.stdout.write(JSON.stringify({ ...view(record), key: secret, webhook_secret: webhookSecret }, null, 2) + '\n');
      process.stderr.write(
        'Store this key now: only its hash is kept, it cannot be shown again. webhook_secret verifies the webhooks sent for\n' +
          "this key's jobs (POST /v1/webhooks/secret makes a new one).\n",
      );
    } else if (group === 'keys' && command === 'update' && rest[0] && !rest[0].startsWith('--')) {
      const change = parseKeyFlags(rest.slice(1));
      if (Object.keys(change).length === 0) usage();
      const updated = await keys.update(rest[0], change);
      if (!updated) {
        process.stderr.write(`no key with id ${rest[0]} (keys list shows ids)\n`);
        process.exitCode = 1;
      } else process.stdout.write(JSON.stringify(view(updated), null, 2) + '\n');
    } else if (group === 'keys' && command === 'list') {
      process.stdout.write(JSON.stringify((await keys.list()).map(view), null, 2) + '\n');
    } else if (group === 'keys' && command === 'revoke' && rest[0]) {
      const done = await keys.revoke(rest[0]);
      if (!done) {
        process.stderr.write(`no key with id ${rest[0]}, or it is already revoked (keys list shows ids)\n`);
        process.exitCode = 1;
      } else process.stdout.write(`revoked ${rest[0]}\n`);
    } else if (group === 'usage' && command) {
      process.stdout.write(JSON.stringify(await stores.usage.totals(command), null, 2) + '\n');
    } else {
      usage();
    }
  } finally {
    await stores.close();
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${(err as Error).message}\n`);
  // A bad option or value is a usage error, like a missing argument.
  process.exit(isApiError(err) && err.status < 500 ? 2 : 1);
});
