//! The unauthenticated client: configuration (base URL, extra root CA, timeouts, user agent),
//! the one request path every call goes through, and the calls that need no login (health,
//! login, refresh, invitation acceptance). The same configuration applies to the live
//! WebSocket connection ([`crate::live`]).

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tsunagu_protocol::auth::{LoginRequest, RefreshRequest, TokenResponse};
use tsunagu_protocol::identity::AcceptInvitationRequest;
use tsunagu_protocol::routes;

use crate::error::{BuildError, ClientError};
use crate::live::SocketSettings;
use crate::session::{Session, Tokens};

/// The `User-Agent` this library sends: `tsunagu-client/<version>`.
pub const USER_AGENT: &str = concat!("tsunagu-client/", env!("CARGO_PKG_VERSION"));
/// Default limit for a whole request, from connecting to reading the last byte of the answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit for establishing the connection (TCP and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Configures a [`Client`]. Start with [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    root_certificates_pem: Vec<Vec<u8>>,
    built_in_roots: bool,
    timeout: Duration,
    connect_timeout: Duration,
    product: Option<String>,
}

impl ClientBuilder {
    /// Trusts the certificate(s) in this PEM text as root CAs, in addition to the built-in
    /// Web PKI roots (for a server with a private or self-signed certificate). May be called
    /// more than once; a PEM bundle with several certificates is accepted.
    pub fn add_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates_pem.push(pem.into());
        self
    }

    /// Whether to trust the built-in Web PKI roots (default true). Turn them off to accept only
    /// the certificates given with [`ClientBuilder::add_root_certificate_pem`].
    pub fn built_in_root_certificates(mut self, enabled: bool) -> Self {
        self.built_in_roots = enabled;
        self
    }

    /// Limit for a whole request (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Limit for establishing a connection (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Names the application using this library; it is put before [`USER_AGENT`] in the
    /// `User-Agent` header (e.g. `tsunagu-cli/0.1.0 tsunagu-client/0.1.0`), which the server
    /// shows in session lists.
    pub fn user_agent_product(mut self, product: impl Into<String>) -> Self {
        self.product = Some(product.into());
        self
    }

    /// Validates the configuration and builds the client.
    pub fn build(self) -> Result<Client, BuildError> {
        let base_url = normalise_base_url(&self.base_url)?;
        let user_agent = match &self.product {
            Some(product) => format!("{product} {USER_AGENT}"),
            None => USER_AGENT.to_owned(),
        };
        let mut http = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(&user_agent)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            // A redirect could carry the bearer token elsewhere; the API never redirects.
            .redirect(reqwest::redirect::Policy::none())
            .tls_built_in_root_certs(self.built_in_roots);
        for pem in &self.root_certificates_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|err| BuildError::Certificate(err.to_string()))?;
            if certificates.is_empty() {
                return Err(BuildError::Certificate(
                    "no PEM certificate (-----BEGIN CERTIFICATE-----) found".to_owned(),
                ));
            }
            for certificate in certificates {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http.build().map_err(BuildError::Http)?;
        let socket = SocketSettings::new(
            user_agent,
            self.connect_timeout,
            self.root_certificates_pem,
            self.built_in_roots,
        );
        Ok(Client {
            http,
            base_url: Arc::from(base_url),
            socket: Arc::new(socket),
        })
    }
}

/// Checks that `url` is an absolute http(s) URL without credentials, query or fragment, and
/// returns it without a trailing slash so that route paths can be appended.
fn normalise_base_url(url: &str) -> Result<String, BuildError> {
    let invalid = |reason: &str| BuildError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = Url::parse(url.trim()).map_err(|err| invalid(&err.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("a host is required"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("credentials do not belong in the URL"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("a query or fragment is not allowed"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// A client for one Tsunagu server, without credentials. Cheap to clone: clones share the
/// connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: Arc<str>,
    /// The same trust, user agent and connect timeout for the WebSocket.
    socket: Arc<SocketSettings>,
}

impl Client {
    /// A client with the default configuration for the server at `base_url`
    /// (e.g. `https://tsunagu.example.jp`).
    pub fn new(base_url: &str) -> Result<Self, BuildError> {
        Self::builder(base_url).build()
    }

    /// Starts configuring a client for the server at `base_url`.
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            root_certificates_pem: Vec::new(),
            built_in_roots: true,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            product: None,
        }
    }

    /// The server's base URL, normalised (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The absolute URL of an API path such as [`routes::ME`].
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The underlying HTTP client, for requests this library does not model (for example tests
    /// that send malformed input). It carries the same TLS, timeout and user-agent settings.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The WebSocket settings derived from this client's configuration.
    pub(crate) fn socket_settings(&self) -> &SocketSettings {
        &self.socket
    }

    /// A logged-in session using these tokens (from [`Client::login`], stored credentials, …).
    pub fn authed(&self, tokens: impl Into<Tokens>) -> Session {
        Session::new(self.clone(), tokens.into())
    }

    /// `GET /healthz`: the liveness text, if the process answers.
    pub async fn healthz(&self) -> Result<String, ClientError> {
        let (_, body) = self
            .execute(Method::GET, routes::HEALTHZ, &[], None, None)
            .await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// `GET /readyz`: `true` when the server is ready (200), `false` when it answers 503
    /// (database unreachable). Other answers and transport failures are errors.
    pub async fn readyz(&self) -> Result<bool, ClientError> {
        match self
            .execute(Method::GET, routes::READYZ, &[], None, None)
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if err.status() == Some(503) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// `POST /api/auth/login`. If the account uses TOTP and the request has no code, the error
    /// is [`tsunagu_protocol::ErrorCode::TotpRequired`]: ask for the code and send again.
    pub async fn login(&self, request: &LoginRequest) -> Result<TokenResponse, ClientError> {
        self.request(
            Method::POST,
            routes::LOGIN,
            &[],
            Some(&encode(request)?),
            None,
        )
        .await
    }

    /// `POST /api/auth/refresh`: exchanges a refresh token for a new pair. The old refresh token
    /// is dead afterwards; presenting it again ends the whole session. A [`Session`] does this
    /// by itself; use this only when managing tokens by hand.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, ClientError> {
        let request = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        self.request(
            Method::POST,
            routes::REFRESH,
            &[],
            Some(&encode(&request)?),
            None,
        )
        .await
    }

    /// `POST /api/invitations/accept`: creates the invitee's account and logs it in. The
    /// answer's `pending` steps say what the new session must do first.
    pub async fn accept_invitation(
        &self,
        request: &AcceptInvitationRequest,
    ) -> Result<TokenResponse, ClientError> {
        self.request(
            Method::POST,
            routes::ACCEPT_INVITATION,
            &[],
            Some(&encode(request)?),
            None,
        )
        .await
    }

    /// Sends one request and decodes a 2xx answer as `T` (an empty body decodes as JSON
    /// `null`, so `T = IgnoredAny` accepts a 204). `query` pairs are form-encoded into the URL.
    pub(crate) async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
        bearer: Option<&str>,
    ) -> Result<T, ClientError> {
        let (status, bytes) = self.execute(method, path, query, body, bearer).await?;
        decode(status, &bytes)
    }

    /// [`Client::request`] for an answer that is not JSON (an export): its body as sent.
    pub(crate) async fn request_bytes(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        bearer: Option<&str>,
    ) -> Result<Vec<u8>, ClientError> {
        let (_, bytes) = self.execute(method, path, query, None, bearer).await?;
        Ok(bytes)
    }

    /// Sends one request; returns the status and body of a 2xx answer, or the decoded error.
    /// `query` pairs are appended to the URL, form-encoded (UTF-8, percent-escaped, spaces as
    /// `+`), so that any text, Japanese included, arrives as given.
    async fn execute(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
        bearer: Option<&str>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header(ACCEPT, "application/json");
        if let Some(token) = bearer {
            // Marks the header sensitive, so it never appears in reqwest's debug output.
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let mut request = request.build().map_err(ClientError::Transport)?;
        if !query.is_empty() {
            request.url_mut().query_pairs_mut().extend_pairs(query);
        }
        let response = self
            .http
            .execute(request)
            .await
            .map_err(ClientError::Transport)?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(ClientError::Transport)?
            .to_vec();
        if (200..300).contains(&status) {
            Ok((status, bytes))
        } else {
            Err(ClientError::from_error_response(status, &bytes))
        }
    }
}

/// Serialises a request body.
pub(crate) fn encode<B: Serialize + ?Sized>(body: &B) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(body).map_err(ClientError::Encode)
}

/// Decodes a 2xx body as `T`; an empty body is read as `null`.
fn decode<T: DeserializeOwned>(status: u16, bytes: &[u8]) -> Result<T, ClientError> {
    let bytes: &[u8] = if bytes.is_empty() { b"null" } else { bytes };
    serde_json::from_slice(bytes).map_err(|err| ClientError::Decode {
        status,
        message: format!("the body is not what this client expects: {err}"),
    })
}

/// Fills a one-parameter route template with an id.
pub(crate) fn path(template: &str, id: impl Display) -> String {
    routes::fill(template, &[&id.to_string()])
}

/// Fills a two-parameter route template with two ids, in order.
pub(crate) fn path2(template: &str, first: impl Display, second: impl Display) -> String {
    routes::fill(template, &[&first.to_string(), &second.to_string()])
}

#[cfg(test)]
mod tests {
    use serde::de::IgnoredAny;
    use tsunagu_protocol::UserId;

    use super::*;

    #[test]
    fn base_urls_are_normalised_and_validated() {
        assert_eq!(
            normalise_base_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalise_base_url("https://example.jp/").unwrap(),
            "https://example.jp"
        );
        assert_eq!(
            normalise_base_url(" https://example.jp/tsunagu/ ").unwrap(),
            "https://example.jp/tsunagu"
        );
        for bad in [
            "example.jp",
            "ftp://example.jp",
            "https://user:pw@example.jp",
            "https://example.jp/?x=1",
            "https://example.jp/#top",
            "",
        ] {
            assert!(
                matches!(normalise_base_url(bad), Err(BuildError::InvalidUrl { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn urls_are_built_from_routes() {
        let client = Client::new("https://example.jp/base/").unwrap();
        assert_eq!(client.base_url(), "https://example.jp/base");
        assert_eq!(
            client.url(routes::ME),
            "https://example.jp/base/api/auth/me"
        );
        let user = UserId::generate();
        assert_eq!(
            path(routes::USER_ROLE, user),
            format!("/api/admin/users/{user}/role")
        );
    }

    #[test]
    fn bad_certificates_are_rejected() {
        let err = Client::builder("https://example.jp")
            .add_root_certificate_pem(b"not a certificate".to_vec())
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::Certificate(_)), "{err:?}");
    }

    #[test]
    fn empty_bodies_decode_as_null() {
        decode::<IgnoredAny>(204, b"").unwrap();
        decode::<IgnoredAny>(200, br#"{"anything":1}"#).unwrap();
        let err = decode::<Vec<String>>(200, b"").unwrap_err();
        assert!(matches!(err, ClientError::Decode { status: 200, .. }));
    }
}
