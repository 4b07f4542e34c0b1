// A non-Go OAuth 2.0 client against tokengate, for the interop tests.
//   node client.mjs <issuer> <client_id> <client_secret>
// openid-client discovers the server from its RFC 8414 metadata and gets a
// token with client_credentials; jose verifies it against the JWKS; then
// the token is introspected, revoked and introspected again. Prints JSON.
import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [issuer, clientId, clientSecret] = process.argv.slice(2);
const config = await client.discovery(new URL(issuer), clientId, clientSecret, undefined, {
  algorithm: 'oauth2',
  execute: [client.allowInsecureRequests], // the tests run on plain-HTTP loopback
});
const meta = config.serverMetadata();
const tokens = await client.clientCredentialsGrant(config, { scope: 'orders:read' });
const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
  issuer,
  audience: issuer,
  typ: 'at+jwt',
  algorithms: ['EdDSA', 'ES256', 'RS256'],
});
const before = await client.tokenIntrospection(config, tokens.access_token);
await client.tokenRevocation(config, tokens.access_token);
const after = await client.tokenIntrospection(config, tokens.access_token);
console.log(JSON.stringify({
  alg: protectedHeader.alg,
  kid: protectedHeader.kid,
  sub: payload.sub,
  scope: payload.scope,
  client_id: payload.client_id,
  token_type: tokens.token_type,
  active_before: before.active,
  active_after: after.active,
  access_token: tokens.access_token,
}));
