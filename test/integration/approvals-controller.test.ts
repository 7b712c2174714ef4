// The ApprovalRequest controller alone on the real control plane: expiry by its own requeue, Events on phase changes, garbage collection after the TTL.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { eventually } from '../env/wait.ts';
import { agentNamespace, installApprovals, startApprovalsOperator, type AgentNamespace, type ApprovalsOperator } from './approvals-harness.ts';
import type { ApprovalRequest } from '../../operator/api/types.ts';
import { run } from '../../operator/kubectl-plugin/main.ts';

const TTL_SECONDS = 4;

describe('approvals controller: deadlines, Events, TTL', () => {
  let cp: ControlPlane;
  let env: AgentNamespace;
  let operator: ApprovalsOperator | undefined;

  function body(name: string, expiresInMs: number): ApprovalRequest {
    return {
      apiVersion: 'chaperone.dev/v1alpha1', kind: 'ApprovalRequest', metadata: { name },
      spec: {
        identity: 'coding-agent', connection: 'orders-db', session: 's-1', requester: { subject: 'agent-writer' },
        command: { protocol: 'postgres', text: 'DELETE FROM orders', sha256: 'a'.repeat(64) }, rule: { name: 'delete-needs-approval' },
        approval: { approvers: { groups: ['db-approvers'] }, required: 1, mode: 'any', scope: 'statement', timeout: '10s' }, expiresAt: new Date(Date.now() + expiresInMs).toISOString(),
      },
    };
  }

  async function gone(name: string): Promise<true> {
    return eventually(async () => ((await cp.request('admin', 'GET', `/apis/chaperone.dev/v1alpha1/namespaces/${env.ns}/approvalrequests/${name}`)).status === 404 ? true : undefined), { what: `${name} garbage-collected` });
  }

  before(async () => {
    cp = await sharedControlPlane();
    await installApprovals(cp);
    env = await agentNamespace(cp, 'appr-ctl');
    operator = await startApprovalsOperator(cp, env.ns, { ttlSeconds: TTL_SECONDS });
  });
  after(async () => {
    await operator?.close();
    await env?.close();
    if (cp?.owned) await cp.stop();
  });

  it('an undecided request becomes Expired at expiresAt (the controller requeues itself), gets an Event, and is deleted after the TTL', async () => {
    const r = await cp.request('admin', 'POST', `/apis/chaperone.dev/v1alpha1/namespaces/${env.ns}/approvalrequests`, body('expires-soon', 3000));
    assert.equal(r.status, 201, r.text);
    const pending = await eventually(async () => ((await env.get('expires-soon')).status?.phase === 'Pending' ? true : undefined), { what: 'Pending' });
    assert.ok(pending);
    const expired = await eventually(async () => {
      const x = await env.get('expires-soon');
      return x.status?.phase === 'Expired' ? x : undefined;
    }, { what: 'Expired' });
    assert.match(expired.status?.reason ?? '', /no decision before/);
    assert.equal(expired.status?.conditions?.find((c) => c.type === 'Decided')?.reason, 'Expired');
    const events = await eventually(async () => {
      const e = await cp.request<{ items: { reason: string; involvedObject: { name: string } }[] }>('admin', 'GET', `/api/v1/namespaces/${env.ns}/events`);
      const mine = e.body.items.filter((i) => i.involvedObject.name === 'expires-soon').map((i) => i.reason);
      return mine.includes('Expired') ? mine : undefined;
    }, { what: 'an Expired Event' });
    assert.ok(events.includes('Pending'));
    await gone('expires-soon');
  });

  it('an approved request records approvals and decidedAt, then is deleted after the TTL', async () => {
    assert.equal((await cp.request('admin', 'POST', `/apis/chaperone.dev/v1alpha1/namespaces/${env.ns}/approvalrequests`, body('approve-me', 60_000))).status, 201);
    const p = await cp.request('approver', 'PATCH', `/apis/chaperone.dev/v1alpha1/namespaces/${env.ns}/approvalrequests/approve-me`, { spec: { review: { decision: 'Approve' } } }, { contentType: 'application/merge-patch+json' });
    assert.equal(p.status, 200, p.text);
    const done = await eventually(async () => {
      const x = await env.get('approve-me');
      return x.status?.phase === 'Approved' ? x : undefined;
    }, { what: 'Approved' });
    assert.equal(done.status?.approvals, 1);
    assert.ok(done.status?.decidedAt);
    await gone('approve-me');
  });

  it('`kubectl chaperone approvals --watch` prints the pending list, then each change (the plugin in-process, as approver)', async () => {
    const out: string[] = [];
    const stop = new AbortController();
    const watching = run(['approvals', '--watch', '-n', env.ns], { out: (l) => out.push(l), err: (l) => out.push(`ERR ${l}`), env: { KUBECONFIG: cp.kubeconfig('approver') }, signal: stop.signal });
    try {
      await eventually(() => Promise.resolve(out.length > 0 ? true : undefined), { what: 'the initial list' });
      assert.match(out[0] ?? '', /No pending approval requests|NAME/);
      assert.equal((await cp.request('admin', 'POST', `/apis/chaperone.dev/v1alpha1/namespaces/${env.ns}/approvalrequests`, body('watch-me', 60_000))).status, 201);
      await eventually(() => Promise.resolve(out.some((l) => /^watch-me\s+\S+\s+coding-agent\s+orders-db\s+DELETE FROM orders/.test(l)) ? true : undefined), { what: `a pending line for watch-me (got ${out.join(' | ')})` });
      await cp.request('approver', 'PATCH', `/apis/chaperone.dev/v1alpha1/namespaces/${env.ns}/approvalrequests/watch-me`, { spec: { review: { decision: 'Deny', reason: 'watched' } } }, { contentType: 'application/merge-patch+json' });
      await eventually(() => Promise.resolve(out.some((l) => /^watch-me\s+Denied: denied by approver: watched/.test(l)) ? true : undefined), { what: `a Denied line (got ${out.join(' | ')})` });
    } finally {
      stop.abort();
      assert.equal(await watching, 0);
    }
  });
});

