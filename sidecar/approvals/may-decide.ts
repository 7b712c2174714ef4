// Who may decide a held command through the local approval backend: approver groups, and never the requester.
import type { Principal } from '../identity/principal.ts';

export interface HeldCommand {
  /** The requester, as verified when its session started. */
  readonly subject: string;
  readonly username: string;
  /** The rule's approver groups; empty means "the sidecar's approver groups". */
  readonly approverGroups: readonly string[];
}

export type DecideRefusal = 'not-an-approver' | 'not-a-rule-approver' | 'self-approval' | 'no-approver-groups';

export type MayDecide = { readonly ok: true } | { readonly ok: false; readonly reason: DecideRefusal; readonly message: string };

/**
 * The caller must be in one of the sidecar's approver groups and, when the rule names its own, in
 * one of those too; nobody approves their own command (subject or username). No groups configured
 * anywhere means nobody can approve (fail closed).
 */
export function mayDecide(p: Principal, held: HeldCommand, sidecarApproverGroups: readonly string[]): MayDecide {
  if (p.subject === held.subject || p.username === held.username) {
    return { ok: false, reason: 'self-approval', message: `${p.username} requested this command and cannot decide it; another approver must` };
  }
  if (sidecarApproverGroups.length === 0) {
    return { ok: false, reason: 'no-approver-groups', message: 'this sidecar has no admin.approverGroups, so nobody can decide held commands through it' };
  }
  const inGroup = (groups: readonly string[]): boolean => p.groups.some((g) => groups.includes(g));
  if (!inGroup(sidecarApproverGroups)) {
    return { ok: false, reason: 'not-an-approver', message: `${p.username} is not in an approver group (${sidecarApproverGroups.join(', ')})` };
  }
  if (held.approverGroups.length > 0 && !inGroup(held.approverGroups)) {
    return { ok: false, reason: 'not-a-rule-approver', message: `${p.username} is not in the rule's approver groups (${held.approverGroups.join(', ')})` };
  }
  return { ok: true };
}
