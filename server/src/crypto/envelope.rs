//! Sealed values at rest under a room's data key (DEK): AES-256-GCM with a random 96-bit
//! nonce, a small header naming the format, the algorithm and the key version, and associated
//! data binding the value to the row it belongs to.
//!
//! Layout: `format (1) | algorithm (1) | key version (4, big-endian) | nonce (12) |
//! ciphertext | tag (16)`. The header is authenticated with the context: a value whose key
//! version was edited, or which was copied to another row, another room or another
//! visibility, fails to open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use super::IntegrityError;

/// The only format so far.
const FORMAT_V1: u8 = 1;
/// AES-256-GCM with a random 96-bit nonce. Another identifier allows a change of algorithm
/// (ASVS 11.2.2) without rewriting stored data.
const ALGORITHM_AES256_GCM: u8 = 1;
const HEADER_LEN: usize = 6;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// A 256-bit data key, usable for sealing and opening. The expanded key is wiped on drop and
/// never formatted.
pub struct DataKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    /// A key from its 32 bytes (which the caller wipes).
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(bytes.into()),
        }
    }

    /// Seals `plaintext` as key `version`, bound to `context`.
    ///
    /// # Errors
    /// [`IntegrityError`] only for inputs beyond AES-GCM's limit of 64 GiB.
    pub fn seal(
        &self,
        version: u32,
        context: &Context,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, IntegrityError> {
        let mut header = [0u8; HEADER_LEN];
        header[0] = FORMAT_V1;
        header[1] = ALGORITHM_AES256_GCM;
        header[2..].copy_from_slice(&version.to_be_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = context.associated_data(&header);
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| IntegrityError)?;
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens what [`DataKey::seal`] produced under the same context.
    ///
    /// # Errors
    /// [`IntegrityError`] if the value, the key or the context differ.
    pub fn open(
        &self,
        context: &Context,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, IntegrityError> {
        if sealed.len() < HEADER_LEN + NONCE_LEN + TAG_LEN {
            return Err(IntegrityError);
        }
        let (header, rest) = sealed.split_at(HEADER_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| IntegrityError)?;
        let aad = context.associated_data(header);
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| IntegrityError)
    }
}

/// The key version a sealed value names in its header.
///
/// # Errors
/// [`IntegrityError`] if `sealed` is not a value of a known format and algorithm (plaintext
/// written into the column, for example).
pub fn key_version(sealed: &[u8]) -> Result<u32, IntegrityError> {
    if sealed.len() < HEADER_LEN + NONCE_LEN + TAG_LEN
        || sealed[0] != FORMAT_V1
        || sealed[1] != ALGORITHM_AES256_GCM
    {
        return Err(IntegrityError);
    }
    let version: [u8; 4] = sealed[2..HEADER_LEN]
        .try_into()
        .map_err(|_| IntegrityError)?;
    Ok(u32::from_be_bytes(version))
}

/// What a sealed value is bound to: its purpose (`"event"`, `"patient"`, …) and the fields
/// of its row, encoded canonically (each length-prefixed) so that no two different contexts
/// share an encoding.
#[derive(Debug, Clone)]
pub struct Context {
    encoded: Vec<u8>,
}

impl Context {
    /// A context for values of `purpose`.
    pub fn new(purpose: &str) -> Self {
        let mut context = Self {
            encoded: b"tsunagu/sealed/v1".to_vec(),
        };
        context.push(purpose.as_bytes());
        context
    }

    /// Adds a field.
    pub fn field(mut self, value: impl AsRef<[u8]>) -> Self {
        self.push(value.as_ref());
        self
    }

    /// Adds an optional field, distinct from any present value.
    pub fn optional(mut self, value: Option<impl AsRef<[u8]>>) -> Self {
        match value {
            Some(value) => {
                self.encoded.push(1);
                self.push(value.as_ref());
            }
            None => self.encoded.push(0),
        }
        self
    }

    /// Adds a number.
    pub fn number(self, value: i64) -> Self {
        self.field(value.to_be_bytes())
    }

    fn push(&mut self, value: &[u8]) {
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.encoded.extend_from_slice(&len.to_be_bytes());
        self.encoded.extend_from_slice(value);
    }

    fn associated_data(&self, header: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(header.len() + self.encoded.len());
        aad.extend_from_slice(header);
        aad.extend_from_slice(&self.encoded);
        aad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> DataKey {
        DataKey::from_bytes(&[byte; 32])
    }

    fn context(entry: &str) -> Context {
        Context::new("event").field("room-1").field(entry).number(1)
    }

    #[test]
    fn sealed_values_open_only_under_their_key_and_context() {
        let sealed = key(1).seal(7, &context("e1"), b"marker").unwrap();
        assert_eq!(key_version(&sealed).unwrap(), 7);
        assert_eq!(
            key(1).open(&context("e1"), &sealed).unwrap().as_slice(),
            b"marker"
        );
        assert!(key(1).open(&context("e2"), &sealed).is_err());
        assert!(key(2).open(&context("e1"), &sealed).is_err());
        assert!(
            key(1)
                .open(
                    &Context::new("patient")
                        .field("room-1")
                        .field("e1")
                        .number(1),
                    &sealed
                )
                .is_err()
        );
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let sealed = key(1)
            .seal(1, &context("e1"), b"some clinical text")
            .unwrap();
        for index in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[index] ^= 0x01;
            assert!(
                key(1).open(&context("e1"), &flipped).is_err(),
                "byte {index}"
            );
        }
        assert!(
            key(1)
                .open(&context("e1"), &sealed[..sealed.len() - 1])
                .is_err()
        );
    }

    #[test]
    fn the_key_version_is_authenticated() {
        let mut sealed = key(1).seal(1, &context("e1"), b"x").unwrap();
        sealed[5] = 2;
        assert_eq!(key_version(&sealed).unwrap(), 2);
        assert!(key(1).open(&context("e1"), &sealed).is_err());
    }

    #[test]
    fn plaintext_is_not_taken_for_a_sealed_value() {
        assert!(key_version(br#"{"text":"a plain body written by hand"}"#).is_err());
        assert!(key(1).open(&context("e1"), br#"{"text":"hi"}"#).is_err());
    }

    #[test]
    fn contexts_are_unambiguous_and_nonces_fresh() {
        let a = Context::new("event").field("ab").field("c");
        let b = Context::new("event").field("a").field("bc");
        assert_ne!(a.encoded, b.encoded);
        let none = Context::new("x").optional(None::<&str>);
        let empty = Context::new("x").optional(Some(""));
        assert_ne!(none.encoded, empty.encoded);
        let k = key(3);
        let one = k.seal(1, &a, b"same").unwrap();
        let two = k.seal(1, &a, b"same").unwrap();
        assert_ne!(
            one[HEADER_LEN..HEADER_LEN + NONCE_LEN],
            two[HEADER_LEN..HEADER_LEN + NONCE_LEN]
        );
    }

    #[test]
    fn no_nonce_repeats_under_one_key() {
        let k = key(4);
        let context = Context::new("event").field("room");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50_000 {
            let sealed = k.seal(1, &context, b"x").unwrap();
            let nonce: [u8; NONCE_LEN] = sealed[HEADER_LEN..HEADER_LEN + NONCE_LEN]
                .try_into()
                .unwrap();
            assert!(seen.insert(nonce), "a nonce repeated");
        }
    }
}
