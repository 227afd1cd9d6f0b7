// Signs a JWT (argv: jwks-file header-json payload-json) with the JWKS's first key:
// how a test crafts tokens the provider would never issue (expired, wrong audience…)
// but that carry a valid signature.
import fs from 'node:fs';
import { CompactSign, importJWK } from 'jose';

const [file, header, payload] = process.argv.slice(2);
const jwk = JSON.parse(fs.readFileSync(file, 'utf8')).keys[0];
const key = await importJWK(jwk, jwk.alg);
const jws = await new CompactSign(new TextEncoder().encode(payload))
  .setProtectedHeader(JSON.parse(header))
  .sign(key);
process.stdout.write(jws);
