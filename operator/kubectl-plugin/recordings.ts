// kubectl chaperone sessions / replay / verify: read a recording from a file, stdin, or sidecar pod logs (the caller's kubeconfig), then list, replay or verify it.
//
// Pod logs come from `GET /api/v1/namespaces/NS/pods/NAME/log?container=chaperone-sidecar` — what
// `kubectl logs` reads — so an auditor needs `get pods/log`, nothing more. The bytes are verified as
// the API server returns them, streamed (bounded memory: one line at a time); lines are split on \n
// only (hashes are over exactly what was written).
import { createReadStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError, type KubeClient } from '../kube/client.ts';
import { SIDECAR_CONTAINER_NAME } from '../webhooks/pod-mutate/layout.ts';
import { renderListing, renderTimeline, ReplayCollector } from '../../sidecar/recording/replay.ts';
import { forEachLine, formatReport } from '../../sidecar/recording/verify-cli.ts';
import { loadKey } from '../../sidecar/recording/signing.ts';
import { Verifier, type VerifyResult } from '../../sidecar/recording/verify.ts';
import { UsageError, type GlobalFlags } from './args.ts';
import { openStream } from './log-stream.ts';

export type RecordingSource =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'stdin' }
  | { readonly kind: 'pod'; readonly name: string }
  | { readonly kind: 'selector'; readonly selector: string };

export interface RecordingIo {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  readonly stdin?: Readable;
  /**
   * Made only when a pod source needs the API server (file sources work without a kubeconfig).
   * With `kubeConfig`, pod logs are streamed; without it they are read whole through `client`.
   */
  readonly client: () => { readonly client: KubeClient; readonly namespace: string; readonly kubeConfig?: KubeConfig };
}

export const RECORDING_EXIT = { ok: 0, bad: 1, usage: 2, notFound: 3, unreachable: 4 } as const;

const POD_PREFIX = /^(?:pods?|po)\//;

/**
 * Where the recording comes from: `-f FILE|-`, `-l SELECTOR`, `pod/NAME`, an existing file path, or
 * else `NAME` (a pod). `arg` is the positional after the command's own (SESSION for replay).
 */
export function resolveSource(arg: string | undefined, flags: GlobalFlags): RecordingSource {
  const given = [flags.filename !== undefined, flags.selector !== undefined, arg !== undefined].filter(Boolean).length;
  if (given > 1) throw new UsageError('give one recording source: POD, -f FILE (or -f - for stdin), or -l SELECTOR');
  if (flags.filename !== undefined) return flags.filename === '-' ? { kind: 'stdin' } : { kind: 'file', path: flags.filename };
  if (flags.selector !== undefined) return { kind: 'selector', selector: flags.selector };
  if (arg === undefined) throw new UsageError('no recording given: name a POD (its chaperone-sidecar log), -f FILE (or -f - for stdin), or -l SELECTOR');
  if (arg === '-') return { kind: 'stdin' };
  if (POD_PREFIX.test(arg)) return { kind: 'pod', name: arg.replace(POD_PREFIX, '') };
  // An existing path (or anything with a slash, which no pod name has) is a file.
  if (existsSync(arg) || arg.includes('/')) return { kind: 'file', path: arg };
  return { kind: 'pod', name: arg };
}

function logPath(ns: string, pod: string, flags: GlobalFlags): string {
  const q = new URLSearchParams({ container: flags.container ?? SIDECAR_CONTAINER_NAME });
  if (flags.previous) q.set('previous', 'true');
  return `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(pod)}/log?${q.toString()}`;
}

type Api = ReturnType<RecordingIo['client']>;

/** The log as it arrives (streamed with a kubeconfig; whole through the client otherwise). */
async function podLog(api: Api, pod: string, flags: GlobalFlags): Promise<AsyncIterable<Buffer | string> | Iterable<Buffer>> {
  const path = logPath(api.namespace, pod, flags);
  if (api.kubeConfig) return openStream(api.kubeConfig, path);
  const body = await api.client.request<unknown>('GET', path, { accept: '*/*' });
  return [Buffer.from(typeof body === 'string' ? body : body === undefined ? '' : JSON.stringify(body))];
}

/** Every pod's log in turn, each ending with \n so two pods' lines never join; a pod whose log cannot be opened is skipped with a warning. */
async function* podLogs(api: Api, pods: readonly string[], flags: GlobalFlags, io: RecordingIo): AsyncGenerator<Buffer | string> {
  for (const p of pods) {
    let chunks: AsyncIterable<Buffer | string> | Iterable<Buffer>;
    try {
      chunks = await podLog(api, p, flags);
    } catch (e) {
      io.err(`warning: pod/${p}: ${(e as Error).message} (skipped)`);
      continue;
    }
    let last = 0x0a;
    for await (const c of chunks) {
      if (c.length === 0) continue;
      last = typeof c === 'string' ? c.charCodeAt(c.length - 1) : (c[c.length - 1] ?? 0x0a);
      yield c;
    }
    if (last !== 0x0a) yield '\n';
  }
}

/** The pods a selector names, in name order (so the output is stable). */
async function podsFor(client: KubeClient, ns: string, selector: string): Promise<string[]> {
  const r = await client.request<{ items?: { metadata?: { name?: string } }[] }>('GET', `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`, { query: { labelSelector: selector } });
  return (r.items ?? []).map((p) => p.metadata?.name ?? '').filter((n) => n !== '').sort();
}

/** The source's bytes as an async sequence of chunks, and a name for messages. */
async function open(src: RecordingSource, flags: GlobalFlags, io: RecordingIo): Promise<{ name: string; chunks: AsyncIterable<Buffer | string> | Iterable<Buffer> }> {
  if (src.kind === 'file') {
    // Open eagerly so a missing file is a clear error, not a stream event.
    await readFile(src.path, { flag: 'r' }).then(() => undefined, (e: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read ${src.path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
    });
    return { name: src.path, chunks: createReadStream(src.path) };
  }
  if (src.kind === 'stdin') return { name: 'stdin', chunks: io.stdin ?? process.stdin };
  const api = io.client();
  if (src.kind === 'pod') return { name: `pod/${src.name}`, chunks: await podLog(api, src.name, flags) };
  const pods = await podsFor(api.client, api.namespace, src.selector);
  if (pods.length === 0) throw new NotFound(`no pods match -l ${src.selector} in namespace ${api.namespace}`);
  return { name: `pods -l ${src.selector} (${pods.join(', ')})`, chunks: podLogs(api, pods, flags, io) };
}

class NotFound extends Error {
  override readonly name = 'NotFound';
}

async function collect(src: RecordingSource, flags: GlobalFlags, io: RecordingIo, session?: string): Promise<ReplayCollector> {
  const { chunks } = await open(src, flags, io);
  const c = new ReplayCollector(session !== undefined ? { session } : {});
  await forEachLine(chunks, {
    line: (l) => {
      c.push(l.toString('utf8'));
      return false;
    },
    overlong: () => {
      c.skipped++; // never a line the recorder wrote (under 16 kB); `verify` fails on it
      return false;
    },
  });
  if (c.orphanLines > 0) io.err(`note: ${c.orphanLines} line(s) belong to sessions whose session.start is not in this input (try --previous, or a file with the whole log)`);
  return c;
}

async function sessions(src: RecordingSource, flags: GlobalFlags, io: RecordingIo): Promise<number> {
  const c = await collect(src, flags, io);
  const rows = c.list();
  if (flags.output === 'json') io.out(JSON.stringify({ sessions: rows }, null, 2));
  else io.out(rows.length === 0 ? 'No sessions in this recording.' : renderListing(rows));
  return RECORDING_EXIT.ok;
}

async function replay(session: string, src: RecordingSource, flags: GlobalFlags, io: RecordingIo): Promise<number> {
  const c = await collect(src, flags, io, session);
  const s = c.sessions()[0];
  if (!s) throw new NotFound(`session ${session} is not in this recording; list its sessions with kubectl chaperone sessions (same source)`);
  if (c.droppedCommands > 0) io.err(`note: ${c.droppedCommands} command(s) beyond the replay limit were left out`);
  io.out(flags.output === 'json' ? JSON.stringify(s, null, 2) : renderTimeline(s));
  return RECORDING_EXIT.ok;
}

async function verify(src: RecordingSource, flags: GlobalFlags, io: RecordingIo): Promise<number> {
  let publicKeys;
  try {
    publicKeys = await Promise.all(flags.keys.map(async (f) => loadKey(await readFile(f, 'utf8'), 'public')));
  } catch (e) {
    throw new UsageError(`cannot load the public key: ${(e as Error).message}; pass --key PUB.pem (an Ed25519 public key in PEM)`);
  }
  const { name, chunks } = await open(src, flags, io);
  const v = new Verifier({ publicKeys, requireSealed: flags.requireSealed, requireClosed: flags.requireClosed, allowPartialStart: flags.partial });
  const { unterminated, stopped } = await forEachLine(chunks, {
    line: (l) => v.push(l) !== null,
    overlong: (head, length) => v.pushOverlong(head, length) !== null,
  });
  const r: VerifyResult = stopped ? v.end() : v.end({ lastLineUnterminated: unterminated });
  io.out(flags.output === 'json' ? JSON.stringify(r) : formatReport(r, name).trimEnd());
  return r.ok ? RECORDING_EXIT.ok : RECORDING_EXIT.bad;
}

function explain(e: unknown): { code: number; message: string } {
  if (e instanceof UsageError) return { code: RECORDING_EXIT.usage, message: e.message };
  if (e instanceof NotFound) return { code: RECORDING_EXIT.notFound, message: e.message };
  if (e instanceof KubeApiError) {
    const msg = (e.body as { message?: string } | undefined)?.message ?? (typeof e.body === 'string' ? e.body : e.message);
    if (e.status === 404) return { code: RECORDING_EXIT.notFound, message: `${msg} (check the pod name and -n NS)` };
    if (e.status === 403) return { code: RECORDING_EXIT.bad, message: `forbidden by RBAC: ${msg}; reading a recording from a pod needs get on pods/log (and list pods for -l)` };
    if (e.status === 400) return { code: RECORDING_EXIT.bad, message: `${msg} (is the sidecar container named ${SIDECAR_CONTAINER_NAME}? pass -c NAME; a restarted one needs --previous)` };
    return { code: RECORDING_EXIT.bad, message: msg };
  }
  return { code: RECORDING_EXIT.unreachable, message: `${(e as Error)?.message ?? String(e)}` };
}

/** Runs sessions, replay or verify; returns the exit code (never throws). */
export async function runRecordingCommand(command: string, positional: readonly string[], flags: GlobalFlags, io: RecordingIo): Promise<number> {
  try {
    if (command === 'replay') {
      const [session, arg] = positional;
      return await replay(session ?? '', resolveSource(arg, flags), flags, io);
    }
    const src = resolveSource(positional[0], flags);
    return command === 'sessions' ? await sessions(src, flags, io) : await verify(src, flags, io);
  } catch (e) {
    const x = explain(e);
    io.err(`error: ${x.message}`);
    return x.code;
  }
}
