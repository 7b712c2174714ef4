// A local OIDC issuer for trying the sidecar on a laptop: the test suite's oidc-provider on 127.0.0.1:8099; prints a fresh agent token.
import { startOidcProvider } from '../../test/helpers/oidc-provider.ts';

const port = Number(process.env.DEV_IDP_PORT ?? 8099);
const idp = await startOidcProvider({ port });
const client = process.argv[2] ?? 'agent-writer';
process.stdout.write(`issuer ${idp.issuer} (clients: agent-writer in db-writers, agent-reader in db-readers, agent-nogroups)\n`);
process.stdout.write(`token for ${client} (valid a few minutes; restart this script or Ctrl-C to stop):\n${await idp.token(client)}\n`);
const stop = () => void idp.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
