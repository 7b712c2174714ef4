// Approval notifications: the body (plain JSON or Slack-compatible), its HMAC-SHA256 signature, and a bounded-retry POST.
import { createHmac } from 'node:crypto';
import type { ApprovalRequest } from '../api/types.ts';

export const SIGNATURE_HEADER = 'x-chaperone-signature';
export const DEFAULT_NOTIFY_ATTEMPTS = 4;
export const DEFAULT_NOTIFY_BASE_MS = 500;
export const DEFAULT_NOTIFY_TIMEOUT_MS = 5000;

export type NotifyEvent = 'created' | 'decided';

export interface NotificationSummary {
  readonly event: NotifyEvent;
  readonly namespace: string;
  readonly name: string;
  readonly phase: string;
  readonly reason: string;
  readonly identity: string;
  readonly connection: string;
  readonly requester: string;
  readonly command: string;
  readonly rule: string;
  readonly expiresAt: string;
  readonly approveCommand: string;
}

export function summarize(req: ApprovalRequest, event: NotifyEvent): NotificationSummary {
  const ns = req.metadata.namespace ?? '';
  const name = req.metadata.name ?? '';
  const s = req.spec;
  return {
    event, namespace: ns, name, phase: req.status?.phase ?? 'Pending', reason: req.status?.reason ?? '', identity: s.identity, connection: s.connection,
    requester: s.requester.actingFor ? `${s.requester.username ?? s.requester.subject} for ${s.requester.actingFor}` : (s.requester.username ?? s.requester.subject),
    command: s.command.summary ?? s.command.text.slice(0, 200), rule: s.rule.name, expiresAt: s.expiresAt, approveCommand: `kubectl chaperone approve ${name} -n ${ns}`,
  };
}

/** The POST body. `slack`: an incoming-webhook message (`text` + `blocks`); `json`: the summary itself. */
export function notificationBody(sum: NotificationSummary, format: 'slack' | 'json'): string {
  if (format === 'json') return JSON.stringify(sum);
  const head = sum.event === 'created'
    ? `Approval needed: ${sum.identity}/${sum.connection} wants to run \`${sum.command}\` (rule ${sum.rule}); expires ${sum.expiresAt}`
    : `Approval ${sum.namespace}/${sum.name} is ${sum.phase}${sum.reason ? `: ${sum.reason}` : ''}`;
  const detail = sum.event === 'created' ? `Requester: ${sum.requester}\nApprove: \`${sum.approveCommand}\`` : `Command: \`${sum.command}\``;
  return JSON.stringify({ text: head, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: head } }, { type: 'section', text: { type: 'mrkdwn', text: detail } }] });
}

/** `sha256=<hex HMAC-SHA256 of the exact body>` (the receiver recomputes it over the raw bytes). */
export function signBody(body: string, key: Buffer): string {
  return `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
}

export interface SendOptions {
  readonly url: string;
  readonly body: string;
  readonly key?: Buffer;
  readonly attempts?: number;
  readonly baseMs?: number;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface SendResult {
  readonly ok: boolean;
  readonly attempts: number;
  readonly message: string;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

/** The attempt's timeout, and stop: a POST to a slow receiver must not hold the leader's drain on shutdown. */
function requestSignal(o: SendOptions): AbortSignal {
  const timeout = AbortSignal.timeout(o.timeoutMs ?? DEFAULT_NOTIFY_TIMEOUT_MS);
  return o.signal ? AbortSignal.any([timeout, o.signal]) : timeout;
}

/** POSTs with bounded retries (exponential backoff); 2xx is delivered, 4xx other than 408/429 is not retried. */
export async function sendNotification(o: SendOptions): Promise<SendResult> {
  const attempts = o.attempts ?? DEFAULT_NOTIFY_ATTEMPTS;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (o.key) headers[SIGNATURE_HEADER] = signBody(o.body, o.key);
  let last = '';
  let tried = 0;
  for (let i = 1; i <= attempts; i++) {
    if (o.signal?.aborted) return { ok: false, attempts: tried, message: 'stopped' };
    tried = i;
    try {
      const res = await fetch(o.url, { method: 'POST', headers, body: o.body, signal: requestSignal(o) });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return { ok: true, attempts: i, message: `delivered (HTTP ${res.status})` };
      last = `HTTP ${res.status}`;
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) break;
    } catch (e) {
      last = (e as Error).message;
    }
    if (i < attempts) await sleep((o.baseMs ?? DEFAULT_NOTIFY_BASE_MS) * 2 ** (i - 1), o.signal);
  }
  return { ok: false, attempts: tried, message: `not delivered to ${new URL(o.url).host}: ${last}` };
}
