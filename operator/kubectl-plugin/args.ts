// kubectl-chaperone argument parsing (pure): global kubectl-style flags, the subcommand table, per-command flags.

export interface GlobalFlags {
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly namespace?: string;
  readonly allNamespaces: boolean;
  readonly output?: 'json' | 'wide';
  readonly watch: boolean;
  readonly reason?: string;
  readonly help: boolean;
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
  /** How many positional arguments (NAME) it takes. */
  readonly args: 0 | 1;
  readonly reasonRequired?: boolean;
}

/** The subcommand table; issue 9 adds sessions, replay and verify here. */
export const COMMANDS: readonly CommandSpec[] = [
  { name: 'approvals', usage: 'kubectl chaperone approvals [-n NS | -A] [--watch] [-o json|wide]', summary: 'list pending ApprovalRequests (name, age, identity, connection, command, requester, expires)', args: 0 },
  { name: 'approve', usage: 'kubectl chaperone approve NAME [-n NS] [--reason TEXT]', summary: 'approve a held command (the webhook records you as the reviewer)', args: 1 },
  { name: 'deny', usage: 'kubectl chaperone deny NAME [-n NS] --reason TEXT', summary: 'deny a held command; the agent is shown the reason', args: 1, reasonRequired: true },
  { name: 'revoke', usage: 'kubectl chaperone revoke NAME [-n NS] --reason TEXT', summary: 'end an approved window early', args: 1, reasonRequired: true },
];

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const VALUE_FLAGS: Readonly<Record<string, keyof GlobalFlags>> = {
  '--kubeconfig': 'kubeconfig', '--context': 'context', '-n': 'namespace', '--namespace': 'namespace', '-o': 'output', '--output': 'output', '--reason': 'reason', '-m': 'reason',
};
const BOOL_FLAGS: Readonly<Record<string, keyof GlobalFlags>> = { '-A': 'allNamespaces', '--all-namespaces': 'allNamespaces', '-w': 'watch', '--watch': 'watch', '-h': 'help', '--help': 'help' };

function setValue(flags: Record<string, unknown>, key: keyof GlobalFlags, value: string | undefined, flag: string): void {
  if (value === undefined) throw new UsageError(`${flag} needs a value`);
  if (key === 'output' && value !== 'json' && value !== 'wide') throw new UsageError(`-o ${value}: use -o json or -o wide`);
  flags[key] = value;
}

/** `--flag value`, `--flag=value`, `-nNS` is not supported (kubectl's own plugins pass flags through as typed). */
export function parseArgs(argv: readonly string[]): Parsed {
  const flags: Record<string, unknown> = { allNamespaces: false, watch: false, help: false };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    const vkey = VALUE_FLAGS[name];
    const bkey = BOOL_FLAGS[name];
    if (vkey !== undefined) setValue(flags, vkey, eq > 0 ? a.slice(eq + 1) : argv[++i], name);
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
  if (p.positional.length !== spec.args) throw new UsageError(spec.args === 1 ? `${spec.name} needs the ApprovalRequest NAME: ${spec.usage}` : `${spec.name} takes no NAME: ${spec.usage}`);
  if (spec.reasonRequired && (p.flags.reason ?? '').trim() === '') throw new UsageError(`${spec.name} needs --reason "…" (the agent is shown it): ${spec.usage}`);
  return spec;
}

export function helpText(): string {
  const rows = COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}\n             ${c.usage}`);
  return [
    'kubectl chaperone: decide the commands Chaperone holds for approval.',
    '',
    'Commands:',
    ...rows,
    '',
    'Flags: --kubeconfig FILE, --context NAME, -n/--namespace NS, -A/--all-namespaces, -o json|wide, -w/--watch, --reason TEXT, -h/--help',
    'Each decision is the merge patch `kubectl patch approvalrequest NAME --type=merge -p \'{"spec":{"review":{"decision":"Approve","reason":"…"}}}\'`;',
    'the admission webhook records who you are. Exit codes: 0 done, 1 refused by the API server or webhook, 2 usage, 3 not found, 4 API server unreachable.',
  ].join('\n');
}
