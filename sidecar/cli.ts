#!/usr/bin/env -S node --liftoff-only
// chaperone-sidecar: `--config FILE` runs the sidecar, `--check` validates and exits 0/1, `init-network` installs the interception rules, `--help`, `--version`.
// --liftoff-only: V8's optimizing tier-up of the SQL parser's WASM peaks at ~600 MB of RSS for a second (docs/postgres.md); Liftoff code parses as fast here.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatErrors, loadConfig } from './core/config.ts';

export const USAGE = `Usage: chaperone-sidecar --config FILE [--check]
       chaperone-sidecar init-network --config FILE [--dry-run] [--uid N] ...   (see init-network --help)

  --config FILE   the sidecar config (YAML or JSON; docs/sidecar.md). Default: $CHAPERONE_CONFIG
  --check         validate the config (schema, files, policies, masking, protocols) and exit:
                  0 if valid, 1 with one "path: problem" line per error
  --version       print the version and exit
  --help          print this help and exit

Logs are JSON lines on stderr; the recording stream is on stdout (when recording.stdout is on).
The pod comes from POD_NAME, POD_UID and POD_NAMESPACE (downward API).
SIGTERM / SIGINT: stop accepting, drain open sessions (shutdown.drainTimeoutSeconds), flush the recording, exit 0.
SIGHUP: re-read the config now.`;

export interface CliArgs {
  readonly config: string | undefined;
  readonly check: boolean;
  readonly help: boolean;
  readonly version: boolean;
}

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): CliArgs | { readonly error: string } {
  let config = env.CHAPERONE_CONFIG || undefined;
  let check = false;
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) return { error: `${a} needs a file path` };
      config = v;
    } else if (a.startsWith('--config=')) config = a.slice('--config='.length);
    else if (a === '--check') check = true;
    else if (a === '--help' || a === '-h') help = true;
    else if (a === '--version' || a === '-v') version = true;
    else return { error: `unknown argument ${JSON.stringify(a)}` };
  }
  return { config, check, help, version };
}

/** The package version: package.json two levels up from dist/sidecar/cli.js, one up from sidecar/cli.ts. */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) return (JSON.parse(readFileSync(p, 'utf8')) as { version?: string }).version ?? 'unknown';
    dir = dirname(dir);
  }
  return 'unknown';
}

function print(stream: NodeJS.WriteStream, lines: readonly string[]): void {
  stream.write(lines.map((l) => l + '\n').join(''));
}

async function check(path: string): Promise<number> {
  const r = loadConfig(path);
  if (!r.ok) {
    print(process.stderr, [`${path}: invalid config (${r.errors.length} ${r.errors.length === 1 ? 'error' : 'errors'}):`, ...formatErrors(r.errors).map((l) => `  ${l}`)]);
    return 1;
  }
  const { loadProtocols, PROTOCOL_MODULES, StartupError } = await import('./main.ts');
  try {
    await loadProtocols(r.config, PROTOCOL_MODULES);
  } catch (e) {
    if (!(e instanceof StartupError)) throw e;
    print(process.stderr, [`${path}: ${e.message}`]);
    return 1;
  }
  print(process.stdout, [`${path}: valid (${r.config.connections.length} connections: ${r.config.connections.map((c) => `${c.name}/${c.protocol}`).join(', ')}; sha256 ${r.hash})`]);
  return 0;
}

/** Installs the signal handlers; a second SIGTERM/SIGINT exits at once. */
function onSignals(stop: (reason: string) => Promise<void>, reload: () => void): void {
  let stopping = false;
  const handler = (sig: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`chaperone-sidecar: second ${sig}: exiting without draining\n`);
      process.exit(1);
    }
    stopping = true;
    stop(sig).then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`chaperone-sidecar: error while stopping: ${(e as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  process.on('SIGHUP', reload);
}

async function run(path: string): Promise<number> {
  const { startSidecar, StartupError } = await import('./main.ts');
  try {
    const sidecar = await startSidecar({ configPath: path });
    onSignals(
      (reason) => sidecar.stop(reason),
      () => {
        sidecar.log.info({}, 'SIGHUP: re-reading the config');
        void sidecar.reload();
      },
    );
    return -1;
  } catch (e) {
    if (!(e instanceof StartupError)) throw e;
    print(process.stderr, [`chaperone-sidecar: ${e.message}`, ...e.details.map((l) => `  ${l}`)]);
    return 1;
  }
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  // The init container's mode (docs/interception.md); loaded only here, so the sidecar never loads it.
  if (argv[0] === 'init-network') return (await import('./interception/init.ts')).initNetwork(argv.slice(1), env);
  const args = parseArgs(argv, env);
  if ('error' in args) {
    print(process.stderr, [`chaperone-sidecar: ${args.error}`, '', USAGE]);
    return 2;
  }
  if (args.help) {
    print(process.stdout, [USAGE]);
    return 0;
  }
  if (args.version) {
    print(process.stdout, [`chaperone-sidecar ${packageVersion()}`]);
    return 0;
  }
  if (args.config === undefined) {
    print(process.stderr, ['chaperone-sidecar: no config given: pass --config FILE or set CHAPERONE_CONFIG', '', USAGE]);
    return 2;
  }
  return args.check ? check(args.config) : run(args.config);
}

// Run only as the entry point (tests import the helpers above).
const entry = process.argv[1];
if (entry !== undefined && fileURLToPath(import.meta.url) === (await import('node:fs')).realpathSync(entry)) {
  main(process.argv.slice(2), process.env).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`chaperone-sidecar: unexpected error: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
