//! The restore drill of `deploy/backup/`, run as an operator runs it: a backup of a live
//! PostgreSQL database and its key files, restored into a fresh database, on which the key
//! check opens every sealed value and `audit verify` passes. With the wrong master key the
//! same drill fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tsunagu_e2e::server::{Backend, TestServer, binary};
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::timeline::Visibility;

use crate::encryption::post;
use crate::support::{bootstrap_admin, onboard, organisation, room_with_consent};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/backup/restore-drill.sh")
}

/// A directory only we may read: the drill refuses to put key copies anywhere else.
fn private_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// Runs the drill; returns whether it passed, and what it printed.
async fn drill(server: &TestServer, keys_dir: &Path, work_dir: &Path) -> (bool, String) {
    let output = tokio::process::Command::new("bash")
        .arg(script())
        .args(["--database-url", server.database_url().unwrap()])
        .arg("--keys-dir")
        .arg(keys_dir)
        .arg("--checkpoints")
        .arg(server.data_dir().join("audit-checkpoints.jsonl"))
        .arg("--server-bin")
        .arg(binary("tsunagu-server"))
        .arg("--work-dir")
        .arg(work_dir)
        .env_remove("TSUNAGU_DATABASE_URL")
        .output()
        .await
        .expect("run the restore drill");
    let printed = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

pub async fn run() {
    let Some(server) = TestServer::start(
        Backend::Postgres,
        "restore_drill",
        &["--audit-checkpoint-seconds", "1"],
    )
    .await
    else {
        return;
    };
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let org = organisation(
        &admin.session,
        "ふじ訪問看護",
        OrganisationKind::VisitingNursingStation,
    )
    .await;
    let (nurse, _) = onboard(&client, &admin.session, &org, Role::Nurse, "nurse.drill").await;
    let room = room_with_consent(&nurse.session, "富士 一郎").await;
    for i in 0..12 {
        nurse
            .session
            .post_entry(
                room,
                &post(&format!("DRILL-{i} 服薬確認済み"), Visibility::CareTeam),
            )
            .await
            .unwrap();
    }
    // The sequencer places the records and signs a checkpoint within a second or two.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let work = private_dir();
    let (passed, printed) = drill(&server, &server.data_dir().join("keys"), work.path()).await;
    assert!(passed, "the restore drill failed:\n{printed}");

    // The same drill with another installation's master key must fail: the drill checks.
    let other = private_dir();
    let (ok, _, stderr) = server
        .server_command(&[
            "--keys-dir",
            other.path().join("keys").to_str().unwrap(),
            "--master-key-file",
            other.path().join("keys/master.key").to_str().unwrap(),
            "--audit-signing-key-file",
            other
                .path()
                .join("keys/audit-signing.key")
                .to_str()
                .unwrap(),
            "keys",
            "init",
        ])
        .await;
    assert!(ok, "keys init failed: {stderr}");
    let mixed = private_dir();
    for entry in std::fs::read_dir(server.data_dir().join("keys")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), mixed.path().join(entry.file_name())).unwrap();
    }
    std::fs::copy(
        other.path().join("keys/master.key"),
        mixed.path().join("master.key"),
    )
    .unwrap();
    let work = private_dir();
    let (passed, printed) = drill(&server, mixed.path(), work.path()).await;
    assert!(
        !passed,
        "a drill with the wrong master key must fail, but it passed:\n{printed}"
    );
    server.stop().await;
}
