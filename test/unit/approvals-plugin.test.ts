// kubectl-chaperone without a cluster: flags and the subcommand table, usage errors and exit codes, the table, the merge patch.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkCommand, parseArgs, UsageError } from '../../operator/kubectl-plugin/args.ts';
import { age, table } from '../../operator/kubectl-plugin/format.ts';
import { EXIT, reviewPatch, run } from '../../operator/kubectl-plugin/main.ts';
import { T0, request } from './approvals-fixtures.ts';

describe('kubectl-chaperone', () => {
  it('parses kubectl-style flags in any position', () => {
    const p = parseArgs(['approve', '-n', 'agents', 'pg-1', '--reason=ticket 1', '--context', 'prod', '--kubeconfig', '/k']);
    assert.deepEqual(p.positional, ['pg-1']);
    assert.equal(p.flags.namespace, 'agents');
    assert.equal(p.flags.reason, 'ticket 1');
    assert.equal(p.flags.context, 'prod');
    assert.equal(p.flags.kubeconfig, '/k');
    assert.equal(parseArgs(['approvals', '-A', '-w']).flags.allNamespaces, true);
  });

  const usage: [string[], RegExp][] = [
    [['deny', 'pg-1'], /deny needs --reason/],
    [['approve'], /needs the ApprovalRequest NAME/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['approvals', '--bogus'], /unknown flag --bogus/],
    [['approvals', '-o', 'yaml'], /use -o json or -o wide/],
  ];
  for (const [argv, msg] of usage) {
    it(`usage error: ${argv.join(' ')}`, () => {
      assert.throws(() => checkCommand(parseArgs(argv)), (e: Error) => e instanceof UsageError && msg.test(e.message));
    });
  }

  it('exit code 2 and the message on stderr for a usage error; --help exits 0', async () => {
    const err: string[] = [];
    assert.equal(await run(['deny', 'x'], { out: () => undefined, err: (s) => err.push(s), env: {} }), EXIT.usage);
    assert.match(err[0] ?? '', /^error: deny needs --reason/);
    const out: string[] = [];
    assert.equal(await run(['--help'], { out: (s) => out.push(s), err: () => undefined, env: {} }), EXIT.ok);
    assert.match(out.join('\n'), /approvals .*\n.*approve .*\n.*deny/s);
  });

  it('the decision is the documented merge patch', () => {
    assert.deepEqual(reviewPatch('Approve', undefined), { spec: { review: { decision: 'Approve' } } });
    assert.deepEqual(reviewPatch('Deny', 'not now'), { spec: { review: { decision: 'Deny', reason: 'not now' } } });
  });

  it('the pending table has name, age, identity, connection, command, requester, expires', () => {
    const r = request();
    r.metadata.creationTimestamp = new Date(T0).toISOString();
    const t = table([r], { now: T0 + 90_000, wide: false, allNamespaces: false }).split('\n');
    assert.match(t[0] ?? '', /^NAME\s+AGE\s+IDENTITY\s+CONNECTION\s+COMMAND\s+REQUESTER\s+EXPIRES$/);
    assert.match(t[1] ?? '', /^pg-1\s+90s\s+coding-agent\s+orders-db\s+DELETE FROM orders\s+system:serviceaccount:agents:coding-agent \(for alice@example.com\)\s+in 8m$/);
    assert.equal(age(new Date(T0).toISOString(), T0 + 3 * 3600_000), '3h');
  });
});
