//! The HTTP edge: one router built from each domain's handlers, the OpenAPI 3.1 document
//! generated from their annotations, and the layers every request passes through (tracing
//! without bodies or query strings, size and time limits, security headers, panic capture).

mod admin;
mod attachments;
mod audit;
mod auth;
mod extract;
mod forms;
mod health;
mod rooms;
mod timeline;
pub(crate) mod web;

pub(crate) use extract::{FullSession, Query, origin_allowed, origin_of};

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use tsunagu_protocol::{ErrorBody, ErrorCode};

use crate::error::AppError;
use crate::state::AppState;

/// Largest JSON body the API accepts.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest a request may take before it is answered with 408/503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest an attachment upload may take (20 MiB in 5 minutes: about 0.6 Mbit/s at least).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tsunagu API",
        description = "Secure messaging for home-care teams: identity, sessions and administration.\n\n\
            Every error response has the body `ErrorBody` with a stable `code` and messages in \
            Japanese and English.",
    ),
    modifiers(&BearerAuth),
    components(schemas(tsunagu_protocol::ErrorBody, tsunagu_protocol::ErrorCode, tsunagu_protocol::FieldError)),
    tags(
        (name = "auth", description = "Login, tokens, password, TOTP and sessions"),
        (name = "identity", description = "Joining by invitation"),
        (name = "admin", description = "Organisations, invitations and users"),
        (name = "rooms", description = "Patient rooms, their care teams and consent"),
        (name = "timeline", description = "Entries, corrections, acknowledgements, history"),
        (name = "attachments", description = "Photos and documents attached to entries"),
        (name = "forms", description = "Structured forms: templates, sending, inbox, answers, corrections, print view, FHIR"),
        (name = "sheet", description = "The emergency information sheet: versions and confirmations"),
        (name = "audit", description = "The audit trail, for security officers: search, reports, exports, verification, review sign-offs"),
        (name = "health", description = "Liveness, readiness and the clock"),
        (name = "web", description = "The web client's cookie sessions (tokens in HttpOnly cookies, CSRF token per session)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The routes and the OpenAPI document that describes them: the API, and apart from it the
/// upload of attachments, which streams bodies beyond the API's size and time limits.
fn api() -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    let (uploads, uploads_doc) = OpenApiRouter::new()
        .routes(routes!(attachments::upload))
        .split_for_parts();
    let (routes, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::enrol_totp))
        .routes(routes!(auth::confirm_totp))
        .routes(routes!(auth::sessions))
        .routes(routes!(auth::revoke_session))
        .routes(routes!(auth::accept_invitation))
        .routes(routes!(web::policy))
        .routes(routes!(web::accept_policy))
        .routes(routes!(web::login))
        .routes(routes!(web::refresh))
        .routes(routes!(web::logout))
        .routes(routes!(web::change_password))
        .routes(routes!(web::accept_invitation))
        .routes(routes!(web::outbox_key))
        .routes(routes!(
            admin::list_organisations,
            admin::create_organisation
        ))
        .routes(routes!(admin::get_organisation, admin::update_organisation))
        .routes(routes!(admin::create_invitation, admin::list_invitations))
        .routes(routes!(admin::revoke_invitation))
        .routes(routes!(admin::list_users))
        .routes(routes!(admin::get_user))
        .routes(routes!(admin::change_role))
        .routes(routes!(admin::role_grants))
        .routes(routes!(admin::disable_user))
        .routes(routes!(admin::enable_user))
        .routes(routes!(admin::reset_password))
        .routes(routes!(admin::reset_totp))
        .routes(routes!(admin::user_sessions, admin::revoke_user_sessions))
        .routes(routes!(rooms::list_rooms, rooms::create_room))
        .routes(routes!(rooms::get_room))
        .routes(routes!(rooms::search_rooms))
        .routes(routes!(rooms::close_room))
        .routes(routes!(rooms::purge_room))
        .routes(routes!(rooms::rotate_room_key))
        .routes(routes!(rooms::list_members, rooms::invite_member))
        .routes(routes!(rooms::revoke_member))
        .routes(routes!(rooms::respond_to_invitation, rooms::leave_room))
        .routes(routes!(rooms::list_consents, rooms::record_consent))
        .routes(routes!(rooms::withdraw_consent))
        .routes(routes!(rooms::directory))
        .routes(routes!(timeline::history))
        .routes(routes!(timeline::post_entry))
        .routes(routes!(timeline::edit_entry))
        .routes(routes!(timeline::delete_entry))
        .routes(routes!(timeline::entry_versions))
        .routes(routes!(
            timeline::list_acknowledgements,
            timeline::acknowledge
        ))
        .routes(routes!(timeline::mark_read))
        .routes(routes!(attachments::download))
        .routes(routes!(crate::ws::ticket))
        .routes(routes!(audit::search))
        .routes(routes!(audit::export))
        .routes(routes!(audit::verify))
        .routes(routes!(audit::report))
        .routes(routes!(audit::reviews, audit::sign_off))
        .routes(routes!(audit::clock))
        .routes(routes!(forms::list_templates, forms::add_template))
        .routes(routes!(forms::get_template))
        .routes(routes!(forms::template_fhir))
        .routes(routes!(forms::room_forms, forms::send_form))
        .routes(routes!(forms::inbox))
        .routes(routes!(forms::get_form))
        .routes(routes!(forms::answer_form))
        .routes(routes!(forms::acknowledge_form))
        .routes(routes!(forms::correct_form))
        .routes(routes!(forms::print_form))
        .routes(routes!(forms::form_fhir))
        .routes(routes!(forms::get_sheet, forms::update_sheet))
        .routes(routes!(forms::confirm_sheet))
        .routes(routes!(forms::sheet_versions))
        .routes(routes!(forms::print_sheet))
        .split_for_parts();
    doc.merge(uploads_doc);
    (routes, uploads, doc)
}

/// The OpenAPI document of the HTTP API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().2
}

/// The whole HTTP application.
///
/// Layers, from the inside out: body limit and timeout (their refusals, and panics, are
/// given the error shape next), then the security headers, so that every response, errors
/// included, carries them; tracing outermost. The upload of attachments has no body limit
/// (it enforces its own) and a longer timeout.
pub fn router(state: AppState) -> Router {
    let (routes, uploads, openapi) = api();
    let uploads = uploads
        .with_state(state.clone())
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            UPLOAD_TIMEOUT,
        ));
    let openapi_json = openapi.to_json().unwrap_or_else(|_| "{}".to_owned());
    // Behind a TLS-terminating proxy the browser sees HTTPS too.
    let https = state.settings.tls.is_some() || state.settings.behind_proxy;
    let mut router = routes
        .route(
            tsunagu_protocol::routes::OPENAPI,
            get(
                move || async move { ([(header::CONTENT_TYPE, "application/json")], openapi_json) },
            ),
        )
        .route(tsunagu_protocol::routes::WS, get(crate::ws::upgrade))
        .route("/metrics", get(health::metrics))
        .fallback(web::asset)
        .with_state(state)
        .layer(axum::middleware::from_fn(count_request))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .merge(uploads)
        .layer(CatchPanicLayer::custom(|_| {
            AppError::Internal("panic").into_response()
        }))
        .layer(axum::middleware::map_response(error_body_for_bare_errors));
    let headers = [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ];
    for (name, value) in headers {
        let value = HeaderValue::from_static(value);
        // A download chooses its own caching and content policy (still no-store, and
        // stricter: a sandbox); everything else gets the defaults.
        router = if name == header::CACHE_CONTROL || name == header::CONTENT_SECURITY_POLICY {
            router.layer(SetResponseHeaderLayer::if_not_present(name, value))
        } else {
            router.layer(SetResponseHeaderLayer::overriding(name, value))
        };
    }
    if https {
        router = router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ));
    }
    router.layer(
        TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            // The path only: query strings and bodies may carry secrets.
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
        }),
    )
}

/// Counts every request in the metrics by its route template (never the path itself, whose
/// ids would make a series per room), method and status, and times it.
async fn count_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("other", |path| path.as_str())
        .to_owned();
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let response = next.run(request).await;
    let metrics = crate::metrics::get();
    metrics
        .http_requests
        .get_or_create(&crate::metrics::RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .http_seconds
        .observe(crate::metrics::seconds(started.elapsed()));
    response
}

/// Gives error responses produced outside our handlers (timeouts, body limits, 405s) the
/// one error shape, so that every client sees `ErrorBody` for every error.
async fn error_body_for_bare_errors(
    response: axum::response::Response,
) -> axum::response::Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::Timeout,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::ServiceUnavailable,
        status if status.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::InvalidRequest,
    };
    let mut replaced = (status, axum::Json(ErrorBody::new(code))).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = response.headers().get(&name) {
            replaced.headers_mut().insert(name, value.clone());
        }
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_describes_every_route_of_the_protocol() {
        let doc = openapi();
        let json = doc.to_json().unwrap();
        assert!(json.contains("\"openapi\":\"3.1.0\""), "{}", &json[..80]);
        use tsunagu_protocol::routes as r;
        for path in [
            r::HEALTHZ,
            r::READYZ,
            r::LOGIN,
            r::REFRESH,
            r::LOGOUT,
            r::ME,
            r::PASSWORD,
            r::TOTP_ENROL,
            r::TOTP_CONFIRM,
            r::SESSIONS,
            r::SESSION,
            r::ACCEPT_INVITATION,
            r::POLICY,
            r::POLICY_ACCEPT,
            r::WEB_LOGIN,
            r::WEB_REFRESH,
            r::WEB_LOGOUT,
            r::WEB_PASSWORD,
            r::WEB_ACCEPT_INVITATION,
            r::WEB_OUTBOX_KEY,
            r::ORGANISATIONS,
            r::ORGANISATION,
            r::ORGANISATION_INVITATIONS,
            r::INVITATION,
            r::ORGANISATION_USERS,
            r::USER,
            r::USER_ROLE,
            r::USER_ROLE_GRANTS,
            r::USER_DISABLE,
            r::USER_ENABLE,
            r::USER_RESET_PASSWORD,
            r::USER_RESET_TOTP,
            r::USER_SESSIONS,
            r::ROOMS,
            r::ROOM,
            r::ROOM_SEARCH,
            r::ROOM_CLOSE,
            r::ADMIN_ROOM_PURGE,
            r::ADMIN_ROOM_ROTATE_KEY,
            r::ROOM_MEMBERS,
            r::ROOM_MEMBER,
            r::ROOM_MEMBERSHIP,
            r::ROOM_CONSENTS,
            r::ROOM_CONSENT_WITHDRAW,
            r::DIRECTORY,
            r::TIMELINE,
            r::ENTRIES,
            r::ENTRY_EDIT,
            r::ENTRY_DELETE,
            r::ENTRY_VERSIONS,
            r::ENTRY_ACKS,
            r::ROOM_READ,
            r::ATTACHMENTS,
            r::ATTACHMENT,
            r::WS_TICKET,
            r::AUDIT_RECORDS,
            r::AUDIT_EXPORT,
            r::AUDIT_VERIFY,
            r::AUDIT_REPORT,
            r::AUDIT_REVIEWS,
            r::CLOCK,
            r::FORM_TEMPLATES,
            r::FORM_TEMPLATE,
            r::FORM_TEMPLATE_FHIR,
            r::ROOM_FORMS,
            r::FORM_INBOX,
            r::FORM,
            r::FORM_ANSWER,
            r::FORM_ACKNOWLEDGE,
            r::FORM_CORRECTIONS,
            r::FORM_PRINT,
            r::FORM_FHIR,
            r::ROOM_SHEET,
            r::ROOM_SHEET_CONFIRM,
            r::ROOM_SHEET_VERSIONS,
            r::ROOM_SHEET_PRINT,
        ] {
            assert!(doc.paths.paths.contains_key(path), "OpenAPI lacks {path}");
        }
        assert_eq!(
            doc.paths.paths.len(),
            76,
            "a route is missing from protocol::routes"
        );
    }

    #[tokio::test]
    async fn bare_errors_get_the_error_shape() {
        use axum::body::Body;
        use axum::http::Request;
        use tower::ServiceExt as _;

        let app: axum::Router = axum::Router::new()
            .route("/only-get", get(|| async { "ok" }))
            .route("/slow", get(|| async { StatusCode::REQUEST_TIMEOUT }))
            .layer(axum::middleware::map_response(error_body_for_bare_errors));
        let response = app
            .clone()
            .oneshot(Request::post("/only-get").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(response.headers().contains_key(header::ALLOW));
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.code, ErrorCode::InvalidRequest);

        let response = app
            .oneshot(Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.code, ErrorCode::Timeout);
    }
}
