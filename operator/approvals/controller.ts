// The ApprovalRequest controller as an operator plugin: status from approvalPhase, requeue at the next deadline, notifications, Events, garbage collection after a TTL.
import type { ApprovalRequest, ApprovalRule } from '../api/types.ts';
import { KubeApiError, RESOURCES, resourcePath } from '../kube/client.ts';
import type { Controller } from '../kube/controller.ts';
import { errText, objectKey, splitKey, type Informer } from '../kube/informer.ts';
import { registerPendingGauges } from './metrics.ts';
import { findCondition, patchStatus, setCondition } from '../kube/status.ts';
import type { OperatorContext, OperatorPlugin, OperatorPluginFactory } from '../plugin.ts';
import { notificationBody, sendNotification, summarize, type NotifyEvent } from './notify.ts';
import { approvalPhase, type PhaseResult } from './phase.ts';
import { approvalRoutes } from './routes.ts';

export const DEFAULT_TTL_SECONDS = 3600;
export const DEFAULT_CONCURRENCY = 4;
/** Requeue a little after a deadline so the clock has surely passed it. */
const DEADLINE_SLACK_MS = 50;

export interface ApprovalsPluginOptions {
  /** Finished requests are deleted this long after they were decided (0: never). */
  readonly ttlSeconds?: number;
  readonly concurrency?: number;
  readonly notify?: { readonly attempts?: number; readonly baseMs?: number; readonly timeoutMs?: number };
  /** The clock (tests). */
  readonly now?: () => number;
}

/** The status the phase result asks for, keeping conditions we do not own and the Notified condition. */
export function desiredStatus(req: ApprovalRequest, r: PhaseResult, now: number): NonNullable<ApprovalRequest['status']> {
  const decided = r.phase !== 'Pending';
  const conditions = setCondition(req.status?.conditions, {
    type: 'Decided', status: decided ? 'True' : 'False', reason: r.code, message: r.reason || r.phase, observedGeneration: req.metadata.generation ?? 0,
  }, new Date(now));
  return {
    observedGeneration: req.metadata.generation ?? 0,
    phase: r.phase,
    reason: r.reason.slice(0, 1024),
    approvals: r.approvals,
    ...(r.decidedAt ? { decidedAt: r.decidedAt } : {}),
    ...(r.window ? { window: r.window } : {}),
    conditions,
  };
}

function sameStatus(a: ApprovalRequest['status'], b: ApprovalRequest['status']): boolean {
  const strip = (s: ApprovalRequest['status']): unknown => ({ ...s, conditions: (s?.conditions ?? []).map((c) => ({ ...c, lastTransitionTime: '' })) });
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

class ApprovalsController {
  private controller: Controller | undefined;
  private readonly inFlight = new Map<string, NotifyEvent>();
  private readonly now: () => number;
  private readonly ttlMs: number;
  private stopped = new AbortController();

  constructor(
    private readonly ctx: OperatorContext,
    readonly informer: Informer<ApprovalRequest>,
    private readonly o: ApprovalsPluginOptions,
  ) {
    this.now = o.now ?? Date.now;
    this.ttlMs = (o.ttlSeconds ?? DEFAULT_TTL_SECONDS) * 1000;
    const enqueue = (obj: ApprovalRequest): void => this.controller?.enqueue(objectKey(obj));
    informer.addHandler({ onAdd: enqueue, onUpdate: (_old, obj) => enqueue(obj) });
  }

  start(signal: AbortSignal): void {
    this.stopped = new AbortController();
    signal.addEventListener('abort', () => this.stopped.abort(), { once: true });
    this.controller = this.ctx.controller({ name: 'approvalrequest', concurrency: this.o.concurrency ?? DEFAULT_CONCURRENCY, reconcile: (key) => this.reconcile(key) });
    this.controller.start();
    for (const r of this.informer.list()) this.controller.enqueue(objectKey(r));
  }

  private async reconcile(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const { namespace, name } = splitKey(key);
    const req = this.informer.get(namespace, name);
    if (!req) return;
    const now = this.now();
    const r = approvalPhase(req, now);
    const status = desiredStatus(req, r, now);
    if (!sameStatus(req.status, status)) {
      await patchStatus(this.ctx.client, RESOURCES.approvalRequests, namespace, name, status);
      if ((req.status?.phase ?? 'Pending') !== r.phase || req.status === undefined) this.event(req, r);
    }
    this.maybeNotify({ ...req, status }, r);
    return this.next(req, r, now);
  }

  /** When to look again: the phase's own deadline, or the GC time of a finished request (deleting it once due). */
  private async next(req: ApprovalRequest, r: PhaseResult, now: number): Promise<{ requeueAfterMs?: number } | void> {
    if (r.nextCheckAt !== undefined) return { requeueAfterMs: Math.max(0, r.nextCheckAt - now) + DEADLINE_SLACK_MS };
    if (r.phase === 'Pending' || this.ttlMs <= 0) return;
    const decided = Date.parse(r.decidedAt ?? '');
    const due = (Number.isNaN(decided) ? now : decided) + this.ttlMs;
    if (now < due) return { requeueAfterMs: due - now + DEADLINE_SLACK_MS };
    await this.ctx.client.delete(resourcePath(RESOURCES.approvalRequests, { namespace: req.metadata.namespace, name: req.metadata.name }));
    this.ctx.log.info({ request: objectKey(req), phase: r.phase }, 'finished ApprovalRequest garbage-collected');
  }

  /** A core/v1 Event on the request for each phase change (best effort: an Event that fails is only logged). */
  private event(req: ApprovalRequest, r: PhaseResult): void {
    const ns = req.metadata.namespace ?? '';
    const body = {
      apiVersion: 'v1', kind: 'Event',
      metadata: { generateName: `${req.metadata.name ?? 'approvalrequest'}.`, namespace: ns },
      involvedObject: { apiVersion: 'chaperone.dev/v1alpha1', kind: 'ApprovalRequest', name: req.metadata.name, namespace: ns, uid: req.metadata.uid },
      reason: r.code, message: r.reason.slice(0, 1024) || r.phase, type: r.phase === 'Denied' || r.phase === 'Expired' ? 'Warning' : 'Normal',
      source: { component: 'chaperone-operator' }, firstTimestamp: new Date(this.now()).toISOString(), lastTimestamp: new Date(this.now()).toISOString(), count: 1,
    };
    this.ctx.client.request('POST', `/api/v1/namespaces/${encodeURIComponent(ns)}/events`, { body }).catch((e: unknown) => this.ctx.log.warn({ request: objectKey(req), err: errText(e) }, 'Event not recorded'));
  }

  /** Created and decided notifications, each once (the Notified condition remembers), off the reconcile path. */
  private maybeNotify(req: ApprovalRequest, r: PhaseResult): void {
    const key = objectKey(req);
    const want: NotifyEvent = r.phase === 'Pending' ? 'created' : 'decided';
    const done = findCondition(req.status?.conditions, 'Notified');
    const doneEvent = done?.reason === 'Decided' || done?.reason === 'DecidedFailed' ? 'decided' : done ? 'created' : undefined;
    if (doneEvent === want || (want === 'created' && doneEvent === 'decided') || this.inFlight.get(key) === want) return;
    this.inFlight.set(key, want);
    void this.notify(req, want).finally(() => this.inFlight.delete(key));
  }

  private async notify(req: ApprovalRequest, event: NotifyEvent): Promise<void> {
    const ns = req.metadata.namespace ?? '';
    const name = req.metadata.name ?? '';
    let rule: ApprovalRule | undefined;
    try {
      rule = await this.ctx.client.get<ApprovalRule>(resourcePath(RESOURCES.approvalRules, { namespace: ns, name: req.spec.rule.name }));
    } catch (e) {
      this.ctx.log.warn({ request: `${ns}/${name}`, err: errText(e) }, 'ApprovalRule not readable for its notification');
      return;
    }
    const n = rule?.spec.approval?.notification;
    if (!n) return;
    let key: Buffer | undefined;
    try {
      key = await this.hmacKey(ns, n.secretRef);
    } catch (e) {
      return this.setNotified(req, event, false, `the HMAC key Secret ${n.secretRef?.name ?? ''} could not be read: ${errText(e)}`);
    }
    const body = notificationBody(summarize(req, event), n.format ?? 'slack');
    const res = await sendNotification({ url: n.webhookURL, body, ...(key ? { key } : {}), ...this.o.notify, signal: this.stopped.signal });
    await this.setNotified(req, event, res.ok, `${event}: ${res.message} after ${res.attempts} attempt(s)`);
  }

  private async hmacKey(ns: string, ref: { name: string; key?: string } | undefined): Promise<Buffer | undefined> {
    if (!ref) return undefined;
    const s = await this.ctx.client.get<{ data?: Record<string, string> }>(resourcePath(RESOURCES.secrets, { namespace: ns, name: ref.name }));
    const v = s?.data?.[ref.key ?? 'hmac-key'];
    if (v === undefined) throw new Error(`no key ${ref.key ?? 'hmac-key'} in Secret ${ns}/${ref.name}`);
    return Buffer.from(v, 'base64');
  }

  private async setNotified(req: ApprovalRequest, event: NotifyEvent, ok: boolean, message: string): Promise<void> {
    const ns = req.metadata.namespace ?? '';
    const name = req.metadata.name ?? '';
    const current = this.informer.get(ns, name) ?? req;
    const reason = `${event === 'created' ? 'Created' : 'Decided'}${ok ? '' : 'Failed'}`;
    const conditions = setCondition(current.status?.conditions, { type: 'Notified', status: ok ? 'True' : 'False', reason, message, observedGeneration: current.metadata.generation ?? 0 }, new Date(this.now()));
    try {
      await patchStatus(this.ctx.client, RESOURCES.approvalRequests, ns, name, { conditions });
    } catch (e) {
      if (!(e instanceof KubeApiError && e.status === 404)) this.ctx.log.warn({ request: `${ns}/${name}`, err: errText(e) }, 'Notified condition not written');
    }
  }
}

/** ApprovalRequest admission routes on every replica; the controller on the leader. Add it to the operator's default plugins. */
export function approvalsPlugin(options: ApprovalsPluginOptions = {}): OperatorPluginFactory {
  return (ctx: OperatorContext): OperatorPlugin => {
    const informer = ctx.informer<ApprovalRequest>({ resource: RESOURCES.approvalRequests, name: 'approvalrequests' });
    const c = new ApprovalsController(ctx, informer, options);
    registerPendingGauges(ctx.metrics.registry, () => informer.list(), options.now ?? Date.now);
    return {
      name: 'approvals',
      routes: approvalRoutes(options.now ? { now: options.now } : {}),
      startLeading: (signal) => c.start(signal),
    };
  };
}
