// Recording lines → sessions and their timelines (pure): what `kubectl chaperone sessions` and `replay` print.
//
// Replay trusts nothing it cannot parse: foreign lines (pino logs) are skipped, recording lines of an
// unknown shape are counted in `skipped`. It does not check the chain — `verify` does; the replay
// says so in its output so nobody mistakes a timeline for a proof.
import { REC_PREFIX } from './event.ts';
import { extractRecord } from './verify.ts';

type Obj = Readonly<Record<string, unknown>>;

export interface ApprovalStep {
  readonly request: string;
  readonly approverGroups: readonly string[];
  readonly timeoutMs: number;
  readonly requestedAt: string;
  readonly outcome?: string;
  readonly by?: readonly string[];
  readonly waitedMs?: number;
}

export interface ResultStep {
  readonly at: string;
  readonly rows: number | null;
  readonly bytes: number;
  readonly masked: Readonly<Record<string, number>>;
  readonly durationMs: number;
  readonly sqlState?: string;
  readonly httpStatus?: number;
  readonly error?: string;
}

export interface CommandStep {
  readonly cmd: number;
  readonly at: string;
  readonly kind: 'statement' | 'request';
  /** SQL text, or `METHOD url` for HTTP and Kubernetes requests (masked as recorded). */
  readonly text: string;
  readonly classification: Obj;
  readonly decision: string;
  readonly rule: string | null;
  readonly reason?: string;
  readonly statementHash?: string;
  approval?: ApprovalStep;
  result?: ResultStep;
}

export interface SessionReplay {
  readonly session: string;
  readonly stream: string;
  readonly identity: string;
  readonly subject: string;
  readonly groups: readonly string[];
  readonly pod: string | null;
  readonly client: string;
  readonly connection: string;
  readonly protocol: string;
  readonly startedAt: string;
  endedAt?: string;
  endReason?: string;
  summary?: Obj;
  readonly commands: CommandStep[];
}

/** One row of `sessions`: the header and counts, without the commands. */
export interface SessionListing {
  readonly session: string;
  readonly identity: string;
  readonly subject: string;
  readonly pod: string | null;
  readonly connection: string;
  readonly protocol: string;
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly endReason: string | null;
  readonly commands: number;
  readonly denied: number;
  readonly approvals: number;
  readonly masked: number;
}

export interface ReplayOptions {
  /** Keep the commands of this session only (bounded memory on big inputs); undefined keeps every session's. */
  readonly session?: string;
  /** At most this many commands per session are kept (the rest are counted in `droppedCommands`). Default 100,000. */
  readonly maxCommands?: number;
}

const str = (v: unknown, d = ''): string => (typeof v === 'string' ? v : d);
const num = (v: unknown, d = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : d);
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const counts = (v: unknown): Record<string, number> => Object.fromEntries(Object.entries(obj(v)).filter(([, n]) => typeof n === 'number')) as Record<string, number>;

function sumCounts(c: Readonly<Record<string, number>>): number {
  let n = 0;
  for (const v of Object.values(c)) n += v;
  return n;
}

interface Tally {
  denied: number;
  approvals: number;
  masked: number;
  commands: number;
}

function resultStep(e: Obj): ResultStep {
  return {
    at: str(e['time']), rows: typeof e['rows'] === 'number' ? e['rows'] : null, bytes: num(e['bytes']), masked: counts(e['masked']), durationMs: num(e['durationMs']),
    ...(typeof e['sqlState'] === 'string' ? { sqlState: e['sqlState'] } : {}),
    ...(typeof e['httpStatus'] === 'number' ? { httpStatus: e['httpStatus'] } : {}),
    ...(typeof e['error'] === 'string' ? { error: e['error'] } : {}),
  };
}

/** Collects sessions from recording lines pushed one at a time (raw input lines; foreign lines are skipped). */
export class ReplayCollector {
  private readonly byId = new Map<string, SessionReplay>();
  private readonly listing = new Map<string, Tally>();
  private readonly want: string | undefined;
  private readonly maxCommands: number;
  /** Recording lines that did not parse or had no usable shape. */
  skipped = 0;
  /** Commands beyond maxCommands, not kept. */
  droppedCommands = 0;
  /** Lines about a session whose session.start is not in the input (e.g. `kubectl logs --tail`). */
  orphanLines = 0;

  constructor(opts: ReplayOptions = {}) {
    this.want = opts.session;
    this.maxCommands = opts.maxCommands ?? 100_000;
  }

  push(line: string): void {
    const rec = extractRecord(line.endsWith('\r') ? line.slice(0, -1) : line);
    if (rec === null || !rec.startsWith(REC_PREFIX)) return;
    let e: Obj;
    try {
      e = obj(JSON.parse(rec));
    } catch {
      this.skipped++;
      return;
    }
    const type = str(e['type']);
    const session = str(e['session']);
    if (type === 'session.start') return this.start(e, session);
    if (session === '') return; // stream-level lines (checkpoints, reloads) are not part of a session timeline
    const s = this.byId.get(session);
    const l = this.listing.get(session);
    if (!s || !l) {
      if (['statement', 'request', 'result', 'approval.wait', 'approval.outcome', 'session.end'].includes(type)) this.orphanLines++;
      return;
    }
    this.apply(type, e, s, l);
  }

  private start(e: Obj, session: string): void {
    if (session === '') {
      this.skipped++;
      return;
    }
    this.listing.set(session, { denied: 0, approvals: 0, masked: 0, commands: 0 });
    this.byId.set(session, {
      session,
      stream: str(e['stream']),
      identity: str(e['identity']),
      subject: str(e['subject']),
      groups: strs(e['groups']),
      pod: typeof e['pod'] === 'string' ? e['pod'] : null,
      client: str(e['client']),
      connection: str(e['connection']),
      protocol: str(e['protocol']),
      startedAt: str(e['time']),
      commands: [],
    });
  }

  private apply(type: string, e: Obj, s: SessionReplay, l: Tally): void {
    const keep = this.want === undefined || this.want === s.session;
    if (type === 'statement' || type === 'request') return this.command(type, e, s, l, keep);
    if (type === 'session.end') {
      s.endedAt = str(e['time']);
      s.endReason = str(e['reason']);
      s.summary = obj(e['summary']);
      return;
    }
    if (type === 'result') l.masked += sumCounts(counts(e['masked']));
    if (type === 'approval.wait') l.approvals++;
    const cmd = num(e['cmd'], -1);
    const c = keep ? s.commands.findLast((x) => x.cmd === cmd) : undefined;
    if (!c) return;
    if (type === 'result') c.result = resultStep(e);
    else if (type === 'approval.wait') c.approval = { request: str(e['request']), approverGroups: strs(e['approverGroups']), timeoutMs: num(e['timeoutMs']), requestedAt: str(e['time']) };
    else if (type === 'approval.outcome') {
      const base = c.approval ?? { request: str(e['request']), approverGroups: [], timeoutMs: 0, requestedAt: '' };
      c.approval = { ...base, outcome: str(e['outcome']), by: strs(e['by']), waitedMs: num(e['waitedMs']) };
    }
  }

  private command(type: 'statement' | 'request', e: Obj, s: SessionReplay, l: Tally, keep: boolean): void {
    l.commands++;
    const decision = str(e['decision']);
    if (decision === 'deny') l.denied++;
    if (!keep) return;
    if (s.commands.length >= this.maxCommands) {
      this.droppedCommands++;
      return;
    }
    s.commands.push({
      cmd: num(e['cmd'], -1), at: str(e['time']), kind: type,
      text: type === 'statement' ? str(e['text']) : `${str(e['method'])} ${str(e['url'])}`,
      classification: obj(e['classification']), decision,
      rule: typeof e['rule'] === 'string' ? e['rule'] : null,
      ...(typeof e['reason'] === 'string' ? { reason: e['reason'] } : {}),
      ...(typeof e['statementHash'] === 'string' ? { statementHash: e['statementHash'] } : {}),
    });
  }

  /** Sessions in the order they started; with `session` set, only that one (or none). */
  sessions(): SessionReplay[] {
    const all = [...this.byId.values()];
    return this.want === undefined ? all : all.filter((s) => s.session === this.want);
  }

  list(): SessionListing[] {
    return [...this.byId.values()].map((s) => {
      const l = this.listing.get(s.session) ?? { denied: 0, approvals: 0, masked: 0, commands: 0 };
      return {
        session: s.session, identity: s.identity, subject: s.subject, pod: s.pod, connection: s.connection, protocol: s.protocol,
        startedAt: s.startedAt, endedAt: s.endedAt ?? null, endReason: s.endReason ?? null, ...l,
      };
    });
  }
}

/** Collects every line of a text (split on \n). */
export function replayText(text: string, opts: ReplayOptions = {}): ReplayCollector {
  const c = new ReplayCollector(opts);
  for (const line of text.split('\n')) if (line !== '') c.push(line);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Text rendering

function ms(a: string, b: string): string {
  const d = Date.parse(b) - Date.parse(a);
  return Number.isFinite(d) ? `+${(d / 1000).toFixed(3)}s` : '';
}

function maskedText(m: Readonly<Record<string, number>>): string {
  const parts = Object.entries(m).filter(([, n]) => n > 0).map(([k, n]) => `${p(k)}×${n}`);
  return parts.length ? ` masked ${parts.join(', ')}` : '';
}

/**
 * Control characters (terminal escapes, CR, BEL, NUL), C1 controls, bidi overrides and line
 * separators as visible `\\uXXXX`: recorded text is the agent's, and a replay must never drive the
 * auditor's terminal or reorder what it shows.
 */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One line of at most `max` characters, whitespace runs folded, then made printable. */
function oneLine(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return printable(flat.length > max ? `${flat.slice(0, max - 1)}…` : flat);
}

/** A short recorded value (ids, names) for the text output: printable, and at most `max` characters. */
const p = (s: string, max = 200): string => printable(s.length > max ? `${s.slice(0, max - 1)}…` : s);

function resultText(r: ResultStep): string {
  const what = r.error !== undefined ? `error ${r.sqlState !== undefined ? p(r.sqlState) : (r.httpStatus ?? '')} ${oneLine(r.error, 120)}`.replace(/ {2,}/g, ' ') : r.rows !== null ? `${r.rows} row(s)` : r.httpStatus !== undefined ? `HTTP ${r.httpStatus}` : 'ok';
  return `${what}, ${r.bytes} bytes, ${r.durationMs} ms${maskedText(r.masked)}`;
}

function approvalText(a: ApprovalStep): string {
  const who = a.by && a.by.length ? ` by ${p(a.by.join(', '))}` : '';
  const groups = a.approverGroups.length ? ` (approvers: ${p(a.approverGroups.join(', '))})` : '';
  if (a.outcome === undefined) return `approval ${p(a.request)}${groups}: no outcome recorded`;
  return `approval ${p(a.request)}${groups}: ${p(a.outcome)}${who} after ${((a.waitedMs ?? 0) / 1000).toFixed(1)} s`;
}

/** A human timeline of one session. */
export function renderTimeline(s: SessionReplay): string {
  const out: string[] = [];
  out.push(`session ${p(s.session)} (${p(s.protocol)} connection ${p(s.connection)}, identity ${p(s.identity)})`);
  out.push(`  who:     ${p(s.subject)}${s.groups.length ? ` [${p(s.groups.join(', '))}]` : ''}${s.pod !== null && s.pod !== '' ? ` in pod ${p(s.pod)}` : ''} from ${p(s.client)}`);
  out.push(`  started: ${p(s.startedAt)}`);
  for (const c of s.commands) {
    const rule = c.rule !== null ? ` rule ${p(c.rule)}` : '';
    const reason = c.reason !== undefined ? `: ${oneLine(c.reason, 120)}` : '';
    out.push(`  ${ms(s.startedAt, c.at).padStart(10)}  #${c.cmd} ${p(c.decision.toUpperCase())}${rule}${reason}`);
    out.push(`              ${oneLine(c.text)}`);
    if (c.approval) out.push(`              ${approvalText(c.approval)}`);
    if (c.result) out.push(`              → ${resultText(c.result)}`);
    else if (c.decision === 'allow' || c.approval?.outcome === 'approved') out.push('              → no result recorded (refused downstream, connection lost, or still running)');
  }
  if (s.endedAt !== undefined) {
    const sum = obj(s.summary);
    out.push(`  ended:   ${p(s.endedAt)} (${p(s.endReason ?? '')}): ${num(sum['commands'])} command(s), ${num(sum['denied'])} denied, ${num(sum['approvals'])} approval(s), ${num(sum['rows'])} row(s), ${num(sum['bytes'])} bytes${maskedText(counts(sum['masked']))}`);
  } else {
    out.push('  ended:   no session.end recorded (still open, or the sidecar stopped)');
  }
  out.push('  (a replay shows what the recording says; run `verify` to prove the recording whole)');
  return out.join('\n');
}

/** A table of sessions, one per line, for `sessions`. */
export function renderListing(rows: readonly SessionListing[]): string {
  const head = ['SESSION', 'IDENTITY', 'CONNECTION', 'SUBJECT', 'STARTED', 'ENDED', 'CMDS', 'DENIED', 'APPROVALS', 'MASKED'];
  const body = rows.map((r) => [p(r.session, 64), p(r.identity, 64), p(r.connection, 64), p(r.subject, 64), p(r.startedAt, 40), p(r.endedAt ?? '-', 40), String(r.commands), String(r.denied), String(r.approvals), String(r.masked)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  return [head, ...body].map((row) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
