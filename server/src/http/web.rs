//! The web client's edge: its files (embedded in the binary from `clients/web/`, served at
//! `/` with a strict Content-Security-Policy), its cookie sessions (`/api/web/…`: the tokens
//! of `/api/auth/…` moved into `HttpOnly` cookies, with a CSRF token per session) and the
//! operating policy every user accepts (`/api/policy`).
//!
//! See `docs/web-client.md` for the contract the browser code follows.

use axum::extract::State;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use tsunagu_protocol::ErrorBody;
use tsunagu_protocol::auth::{
    AcceptPolicyRequest, ChangePasswordRequest, LoginRequest, OperatingPolicy, OutboxKey,
    RefreshRequest, TokenResponse, WebSession,
};
use tsunagu_protocol::identity::AcceptInvitationRequest;

use super::extract::{
    AnySession, FullSession, Json, RequestOrigin, cookie, origin_allowed, presented_csrf,
};
use crate::error::{AppError, Result};
use crate::state::AppState;

/// The access token (`HttpOnly`).
pub(crate) const ACCESS_COOKIE: &str = "__Host-tsunagu_access";
/// The refresh token (`HttpOnly`).
pub(crate) const REFRESH_COOKIE: &str = "__Host-tsunagu_refresh";
/// The session's CSRF token, which the page's script reads and sends back as `X-CSRF-Token`.
pub(crate) const CSRF_COOKIE: &str = "__Host-tsunagu_csrf";

/// The policy of the web client's pages: scripts, styles, fonts and connections from this
/// origin only (no inline code at all), images also from `blob:` (photo previews, the TOTP
/// QR code) and `data:`; no plugins, no framing, no foreign form targets.
pub(crate) const APP_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; font-src 'self'; connect-src 'self'; media-src 'self' blob:; \
     worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The web client's files, `clients/web/` at build time.
#[derive(rust_embed::Embed)]
#[folder = "../clients/web/"]
struct WebAssets;

/// Serves a file of the web client for `GET`/`HEAD` outside `/api/`; everything else, and an
/// unknown file, is `not_found`. `/` is `index.html`. Files are revalidated on every load (an
/// `ETag` of their SHA-256), so a new server version reaches browsers at once; the service
/// worker keeps a copy for offline reloads.
pub(crate) async fn asset(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if !(method == Method::GET || method == Method::HEAD) || uri.path().starts_with("/api/") {
        return AppError::NotFound.into_response();
    }
    let path = match uri.path().trim_start_matches('/') {
        "" => "index.html",
        path => path,
    };
    let Some(file) = WebAssets::get(path) else {
        return AppError::NotFound.into_response();
    };
    let etag = format!(
        "\"{}\"",
        file.metadata
            .sha256_hash()
            .iter()
            .take(16)
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    );
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|value| value.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        StatusCode::OK.into_response()
    } else {
        // Release builds embed the files: serve them without copying.
        match file.data {
            std::borrow::Cow::Borrowed(bytes) => axum::body::Body::from(bytes).into_response(),
            std::borrow::Cow::Owned(bytes) => bytes.into_response(),
        }
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(APP_CSP),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(), geolocation=(), payment=()"),
    );
    response
}

/// A cookie of a browser session: `__Host-` cookies must be `Secure` with `Path=/` and no
/// `Domain`; browsers accept `Secure` cookies from `http://localhost` and `127.0.0.1` too, so
/// the local quick start works. No `Max-Age`: the cookies end with the browser.
fn session_cookie(name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(name != CSRF_COOKIE)
        .same_site(SameSite::Strict)
        .build()
}

fn append_cookie(headers: &mut HeaderMap, cookie: &Cookie<'_>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(header::SET_COOKIE, value);
    }
}

/// The three cookies of a new token pair, and the body that goes with them.
fn session_response(state: &AppState, tokens: TokenResponse, status: StatusCode) -> Response {
    let csrf = state.auth.csrf_token(tokens.session_id);
    let body = WebSession {
        session_id: tokens.session_id,
        expires_in: tokens.expires_in,
        pending: tokens.pending.clone(),
    };
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    append_cookie(
        headers,
        &session_cookie(ACCESS_COOKIE, tokens.access_token.clone()),
    );
    append_cookie(
        headers,
        &session_cookie(REFRESH_COOKIE, tokens.refresh_token.clone()),
    );
    append_cookie(headers, &session_cookie(CSRF_COOKIE, csrf));
    response
}

/// Removes the three cookies.
fn clear_cookies(headers: &mut HeaderMap) {
    for name in [ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE] {
        let mut removal = session_cookie(name, String::new());
        removal.make_removal();
        append_cookie(headers, &removal);
    }
}

/// The origin check of the cookie-session endpoints that need no session (login, refresh,
/// invitation): a browser must be on an allowed origin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AllowedOrigin;

impl axum::extract::FromRequestParts<AppState> for AllowedOrigin {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        if origin_allowed(&parts.headers, &state.settings.allowed_origins) {
            Ok(AllowedOrigin)
        } else {
            Err(AppError::CsrfInvalid)
        }
    }
}

/// `POST /api/web/login`
///
/// - As `POST /api/auth/login`, but the tokens are set as `HttpOnly` cookies with a CSRF
///   token cookie beside them; the body holds only the session id, lifetime and pending steps.
#[utoipa::path(post, path = "/api/web/login", tag = "web", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; cookies set", body = WebSession),
        (status = 401, description = "authentication_failed, totp_required, totp_invalid", body = ErrorBody),
        (status = 403, description = "csrf_invalid: a foreign Origin", body = ErrorBody),
        (status = 429, description = "account_locked", body = ErrorBody),
    ))]
pub(crate) async fn login(
    State(state): State<AppState>,
    _: AllowedOrigin,
    RequestOrigin(origin): RequestOrigin,
    Json(request): Json<LoginRequest>,
) -> Result<Response> {
    let tokens = state.auth.login(request, &origin).await?;
    Ok(session_response(&state, tokens, StatusCode::OK))
}

/// `POST /api/web/refresh`
///
/// - Rotates the refresh token of the cookie; needs `X-CSRF-Token` equal to the CSRF cookie.
///   A failure clears the cookies.
#[utoipa::path(post, path = "/api/web/refresh", tag = "web",
    responses(
        (status = 200, description = "New cookies", body = WebSession),
        (status = 401, description = "token_invalid, session_expired", body = ErrorBody),
        (status = 403, description = "csrf_invalid", body = ErrorBody),
    ))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    _: AllowedOrigin,
    RequestOrigin(origin): RequestOrigin,
    parts: Parts,
) -> Response {
    let csrf_cookie = cookie(&parts, CSRF_COOKIE).unwrap_or_default();
    if csrf_cookie.is_empty() || csrf_cookie != presented_csrf(&parts) {
        return AppError::CsrfInvalid.into_response();
    }
    let Some(refresh_token) = cookie(&parts, REFRESH_COOKIE).filter(|value| !value.is_empty())
    else {
        let mut response = AppError::TokenInvalid.into_response();
        clear_cookies(response.headers_mut());
        return response;
    };
    let request = RefreshRequest {
        refresh_token: refresh_token.to_owned(),
    };
    match state.auth.refresh(request, &origin).await {
        Ok(tokens) => session_response(&state, tokens, StatusCode::OK),
        Err(error) => {
            let mut response = error.into_response();
            clear_cookies(response.headers_mut());
            response
        }
    }
}

/// `POST /api/web/logout`
///
/// - Ends every session of the caller (as `POST /api/auth/logout`) and clears the cookies,
///   also when the session had already ended.
#[utoipa::path(post, path = "/api/web/logout", tag = "web",
    responses(
        (status = 204, description = "Logged out everywhere; cookies cleared"),
        (status = 403, description = "csrf_invalid", body = ErrorBody),
    ))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    session: std::result::Result<AnySession, AppError>,
) -> Result<Response> {
    match session {
        Ok(AnySession(principal)) => state.auth.logout(&principal).await?,
        Err(AppError::CsrfInvalid) => return Err(AppError::CsrfInvalid),
        Err(_) => {}
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    clear_cookies(response.headers_mut());
    Ok(response)
}

/// `POST /api/web/password`
///
/// - As `POST /api/auth/password`: every session ends and a new one is set in the cookies.
#[utoipa::path(post, path = "/api/web/password", tag = "web", request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Changed; new cookies", body = WebSession),
        (status = 400, description = "weak_password", body = ErrorBody),
        (status = 401, description = "authentication_failed (current password wrong)", body = ErrorBody),
        (status = 403, description = "csrf_invalid", body = ErrorBody),
    ))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    AnySession(principal): AnySession,
    Json(request): Json<ChangePasswordRequest>,
) -> Result<Response> {
    let tokens = state.auth.change_password(&principal, request).await?;
    Ok(session_response(&state, tokens, StatusCode::OK))
}

/// `POST /api/web/accept-invitation`
///
/// - As `POST /api/invitations/accept`, with the new session in cookies.
#[utoipa::path(post, path = "/api/web/accept-invitation", tag = "web",
    request_body = AcceptInvitationRequest,
    responses(
        (status = 201, description = "Account created; cookies set", body = WebSession),
        (status = 400, description = "invitation_invalid, invalid_request, weak_password", body = ErrorBody),
        (status = 403, description = "csrf_invalid: a foreign Origin", body = ErrorBody),
        (status = 409, description = "conflict: username taken", body = ErrorBody),
    ))]
pub(crate) async fn accept_invitation(
    State(state): State<AppState>,
    _: AllowedOrigin,
    RequestOrigin(origin): RequestOrigin,
    Json(request): Json<AcceptInvitationRequest>,
) -> Result<Response> {
    let tokens = state.identity.accept_invitation(request, &origin).await?;
    Ok(session_response(&state, tokens, StatusCode::CREATED))
}

/// `GET /api/web/outbox-key`
///
/// - The key with which the web client seals the posts waiting in its offline outbox; kept in
///   the page's memory only. The same for every session of the user.
#[utoipa::path(get, path = "/api/web/outbox-key", tag = "web", security(("bearer" = [])),
    responses(
        (status = 200, description = "The key", body = OutboxKey),
        (status = 401, description = "token_invalid, token_expired, session_expired", body = ErrorBody),
    ))]
pub(crate) async fn outbox_key(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
) -> Json<OutboxKey> {
    Json(OutboxKey {
        key: state.auth.outbox_key(principal.user_id),
    })
}

/// `GET /api/policy`
///
/// - The deployment's operating policy (運用ポリシー) and the version the caller accepted;
///   `not_found` when the deployment has none.
#[utoipa::path(get, path = "/api/policy", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy", body = OperatingPolicy),
        (status = 404, description = "not_found: no policy configured", body = ErrorBody),
    ))]
pub(crate) async fn policy(
    State(state): State<AppState>,
    AnySession(principal): AnySession,
) -> Result<Json<OperatingPolicy>> {
    let policy = state.auth.policy().ok_or(AppError::NotFound)?;
    let user = state
        .store
        .user(principal.user_id)
        .await?
        .ok_or(AppError::SessionExpired)?;
    Ok(Json(OperatingPolicy {
        version: policy.version.clone(),
        title: policy.title.clone(),
        text: policy.text.clone(),
        accepted_version: user.accepted_policy_version,
    }))
}

/// `POST /api/policy/accept`
///
/// - Accepts the current version of the operating policy (audited `auth.policy_accept`).
///   The session's `accept_policy` step is done from its next request on.
#[utoipa::path(post, path = "/api/policy/accept", tag = "auth", security(("bearer" = [])),
    request_body = AcceptPolicyRequest,
    responses(
        (status = 204, description = "Accepted"),
        (status = 403, description = "password_change_required, totp_enrolment_required", body = ErrorBody),
        (status = 404, description = "not_found: no policy configured", body = ErrorBody),
        (status = 409, description = "conflict (policy_changed): not the current version", body = ErrorBody),
    ))]
pub(crate) async fn accept_policy(
    State(state): State<AppState>,
    AnySession(principal): AnySession,
    Json(request): Json<AcceptPolicyRequest>,
) -> Result<StatusCode> {
    state
        .auth
        .accept_policy(&principal, &request.version)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    fn text(path: &str) -> String {
        let file = WebAssets::get(path).unwrap_or_else(|| panic!("{path} is not embedded"));
        String::from_utf8(file.data.into_owned()).unwrap()
    }

    /// Every path in `text` that starts with `/` and ends in one of the client's file types,
    /// between quotes.
    fn quoted_paths(text: &str) -> Vec<String> {
        text.split(['"', '\''])
            .filter(|part| {
                part.starts_with('/')
                    && !part.starts_with("//")
                    && [".js", ".css", ".svg", ".webmanifest", ".html"]
                        .iter()
                        .any(|ext| part.ends_with(ext))
            })
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_page_and_the_service_worker_name_only_embedded_files() {
        let index = text("index.html");
        assert!(index.contains("<html lang=\"ja\">"), "Japanese first");
        let named = quoted_paths(&index);
        assert!(named.contains(&"/app/main.js".to_owned()), "{named:?}");
        let shell = quoted_paths(&text("sw.js"));
        for path in named.iter().chain(&shell) {
            assert!(
                WebAssets::get(path.trim_start_matches('/')).is_some(),
                "{path} is named but not in clients/web"
            );
        }
        // The service worker keeps every script and style for offline reloads.
        for file in WebAssets::iter() {
            if file.ends_with(".js") && file.starts_with("app/") || file.ends_with(".css") {
                assert!(
                    shell.contains(&format!("/{file}")),
                    "sw.js does not keep /{file} for offline use"
                );
            }
        }
    }

    #[test]
    fn every_module_import_resolves_to_an_embedded_file() {
        let mut checked = 0;
        for file in WebAssets::iter().filter(|file| file.ends_with(".js")) {
            let source = text(&file);
            let dir = file.rsplit_once('/').map_or("", |(dir, _)| dir);
            for line in source.lines() {
                let line = line.trim();
                let Some(spec) = line
                    .split(" from ")
                    .nth(1)
                    .filter(|_| line.starts_with("import ") || line.starts_with("} from"))
                    .or_else(|| {
                        line.strip_prefix("import ")
                            .filter(|rest| rest.starts_with('\''))
                    })
                else {
                    continue;
                };
                let spec = spec.trim_end_matches(';').trim_matches(['\'', '"']);
                let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
                for segment in spec.split('/') {
                    match segment {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        other => parts.push(other),
                    }
                }
                let target = parts.join("/");
                assert!(
                    WebAssets::get(&target).is_some(),
                    "{file} imports {spec}, which is not embedded ({target})"
                );
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} imports found");
    }

    #[test]
    fn the_client_builds_no_html_from_strings_and_runs_no_inline_code() {
        for file in WebAssets::iter() {
            if !(file.ends_with(".js") || file.ends_with(".html")) {
                continue;
            }
            let source = text(&file);
            for forbidden in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "javascript:",
                " onclick=",
                " style=\"",
            ] {
                assert!(!source.contains(forbidden), "{file} uses {forbidden}");
            }
            if file.ends_with(".html") {
                assert_eq!(
                    source.matches("<script").count(),
                    source.matches("<script type=\"module\" src=").count(),
                    "{file}: scripts only from files"
                );
            }
        }
    }

    #[tokio::test]
    async fn files_come_with_the_policy_a_type_and_a_validator() {
        let response = asset(Method::GET, Uri::from_static("/"), HeaderMap::new()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], APP_CSP);
        assert!(APP_CSP.contains("script-src 'self';") && !APP_CSP.contains("unsafe"));
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let etag = headers[header::ETAG].clone();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        assert!(body.starts_with(b"<!doctype html>"));

        let mut conditional = HeaderMap::new();
        conditional.insert(header::IF_NONE_MATCH, etag);
        let response = asset(Method::GET, Uri::from_static("/index.html"), conditional).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);

        let script = asset(
            Method::GET,
            Uri::from_static("/app/main.js"),
            HeaderMap::new(),
        )
        .await;
        assert!(
            script.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .contains("javascript")
        );
        for (method, path) in [
            (Method::GET, "/nope.js"),
            (Method::GET, "/api/unknown"),
            (Method::POST, "/"),
            (Method::GET, "/app/../../Cargo.toml"),
        ] {
            let response = asset(method.clone(), Uri::from_static(path), HeaderMap::new()).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        }
    }
}
