// Recording event types: readonly, told apart by `type`; the envelope (seq, time, prev, …) is added by the recorder.

/** The marker field every recording line starts with; lines without it are ignored by `verify`. */
export const REC_VERSION = 'rec/v1';
/** Every recording line begins with exactly these bytes (the marker is the first key). */
export const REC_PREFIX = '{"chaperone":"rec/v1",';

export type Protocol = 'postgres' | 'http' | 'kubernetes';
/** What policy decided: forwarded, refused, or held for a human. */
export type Decision = 'allow' | 'deny' | 'approval';

/** A short summary of what a SQL statement does, from the PostgreSQL parser. */
export interface StatementClassification {
  /** read, write, ddl, dcl, transaction, utility, … (one per parsed statement). */
  readonly kinds: readonly string[];
  readonly tables: readonly string[];
  readonly functions: readonly string[];
}

/** A short summary of what an HTTP or Kubernetes API request does. */
export interface RequestClassification {
  /** `http` or a Kubernetes verb class; free-form but stable. */
  readonly kind: string;
  readonly verb?: string;
  readonly resource?: string;
  readonly namespace?: string;
  readonly name?: string;
}

export interface SessionStartEvent {
  readonly type: 'session.start';
  readonly session: string;
  /** AgentIdentity name. */
  readonly identity: string;
  /** The token's `sub`. */
  readonly subject: string;
  readonly groups: readonly string[];
  /** `namespace/name` of the pod the token is bound to, or null. */
  readonly pod: string | null;
  /** Client address `ip:port`. */
  readonly client: string;
  readonly connection: string;
  readonly protocol: Protocol;
}

export interface StatementEvent {
  readonly type: 'statement';
  readonly session: string;
  /** Command number within the session; `result` and `approval.*` lines refer to it. */
  readonly cmd: number;
  /** Masked statement text (the recorder masks again and bounds the length). */
  readonly text: string;
  readonly classification: StatementClassification;
  readonly decision: Decision;
  /** The rule that decided, or null for the default. */
  readonly rule: string | null;
  readonly reason?: string;
  /** The statement hash the approval flow binds to (hex). */
  readonly statementHash: string;
}

export interface RequestEvent {
  readonly type: 'request';
  readonly session: string;
  readonly cmd: number;
  readonly method: string;
  /** Masked URL (path and query). */
  readonly url: string;
  readonly classification: RequestClassification;
  readonly decision: Decision;
  readonly rule: string | null;
  readonly reason?: string;
}

export interface ResultEvent {
  readonly type: 'result';
  readonly session: string;
  readonly cmd: number;
  readonly rows: number | null;
  readonly bytes: number;
  /** Values masked in the response, by detector id. */
  readonly masked: Readonly<Record<string, number>>;
  readonly durationMs: number;
  readonly sqlState?: string;
  readonly httpStatus?: number;
  /** Masked error message when the upstream refused. */
  readonly error?: string;
}

export interface ApprovalWaitEvent {
  readonly type: 'approval.wait';
  readonly session: string;
  readonly cmd: number;
  /** The ApprovalRequest (or local backend) id. */
  readonly request: string;
  readonly approverGroups: readonly string[];
  readonly timeoutMs: number;
}

export interface ApprovalOutcomeEvent {
  readonly type: 'approval.outcome';
  readonly session: string;
  readonly cmd: number;
  readonly request: string;
  readonly outcome: 'approved' | 'denied' | 'expired' | 'cancelled';
  /** Authenticated approvers (usernames), empty when none decided. */
  readonly by: readonly string[];
  readonly waitedMs: number;
}

export interface PolicyReloadEvent {
  readonly type: 'policy.reload';
  readonly ok: boolean;
  /** Hash of the config now in force (the last good one if `ok` is false). */
  readonly configHash: string;
  readonly error?: string;
}

export interface SessionSummary {
  readonly commands: number;
  readonly denied: number;
  readonly approvals: number;
  readonly rows: number;
  readonly bytes: number;
  readonly masked: Readonly<Record<string, number>>;
  readonly durationMs: number;
}

export interface SessionEndEvent {
  readonly type: 'session.end';
  readonly session: string;
  /** `client-closed`, `upstream-closed`, `error`, `shutdown`, … */
  readonly reason: string;
  readonly summary: SessionSummary;
}

/** What callers record. */
export type RecordEvent =
  | SessionStartEvent
  | StatementEvent
  | RequestEvent
  | ResultEvent
  | ApprovalWaitEvent
  | ApprovalOutcomeEvent
  | PolicyReloadEvent
  | SessionEndEvent;

/** A reference to one line of a stream: what a new stream says it follows. */
export interface LineRef {
  readonly stream: string;
  readonly seq: number;
  readonly hash: string;
}

/** Seq 0 of every stream; written by the recorder only. */
export interface StreamStartEvent {
  readonly type: 'stream.start';
  /** `start` (process start), `recovered` (after a failed write), `reopened` (file moved away). */
  readonly reason: 'start' | 'recovered' | 'reopened';
  /** The last acknowledged line of the previous stream, when the recorder knows it. */
  readonly after: LineRef | null;
  /** The signing scheme in force: at most `everyLines` lines between checkpoints. */
  readonly checkpoint: { readonly key: string; readonly everyLines: number; readonly everyMs: number } | null;
  /** Why the previous stream ended, when it ended in a failure (an error code, never data). */
  readonly error?: string;
  /** Bytes of a torn (never acknowledged) last line cut from the file on open. */
  readonly truncatedBytes?: number;
  /** Free-form origin: pod, container, version. */
  readonly origin?: Readonly<Record<string, string>>;
}

/** A clean end of stream (close or shutdown). */
export interface StreamEndEvent {
  readonly type: 'stream.end';
  readonly reason: string;
}

/** An Ed25519 signature over the chain so far (see docs/recording.md for the signed message). */
export interface CheckpointEvent {
  readonly type: 'checkpoint';
  /** Key id: first 16 hex digits of SHA-256 over the public key's SPKI DER. */
  readonly key: string;
  /** Hex Ed25519 signature (128 hex digits). */
  readonly sig: string;
}

/** What the recorder writes on its own. */
export type StreamEvent = StreamStartEvent | StreamEndEvent | CheckpointEvent;

export type AnyEvent = RecordEvent | StreamEvent;
export type EventType = AnyEvent['type'];

/** Every type a v1 line may carry; `verify` refuses others. */
export const EVENT_TYPES: readonly EventType[] = [
  'stream.start',
  'stream.end',
  'checkpoint',
  'session.start',
  'statement',
  'request',
  'result',
  'approval.wait',
  'approval.outcome',
  'policy.reload',
  'session.end',
];

/** The envelope every line carries, in this key order, before the event's own fields. */
export interface Envelope {
  readonly chaperone: typeof REC_VERSION;
  readonly stream: string;
  readonly seq: number;
  /** Hex SHA-256 of the previous line's exact bytes, or the stream's genesis value at seq 0. */
  readonly prev: string;
  /** ISO 8601 UTC with milliseconds. */
  readonly time: string;
}

/** A parsed recording line. */
export type RecordLine = Envelope & AnyEvent;
