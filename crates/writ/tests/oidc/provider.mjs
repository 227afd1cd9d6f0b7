// A real OpenID provider for writ's tests: panva's oidc-provider with its keys from
// WRIT_OIDC_JWKS (private JWKs, so a test can rotate them by restarting with others).
// Clients: `writ-cli` (public: device flow, code + PKCE), `writ-web` (confidential:
// code + PKCE back to WRIT_OIDC_WEB_REDIRECT) and, for machine tokens,
// `as-<name>` client-credentials clients whose JWT access tokens say
// preferred_username = <name>. A name `alice~helper~planner` makes a client whose
// tokens are what a token exchange (RFC 8693) gives an agent acting for alice:
// preferred_username alice, and `act: {sub: helper, act: {sub: planner}}`.
import fs from 'node:fs';
import Provider from 'oidc-provider';

const issuer = process.env.WRIT_OIDC_ISSUER;
const port = Number(process.env.WRIT_OIDC_PORT);
const jwks = JSON.parse(fs.readFileSync(process.env.WRIT_OIDC_JWKS, 'utf8'));
const audience = process.env.WRIT_OIDC_AUDIENCE ?? 'https://writ.test';
const names = (process.env.WRIT_OIDC_NAMES ?? 'alice').split(',');
// writ's /auth/callback, for the confidential `writ-web` client (browser sign-in).
const webRedirect = process.env.WRIT_OIDC_WEB_REDIRECT;

const machineClients = names.map((name) => ({
  client_id: `as-${name}`,
  client_secret: 'test-secret',
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
}));

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'writ-cli',
      // RFC 8252: a native app's loopback redirect may use any port.
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
    },
    ...(webRedirect ? [{
      client_id: 'writ-web',
      client_secret: 'web-secret',
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [webRedirect],
    }] : []),
    ...machineClients,
  ],
  jwks,
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'openid',
        audience,
        accessTokenTTL: 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: jwks.keys[0].alg ?? 'RS256' } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => {
    const client = token.clientId ?? '';
    if (client.startsWith('as-')) {
      const [user, ...actors] = client.slice(3).split('~');
      const act = actors.reduceRight((prior, sub) => (prior ? { sub, act: prior } : { sub }), null);
      return act ? { preferred_username: user, act } : { preferred_username: user };
    }
    return token.accountId ? { preferred_username: token.accountId } : {};
  },
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, preferred_username: id }),
  }),
  claims: { openid: ['sub'], profile: ['preferred_username'] },
});
provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
