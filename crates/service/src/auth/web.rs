//! The HTTP side of the gate: the sign-in page and its form (`GET /login`, `POST /login` with
//! `username` and `password`), one-time sign-in links (`GET /login/once?secret=`), sign-out
//! (`POST /logout`), who am I (`GET /api/me`, which also hands the page its CSRF token), the
//! [`Authed`] extractor every protected handler takes, and the security headers of every
//! response.
//!
//! A request is authenticated by `Authorization: Bearer TOKEN` (machines) or by the session
//! cookie `attune_session` (HttpOnly, SameSite=Strict, Secure under TLS). A state-changing
//! request (any method but GET/HEAD/OPTIONS) on a session must carry the session's CSRF token
//! in `X-CSRF-Token` and, when the browser sends an `Origin`, come from this server's own
//! origin; `POST /login` checks the origin too.

use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::gate::{AuthError, Gate, NewSession};
use super::{Principal, secrets};

/// The session cookie.
pub const SESSION_COOKIE: &str = "attune_session";
/// The CSRF cookie (readable by the page's script, which sends it back as `X-CSRF-Token`).
pub const CSRF_COOKIE: &str = "attune_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Largest sign-in form accepted, bytes.
pub const MAX_LOGIN_FORM_BYTES: usize = 4096;

/// The Content-Security-Policy of every response: scripts and styles only from this server
/// (no inline script), no framing, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; media-src 'self' blob:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

const PAGE_LOGIN: &str = include_str!("../../../../web/login.html");

/// The client's address as the audit log names it.
pub fn client_address(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<crate::tls::PeerAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.0.ip().to_string())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether the request's `Origin` (if any) is this server's own (scheme-less match on Host).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Browsers send Origin on every cross-origin POST; a request without one did not come
        // from another site's page.
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let origin = origin.to_str().unwrap_or("");
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

/// Why a request was refused, as the client sees it: JSON for the API and event streams, a
/// redirect to the sign-in page for pages.
#[derive(Debug)]
pub struct Refusal {
    pub error: AuthError,
    pub wants_json: bool,
    pub path: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match &self.error {
            AuthError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        if status == StatusCode::UNAUTHORIZED && !self.wants_json {
            let next = encode(&self.path, true);
            return Redirect::to(&format!("/login?next={next}")).into_response();
        }
        let message = match &self.error {
            // The store's own words stay in the server's log.
            AuthError::Unavailable(detail) => {
                eprintln!("attune: account store: {detail}");
                "the account store is unavailable".to_owned()
            }
            e => e.to_string(),
        };
        (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
    }
}

/// `text` percent-encoded for one path segment or query value.
pub fn path_segment(text: &str) -> String {
    urlencode(text)
}

fn urlencode(text: &str) -> String {
    encode(text, false)
}

fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (b == b'/' && keep_slash) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn wants_json(parts: &Parts) -> bool {
    let path = parts.uri.path();
    path.starts_with("/api/") || path == "/events" || path == "/metrics" || path == "/logout"
}

/// The principal of a request; rejects with 401 (or a redirect to `/login` for pages) when
/// there is none, and with 403 when a session's state-changing request lacks its CSRF token or
/// comes from another origin.
#[derive(Debug, Clone)]
pub struct Authed(pub Principal);

impl<S> FromRequestParts<S> for Authed
where
    Arc<Gate>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        let gate = Arc::<Gate>::from_ref(state);
        // A machine with a token gets a status, never the sign-in page.
        let machine = bearer(&parts.headers).is_some();
        let refuse = |error| Refusal {
            error,
            wants_json: machine || wants_json(parts),
            path: parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
        };
        if !gate.enabled() {
            return Ok(Authed(Principal::unauthenticated_admin()));
        }
        if let Some(token) = bearer(&parts.headers) {
            let token = token.to_owned();
            let g = gate.clone();
            let result = tokio::task::spawn_blocking(move || g.bearer(&token))
                .await
                .unwrap_or_else(|_| Err(AuthError::Unavailable("token check failed".into())));
            return result.map(Authed).map_err(refuse);
        }
        let Some(session_id) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) else {
            return Err(refuse(AuthError::Unauthenticated(
                "sign in, or send Authorization: Bearer TOKEN".into(),
            )));
        };
        let g = gate.clone();
        let session = tokio::task::spawn_blocking(move || g.session(&session_id))
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                refuse(AuthError::Unauthenticated(
                    "the session has expired or is not known: sign in again".into(),
                ))
            })?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            if !same_origin(&parts.headers) {
                return Err(refuse(AuthError::Forbidden(
                    "the request comes from another origin".into(),
                )));
            }
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !secrets::constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
                return Err(refuse(AuthError::Forbidden(format!(
                    "missing or wrong CSRF token (send the {CSRF_COOKIE} cookie's value as X-CSRF-Token)"
                ))));
            }
        }
        Ok(Authed(session.principal))
    }
}

/// The client's address (for the audit log).
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_address(parts)))
    }
}

/// Adds the security headers to every response.
pub async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, "content-security-policy", CONTENT_SECURITY_POLICY);
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    // Not `no-referrer`: under it browsers send `Origin: null` on form posts, which the
    // Origin check must then refuse. `same-origin` still sends nothing to other sites.
    set(h, "referrer-policy", "same-origin");
    set(h, "cross-origin-opener-policy", "same-origin");
    response
}

/// Adds `Strict-Transport-Security` (for a console served over TLS).
pub async fn hsts_header(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    response
}

fn session_cookies(gate: &Gate, session: &NewSession) -> [(header::HeaderName, String); 2] {
    let secure = if gate.config().secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let max_age = gate.config().session_absolute.as_secs();
    [
        (
            header::SET_COOKIE,
            format!(
                "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
                session.session_id
            ),
        ),
        (
            header::SET_COOKIE,
            format!(
                "{CSRF_COOKIE}={}; Path=/; SameSite=Strict; Max-Age={max_age}{secure}",
                session.csrf
            ),
        ),
    ]
}

fn cleared_cookies() -> [(header::HeaderName, String); 2] {
    [
        (
            header::SET_COOKIE,
            format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        ),
        (
            header::SET_COOKIE,
            format!("{CSRF_COOKIE}=; Path=/; SameSite=Strict; Max-Age=0"),
        ),
    ]
}

/// A local path to go to after signing in (anything else goes to `/`).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

fn login_page(status: StatusCode, error: &str, next: &str) -> Response {
    let notice = if error.is_empty() {
        String::new()
    } else {
        format!(
            "<p class='notice error' id='login-error' role='alert'>{}</p>",
            attune_qa::html::escape(error)
        )
    };
    let html = PAGE_LOGIN
        .replace("{{error}}", &notice)
        .replace("{{next}}", &attune_qa::html::escape(safe_next(Some(next))));
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

#[derive(Debug, Default, Deserialize)]
struct NextQuery {
    next: Option<String>,
    secret: Option<String>,
}

/// Fuzzing hook (fuzz/fuzz_targets/http_query_form.rs): `bytes` as the login page's query
/// and the login form, then the redirect check. Not part of the API.
#[doc(hidden)]
pub fn fuzz_forms(bytes: &[u8]) {
    if let Some(q) = crate::console::parse_form::<NextQuery>(bytes) {
        let next = safe_next(q.next.as_deref());
        assert!(next.starts_with('/') && !next.starts_with("//"));
    }
    if let Some(f) = crate::console::parse_form::<LoginForm>(bytes) {
        let _ = safe_next(f.next.as_deref());
    }
}

async fn get_login(Query(q): Query<NextQuery>) -> Response {
    login_page(StatusCode::OK, "", q.next.as_deref().unwrap_or("/"))
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

async fn post_login(
    State(gate): State<Arc<Gate>>,
    ClientAddress(source): ClientAddress,
    headers: HeaderMap,
    form: Result<axum::Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if !same_origin(&headers) {
        return login_page(
            StatusCode::FORBIDDEN,
            "sign-in refused: the form was sent from another origin",
            "/",
        );
    }
    let axum::Form(form) = match form {
        Ok(f) => f,
        Err(e) => {
            return login_page(
                StatusCode::BAD_REQUEST,
                &format!("the sign-in form needs username and password fields: {e}"),
                "/",
            );
        }
    };
    let next = safe_next(form.next.as_deref()).to_owned();
    let g = gate.clone();
    let result =
        tokio::task::spawn_blocking(move || g.sign_in(&form.username, &form.password, &source))
            .await
            .unwrap_or_else(|_| Err(AuthError::Unavailable("sign-in task failed".into())));
    match result {
        Ok(session) => {
            let cookies = session_cookies(&gate, &session);
            (AppendHeaders(cookies), Redirect::to(&next)).into_response()
        }
        Err(AuthError::Throttled { retry_after_s }) => {
            let mut r = login_page(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("too many failed sign-ins: try again in {retry_after_s} s"),
                &next,
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Err(AuthError::Unavailable(detail)) => {
            eprintln!("attune: sign-in: {detail}");
            login_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "the account store is unavailable",
                &next,
            )
        }
        Err(_) => login_page(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password",
            &next,
        ),
    }
}

async fn login_once(
    State(gate): State<Arc<Gate>>,
    ClientAddress(source): ClientAddress,
    Query(q): Query<NextQuery>,
) -> Response {
    let secret = q.secret.unwrap_or_default();
    let g = gate.clone();
    let session = tokio::task::spawn_blocking(move || g.redeem_sign_in_link(&secret, &source))
        .await
        .ok()
        .flatten();
    match session {
        Some(session) => (
            AppendHeaders(session_cookies(&gate, &session)),
            Redirect::to("/"),
        )
            .into_response(),
        None => login_page(
            StatusCode::UNAUTHORIZED,
            "this sign-in link was used already or has expired: sign in with a password",
            "/",
        ),
    }
}

async fn post_logout(
    State(gate): State<Arc<Gate>>,
    ClientAddress(source): ClientAddress,
    Authed(principal): Authed,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = cookie(&headers, SESSION_COOKIE).map(str::to_owned) {
        let g = gate.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if g.sign_out(&id).is_some() {
                g.audit(&principal.actor, "logout", &principal.name, &source, "ok");
            }
        })
        .await;
    }
    (AppendHeaders(cleared_cookies()), StatusCode::NO_CONTENT).into_response()
}

#[derive(serde::Serialize)]
struct Me<'a> {
    #[serde(flatten)]
    principal: &'a Principal,
    /// Whether authentication is on (off only in library tests).
    authentication: bool,
}

async fn me(State(gate): State<Arc<Gate>>, Authed(principal): Authed) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(Me {
            principal: &principal,
            authentication: gate.enabled(),
        }),
    )
        .into_response()
}

/// `/login`, `/login/once`, `/logout`, `/api/me`.
pub fn routes(gate: Arc<Gate>) -> Router {
    Router::new()
        .route(
            "/login",
            get(get_login)
                .post(post_login)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_LOGIN_FORM_BYTES)),
        )
        .route("/login/once", get(login_once))
        .route("/logout", post(post_logout))
        .route("/api/me", get(me))
        .with_state(gate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/calls/c1")), "/calls/c1");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn origins_must_match_the_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn cookies_and_bearer_tokens_are_read() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; attune_session=abc; attune_csrf=def"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("def"));
        assert_eq!(cookie(&h, "zzz"), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer att_x"),
        );
        assert_eq!(bearer(&h), Some("att_x"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }
}
