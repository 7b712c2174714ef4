// held-extended.ts: the bind hash covers text, types, formats and bytes unambiguously; the approver's text shows masked values (binary as hex); private names.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bindHash, HeldExtended, isPrivateName, showParameters, shownCommand } from './held-extended.ts';

const b = (s: string): Buffer => Buffer.from(s);

describe('held-extended', () => {
  it('the hash changes with any parameter byte, format, NULL-ness, type or the text', () => {
    const base = bindHash('DELETE FROM t WHERE id = $1', [], [], [b('1')]);
    const variants = [
      bindHash('DELETE FROM t WHERE id = $1', [], [], [b('2')]),
      bindHash('DELETE FROM t WHERE id = $1', [], [1], [b('1')]),
      bindHash('DELETE FROM t WHERE id = $1', [], [], [null]),
      bindHash('DELETE FROM t WHERE id = $1', [], [], [b('')]),
      bindHash('DELETE FROM t WHERE id = $1', [23], [], [b('1')]),
      bindHash('DELETE FROM t WHERE id = $1 ', [], [], [b('1')]),
      bindHash('DELETE FROM t WHERE id = $1', [], [], [b('1'), null]),
    ];
    for (const v of variants) {
      assert.notEqual(v.hash, base.hash);
      assert.match(v.hash, /^[0-9a-f]{64}$/);
    }
    // Moving bytes between adjacent values must not collide (length prefixes).
    assert.notEqual(bindHash('x', [], [], [b('ab'), b('c')]).hash, bindHash('x', [], [], [b('a'), b('bc')]).hash);
    assert.equal(bindHash('DELETE FROM t WHERE id = $1', [], [], [b('1')]).hash, base.hash, 'deterministic');
    assert.equal(bindHash('other text', [], [], [b('1')]).parametersHash, base.parametersHash, 'the parameters hash is the parameters alone');
  });

  it('shows text values as text, binary as hex, NULL as NULL, each masked and quoted', () => {
    const mask = (s: string): string => s.replace(/secret\w*/g, '<masked>');
    assert.equal(showParameters([0, 1, 0], [b("it's secret1"), Buffer.from([0x0a, 0xff]), null], mask), "$1 = 'it''s <masked>', $2 = '\\x0aff' (binary), $3 = NULL");
    assert.equal(showParameters([1], [b('secret')], mask), "$1 = '\\x736563726574' (binary)");
    assert.equal(shownCommand('SELECT 1', [], [], mask), 'SELECT 1');
    assert.equal(shownCommand('DELETE FROM t WHERE id = $1', [], [b('7')], mask), "DELETE FROM t WHERE id = $1\n-- bound parameters: $1 = '7'");
  });

  it('private names; statements and portals', () => {
    assert.ok(isPrivateName('chaperone_held_ab_1'));
    assert.ok(isPrivateName('CHAPERONE_HELD_x'));
    assert.ok(!isPrivateName('chaperone_hel'));
    const h = new HeldExtended<string>();
    assert.equal(h.active, false);
    const p1 = h.parseHeld('s', { sql: 'DELETE', paramTypes: [], text: 'DELETE', payload: 'x' });
    const p2 = h.parseHeld('s', { sql: 'DELETE', paramTypes: [], text: 'DELETE', payload: 'y' });
    assert.ok(isPrivateName(p1) && p1 !== p2);
    assert.equal(h.statement('s')?.privateName, p2);
    const s = h.statement('s');
    assert.ok(s);
    h.bind('', { statement: s, hash: 'h', parametersHash: 'p', shown: 'DELETE' });
    assert.equal(h.portal('')?.hash, 'h');
    h.bind('', undefined);
    assert.equal(h.portal(''), undefined);
    assert.equal(h.closeStatement('s'), p2);
    assert.equal(h.statement('s'), undefined);
    h.parseHeld('', { sql: 'DELETE', paramTypes: [], text: 'DELETE', payload: 'z' });
    h.parseAllowed('');
    assert.equal(h.statement(''), undefined);
  });
});
