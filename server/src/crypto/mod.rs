//! Cryptographic building blocks of the server: the key files in the keys directory, the
//! master key provider (`master_key`), sealed values under room data keys (`envelope`),
//! sealing of small secrets (TOTP seeds) with AES-256-GCM, and keyed digests (HMAC-SHA-256) of
//! tokens and codes. No I/O beyond reading and writing the key files; key material is zeroized
//! on drop and never formatted.

pub mod envelope;
mod key_files;
pub mod master_key;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use zeroize::Zeroizing;

pub use key_files::{
    KeyFileError, ServerKeys, load_audit_key, load_audit_signing_key,
    load_or_create_audit_signing_key,
};

/// A failure to unseal: wrong key, tampered data or wrong context. Deliberately carries no
/// detail.
#[derive(Debug, thiserror::Error)]
#[error("sealed value failed its integrity check")]
pub struct IntegrityError;

const NONCE_LEN: usize = 12;

/// AES-256-GCM with random 96-bit nonces for small secrets at rest. The associated data binds
/// a sealed value to its owner, so that a value copied to another row does not open.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

impl Sealer {
    /// A sealer under `key`.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// Encrypts `plaintext`; the output is `nonce || ciphertext || tag`.
    ///
    /// # Errors
    /// [`IntegrityError`] only for inputs beyond AES-GCM's limit of 2^36 bytes.
    pub fn seal(
        &self,
        plaintext: &[u8],
        associated_data: &[u8],
    ) -> Result<Vec<u8>, IntegrityError> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: associated_data,
                },
            )
            .map_err(|_| IntegrityError)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypts what [`Sealer::seal`] produced with the same associated data.
    ///
    /// # Errors
    /// [`IntegrityError`] if the data, the key or the associated data differ.
    pub fn open(
        &self,
        sealed: &[u8],
        associated_data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, IntegrityError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(IntegrityError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| IntegrityError)?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: associated_data,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| IntegrityError)
    }
}

/// Keyed digests (HMAC-SHA-256) for looking up secrets by value without storing them: refresh
/// tokens, invitation codes, recovery codes and login names. Without the server secret a stolen
/// database gives no way to test guesses offline.
#[derive(Clone)]
pub struct Digester {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Digester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Digester(<key>)")
    }
}

impl Digester {
    /// A digester under `key`.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            key: Zeroizing::new(*key),
        }
    }

    /// The digest of `value` within `purpose`, so that equal values for different purposes
    /// give unrelated digests.
    pub fn digest(&self, purpose: &str, value: &[u8]) -> Vec<u8> {
        hmac_sha256(self.key.as_slice(), &[purpose.as_bytes(), &[0], value]).to_vec()
    }
}

/// HMAC-SHA-256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_hmac(),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_hmac() -> ! {
    // `Hmac::new_from_slice` documents that it never fails; keep the impossibility explicit
    // rather than unwrapping.
    panic!("HMAC rejected a key, which its documentation rules out")
}

/// `n` random bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut bytes = Zeroizing::new([0u8; N]);
    OsRng.fill_bytes(bytes.as_mut());
    bytes
}

/// A random token of 256 bits, URL-safe base64 without padding (43 characters).
pub fn random_token() -> Zeroizing<String> {
    use base64::Engine as _;
    Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>().as_ref()),
    )
}

/// A code of `len` characters from an alphabet without look-alikes (no 0/O, 1/I/L), grouped in
/// fours with dashes for reading aloud and typing.
pub fn random_code(len: usize) -> Zeroizing<String> {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let mut out = Zeroizing::new(String::with_capacity(len + len / 4));
    let mut rng = OsRng;
    for i in 0..len {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        // Rejection sampling keeps the distribution uniform.
        let index = loop {
            let byte = (rng.next_u32() & 0xff) as usize;
            if byte < 256 - 256 % ALPHABET.len() {
                break byte % ALPHABET.len();
            }
        };
        out.push(char::from(ALPHABET[index]));
    }
    out
}

/// Normalises a typed code for comparison: upper case, without spaces or dashes.
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_context() {
        let sealer = Sealer::new(&[7u8; 32]);
        let sealed = sealer.seal(b"JBSWY3DPEHPK3PXP", b"user-a").unwrap();
        assert_eq!(
            sealer.open(&sealed, b"user-a").unwrap().as_slice(),
            b"JBSWY3DPEHPK3PXP"
        );
        assert!(sealer.open(&sealed, b"user-b").is_err());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(sealer.open(&flipped, b"user-a").is_err());
        assert!(Sealer::new(&[8u8; 32]).open(&sealed, b"user-a").is_err());
        assert!(sealer.open(&sealed[..10], b"user-a").is_err());
    }

    #[test]
    fn nonces_differ_between_seals() {
        let sealer = Sealer::new(&[1u8; 32]);
        assert_ne!(
            sealer.seal(b"x", b"").unwrap(),
            sealer.seal(b"x", b"").unwrap()
        );
    }

    #[test]
    fn digests_depend_on_key_and_purpose() {
        let a = Digester::new(&[1u8; 32]);
        let b = Digester::new(&[2u8; 32]);
        assert_eq!(a.digest("refresh", b"t"), a.digest("refresh", b"t"));
        assert_ne!(a.digest("refresh", b"t"), a.digest("invitation", b"t"));
        assert_ne!(a.digest("refresh", b"t"), b.digest("refresh", b"t"));
    }

    #[test]
    fn codes_use_the_unambiguous_alphabet_in_groups() {
        let code = random_code(12);
        assert_eq!(code.len(), 14);
        assert_eq!(code.matches('-').count(), 2);
        assert!(
            code.chars()
                .all(|c| c == '-' || "23456789ABCDEFGHJKMNPQRSTUVWXYZ".contains(c))
        );
        assert_eq!(normalise_code(" abcd-efgh "), "ABCDEFGH");
    }

    #[test]
    fn tokens_are_256_bit_url_safe() {
        let token = random_token();
        assert_eq!(token.len(), 43);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
