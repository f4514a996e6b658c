//! Tamper evidence of the audit trail end to end: a server writes a log (checkpoints every few
//! records, copied to the external checkpoint file), is stopped, and then the database is
//! changed beside it as an intruder with database access would: a record edited, deleted,
//! inserted (placed, and unplaced), two records swapped, the tail cut off with the log's state
//! rewritten to match, a checkpoint signature forged. `tsunagu-server audit verify` reports
//! each with the first bad position, and the untouched log verifies clean.

use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::identity::{OrganisationKind, Role};

use crate::support::{bootstrap_admin, onboard, organisation};

/// The SQL that restores the audit tables from the copies taken before tampering.
const RESTORE: [&str; 6] = [
    "delete from audit_event",
    "insert into audit_event select * from audit_event_copy",
    "delete from audit_log",
    "insert into audit_log select * from audit_log_copy",
    "delete from audit_checkpoint",
    "insert into audit_checkpoint select * from audit_checkpoint_copy",
];

pub async fn run(mut server: TestServer) {
    use tsunagu_protocol::auth::LoginRequest;
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let clinic = organisation(&admin.session, "監査 診療所", OrganisationKind::Clinic).await;
    onboard(&client, &admin.session, &clinic, Role::Nurse, "audit-nurse").await;
    // A checkpoint now, and another after more records.
    wait_until_sealed(&server).await;
    // Failed logins: more records, and no session needed.
    for _ in 0..3 {
        let _ = client
            .login(&LoginRequest {
                username: "audit-nurse".into(),
                password: "wrong password 0000".into(),
                totp_code: None,
                recovery_code: None,
            })
            .await;
    }

    // Every record placed and covered by a checkpoint, then no more writes.
    wait_until_sealed(&server).await;
    server.kill().await;
    let size = server.sql_number("select count(*) from audit_event").await;
    assert!(size >= 12, "a log worth tampering with: {size} records");
    let external = std::fs::read_to_string(server.data_dir().join("audit-checkpoints.jsonl"))
        .expect("the external checkpoint file");
    assert!(external.lines().count() >= 2, "{external}");

    // The untouched log verifies, also as JSON.
    let (ok, stdout, stderr) = server.server_command(&["audit", "verify"]).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("OK: the audit log verifies"), "{stdout}");
    let (ok, stdout, _) = server.server_command(&["audit", "verify", "--json"]).await;
    assert!(ok);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON report");
    assert_eq!(report["clean"], true);
    assert_eq!(report["size"], size);
    assert_eq!(report["pending"], 0);

    // Beyond this point the intruder has the database: the append-only triggers go first.
    if server.is_postgres() {
        for table in ["audit_event", "audit_log", "audit_checkpoint"] {
            server
                .execute_sql(&format!("alter table {table} disable trigger user"))
                .await;
        }
    } else {
        for trigger in [
            "audit_event_place_once",
            "audit_event_no_delete",
            "audit_log_no_delete",
            "audit_checkpoint_no_update",
            "audit_checkpoint_no_delete",
        ] {
            server.execute_sql(&format!("drop trigger {trigger}")).await;
        }
    }
    for table in ["audit_event", "audit_log", "audit_checkpoint"] {
        server
            .execute_sql(&format!(
                "create table {table}_copy as select * from {table}"
            ))
            .await;
    }

    // Edited.
    tamper(
        &server,
        &[
            "update audit_event set outcome = case outcome when 'success' then 'failure' \
          else 'success' end where position = 5",
        ],
        Some(5),
        "altered",
    )
    .await;
    tamper(
        &server,
        &[
            "update audit_event set source_address = '203.0.113.9', reason = 'edited' \
           where position = 7",
        ],
        Some(7),
        "altered",
    )
    .await;
    // Deleted.
    tamper(
        &server,
        &["delete from audit_event where position = 4"],
        Some(4),
        "missing",
    )
    .await;
    // Swapped: records 6 and 7 trade places.
    tamper(
        &server,
        &[
            "update audit_event set position = -6 where position = 6",
            "update audit_event set position = 6 where position = 7",
            "update audit_event set position = 7 where position = -6",
        ],
        Some(6),
        "altered",
    )
    .await;
    // Inserted into the chain at position 3, later records moved up one, the forged record
    // given the chain value that was there.
    tamper(
        &server,
        &[
            "update audit_event set position = position + 1000000 where position >= 3",
            "update audit_event set position = position - 999999 where position > 1000000",
            "insert into audit_event (occurred_at, actor_user_id, action, outcome, format, mac, \
             position, chain) select occurred_at, actor_user_id, 'auth.logout', outcome, format, \
             mac, 3, chain from audit_event where position = 4",
        ],
        Some(3),
        "altered",
    )
    .await;
    // Inserted beside the chain (never placed): not written by the server.
    tamper(
        &server,
        &["insert into audit_event (occurred_at, action, outcome) \
           values (1, 'timeline.read', 'success')"],
        None,
        "not written by this server",
    )
    .await;
    // Tail cut off, and the log's state and stored checkpoints rewritten to match: only the
    // checkpoints kept outside the database show it.
    let keep = size - 3;
    for sql in [
        format!("delete from audit_event where position > {keep}"),
        format!(
            "update audit_log set size = {keep}, \
             head = (select chain from audit_event where position = {keep})"
        ),
        format!("delete from audit_checkpoint where size > {keep}"),
    ] {
        server.execute_sql(&sql).await;
    }
    // Checked without the external file the database alone looks consistent, which is why the
    // checkpoints must leave it.
    let empty = server.data_dir().join("no-checkpoints.jsonl");
    std::fs::write(&empty, "").unwrap();
    let (ok, stdout, _) = server
        .server_command(&["audit", "verify", "--checkpoints", empty.to_str().unwrap()])
        .await;
    assert!(
        ok,
        "without external checkpoints the cut is invisible: {stdout}"
    );
    tamper(&server, &[], Some(keep + 1), "cut off").await;
    // A stored checkpoint re-signed by someone without the key.
    tamper(
        &server,
        &[
            "update audit_checkpoint set signature = (select signature from audit_checkpoint \
           order by size limit 1) where size = (select max(size) from audit_checkpoint)",
        ],
        None,
        "signature does not verify",
    )
    .await;

    // Restored: clean again.
    let (ok, stdout, stderr) = server.server_command(&["audit", "verify"]).await;
    assert!(ok, "{stdout}{stderr}");
}

/// Waits until every record is placed and the newest checkpoint covers them all.
async fn wait_until_sealed(server: &TestServer) {
    for _ in 0..100 {
        let unplaced = server
            .sql_number("select count(*) from audit_event where position is null")
            .await;
        let total = server.sql_number("select count(*) from audit_event").await;
        let covered = server
            .sql_number("select coalesce(max(size), 0) from audit_checkpoint")
            .await;
        if unplaced == 0 && covered == total {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("the sequencer did not place and checkpoint every record within 20 s");
}

async fn restore(server: &TestServer) {
    for sql in RESTORE {
        server.execute_sql(sql).await;
    }
}

/// Applies `statements`, expects `audit verify` to fail naming `first_bad` (if any) and a
/// problem containing `problem`, then restores the log.
async fn tamper(server: &TestServer, statements: &[&str], first_bad: Option<i64>, problem: &str) {
    for sql in statements {
        server.execute_sql(sql).await;
    }
    let (ok, stdout, stderr) = server.server_command(&["audit", "verify"]).await;
    assert!(!ok, "tampering went unnoticed ({statements:?}): {stdout}");
    assert!(
        stdout.contains(problem),
        "{statements:?}: expected a problem mentioning {problem:?}: {stdout}{stderr}"
    );
    match first_bad {
        Some(position) => assert!(
            stdout.contains(&format!("first bad position: {position}\n")),
            "{statements:?}: expected first bad position {position}: {stdout}"
        ),
        None => assert!(!stdout.contains("first bad position"), "{stdout}"),
    }
    let (ok, json, _) = server.server_command(&["audit", "verify", "--json"]).await;
    assert!(!ok);
    let report: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON report");
    assert_eq!(report["clean"], false);
    assert_eq!(
        report["first_bad_position"],
        first_bad.map_or(serde_json::Value::Null, serde_json::Value::from)
    );
    restore(server).await;
}
