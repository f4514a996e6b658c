//! One WebSocket connection to `/api/ws`: the ticket, the URL (`http` → `ws`, `https` →
//! `wss`), TLS with the client's trust (rustls with ring, the built-in Web PKI roots and any
//! extra root CA given to [`crate::ClientBuilder`]), and JSON frames in and out.
//!
//! [`LiveConnection`] is the raw transport: it neither reconnects nor remembers anything.
//! [`super::LiveClient`] builds on it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::USER_AGENT;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tsunagu_protocol::routes;
use tsunagu_protocol::ws::{ClientFrame, MAX_FRAME_BYTES, ServerFrame};

use super::LiveError;
use crate::client::Client;
use crate::error::ClientError;
use crate::session::Session;

/// The largest frame accepted from the server. Its frames carry one event or answer each;
/// four times the limit it applies to clients leaves ample room.
const MAX_INCOMING_BYTES: usize = 4 * MAX_FRAME_BYTES;

/// What the WebSocket needs of the client's configuration: the same user agent, connect
/// timeout and trusted roots as the HTTP client.
pub(crate) struct SocketSettings {
    user_agent: String,
    connect_timeout: Duration,
    root_certificates_pem: Vec<Vec<u8>>,
    built_in_roots: bool,
    /// Built on first use of `wss://`, then shared by every connection.
    tls: OnceLock<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for SocketSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketSettings")
            .field("user_agent", &self.user_agent)
            .field("connect_timeout", &self.connect_timeout)
            .field("extra_roots", &self.root_certificates_pem.len())
            .field("built_in_roots", &self.built_in_roots)
            .finish_non_exhaustive()
    }
}

impl SocketSettings {
    /// Settings from a validated [`crate::ClientBuilder`] configuration.
    pub(crate) fn new(
        user_agent: String,
        connect_timeout: Duration,
        root_certificates_pem: Vec<Vec<u8>>,
        built_in_roots: bool,
    ) -> Self {
        Self {
            user_agent,
            connect_timeout,
            root_certificates_pem,
            built_in_roots,
            tls: OnceLock::new(),
        }
    }

    /// The rustls configuration for `wss://`: ring, TLS 1.2 and 1.3, the configured roots,
    /// ALPN `http/1.1` (the upgrade is an HTTP/1.1 request).
    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, LiveError> {
        if let Some(config) = self.tls.get() {
            return Ok(config.clone());
        }
        let mut roots = rustls::RootCertStore::empty();
        if self.built_in_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for pem in &self.root_certificates_pem {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            for certificate in CertificateDer::pem_slice_iter(pem) {
                let certificate = certificate.map_err(|err| LiveError::Tls(err.to_string()))?;
                roots
                    .add(certificate)
                    .map_err(|err| LiveError::Tls(err.to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| LiveError::Tls(err.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(self.tls.get_or_init(|| Arc::new(config)).clone())
    }
}

/// The URL of the socket for `ticket` on the server at `base_url` (normalised, as
/// [`Client::base_url`] returns it): the scheme becomes `ws`/`wss`, the path gains
/// [`routes::WS`] and the ticket is form-encoded into the query.
pub(crate) fn socket_url(base_url: &str, ticket: &str) -> Result<Url, LiveError> {
    let mut url = Url::parse(base_url).map_err(|err| LiveError::Decode(err.to_string()))?;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme)
        .map_err(|()| LiveError::Decode(format!("cannot use {scheme}: for {base_url}")))?;
    let path = format!("{}{}", url.path().trim_end_matches('/'), routes::WS);
    url.set_path(&path);
    url.query_pairs_mut().clear().append_pair("ticket", ticket);
    Ok(url)
}

/// One open WebSocket to `/api/ws`: JSON frames in and out, nothing more. It answers the
/// server's pings by itself as long as it is read; the server closes a connection it has
/// not heard from for 60 seconds.
///
/// Open one with [`Session::connect_live`]; for delivery that survives disconnections use
/// [`super::LiveClient`].
pub struct LiveConnection {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl std::fmt::Debug for LiveConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConnection").finish_non_exhaustive()
    }
}

impl Session {
    /// Opens a WebSocket: `POST /api/ws/ticket` (refreshing an expired access token like
    /// every call), then `GET /api/ws?ticket=…` over `ws://` or `wss://` as the server URL
    /// is `http://` or `https://`, with the client's trusted roots and connect timeout.
    ///
    /// The connection is the raw protocol ([`tsunagu_protocol::ws`]); [`super::LiveClient`]
    /// adds resubscription, reconnection and an outbox.
    pub async fn connect_live(&self) -> Result<LiveConnection, LiveError> {
        let ticket = self.ws_ticket().await?;
        LiveConnection::open(self.client(), &ticket.ticket).await
    }
}

impl LiveConnection {
    /// Opens the socket with a ticket already obtained.
    pub(crate) async fn open(client: &Client, ticket: &str) -> Result<Self, LiveError> {
        let settings = client.socket_settings();
        let url = socket_url(client.base_url(), ticket)?;
        let connector = if url.scheme() == "wss" {
            Connector::Rustls(settings.tls()?)
        } else {
            Connector::Plain
        };
        let mut request = url.as_str().into_client_request().map_err(socket_error)?;
        if let Ok(agent) = HeaderValue::from_str(&settings.user_agent) {
            request.headers_mut().insert(USER_AGENT, agent);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_INCOMING_BYTES))
            .max_frame_size(Some(MAX_INCOMING_BYTES));
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            Some(connector),
        );
        match tokio::time::timeout(settings.connect_timeout, connecting).await {
            Ok(Ok((socket, _))) => Ok(Self { socket }),
            Ok(Err(err)) => Err(socket_error(err)),
            Err(_) => Err(LiveError::Timeout),
        }
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), LiveError> {
        let text = encode(frame)?;
        self.socket
            .send(Message::Text(text.into()))
            .await
            .map_err(socket_error)
    }

    /// The next frame from the server, skipping pings and pongs. Fails with
    /// [`LiveError::Closed`] when the server closes the connection (4001: the session
    /// ended), [`LiveError::Decode`] for a frame this client does not understand (the
    /// connection stays usable) and [`LiveError::Socket`] when the connection breaks.
    ///
    /// Cancel-safe: dropping the future loses no frame.
    pub async fn recv(&mut self) -> Result<ServerFrame, LiveError> {
        loop {
            if let Some(frame) = self.recv_any().await? {
                return Ok(frame);
            }
        }
    }

    /// Closes the connection (close code 1000), waiting at most a second for the server.
    pub async fn close(mut self) {
        let closing = self.socket.close(None);
        let _ = tokio::time::timeout(Duration::from_secs(1), closing).await;
    }

    /// The next frame of the protocol, or `None` for a ping or pong (the connection is
    /// alive; pings are answered by the transport). Cancel-safe.
    pub(crate) async fn recv_any(&mut self) -> Result<Option<ServerFrame>, LiveError> {
        loop {
            let message = match self.socket.next().await {
                Some(Ok(message)) => message,
                Some(Err(err)) => return Err(socket_error(err)),
                None => {
                    return Err(LiveError::Closed {
                        code: None,
                        reason: String::new(),
                    });
                }
            };
            return match message {
                Message::Text(text) => serde_json::from_str(text.as_str())
                    .map(Some)
                    .map_err(|err| LiveError::Decode(err.to_string())),
                Message::Ping(_) | Message::Pong(_) => Ok(None),
                Message::Close(frame) => Err(LiveError::Closed {
                    code: frame.as_ref().map(|f| u16::from(f.code)),
                    reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                }),
                Message::Binary(_) => Err(LiveError::Decode("a binary frame".to_owned())),
                Message::Frame(_) => continue,
            };
        }
    }

    /// Queues an encoded frame for sending; [`LiveConnection::flush`] sends what is queued.
    pub(crate) async fn feed(&mut self, text: String) -> Result<(), LiveError> {
        self.socket
            .feed(Message::Text(text.into()))
            .await
            .map_err(socket_error)
    }

    /// Sends every queued frame.
    pub(crate) async fn flush(&mut self) -> Result<(), LiveError> {
        self.socket.flush().await.map_err(socket_error)
    }
}

/// Serialises a frame (of the protocol, or a borrowing equivalent).
pub(crate) fn encode<F: Serialize + ?Sized>(frame: &F) -> Result<String, LiveError> {
    serde_json::to_string(frame).map_err(|err| LiveError::Decode(err.to_string()))
}

/// A transport failure as a [`LiveError`]: an HTTP answer to the upgrade (a refused or
/// expired ticket, a proxy error) becomes [`ClientError`] with the server's error body;
/// a close becomes [`LiveError::Closed`]; anything else [`LiveError::Socket`].
fn socket_error(err: tungstenite::Error) -> LiveError {
    match err {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().unwrap_or_default();
            LiveError::Client(ClientError::from_error_response(status, body))
        }
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            LiveError::Closed {
                code: Some(u16::from(CloseCode::Normal)),
                reason: String::new(),
            }
        }
        other => LiveError::Socket(Box::new(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_url_follows_the_server_url() {
        let url = socket_url("http://127.0.0.1:8080", "abc").unwrap();
        assert_eq!(url.as_str(), "ws://127.0.0.1:8080/api/ws?ticket=abc");
        let url = socket_url("https://example.jp/tsunagu", "a+b/c=").unwrap();
        assert_eq!(
            url.as_str(),
            "wss://example.jp/tsunagu/api/ws?ticket=a%2Bb%2Fc%3D"
        );
    }

    #[test]
    fn tls_uses_the_configured_roots() {
        let settings = SocketSettings::new("ua".into(), Duration::from_secs(1), vec![], false);
        let config = settings.tls().unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        // Built once, then shared.
        assert!(Arc::ptr_eq(&config, &settings.tls().unwrap()));
        let bad = SocketSettings::new(
            "ua".into(),
            Duration::from_secs(1),
            vec![b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".to_vec()],
            true,
        );
        assert!(matches!(bad.tls(), Err(LiveError::Tls(_))));
    }
}
