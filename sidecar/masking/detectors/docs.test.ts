// Fails when docs/detectors.md no longer matches the detector table.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DOCS_PATH, renderDetectorsMarkdown } from './docs.ts';
import { DETECTORS } from './index.ts';

describe('docs/detectors.md', () => {
  it('is up to date with the table (regenerate with node --import tsx sidecar/masking/detectors/docs.ts)', () => {
    assert.equal(readFileSync(DOCS_PATH, 'utf8'), renderDetectorsMarkdown());
  });
  it('lists every detector id', () => {
    const md = renderDetectorsMarkdown();
    for (const d of DETECTORS) assert.ok(md.includes(`| \`${d.id}\` |`), d.id);
  });
});
