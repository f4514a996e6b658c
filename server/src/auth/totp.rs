//! TOTP (RFC 6238): 6 digits, 30-second steps, HMAC-SHA-1 (what authenticator apps support),
//! 160-bit random seeds, one step of clock skew either way. A code is accepted only for a step
//! later than the last accepted one, so a code cannot be replayed.

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

/// Digits per code.
pub const DIGITS: usize = 6;
/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
const SEED_BYTES: usize = 20;
const ISSUER: &str = "Tsunagu";

/// A seed that is not a valid TOTP secret (stored data damaged).
#[derive(Debug, thiserror::Error)]
#[error("stored TOTP seed is not valid")]
pub struct InvalidSeed;

/// A fresh random seed.
pub fn new_seed() -> Zeroizing<Vec<u8>> {
    Zeroizing::new(crate::crypto::random_bytes::<SEED_BYTES>().to_vec())
}

fn totp(seed: &[u8], account: &str) -> Result<TOTP, InvalidSeed> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECONDS,
        seed.to_vec(),
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
    .map_err(|_| InvalidSeed)
}

/// The seed in base32 and the `otpauth://` URI for enrolling `account`.
///
/// # Errors
/// [`InvalidSeed`] if the seed is too short.
pub fn enrolment(
    seed: &[u8],
    account: &str,
) -> Result<(Zeroizing<String>, Zeroizing<String>), InvalidSeed> {
    let totp = totp(seed, account)?;
    Ok((
        Zeroizing::new(totp.get_secret_base32()),
        Zeroizing::new(totp.get_url()),
    ))
}

/// An `otpauth://` URI as a QR code: a standalone SVG document (error correction M, quiet
/// zone included), black on white so that every authenticator app's camera reads it.
///
/// # Errors
/// The URI is too long for a QR code (it never is: a seed, an issuer and a login name).
pub fn qr_svg(uri: &str) -> Result<String, qrcode::types::QrError> {
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

/// The step of `code` if it is valid at `unix_seconds` (±1 step) and later than `last_step`.
///
/// # Errors
/// [`InvalidSeed`] if the seed is too short.
pub fn verify(
    seed: &[u8],
    code: &str,
    unix_seconds: u64,
    last_step: u64,
) -> Result<Option<u64>, InvalidSeed> {
    let totp = totp(seed, "")?;
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let now_step = unix_seconds / STEP_SECONDS;
    // Check every candidate step, so the time taken does not depend on which one matches.
    let mut matched = None;
    for step in now_step.saturating_sub(1)..=now_step + 1 {
        let expected = totp.generate(step * STEP_SECONDS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && step > last_step {
            matched = Some(step);
        }
    }
    Ok(matched)
}

/// The code for `unix_seconds` (tests and the CLI's self-check only).
///
/// # Errors
/// [`InvalidSeed`] if the seed is too short.
pub fn code_at(seed: &[u8], unix_seconds: u64) -> Result<String, InvalidSeed> {
    Ok(totp(seed, "")?.generate(unix_seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_000_000;

    #[test]
    fn the_qr_code_is_a_standalone_svg_of_the_uri() {
        let seed = new_seed();
        let (_, uri) = enrolment(&seed, "nurse.sato").unwrap();
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<?xml"), "{}", &svg[..40]);
        assert!(svg.contains("<svg") && svg.contains("#000000"));
        assert!(
            !svg.contains("<script"),
            "an SVG shown as an image needs no script"
        );
        let other = qr_svg(&enrolment(&new_seed(), "nurse.sato").unwrap().1).unwrap();
        assert_ne!(svg, other, "another seed draws another code");
    }

    #[test]
    fn accepts_the_current_and_adjacent_steps_once() {
        let seed = new_seed();
        let code = code_at(&seed, NOW).unwrap();
        let step = verify(&seed, &code, NOW, 0).unwrap().unwrap();
        assert_eq!(step, NOW / STEP_SECONDS);
        assert_eq!(
            verify(&seed, &code, NOW, step).unwrap(),
            None,
            "replay must fail"
        );
        let previous = code_at(&seed, NOW - STEP_SECONDS).unwrap();
        assert!(verify(&seed, &previous, NOW, 0).unwrap().is_some());
        let stale = code_at(&seed, NOW - 3 * STEP_SECONDS).unwrap();
        assert_eq!(verify(&seed, &stale, NOW, 0).unwrap(), None);
    }

    #[test]
    fn rejects_malformed_codes() {
        let seed = new_seed();
        for code in ["", "12345", "1234567", "abcdef", "12 456"] {
            assert_eq!(verify(&seed, code, NOW, 0).unwrap(), None, "{code:?}");
        }
    }

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); the last six are ours.
        let seed = b"12345678901234567890";
        assert_eq!(code_at(seed, 59).unwrap(), "287082");
    }

    #[test]
    fn enrolment_uri_names_the_issuer_and_account() {
        let (secret, uri) = enrolment(&new_seed(), "nurse.sato").unwrap();
        assert_eq!(secret.len(), 32);
        assert!(
            uri.starts_with("otpauth://totp/Tsunagu:nurse.sato?"),
            "{}",
            uri.as_str()
        );
        assert!(uri.contains(secret.as_str()));
    }
}
