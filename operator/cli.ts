#!/usr/bin/env node
// chaperone-operator: parse flags, start the operator (controllers on the leader, webhooks on every replica), stop gracefully on SIGTERM.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import pino, { type Logger } from 'pino';
import { DEFAULT_ADMIN_PORT } from './admin.ts';
import { DEFAULT_MUTATING_CONFIGURATION, DEFAULT_VALIDATING_CONFIGURATION } from './manifests/webhooks.ts';
import { approvalsPlugin } from './approvals/index.ts';
import { AUDIT_PORT_ENV, AUDIT_TLS_DIR_ENV, auditCompileEnv, auditPlugin, defaultReportUrl } from './audit/plugin.ts';
import { DEFAULT_AUDIT_PORT } from './audit/server.ts';
import { TlsRelay } from './audit/tls-relay.ts';
import { DEFAULT_LEASE_NAME, DEFAULT_WEBHOOK_PORT, startOperator, type OperatorOptions, type WebhookTlsSource } from './main.ts';

export const DEFAULT_NAMESPACE = 'chaperone-system';
export const DEFAULT_SERVICE = 'chaperone-webhook';
const IN_CLUSTER_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export const USAGE = `Usage: chaperone-operator [flags]

  --kubeconfig FILE      kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the pod's ServiceAccount)
  --namespace NS         the operator's namespace: Lease, webhook TLS Secret, never injected
                         (default: $POD_NAMESPACE, the pod's namespace, or ${DEFAULT_NAMESPACE})
  --webhook-port N       HTTPS port of the admission webhooks (default ${DEFAULT_WEBHOOK_PORT})
  --webhook-host HOST    interface to bind (default 0.0.0.0)
  --tls-dir DIR          serve the certificate in DIR (tls.crt, tls.key, ca.crt; e.g. from cert-manager),
                         hot-reloaded; without it the operator keeps its own CA in the Secret
                         chaperone-webhook-tls and patches caBundle into the webhook configurations
  --service NAME         the webhook Service, for the self-managed certificate's names (default ${DEFAULT_SERVICE})
  --no-webhooks          run the controllers only
  --admin-port N         /healthz, /readyz, /metrics (default ${DEFAULT_ADMIN_PORT})
  --leader-elect         elect a leader with the Lease ${DEFAULT_LEASE_NAME} (run controllers on one replica only)
  --sidecar-image IMAGE  the sidecar image injected into agent pods
  --audit-port N         HTTPS port of the sidecars' counter reports, served with the webhook certificate
                         (default $${AUDIT_PORT_ENV} or ${DEFAULT_AUDIT_PORT})
  --audit-url URL        the report URL compiled into every sidecar config
                         (default https://SERVICE.NAMESPACE.svc:AUDIT_PORT)
  --no-audit             no report server: AgentIdentity status counters are not kept
  --log-level LEVEL      trace, debug, info (default), warn, error
  --help                 print this help and exit

Logs are JSON lines on stdout; credentials and tokens are never logged.
SIGTERM / SIGINT: stop leading (drain reconciles, release the Lease), close the servers, exit 0.`;

export interface CliArgs {
  readonly kubeconfig?: string;
  readonly namespace?: string;
  readonly webhookPort: number;
  readonly webhookHost: string;
  readonly tlsDir?: string;
  readonly service: string;
  readonly webhooks: boolean;
  readonly adminPort: number;
  readonly leaderElect: boolean;
  readonly sidecarImage?: string;
  readonly auditPort?: number;
  readonly auditUrl?: string;
  readonly audit: boolean;
  readonly logLevel: string;
  readonly help: boolean;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
const VALUE_FLAGS = ['--kubeconfig', '--namespace', '--webhook-port', '--webhook-host', '--tls-dir', '--service', '--admin-port', '--sidecar-image', '--log-level', '--audit-port', '--audit-url'] as const;
type ValueFlag = (typeof VALUE_FLAGS)[number];

function port(flag: string, v: string): number | { error: string } {
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : { error: `${flag} needs a port number (0-65535), got ${JSON.stringify(v)}` };
}

function setAudit(out: Mutable<CliArgs>, flag: '--audit-url' | '--audit-port', v: string): string | undefined {
  if (flag === '--audit-url') {
    if (!/^https:\/\/[^/]+/.test(v)) return `--audit-url needs an https URL (reports carry ServiceAccount tokens), got ${JSON.stringify(v)}`;
    out.auditUrl = v.replace(/\/+$/, '');
    return undefined;
  }
  const p = port(flag, v);
  if (typeof p !== 'number') return p.error;
  out.auditPort = p;
  return undefined;
}

function setValue(out: Mutable<CliArgs>, flag: ValueFlag, v: string): string | undefined {
  switch (flag) {
    case '--kubeconfig': out.kubeconfig = v; return undefined;
    case '--namespace': out.namespace = v; return undefined;
    case '--webhook-host': out.webhookHost = v; return undefined;
    case '--tls-dir': out.tlsDir = v; return undefined;
    case '--service': out.service = v; return undefined;
    case '--sidecar-image': out.sidecarImage = v; return undefined;
    case '--log-level': out.logLevel = v; return undefined;
    case '--audit-url':
    case '--audit-port':
      return setAudit(out, flag, v);
    case '--webhook-port':
    case '--admin-port': {
      const p = port(flag, v);
      if (typeof p !== 'number') return p.error;
      if (flag === '--webhook-port') out.webhookPort = p;
      else out.adminPort = p;
      return undefined;
    }
  }
}

/** A flag without a value; false when `a` is none. */
function setSwitch(out: Mutable<CliArgs>, a: string): boolean {
  if (a === '--leader-elect') out.leaderElect = true;
  else if (a === '--no-webhooks') out.webhooks = false;
  else if (a === '--no-audit') out.audit = false;
  else if (a === '--help' || a === '-h') out.help = true;
  else return false;
  return true;
}

export function parseArgs(argv: readonly string[]): CliArgs | { readonly error: string } {
  const out: Mutable<CliArgs> = { webhookPort: DEFAULT_WEBHOOK_PORT, webhookHost: '0.0.0.0', service: DEFAULT_SERVICE, webhooks: true, adminPort: DEFAULT_ADMIN_PORT, leaderElect: false, audit: true, logLevel: 'info', help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if ((VALUE_FLAGS as readonly string[]).includes(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '' || (eq < 0 && v.startsWith('--'))) return { error: `${name} needs a value` };
      const err = setValue(out, name as ValueFlag, v);
      if (err) return { error: err };
    } else if (!setSwitch(out, a)) return { error: `unknown argument ${JSON.stringify(a)}; see --help` };
  }
  return out;
}

/** Flag, then $POD_NAMESPACE, then the pod's ServiceAccount namespace file, then the default. */
export function operatorNamespace(args: CliArgs, env: NodeJS.ProcessEnv): string {
  if (args.namespace) return args.namespace;
  if (env.POD_NAMESPACE) return env.POD_NAMESPACE;
  if (existsSync(IN_CLUSTER_NAMESPACE_FILE)) return readFileSync(IN_CLUSTER_NAMESPACE_FILE, 'utf8').trim();
  return DEFAULT_NAMESPACE;
}

/** Anything that could hold a credential is censored wherever it appears in a log object. */
export const REDACT_PATHS = ['authorization', 'token', 'password', 'privateKey', 'keyPem', 'certPem', 'data', 'stringData', 'headers.authorization']
  .flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

export function makeLogger(level: string): Logger {
  return pino({ name: 'chaperone-operator', level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } });
}

function tlsSource(args: CliArgs, namespace: string): WebhookTlsSource {
  if (args.tlsDir) return { kind: 'dir', dir: args.tlsDir };
  return { kind: 'self-managed', service: args.service, targets: { mutating: [DEFAULT_MUTATING_CONFIGURATION], validating: [DEFAULT_VALIDATING_CONFIGURATION] }, extraDnsNames: [`${args.service}.${namespace}`] };
}

/**
 * The report server shares the webhook's certificate (its Service name is in it) through a relay;
 * with --no-webhooks it needs $CHAPERONE_AUDIT_TLS_DIR. Every sidecar then reports to the URL and
 * trusts the CA ConfigMap the plugin keeps per identity.
 */
function audit(args: CliArgs, namespace: string, env: NodeJS.ProcessEnv): Pick<OperatorOptions, 'compileEnv' | 'onWebhookTls'> & { plugin: ReturnType<typeof auditPlugin> } {
  const on = args.audit && (args.webhooks || env[AUDIT_TLS_DIR_ENV] !== undefined);
  if (!on) return { plugin: auditPlugin({ caConfigMaps: false }, { ...env, [AUDIT_TLS_DIR_ENV]: '' }) };
  const port = args.auditPort ?? (env[AUDIT_PORT_ENV] ? Number(env[AUDIT_PORT_ENV]) : DEFAULT_AUDIT_PORT);
  const url = args.auditUrl ?? defaultReportUrl(args.service, namespace, port);
  const relay = args.webhooks ? new TlsRelay() : undefined;
  return {
    compileEnv: { auditReport: auditCompileEnv(url) },
    ...(relay ? { onWebhookTls: (t) => relay.set(t) } : {}),
    plugin: auditPlugin({ port, ...(relay ? { tls: relay } : {}) }, env),
  };
}

export function operatorOptions(args: CliArgs, kubeConfig: KubeConfig, log: Logger, env: NodeJS.ProcessEnv): OperatorOptions {
  const namespace = operatorNamespace(args, env);
  const { plugin, ...auditOptions } = audit(args, namespace, env);
  return {
    kubeConfig, operatorNamespace: namespace, log,
    leaderElection: args.leaderElect ? { leaseName: DEFAULT_LEASE_NAME } : false,
    admin: { port: args.adminPort },
    webhook: args.webhooks ? { host: args.webhookHost, port: args.webhookPort, tls: tlsSource(args, namespace), ...(args.sidecarImage ? { build: { image: args.sidecarImage } } : {}) } : false,
    // ApprovalRequests: admission routes on every replica, the phase controller on the leader.
    // Audit: the sidecars' counter reports → AgentIdentity status (docs/audit.md).
    plugins: [approvalsPlugin(), plugin],
    ...auditOptions,
  };
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const args = parseArgs(argv);
  if ('error' in args) {
    process.stderr.write(`chaperone-operator: ${args.error}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const log = makeLogger(args.logLevel);
  const kc = new KubeConfig();
  if (args.kubeconfig) kc.loadFromFile(args.kubeconfig);
  else kc.loadFromDefault();
  const running = await startOperator(operatorOptions(args, kc, log, env));
  log.info({ webhook: running.webhookUrl, admin: running.adminUrl, leaseIdentity: running.leaseIdentity }, 'operator started');
  await new Promise<void>((resolve) => {
    const onSignal = (sig: string): void => {
      log.info({ signal: sig }, 'signal received; stopping');
      running.stop().then(() => resolve(), (err: unknown) => {
        log.error({ err: err instanceof Error ? err.message : String(err) }, 'stopping failed');
        resolve();
      });
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
  return 0;
}

// Run only as the entry point (tests import the helpers above).
const entry = process.argv[1];
if (entry !== undefined && fileURLToPath(import.meta.url) === realpathSync(entry)) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (err: unknown) => {
    process.stderr.write(`chaperone-operator: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
