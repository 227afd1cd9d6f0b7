//! A token issuer of the tests' own, in the shape the platforms use (Kubernetes,
//! GitHub Actions, SPIRE): an ES256 key, its JWK set, and tokens signed with it.

use base64::Engine as _;
use serde_json::{Value, json};

pub struct Signer {
    kid: String,
    key: rcgen::KeyPair,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Signer {
    pub fn new(kid: &str) -> Self {
        Self {
            kid: kid.to_string(),
            key: rcgen::KeyPair::generate().expect("a P-256 key"),
        }
    }

    /// The public key as a JWK set (`{"keys": [...]}`).
    pub fn jwks(&self) -> Value {
        // An uncompressed P-256 point: 0x04, then x and y.
        let point = self.key.public_key_raw();
        assert_eq!(point.len(), 65, "a P-256 point");
        json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..]),
        }]})
    }

    /// `claims` signed with ES256 under this signer's `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let key = jsonwebtoken::EncodingKey::from_ec_pem(self.key.serialize_pem().as_bytes())
            .expect("an EC key");
        jsonwebtoken::encode(&header, claims, &key).expect("a signed token")
    }
}
