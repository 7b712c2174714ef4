// Logger: JSON lines with fixed fields, credentials redacted at any of the first three levels, session child fields.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, REDACTED, sessionLogger } from './log.ts';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb): void {
      text += chunk.toString('utf8');
      cb();
    },
  });
  return { stream, lines: () => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

it('given credential-named fields at depth 0-2, redacts them; keeps the rest', () => {
  const c = capture();
  const log = createLogger({ destination: c.stream });
  log.info({ password: 'synthetic-pw', user: 'u', req: { headers: { authorization: 'Bearer synthetic', host: 'h' } }, up: { token: 'synthetic-t' } }, 'm');
  const [line] = c.lines();
  assert.equal(line?.password, REDACTED);
  assert.equal(line?.user, 'u');
  assert.deepEqual(line?.req, { headers: { authorization: REDACTED, host: 'h' } });
  assert.deepEqual(line?.up, { token: REDACTED });
  assert.equal(line?.level, 'info');
  assert.equal(line?.component, 'chaperone-sidecar');
  assert.doesNotMatch(JSON.stringify(c.lines()), /synthetic/);
});

it('given a session logger, every line carries the session fields', () => {
  const c = capture();
  sessionLogger(createLogger({ destination: c.stream }), { session: 's1', connection: 'db', protocol: 'postgres', principal: 'agent' }).warn({ n: 1 }, 'x');
  const [line] = c.lines();
  assert.equal(line?.session, 's1');
  assert.equal(line?.connection, 'db');
  assert.equal(line?.principal, 'agent');
  assert.equal(line?.level, 'warn');
});
