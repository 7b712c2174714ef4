// The audit feature as an operator plugin: every replica serves the sidecars' counter reports (HTTPS) and writes AgentIdentity status.counters/lastSession.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OperatorPlugin, OperatorPluginFactory } from '../plugin.ts';
import { DEFAULT_AUDIT_PORT, startAuditServer, type AuditServer } from './server.ts';

export interface AuditPluginOptions {
  /** Directory with tls.crt and tls.key (e.g. the webhook TLS Secret mounted); default $CHAPERONE_AUDIT_TLS_DIR. Without it the plugin is off. */
  readonly tlsDir?: string;
  readonly port?: number;
  readonly host?: string;
  readonly minWriteIntervalMs?: number;
}

export const AUDIT_TLS_DIR_ENV = 'CHAPERONE_AUDIT_TLS_DIR';
export const AUDIT_PORT_ENV = 'CHAPERONE_AUDIT_PORT';

/** Off unless a TLS directory is given: the reports carry ServiceAccount tokens and must not cross the network in clear. */
export function auditPlugin(opts: AuditPluginOptions = {}, env: NodeJS.ProcessEnv = process.env): OperatorPluginFactory {
  return async (ctx): Promise<OperatorPlugin> => {
    const tlsDir = opts.tlsDir ?? env[AUDIT_TLS_DIR_ENV];
    if (!tlsDir) {
      ctx.log.info({}, `audit report server off (set ${AUDIT_TLS_DIR_ENV} to a directory with tls.crt and tls.key to keep AgentIdentity status counters)`);
      return { name: 'audit' };
    }
    const tls = { cert: readFileSync(join(tlsDir, 'tls.crt'), 'utf8'), key: readFileSync(join(tlsDir, 'tls.key'), 'utf8') };
    const port = opts.port ?? (env[AUDIT_PORT_ENV] ? Number(env[AUDIT_PORT_ENV]) : DEFAULT_AUDIT_PORT);
    const server: AuditServer = await startAuditServer({
      client: ctx.client, log: ctx.log.child({ part: 'audit' }), tls, port,
      ...(opts.host !== undefined ? { host: opts.host } : {}),
      ...(opts.minWriteIntervalMs !== undefined ? { minWriteIntervalMs: opts.minWriteIntervalMs } : {}),
    });
    return { name: 'audit', stop: () => server.close() };
  };
}
