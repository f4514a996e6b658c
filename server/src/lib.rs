//! Tsunagu server: secure messaging for the care teams around patients who live at home.
//!
//! The library exposes [`app`] (the HTTP application for a state) and [`run`] (serve it on a
//! listener until a shutdown signal); the `tsunagu-server` binary is a thin wrapper that reads
//! the configuration, opens the store and calls them.
//!
//! Modules are domain concepts (`auth`, `identity`, `audit`, `crypto`, `store`) with the
//! transport (`http`, `ws`) at the edge; `cluster` lets several nodes share one PostgreSQL
//! database and `metrics` counts what they do.

pub mod attachments;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod crypto;
pub mod error;
pub mod forms;
pub mod http;
pub mod hub;
pub mod identity;
pub mod keys;
pub mod metrics;
pub mod rooms;
pub mod server;
pub mod sheet;
pub mod state;
pub mod store;
pub mod time;
pub mod timeline;
pub mod ws;

pub use server::Listener;
pub use state::AppState;

/// The HTTP application for `state`.
pub fn app(state: AppState) -> axum::Router {
    http::router(state)
}

/// Serves the application on `listener` until `shutdown` completes, then drains requests in
/// flight and closes the database.
pub async fn run(
    listener: Listener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let store = state.store.clone();
    let hub = state.timeline.hub().clone();
    let (stop_sequencer, stopped) = tokio::sync::watch::channel(false);
    let clock = tokio::spawn(state.clock.clone().run(store.clone(), stopped.clone()));
    let sequencer = tokio::spawn(audit::log::Sequencer::run(
        state.audit.sequencer(),
        stopped.clone(),
    ));
    let relay = match &state.settings.database {
        store::Database::Postgres { url } => Some(tokio::spawn(
            cluster::Relay {
                store: store.clone(),
                hub: hub.clone(),
                keys: state.timeline.keys().clone(),
                url: url.clone(),
            }
            .run(stopped),
        )),
        store::Database::Sqlite { .. } => None,
    };
    let shutdown = async move {
        shutdown.await;
        // Upgraded connections are not drained by the HTTP server: tell them to close.
        hub.close_all();
    };
    server::serve(listener, app(state), shutdown).await;
    // The last records get their place and a checkpoint before the database closes.
    let _ = stop_sequencer.send(true);
    let _ = clock.await;
    if let Some(relay) = relay {
        let _ = relay.await;
    }
    if let Err(error) = sequencer.await {
        tracing::error!(%error, "the audit sequencer stopped abnormally");
    }
    store.close().await;
}
