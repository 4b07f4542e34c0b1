// The authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636, RFC 9207)
// against tokengate's login page, for the interop tests, once with each of
// two client libraries written by others: oauth4webapi and openid-client.
//   node code.mjs <issuer> <client_id> <redirect_uri> <username> <password>
// (a public client: no client authentication, PKCE S256).
// Each library discovers the server from its RFC 8414 metadata, builds the
// authorization URL with its own verifier, challenge and state; the script
// plays the browser (GET /authorize, the login form posted with the CSRF
// cookie, the 303 to the redirect URI); the library validates the
// authorization response (state, iss), redeems the code, and refreshes.
// The code is then redeemed again, which must fail with invalid_grant.
// Prints one JSON object.
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';

const [issuer, clientId, redirectUri, username, password] = process.argv.slice(2);
const scope = 'orders:read';

// signIn is the browser: it follows the authorization URL to the login
// page, posts the form with the CSRF cookie, and returns the Location of
// the 303 that ends the sign-in (the client's redirect URI with the code).
async function signIn(authorizationUrl) {
  const page = await fetch(authorizationUrl, { redirect: 'manual' });
  const html = await page.text();
  if (page.status !== 200) throw new Error(`GET /authorize: ${page.status} ${html}`);
  const cookies = page.headers.getSetCookie().map((c) => c.split(';')[0]);
  if (!cookies.some((c) => c.startsWith('tg_csrf='))) throw new Error(`no tg_csrf cookie: ${cookies}`);
  const hidden = (name) => {
    const m = html.match(new RegExp(`<input type="hidden" name="${name}" value="([^"]*)"`));
    if (!m) throw new Error(`the login page has no ${name} field`);
    return m[1].replaceAll('&#43;', '+').replaceAll('&#34;', '"').replaceAll('&#39;', "'")
      .replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
  };
  const action = html.match(/<form method="post" action="([^"]*)"/)?.[1];
  if (!action) throw new Error('the login page has no form');
  const res = await fetch(new URL(action, authorizationUrl), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies.join('; ') },
    body: new URLSearchParams({ authz: hidden('authz'), csrf: hidden('csrf'), username, password }),
  });
  const location = res.headers.get('location');
  if (res.status !== 303 || !location) throw new Error(`POST /login: ${res.status} ${await res.text()}`);
  const session = res.headers.getSetCookie().some((c) => c.startsWith('tg_session='));
  return { location: new URL(location), session };
}

// guarded calls the guarded path with an access token.
async function guarded(token) {
  const res = await fetch(issuer + '/orders/1', { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.text() };
}

// refused reports the OAuth error a token request failed with.
async function refused(fn) {
  try {
    await fn();
    return 'accepted';
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError || err instanceof client.ResponseBodyError) return err.error;
    throw err;
  }
}

const out = {};

// oauth4webapi.
{
  const insecure = { [oauth.allowInsecureRequests]: true }; // plain-HTTP loopback in the tests
  const as = await oauth.processDiscoveryResponse(new URL(issuer),
    await oauth.discoveryRequest(new URL(issuer), { algorithm: 'oauth2', ...insecure }));
  const c = { client_id: clientId };
  const auth = oauth.None();
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope, state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  }).toString();
  const { location, session } = await signIn(url);
  const params = oauth.validateAuthResponse(as, c, location, state);
  const redeem = async () => oauth.processAuthorizationCodeResponse(as, c,
    await oauth.authorizationCodeGrantRequest(as, c, auth, params, redirectUri, verifier, insecure));
  const tok = await redeem();
  const g = await guarded(tok.access_token);
  const rf = await oauth.processRefreshTokenResponse(as, c,
    await oauth.refreshTokenGrantRequest(as, c, auth, tok.refresh_token, insecure));
  out.oauth4webapi = {
    iss_supported: as.authorization_response_iss_parameter_supported, pkce_methods: as.code_challenge_methods_supported,
    iss: location.searchParams.get('iss'), session, token_type: tok.token_type, scope: tok.scope, guarded: g,
    rotated: !!rf.refresh_token && rf.refresh_token !== tok.refresh_token, refreshed_guarded: await guarded(rf.access_token),
    replay: await refused(redeem), access_token: tok.access_token, refreshed_access_token: rf.access_token,
  };
}

// openid-client.
{
  const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), {
    algorithm: 'oauth2',
    execute: [client.allowInsecureRequests], // the tests run on plain-HTTP loopback
  });
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope, state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const { location, session } = await signIn(url);
  const redeem = () => client.authorizationCodeGrant(config, location, { pkceCodeVerifier: verifier, expectedState: state });
  const tok = await redeem();
  const g = await guarded(tok.access_token);
  const rf = await client.refreshTokenGrant(config, tok.refresh_token);
  out['openid-client'] = {
    iss: location.searchParams.get('iss'), session, token_type: tok.token_type, scope: tok.scope, guarded: g,
    rotated: !!rf.refresh_token && rf.refresh_token !== tok.refresh_token, refreshed_guarded: await guarded(rf.access_token),
    replay: await refused(redeem), access_token: tok.access_token, refreshed_access_token: rf.access_token,
  };
}

console.log(JSON.stringify(out));
