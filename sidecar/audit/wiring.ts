// Builds the sidecar's audit outputs from the config: Kubernetes Events (identity.events) and counter reports to the operator (identity.report).
import { KubeHttp } from '../approvals/kube-http.ts';
import { DEFAULT_KUBERNETES_URL, DEFAULT_SA_CA_FILE, DEFAULT_SA_TOKEN_FILE } from '../core/config-schema.ts';
import type { AuditEventsConfig, AuditReportConfig, IdentityConfig, PodInfo } from '../core/config-types.ts';
import { CounterTally } from './counters.ts';
import { KubernetesEventEmitter } from './emitter.ts';
import { ReportClient } from './report-client.ts';
import { DEFAULT_REPORT_INTERVAL_SECONDS, StatusReporter } from './reporter.ts';
import type { AuditObserver } from './tap.ts';

export interface AuditLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface Audit {
  readonly observers: readonly AuditObserver[];
  readonly identityName: string | undefined;
  readonly emitter: KubernetesEventEmitter | undefined;
  readonly reporter: StatusReporter | undefined;
  /** Writes the last folded Events and the last counters (bounded by the API timeouts). */
  close(): Promise<void>;
}

export interface AuditOverrides {
  /** Events window / flush tuning (tests). */
  readonly events?: { readonly flushMs?: number; readonly windowMs?: number; readonly maxNewPerWindow?: number };
}

/**
 * Events and reports need the pod (POD_NAME, POD_NAMESPACE, POD_UID from the downward API) and the
 * identity name; without them they stay off and say why once.
 */
export function startAudit(identity: IdentityConfig, pod: PodInfo, log: AuditLog, o: AuditOverrides = {}): Audit {
  const ev = identity.events ? events(identity.events, identity.name, pod, log, o) : undefined;
  const rp = identity.report ? report(identity.report, identity.name, pod, log) : undefined;
  const parts = [ev, rp].filter((x) => x !== undefined);
  return {
    observers: parts.map((p) => p.observe), identityName: identity.name, emitter: ev?.emitter, reporter: rp?.reporter,
    close: async () => {
      await Promise.allSettled(parts.map((p) => p.close()));
    },
  };
}

interface Part {
  readonly observe: AuditObserver;
  close(): Promise<void>;
}

function events(ev: AuditEventsConfig, name: string | undefined, pod: PodInfo, log: AuditLog, o: AuditOverrides): (Part & { emitter: KubernetesEventEmitter }) | undefined {
  if (!pod.namespace || !pod.name) {
    log.warn({}, 'identity.events is set but POD_NAME/POD_NAMESPACE are not: Kubernetes Events are off (set them from the downward API)');
    return undefined;
  }
  let api: KubeHttp;
  try {
    api = new KubeHttp({ apiServerUrl: ev.apiServerUrl ?? DEFAULT_KUBERNETES_URL, caFile: ev.caFile ?? DEFAULT_SA_CA_FILE, tokenFile: ev.tokenFile ?? DEFAULT_SA_TOKEN_FILE });
  } catch (e) {
    // Events are a summary: a missing CA turns them off, it never stops the sidecar.
    log.warn({ err: (e as Error).message }, 'Kubernetes Events are off: the API server CA could not be read (identity.events.caFile)');
    return undefined;
  }
  const podRef = { apiVersion: 'v1', kind: 'Pod', namespace: pod.namespace, name: pod.name, ...(pod.uid ? { uid: pod.uid } : {}) };
  const idRef = name ? { apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', namespace: pod.namespace, name } : null;
  const emitter = new KubernetesEventEmitter({ api, targets: { pod: podRef, identity: idRef }, reportingInstance: pod.name, log, ...o.events });
  return {
    emitter,
    observe: (e) => emitter.observe(e),
    close: async () => {
      await emitter.close();
      api.close();
    },
  };
}

function report(rp: AuditReportConfig, name: string | undefined, pod: PodInfo, log: AuditLog): (Part & { reporter: StatusReporter }) | undefined {
  if (!name || !pod.namespace || !pod.name || !pod.uid) {
    log.warn({}, 'identity.report is set but identity.name or POD_NAME/POD_NAMESPACE/POD_UID are not: counters are not reported');
    return undefined;
  }
  let api: ReportClient;
  try {
    // The CA file is re-read before each report: the operator rotates it in the mounted ConfigMap.
    api = new ReportClient({ apiServerUrl: rp.url, ...(rp.caFile ? { caFile: rp.caFile } : {}), tokenFile: rp.tokenFile ?? DEFAULT_SA_TOKEN_FILE });
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'counter reports are off: the report server CA could not be read (identity.report.caFile)');
    return undefined;
  }
  const tally = new CounterTally();
  const reporter = new StatusReporter({ api, tally, identity: name, pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid }, intervalMs: (rp.intervalSeconds ?? DEFAULT_REPORT_INTERVAL_SECONDS) * 1000, log });
  return {
    reporter,
    observe: (e) => tally.observe(e),
    close: async () => {
      await reporter.close();
      api.close();
    },
  };
}
