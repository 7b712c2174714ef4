// docs/sidecar.md's config reference is in step with the schema (every field documented, no stale rows).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DOC_PATH, renderDoc } from './config-docs.ts';

it('docs/sidecar.md config reference is generated from the schema today', () => {
  const doc = readFileSync(DOC_PATH, 'utf8');
  assert.ok(doc === renderDoc(doc), 'docs/sidecar.md is stale: run `node --import tsx sidecar/core/config-docs.ts` and commit it');
});

it('the reference lists a field of each part of the config', () => {
  const doc = readFileSync(DOC_PATH, 'utf8');
  for (const f of ['`version`', '`identity.issuers[].audiences`', '`connections[].listen.port`', '`connections[].upstream.tls.mode`', '`connections[].credentials.passwordFile`', '`approvals.backend`', '`recording.signing.privateKeyFile`', '`admin.port`', '`log.level`', '`shutdown.drainTimeoutSeconds`']) {
    assert.ok(doc.includes(`| ${f} |`), `${f} is not documented`);
  }
});
