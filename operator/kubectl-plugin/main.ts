// kubectl-chaperone: list, watch and decide ApprovalRequests with the caller's own kubeconfig (every decision is a plain merge patch); sessions/replay/verify of recordings.
import { KubeConfig } from '@kubernetes/client-node';
import type { ApprovalRequest } from '../api/types.ts';
import { KubeApiError, KubeClient, RESOURCES, resourcePath } from '../kube/client.ts';
import type { Readable } from 'node:stream';
import { checkCommand, helpText, parseArgs, RECORDING_COMMANDS, UsageError, type GlobalFlags, type Parsed } from './args.ts';
import { runRecordingCommand } from './recordings.ts';
import { isPending, reviewSummary, table } from './format.ts';

export const FIELD_MANAGER = 'kubectl-chaperone';
export const EXIT = { ok: 0, refused: 1, usage: 2, notFound: 3, unreachable: 4 } as const;

export interface Io {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly now?: () => number;
  /** Ends --watch (tests; Ctrl-C otherwise). */
  readonly signal?: AbortSignal;
  /** `-f -` reads this (default process.stdin). */
  readonly stdin?: Readable;
}

interface Ctx {
  readonly client: KubeClient;
  readonly namespace: string;
  readonly flags: GlobalFlags;
  readonly io: Io;
  readonly now: () => number;
}

function loadKubeConfig(f: GlobalFlags, env: NodeJS.ProcessEnv): KubeConfig {
  const kc = new KubeConfig();
  const file = f.kubeconfig ?? env.KUBECONFIG?.split(':')[0];
  try {
    if (file) kc.loadFromFile(file);
    else kc.loadFromDefault();
  } catch (e) {
    throw new UsageError(`cannot read the kubeconfig ${file ?? '(default)'}: ${(e as Error).message}; pass --kubeconfig FILE or set KUBECONFIG`);
  }
  if (kc.getCurrentCluster() === null) throw new UsageError(`the kubeconfig ${file ?? '(default)'} has no current cluster; pass --kubeconfig FILE or --context NAME`);
  if (f.context) {
    if (!kc.getContextObject(f.context)) throw new UsageError(`context ${f.context} is not in the kubeconfig; see kubectl config get-contexts`);
    kc.setCurrentContext(f.context);
  }
  return kc;
}

function namespaceOf(kc: KubeConfig, f: GlobalFlags): string {
  return f.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
}

function path(ns: string | undefined, name?: string): string {
  return resourcePath(RESOURCES.approvalRequests, { namespace: ns, name });
}

/** The API server's own words (the webhook's message included), and what to do about the common ones. */
function explain(e: unknown, ctx: { readonly namespace: string; readonly name?: string }): { code: number; message: string } {
  if (!(e instanceof KubeApiError)) {
    const m = (e as Error)?.message ?? String(e);
    return { code: EXIT.unreachable, message: `the API server could not be reached: ${m}; check --kubeconfig/--context and the network` };
  }
  const body = e.body as { message?: string } | undefined;
  const msg = body?.message ?? e.message;
  if (e.status === 404) return { code: EXIT.notFound, message: ctx.name ? `approvalrequest ${ctx.name} not found in namespace ${ctx.namespace}; list pending ones with kubectl chaperone approvals -n ${ctx.namespace}` : `not found: ${msg} (are the Chaperone CRDs installed?)` };
  if (e.status === 401) return { code: EXIT.refused, message: `unauthorized: your credentials were not accepted (${msg}); log in again` };
  if (e.status === 403 && !/admission webhook/.test(msg)) return { code: EXIT.refused, message: `forbidden by RBAC: ${msg}; an approver needs the chaperone-approver ClusterRole bound in namespace ${ctx.namespace}` };
  return { code: EXIT.refused, message: msg.replace(/^admission webhook "[^"]+" denied the request: /, '') };
}

async function listPending(ctx: Ctx): Promise<ApprovalRequest[]> {
  const r = await ctx.client.list<ApprovalRequest>(path(ctx.flags.allNamespaces ? undefined : ctx.namespace));
  return r.items.filter(isPending).sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''));
}

function render(ctx: Ctx, items: readonly ApprovalRequest[]): void {
  if (ctx.flags.output === 'json') return ctx.io.out(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 2));
  if (items.length === 0) return ctx.io.out(ctx.flags.allNamespaces ? 'No pending approval requests.' : `No pending approval requests in namespace ${ctx.namespace}.`);
  ctx.io.out(table(items, { now: ctx.now(), wide: ctx.flags.output === 'wide', allNamespaces: ctx.flags.allNamespaces }));
}

/** `approvals --watch`: the list, then one line (or JSON object) per change until interrupted. */
async function watchPending(ctx: Ctx): Promise<void> {
  const p = path(ctx.flags.allNamespaces ? undefined : ctx.namespace);
  let list = await ctx.client.list<ApprovalRequest>(p);
  render(ctx, list.items.filter(isPending));
  const signal = ctx.io.signal ?? new AbortController().signal;
  while (!signal.aborted) {
    try {
      await ctx.client.watch(p, { resourceVersion: list.metadata.resourceVersion ?? '', timeoutSeconds: 300, signal }, (ev) => {
        const r = ev.object as unknown as ApprovalRequest;
        if (ev.type === 'BOOKMARK' || ev.type === 'ERROR' || !r.spec) return;
        if (ctx.flags.output === 'json') return ctx.io.out(JSON.stringify({ type: ev.type, object: r }));
        const phase = ev.type === 'DELETED' ? 'Deleted' : (r.status?.phase ?? 'Pending');
        ctx.io.out(phase === 'Pending' ? table([r], { now: ctx.now(), wide: false, allNamespaces: ctx.flags.allNamespaces }).split('\n')[1] ?? '' : `${r.metadata.name ?? ''}   ${phase}${r.status?.reason ? `: ${r.status.reason}` : ''}`);
      });
    } catch (e) {
      if (signal.aborted) break;
      if (e instanceof KubeApiError && e.status === 410) list = await ctx.client.list<ApprovalRequest>(p);
      else throw e;
    }
  }
}

const DECISION: Readonly<Record<string, 'Approve' | 'Deny' | 'Revoke'>> = { approve: 'Approve', deny: 'Deny', revoke: 'Revoke' };

/** The same merge patch `kubectl patch approvalrequest NAME --type=merge -p …` sends. */
export function reviewPatch(decision: 'Approve' | 'Deny' | 'Revoke', reason: string | undefined): { spec: { review: { decision: string; reason?: string } } } {
  return { spec: { review: { decision, ...(reason !== undefined && reason !== '' ? { reason } : {}) } } };
}

async function decide(ctx: Ctx, command: string, name: string): Promise<void> {
  const decision = DECISION[command] ?? 'Approve';
  const r = await ctx.client.request<ApprovalRequest>('PATCH', path(ctx.namespace, name), {
    body: reviewPatch(decision, ctx.flags.reason), contentType: 'application/merge-patch+json', query: { fieldManager: FIELD_MANAGER },
  });
  ctx.io.out(ctx.flags.output === 'json' ? JSON.stringify(r, null, 2) : reviewSummary(r, decision));
}

async function dispatch(p: Parsed, io: Io): Promise<number> {
  const spec = checkCommand(p);
  if (RECORDING_COMMANDS.has(spec.name)) {
    // File sources need no kubeconfig; a pod source loads it when asked.
    const client = (): { client: KubeClient; namespace: string; kubeConfig: KubeConfig } => {
      const kc = loadKubeConfig(p.flags, io.env);
      return { client: KubeClient.fromKubeConfig(kc), namespace: namespaceOf(kc, p.flags), kubeConfig: kc };
    };
    return runRecordingCommand(spec.name, p.positional, p.flags, { out: io.out, err: io.err, client, ...(io.stdin ? { stdin: io.stdin } : {}) });
  }
  const kc = loadKubeConfig(p.flags, io.env);
  const namespace = namespaceOf(kc, p.flags);
  const ctx: Ctx = { client: KubeClient.fromKubeConfig(kc), namespace, flags: p.flags, io, now: io.now ?? Date.now };
  const name = p.positional[0];
  try {
    if (spec.name === 'approvals') {
      if (p.flags.watch) await watchPending(ctx);
      else render(ctx, await listPending(ctx));
    } else {
      await decide(ctx, spec.name, name ?? '');
    }
    return EXIT.ok;
  } catch (e) {
    const x = explain(e, { namespace, ...(name !== undefined ? { name } : {}) });
    io.err(`error: ${x.message}`);
    return x.code;
  }
}

/** Runs one invocation; returns the exit code (never throws). */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  let p: Parsed;
  try {
    p = parseArgs(argv);
    if (p.flags.help || p.command === undefined || p.command === 'help') {
      io.out(helpText());
      return p.command === undefined && !p.flags.help ? EXIT.usage : EXIT.ok;
    }
    return await dispatch(p, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}`);
      return EXIT.usage;
    }
    io.err(`error: ${(e as Error)?.message ?? String(e)}`);
    return EXIT.unreachable;
  }
}
