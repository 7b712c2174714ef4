// Public API of the masking engine: createMasker and the types adapters need.
export { createMasker } from './engine.ts';
export type { CustomPattern, KeywordList, Masker, MaskerOptions, StreamMasker } from './options.ts';
export type { FieldRule } from './columns.ts';
export type { Detector, DetectorCategory, FindingCounts, MaskResult, Replacement } from './types.ts';
export { DEFAULT_MAX_WINDOW } from './options.ts';
