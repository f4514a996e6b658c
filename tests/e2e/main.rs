//! End-to-end tests: the real `tsunagu-server` binary driven through the client library and
//! the `tsunagu` CLI binary, on SQLite and on PostgreSQL.
//!
//! Each scenario is an async function over a started [`TestServer`]; [`both_backends!`] runs
//! it once per database. PostgreSQL runs need `TSUNAGU_TEST_POSTGRES_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// A test binary exports nothing; `pub` in its modules only means "shared between scenarios".
#![allow(unreachable_pub)]

mod support;

mod attachments;
mod audit_day;
mod audit_officer;
mod audit_tamper;
mod cli;
mod cli_attachments;
mod cli_audit;
mod cli_forms;
mod cluster;
mod durability;
mod encryption;
mod forms;
mod live;
mod live_resilience;
mod observability;
mod onboarding;
mod process;
mod rejections;
mod restore_drill;
mod rooms;
mod scope;
mod sheet;
mod shredding;
mod timeline;
mod web;
mod web_sessions;

use live_resilience::{live_client_restart, live_client_streams, session_expiry, slow_consumer};

/// Defines `sqlite::NAME` and `postgres::NAME` tests that start a server with the given
/// arguments and run `MODULE::run(server)`.
macro_rules! both_backends {
    ($($name:ident => $module:ident $([$($arg:expr),*])?;)*) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let args: &[&str] = &[$($($arg),*)?];
                    let server = tsunagu_e2e::server::TestServer::start(
                        tsunagu_e2e::server::Backend::Sqlite, stringify!($name), args,
                    ).await.expect("SQLite is always available");
                    crate::$module::run(server).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let args: &[&str] = &[$($($arg),*)?];
                    let Some(server) = tsunagu_e2e::server::TestServer::start(
                        tsunagu_e2e::server::Backend::Postgres, stringify!($name), args,
                    ).await else { return };
                    crate::$module::run(server).await;
                }
            )*
        }
    };
}

both_backends! {
    onboarding_enrolment_refresh_and_logout => onboarding;
    documented_rejections => rejections ["--lockout-threshold", "3", "--lockout-seconds", "3"];
    organisation_admin_scope => scope;
    patient_rooms_membership_and_consent => rooms;
    timeline_streams_versions_and_acknowledgements => timeline;
    websocket_live_delivery_and_resume => live;
    acknowledged_posts_survive_sigkill => durability;
    cli_walkthrough => cli;
    attachments_upload_post_and_download => attachments;
    cli_attachments_post_and_get => cli_attachments;
    cli_audit_officer_tools => cli_audit;
    cli_forms_and_emergency_sheet => cli_forms;
    live_resilience_slow_consumer_resumes => slow_consumer;
    live_resilience_expired_session_socket_closes => session_expiry;
    live_resilience_live_client_streams => live_client_streams;
    live_resilience_live_client_survives_sigkill => live_client_restart;
    encryption_at_rest_markers_tampering_rotation => encryption;
    crypto_shredding_purge_after_retention => shredding ["--retention-days", "0"];
    audit_tampering_is_detected => audit_tamper
        ["--audit-checkpoint-records", "4", "--audit-checkpoint-seconds", "1"];
    audit_scripted_day => audit_day;
    audit_officer_tools => audit_officer ["--clock-check-command", "false"];
    forms_send_answer_correct_print_and_audit => forms;
    forms_emergency_sheet_and_emergency_service => sheet ["--sheet-confirm-days", "30"];
    web_sessions_csrf_and_operating_policy => web_sessions ["--operating-policy", crate::web_sessions::POLICY];
    web_client_in_chromium => web ["--operating-policy", crate::web_sessions::POLICY];
}

/// Two server processes on one PostgreSQL database (a cluster needs PostgreSQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cluster_two_nodes_on_one_database() {
    cluster::run().await;
}

/// Metrics and traces (the same on both databases: SQLite only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_observability_metrics_and_traces() {
    observability::run().await;
}

/// The backup kit's restore drill (PostgreSQL: the kit backs up PostgreSQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restore_drill_from_backup_into_a_fresh_database() {
    restore_drill::run().await;
}
