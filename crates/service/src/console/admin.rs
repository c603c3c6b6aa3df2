//! The admin page (`/admin`) and its JSON (`/api/admin/...`): people's accounts (list, add,
//! disable or enable, set a password) and API tokens (list, create, revoke). Admins only (403
//! for everyone else); every POST is a JSON body on a session, so the session's CSRF token and
//! the Origin check apply ([`crate::auth::web::Authed`]); every change is audited with who and
//! from where ([`crate::auth::manage`]). The page renders every value as text (no markup from
//! data) and loads its script from `/static/admin.js` (no inline script).

use super::*;
use crate::auth::manage::{self, ManageError};

/// `/admin`: users and tokens.
pub(super) async fn admin_page(Authed(who): Authed) -> Response {
    if !who.may(Access::Administer) {
        return forbidden("managing users and tokens is for admins");
    }
    page(StatusCode::OK, PAGE_ADMIN)
}

fn manage_failed(e: &ManageError) -> Response {
    match e {
        ManageError::Invalid(m) => json_error(StatusCode::BAD_REQUEST, m.clone()),
        ManageError::Store(attune_qa::store::StoreError::Record(m)) if m.starts_with("no ") => {
            json_error(StatusCode::NOT_FOUND, m.clone())
        }
        ManageError::Store(attune_qa::store::StoreError::Record(m)) => {
            json_error(StatusCode::BAD_REQUEST, m.clone())
        }
        ManageError::Store(e) => {
            eprintln!("attune: admin: store: {e}");
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the store failed; the server's log says why".into(),
            )
        }
    }
}

/// Largest admin request body, bytes.
const MAX_BODY_BYTES: usize = 16 << 10;

/// The JSON body of an admin's request, read only once the caller is known to be an admin
/// (so everyone else gets 403 whatever they send): 415 for another content type, 400 for bad
/// JSON, 413 above [`MAX_BODY_BYTES`].
fn admin_body<T: serde::de::DeserializeOwned>(
    who: &Principal,
    headers: &axum::http::HeaderMap,
    body: &Bytes,
) -> Result<T, Box<Response>> {
    if !who.may(Access::Administer) {
        return Err(Box::new(forbidden(
            "managing users and tokens is for admins",
        )));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some("application/json") {
        return Err(Box::new(json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send application/json, not {content_type:?}"),
        )));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(Box::new(json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_BODY_BYTES} bytes"),
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(json_error(
            StatusCode::BAD_REQUEST,
            format!("bad request body: {e}"),
        ))
    })
}

/// Runs `work` on the store for an admin; the answer is its JSON (or the error).
async fn admin_work<T: Serialize + Send + 'static>(
    state: &ConsoleState,
    who: &Principal,
    status: StatusCode,
    work: impl FnOnce(&mut attune_qa::store::Store) -> Result<T, ManageError> + Send + 'static,
) -> Response {
    if !who.may(Access::Administer) {
        return forbidden("managing users and tokens is for admins");
    }
    let Some(recorder) = state.recorder.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, NO_STORE.to_owned());
    };
    match blocking(move || recorder.manage(work)).await {
        Some(Ok(body)) => (status, axum::Json(body)).into_response(),
        Some(Err(e)) => manage_failed(&e),
        None => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store task failed".into(),
        ),
    }
}

/// One account as the admin page lists it (never its password hash).
#[derive(Serialize)]
struct UserRow {
    name: String,
    role: String,
    teams: Vec<String>,
    agent_id: Option<String>,
    disabled: bool,
    created_at: String,
    updated_at: String,
}

/// `GET /api/admin/users`.
pub(super) async fn api_users(State(state): State<ConsoleState>, Authed(who): Authed) -> Response {
    admin_work(&state, &who, StatusCode::OK, |store| {
        let users: Vec<UserRow> = store
            .users()?
            .into_iter()
            .map(|u| UserRow {
                name: u.name,
                role: u.role,
                teams: u.teams,
                agent_id: u.agent_id,
                disabled: u.disabled,
                created_at: u.created_at,
                updated_at: u.updated_at,
            })
            .collect();
        Ok(serde_json::json!({ "users": users }))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct NewUserBody {
    name: String,
    role: String,
    #[serde(default)]
    teams: Vec<String>,
    #[serde(default)]
    agent_id: Option<String>,
    password: String,
}

/// `POST /api/admin/users` `{name, role, teams, agent_id, password}`: 201.
pub(super) async fn api_add_user(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    ClientAddress(source): ClientAddress,
    headers: axum::http::HeaderMap,
    raw: Bytes,
) -> Response {
    let body: NewUserBody = match admin_body(&who, &headers, &raw) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let actor = who.actor.clone();
    admin_work(&state, &who, StatusCode::CREATED, move |store| {
        let role = manage::add_user(
            store,
            &manage::NewUser {
                name: &body.name,
                role: &body.role,
                teams: &body.teams,
                agent_id: body.agent_id.as_deref(),
                password: &body.password,
            },
            &actor,
            &source,
        )?;
        Ok(serde_json::json!({ "name": body.name, "role": role }))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct DisableBody {
    disabled: bool,
}

/// `POST /api/admin/users/{name}/disabled` `{disabled}`: disables or enables an account; its
/// sessions end at once.
pub(super) async fn api_disable_user(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    ClientAddress(source): ClientAddress,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    raw: Bytes,
) -> Response {
    let body: DisableBody = match admin_body(&who, &headers, &raw) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let (actor, gate, user) = (who.actor.clone(), state.gate.clone(), name.clone());
    admin_work(&state, &who, StatusCode::OK, move |store| {
        manage::set_disabled(store, &user, body.disabled, &actor, &source)?;
        if body.disabled {
            gate.end_sessions_of(&user);
        }
        Ok(serde_json::json!({ "name": user, "disabled": body.disabled }))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct PasswordBody {
    password: String,
}

/// `POST /api/admin/users/{name}/password` `{password}`: sets a new password; the account's
/// sessions end at once.
pub(super) async fn api_set_password(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    ClientAddress(source): ClientAddress,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    raw: Bytes,
) -> Response {
    let body: PasswordBody = match admin_body(&who, &headers, &raw) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let (actor, gate, user) = (who.actor.clone(), state.gate.clone(), name.clone());
    admin_work(&state, &who, StatusCode::OK, move |store| {
        manage::set_password(store, &user, &body.password, &actor, &source)?;
        gate.end_sessions_of(&user);
        Ok(serde_json::json!({ "name": user, "password": "changed" }))
    })
    .await
}

/// `GET /api/admin/tokens`: every token (ids and names, never the tokens or their hashes).
pub(super) async fn api_tokens(State(state): State<ConsoleState>, Authed(who): Authed) -> Response {
    admin_work(&state, &who, StatusCode::OK, |store| {
        let tokens = store.tokens()?;
        let mut rows = Vec::with_capacity(tokens.len());
        for t in tokens {
            let may_resume = store.token_may_resume(&t.token_id)?;
            let mut row = serde_json::to_value(&t).unwrap_or_default();
            row["may_resume"] = serde_json::Value::Bool(may_resume);
            rows.push(row);
        }
        Ok(serde_json::json!({ "tokens": rows }))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct NewTokenBody {
    role: String,
    #[serde(default)]
    teams: Vec<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    expires_days: Option<f64>,
    #[serde(default)]
    may_resume: bool,
}

/// `POST /api/admin/tokens` `{role, teams, name, expires_days, may_resume}`: 201 with the
/// token, shown this once (only its SHA-256 is kept).
pub(super) async fn api_create_token(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    ClientAddress(source): ClientAddress,
    headers: axum::http::HeaderMap,
    raw: Bytes,
) -> Response {
    let body: NewTokenBody = match admin_body(&who, &headers, &raw) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let actor = who.actor.clone();
    admin_work(&state, &who, StatusCode::CREATED, move |store| {
        let (token, record) = manage::create_token(
            store,
            &manage::NewToken {
                role: &body.role,
                teams: &body.teams,
                name: &body.name,
                expires_days: body.expires_days,
                may_resume: body.may_resume,
            },
            &actor,
            &source,
        )?;
        let mut row = serde_json::to_value(&record).unwrap_or_default();
        row["may_resume"] = serde_json::Value::Bool(body.may_resume);
        row["token"] = serde_json::Value::String(token);
        Ok(row)
    })
    .await
}

/// `POST /api/admin/tokens/{token_id}/revoke`: servers refuse it within the token cache time.
pub(super) async fn api_revoke_token(
    State(state): State<ConsoleState>,
    Authed(who): Authed,
    ClientAddress(source): ClientAddress,
    Path(token_id): Path<String>,
) -> Response {
    let actor = who.actor.clone();
    admin_work(&state, &who, StatusCode::OK, move |store| {
        manage::revoke_token(store, &token_id, &actor, &source)?;
        Ok(serde_json::json!({ "token_id": token_id, "revoked": true }))
    })
    .await
}
