// The built-in detector table: every detector the engine knows, in one readonly list.
import type { Detector } from '../types.ts';
import { AI } from './ai.ts';
import { AWS } from './aws.ts';
import { CLOUD } from './cloud.ts';
import { DEVTOOLS } from './devtools.ts';
import { GENERIC } from './generic.ts';
import { GITHUB } from './github.ts';
import { jwt } from './jwt.ts';
import { MESSAGING } from './messaging.ts';
import { PAYMENTS } from './payments.ts';
import { PII_EXTRA } from './pii-extra.ts';
import { PII_BASIC } from './pii.ts';
import { PRIVATE_KEYS } from './private-keys.ts';
import { CONTEXT_VENDORS, PREFIXED_VENDORS } from './vendors-context.ts';

export const DETECTORS: readonly Detector[] = [...AWS, ...GITHUB, jwt, ...PRIVATE_KEYS, ...AI, ...CLOUD, ...DEVTOOLS, ...MESSAGING, ...PAYMENTS, ...PREFIXED_VENDORS, ...CONTEXT_VENDORS, ...GENERIC, ...PII_BASIC, ...PII_EXTRA];

export { findWithDetector, generateSample, keywordsMatch } from './find.ts';
export { createRng } from './rng.ts';
