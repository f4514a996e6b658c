//! Latency percentiles.

use std::time::Duration;

/// The `p`-th percentile (0–100) of `samples` in milliseconds, or `None` when empty.
pub(crate) fn percentile_ms(samples: &mut [Duration], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    Some((samples[rank.min(samples.len() - 1)].as_secs_f64() * 1000.0 * 100.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&mut samples, 50.0), Some(51.0));
        assert_eq!(percentile_ms(&mut samples, 99.0), Some(99.0));
        assert_eq!(percentile_ms(&mut [], 50.0), None);
    }
}
