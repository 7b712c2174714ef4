// The ahead-of-time config validator is in step with config-schema.ts (regenerate with config-validator-gen.ts).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { GENERATED_PATH, generateValidatorSource } from './config-validator-gen.ts';

it('config-validator.generated.ts is what config-validator-gen.ts generates from the schema today', () => {
  const onDisk = readFileSync(GENERATED_PATH, 'utf8');
  assert.ok(onDisk === generateValidatorSource(), 'sidecar/core/config-validator.generated.ts is stale: run `node --import tsx sidecar/core/config-validator-gen.ts` and commit it');
});
