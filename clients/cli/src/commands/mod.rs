//! Running commands: the shared context (which server, which credentials, how to print) and the
//! dispatch to the account commands ([`auth`]), the administration commands ([`admin`]), the
//! patient-room and directory commands ([`rooms`]), the timeline commands ([`timeline`]), the
//! attachment commands ([`attachments`]), the security officers' commands ([`audit`]), the
//! forms commands ([`forms`]) and the emergency information sheet commands ([`sheet`]).
//!
//! Tokens are only ever sent to the server that issued them: a logged-in command refuses a
//! `--server` other than the stored one. After every logged-in command the stored credentials
//! are rewritten if the tokens changed (automatic refresh, password change), whether the
//! command succeeded or not.

mod admin;
mod attachments;
mod audit;
mod auth;
mod forms;
mod rooms;
mod sheet;
mod timeline;

use std::path::{Path, PathBuf};

use tsunagu_client::{Client, ClientError, Session, Tokens};

use crate::cli::{Cli, Command, DEFAULT_SERVER, GlobalArgs};
use crate::credentials::{CredentialStore, Credentials};
use crate::error::CliError;
use crate::output::{self, Output};

/// Runs the parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<(), CliError> {
    let ctx = Context::new(cli.global)?;
    match cli.command {
        Command::Login(args) => auth::login(&ctx, args).await,
        Command::Logout => auth::logout(&ctx).await,
        Command::Whoami => auth::whoami(&ctx).await,
        Command::Sessions(args) => auth::sessions(&ctx, args).await,
        Command::Password(args) => auth::password(&ctx, args).await,
        Command::Totp(command) => auth::totp(&ctx, command).await,
        Command::Policy(command) => auth::policy(&ctx, command).await,
        Command::AcceptInvitation(args) => auth::accept_invitation(&ctx, args).await,
        Command::Admin(command) => admin::run(&ctx, command).await,
        Command::Audit(command) => audit::run(&ctx, command).await,
        Command::Clock => audit::clock(&ctx).await,
        Command::Room(command) => rooms::run(&ctx, command).await,
        Command::Directory { query } => rooms::directory(&ctx, query).await,
        Command::Post(args) => timeline::post(&ctx, args).await,
        Command::History(args) => timeline::history(&ctx, args).await,
        Command::Tail(args) => timeline::tail(&ctx, args).await,
        Command::Ack(args) => timeline::ack(&ctx, args).await,
        Command::Acks(args) => timeline::acks(&ctx, args).await,
        Command::Edit(args) => timeline::edit(&ctx, args).await,
        Command::Delete(args) => timeline::delete(&ctx, args).await,
        Command::Versions(args) => timeline::versions(&ctx, args).await,
        Command::Read { room, seq } => timeline::read(&ctx, room, seq).await,
        Command::Attachment(command) => attachments::run(&ctx, command).await,
        Command::Form(command) => forms::run(&ctx, command).await,
        Command::Sheet(command) => sheet::run(&ctx, command).await,
    }
}

/// What every command needs: the global options, the credential store and the output.
#[derive(Debug)]
pub(crate) struct Context {
    global: GlobalArgs,
    store: CredentialStore,
    out: Output,
}

impl Context {
    fn new(global: GlobalArgs) -> Result<Self, CliError> {
        let store = CredentialStore::new(global.config_dir.clone())?;
        let out = Output::new(global.json);
        Ok(Self { global, store, out })
    }

    /// The output.
    pub(crate) fn out(&self) -> Output {
        self.out
    }

    /// The credential store.
    pub(crate) fn store(&self) -> &CredentialStore {
        &self.store
    }

    /// A client for a new login (login, invitation acceptance): the explicit server, else the
    /// stored login's server, else the default; likewise for the CA certificate. A stored file
    /// that cannot be read does not prevent logging in again (it is replaced).
    pub(crate) fn client_for_new_login(&self) -> Result<(Client, Option<PathBuf>), CliError> {
        let stored = self.store.load().ok().flatten();
        let server = match (&self.global.server, &stored) {
            (Some(server), _) => Client::new(server)?.base_url().to_owned(),
            (None, Some(stored)) => stored.server.clone(),
            (None, None) => DEFAULT_SERVER.to_owned(),
        };
        let ca_cert = match (&self.global.ca_cert, stored) {
            (Some(path), _) => Some(std::path::absolute(path).unwrap_or_else(|_| path.clone())),
            (None, Some(stored)) if stored.server == server => stored.ca_cert,
            _ => None,
        };
        let client = self.client(&server, ca_cert.as_deref())?;
        Ok((client, ca_cert))
    }

    /// Builds a client for `server`, trusting the CA certificate at `ca_cert` if given.
    fn client(&self, server: &str, ca_cert: Option<&Path>) -> Result<Client, CliError> {
        let mut builder = Client::builder(server)
            .user_agent_product(concat!("tsunagu-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path).map_err(|source| CliError::CaCert {
                path: path.to_owned(),
                source,
            })?;
            builder = builder.add_root_certificate_pem(pem);
        }
        let client = builder.build()?;
        if is_plain_http_to_remote(client.base_url()) {
            output::stderr(&format!(
                "警告: {url} への接続は暗号化されていません。パスワードとトークンが盗聴される\
                 おそれがあります。\nwarning: the connection to {url} is not encrypted; \
                 passwords and tokens can be read in transit. Use https://.\n",
                url = client.base_url()
            ));
        }
        Ok(client)
    }

    /// The stored login and a session for it.
    fn logged_in(&self) -> Result<(Credentials, Session), CliError> {
        let credentials = self.store.load()?.ok_or(CliError::NotLoggedIn)?;
        if let Some(requested) = &self.global.server {
            let requested = Client::new(requested)?;
            if requested.base_url() != credentials.server {
                return Err(CliError::ServerMismatch {
                    stored: credentials.server,
                    requested: requested.base_url().to_owned(),
                });
            }
        }
        let ca_cert = self
            .global
            .ca_cert
            .as_deref()
            .or(credentials.ca_cert.as_deref());
        let client = self.client(&credentials.server, ca_cert)?;
        let session = client.authed(credentials.tokens());
        Ok((credentials, session))
    }

    /// Runs `command` with the stored session, then saves the tokens if they changed.
    pub(crate) async fn with_session<T>(
        &self,
        command: impl AsyncFnOnce(&Session, &Credentials) -> Result<T, CliError>,
    ) -> Result<T, CliError> {
        let (credentials, session) = self.logged_in()?;
        let result = command(&session, &credentials).await;
        self.save_if_changed(credentials, &session)?;
        result
    }

    /// [`Context::with_session`] for a command that is one or more plain API calls.
    pub(crate) async fn call<T>(
        &self,
        calls: impl AsyncFnOnce(&Session) -> Result<T, ClientError>,
    ) -> Result<T, CliError> {
        self.with_session(async |session, _| Ok(calls(session).await?))
            .await
    }

    /// Saves the session's tokens if they differ from the stored ones.
    fn save_if_changed(
        &self,
        mut credentials: Credentials,
        session: &Session,
    ) -> Result<(), CliError> {
        let tokens = session.tokens();
        if tokens != credentials.tokens() {
            credentials.set_tokens(tokens);
            self.store.save(&credentials)?;
        }
        Ok(())
    }

    /// Saves `tokens` over those of `credentials` while a long-running command goes on (so
    /// that a refresh is not lost if the process is then killed).
    pub(crate) fn save_tokens(
        &self,
        credentials: &Credentials,
        tokens: &Tokens,
    ) -> Result<(), CliError> {
        let mut credentials = credentials.clone();
        credentials.set_tokens(tokens.clone());
        self.store.save(&credentials)?;
        Ok(())
    }

    /// Stores a new login on `client`'s server.
    pub(crate) fn save_login(
        &self,
        client: &Client,
        username: &str,
        ca_cert: Option<PathBuf>,
        tokens: Tokens,
    ) -> Result<(), CliError> {
        let credentials = Credentials::new(
            client.base_url().to_owned(),
            username.to_owned(),
            ca_cert,
            tokens,
        );
        self.store.save(&credentials)?;
        Ok(())
    }
}

/// True for `http://` to anything but the loopback interface.
fn is_plain_http_to_remote(base_url: &str) -> bool {
    let Some(rest) = base_url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    !(host == "localhost" || host == "::1" || host.starts_with("127."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_only_about_plain_http_to_other_hosts() {
        assert!(!is_plain_http_to_remote("http://127.0.0.1:8080"));
        assert!(!is_plain_http_to_remote("http://localhost:8080/x"));
        assert!(!is_plain_http_to_remote("http://[::1]:8080"));
        assert!(!is_plain_http_to_remote("https://tsunagu.example.jp"));
        assert!(is_plain_http_to_remote("http://tsunagu.example.jp"));
        assert!(is_plain_http_to_remote("http://192.168.1.10:8080"));
    }
}
