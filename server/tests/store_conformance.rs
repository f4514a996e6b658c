//! The store conformance suite: every scenario runs against SQLite and against PostgreSQL
//! (when `TSUNAGU_TEST_POSTGRES_URL` is set; required in CI), through the one store interface.

#![allow(clippy::unwrap_used)]

use std::future::Future;

use tsunagu_protocol::{
    AttachmentId, ConsentId, InvitationId, OrganisationId, RoomId, SessionId, UserId,
};
use tsunagu_server::store::AuditKey;
use tsunagu_server::store::{
    AuditRecord, ConsentRow, Database, Error, FormRow, FormVersionRow, InvitationRow,
    NewAttachment, NewEvent, OrganisationRow, RefreshTokenUse, RoleGrantRow, RoomAdvance, RoomRow,
    SessionRow, SheetVersionRow, Store, Stream, TemplateRow, UserRow,
};

/// The audit key the conformance stores write with.
const AUDIT_KEY: [u8; 32] = [5; 32];

const NOW: i64 = 1_795_000_000_000_000;

/// Runs `scenario` on a fresh SQLite store and a fresh PostgreSQL store.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::on_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::on_postgres(stringify!($name), super::$name).await;
                }
            )*
        }
    };
}

conformance!(
    organisations_round_trip,
    usernames_are_unique,
    references_are_enforced,
    role_grants_are_recorded,
    invitations_are_accepted_once,
    refresh_tokens_rotate_and_reuse_is_detected,
    sessions_are_revoked,
    totp_steps_only_move_forward,
    the_accepted_policy_version_is_kept_and_replaced,
    recovery_codes_work_once,
    login_failures_are_counted,
    audit_rows_are_append_only,
    failed_audit_write_rolls_back_the_action,
    dropped_transaction_writes_nothing,
    durable_commits_are_configured,
    concurrent_refresh_has_one_winner,
    rooms_start_with_their_creator,
    memberships_move_through_their_states,
    consents_are_withdrawn_not_changed,
    directory_finds_people_who_can_join_rooms,
    timeline_streams_are_gapless_and_apart,
    acknowledgements_and_read_positions,
    batches_are_checked_numbered_and_stored_together,
    attachments_are_stored_in_chunks_bound_once_and_cleaned_up,
    audit_records_are_chained_once_and_verified,
    form_templates_are_versioned_per_scope,
    forms_keep_versions_recipients_and_client_ids,
    form_transitions_apply_once,
    inbox_lists_waiting_forms_soonest_due_first,
    form_and_sheet_versions_are_written_once_until_purged,
    sheet_versions_are_ordered_and_confirmed_once,
    form_attachments_are_bound_once,
);

async fn on_sqlite<F, Fut>(scenario: F)
where
    F: FnOnce(Store, Database) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let database = Database::Sqlite {
        path: dir.path().join("conformance.db"),
    };
    let store = Store::open(&database)
        .await
        .unwrap()
        .with_audit_key(AuditKey::new(AUDIT_KEY));
    scenario(store.clone(), database).await;
    store.close().await;
}

async fn on_postgres<F, Fut>(name: &str, scenario: F)
where
    F: FnOnce(Store, Database) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = tsunagu_e2e::postgres::fresh_database(name).await else {
        return;
    };
    let database = Database::Postgres {
        url: db.url.clone(),
    };
    let store = Store::open(&database)
        .await
        .unwrap()
        .with_audit_key(AuditKey::new(AUDIT_KEY));
    scenario(store.clone(), database).await;
    store.close().await;
    db.drop_database().await;
}

// ---- fixtures ------------------------------------------------------------------------------

fn organisation(name: &str) -> OrganisationRow {
    OrganisationRow {
        organisation_id: OrganisationId::generate().to_string(),
        name: name.to_owned(),
        kind: "clinic".to_owned(),
        require_totp_for_all: 0,
        created_at: NOW,
    }
}

fn user(org: &OrganisationRow, username: &str) -> (UserRow, RoleGrantRow) {
    let user = UserRow {
        user_id: UserId::generate().to_string(),
        organisation_id: Some(org.organisation_id.clone()),
        username: username.to_owned(),
        display_name: "佐藤 花子".to_owned(),
        role: "nurse".to_owned(),
        status: "active".to_owned(),
        password_hash: "$argon2id$placeholder".to_owned(),
        must_change_password: 0,
        totp_enabled: 0,
        totp_secret_sealed: None,
        totp_pending_sealed: None,
        totp_last_step: 0,
        created_at: NOW,
        accepted_policy_version: None,
        org_require_totp: 0,
    };
    let grant = RoleGrantRow {
        user_id: user.user_id.clone(),
        role: user.role.clone(),
        granted_by: None,
        reason: "fixture".to_owned(),
        granted_at: NOW,
    };
    (user, grant)
}

async fn seeded(store: &Store) -> (OrganisationRow, UserRow) {
    let org = organisation("みどり訪問看護ステーション");
    let (user, grant) = user(&org, "nurse.sato");
    let mut tx = store.begin().await.unwrap();
    tx.insert_organisation(&org, None).await.unwrap();
    tx.insert_user(&user, &grant).await.unwrap();
    tx.commit().await.unwrap();
    (org, user)
}

fn id<T: std::str::FromStr>(value: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    value.parse().unwrap()
}

fn session(user: &UserRow, expires_at: i64) -> SessionRow {
    SessionRow {
        session_id: SessionId::generate().to_string(),
        user_id: user.user_id.clone(),
        created_at: NOW,
        last_seen_at: NOW,
        idle_timeout_s: 1800,
        expires_at,
        user_agent: Some("conformance".to_owned()),
        source_address: Some("127.0.0.1".to_owned()),
    }
}

fn audit(action: &str, outcome: &str) -> AuditRecord {
    AuditRecord {
        occurred_at: NOW,
        action: action.to_owned(),
        outcome: outcome.to_owned(),
        ..AuditRecord::default()
    }
}

/// A raw connection beside the store, to try what the store interface does not offer.
async fn raw_execute(database: &Database, sql: &'static str) -> Result<u64, sqlx::Error> {
    use sqlx::Connection;
    match database {
        Database::Sqlite { path } => {
            let mut conn =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
            Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
        }
        Database::Postgres { url } => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
        }
    }
}

// ---- scenarios -----------------------------------------------------------------------------

async fn organisations_round_trip(store: Store, _: Database) {
    let b = organisation("B 薬局");
    let a = organisation("A クリニック");
    let mut tx = store.begin().await.unwrap();
    tx.insert_organisation(&b, None).await.unwrap();
    tx.insert_organisation(&a, None).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.organisation(id(&a.organisation_id)).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.organisations().await.unwrap(), vec![a.clone(), b]);
    assert_eq!(
        store
            .organisation(OrganisationId::generate())
            .await
            .unwrap(),
        None
    );

    let renamed = OrganisationRow {
        name: "A 在宅クリニック".into(),
        require_totp_for_all: 1,
        ..a
    };
    let ghost = organisation("never inserted");
    let mut tx = store.begin().await.unwrap();
    assert!(tx.update_organisation(&renamed).await.unwrap());
    assert!(!tx.update_organisation(&ghost).await.unwrap());
    tx.commit().await.unwrap();
    let stored = store
        .organisation(id(&renamed.organisation_id))
        .await
        .unwrap();
    assert_eq!(stored, Some(renamed));
}

async fn usernames_are_unique(store: Store, _: Database) {
    let (org, first) = seeded(&store).await;
    let (second, grant) = user(&org, "nurse.sato");
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.insert_user(&second, &grant).await,
        Err(Error::UniqueViolation)
    ));
    drop(tx);
    let found = store.user_by_username("nurse.sato").await.unwrap().unwrap();
    assert_eq!(found.user_id, first.user_id);
    assert_eq!(found.display_name, "佐藤 花子");
    assert_eq!(
        store
            .organisation_users(id(&org.organisation_id))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.user_by_username("nobody").await.unwrap(), None);
}

async fn references_are_enforced(store: Store, _: Database) {
    let ghost = organisation("never inserted");
    let (orphan, grant) = user(&ghost, "orphan");
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.insert_user(&orphan, &grant).await,
        Err(Error::ForeignKeyViolation)
    ));
}

async fn role_grants_are_recorded(store: Store, _: Database) {
    let (_, nurse) = seeded(&store).await;
    let grant = RoleGrantRow {
        user_id: nurse.user_id.clone(),
        role: "care_manager".to_owned(),
        granted_by: None,
        reason: "異動 transfer".to_owned(),
        granted_at: NOW + 1,
    };
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.grant_role(&grant).await.unwrap(), 1);
    tx.commit().await.unwrap();
    let grants = store.role_grants(id(&nurse.user_id)).await.unwrap();
    let roles: Vec<&str> = grants.iter().map(|g| g.role.as_str()).collect();
    assert_eq!(roles, ["nurse", "care_manager"]);
    assert_eq!(grants[1].reason, "異動 transfer");
    assert_eq!(
        store.user(id(&nurse.user_id)).await.unwrap().unwrap().role,
        "care_manager"
    );
}

async fn invitations_are_accepted_once(store: Store, _: Database) {
    let (org, admin) = seeded(&store).await;
    let invitation = InvitationRow {
        invitation_id: InvitationId::generate().to_string(),
        organisation_id: org.organisation_id.clone(),
        role: "pharmacist".to_owned(),
        invitee_name: Some("鈴木".to_owned()),
        created_by: admin.user_id.clone(),
        created_at: NOW,
        expires_at: NOW + 1_000,
        accepted_by: None,
        accepted_at: None,
        revoked_at: None,
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_invitation(&invitation, b"digest-1")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.invitation_by_code(b"digest-1").await.unwrap(),
        Some(invitation.clone())
    );
    assert_eq!(store.invitation_by_code(b"digest-2").await.unwrap(), None);

    let invitation_id: InvitationId = id(&invitation.invitation_id);
    let (org_user, grant) = user(&org, "pharm.suzuki");
    let mut tx = store.begin().await.unwrap();
    tx.insert_user(&org_user, &grant).await.unwrap();
    assert!(
        !tx.accept_invitation(invitation_id, id(&org_user.user_id), NOW + 1_000)
            .await
            .unwrap(),
        "expired"
    );
    assert!(
        tx.accept_invitation(invitation_id, id(&org_user.user_id), NOW + 10)
            .await
            .unwrap()
    );
    assert!(
        !tx.accept_invitation(invitation_id, id(&org_user.user_id), NOW + 11)
            .await
            .unwrap(),
        "twice"
    );
    assert!(
        !tx.revoke_invitation(invitation_id, NOW + 12).await.unwrap(),
        "accepted cannot be revoked"
    );
    tx.commit().await.unwrap();
    let stored = store.invitation(invitation_id).await.unwrap().unwrap();
    assert_eq!(
        stored.accepted_by.as_deref(),
        Some(org_user.user_id.as_str())
    );
    assert_eq!(
        store
            .organisation_invitations(id(&org.organisation_id))
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn refresh_tokens_rotate_and_reuse_is_detected(store: Store, _: Database) {
    let (_, nurse) = seeded(&store).await;
    let row = session(&nurse, NOW + 1_000_000);
    let mut tx = store.begin().await.unwrap();
    tx.insert_session(&row, b"rt-1").await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.consume_refresh_token(b"rt-1", NOW + 1).await.unwrap(),
        RefreshTokenUse::Fresh(row.session_id.clone())
    );
    tx.insert_refresh_token(&row.session_id, b"rt-2", NOW + 1)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.consume_refresh_token(b"rt-1", NOW + 2).await.unwrap(),
        RefreshTokenUse::Reused(row.session_id.clone())
    );
    assert_eq!(
        tx.consume_refresh_token(b"rt-x", NOW + 2).await.unwrap(),
        RefreshTokenUse::Unknown
    );
    assert_eq!(
        tx.consume_refresh_token(b"rt-2", NOW + 2).await.unwrap(),
        RefreshTokenUse::Fresh(row.session_id.clone())
    );
    tx.commit().await.unwrap();
}

async fn sessions_are_revoked(store: Store, _: Database) {
    let (_, nurse) = seeded(&store).await;
    let live = session(&nurse, NOW + 1_000_000);
    let other = session(&nurse, NOW + 1_000_000);
    let expired = session(&nurse, NOW + 10);
    let mut tx = store.begin().await.unwrap();
    tx.insert_session(&live, b"a").await.unwrap();
    tx.insert_session(&other, b"b").await.unwrap();
    tx.insert_session(&expired, b"c").await.unwrap();
    tx.commit().await.unwrap();
    let user_id: UserId = id(&nurse.user_id);
    assert_eq!(
        store.live_sessions(user_id, NOW + 100).await.unwrap().len(),
        2
    );

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.revoke_session(id(&live.session_id), "test", NOW + 101)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        tx.revoke_session(id(&live.session_id), "test", NOW + 102)
            .await
            .unwrap(),
        0
    );
    tx.touch_session(id(&other.session_id), NOW + 103)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let principal = store
        .session_principal(id(&other.session_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(principal.last_seen_at, NOW + 103);
    assert_eq!(principal.user.username, "nurse.sato");
    assert!(
        store
            .session_principal(id(&live.session_id))
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.revoke_user_sessions(user_id, "logout", NOW + 104)
            .await
            .unwrap(),
        2,
        "other + expired"
    );
    tx.commit().await.unwrap();
    assert!(
        store
            .live_sessions(user_id, NOW + 105)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn totp_steps_only_move_forward(store: Store, _: Database) {
    let (_, nurse) = seeded(&store).await;
    let user_id: UserId = id(&nurse.user_id);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.enable_totp(user_id, 1, &[], NOW).await.unwrap(),
        0,
        "nothing pending"
    );
    assert_eq!(
        tx.set_pending_totp(user_id, b"sealed-seed", NOW)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        tx.enable_totp(user_id, 5, &[b"r1".to_vec()], NOW)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        tx.set_pending_totp(user_id, b"other", NOW).await.unwrap(),
        0,
        "already enabled"
    );
    assert!(
        !tx.advance_totp_step(user_id, 5).await.unwrap(),
        "same step is a replay"
    );
    assert!(
        !tx.advance_totp_step(user_id, 4).await.unwrap(),
        "earlier step"
    );
    assert!(tx.advance_totp_step(user_id, 6).await.unwrap());
    tx.commit().await.unwrap();
    let row = store.user(user_id).await.unwrap().unwrap();
    assert_eq!((row.totp_enabled, row.totp_last_step), (1, 6));
    assert_eq!(row.totp_secret_sealed.as_deref(), Some(&b"sealed-seed"[..]));
    assert_eq!(row.totp_pending_sealed, None);

    let mut tx = store.begin().await.unwrap();
    tx.reset_totp(user_id, NOW).await.unwrap();
    tx.commit().await.unwrap();
    let row = store.user(user_id).await.unwrap().unwrap();
    assert_eq!((row.totp_enabled, row.totp_secret_sealed), (0, None));
    assert!(
        store
            .unused_recovery_codes(user_id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn the_accepted_policy_version_is_kept_and_replaced(store: Store, _: Database) {
    let (_, nurse) = seeded(&store).await;
    let user_id: UserId = id(&nurse.user_id);
    assert_eq!(
        store
            .user(user_id)
            .await
            .unwrap()
            .unwrap()
            .accepted_policy_version,
        None
    );
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.accept_policy(user_id, "61e6d130f7ebc33d", NOW)
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.accept_policy(user_id, "0123456789abcdef", NOW + 1)
        .await
        .unwrap();
    // Not committed: the earlier acceptance stands.
    drop(tx);
    let row = store.user(user_id).await.unwrap().unwrap();
    assert_eq!(
        row.accepted_policy_version.as_deref(),
        Some("61e6d130f7ebc33d")
    );
    let mut tx = store.begin().await.unwrap();
    tx.accept_policy(user_id, "0123456789abcdef", NOW + 2)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let row = store.user(user_id).await.unwrap().unwrap();
    assert_eq!(
        row.accepted_policy_version.as_deref(),
        Some("0123456789abcdef")
    );
}

async fn recovery_codes_work_once(store: Store, _: Database) {
    let (_, nurse) = seeded(&store).await;
    let user_id: UserId = id(&nurse.user_id);
    let mut tx = store.begin().await.unwrap();
    tx.set_pending_totp(user_id, b"seed", NOW).await.unwrap();
    tx.enable_totp(user_id, 1, &[b"r1".to_vec(), b"r2".to_vec()], NOW)
        .await
        .unwrap();
    assert!(tx.use_recovery_code(user_id, b"r1", NOW).await.unwrap());
    assert!(!tx.use_recovery_code(user_id, b"r1", NOW).await.unwrap());
    assert!(!tx.use_recovery_code(user_id, b"r3", NOW).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(
        store.unused_recovery_codes(user_id).await.unwrap(),
        vec![b"r2".to_vec()]
    );
}

async fn login_failures_are_counted(store: Store, _: Database) {
    let key = b"hmac-of-login-name";
    assert_eq!(store.login_throttle(key).await.unwrap(), None);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.record_login_failure(key, NOW, 3).await.unwrap(), 1);
    assert_eq!(tx.record_login_failure(key, NOW + 1, 3).await.unwrap(), 2);
    tx.lock_login(key, NOW + 60).await.unwrap();
    tx.commit().await.unwrap();
    let state = store.login_throttle(key).await.unwrap().unwrap();
    assert_eq!((state.failures, state.locked_until), (2, NOW + 60));

    // At the threshold: counting goes on while the lockout lasts, restarts after it.
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.record_login_failure(key, NOW + 2, 3).await.unwrap(), 3);
    tx.lock_login(key, NOW + 100).await.unwrap();
    assert_eq!(tx.record_login_failure(key, NOW + 50, 3).await.unwrap(), 4);
    assert_eq!(tx.record_login_failure(key, NOW + 100, 3).await.unwrap(), 1);
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.clear_login_throttle(key).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.login_throttle(key).await.unwrap(), None);
}

async fn audit_rows_are_append_only(store: Store, database: Database) {
    let mut tx = store.begin().await.unwrap();
    tx.append_audit(&audit("auth.login", "success"))
        .await
        .unwrap();
    tx.append_audit(&audit("auth.logout", "success"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let records = store.audit_records(0, 10).await.unwrap();
    assert_eq!(records.len(), 2);
    assert!(records[0].audit_event_id < records[1].audit_event_id);
    assert_eq!(records[1].action, "auth.logout");

    assert!(
        raw_execute(&database, "update audit_event set outcome = 'failure'")
            .await
            .is_err()
    );
    assert!(
        raw_execute(&database, "delete from audit_event")
            .await
            .is_err()
    );
    assert_eq!(
        store.audit_records(0, 10).await.unwrap(),
        records,
        "rows unchanged"
    );
}

async fn failed_audit_write_rolls_back_the_action(store: Store, _: Database) {
    let org = organisation("should not exist");
    let mut tx = store.begin().await.unwrap();
    tx.insert_organisation(&org, None).await.unwrap();
    // An outcome the schema refuses stands for any failure to write the audit record.
    assert!(
        tx.append_audit(&audit("admin.organisation_create", "bogus"))
            .await
            .is_err()
    );
    drop(tx);
    assert_eq!(
        store.organisation(id(&org.organisation_id)).await.unwrap(),
        None
    );
    assert!(store.audit_records(0, 10).await.unwrap().is_empty());
}

async fn dropped_transaction_writes_nothing(store: Store, _: Database) {
    let org = organisation("rolled back");
    {
        let mut tx = store.begin().await.unwrap();
        tx.insert_organisation(&org, None).await.unwrap();
        tx.append_audit(&audit("admin.organisation_create", "success"))
            .await
            .unwrap();
    }
    assert_eq!(
        store.organisation(id(&org.organisation_id)).await.unwrap(),
        None
    );
    assert!(store.audit_records(0, 10).await.unwrap().is_empty());
    // The store is still usable after the rollback.
    let mut tx = store.begin().await.unwrap();
    tx.insert_organisation(&org, None).await.unwrap();
    tx.commit().await.unwrap();
    assert!(
        store
            .organisation(id(&org.organisation_id))
            .await
            .unwrap()
            .is_some()
    );
}

async fn durable_commits_are_configured(store: Store, database: Database) {
    let durability = store.durability().await.unwrap();
    match database {
        Database::Sqlite { .. } => assert_eq!(durability, "journal_mode=wal synchronous=2"),
        Database::Postgres { .. } => assert_eq!(durability, "synchronous_commit=on"),
    }
    assert_eq!(store.dialect(), database.dialect());
    store.ping().await.unwrap();
}

async fn concurrent_refresh_has_one_winner(store: Store, _: Database) {
    let (_, nurse) = seeded(&store).await;
    let row = session(&nurse, NOW + 1_000_000);
    let mut tx = store.begin().await.unwrap();
    tx.insert_session(&row, b"contended").await.unwrap();
    tx.commit().await.unwrap();
    let attempts = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            let outcome = tx
                .consume_refresh_token(b"contended", NOW + i)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            outcome
        })
    });
    let mut fresh = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        if matches!(attempt.await.unwrap(), RefreshTokenUse::Fresh(_)) {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
}

// ---- rooms ---------------------------------------------------------------------------------

async fn add_user(store: &Store, org: &OrganisationRow, username: &str, role: &str) -> UserRow {
    let (mut row, mut grant) = user(org, username);
    row.role = role.to_owned();
    grant.role = role.to_owned();
    let mut tx = store.begin().await.unwrap();
    tx.insert_user(&row, &grant).await.unwrap();
    tx.commit().await.unwrap();
    row
}

async fn room(store: &Store, creator: &UserRow, at: i64) -> RoomRow {
    let row = RoomRow {
        room_id: RoomId::generate().to_string(),
        patient_details: b"{\"opaque\":\"details\"}".to_vec(),
        created_by: creator.user_id.clone(),
        created_at: at,
        last_seq: 0,
        last_public_seq: 0,
        closed_at: None,
        purged_at: None,
        consent_state: None,
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_room(&row).await.unwrap();
    tx.commit().await.unwrap();
    row
}

async fn rooms_start_with_their_creator(store: Store, _: Database) {
    let (_, nurse) = seeded(&store).await;
    let older = room(&store, &nurse, NOW).await;
    let newer = room(&store, &nurse, NOW + 1).await;
    let stored = store.room(id(&older.room_id)).await.unwrap().unwrap();
    assert_eq!(stored, older);
    assert_eq!(store.room(RoomId::generate()).await.unwrap(), None);

    let membership = store
        .membership(id(&older.room_id), id(&nurse.user_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (membership.state.as_str(), membership.invited_by),
        ("accepted", None)
    );
    let listed = store
        .rooms_of_user(id(&nurse.user_id), Stream::Full)
        .await
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|r| r.room_id.as_str()).collect();
    assert_eq!(ids, [newer.room_id.as_str(), older.room_id.as_str()]);
    assert!(
        listed
            .iter()
            .all(|r| r.my_state == "accepted" && r.consent_state.is_none())
    );
}

async fn memberships_move_through_their_states(store: Store, _: Database) {
    let (org, nurse) = seeded(&store).await;
    let physician = add_user(&store, &org, "dr.tanaka", "physician").await;
    let patient_room = room(&store, &nurse, NOW).await;
    let (room_id, doctor): (RoomId, UserId) = (id(&patient_room.room_id), id(&physician.user_id));
    let inviter: UserId = id(&nurse.user_id);

    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.invite_member(room_id, doctor, inviter, NOW + 1)
            .await
            .unwrap()
    );
    assert!(
        !tx.invite_member(room_id, doctor, inviter, NOW + 2)
            .await
            .unwrap(),
        "already invited"
    );
    assert!(
        !tx.change_membership(room_id, doctor, &["accepted"], "left", NOW + 3)
            .await
            .unwrap()
    );
    assert!(
        tx.change_membership(room_id, doctor, &["invited"], "declined", NOW + 3)
            .await
            .unwrap()
    );
    assert!(
        tx.invite_member(room_id, doctor, inviter, NOW + 4)
            .await
            .unwrap(),
        "again after declining"
    );
    assert!(
        tx.change_membership(room_id, doctor, &["invited"], "accepted", NOW + 5)
            .await
            .unwrap()
    );
    assert!(
        !tx.invite_member(room_id, doctor, inviter, NOW + 6)
            .await
            .unwrap(),
        "already a member"
    );
    tx.commit().await.unwrap();

    let members = store.room_members(room_id).await.unwrap();
    let states: Vec<(&str, &str)> = members
        .iter()
        .map(|m| (m.display_name.as_str(), m.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [("佐藤 花子", "accepted"), ("佐藤 花子", "accepted")]
    );
    assert_eq!(members[1].role, "physician");
    assert_eq!(
        members[1].organisation_name.as_deref(),
        Some("みどり訪問看護ステーション")
    );
    assert_eq!(
        members[1].invited_by.as_deref(),
        Some(nurse.user_id.as_str())
    );
    assert_eq!(
        (members[1].invited_at, members[1].responded_at),
        (NOW + 4, Some(NOW + 5))
    );

    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.change_membership(
            room_id,
            doctor,
            &["invited", "accepted"],
            "revoked",
            NOW + 7
        )
        .await
        .unwrap()
    );
    tx.commit().await.unwrap();
    assert!(
        store
            .rooms_of_user(doctor, Stream::Full)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn consents_are_withdrawn_not_changed(store: Store, _: Database) {
    let (_, nurse) = seeded(&store).await;
    let patient_room = room(&store, &nurse, NOW).await;
    let consent = ConsentRow {
        consent_id: ConsentId::generate().to_string(),
        room_id: patient_room.room_id.clone(),
        details: b"opaque consent".to_vec(),
        recorded_by: nurse.user_id.clone(),
        recorded_at: NOW + 1,
        withdrawn_by: None,
        withdrawn_at: None,
        withdrawal_details: None,
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_consent(&consent).await.unwrap();
    tx.commit().await.unwrap();
    let room_id: RoomId = id(&patient_room.room_id);
    assert_eq!(
        store
            .room(room_id)
            .await
            .unwrap()
            .unwrap()
            .consent_state
            .as_deref(),
        Some("given")
    );
    assert_eq!(
        store.consents(room_id).await.unwrap(),
        vec![consent.clone()]
    );

    let consent_id: ConsentId = id(&consent.consent_id);
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.withdraw_consent(consent_id, id(&nurse.user_id), b"reason", NOW + 2)
            .await
            .unwrap()
    );
    assert!(
        !tx.withdraw_consent(consent_id, id(&nurse.user_id), b"again", NOW + 3)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let stored = store.consent(consent_id).await.unwrap().unwrap();
    assert_eq!(stored.details, consent.details);
    assert_eq!(
        (stored.withdrawn_at, stored.withdrawal_details.as_deref()),
        (Some(NOW + 2), Some(&b"reason"[..]))
    );
    let listed = store
        .rooms_of_user(id(&nurse.user_id), Stream::Full)
        .await
        .unwrap();
    assert_eq!(listed[0].consent_state.as_deref(), Some("withdrawn"));

    let renewed = ConsentRow {
        consent_id: ConsentId::generate().to_string(),
        recorded_at: NOW + 4,
        ..consent
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_consent(&renewed).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store
            .room(room_id)
            .await
            .unwrap()
            .unwrap()
            .consent_state
            .as_deref(),
        Some("given")
    );
}

async fn directory_finds_people_who_can_join_rooms(store: Store, _: Database) {
    let (org, _) = seeded(&store).await;
    add_user(&store, &org, "dr.sato", "physician").await;
    add_user(&store, &org, "admin.sato", "organisation_admin").await;
    add_user(&store, &org, "fire.sato", "emergency_service").await;
    add_user(&store, &org, "pct_100", "family").await;
    let found: Vec<String> = store
        .directory("佐藤", 20)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.role)
        .collect();
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found
            .iter()
            .all(|role| ["nurse", "physician", "family"].contains(&role.as_str()))
    );
    assert_eq!(
        store.directory("DR.SATO", 20).await.unwrap().len(),
        1,
        "case-insensitive"
    );
    assert_eq!(store.directory("dr.sato", 20).await.unwrap().len(), 1);
    // LIKE wildcards in the query are taken literally.
    assert_eq!(store.directory("%", 20).await.unwrap().len(), 0);
    assert_eq!(store.directory("t_1", 20).await.unwrap().len(), 1);
    assert_eq!(store.directory("佐藤", 2).await.unwrap().len(), 2);
}

// ---- timeline ------------------------------------------------------------------------------

fn event(
    room: &RoomRow,
    author: &UserRow,
    visibility: &'static str,
    client_id: Option<&str>,
) -> NewEvent {
    NewEvent {
        room_id: room.room_id.clone(),
        entry_id: tsunagu_protocol::EntryId::generate().to_string(),
        change: "posted",
        entry_kind: Some("text"),
        visibility,
        version: 1,
        author_id: author.user_id.clone(),
        author_role: author.role.clone(),
        author_organisation_id: author.organisation_id.clone(),
        client_id: client_id.map(str::to_owned),
        body: format!("{{\"text\":\"{visibility}\"}}").into_bytes(),
        created_at: NOW,
    }
}

async fn timeline_streams_are_gapless_and_apart(store: Store, _: Database) {
    let (_, nurse) = seeded(&store).await;
    let patient_room = room(&store, &nurse, NOW).await;
    let room_id: RoomId = id(&patient_room.room_id);
    let visibilities = [
        "everyone",
        "care_team",
        "care_team",
        "everyone",
        "care_team",
        "everyone",
    ];
    let mut numbers = Vec::new();
    let mut tx = store.begin().await.unwrap();
    for (i, visibility) in visibilities.iter().enumerate() {
        let client = format!("client-{i}");
        numbers.push(
            tx.append_event(&event(&patient_room, &nurse, visibility, Some(&client)))
                .await
                .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    assert_eq!(
        numbers,
        [
            (1, Some(1)),
            (2, None),
            (3, None),
            (4, Some(2)),
            (5, None),
            (6, Some(3))
        ]
    );
    let full: Vec<i64> = store
        .timeline(room_id, Stream::Full, 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(full, [1, 2, 3, 4, 5, 6]);
    let public = store
        .timeline(room_id, Stream::Public, 0, 100)
        .await
        .unwrap();
    assert_eq!(
        public.iter().map(|e| e.public_seq).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3)]
    );
    assert!(public.iter().all(|e| e.visibility == "everyone"));
    let page: Vec<i64> = store
        .timeline(room_id, Stream::Full, 2, 2)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(page, [3, 4]);
    let stored = store.room(room_id).await.unwrap().unwrap();
    assert_eq!((stored.last_seq, stored.last_public_seq), (6, 3));
    assert_eq!(public[0].author_name, "佐藤 花子");

    // A client id is stored once per author and room.
    let mut tx = store.begin().await.unwrap();
    let found = tx
        .client_post(room_id, id(&nurse.user_id), "client-3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.seq, 4);
    assert!(
        tx.client_post(room_id, id(&nurse.user_id), "client-9")
            .await
            .unwrap()
            .is_none()
    );
    let again = tx
        .append_event(&event(&patient_room, &nurse, "everyone", Some("client-3")))
        .await;
    assert!(matches!(again, Err(Error::UniqueViolation)), "{again:?}");
    drop(tx);
    let stored = store.room(room_id).await.unwrap().unwrap();
    assert_eq!(stored.last_seq, 6, "the failed append allocated nothing");

    // Versions of one entry come back in order.
    let entry = event(&patient_room, &nurse, "care_team", None);
    let edit = NewEvent {
        change: "edited",
        entry_kind: None,
        version: 2,
        ..entry.clone()
    };
    let mut tx = store.begin().await.unwrap();
    tx.append_event(&entry).await.unwrap();
    tx.append_event(&edit).await.unwrap();
    tx.commit().await.unwrap();
    let versions = store
        .entry_events(room_id, id(&entry.entry_id))
        .await
        .unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|e| (e.seq, e.version))
            .collect::<Vec<_>>(),
        [(7, 1), (8, 2)]
    );
}

async fn acknowledgements_and_read_positions(store: Store, _: Database) {
    let (org, nurse) = seeded(&store).await;
    let family = add_user(&store, &org, "family.sato", "family").await;
    let patient_room = room(&store, &nurse, NOW).await;
    let room_id: RoomId = id(&patient_room.room_id);
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.invite_member(room_id, id(&family.user_id), id(&nurse.user_id), NOW)
            .await
            .unwrap()
    );
    assert!(
        tx.change_membership(room_id, id(&family.user_id), &["invited"], "accepted", NOW)
            .await
            .unwrap()
    );
    let shared = event(&patient_room, &nurse, "everyone", None);
    tx.append_event(&shared).await.unwrap();
    tx.append_event(&event(&patient_room, &nurse, "care_team", None))
        .await
        .unwrap();
    let urgent = NewEvent {
        entry_kind: Some("urgent"),
        ..event(&patient_room, &nurse, "everyone", None)
    };
    tx.append_event(&urgent).await.unwrap();
    tx.append_event(&event(&patient_room, &family, "everyone", None))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let counts = |rows: Vec<tsunagu_server::store::RoomListRow>| {
        (rows[0].head, rows[0].unread, rows[0].urgent_unread)
    };
    // The nurse sees all 4 events, 1 by someone else; the family sees 3, 2 by someone else.
    assert_eq!(
        counts(
            store
                .rooms_of_user(id(&nurse.user_id), Stream::Full)
                .await
                .unwrap()
        ),
        (4, 1, 0)
    );
    assert_eq!(
        counts(
            store
                .rooms_of_user(id(&family.user_id), Stream::Public)
                .await
                .unwrap()
        ),
        (3, 2, 1)
    );
    let mut tx = store.begin().await.unwrap();
    tx.mark_read(room_id, id(&family.user_id), 2).await.unwrap();
    tx.mark_read(room_id, id(&family.user_id), 1).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        counts(
            store
                .rooms_of_user(id(&family.user_id), Stream::Public)
                .await
                .unwrap()
        ),
        (3, 0, 0)
    );
    let membership = store
        .membership(room_id, id(&family.user_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(membership.read_seq, 2, "read positions never move back");

    let entry: tsunagu_protocol::EntryId = id(&shared.entry_id);
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.acknowledge(room_id, entry, id(&family.user_id), NOW + 5)
            .await
            .unwrap()
    );
    assert!(
        !tx.acknowledge(room_id, entry, id(&family.user_id), NOW + 6)
            .await
            .unwrap()
    );
    assert!(
        tx.acknowledge(room_id, entry, id(&nurse.user_id), NOW + 7)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let acks = store.acknowledgements(room_id, entry).await.unwrap();
    let who: Vec<(&str, i64)> = acks
        .iter()
        .map(|a| (a.role.as_str(), a.acknowledged_at))
        .collect();
    assert_eq!(who, [("family", NOW + 5), ("nurse", NOW + 7)]);
}

/// The group-commit writer's statements: one read of posters for many rooms, one read of
/// earlier posts by client id, one update numbering several rooms, multi-row inserts, in
/// batches larger than one statement's run (300 rows: runs of 256, 32, 8 and 4).
async fn batches_are_checked_numbered_and_stored_together(store: Store, _: Database) {
    let (org, nurse) = seeded(&store).await;
    let outsider = add_user(&store, &org, "outsider", "pharmacist").await;
    let first = room(&store, &nurse, NOW).await;
    let second = room(&store, &nurse, NOW + 1).await;
    let missing_room = RoomId::generate().to_string();

    let mut tx = store.begin().await.unwrap();
    let mut pairs = vec![
        (first.room_id.clone(), nurse.user_id.clone()),
        (second.room_id.clone(), nurse.user_id.clone()),
        (first.room_id.clone(), outsider.user_id.clone()),
        (missing_room.clone(), nurse.user_id.clone()),
    ];
    pairs.sort();
    let mut posters = tx.posters(&pairs).await.unwrap();
    posters.sort_by(|a, b| (&a.room_id, &a.user_id).cmp(&(&b.room_id, &b.user_id)));
    assert_eq!(posters.len(), 3, "the missing room is left out");
    let nurse_in_first = posters
        .iter()
        .find(|p| p.room_id == first.room_id && p.user_id == nurse.user_id)
        .unwrap();
    assert_eq!(nurse_in_first.member_state.as_deref(), Some("accepted"));
    assert_eq!(nurse_in_first.display_name, nurse.display_name);
    assert_eq!(
        nurse_in_first.organisation_name.as_deref(),
        Some(org.name.as_str())
    );
    assert_eq!(nurse_in_first.consent_state, None);
    let outsider_in_first = posters
        .iter()
        .find(|p| p.user_id == outsider.user_id)
        .unwrap();
    assert_eq!(outsider_in_first.member_state, None);

    // 300 events: 200 in the first room (every third public), 100 in the second.
    let events: Vec<NewEvent> = (0..300)
        .map(|i| {
            let target = if i % 3 == 2 { &second } else { &first };
            let visibility = if i % 3 == 0 { "everyone" } else { "care_team" };
            event(target, &nurse, visibility, Some(&format!("batch-{i}")))
        })
        .collect();
    let mut rooms = vec![
        RoomAdvance {
            room_id: second.room_id.clone(),
            events: 100,
            public_events: 0,
        },
        RoomAdvance {
            room_id: first.room_id.clone(),
            events: 200,
            public_events: 100,
        },
    ];
    let mut ends = tx.advance_rooms(&mut rooms).await.unwrap();
    ends.sort_by(|a, b| a.room_id.cmp(&b.room_id));
    let mut expected = vec![
        (first.room_id.clone(), 200, 100),
        (second.room_id.clone(), 100, 0),
    ];
    expected.sort();
    assert_eq!(
        ends.iter()
            .map(|e| (e.room_id.clone(), e.last_seq, e.last_public_seq))
            .collect::<Vec<_>>(),
        expected
    );
    let (mut seq_first, mut seq_second, mut public_first) = (0, 0, 0);
    let numbered: Vec<(&NewEvent, i64, Option<i64>)> = events
        .iter()
        .map(|e| {
            if e.room_id == first.room_id {
                seq_first += 1;
                let public = (e.visibility == "everyone").then(|| {
                    public_first += 1;
                    public_first
                });
                (e, seq_first, public)
            } else {
                seq_second += 1;
                (e, seq_second, None)
            }
        })
        .collect();
    tx.insert_events(&numbered).await.unwrap();
    let audits: Vec<AuditRecord> = (0..300)
        .map(|_| audit("timeline.post", "success"))
        .collect();
    tx.append_audits(&audits).await.unwrap();

    // Earlier posts by client id, in this transaction, with their rooms.
    let keys: Vec<(String, String, String)> = [0, 2, 299]
        .iter()
        .map(|&i: &usize| {
            let e = &events[i];
            (
                e.room_id.clone(),
                e.author_id.clone(),
                e.client_id.clone().unwrap(),
            )
        })
        .chain(std::iter::once((
            first.room_id.clone(),
            nurse.user_id.clone(),
            "never-used".to_owned(),
        )))
        .collect();
    let mut found = tx.client_posts(&keys).await.unwrap();
    found.sort_by(|a, b| a.1.client_id.cmp(&b.1.client_id));
    assert_eq!(
        found
            .iter()
            .map(|(room, row)| (room.clone(), row.client_id.clone().unwrap(), row.seq))
            .collect::<Vec<_>>(),
        vec![
            (first.room_id.clone(), "batch-0".to_owned(), 1),
            (second.room_id.clone(), "batch-2".to_owned(), 1),
            (second.room_id.clone(), "batch-299".to_owned(), 100),
        ]
    );
    tx.commit().await.unwrap();

    let full = store
        .timeline(id(&first.room_id), Stream::Full, 0, 500)
        .await
        .unwrap();
    assert_eq!(
        full.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=200).collect::<Vec<_>>()
    );
    let public = store
        .timeline(id(&first.room_id), Stream::Public, 0, 500)
        .await
        .unwrap();
    assert_eq!(
        public.iter().map(|e| e.public_seq).collect::<Vec<_>>(),
        (1..=100).map(Some).collect::<Vec<_>>()
    );
    let stored = store.room(id(&second.room_id)).await.unwrap().unwrap();
    assert_eq!((stored.last_seq, stored.last_public_seq), (100, 0));
    let trail = store.audit_records(0, 1000).await.unwrap();
    assert_eq!(
        trail.iter().filter(|r| r.action == "timeline.post").count(),
        300
    );
}

// ---- attachments ---------------------------------------------------------------------------

async fn new_attachment(
    store: &Store,
    room: &RoomRow,
    uploader: &UserRow,
    at: i64,
) -> AttachmentId {
    let id = AttachmentId::generate();
    let mut tx = store.begin().await.unwrap();
    tx.insert_attachment(&NewAttachment {
        attachment_id: id,
        room_id: self::id(&room.room_id),
        uploader_id: uploader.user_id.clone(),
        media_type: "application/pdf",
        meta: b"{\"file_name\":\"a.pdf\"}".to_vec(),
        created_at: at,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn add_chunks(store: &Store, id: AttachmentId, chunks: &[&[u8]]) {
    for (idx, bytes) in chunks.iter().enumerate() {
        let mut tx = store.begin().await.unwrap();
        tx.insert_attachment_chunk(id, idx as i64, bytes.to_vec())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}

async fn finish(store: &Store, id: AttachmentId, size: i64, chunks: i64) -> bool {
    let mut tx = store.begin().await.unwrap();
    let done = tx
        .finish_attachment(id, size, &"ab".repeat(32), chunks, b"sealed details")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    done
}

async fn attachments_are_stored_in_chunks_bound_once_and_cleaned_up(store: Store, _: Database) {
    let (org, nurse) = seeded(&store).await;
    let doctor = add_user(&store, &org, "dr.chunk", "physician").await;
    let patient_room = room(&store, &nurse, NOW).await;
    let other_room = room(&store, &nurse, NOW).await;
    let room_id: RoomId = id(&patient_room.room_id);

    // Chunks come back one by one, in order; the row becomes ready once.
    let pdf = new_attachment(&store, &patient_room, &nurse, NOW).await;
    let uploading = store.attachment(room_id, pdf).await.unwrap().unwrap();
    assert_eq!(
        (uploading.state.as_str(), uploading.byte_size),
        ("uploading", None)
    );
    add_chunks(&store, pdf, &[b"%PDF-", &[0xff; 3], b"end"]).await;
    assert!(finish(&store, pdf, 11, 3).await);
    assert!(!finish(&store, pdf, 11, 3).await, "ready once");
    let ready = store.attachment(room_id, pdf).await.unwrap().unwrap();
    assert_eq!(
        (
            ready.state.as_str(),
            ready.byte_size,
            ready.chunk_count,
            ready.entry_id
        ),
        ("ready", Some(11), Some(3), None)
    );
    assert_eq!(
        store.attachment_chunk(pdf, 1).await.unwrap(),
        Some(vec![0xff; 3])
    );
    assert_eq!(store.attachment_chunk(pdf, 3).await.unwrap(), None);
    // Not visible under another room.
    assert!(
        store
            .attachment(id(&other_room.room_id), pdf)
            .await
            .unwrap()
            .is_none()
    );
    // A chunk index is stored once.
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.insert_attachment_chunk(pdf, 0, b"again".to_vec()).await,
        Err(Error::UniqueViolation)
    ));
    drop(tx);

    // Bound only by its uploader, in its room, once; a failed bind leaves the others free.
    let unfinished = new_attachment(&store, &patient_room, &nurse, NOW).await;
    let entry = tsunagu_protocol::EntryId::generate().to_string();
    let try_bind = |room: &RoomRow, author: &UserRow, ids: Vec<AttachmentId>| {
        let (store, room, author, entry) = (
            store.clone(),
            room.room_id.clone(),
            author.user_id.clone(),
            entry.clone(),
        );
        async move {
            let mut tx = store.begin().await.unwrap();
            let result = tx.bind_attachments(&room, &author, &entry, &ids).await;
            if result.is_ok() {
                tx.commit().await.unwrap();
            }
            result
        }
    };
    for (room, author, ids) in [
        (&patient_room, &doctor, vec![pdf]),
        (&other_room, &nurse, vec![pdf]),
        (&patient_room, &nurse, vec![unfinished]),
        (&patient_room, &nurse, vec![pdf, unfinished]),
        (&patient_room, &nurse, vec![AttachmentId::generate()]),
    ] {
        assert!(matches!(
            try_bind(room, author, ids).await,
            Err(Error::AttachmentsUnavailable)
        ));
    }
    assert_eq!(
        store
            .attachment(room_id, pdf)
            .await
            .unwrap()
            .unwrap()
            .entry_id,
        None,
        "a failed bind binds nothing"
    );
    try_bind(&patient_room, &nurse, vec![pdf]).await.unwrap();
    assert!(matches!(
        try_bind(&patient_room, &nurse, vec![pdf]).await,
        Err(Error::AttachmentsUnavailable)
    ));
    assert_eq!(
        store
            .attachment(room_id, pdf)
            .await
            .unwrap()
            .unwrap()
            .entry_id,
        Some(entry.clone())
    );
    // Concurrent binds of one attachment to two posts: exactly one wins.
    let contested = new_attachment(&store, &patient_room, &nurse, NOW).await;
    add_chunks(&store, contested, &[b"%PDF-1"]).await;
    assert!(finish(&store, contested, 6, 1).await);
    let attempts = (0..4).map(|_| {
        let (store, room, author) = (
            store.clone(),
            patient_room.room_id.clone(),
            nurse.user_id.clone(),
        );
        tokio::spawn(async move {
            let entry = tsunagu_protocol::EntryId::generate().to_string();
            let mut tx = store.begin().await.unwrap();
            match tx
                .bind_attachments(&room, &author, &entry, &[contested])
                .await
            {
                Ok(()) => {
                    tx.commit().await.unwrap();
                    1
                }
                Err(Error::AttachmentsUnavailable) => 0,
                Err(error) => panic!("{error}"),
            }
        })
    });
    let mut winners = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        winners += attempt.await.unwrap();
    }
    assert_eq!(winners, 1);

    // A bound attachment is never deleted; an unbound one goes with its chunks.
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.delete_unbound_attachment(pdf).await.unwrap());
    assert!(tx.delete_unbound_attachment(unfinished).await.unwrap());
    tx.commit().await.unwrap();
    assert!(
        store
            .attachment(room_id, unfinished)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.attachment_chunk(pdf, 0).await.unwrap().is_some());

    // Clean-up: old unfinished uploads and old unbound attachments; nothing bound, nothing new.
    let hour = 3_600_000_000;
    let stale_upload = new_attachment(&store, &patient_room, &nurse, NOW - 2 * hour).await;
    add_chunks(&store, stale_upload, &[b"%PDF-"]).await;
    let fresh_upload = new_attachment(&store, &patient_room, &nurse, NOW).await;
    let stale_unbound = new_attachment(&store, &patient_room, &doctor, NOW - 25 * hour).await;
    add_chunks(&store, stale_unbound, &[b"%PDF-"]).await;
    assert!(finish(&store, stale_unbound, 5, 1).await);
    let young_unbound = new_attachment(&store, &patient_room, &doctor, NOW - 2 * hour).await;
    assert!(finish(&store, young_unbound, 0, 0).await);
    let mut tx = store.begin().await.unwrap();
    let removed = tx
        .delete_stale_attachments(NOW - hour, NOW - 24 * hour)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((removed.uploading, removed.unbound), (1, 1));
    for (attachment, kept) in [
        (stale_upload, false),
        (stale_unbound, false),
        (fresh_upload, true),
        (young_unbound, true),
        (pdf, true),
    ] {
        assert_eq!(
            store
                .attachment(room_id, attachment)
                .await
                .unwrap()
                .is_some(),
            kept,
            "{attachment}"
        );
    }
    assert_eq!(store.attachment_chunk(stale_upload, 0).await.unwrap(), None);
    assert_eq!(
        store.attachment_chunk(stale_unbound, 0).await.unwrap(),
        None
    );
}

async fn audit_records_are_chained_once_and_verified(store: Store, database: Database) {
    use tsunagu_server::audit::chain::Problem;
    use tsunagu_server::audit::log::{
        CheckpointPolicy, CheckpointSigner, Sequencer, read_checkpoint_file, verify,
    };

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoints.jsonl");
    let signing = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
    let verifying = signing.verifying_key();
    let key = AuditKey::new(AUDIT_KEY);
    let mut sequencer = Sequencer::new(
        store.clone(),
        key.clone(),
        std::sync::Arc::new(CheckpointSigner::new(signing, "conformance")),
        CheckpointPolicy {
            every_records: 3,
            every: std::time::Duration::from_secs(3600),
            file: file.clone(),
        },
    );

    // A store without the key writes no audit record, and so no audited action.
    let keyless = Store::open(&database).await.unwrap();
    let mut tx = keyless.begin().await.unwrap();
    assert!(matches!(
        tx.append_audit(&audit("auth.login", "success")).await,
        Err(Error::NoAuditKey)
    ));
    drop(tx);
    keyless.close().await;

    let mut tx = store.begin().await.unwrap();
    let records: Vec<AuditRecord> = (0..5).map(|_| audit("timeline.read", "success")).collect();
    tx.append_audits(&records).await.unwrap();
    tx.commit().await.unwrap();

    let round = sequencer.catch_up(false).await.unwrap();
    assert_eq!((round.placed, round.size, round.checkpoint), (5, 5, true));
    let external = read_checkpoint_file(&file).unwrap();
    assert_eq!(
        external.len(),
        1,
        "the checkpoint is copied outside the database"
    );
    assert_eq!(external[0].size, 5);
    let report = verify(&store, &key, &verifying, &external).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.size, report.checkpoints, report.pending), (5, 2, 0));

    // Nothing new: no round places anything, no checkpoint is signed.
    let round = sequencer.catch_up(false).await.unwrap();
    assert_eq!((round.placed, round.checkpoint), (0, false));

    // A record's place is set once; its content never changes.
    for sql in [
        "update audit_event set position = 99 where position = 1",
        "update audit_event set chain = position where position = 2",
        "update audit_event set outcome = 'failure' where position = 3",
        "delete from audit_event where position = 5",
        "delete from audit_checkpoint",
        "update audit_checkpoint set size = 1",
    ] {
        assert!(raw_execute(&database, sql).await.is_err(), "{sql}");
    }

    // A record inserted beside the server carries no valid MAC: it stays out of the chain,
    // the sequencer records that it found it, and verification reports it.
    let forge = match database {
        Database::Sqlite { .. } => {
            "insert into audit_event (occurred_at, action, outcome, format, mac) \
             values (1, 'timeline.read', 'success', 1, x'00')"
        }
        Database::Postgres { .. } => {
            "insert into audit_event (occurred_at, action, outcome, format, mac) \
             values (1, 'timeline.read', 'success', 1, decode('00', 'hex'))"
        }
    };
    raw_execute(&database, forge).await.unwrap();
    let round = sequencer.catch_up(false).await.unwrap();
    assert_eq!(round.placed, 0, "the forged record is not placed");
    let round = sequencer.catch_up(false).await.unwrap();
    assert_eq!(round.placed, 1, "the record of the finding is placed");
    let found = store.audit_records(0, 100).await.unwrap();
    assert!(
        found
            .iter()
            .any(|r| r.action == "security.audit_integrity_failure"
                && r.reason.as_deref() == Some("mac_mismatch")),
        "{found:?}"
    );
    let report = verify(&store, &key, &verifying, &external).await.unwrap();
    assert!(
        matches!(
            report.problems.as_slice(),
            [Problem::Unauthenticated { .. }]
        ),
        "{report:?}"
    );
    assert_eq!(report.size, 6);

    // A record without MAC in an id range that was once legacy (an id a rolled-back
    // transaction left free) is not placed either once the log holds MAC'd records.
    raw_execute(&database, "update audit_log set legacy_through = 1000000")
        .await
        .unwrap();
    raw_execute(
        &database,
        "insert into audit_event (audit_event_id, occurred_at, action, outcome) \
         values (999999, 1, 'auth.login', 'success')",
    )
    .await
    .unwrap();
    assert_eq!(sequencer.catch_up(false).await.unwrap().placed, 0);
    assert_eq!(sequencer.catch_up(false).await.unwrap().placed, 1);
    let report = verify(&store, &key, &verifying, &external).await.unwrap();
    assert_eq!(
        report
            .problems
            .iter()
            .filter(|p| matches!(p, Problem::Unauthenticated { .. }))
            .count(),
        2,
        "{report:?}"
    );
}

/// `url` with its user replaced by `user` (no password: the test cluster trusts local users).
fn with_user(url: &str, user: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let host_start = rest.find('@').map_or(0, |i| i + 1);
    format!("{}{user}@{}", &url[..scheme_end], &rest[host_start..])
}

/// On PostgreSQL the server runs as a role set up by `deploy/postgres/roles.sql`: it can run
/// (migrations already applied by the owner), append audit records and place them on the
/// chain, but it cannot UPDATE, DELETE or TRUNCATE audit rows, nor disable the triggers.
#[tokio::test]
async fn postgres_app_role_cannot_change_audit_rows() {
    use sqlx::Connection;
    use tsunagu_server::audit::log::{CheckpointPolicy, CheckpointSigner, Sequencer, verify};

    let Some(db) = tsunagu_e2e::postgres::fresh_database("app_role").await else {
        return;
    };
    let owner = Store::open(&Database::Postgres {
        url: db.url.clone(),
    })
    .await
    .unwrap();
    owner.close().await;
    let role = format!(
        "tsunagu_app_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create role {role} login")))
        .execute(&mut admin)
        .await
        .unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/postgres/roles.sql");
    let psql = tokio::process::Command::new("psql")
        .args(["--quiet", "-v", "ON_ERROR_STOP=1", "-v"])
        .arg(format!("app_role={role}"))
        .arg("-f")
        .arg(&script)
        .arg(&db.url)
        .output()
        .await
        .expect("run psql");
    assert!(
        psql.status.success(),
        "roles.sql failed: {}",
        String::from_utf8_lossy(&psql.stderr)
    );

    let app_url = with_user(&db.url, &role);
    let app = Store::open(&Database::Postgres {
        url: app_url.clone(),
    })
    .await
    .expect("the server starts as the application role")
    .with_audit_key(AuditKey::new(AUDIT_KEY));
    let mut tx = app.begin().await.unwrap();
    tx.append_audits(&[
        audit("auth.login", "success"),
        audit("timeline.read", "success"),
    ])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let signing = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
    let verifying = signing.verifying_key();
    let mut sequencer = Sequencer::new(
        app.clone(),
        AuditKey::new(AUDIT_KEY),
        std::sync::Arc::new(CheckpointSigner::new(signing, "roles")),
        CheckpointPolicy {
            every_records: 1,
            every: std::time::Duration::from_secs(60),
            file: dir.path().join("checkpoints.jsonl"),
        },
    );
    let round = sequencer.catch_up(true).await.unwrap();
    assert_eq!((round.placed, round.checkpoint), (2, true));
    let report = verify(&app, &AuditKey::new(AUDIT_KEY), &verifying, &[])
        .await
        .unwrap();
    assert!(report.is_clean(), "{report:?}");

    let mut conn = sqlx::PgConnection::connect(&app_url).await.unwrap();
    for sql in [
        "update audit_event set outcome = 'failure'",
        "update audit_event set reason = 'x' where position = 1",
        "delete from audit_event",
        "truncate audit_event",
        "delete from audit_checkpoint",
        "update audit_checkpoint set size = 9",
        "delete from audit_log",
        "update audit_log set legacy_through = 99",
        "update form_version set body = body",
        "update sheet_version set changed = changed",
        "alter table audit_event disable trigger user",
        "drop trigger audit_event_place_once on audit_event",
    ] {
        let error = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect_err(sql)
            .to_string();
        assert!(
            error.contains("permission denied") || error.contains("must be owner"),
            "{sql}: {error}"
        );
    }
    // Setting a place again is refused by the trigger even where the column may be written.
    assert!(
        sqlx::raw_sql("update audit_event set position = 7 where position = 1")
            .execute(&mut conn)
            .await
            .is_err()
    );
    conn.close().await.ok();
    admin.close().await.ok();
    app.close().await;
    db.drop_database().await;
    let maintenance = std::env::var(tsunagu_e2e::postgres::URL_VAR).unwrap();
    let mut admin = sqlx::PgConnection::connect(&maintenance).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("drop role {role}")))
        .execute(&mut admin)
        .await
        .unwrap();
}

// ---- forms and the emergency sheet ---------------------------------------------------------

fn template(scope: &str, key: &str, version: i64, at: i64) -> TemplateRow {
    TemplateRow {
        scope: scope.to_owned(),
        key: key.to_owned(),
        version,
        organisation_id: (!scope.is_empty()).then(|| scope.to_owned()),
        definition: format!("{{\"key\":\"{key}\",\"v\":{version}}}"),
        created_by: None,
        created_at: at,
    }
}

async fn add_named_user(
    store: &Store,
    org: &OrganisationRow,
    username: &str,
    role: &str,
    name: &str,
) -> UserRow {
    let (mut row, mut grant) = user(org, username);
    row.role = role.to_owned();
    row.display_name = name.to_owned();
    grant.role = role.to_owned();
    let mut tx = store.begin().await.unwrap();
    tx.insert_user(&row, &grant).await.unwrap();
    tx.commit().await.unwrap();
    row
}

async fn add_template(store: &Store, row: &TemplateRow) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_form_template(row).await.unwrap();
    tx.commit().await.unwrap();
}

fn form_row(room: &RoomRow, sender: &UserRow, client_id: &str, at: i64) -> FormRow {
    FormRow {
        form_id: tsunagu_protocol::FormId::generate().to_string(),
        room_id: room.room_id.clone(),
        sender_id: sender.user_id.clone(),
        sender_role: sender.role.clone(),
        sender_organisation_id: sender.organisation_id.clone(),
        client_id: client_id.to_owned(),
        template_scope: String::new(),
        template_key: "request".to_owned(),
        template_version: 1,
        addressed_role: None,
        visibility: "care_team".to_owned(),
        due_on: None,
        reply_to: None,
        current_version: 1,
        status: "open".to_owned(),
        sent_at: at,
        completed_at: None,
    }
}

/// Sends `form` (version 1) to `recipients` in one transaction.
async fn send_form(store: &Store, form: &FormRow, recipients: &[&UserRow]) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_form(form).await.unwrap();
    tx.insert_form_version(&FormVersionRow {
        form_id: form.form_id.clone(),
        version: 1,
        author_id: form.sender_id.clone(),
        created_at: form.sent_at,
        body: b"sealed v1".to_vec(),
    })
    .await
    .unwrap();
    let users: Vec<UserId> = recipients.iter().map(|u| id(&u.user_id)).collect();
    tx.insert_form_recipients(&form.form_id, &users)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Invites `user` into `room` and accepts.
async fn join(store: &Store, room: &RoomRow, user: &UserRow) {
    let mut tx = store.begin().await.unwrap();
    let (room_id, user_id) = (id(&room.room_id), id(&user.user_id));
    assert!(
        tx.invite_member(room_id, user_id, id(&room.created_by), NOW)
            .await
            .unwrap()
    );
    assert!(
        tx.change_membership(room_id, user_id, &["invited"], "accepted", NOW)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
}

fn sheet_row(room: &RoomRow, author: &UserRow, version: i64, at: i64) -> SheetVersionRow {
    SheetVersionRow {
        room_id: room.room_id.clone(),
        version,
        author_id: author.user_id.clone(),
        author_role: author.role.clone(),
        author_organisation_id: author.organisation_id.clone(),
        created_at: at,
        changed: "allergies,dnar".to_owned(),
        body: format!("sealed sheet v{version}").into_bytes(),
    }
}

async fn form_templates_are_versioned_per_scope(store: Store, _: Database) {
    let (org, _) = seeded(&store).await;
    let other = organisation("あおば居宅介護支援事業所");
    let mut tx = store.begin().await.unwrap();
    tx.insert_organisation(&other, None).await.unwrap();
    tx.commit().await.unwrap();
    let (mine, theirs) = (org.organisation_id.as_str(), other.organisation_id.as_str());

    for row in [
        template("", "admission_notice", 1, NOW),
        template("", "admission_notice", 2, NOW + 1),
        template("", "reply", 1, NOW),
        template(mine, "admission_notice", 1, NOW + 2),
        template(mine, "visit_report", 1, NOW),
        template(mine, "visit_report", 2, NOW + 3),
        template(mine, "visit_report", 3, NOW + 4),
        template(theirs, "private", 1, NOW),
    ] {
        add_template(&store, &row).await;
    }
    // A version is taken once per scope; the same number in another scope is another template.
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.insert_form_template(&template("", "admission_notice", 2, NOW + 9))
            .await,
        Err(Error::UniqueViolation)
    ));
    drop(tx);
    // The scope must be '' (no organisation) or the owning organisation's id.
    let mut wrong = template(mine, "wrong", 1, NOW);
    wrong.organisation_id = Some(theirs.to_owned());
    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_form_template(&wrong).await.is_err());
    drop(tx);

    let newest = store
        .form_template("", "admission_notice", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest, template("", "admission_notice", 2, NOW + 1));
    let first = store
        .form_template("", "admission_notice", Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.version, 1);
    assert_eq!(
        store
            .form_template(mine, "visit_report", None)
            .await
            .unwrap()
            .map(|t| (t.version, t.organisation_id)),
        Some((3, Some(mine.to_owned())))
    );
    assert_eq!(
        store.form_template("", "visit_report", None).await.unwrap(),
        None,
        "not in the system's scope"
    );
    assert_eq!(
        store
            .form_template("", "admission_notice", Some(3))
            .await
            .unwrap(),
        None
    );

    let listed = |rows: Vec<TemplateRow>| -> Vec<(String, String, i64)> {
        rows.into_iter()
            .map(|t| (t.scope, t.key, t.version))
            .collect()
    };
    let expected_system = vec![
        (String::new(), "admission_notice".to_owned(), 2),
        (String::new(), "reply".to_owned(), 1),
    ];
    assert_eq!(
        listed(store.form_templates(None).await.unwrap()),
        expected_system
    );
    let mut expected = expected_system.clone();
    expected.push((mine.to_owned(), "admission_notice".to_owned(), 1));
    expected.push((mine.to_owned(), "visit_report".to_owned(), 3));
    assert_eq!(
        listed(store.form_templates(Some(mine)).await.unwrap()),
        expected
    );

    assert_eq!(
        store
            .newest_template_version(mine, "visit_report")
            .await
            .unwrap(),
        Some(3)
    );
    assert_eq!(
        store.newest_template_version("", "nothing").await.unwrap(),
        None
    );
    // Inside a transaction, its own write counts.
    let mut tx = store.begin().await.unwrap();
    tx.insert_form_template(&template(mine, "visit_report", 4, NOW + 5))
        .await
        .unwrap();
    assert_eq!(
        tx.newest_template_version(mine, "visit_report")
            .await
            .unwrap(),
        Some(4)
    );
    drop(tx);
    assert_eq!(
        store
            .newest_template_version(mine, "visit_report")
            .await
            .unwrap(),
        Some(3),
        "rolled back"
    );
}

async fn forms_keep_versions_recipients_and_client_ids(store: Store, _: Database) {
    let (org, nurse) = seeded(&store).await;
    let doctor = add_named_user(&store, &org, "dr.form", "physician", "Baba Ken").await;
    let manager = add_named_user(&store, &org, "cm.form", "care_manager", "Aoki Jun").await;
    let patient_room = room(&store, &nurse, NOW).await;
    let other_room = room(&store, &nurse, NOW).await;
    let room_id: RoomId = id(&patient_room.room_id);
    add_template(&store, &template("", "request", 1, NOW)).await;

    let mut request = form_row(&patient_room, &nurse, "client-1", NOW + 10);
    request.addressed_role = Some("physician".to_owned());
    request.due_on = Some("2026-11-24".to_owned());
    send_form(&store, &request, &[&doctor, &manager]).await;
    assert_eq!(
        store.form(&request.form_id).await.unwrap(),
        Some(request.clone())
    );
    assert_eq!(store.form("no-such-form").await.unwrap(), None);

    // The client id makes a retry find the stored form, in its room and for its sender only.
    let (sender, physician): (UserId, UserId) = (id(&nurse.user_id), id(&doctor.user_id));
    assert_eq!(
        store
            .client_form(room_id, sender, "client-1")
            .await
            .unwrap(),
        Some(request.clone())
    );
    assert_eq!(
        store
            .client_form(room_id, physician, "client-1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .client_form(id(&other_room.room_id), sender, "client-1")
            .await
            .unwrap(),
        None
    );
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.client_form(room_id, sender, "client-1").await.unwrap(),
        Some(request.clone())
    );
    let retry = form_row(&patient_room, &nurse, "client-1", NOW + 11);
    assert!(matches!(
        tx.insert_form(&retry).await,
        Err(Error::UniqueViolation)
    ));
    drop(tx);
    // The same client id in another room is another form.
    let elsewhere = form_row(&other_room, &nurse, "client-1", NOW + 11);
    send_form(&store, &elsewhere, &[&doctor]).await;
    // A form names a template version that exists.
    let mut unknown = form_row(&patient_room, &nurse, "client-x", NOW + 11);
    unknown.template_version = 9;
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.insert_form(&unknown).await,
        Err(Error::ForeignKeyViolation)
    ));
    drop(tx);

    // Versions: written once each; the current one moves by compare-and-set.
    let v1 = store
        .form_version(&request.form_id, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (v1.version, v1.author_id.as_str(), v1.body.as_slice()),
        (1, nurse.user_id.as_str(), b"sealed v1".as_slice())
    );
    assert_eq!(store.form_version(&request.form_id, 2).await.unwrap(), None);
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.insert_form_version(&FormVersionRow {
            body: b"again".to_vec(),
            ..v1.clone()
        })
        .await,
        Err(Error::UniqueViolation)
    ));
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    tx.insert_form_version(&FormVersionRow {
        form_id: request.form_id.clone(),
        version: 2,
        author_id: nurse.user_id.clone(),
        created_at: NOW + 20,
        body: b"sealed v2".to_vec(),
    })
    .await
    .unwrap();
    assert!(
        tx.advance_form_version(&request.form_id, 1, 2)
            .await
            .unwrap()
    );
    assert!(
        !tx.advance_form_version(&request.form_id, 1, 2)
            .await
            .unwrap(),
        "a second correction from the same base loses"
    );
    tx.commit().await.unwrap();
    assert_eq!(
        store
            .form(&request.form_id)
            .await
            .unwrap()
            .unwrap()
            .current_version,
        2
    );
    assert_eq!(
        store
            .form_version(&request.form_id, 2)
            .await
            .unwrap()
            .unwrap()
            .body,
        b"sealed v2"
    );

    // Recipients, by name, with their role.
    let recipients = store.form_recipients(&request.form_id).await.unwrap();
    let shown: Vec<(&str, &str, &str, &str)> = recipients
        .iter()
        .map(|r| {
            (
                r.user_id.as_str(),
                r.display_name.as_str(),
                r.role.as_str(),
                r.status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (manager.user_id.as_str(), "Aoki Jun", "care_manager", "sent"),
            (doctor.user_id.as_str(), "Baba Ken", "physician", "sent"),
        ]
    );
    assert!(
        recipients
            .iter()
            .all(|r| r.opened_at.is_none() && r.done_at.is_none() && r.answer_form_id.is_none())
    );
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.insert_form_recipients(&request.form_id, &[physician])
            .await,
        Err(Error::UniqueViolation)
    ));
    drop(tx);

    // Replies link back to the request, oldest first; the room's list is newest first.
    let mut late = form_row(&patient_room, &doctor, "reply-b", NOW + 40);
    late.reply_to = Some(request.form_id.clone());
    let mut early = form_row(&patient_room, &manager, "reply-a", NOW + 30);
    early.reply_to = Some(request.form_id.clone());
    early.visibility = "everyone".to_owned();
    send_form(&store, &late, &[&nurse]).await;
    send_form(&store, &early, &[&nurse]).await;
    assert_eq!(
        store.replies(&request.form_id).await.unwrap(),
        [early.form_id.clone(), late.form_id.clone()]
    );
    assert!(store.replies(&early.form_id).await.unwrap().is_empty());
    let ids = |rows: Vec<FormRow>| -> Vec<String> { rows.into_iter().map(|f| f.form_id).collect() };
    assert_eq!(
        ids(store.room_forms(room_id, true).await.unwrap()),
        [
            late.form_id.clone(),
            early.form_id.clone(),
            request.form_id.clone()
        ]
    );
    assert_eq!(
        ids(store.room_forms(room_id, false).await.unwrap()),
        [early.form_id.clone()],
        "family members see forms for everyone only"
    );
}

async fn form_transitions_apply_once(store: Store, _: Database) {
    let (org, nurse) = seeded(&store).await;
    let doctor = add_user(&store, &org, "dr.turns", "physician").await;
    let manager = add_user(&store, &org, "cm.turns", "care_manager").await;
    let patient_room = room(&store, &nurse, NOW).await;
    add_template(&store, &template("", "request", 1, NOW)).await;
    let request = form_row(&patient_room, &nurse, "turns", NOW);
    send_form(&store, &request, &[&doctor, &manager]).await;
    let (physician, care_manager): (UserId, UserId) = (id(&doctor.user_id), id(&manager.user_id));
    let form = request.form_id.as_str();
    let status_of = |store: Store, user: String| async move {
        store
            .form_recipients(form)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.user_id == user)
            .unwrap()
    };

    // Opened once.
    let mut tx = store.begin().await.unwrap();
    assert!(tx.mark_form_opened(form, physician, NOW + 1).await.unwrap());
    assert!(!tx.mark_form_opened(form, physician, NOW + 2).await.unwrap());
    assert!(
        !tx.mark_form_opened(form, id(&nurse.user_id), NOW + 2)
            .await
            .unwrap(),
        "not a recipient"
    );
    tx.commit().await.unwrap();
    let opened = status_of(store.clone(), doctor.user_id.clone()).await;
    assert_eq!(
        (opened.status.as_str(), opened.opened_at),
        ("opened", Some(NOW + 1))
    );

    // A correction sends it back to those who opened it, not to those who finished.
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.finish_recipient(form, care_manager, "acknowledged", NOW + 3, None)
            .await
            .unwrap()
    );
    assert!(
        !tx.finish_recipient(form, care_manager, "acknowledged", NOW + 4, None)
            .await
            .unwrap(),
        "acknowledged once"
    );
    assert_eq!(tx.reopen_recipients(form).await.unwrap(), 1);
    assert_eq!(tx.reopen_recipients(form).await.unwrap(), 0);
    let seen = tx.form_recipients(form).await.unwrap();
    tx.commit().await.unwrap();
    let statuses: Vec<(String, String)> = seen
        .iter()
        .map(|r| (r.user_id.clone(), r.status.clone()))
        .collect();
    assert!(statuses.contains(&(doctor.user_id.clone(), "sent".to_owned())));
    assert!(statuses.contains(&(manager.user_id.clone(), "acknowledged".to_owned())));
    let reopened = status_of(store.clone(), doctor.user_id.clone()).await;
    assert_eq!(reopened.opened_at, None);

    // Only `answered` or `acknowledged` finish; an answer names its reply form.
    let mut answer = form_row(&patient_room, &doctor, "answer", NOW + 5);
    answer.reply_to = Some(request.form_id.clone());
    send_form(&store, &answer, &[&nurse]).await;
    let mut tx = store.begin().await.unwrap();
    assert!(
        !tx.finish_recipient(form, physician, "opened", NOW + 5, None)
            .await
            .unwrap()
    );
    assert!(
        tx.finish_recipient(
            form,
            physician,
            "answered",
            NOW + 6,
            Some(answer.form_id.as_str())
        )
        .await
        .unwrap()
    );
    assert!(
        !tx.finish_recipient(form, physician, "acknowledged", NOW + 7, None)
            .await
            .unwrap()
    );
    assert!(
        !tx.mark_form_opened(form, physician, NOW + 7).await.unwrap(),
        "done is done"
    );
    assert!(tx.complete_form(form, NOW + 6).await.unwrap());
    assert!(!tx.complete_form(form, NOW + 8).await.unwrap());
    assert_eq!(
        tx.form(form)
            .await
            .unwrap()
            .map(|f| (f.status, f.completed_at)),
        Some(("completed".to_owned(), Some(NOW + 6)))
    );
    tx.commit().await.unwrap();
    let answered = status_of(store.clone(), doctor.user_id.clone()).await;
    assert_eq!(
        (
            answered.status.as_str(),
            answered.done_at,
            answered.answer_form_id
        ),
        ("answered", Some(NOW + 6), Some(answer.form_id.clone()))
    );

    // Concurrent finishes of one recipient: exactly one applies.
    let contested = form_row(&patient_room, &nurse, "contested", NOW + 10);
    send_form(&store, &contested, &[&doctor]).await;
    let attempts = (0..6).map(|i| {
        let (store, form) = (store.clone(), contested.form_id.clone());
        tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            let done = tx
                .finish_recipient(&form, physician, "acknowledged", NOW + 11 + i, None)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            i64::from(done)
        })
    });
    let mut winners = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        winners += attempt.await.unwrap();
    }
    assert_eq!(winners, 1);
}

async fn inbox_lists_waiting_forms_soonest_due_first(store: Store, _: Database) {
    let (org, nurse) = seeded(&store).await;
    let doctor = add_user(&store, &org, "dr.inbox", "physician").await;
    let manager = add_user(&store, &org, "cm.inbox", "care_manager").await;
    let first_room = room(&store, &nurse, NOW).await;
    let second_room = room(&store, &nurse, NOW).await;
    let left_room = room(&store, &nurse, NOW).await;
    for room in [&first_room, &second_room, &left_room] {
        join(&store, room, &doctor).await;
    }
    add_template(&store, &template("", "request", 1, NOW)).await;

    let dated = |room: &RoomRow, client: &str, due: Option<&str>, at: i64| {
        let mut row = form_row(room, &nurse, client, at);
        row.due_on = due.map(str::to_owned);
        row
    };
    let undated_old = dated(&first_room, "undated-old", None, NOW + 1);
    let due_later = dated(&second_room, "later", Some("2026-12-01"), NOW + 2);
    let due_soon = dated(&first_room, "soon", Some("2026-11-20"), NOW + 3);
    let undated_new = dated(&second_room, "undated-new", None, NOW + 4);
    let due_later_sent_first = dated(&first_room, "later-first", Some("2026-12-01"), NOW);
    let completed = dated(&first_room, "completed", Some("2026-11-01"), NOW + 5);
    let acknowledged = dated(&first_room, "acknowledged", Some("2026-11-01"), NOW + 6);
    let opened = dated(&second_room, "opened", Some("2026-11-25"), NOW + 7);
    let not_mine = dated(&first_room, "not-mine", Some("2026-11-01"), NOW + 8);
    let in_left_room = dated(&left_room, "left", Some("2026-11-01"), NOW + 9);
    for form in [
        &undated_old,
        &due_later,
        &due_soon,
        &undated_new,
        &due_later_sent_first,
        &completed,
        &acknowledged,
        &opened,
        &in_left_room,
    ] {
        send_form(&store, form, &[&doctor, &manager]).await;
    }
    send_form(&store, &not_mine, &[&manager]).await;

    let physician: UserId = id(&doctor.user_id);
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.complete_form(&completed.form_id, NOW + 10)
            .await
            .unwrap()
    );
    assert!(
        tx.finish_recipient(
            &acknowledged.form_id,
            physician,
            "acknowledged",
            NOW + 10,
            None
        )
        .await
        .unwrap()
    );
    assert!(
        tx.mark_form_opened(&opened.form_id, physician, NOW + 10)
            .await
            .unwrap()
    );
    assert!(
        tx.change_membership(
            id(&left_room.room_id),
            physician,
            &["accepted"],
            "left",
            NOW + 10
        )
        .await
        .unwrap()
    );
    tx.commit().await.unwrap();

    let inbox: Vec<(String, String)> = store
        .inbox(physician)
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.client_id, f.room_id))
        .collect();
    let expected: Vec<(String, String)> = [
        &due_soon,
        &opened,
        &due_later_sent_first,
        &due_later,
        &undated_old,
        &undated_new,
    ]
    .into_iter()
    .map(|f| (f.client_id.clone(), f.room_id.clone()))
    .collect();
    assert_eq!(inbox, expected);
    // Recipients who are not (or no longer) accepted members of a room see none of its forms.
    assert!(store.inbox(id(&manager.user_id)).await.unwrap().is_empty());
    assert!(store.inbox(id(&nurse.user_id)).await.unwrap().is_empty());
}

async fn form_and_sheet_versions_are_written_once_until_purged(store: Store, database: Database) {
    let (org, nurse) = seeded(&store).await;
    let doctor = add_user(&store, &org, "dr.purge", "physician").await;
    let patient_room = room(&store, &nurse, NOW).await;
    let kept_room = room(&store, &nurse, NOW).await;
    let room_id: RoomId = id(&patient_room.room_id);
    add_template(&store, &template("", "request", 1, NOW)).await;

    let request = form_row(&patient_room, &nurse, "purged", NOW);
    send_form(&store, &request, &[&doctor]).await;
    let mut answer = form_row(&patient_room, &doctor, "purged-answer", NOW + 1);
    answer.reply_to = Some(request.form_id.clone());
    send_form(&store, &answer, &[&nurse]).await;
    let kept = form_row(&kept_room, &nurse, "kept", NOW);
    send_form(&store, &kept, &[&doctor]).await;
    let attachment = new_attachment(&store, &patient_room, &nurse, NOW).await;
    add_chunks(&store, attachment, &[b"%PDF-"]).await;
    assert!(finish(&store, attachment, 5, 1).await);

    let mut tx = store.begin().await.unwrap();
    tx.finish_recipient(
        &request.form_id,
        id(&doctor.user_id),
        "answered",
        NOW + 1,
        Some(answer.form_id.as_str()),
    )
    .await
    .unwrap();
    tx.bind_form_attachments(room_id, id(&nurse.user_id), &[attachment], &request.form_id)
        .await
        .unwrap();
    for (room, version) in [(&patient_room, 1), (&patient_room, 2), (&kept_room, 1)] {
        tx.insert_sheet_version(&sheet_row(room, &nurse, version, NOW + version))
            .await
            .unwrap();
    }
    assert!(
        tx.confirm_sheet(room_id, 2, id(&doctor.user_id), NOW + 3)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();

    for sql in [
        "update form_version set body = body",
        "update form_version set version = 3 where version = 1",
        "update sheet_version set changed = 'notes'",
        "update sheet_version set body = body where version = 1",
    ] {
        assert!(raw_execute(&database, sql).await.is_err(), "{sql}");
    }
    assert_eq!(
        store
            .form_version(&request.form_id, 1)
            .await
            .unwrap()
            .unwrap()
            .body,
        b"sealed v1"
    );
    assert_eq!(
        store.sheet_versions(room_id).await.unwrap()[0].changed,
        "allergies,dnar"
    );

    // Purge deletes the room's forms (with their versions, recipients, replies and
    // attachments) and its sheet (with its confirmations); other rooms keep theirs.
    let mut tx = store.begin().await.unwrap();
    assert!(tx.close_room(room_id, NOW + 5, NOW + 6).await.unwrap());
    assert_eq!(tx.purge_room(room_id, NOW + 7).await.unwrap(), Some(vec![]));
    tx.commit().await.unwrap();
    for form in [&request.form_id, &answer.form_id] {
        assert_eq!(store.form(form).await.unwrap(), None);
        assert_eq!(store.form_version(form, 1).await.unwrap(), None);
        assert!(store.form_recipients(form).await.unwrap().is_empty());
    }
    assert!(
        store
            .form_attachments(&request.form_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.attachment(room_id, attachment).await.unwrap(), None);
    assert!(store.room_forms(room_id, true).await.unwrap().is_empty());
    assert!(store.sheet_versions(room_id).await.unwrap().is_empty());
    assert_eq!(store.current_sheet(room_id).await.unwrap(), None);
    assert!(
        store
            .sheet_confirmations(room_id, 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.form(&kept.form_id).await.unwrap().is_some());
    assert!(
        store
            .form_version(&kept.form_id, 1)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .current_sheet(id(&kept_room.room_id))
            .await
            .unwrap()
            .map(|s| s.version),
        Some(1)
    );
}

async fn sheet_versions_are_ordered_and_confirmed_once(store: Store, _: Database) {
    let (org, nurse) = seeded(&store).await;
    let doctor = add_user(&store, &org, "dr.sheet", "physician").await;
    let patient_room = room(&store, &nurse, NOW).await;
    let room_id: RoomId = id(&patient_room.room_id);
    assert_eq!(store.current_sheet(room_id).await.unwrap(), None);
    assert!(store.sheet_versions(room_id).await.unwrap().is_empty());

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.current_sheet(room_id).await.unwrap(), None);
    tx.insert_sheet_version(&sheet_row(&patient_room, &nurse, 1, NOW + 1))
        .await
        .unwrap();
    assert_eq!(
        tx.current_sheet(room_id).await.unwrap().map(|s| s.version),
        Some(1),
        "read in the writer's transaction"
    );
    tx.commit().await.unwrap();
    let mut second = sheet_row(&patient_room, &doctor, 2, NOW + 2);
    second.changed = "medications".to_owned();
    let mut tx = store.begin().await.unwrap();
    tx.insert_sheet_version(&second).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!(
        store.current_sheet(room_id).await.unwrap(),
        Some(second.clone())
    );
    let versions = store.sheet_versions(room_id).await.unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version, v.author_id.as_str(), v.changed.as_str()))
            .collect::<Vec<_>>(),
        [
            (2, doctor.user_id.as_str(), "medications"),
            (1, nurse.user_id.as_str(), "allergies,dnar")
        ]
    );

    // Concurrent writers of the next version: one wins, the others are told it is taken.
    let attempts = (0..5).map(|i| {
        let store = store.clone();
        let row = sheet_row(&patient_room, &nurse, 3, NOW + 10 + i);
        tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            match tx.insert_sheet_version(&row).await {
                Ok(()) => {
                    tx.commit().await.unwrap();
                    1
                }
                Err(Error::UniqueViolation) => 0,
                Err(error) => panic!("{error}"),
            }
        })
    });
    let mut winners = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        winners += attempt.await.unwrap();
    }
    assert_eq!(winners, 1);
    assert_eq!(store.sheet_versions(room_id).await.unwrap().len(), 3);

    // Confirmations: once per person and version, newest first, with names and roles.
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.confirm_sheet(room_id, 3, id(&nurse.user_id), NOW + 20)
            .await
            .unwrap()
    );
    assert!(
        !tx.confirm_sheet(room_id, 3, id(&nurse.user_id), NOW + 21)
            .await
            .unwrap()
    );
    assert!(
        tx.confirm_sheet(room_id, 3, id(&doctor.user_id), NOW + 22)
            .await
            .unwrap()
    );
    assert!(
        tx.confirm_sheet(room_id, 2, id(&doctor.user_id), NOW + 5)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.confirm_sheet(room_id, 9, id(&nurse.user_id), NOW + 23)
            .await,
        Err(Error::ForeignKeyViolation)
    ));
    drop(tx);
    let confirmations = store.sheet_confirmations(room_id, 3).await.unwrap();
    assert_eq!(
        confirmations
            .iter()
            .map(|c| (
                c.user_id.as_str(),
                c.role.as_str(),
                c.display_name.as_str(),
                c.version,
                c.confirmed_at
            ))
            .collect::<Vec<_>>(),
        [
            (
                doctor.user_id.as_str(),
                "physician",
                "佐藤 花子",
                3,
                NOW + 22
            ),
            (nurse.user_id.as_str(), "nurse", "佐藤 花子", 3, NOW + 20)
        ]
    );
    assert_eq!(
        store.sheet_confirmations(room_id, 2).await.unwrap().len(),
        1
    );
    assert!(
        store
            .sheet_confirmations(room_id, 1)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn form_attachments_are_bound_once(store: Store, _: Database) {
    let (org, nurse) = seeded(&store).await;
    let doctor = add_user(&store, &org, "dr.attach", "physician").await;
    let patient_room = room(&store, &nurse, NOW).await;
    let other_room = room(&store, &nurse, NOW).await;
    let room_id: RoomId = id(&patient_room.room_id);
    add_template(&store, &template("", "request", 1, NOW)).await;
    let form = form_row(&patient_room, &nurse, "with-files", NOW);
    send_form(&store, &form, &[&doctor]).await;
    let second_form = form_row(&patient_room, &nurse, "second", NOW);
    send_form(&store, &second_form, &[&doctor]).await;

    let ready = |at: i64, uploader: UserRow| {
        let (store, patient_room) = (store.clone(), patient_room.clone());
        async move {
            let attachment = new_attachment(&store, &patient_room, &uploader, at).await;
            add_chunks(&store, attachment, &[b"%PDF-"]).await;
            assert!(finish(&store, attachment, 5, 1).await);
            attachment
        }
    };
    let first = ready(NOW, nurse.clone()).await;
    let second = ready(NOW + 1, nurse.clone()).await;
    let doctors = ready(NOW, doctor.clone()).await;
    let for_post = ready(NOW, nurse.clone()).await;
    let unfinished = new_attachment(&store, &patient_room, &nurse, NOW).await;
    let elsewhere = new_attachment(&store, &other_room, &nurse, NOW).await;
    add_chunks(&store, elsewhere, &[b"%PDF-"]).await;
    assert!(finish(&store, elsewhere, 5, 1).await);
    let entry = tsunagu_protocol::EntryId::generate().to_string();
    let mut tx = store.begin().await.unwrap();
    tx.bind_attachments(&patient_room.room_id, &nurse.user_id, &entry, &[for_post])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let sender: UserId = id(&nurse.user_id);
    let try_bind = |ids: Vec<AttachmentId>, form_id: String| {
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            let result = tx
                .bind_form_attachments(room_id, sender, &ids, &form_id)
                .await;
            if result.is_ok() {
                tx.commit().await.unwrap();
            }
            result
        }
    };
    for ids in [
        vec![doctors],
        vec![unfinished],
        vec![elsewhere],
        vec![for_post],
        vec![first, unfinished],
        vec![AttachmentId::generate()],
    ] {
        assert!(matches!(
            try_bind(ids, form.form_id.clone()).await,
            Err(Error::AttachmentsUnavailable)
        ));
    }
    assert!(
        store
            .form_attachments(&form.form_id)
            .await
            .unwrap()
            .is_empty(),
        "a failed bind binds nothing"
    );
    try_bind(vec![second, first], form.form_id.clone())
        .await
        .unwrap();
    let bound: Vec<String> = store
        .form_attachments(&form.form_id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.attachment_id)
        .collect();
    assert_eq!(bound, [first.to_string(), second.to_string()]);
    assert_eq!(
        store.attachment_form(room_id, first).await.unwrap(),
        Some(form.form_id.clone())
    );
    assert_eq!(
        store.attachment_form(room_id, for_post).await.unwrap(),
        None
    );
    // Bound once: not to another form, not to a post.
    assert!(matches!(
        try_bind(vec![first], second_form.form_id.clone()).await,
        Err(Error::AttachmentsUnavailable)
    ));
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.bind_attachments(
            &patient_room.room_id,
            &nurse.user_id,
            &tsunagu_protocol::EntryId::generate().to_string(),
            &[second]
        )
        .await,
        Err(Error::AttachmentsUnavailable)
    ));
    drop(tx);
    // A form's attachments are never cleaned up as unbound.
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.delete_unbound_attachment(first).await.unwrap());
    let removed = tx
        .delete_stale_attachments(NOW + 100, NOW + 100)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (removed.uploading, removed.unbound),
        (1, 2),
        "the unfinished upload; the doctor's and the other room's unbound files"
    );
    for (attachment, kept) in [
        (first, true),
        (second, true),
        (for_post, true),
        (doctors, false),
        (unfinished, false),
    ] {
        assert_eq!(
            store
                .attachment(room_id, attachment)
                .await
                .unwrap()
                .is_some(),
            kept,
            "{attachment}"
        );
    }
    assert!(store.attachment_chunk(first, 0).await.unwrap().is_some());

    // Concurrent binds of one attachment to two forms: exactly one wins.
    let contested = ready(NOW, nurse.clone()).await;
    let attempts = [form.form_id.clone(), second_form.form_id.clone()]
        .into_iter()
        .map(|form_id| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                match tx
                    .bind_form_attachments(room_id, sender, &[contested], &form_id)
                    .await
                {
                    Ok(()) => {
                        tx.commit().await.unwrap();
                        1
                    }
                    Err(Error::AttachmentsUnavailable) => 0,
                    Err(error) => panic!("{error}"),
                }
            })
        });
    let mut winners = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        winners += attempt.await.unwrap();
    }
    assert_eq!(winners, 1);
}
