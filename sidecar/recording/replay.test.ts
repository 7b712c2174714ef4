// Replay: a recorded session (written by the real recorder) comes back as the same facts, whatever else is on the stream.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { recordToMemory, sampleSession } from './fixtures.ts';
import { renderListing, renderTimeline, replayText } from './replay.ts';

let lines: string[] = [];

before(async () => {
  const a = sampleSession('sess-a');
  const b = sampleSession('sess-b');
  // Interleave two sessions the way concurrent connections write them.
  const mixed = a.flatMap((e, i) => (b[i] ? [e, b[i]] : [e]));
  lines = await recordToMemory(mixed);
});

describe('replay', () => {
  test('rebuilds each session with its commands, results and approvals', () => {
    const r = replayText(lines.join('\n'));
    const sessions = r.sessions();
    assert.deepEqual(sessions.map((s) => s.session), ['sess-a', 'sess-b']);
    const s = sessions[0];
    assert.ok(s);
    assert.equal(s.identity, 'agent-a');
    assert.equal(s.connection, 'main-db');
    assert.equal(s.pod, 'ns/agent-0');
    assert.equal(s.commands.length, 2);
    const [read, del] = s.commands;
    assert.equal(read?.decision, 'allow');
    assert.equal(read?.result?.rows, 1);
    assert.deepEqual(read?.result?.masked, { email: 1 });
    assert.equal(del?.decision, 'approval');
    assert.equal(del?.approval?.outcome, 'denied');
    assert.deepEqual(del?.approval?.by, ['alice']);
    assert.equal(del?.statementHash, 'b'.repeat(64));
    assert.equal(s.endReason, 'client-closed');
    assert.equal(r.skipped, 0);
  });

  test('lists sessions with counts taken from the lines, not from the summary', () => {
    const rows = replayText(lines.join('\n')).list();
    assert.equal(rows.length, 2);
    assert.deepEqual(
      { commands: rows[0]?.commands, approvals: rows[0]?.approvals, masked: rows[0]?.masked, denied: rows[0]?.denied },
      { commands: 2, approvals: 1, masked: 1, denied: 0 },
    );
    const table = renderListing(rows);
    assert.match(table, /^SESSION\s+IDENTITY/);
    assert.match(table, /sess-b\s+agent-a\s+main-db/);
  });

  test('keeps only the asked-for session and skips foreign and kubectl-prefixed noise', () => {
    const noisy = lines.flatMap((l, i) => [`{"level":30,"msg":"pino log ${i}"}`, `[pod/agent-0/chaperone] 2025-01-01T00:00:00.000000001Z ${l}`]);
    noisy.push('{"chaperone":"rec/v1", not json');
    const r = replayText(noisy.join('\r\n'), { session: 'sess-b' });
    assert.deepEqual(r.sessions().map((s) => s.session), ['sess-b']);
    assert.equal(r.sessions()[0]?.commands.length, 2);
    assert.equal(r.skipped, 1);
  });

  test('counts lines of sessions whose start is not in the input', () => {
    const tail = lines.filter((l) => !l.includes('"type":"session.start"'));
    const r = replayText(tail.join('\n'));
    assert.equal(r.sessions().length, 0);
    assert.ok(r.orphanLines >= 10);
  });

  test('renders a timeline that names who, what, the decision and the outcome', () => {
    const s = replayText(lines.join('\n'), { session: 'sess-a' }).sessions()[0];
    assert.ok(s);
    const text = renderTimeline(s);
    assert.match(text, /session sess-a \(postgres connection main-db, identity agent-a\)/);
    assert.match(text, /#1 ALLOW/);
    assert.match(text, /1 row\(s\), 120 bytes, 2 ms masked email×1/);
    assert.match(text, /#2 APPROVAL rule no-delete-without-where/);
    assert.match(text, /approval ar-1 \(approvers: dba\): denied by alice after 1\.5 s/);
    assert.match(text, /run `verify`/);
  });

  test('bounds the commands it keeps', () => {
    const r = replayText(lines.join('\n'), { maxCommands: 1 });
    assert.equal(r.sessions()[0]?.commands.length, 1);
    assert.equal(r.droppedCommands, 2);
  });
});
