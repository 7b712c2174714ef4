// bearerToken: given a header, returns the token or nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bearerToken } from './bearer.ts';

const cases: [string | string[] | undefined, string | undefined][] = [
  ['Bearer abc.def.ghi', 'abc.def.ghi'],
  ['bearer abc.def.ghi', 'abc.def.ghi'],
  ['BEARER   abc.def.ghi  ', 'abc.def.ghi'],
  ['Basic dXNlcjpwYXNz', undefined],
  ['Bearer', undefined],
  ['Bearer a b', undefined],
  ['abc.def.ghi', undefined],
  [undefined, undefined],
  [['Bearer a.b.c', 'Bearer d.e.f'], undefined],
];
for (const [header, want] of cases) test(`given ${JSON.stringify(header)}, returns ${String(want)}`, () => assert.equal(bearerToken(header), want));
