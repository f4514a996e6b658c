//! Shared state of a running server: cheap-to-clone handles only.

use std::sync::Arc;

use crate::attachments::AttachmentService;
use crate::audit::AuditService;
use crate::auth::AuthService;
use crate::config::Settings;
use crate::crypto::ServerKeys;
use crate::forms::FormService;
use crate::hub::Hub;
use crate::identity::IdentityService;
use crate::keys::RoomKeys;
use crate::rooms::RoomService;
use crate::sheet::SheetService;
use crate::store::Store;
use crate::timeline::TimelineService;

/// Everything a request handler may need.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub auth: AuthService,
    pub identity: IdentityService,
    pub rooms: RoomService,
    pub timeline: TimelineService,
    pub attachments: AttachmentService,
    pub audit: AuditService,
    pub forms: FormService,
    pub sheets: SheetService,
    pub clock: crate::clock::ClockMonitor,
    pub settings: Arc<Settings>,
}

impl AppState {
    /// Wires the services over an open store.
    ///
    /// # Errors
    /// The token-signing key is unusable, or the post writer's thread could not start.
    /// `room_keys` is opened with the master key beforehand ([`RoomKeys::load`]); `store` must
    /// carry the audit key of `keys` ([`Store::with_audit_key`]).
    pub fn new(
        store: Store,
        keys: ServerKeys,
        room_keys: RoomKeys,
        checkpoint_signer: crate::audit::log::CheckpointSigner,
        settings: Settings,
    ) -> crate::error::Result<Self> {
        let audit = AuditService::new(
            store.clone(),
            keys.audit_key().clone(),
            checkpoint_signer,
            settings.audit.clone(),
            keys.sealer().clone(),
        );
        let auth = AuthService::new(store.clone(), keys, settings.auth.clone())?;
        let identity = IdentityService::new(store.clone(), auth.clone());
        let hub = Hub::new();
        let rooms = RoomService::new(
            store.clone(),
            hub.clone(),
            room_keys.clone(),
            settings.retention_micros,
            settings.sheet_confirm_days,
        );
        let forms = FormService::new(store.clone(), hub.clone(), room_keys.clone());
        let sheets = SheetService::new(
            store.clone(),
            hub.clone(),
            room_keys.clone(),
            settings.sheet_confirm_days,
        );
        let timeline =
            TimelineService::new(store.clone(), hub, room_keys.clone()).map_err(|error| {
                tracing::error!(%error, "the post writer could not start");
                crate::error::AppError::Internal("post writer")
            })?;
        let attachments = AttachmentService::new(store.clone(), room_keys);
        Ok(Self {
            attachments,
            audit,
            clock: crate::clock::ClockMonitor::new(
                settings.audit.clock_check_command.as_deref(),
                std::time::Duration::from_secs(settings.audit.clock_check_seconds),
            ),
            store,
            auth,
            identity,
            rooms,
            timeline,
            forms,
            sheets,
            settings: Arc::new(settings),
        })
    }
}
