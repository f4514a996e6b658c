//! Prometheus metrics of this node, served at `/metrics` (see [`crate::http`] for who may read
//! them).
//!
//! Only counts, sizes and durations, labelled with closed sets of words (a route template, a
//! method, a status, an outcome, a reason): never a user, a room, a patient or any text, so that
//! nothing here can identify anyone. One registry per process, reached through [`get`], so that
//! any module can count without its handles being threaded through every constructor.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An HTTP request by its route template (never the path with its ids), method and status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// A standard method, or `other`.
    pub method: &'static str,
    pub route: String,
    pub status: u16,
}

/// What became of a post.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PostLabels {
    /// `stored`, `duplicate` (an earlier post with the same client id answered) or `refused`.
    pub outcome: &'static str,
}

/// Why an authentication attempt failed.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// A fixed word: `unknown_user`, `bad_password`, `account_disabled`, `bad_totp`,
    /// `bad_recovery_code`, `second_factor_missing`, `locked`, `unknown_refresh_token`,
    /// `refresh_token_reuse`, `bad_current_password`, `bad_totp_enrolment`, `csrf`,
    /// `ws_ticket`.
    pub reason: &'static str,
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Open WebSockets.
    pub ws_connections: Gauge,
    /// Room subscriptions of the open WebSockets.
    pub ws_subscriptions: Gauge,
    /// Posts handled by the group-commit writer, by outcome.
    pub posts: Family<PostLabels, Counter>,
    /// Posts per committed batch of the writer.
    pub commit_batch_size: Histogram,
    /// Time from a batch's start to its commit.
    pub commit_seconds: Histogram,
    /// Time from a post's arrival (on any node) to its frame being queued for a live
    /// subscriber on this node.
    pub fanout_seconds: Histogram,
    /// Audit records committed.
    pub audit_records: Counter,
    /// Failed authentication attempts, by reason.
    pub auth_failures: Family<FailureLabels, Counter>,
    /// HTTP requests answered.
    pub http_requests: Family<RequestLabels, Counter>,
    /// Time to answer an HTTP request (WebSocket upgrades: until the upgrade).
    pub http_seconds: Histogram,
    /// `NOTIFY` payloads this node sent to the others.
    pub cluster_notices_sent: Counter,
    /// Notices received from other nodes.
    pub cluster_notices_received: Counter,
    /// Times the relay looked at every watched room again (after losing notices).
    pub cluster_resyncs: Counter,
    /// Times listening for notices failed or its connection dropped.
    pub cluster_listen_failures: Counter,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("tsunagu");
        let r = &mut registry;
        Metrics {
            ws_connections: add(
                r,
                "ws_connections",
                "Open WebSocket connections",
                Gauge::default(),
            ),
            ws_subscriptions: add(
                r,
                "ws_subscriptions",
                "Room subscriptions of the open WebSocket connections",
                Gauge::default(),
            ),
            posts: add(
                r,
                "posts",
                "Posts handled by the group-commit writer, by outcome",
                Family::default(),
            ),
            commit_batch_size: add(
                r,
                "commit_batch_size",
                "Posts per transaction of the group-commit writer",
                Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            ),
            commit_seconds: add(
                r,
                "commit_seconds",
                "Time from the start of a group-commit batch to its commit",
                Histogram::new(exponential_buckets(0.000_5, 2.0, 14)),
            ),
            fanout_seconds: add(
                r,
                "fanout_seconds",
                "Time from a post's arrival to its frame being queued for a live subscriber here",
                Histogram::new(exponential_buckets(0.000_5, 2.0, 16)),
            ),
            audit_records: add(
                r,
                "audit_records",
                "Audit records committed",
                Counter::default(),
            ),
            auth_failures: add(
                r,
                "auth_failures",
                "Failed authentication attempts, by reason",
                Family::default(),
            ),
            http_requests: add(
                r,
                "http_requests",
                "HTTP requests answered, by route template, method and status",
                Family::default(),
            ),
            http_seconds: add(
                r,
                "http_request_seconds",
                "Time to answer an HTTP request",
                Histogram::new(exponential_buckets(0.000_5, 2.0, 16)),
            ),
            cluster_notices_sent: add(
                r,
                "cluster_notices_sent",
                "NOTIFY payloads sent to the other nodes",
                Counter::default(),
            ),
            cluster_notices_received: add(
                r,
                "cluster_notices_received",
                "Notices received from the other nodes",
                Counter::default(),
            ),
            cluster_resyncs: add(
                r,
                "cluster_resyncs",
                "Times every watched room was looked at again after notices may have been lost",
                Counter::default(),
            ),
            cluster_listen_failures: add(
                r,
                "cluster_listen_failures",
                "Times listening for other nodes' notices failed or its connection dropped",
                Counter::default(),
            ),
            registry,
        }
    }

    /// Counts a failed authentication attempt.
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&FailureLabels { reason })
            .inc();
    }

    /// Counts posts by outcome.
    pub fn posts(&self, outcome: &'static str, count: u64) {
        if count > 0 {
            self.posts
                .get_or_create(&PostLabels { outcome })
                .inc_by(count);
        }
    }
}

/// Registers `metric` under `name` and hands it back (the registry keeps a handle to the
/// same series).
fn add<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// Seconds of a duration, for histograms.
pub fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// Seconds since a stored time (UTC microseconds), zero if it is in the future.
pub fn seconds_since(micros: i64) -> f64 {
    let elapsed = crate::time::now_micros().saturating_sub(micros).max(0);
    // Microseconds to seconds; precision beyond 2^53 µs (285 years) does not matter here.
    #[allow(clippy::cast_precision_loss)]
    let seconds = elapsed as f64 / 1_000_000.0;
    seconds
}

/// Every metric in the OpenMetrics text format.
pub fn render() -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &get().registry);
    text
}

/// A wrapper that exposes a gauge for the lifetime of a value: +1 now, −1 on drop.
#[derive(Debug)]
pub struct Held(&'static Gauge);

impl Held {
    /// Adds one to `gauge` until the returned value is dropped.
    pub fn new(gauge: &'static Gauge) -> Self {
        gauge.inc();
        Held(gauge)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_names_every_metric_with_the_prefix() {
        get().auth_failure("password");
        get().posts("stored", 3);
        get().fanout_seconds.observe(0.002);
        let text = render();
        for name in [
            "tsunagu_ws_connections",
            "tsunagu_posts_total{outcome=\"stored\"}",
            "tsunagu_commit_batch_size_bucket",
            "tsunagu_fanout_seconds_bucket",
            "tsunagu_audit_records_total",
            "tsunagu_auth_failures_total{reason=\"password\"}",
            "tsunagu_cluster_notices_sent_total",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_held_gauge_counts_while_held() {
        let gauge: &'static Gauge = Box::leak(Box::new(Gauge::default()));
        let first = Held::new(gauge);
        let second = Held::new(gauge);
        assert_eq!(gauge.get(), 2);
        drop(first);
        assert_eq!(gauge.get(), 1);
        drop(second);
        assert_eq!(gauge.get(), 0);
    }
}
