// kubectl-chaperone argument parsing (pure): global kubectl-style flags, the subcommand table, per-command flags.

export interface GlobalFlags {
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly namespace?: string;
  readonly allNamespaces: boolean;
  readonly output?: 'json' | 'wide' | 'text';
  readonly watch: boolean;
  readonly reason?: string;
  readonly help: boolean;
  /** Recording source for sessions/replay/verify: a file, or - for stdin. */
  readonly filename?: string;
  /** Recording source: the sidecar logs of every pod matching this label selector. */
  readonly selector?: string;
  /** The container whose log holds the recording (default: the injected sidecar). */
  readonly container?: string;
  /** Read the previous (restarted) container's log. */
  readonly previous: boolean;
  /** Ed25519 public keys (PEM files) for verify; repeatable. */
  readonly keys: readonly string[];
  readonly requireSealed: boolean;
  /** verify: fail on a stream without stream.end that no later stream follows (a cut tail). */
  readonly requireClosed: boolean;
  readonly partial: boolean;
}

export interface Parsed {
  readonly command: string | undefined;
  readonly positional: readonly string[];
  readonly flags: GlobalFlags;
}

export interface CommandSpec {
  readonly name: string;
  readonly usage: string;
  readonly summary: string;
  /** How many positional arguments (NAME) it takes at least. */
  readonly args: 0 | 1;
  /** At most (default: args). */
  readonly maxArgs?: number;
  readonly reasonRequired?: boolean;
}

/** The subcommand table. */
export const COMMANDS: readonly CommandSpec[] = [
  { name: 'approvals', usage: 'kubectl chaperone approvals [-n NS | -A] [--watch] [-o json|wide]', summary: 'list pending ApprovalRequests (name, age, identity, connection, command, requester, expires)', args: 0 },
  { name: 'approve', usage: 'kubectl chaperone approve NAME [-n NS] [--reason TEXT]', summary: 'approve a held command (the webhook records you as the reviewer)', args: 1 },
  { name: 'deny', usage: 'kubectl chaperone deny NAME [-n NS] --reason TEXT', summary: 'deny a held command; the agent is shown the reason', args: 1, reasonRequired: true },
  { name: 'revoke', usage: 'kubectl chaperone revoke NAME [-n NS] --reason TEXT', summary: 'end an approved window early', args: 1, reasonRequired: true },
  { name: 'sessions', usage: 'kubectl chaperone sessions [POD | -f FILE|- | -l SELECTOR] [-n NS] [--previous] [-o json]', summary: 'list the sessions in a recording (a sidecar\'s log, or a file)', args: 0, maxArgs: 1 },
  { name: 'replay', usage: 'kubectl chaperone replay SESSION [POD | -f FILE|- | -l SELECTOR] [-n NS] [--previous] [-o text|json]', summary: 'the timeline of one session: who, each command with its decision, results, masking, approvals, timing', args: 1, maxArgs: 2 },
  { name: 'verify', usage: 'kubectl chaperone verify FILE|-|POD [-l SELECTOR] [-n NS] [--previous] [--key PUB.pem]... [--require-sealed] [--require-closed] [--partial] [-o json]', summary: 'check a recording\'s sequence, hash chain and signatures; exit 0 only when whole', args: 0, maxArgs: 1 },
];

/** The commands that read a recording rather than ApprovalRequests. */
export const RECORDING_COMMANDS: ReadonlySet<string> = new Set(['sessions', 'replay', 'verify']);

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const VALUE_FLAGS: Readonly<Record<string, keyof GlobalFlags>> = {
  '--kubeconfig': 'kubeconfig', '--context': 'context', '-n': 'namespace', '--namespace': 'namespace', '-o': 'output', '--output': 'output', '--reason': 'reason', '-m': 'reason',
  '-f': 'filename', '--filename': 'filename', '-l': 'selector', '--selector': 'selector', '-c': 'container', '--container': 'container',
};
const BOOL_FLAGS: Readonly<Record<string, keyof GlobalFlags>> = {
  '-A': 'allNamespaces', '--all-namespaces': 'allNamespaces', '-w': 'watch', '--watch': 'watch', '-h': 'help', '--help': 'help',
  '-p': 'previous', '--previous': 'previous', '--require-sealed': 'requireSealed', '--require-closed': 'requireClosed', '--partial': 'partial',
};

function setValue(flags: Record<string, unknown>, key: keyof GlobalFlags, value: string | undefined, flag: string): void {
  if (value === undefined) throw new UsageError(`${flag} needs a value`);
  if (key === 'output' && value !== 'json' && value !== 'wide' && value !== 'text') throw new UsageError(`-o ${value}: use -o json or -o wide (replay also takes -o text)`);
  flags[key] = value;
}

/** `--flag value`, `--flag=value`, `-nNS` is not supported (kubectl's own plugins pass flags through as typed). */
export function parseArgs(argv: readonly string[]): Parsed {
  const keys: string[] = [];
  const flags: Record<string, unknown> = { allNamespaces: false, watch: false, help: false, previous: false, requireSealed: false, requireClosed: false, partial: false, keys };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    const vkey = VALUE_FLAGS[name];
    const bkey = BOOL_FLAGS[name];
    if (name === '--key') {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new UsageError('--key needs a public key file (PEM)');
      keys.push(v);
    } else if (vkey !== undefined) setValue(flags, vkey, eq > 0 ? a.slice(eq + 1) : argv[++i], name);
    else if (bkey !== undefined) flags[bkey] = true;
    else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown flag ${a}; see kubectl chaperone --help`);
    else positional.push(a);
  }
  const [command, ...rest] = positional;
  return { command, positional: rest, flags: flags as unknown as GlobalFlags };
}

/** Checks the command exists and got what it needs. */
export function checkCommand(p: Parsed): CommandSpec {
  const spec = COMMANDS.find((c) => c.name === p.command);
  if (!spec) throw new UsageError(p.command === undefined ? 'no command given' : `unknown command ${JSON.stringify(p.command)}; commands: ${COMMANDS.map((c) => c.name).join(', ')}`);
  const max = spec.maxArgs ?? spec.args;
  if (p.positional.length < spec.args) throw new UsageError(spec.name === 'replay' ? `replay needs the SESSION id (list them with kubectl chaperone sessions): ${spec.usage}` : `${spec.name} needs the ApprovalRequest NAME: ${spec.usage}`);
  if (p.positional.length > max) throw new UsageError(max === 0 ? `${spec.name} takes no NAME: ${spec.usage}` : `${spec.name} takes at most ${max} argument(s): ${spec.usage}`);
  if (p.flags.requireSealed && p.flags.keys.length === 0) throw new UsageError('--require-sealed needs --key PUB.pem: signatures must be checked to prove anything');
  if (spec.reasonRequired && (p.flags.reason ?? '').trim() === '') throw new UsageError(`${spec.name} needs --reason "…" (the agent is shown it): ${spec.usage}`);
  return spec;
}

export function helpText(): string {
  const rows = COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}\n             ${c.usage}`);
  return [
    'kubectl chaperone: decide the commands Chaperone holds for approval; list, replay and verify session recordings.',
    '',
    'Commands:',
    ...rows,
    '',
    'Flags: --kubeconfig FILE, --context NAME, -n/--namespace NS, -A/--all-namespaces, -o json|wide|text, -w/--watch, --reason TEXT, -h/--help',
    'Recording sources: POD or pod/NAME (its chaperone-sidecar log, read through the API with your kubeconfig; -c CONTAINER, -p/--previous),',
    '  -l SELECTOR (the sidecar logs of every matching pod), -f FILE or -f - (a recording file or saved kubectl logs output). Verify: --key PUB.pem (repeatable), --require-sealed, --require-closed (no cut tail; not for a live pod), --partial.',
    'Each decision is the merge patch `kubectl patch approvalrequest NAME --type=merge -p \'{"spec":{"review":{"decision":"Approve","reason":"…"}}}\'`;',
    'the admission webhook records who you are. Exit codes: 0 done, 1 refused by the API server or webhook, 2 usage, 3 not found, 4 API server unreachable.',
  ].join('\n');
}
