import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FormatCode, RowField } from './messages.ts';
import { formatOf, MAX_PENDING, ResultShapes } from './result-shapes.ts';

const field = (name: string, typeOid: number): RowField => ({ name, tableOid: 0, columnAttr: 0, typeOid, typeSize: -1, typeModifier: -1, format: 0 });
const FIELDS = [field('pan', 20), field('tags', 1009)];
/** Columns as "name:type:format" strings, so assertions read plainly. */
const shapes = (): ResultShapes<string[]> => new ResultShapes((fs) => fs.map((f) => `${f.name}:${f.typeOid}:${f.format}`));
const portalColumns = ['portal-described'];

describe('result-shapes', () => {
  it('formatOf: no codes = text, one code = all columns, else per column', () => {
    const cases: [FormatCode[], number, FormatCode][] = [[[], 3, 0], [[1], 3, 1], [[0, 1], 1, 1], [[0, 1], 5, 0]];
    for (const [formats, i, want] of cases) assert.equal(formatOf(formats, i), want);
  });

  it('an Execute of a statement described in an earlier batch gets its types with the Bind formats', () => {
    const s = shapes();
    s.parse('q');
    s.describe('S', 'q');
    s.sync();
    assert.equal(s.described(() => FIELDS, () => portalColumns), 'statement');
    s.ready();
    s.bind('', 'q', [1]);
    s.execute('');
    s.sync();
    assert.deepEqual(s.rowsWithoutDescription(), ['pan:20:1', 'tags:1009:1']);
    s.resultEnd();
    s.ready();
    assert.equal(s.inFlight, 0);
  });

  it('a portal described by its own Describe keeps those columns across PortalSuspended', () => {
    const s = shapes();
    s.bind('cur', 'unknown', [1]);
    s.describe('P', 'cur');
    s.execute('cur');
    s.execute('cur');
    s.sync();
    assert.equal(s.described(() => FIELDS, () => portalColumns), 'portal');
    s.resultEnd(); // PortalSuspended
    assert.equal(s.rowsWithoutDescription(), portalColumns);
    s.resultEnd();
    s.ready();
    assert.equal(s.inFlight, 0);
  });

  it('an error skips to the Sync; the next batch is shaped; a new Bind or Parse forgets the old shape', () => {
    const s = shapes();
    s.describe('S', 'q');
    s.sync();
    s.described(() => FIELDS, () => portalColumns);
    s.ready();
    s.bind('', 'nope', []);
    s.execute('');
    s.describe('P', '');
    s.sync();
    s.bind('', 'q', []);
    s.execute('');
    s.sync();
    s.error();
    s.ready();
    assert.deepEqual(s.rowsWithoutDescription(), ['pan:20:0', 'tags:1009:0']);
    s.resultEnd();
    s.ready();
    s.parse('q');
    s.bind('', 'q', [1]);
    s.execute('');
    assert.equal(s.rowsWithoutDescription(), undefined, 'q was parsed anew: its old description no longer holds');
  });

  it('a simple query between extended messages does not take their answers', () => {
    const s = shapes();
    s.bind('p', 'q', [1]);
    s.execute('p');
    s.query();
    assert.equal(s.described(() => FIELDS, () => portalColumns), null, "a query's own RowDescription");
    s.resultEnd(); // the Execute's CommandComplete
    s.resultEnd(); // the query's CommandComplete: not an Execute
    s.ready();
    assert.equal(s.inFlight, 0);
  });

  it('a client pipelining past the bound loses the shapes (text scan), not correctness', () => {
    const s = shapes();
    s.describe('S', 'q');
    s.sync();
    s.described(() => FIELDS, () => portalColumns);
    s.ready();
    s.bind('', 'q', [1]);
    for (let i = 0; i <= MAX_PENDING; i++) s.execute('');
    assert.equal(s.inFlight, 0);
    assert.equal(s.rowsWithoutDescription(), undefined);
  });
  it('binary results of a portal nobody described need a Describe of our own; its answer is internal and shapes the rows', () => {
    const s = shapes();
    s.bind('', 'never-described', [1]);
    assert.equal(s.needsDescribe(''), true);
    s.describeInternal('');
    s.execute('');
    s.sync();
    assert.equal(s.described(() => FIELDS, () => portalColumns), 'internal');
    assert.equal(s.rowsWithoutDescription(), portalColumns);
    s.bind('t', 'never-described', []);
    assert.equal(s.needsDescribe('t'), false, 'text results need no types');
  });
});
