//! The store conformance suite: every scenario runs against SQLite and against PostgreSQL
//! (when `TSUNAGU_TEST_POSTGRES_URL` is set; required in CI), through the one store interface.

#![allow(clippy::unwrap_used)]

use std::future::Future;

use tsunagu_protocol::{
    AttachmentId, ConsentId, InvitationId, OrganisationId, RoomId, SessionId, UserId,
};
use tsunagu_server::store::AuditKey;
use tsunagu_server::store::{
    AuditRecord, ConsentRow, Database, Error, InvitationRow, NewAttachment, NewEvent,
    OrganisationRow, RefreshTokenUse, RoleGrantRow, RoomAdvance, RoomRow, SessionRow, Store,
    Stream, UserRow,
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
