// Writes a private JWKS with one key of the given algorithm and kid (argv: alg kid),
// for the provider; a test signs its own crafted tokens with the same key.
import { exportJWK, generateKeyPair } from 'jose';

const [alg, kid] = process.argv.slice(2);
const { privateKey } = await generateKeyPair(alg, { extractable: true, crv: alg === 'EdDSA' ? 'Ed25519' : undefined });
const jwk = await exportJWK(privateKey);
process.stdout.write(JSON.stringify({ keys: [{ ...jwk, kid, alg, use: 'sig' }] }));
