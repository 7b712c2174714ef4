// Payments and commerce: Stripe, Square, Shopify, Braintree/PayPal, Flutterwave, Plaid, Shippo, EasyPost, Duffel.
import type { Detector } from '../types.ts';
import { ALNUM, alnum, b64url, contextual, entropy, hex, run, token } from './lib.ts';

const ent = (c: string): boolean => entropy(c) >= 3;
const STRIPE = alnum(24, 99);

export const stripeLive = token({ id: 'stripe-secret-key', description: 'Stripe live secret key (sk_live_ + 24-99 alphanumerics)', prefix: 'sk_live_', body: [STRIPE], validate: ent });
export const stripeTest = token({
  id: 'stripe-test-secret-key',
  description: 'Stripe test secret key (sk_test_ + 24-99 alphanumerics)',
  prefix: 'sk_test_',
  body: [STRIPE],
  validate: ent,
  confidence: 'medium',
  negatives: [{ text: 'Stripe.api_key = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"', reason: 'the key printed in Stripe\'s docs' }],
});
export const stripeRestricted: Detector = {
  ...token({ id: 'stripe-restricted-key', description: 'Stripe restricted key (rk_live_ / rk_test_ + 24-99 alphanumerics)', prefix: 'rk_live_', body: [STRIPE], validate: ent }),
  keywords: ['rk_live_', 'rk_test_'],
  pattern: /(?<![A-Za-z0-9_])rk_(?:live|test)_[A-Za-z0-9]{24,99}(?![A-Za-z0-9_])/g,
};
export const stripeWebhook = token({ id: 'stripe-webhook-secret', description: 'Stripe webhook signing secret (whsec_ + 32-64)', prefix: 'whsec_', body: [run('A-Za-z0-9+/=', ALNUM, 32, 64)], validate: ent });
export const squareAccess: Detector = {
  ...token({ id: 'square-access-token', description: 'Square access token (EAAA + 60, or sq0atp- + 22)', prefix: 'EAAA', body: [b64url(60)], after: 'A-Za-z0-9_-', validate: ent }),
  keywords: ['eaaa', 'sq0atp-'],
  pattern: /(?<![A-Za-z0-9_-])(?:EAAA[A-Za-z0-9_-]{60}|sq0atp-[A-Za-z0-9_-]{22})(?![A-Za-z0-9_-])/g,
};
export const squareSecret = token({ id: 'square-oauth-secret', description: 'Square OAuth application secret (sq0csp- + 43)', prefix: 'sq0csp-', body: [b64url(43)], after: 'A-Za-z0-9_-' });
const shop = (id: string, prefix: string, what: string): Detector =>
  token({ id, description: `Shopify ${what} (${prefix} + 32 hex)`, prefix, body: [run('a-fA-F0-9', '0123456789abcdef', 32)] });
export const shopifyAccess = shop('shopify-access-token', 'shpat_', 'Admin API access token');
export const shopifySecret = shop('shopify-shared-secret', 'shpss_', 'app shared secret');
export const shopifyCustom = shop('shopify-custom-app-token', 'shpca_', 'custom app access token');
export const shopifyPrivate = shop('shopify-private-app-token', 'shppa_', 'private app access token');
export const braintree = token({
  id: 'braintree-access-token',
  description: 'Braintree / PayPal access token (access_token$production$<16>$<32 hex>)',
  prefix: 'access_token$production$',
  body: [run('0-9a-z', 'abcdefghijklmnopqrstuvwxyz0123456789', 16), '$', hex(32)],
  keywords: ['access_token$'],
});
export const braintreeAny: Detector = { ...braintree, pattern: /access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32}(?![A-Za-z0-9])/g };
export const flutterwave: Detector = {
  ...token({ id: 'flutterwave-secret-key', description: 'Flutterwave secret key (FLWSECK- / FLWSECK_TEST- + 32 hex + -X)', prefix: 'FLWSECK-', body: [hex(32), '-X'] }),
  keywords: ['flwseck'],
  pattern: /(?<![A-Za-z0-9_])FLWSECK(?:_TEST)?-[a-h0-9]{32}-X(?![A-Za-z0-9_])/g,
};
export const plaid: Detector = {
  ...token({ id: 'plaid-access-token', description: 'Plaid access token (access-<env>-<uuid>)', prefix: 'access-production-', body: [hex(8), '-', hex(4), '-', hex(4), '-', hex(4), '-', hex(12)] }),
  keywords: ['access-production-', 'access-development-', 'access-sandbox-'],
  pattern: /(?<![A-Za-z0-9_-])access-(?:sandbox|development|production)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![A-Za-z0-9_-])/g,
};
export const plaidSecret = contextual({
  id: 'plaid-secret-key',
  description: 'Plaid client secret: 30 hex-ish characters after a plaid name',
  names: ['plaid'],
  value: [{ cls: 'a-z0-9', alphabet: 'abcdef0123456789', min: 30 }],
  sampleKeys: ['PLAID_SECRET'],
});
export const shippo: Detector = {
  ...token({ id: 'shippo-api-token', description: 'Shippo API token (shippo_live_ / shippo_test_ + 40 hex)', prefix: 'shippo_live_', body: [hex(40)] }),
  keywords: ['shippo_'],
  pattern: /(?<![A-Za-z0-9_])shippo_(?:live|test)_[a-fA-F0-9]{40}(?![A-Za-z0-9_])/g,
};
export const easypost: Detector = {
  ...token({ id: 'easypost-api-key', description: 'EasyPost API key (EZAK / EZTK + 54)', prefix: 'EZAK', body: [alnum(54)] }),
  keywords: ['ezak', 'eztk'],
  pattern: /(?<![A-Za-z0-9_])EZ[AT]K[A-Za-z0-9]{54}(?![A-Za-z0-9_])/g,
};
export const duffel: Detector = {
  ...token({ id: 'duffel-api-token', description: 'Duffel API token (duffel_live_ / duffel_test_ + 43)', prefix: 'duffel_live_', body: [b64url(43)], after: 'A-Za-z0-9_=-' }),
  keywords: ['duffel_'],
  pattern: /(?<![A-Za-z0-9_])duffel_(?:live|test)_[A-Za-z0-9_=-]{43}(?![A-Za-z0-9_=-])/g,
};
export const gocardless = contextual({
  id: 'gocardless-api-token',
  description: 'GoCardless access token (live_ + 40) after a gocardless name',
  names: ['gocardless'],
  value: ['live_', b64url(40)],
  sampleKeys: ['GOCARDLESS_ACCESS_TOKEN'],
});

export const PAYMENTS: readonly Detector[] = [
  stripeLive, stripeTest, stripeRestricted, stripeWebhook, squareAccess, squareSecret, shopifyAccess, shopifySecret,
  shopifyCustom, shopifyPrivate, braintreeAny, flutterwave, plaid, plaidSecret, shippo, easypost, duffel, gocardless,
];
