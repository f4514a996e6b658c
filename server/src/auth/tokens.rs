//! Access tokens: JWTs (RFC 7519) following the JWT BCP (RFC 8725). Exactly one algorithm,
//! EdDSA (Ed25519); explicit type `at+jwt` (RFC 9068); `iss`, `aud`, `sub`, `sid`, `jti`,
//! `iat` and `exp` required; at most 30 seconds of leeway. A token is only as good as its
//! session: every request also checks the session in the database, so revocation is immediate.

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tsunagu_protocol::{SessionId, UserId};

/// The token type in the JOSE header.
pub const TOKEN_TYPE: &str = "at+jwt";
/// The audience every access token is issued for.
pub const AUDIENCE: &str = "tsunagu-api";
/// Clock leeway when checking `exp` and `iat`.
pub const LEEWAY_SECONDS: u64 = 30;

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: UserId,
    /// The session this token belongs to.
    pub sid: SessionId,
    pub jti: String,
    pub iat: u64,
    pub exp: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("access token expired")]
    Expired,
    #[error("access token invalid")]
    Invalid,
    #[error("signing key unusable")]
    Key,
}

/// Issues and verifies access tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    lifetime_seconds: u64,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Keys from an Ed25519 seed.
    ///
    /// # Errors
    /// [`TokenError::Key`] if the key cannot be encoded.
    pub fn new(seed: &[u8; 32], issuer: &str, lifetime_seconds: u64) -> Result<Self, TokenError> {
        let signing = SigningKey::from_bytes(seed);
        let pkcs8 = signing.to_pkcs8_der().map_err(|_| TokenError::Key)?;
        let encoding = EncodingKey::from_ed_der(pkcs8.as_bytes());
        let decoding = DecodingKey::from_ed_der(signing.verifying_key().as_bytes());
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECONDS;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        Ok(Self {
            encoding,
            decoding,
            validation,
            issuer: issuer.to_owned(),
            lifetime_seconds,
        })
    }

    /// Seconds an access token lives.
    pub fn lifetime_seconds(&self) -> u64 {
        self.lifetime_seconds
    }

    /// A signed token for `user` in `session`, issued at `now` (Unix seconds).
    ///
    /// # Errors
    /// [`TokenError::Key`] if signing failed.
    pub fn issue(&self, user: UserId, session: SessionId, now: u64) -> Result<String, TokenError> {
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_owned(),
            sub: user,
            sid: session,
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now + self.lifetime_seconds,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(|_| TokenError::Key)
    }

    /// Verifies signature, algorithm, type and claims.
    ///
    /// # Errors
    /// [`TokenError::Expired`] past `exp` + leeway; [`TokenError::Invalid`] for anything else.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(TokenError::Invalid);
        }
        if header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.kid.is_some()
        {
            return Err(TokenError::Invalid);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        // Issued in the future beyond the leeway: a forged or mis-clocked token.
        if data.claims.iat > now + LEEWAY_SECONDS {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn keys() -> TokenKeys {
        TokenKeys::new(&[5u8; 32], "https://tsunagu.test", 600).unwrap()
    }

    #[test]
    fn issued_tokens_verify() {
        let (user, session) = (UserId::generate(), SessionId::generate());
        let token = keys().issue(user, session, now()).unwrap();
        let claims = keys().verify(&token, now()).unwrap();
        assert_eq!(
            (claims.sub, claims.sid, claims.aud.as_str()),
            (user, session, AUDIENCE)
        );
    }

    #[test]
    fn expired_tokens_are_told_apart_from_invalid_ones() {
        let long_ago = now() - 3600;
        let token = keys()
            .issue(UserId::generate(), SessionId::generate(), long_ago)
            .unwrap();
        assert_eq!(keys().verify(&token, now()), Err(TokenError::Expired));
    }

    #[test]
    fn another_key_another_issuer_or_a_tampered_token_is_invalid() {
        let token = TokenKeys::new(&[6u8; 32], "https://tsunagu.test", 600)
            .unwrap()
            .issue(UserId::generate(), SessionId::generate(), now())
            .unwrap();
        assert_eq!(keys().verify(&token, now()), Err(TokenError::Invalid));

        let other_issuer = TokenKeys::new(&[5u8; 32], "https://elsewhere.test", 600).unwrap();
        let token = other_issuer
            .issue(UserId::generate(), SessionId::generate(), now())
            .unwrap();
        assert_eq!(keys().verify(&token, now()), Err(TokenError::Invalid));

        let mut token = keys()
            .issue(UserId::generate(), SessionId::generate(), now())
            .unwrap();
        // Change the first character of the signature (the last one may carry only padding
        // bits, and may already be the replacement).
        let at = token.rfind('.').unwrap() + 1;
        let replacement = if token[at..].starts_with('A') {
            "B"
        } else {
            "A"
        };
        token.replace_range(at..=at, replacement);
        assert_eq!(keys().verify(&token, now()), Err(TokenError::Invalid));
    }

    #[test]
    fn alg_none_and_hmac_confusion_are_invalid() {
        let token = keys()
            .issue(UserId::generate(), SessionId::generate(), now())
            .unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
        assert_eq!(
            keys().verify(&format!("{none_header}.{payload}."), now()),
            Err(TokenError::Invalid)
        );

        // HS256 signed with the public key as the HMAC secret: the classic key confusion.
        let public = SigningKey::from_bytes(&[5u8; 32])
            .verifying_key()
            .to_bytes();
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(TOKEN_TYPE.to_owned());
        let claims: Claims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let forged =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&public)).unwrap();
        assert_eq!(keys().verify(&forged, now()), Err(TokenError::Invalid));
    }

    #[test]
    fn wrong_type_or_audience_is_invalid() {
        let signing = SigningKey::from_bytes(&[5u8; 32]);
        let encoding = EncodingKey::from_ed_der(signing.to_pkcs8_der().unwrap().as_bytes());
        let claims = Claims {
            iss: "https://tsunagu.test".into(),
            aud: "another-service".into(),
            sub: UserId::generate(),
            sid: SessionId::generate(),
            jti: "j".into(),
            iat: now(),
            exp: now() + 60,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.into());
        let wrong_audience = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        assert_eq!(
            keys().verify(&wrong_audience, now()),
            Err(TokenError::Invalid)
        );

        let claims = Claims {
            aud: AUDIENCE.into(),
            ..claims
        };
        header.typ = Some("JWT".into());
        let wrong_type = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        assert_eq!(keys().verify(&wrong_type, now()), Err(TokenError::Invalid));
    }
}
