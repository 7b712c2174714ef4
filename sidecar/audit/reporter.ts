// Sends the sidecar's counters to the operator, which keeps AgentIdentity status; authenticated by the sidecar's own API-audience ServiceAccount token.
//
// Each report carries the counts since the previous acknowledged one, numbered per sidecar process
// (`stream`, `seq`). A report is retried unchanged until the operator acknowledges it, so a lost
// answer never double-counts (the operator drops a seq it has applied); new counts wait for the
// next report. Never blocks or fails a session: errors are counted and logged at most once a minute.
import { randomBytes } from 'node:crypto';
import type { KubeHttp } from '../approvals/kube-http.ts';
import { isZero, type CounterTally, type Counters, type LastSession } from './counters.ts';

export const REPORT_PATH = '/audit/v1/report';
export const REPORT_KIND = 'SidecarReport';
export const DEFAULT_REPORT_INTERVAL_SECONDS = 30;

export interface ReportBody {
  readonly apiVersion: 'chaperone.dev/v1alpha1';
  readonly kind: typeof REPORT_KIND;
  /** The AgentIdentity (in the pod's namespace) the sidecar enforces. */
  readonly identity: string;
  readonly pod: { readonly namespace: string; readonly name: string; readonly uid: string };
  /** Random per sidecar process. */
  readonly stream: string;
  /** 1, 2, 3, … per stream; the operator applies each seq once. */
  readonly seq: number;
  readonly delta: Counters;
  readonly lastSession?: LastSession;
}

export interface ReporterOptions {
  readonly api: Pick<KubeHttp, 'request'>;
  readonly tally: CounterTally;
  readonly identity: string;
  readonly pod: ReportBody['pod'];
  readonly intervalMs?: number;
  readonly log?: { warn(obj: object, msg: string): void };
  readonly now?: () => number;
}

export interface ReporterStats {
  readonly sent: number;
  readonly failed: number;
  readonly lastError: string | null;
}

export class StatusReporter {
  private readonly stream = randomBytes(8).toString('hex');
  private seq = 0;
  private inflight: ReportBody | null = null;
  private readonly timer: NodeJS.Timeout;
  private running: Promise<boolean> | null = null;
  private lastWarn = -Infinity;
  private stats = { sent: 0, failed: 0, lastError: null as string | null };

  constructor(private readonly o: ReporterOptions) {
    this.timer = setInterval(() => void this.flush(), o.intervalMs ?? DEFAULT_REPORT_INTERVAL_SECONDS * 1000);
    this.timer.unref();
  }

  health(): ReporterStats {
    return { ...this.stats };
  }

  /** Sends what is pending now (one report at a time); true when nothing is left unacknowledged. */
  flush(): Promise<boolean> {
    this.running ??= this.send().finally(() => (this.running = null));
    return this.running;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    if (this.running) await this.running;
    await this.flush();
  }

  private next(): ReportBody | null {
    const { delta, lastSession } = this.o.tally.take();
    if (isZero(delta) && !lastSession) return null;
    return { apiVersion: 'chaperone.dev/v1alpha1', kind: REPORT_KIND, identity: this.o.identity, pod: this.o.pod, stream: this.stream, seq: ++this.seq, delta, ...(lastSession ? { lastSession } : {}) };
  }

  private async send(): Promise<boolean> {
    const body = this.inflight ?? this.next();
    if (!body) return true;
    this.inflight = body;
    try {
      const r = await this.o.api.request('POST', REPORT_PATH, body);
      if (r.status >= 200 && r.status < 300) {
        this.inflight = null;
        this.stats.sent++;
        return true;
      }
      const msg = (r.body as { message?: string } | undefined)?.message ?? '';
      // A refusal (4xx other than 429) will not change on retry: drop it rather than block every later count.
      if (r.status >= 400 && r.status < 500 && r.status !== 429) this.inflight = null;
      this.fail(`HTTP ${r.status}${msg ? `: ${msg}` : ''}`);
    } catch (e) {
      this.fail((e as Error).message);
    }
    return false;
  }

  private fail(why: string): void {
    this.stats.failed++;
    this.stats.lastError = why;
    const t = (this.o.now ?? Date.now)();
    if (t - this.lastWarn < 60_000) return;
    this.lastWarn = t;
    this.o.log?.warn({ err: why, failed: this.stats.failed }, 'could not report counters to the operator (AgentIdentity status lags; the recording is unaffected)');
  }
}
