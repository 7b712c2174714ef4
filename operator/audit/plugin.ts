// The audit feature as an operator plugin: every replica serves the sidecars' counter reports (HTTPS, the webhook's certificate) and writes AgentIdentity status; the leader keeps the CA ConfigMaps the sidecars trust the server with.
import type { OperatorPlugin, OperatorPluginFactory } from '../plugin.ts';
import { watchCertDir, type CertDir } from '../certs/files.ts';
import type { AuditReportEnv } from '../compile/compile.ts';
import { CaDistributor } from './ca-configmaps.ts';
import { AUDIT_CA_KEY, auditCaConfigMapName } from './names.ts';
import { DEFAULT_AUDIT_PORT, startAuditServer, type AuditServer } from './server.ts';
import { TlsRelay } from './tls-relay.ts';

export interface AuditPluginOptions {
  /**
   * The serving pair (and CA) to use: the webhook's, relayed by main.ts (`onWebhookTls`), so the
   * self-managed and cert-manager modes both work and rotate together.
   */
  readonly tls?: TlsRelay;
  /** Or a directory with tls.crt, tls.key, ca.crt (hot-reloaded); default $CHAPERONE_AUDIT_TLS_DIR. Without either the plugin is off. */
  readonly tlsDir?: string;
  readonly port?: number;
  readonly host?: string;
  readonly minWriteIntervalMs?: number;
  /** Keep a CA ConfigMap per identity for the sidecars (default true; pair it with `compileEnvFor`). */
  readonly caConfigMaps?: boolean;
}

export const AUDIT_TLS_DIR_ENV = 'CHAPERONE_AUDIT_TLS_DIR';
export const AUDIT_PORT_ENV = 'CHAPERONE_AUDIT_PORT';

/** What the compiler needs so every sidecar reports to `url` and trusts the CA ConfigMap the plugin keeps. */
export function auditCompileEnv(url: string): AuditReportEnv {
  return { url, caConfigMap: { nameFor: auditCaConfigMapName, key: AUDIT_CA_KEY } };
}

/** `https://<service>.<namespace>.svc:<port>`: the webhook Service's name is in the serving certificate. */
export function defaultReportUrl(service: string, namespace: string, port: number = DEFAULT_AUDIT_PORT): string {
  return `https://${service}.${namespace}.svc:${port}`;
}

/** Off without TLS: the reports carry ServiceAccount tokens and must not cross the network in clear. */
export function auditPlugin(opts: AuditPluginOptions = {}, env: NodeJS.ProcessEnv = process.env): OperatorPluginFactory {
  return async (ctx): Promise<OperatorPlugin> => {
    const log = ctx.log.child({ part: 'audit' });
    const tlsDir = opts.tlsDir ?? env[AUDIT_TLS_DIR_ENV];
    if (!opts.tls && !tlsDir) {
      log.info({}, `audit report server off (no webhook TLS to share; set ${AUDIT_TLS_DIR_ENV} to a directory with tls.crt and tls.key to keep AgentIdentity status counters)`);
      return { name: 'audit' };
    }
    const relay = opts.tls ?? new TlsRelay();
    let dir: CertDir | undefined;
    if (!opts.tls && tlsDir) {
      dir = await watchCertDir({ dir: tlsDir, log, onChange: (t) => relay.set(t) });
      relay.set(dir.current());
    }
    const port = opts.port ?? (env[AUDIT_PORT_ENV] ? Number(env[AUDIT_PORT_ENV]) : DEFAULT_AUDIT_PORT);
    // The webhook's pair arrives after the plugins are made (main.ts starts the webhook server last): listen on the first one.
    let server: AuditServer | undefined;
    let starting = false;
    let resolveStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => (resolveStarted = resolve));
    relay.subscribe((t) => {
      if (server) return server.setTls(t);
      if (starting) return;
      starting = true;
      startAuditServer({
        client: ctx.client, log, tls: { cert: t.cert, key: t.key }, port, ledgerNamespace: ctx.operatorNamespace,
        ...(opts.host !== undefined ? { host: opts.host } : {}),
        ...(opts.minWriteIntervalMs !== undefined ? { minWriteIntervalMs: opts.minWriteIntervalMs } : {}),
      }).then((s) => {
        server = s;
        // A rotation while it was starting.
        const latest = relay.current();
        if (latest && latest !== t) s.setTls(latest);
        log.info({ url: s.url }, 'audit report server serving the webhook certificate');
      }, (e: unknown) => {
        log.error({ err: (e as Error).message, port }, 'audit report server could not listen; AgentIdentity status counters stay as they are');
      }).finally(resolveStarted);
    });
    const ca = opts.caConfigMaps ?? true ? new CaDistributor({ ctx, identities: ctx.identities, relay, log }) : undefined;
    return {
      name: 'audit',
      startLeading: () => ca?.start(),
      stop: async () => {
        ca?.stop();
        dir?.close();
        if (relay.current()) await started;
        await server?.close();
      },
    };
  };
}

/** The running server of an audit plugin is not exposed; tests start `startAuditServer` directly. */
export type { AuditServer } from './server.ts';
