//! Passwords: Argon2id hashing off the async runtime, and the password policy.
//!
//! Parameters (RFC 9106 / OWASP): Argon2id, 19 MiB memory, 2 passes, 1 lane, 16-byte random
//! salt, 32-byte output, stored as a PHC string so parameters can be raised later and old
//! hashes still verify. On this machine class one hash takes about 25 ms of one core; hashes
//! run on two dedicated threads (see `HASH_THREADS`).
//!
//! Policy (NIST SP 800-63B; MHLW Q&A シQ-54 example (c)): at least 8 characters for accounts
//! that must use a second factor, at least 15 for accounts that may log in with the password
//! alone (family and patients, unless their organisation requires TOTP); at most 128; no
//! composition rules, no forced rotation, and not guessable: zxcvbn's lists of common and
//! breached passwords, names and keyboard patterns, plus the user's own name and login, must
//! put it above 10^6 guesses.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tsunagu_protocol::FieldError;
use zeroize::Zeroizing;

/// Shortest accepted password, in characters, for an account that must use two factors.
pub const MIN_CHARS: usize = 8;
/// Shortest accepted password for an account that may log in with the password alone.
pub const MIN_CHARS_SINGLE_FACTOR: usize = 15;
/// Longest accepted password, in characters (bounds hashing work per request).
pub const MAX_CHARS: usize = 128;

/// Why hashing failed: only resource exhaustion or a panicked worker can cause it.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

fn argon2() -> Argon2<'static> {
    // The constants are within Argon2's documented bounds, so `Params::new` cannot fail here;
    // fall back to the crate's defaults (also Argon2id 19 MiB, 2 passes) rather than panic.
    let params = Params::new(19 * 1024, 2, 1, Some(32)).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Threads that compute Argon2. Each hash takes 19 MiB and most of a core; doing them on a
/// few long-lived threads bounds both the work in flight under a burst of logins and the
/// memory the allocator keeps afterwards (every new thread would otherwise keep its own
/// 19 MiB arena).
const HASH_THREADS: usize = 2;

type HashJob = Box<dyn FnOnce() + Send>;

/// Runs `work` on the hashing threads and waits for its result without blocking the runtime.
async fn on_hash_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashError> {
    static POOL: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<HashJob>>> =
        std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<HashJob>();
        let receiver = std::sync::Arc::new(std::sync::Mutex::new(receiver));
        for n in 0..HASH_THREADS {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    loop {
                        // A poisoned lock only means another hashing thread panicked mid-job.
                        let job = receiver
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password-hashing thread");
            }
        }
        std::sync::Mutex::new(sender)
    });
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: HashJob = Box::new(move || {
        let _ = reply.send(work());
    });
    pool.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send(job)
        .map_err(|_| HashError)?;
    answer.await.map_err(|_| HashError)
}

/// Hashes a password on the hashing threads.
///
/// # Errors
/// [`HashError`] if the worker failed.
pub async fn hash(password: Zeroizing<String>) -> Result<String, HashError> {
    on_hash_thread(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|_| HashError)
    })
    .await?
}

/// Checks a password against a stored PHC hash on the hashing threads. A malformed stored
/// hash never matches.
///
/// # Errors
/// [`HashError`] if the worker failed.
pub async fn verify(password: Zeroizing<String>, stored: String) -> Result<bool, HashError> {
    on_hash_thread(move || match PasswordHash::new(&stored) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    })
    .await
}

/// A hash of a random password, verified against when the login name is unknown so that a
/// failed login costs the same time whether or not the account exists.
pub fn decoy_hash() -> String {
    let salt = SaltString::generate(&mut OsRng);
    let random = crate::crypto::random_token();
    argon2()
        .hash_password(random.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .unwrap_or_default()
}

/// Checks a new password against the policy. `context` holds words the user is known by
/// (login name, display name), which must not make up the password; `two_factor` says whether
/// the account must use a second factor.
///
/// # Errors
/// The field errors to show, with field `field`.
pub fn check_policy(
    password: &str,
    context: &[&str],
    field: &str,
    two_factor: bool,
) -> Result<(), FieldError> {
    let chars = password.chars().count();
    let min = if two_factor {
        MIN_CHARS
    } else {
        MIN_CHARS_SINGLE_FACTOR
    };
    if chars < min {
        return Err(FieldError {
            field: field.to_owned(),
            code: "too_short".to_owned(),
            message_ja: format!("{min}文字以上にしてください。"),
            message_en: format!("Use at least {min} characters."),
        });
    }
    let problem = if chars > MAX_CHARS {
        Some((
            "too_long",
            "128文字以下にしてください。",
            "Use at most 128 characters.",
        ))
    } else if password.chars().any(char::is_control) {
        Some((
            "invalid_characters",
            "制御文字は使用できません。",
            "Control characters are not allowed.",
        ))
    } else if is_guessable(password, context) {
        Some((
            "too_common",
            "よく使われるパスワードや推測されやすいパスワードは使用できません。",
            "This password is too common or too easy to guess.",
        ))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some((code, ja, en)) => Err(FieldError {
            field: field.to_owned(),
            code: code.to_owned(),
            message_ja: ja.to_owned(),
            message_en: en.to_owned(),
        }),
    }
}

fn is_guessable(password: &str, context: &[&str]) -> bool {
    let lowered = password.to_lowercase();
    if context
        .iter()
        .any(|word| word.chars().count() >= 3 && lowered.contains(&word.to_lowercase()))
    {
        return true;
    }
    // zxcvbn scores 0–4; 0 and 1 mean fewer than 10^6 estimated guesses: a listed common or
    // breached password, a dictionary word with small changes, a keyboard walk or a date.
    zxcvbn::zxcvbn(password, context).score() < zxcvbn::Score::Two
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_that_verify() {
        let stored = hash(Zeroizing::new("kango-2026-Minato!".to_owned()))
            .await
            .unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(
            verify(
                Zeroizing::new("kango-2026-Minato!".to_owned()),
                stored.clone()
            )
            .await
            .unwrap()
        );
        assert!(
            !verify(Zeroizing::new("kango-2026-minato!".to_owned()), stored)
                .await
                .unwrap()
        );
        assert!(
            !verify(
                Zeroizing::new("x".to_owned()),
                "not a phc string".to_owned()
            )
            .await
            .unwrap()
        );
    }

    #[test]
    fn policy_rejects_short_common_and_personal_passwords() {
        let code = |p: &str| {
            check_policy(p, &["sato.hanako", "佐藤 花子"], "password", true)
                .err()
                .map(|e| e.code)
        };
        assert_eq!(code("short1!"), Some("too_short".to_owned()));
        assert_eq!(code("password"), Some("too_common".to_owned()));
        assert_eq!(code("12345678"), Some("too_common".to_owned()));
        assert_eq!(code("qwertyuiop"), Some("too_common".to_owned()));
        assert_eq!(code("Password1"), Some("too_common".to_owned()));
        assert_eq!(code("iloveyou"), Some("too_common".to_owned()));
        assert_eq!(code("sato.hanako2026"), Some("too_common".to_owned()));
        assert_eq!(code(&"a".repeat(129)), Some("too_long".to_owned()));
        assert_eq!(
            code("tab\there-is-bad"),
            Some("invalid_characters".to_owned())
        );
        assert_eq!(code("kango-2026-Minato!"), None);
        assert_eq!(code("訪問看護ステーション緑町"), None);
    }

    #[test]
    fn single_factor_accounts_need_longer_passwords() {
        let family = |p: &str| {
            check_policy(p, &[], "password", false)
                .err()
                .map(|e| e.code)
        };
        assert_eq!(family("kango-2026-Min!"), None, "15 characters");
        assert_eq!(
            family("kango-2026-Mi!"),
            Some("too_short".to_owned()),
            "14 characters"
        );
        assert!(check_policy("kango-2026-Mi!", &[], "password", true).is_ok());
        let error = check_policy("short", &[], "password", false).unwrap_err();
        assert_eq!(error.message_en, "Use at least 15 characters.");
    }

    #[test]
    fn field_errors_carry_both_languages() {
        let error = check_policy("abc", &[], "new_password", true).unwrap_err();
        assert_eq!(error.field, "new_password");
        assert!(!error.message_ja.is_empty() && !error.message_en.is_empty());
    }
}
