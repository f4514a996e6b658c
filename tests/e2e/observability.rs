//! Observability end to end: `/metrics` counts what happened (posts, audit records, failed
//! logins, requests by route template, open sockets) and is closed to anything but a local,
//! unforwarded request; traces reach an OpenTelemetry collector over OTLP/HTTP with the node's
//! name; and neither the metrics nor the spans contain a patient's name, an entry's text or
//! any user, room or session id.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use tsunagu_e2e::server::{Backend, TestServer};
use tsunagu_protocol::ErrorCode;
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::timeline::Visibility;
use tsunagu_protocol::ws::ClientFrame;

use crate::encryption::post;
use crate::live::{connect, next, send};
use crate::support::{bootstrap_admin, contains, onboard, organisation, room_with_consent};

const PATIENT: &str = "観測 太郎";
const MARKER: &str = "OBSERVE-7f3a 血圧 152/90 の記録";
const NODE: &str = "tsunagu-obs-1";

/// A stand-in OpenTelemetry collector: keeps the body of every OTLP/HTTP export it receives.
async fn collector() -> (String, Arc<Mutex<Vec<Bytes>>>) {
    let received: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                // An empty ExportTraceServiceResponse.
                ([("content-type", "application/x-protobuf")], Bytes::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, received)
}

async fn metrics(server: &TestServer, forwarded: bool) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", server.base_url));
    if forwarded {
        request = request.header("x-forwarded-for", "203.0.113.5");
    }
    request.send().await.unwrap()
}

/// The value of the first sample line that starts with `series`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

pub async fn run() {
    let (collector_url, received) = collector().await;
    let server = TestServer::start(
        Backend::Sqlite,
        "observability",
        &["--otlp-endpoint", &collector_url, "--node-name", NODE],
    )
    .await
    .expect("SQLite is always available");
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let org = organisation(&admin.session, "観測クリニック", OrganisationKind::Clinic).await;
    let (nurse, _) = onboard(&client, &admin.session, &org, Role::Nurse, "nurse.observe").await;
    let room = room_with_consent(&nurse.session, PATIENT).await;
    nurse
        .session
        .post_entry(room, &post(MARKER, Visibility::CareTeam))
        .await
        .unwrap();
    let mut wrong = nurse.login_request(None);
    wrong.password = "wrong-password-for-metrics".into();
    let error = client.login(&wrong).await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::AuthenticationFailed));
    let mut socket = connect(&server, &nurse).await;
    send(&mut socket, &ClientFrame::Subscribe { room, since: 0 }).await;
    assert!(next(&mut socket, Duration::from_secs(10)).await.is_some());

    // The metrics, from this host and not through a proxy.
    let response = metrics(&server, false).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    assert!(sample(&text, "tsunagu_posts_total{outcome=\"stored\"}") >= 1.0);
    assert!(sample(&text, "tsunagu_audit_records_total") >= 5.0);
    assert_eq!(
        sample(
            &text,
            "tsunagu_auth_failures_total{reason=\"bad_password\"}"
        ),
        1.0
    );
    assert_eq!(sample(&text, "tsunagu_ws_connections"), 1.0);
    assert_eq!(sample(&text, "tsunagu_ws_subscriptions"), 1.0);
    assert!(sample(&text, "tsunagu_commit_batch_size_count") >= 1.0);
    assert!(
        text.contains("route=\"/api/rooms/{room_id}/entries\""),
        "requests are counted by route template:\n{text}"
    );
    let nurse_id = nurse.user_id().await.to_string();
    let session_id = nurse.session.me().await.unwrap().session_id.to_string();
    for secret in [PATIENT, MARKER, &room.to_string(), &nurse_id, &session_id] {
        assert!(!text.contains(secret), "/metrics contains {secret}");
    }
    // Through a proxy, or with a token nobody configured: nothing there.
    assert_eq!(metrics(&server, true).await.status(), 404);

    // Traces: flushed at the latest when the server stops.
    drop(socket);
    server.stop().await;
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = received.lock().unwrap().concat();
        if !spans.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!spans.is_empty(), "the collector received no traces");
    for expected in [
        "tsunagu-server",
        NODE,
        "/api/rooms/",
        "request",
        "post batch",
    ] {
        assert!(contains(&spans, expected), "no {expected} in the spans");
    }
    for secret in [PATIENT, MARKER, "OBSERVE-7f3a"] {
        assert!(!contains(&spans, secret), "the spans contain {secret}");
    }
}
