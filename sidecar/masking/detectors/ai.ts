// AI providers: OpenAI, Anthropic, Hugging Face, Cohere, Groq, Replicate, Perplexity, xAI, OpenRouter, LangSmith…
import type { Detector } from '../types.ts';
import { ALNUM, B64URL, alnum, b64url, contextual, entropy, fake, hex, run, token } from './lib.ts';

const SVC = `sk-svcacct-${fake(101, B64URL, 58)}T3BlbkFJ${fake(102, B64URL, 58)}`;
const ADM = `sk-admin-${fake(103, B64URL, 60)}`;
const ANT = `sk-ant-admin01-${fake(104, B64URL, 93)}AA`;

const highEntropy = (min: number) => (c: string): boolean => entropy(c) >= min;

export const openaiProjectKey = token({
  id: 'openai-project-key',
  description: 'OpenAI project / service-account / admin key (sk-proj-, sk-svcacct-, sk-admin-)',
  prefix: 'sk-proj-',
  body: [b64url(40, 250)],
  keywords: ['sk-proj-'],
  before: 'A-Za-z0-9_-',
  validate: highEntropy(3.5),
  finish: (t) => t.slice(0, 8 + 20) + 'T3BlbkFJ' + t.slice(8 + 28),
});
export const openaiServiceAccountKey: Detector = {
  ...openaiProjectKey,
  id: 'openai-service-account-key',
  description: 'OpenAI service-account or admin key (sk-svcacct-…, sk-admin-…)',
  keywords: ['sk-svcacct-', 'sk-admin-'],
  pattern: /(?<![A-Za-z0-9_-])sk-(?:svcacct|admin)-[A-Za-z0-9_-]{40,250}(?![A-Za-z0-9_-])/g,
  generate: (rng) => `sk-svcacct-${rng.pick(B64URL, 58)}T3BlbkFJ${rng.pick(B64URL, 58)}`,
  positives: [
    { text: `OPENAI_API_KEY=${SVC}`, secret: SVC, reason: 'service account key in env' },
    { text: `{"key":"${ADM}"}`, secret: ADM, reason: 'admin key in JSON' },
  ],
  negatives: [
    { text: 'flags: sk-admin-panel enabled', reason: 'prefix followed by a short word' },
    { text: 'sk-svcacct-' + 'a'.repeat(30), reason: 'body too short' },
  ],
};

export const openaiLegacyKey = token({
  id: 'openai-api-key',
  description: 'OpenAI user API key (sk- + 48 alphanumerics, classic ones carry T3BlbkFJ)',
  prefix: 'sk-',
  body: [alnum(48)],
  before: 'A-Za-z0-9_-',
  after: 'A-Za-z0-9_-',
  keywords: ['sk-'],
  validate: (c) => c.includes('T3BlbkFJ') || (entropy(c) >= 4 && /[A-Z]/.test(c) && /[a-z]/.test(c) && /[0-9]/.test(c)),
  finish: (t) => t.slice(0, 23) + 'T3BlbkFJ' + t.slice(31),
  negatives: [
    { text: 'pip install scikit-learn  # sk-learn is not a key', reason: 'sk- in prose' },
    { text: `sk-${'a'.repeat(48)}`, reason: 'no entropy' },
  ],
});

export const anthropicKey = token({
  id: 'anthropic-api-key',
  description: 'Anthropic API / admin / OAuth key (sk-ant-api03-, sk-ant-admin01-, sk-ant-oat01-…)',
  prefix: 'sk-ant-api03-',
  body: [b64url(93), 'AA'],
  keywords: ['sk-ant-'],
  before: 'A-Za-z0-9_-',
  after: 'A-Za-z0-9_-',
});
export const anthropicApiKey: Detector = {
  ...anthropicKey,
  pattern: /(?<![A-Za-z0-9_-])sk-ant-(?:api03|admin01|oat01|ort01|sid01)-[A-Za-z0-9_-]{32,200}(?![A-Za-z0-9_-])/g,
  maxLength: 215,
  positives: [
    ...anthropicKey.positives,
    { text: `x-api-key: ${ANT}`, secret: ANT, reason: 'admin key header' },
  ],
  negatives: [
    { text: 'sk-ant-api03-short', reason: 'body too short' },
    { text: 'keys look like sk-ant-api03-... in the console', reason: 'elided in prose' },
  ],
};

export const huggingface = token({
  id: 'huggingface-token',
  description: 'Hugging Face user access token (hf_ + 34 letters/digits)',
  prefix: 'hf_',
  body: [run('A-Za-z0-9', ALNUM, 30, 40)],
  validate: (c) => entropy(c) >= 3.5,
  negatives: [{ text: 'from hf_hub import hf_hub_download', reason: 'library identifiers' }],
});
export const huggingfaceOrg = token({
  id: 'huggingface-org-token',
  description: 'Hugging Face organization API token (api_org_ + 34 letters)',
  prefix: 'api_org_',
  body: [run('A-Za-z', 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 34)],
  validate: highEntropy(3.5),
});
export const groq = token({ id: 'groq-api-key', description: 'Groq API key (gsk_ + 52 alphanumerics)', prefix: 'gsk_', body: [alnum(52)] });
export const replicate = token({ id: 'replicate-api-token', description: 'Replicate API token (r8_ + 37 alphanumerics)', prefix: 'r8_', body: [alnum(37)] });
export const perplexity = token({ id: 'perplexity-api-key', description: 'Perplexity API key (pplx- + 48 alphanumerics)', prefix: 'pplx-', body: [alnum(48)] });
export const xai = token({ id: 'xai-api-key', description: 'xAI (Grok) API key (xai- + 80 alphanumerics)', prefix: 'xai-', body: [alnum(80)] });
export const openrouter = token({ id: 'openrouter-api-key', description: 'OpenRouter API key (sk-or-v1- + 64 hex)', prefix: 'sk-or-v1-', body: [hex(64)], before: 'A-Za-z0-9_-' });
export const langsmith = token({
  id: 'langsmith-api-key',
  description: 'LangSmith personal / service key (lsv2_pt_ or lsv2_sk_ + 32 hex + _ + 10 hex)',
  prefix: 'lsv2_pt_',
  body: [hex(32), '_', hex(10)],
  keywords: ['lsv2_'],
});
export const langsmithAny: Detector = { ...langsmith, pattern: /(?<![A-Za-z0-9_])lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}(?![a-f0-9_])/g };
export const pinecone = token({ id: 'pinecone-api-key', description: 'Pinecone API key (pcsk_ + id + _ + secret)', prefix: 'pcsk_', body: [alnum(5, 6), '_', alnum(40, 80)] });
export const elevenlabs = token({ id: 'elevenlabs-api-key', description: 'ElevenLabs API key (sk_ + 48 hex)', prefix: 'sk_', body: [hex(48)] });

export const cohere = contextual({
  id: 'cohere-api-key',
  description: 'Cohere API key: 40 alphanumerics after a cohere / CO_API_KEY name',
  names: ['cohere', 'co_api_key'],
  value: [alnum(40)],
  sampleKeys: ['COHERE_API_KEY', 'CO_API_KEY', 'cohere_key'],
  minEntropy: 4,
});
export const mistral = contextual({
  id: 'mistral-api-key',
  description: 'Mistral API key: 32 alphanumerics after a mistral name',
  names: ['mistral'],
  value: [alnum(32)],
  sampleKeys: ['MISTRAL_API_KEY', 'mistral_key'],
  minEntropy: 3.8,
});
export const deepseek = contextual({
  id: 'deepseek-api-key',
  description: 'DeepSeek API key: sk- + 32 hex after a deepseek name',
  names: ['deepseek'],
  value: ['sk-', hex(32)],
  sampleKeys: ['DEEPSEEK_API_KEY'],
});

export const AI: readonly Detector[] = [
  openaiProjectKey, openaiServiceAccountKey, openaiLegacyKey, anthropicApiKey, huggingface, huggingfaceOrg, groq,
  replicate, perplexity, xai, openrouter, langsmithAny, pinecone, elevenlabs, cohere, mistral, deepseek,
];
