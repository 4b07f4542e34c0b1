// A DPoP (RFC 9449) client against tokengate, for the interop tests, built
// on oauth4webapi (a certified OAuth 2.0 client library that implements DPoP).
//   node dpop.mjs <issuer> <cc_client_id> <password_client_id> <client_secret> <username> <password> <alg>
// (two confidential clients sharing a secret: one for client_credentials,
// one for the password and refresh_token grants).
// It discovers the server, gets DPoP-bound tokens with client_credentials,
// password (confidential and public client) and refresh_token grants, calls
// a guarded route with each, and tries what a thief would: another key.
// Nonces (use_dpop_nonce) are retried once, as the library documents.
// Prints one JSON object.
import * as oauth from 'oauth4webapi';

const [issuer, ccClientId, pwClientId, clientSecret, username, password, alg] = process.argv.slice(2);
const insecure = { [oauth.allowInsecureRequests]: true }; // plain-HTTP loopback in the tests
const as = await oauth.processDiscoveryResponse(new URL(issuer),
  await oauth.discoveryRequest(new URL(issuer), { algorithm: 'oauth2', ...insecure }));
const client = { client_id: ccClientId };
const pwClient = { client_id: pwClientId };
const auth = oauth.ClientSecretBasic(clientSecret);
const DPoP = oauth.DPoP(client, await oauth.generateKeyPair(alg));
const thief = oauth.DPoP(client, await oauth.generateKeyPair(alg));

// retry runs a request once more when the server asks for a (new) nonce.
async function retry(fn) {
  try {
    return await fn();
  } catch (err) {
    if (oauth.isDPoPNonceError(err)) return fn();
    throw err;
  }
}

// get calls a guarded route with a DPoP-bound token; returns status and body.
async function get(token, path, handle = DPoP) {
  try {
    const res = await retry(() => oauth.protectedResourceRequest(token, 'GET', new URL(issuer + path), undefined, undefined,
      { DPoP: handle, ...insecure }));
    return { status: res.status, body: await res.text() };
  } catch (err) {
    if (err instanceof oauth.WWWAuthenticateChallengeError) {
      const ch = err.cause.find((c) => c.scheme === 'dpop');
      return { status: err.response.status, error: ch?.parameters.error };
    }
    throw err;
  }
}

// refused reports the OAuth error a token request failed with.
async function refused(fn) {
  try {
    await fn();
    return 'accepted';
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError) return err.error;
    throw err;
  }
}

const out = { thumbprint: await DPoP.calculateThumbprint(), algs: as.dpop_signing_alg_values_supported };

const cc = await retry(async () => oauth.processClientCredentialsResponse(as, client,
  await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'orders:read' }, { DPoP, ...insecure })));
out.client_credentials = { token_type: cc.token_type, guarded: await get(cc.access_token, '/orders/1?page=2'),
  other_key: await get(cc.access_token, '/orders/1', thief) };

const pw = await retry(async () => oauth.processGenericTokenEndpointResponse(as, pwClient,
  await oauth.genericTokenEndpointRequest(as, pwClient, auth, 'password', { username, password }, { DPoP, ...insecure })));
const rf = await retry(async () => oauth.processRefreshTokenResponse(as, pwClient,
  await oauth.refreshTokenGrantRequest(as, pwClient, auth, pw.refresh_token, { DPoP, ...insecure })));
out.password = { token_type: pw.token_type, guarded: await get(pw.access_token, '/orders/2') };
out.refresh = { token_type: rf.token_type, rotated: rf.refresh_token !== pw.refresh_token, guarded: await get(rf.access_token, '/orders/3') };

// A public client: no client authentication, so the refresh token is bound
// to the key (RFC 9449 §5). The library's ClientAuth hook sends nothing.
const none = () => {};
const pub = { client_id: 'public-app' };
const pubDPoP = oauth.DPoP(pub, await oauth.generateKeyPair(alg));
const pp = await retry(async () => oauth.processGenericTokenEndpointResponse(as, pub,
  await oauth.genericTokenEndpointRequest(as, pub, none, 'password', { username, password }, { DPoP: pubDPoP, ...insecure })));
const otherDPoP = oauth.DPoP(pub, await oauth.generateKeyPair(alg));
out.public_refresh_other_key = await refused(async () => retry(async () => oauth.processRefreshTokenResponse(as, pub,
  await oauth.refreshTokenGrantRequest(as, pub, none, pp.refresh_token, { DPoP: otherDPoP, ...insecure }))));
out.public_refresh_no_proof = await refused(async () => oauth.processRefreshTokenResponse(as, pub,
  await oauth.refreshTokenGrantRequest(as, pub, none, pp.refresh_token, insecure)));
const pr = await retry(async () => oauth.processRefreshTokenResponse(as, pub,
  await oauth.refreshTokenGrantRequest(as, pub, none, pp.refresh_token, { DPoP: pubDPoP, ...insecure })));
out.public_refresh = { token_type: pr.token_type, guarded: await get(pr.access_token, '/orders/4', pubDPoP) };

console.log(JSON.stringify(out));
