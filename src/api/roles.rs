//! Who may call which route of `/v1`: the one table of it (`ACCESS`), the
//! middleware that enforces it (`authorize`), and who the caller is for the
//! handlers that record it (`Caller`, `Actor`). The OpenAPI document states
//! each operation's tokens from the same table (`openapi::Roles`), so the two
//! cannot drift.
//!
//! Four kinds of token: the admin token (`SWITCHBOARD_ADMIN_TOKEN`), which may
//! do everything but an agent's own routes; supervisor tokens (`sbst_…`), which
//! read everything and may set agents' states and take callers out of a line;
//! wallboard tokens (`sbwt_…`), which read queues, agents, calls and events;
//! agent tokens (`sbat_…`), for the agent's own `/v1/me` and its events.
//!
//! Refusals: 401 for no token, or one that is unknown, expired or revoked; 403
//! for a live supervisor or wallboard token on a route its role may not use.
//! An agent token on any other route, and the admin token on `/v1/me…`, stay
//! 401 as they always were (SPEC: "an agent token is 401 on every admin
//! route"), and an agent token is not looked up in Redis for a route it cannot
//! use, so guessing at them costs Redis nothing.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, bearer_token, has_admin_token};
use crate::app::AppState;
use crate::store::Actor;
use crate::store::staff::{self, StaffRole};

/// A kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Supervisor,
    Wallboard,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Wallboard => "wallboard",
            Role::Agent => "agent",
        }
    }

    /// The OpenAPI security scheme of the role's tokens.
    pub fn scheme(self) -> &'static str {
        match self {
            Role::Admin => "bearer",
            Role::Supervisor => "supervisor_token",
            Role::Wallboard => "wallboard_token",
            Role::Agent => "agent_token",
        }
    }
}

impl From<StaffRole> for Role {
    fn from(role: StaffRole) -> Role {
        match role {
            StaffRole::Supervisor => Role::Supervisor,
            StaffRole::Wallboard => Role::Wallboard,
        }
    }
}

/// One route and the tokens it takes.
#[derive(Debug)]
pub struct Access {
    pub method: Method,
    /// As the OpenAPI document writes it.
    pub path: &'static str,
    pub roles: &'static [Role],
}

use Role::{Admin, Agent, Supervisor, Wallboard};

const ADMIN: &[Role] = &[Admin];
/// Reading queues, agents and calls: every staff token.
const READ: &[Role] = &[Admin, Supervisor, Wallboard];
/// Acting on agents and callers, and what only staff who act may read.
const ACT: &[Role] = &[Admin, Supervisor];
const OWN: &[Role] = &[Agent];

const fn access(method: Method, path: &'static str, roles: &'static [Role]) -> Access {
    Access {
        method,
        path,
        roles,
    }
}

/// Every route of `/v1` but the token-free `/v1/openapi.json`, and who may
/// call it. A route missing here is refused to every token (and a test fails).
pub const ACCESS: &[Access] = &[
    access(Method::GET, "/v1/agents", READ),
    access(Method::GET, "/v1/agents/{id}", READ),
    access(Method::PUT, "/v1/agents/{id}", ADMIN),
    access(Method::DELETE, "/v1/agents/{id}", ADMIN),
    access(Method::PUT, "/v1/agents/{id}/state", ACT),
    access(Method::GET, "/v1/agents/{id}/calls", READ),
    access(Method::POST, "/v1/agents/{id}/tokens", ADMIN),
    access(Method::DELETE, "/v1/agents/{id}/tokens", ADMIN),
    access(Method::POST, "/v1/supervisors/{name}/tokens", ADMIN),
    access(Method::DELETE, "/v1/supervisors/{name}/tokens", ADMIN),
    access(Method::GET, "/v1/queues", READ),
    access(Method::GET, "/v1/queues/{name}", READ),
    access(Method::DELETE, "/v1/queues/{name}/waiting/{call_sid}", ACT),
    access(Method::GET, "/v1/queues/{name}/callbacks", READ),
    access(
        Method::DELETE,
        "/v1/queues/{name}/callbacks/{call_sid}",
        ACT,
    ),
    access(Method::GET, "/v1/voicemails", ACT),
    access(Method::GET, "/v1/calls/{call_sid}", READ),
    access(Method::GET, "/v1/audit", ACT),
    access(Method::POST, "/v1/routing/explain", READ),
    access(
        Method::GET,
        "/v1/events",
        &[Admin, Supervisor, Wallboard, Agent],
    ),
    access(Method::GET, "/v1/me", OWN),
    access(Method::PUT, "/v1/me/state", OWN),
    access(Method::POST, "/v1/me/heartbeat", OWN),
    access(Method::GET, "/v1/me/calls", OWN),
    access(Method::POST, "/v1/me/voice-token", OWN),
    access(Method::PUT, "/v1/me/calls/{call_sid}/wrap-up", OWN),
];

/// The roles that may call `method` on the route `path` (as matched, with or
/// without the `/v1` it is nested under); `None`: not in the table.
pub fn roles_of(method: &Method, path: &str) -> Option<&'static [Role]> {
    let path = path.strip_prefix("/v1").unwrap_or(path);
    // axum answers HEAD with the GET route.
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    ACCESS
        .iter()
        .find(|a| a.method == method && a.path.strip_prefix("/v1") == Some(path))
        .map(|a| a.roles)
}

/// Whether `path` (as matched) is a route of the table, whatever the method.
fn is_route(path: &str) -> bool {
    let path = path.strip_prefix("/v1").unwrap_or(path);
    ACCESS
        .iter()
        .any(|a| a.path.strip_prefix("/v1") == Some(path))
}

/// Who a request's token belongs to, as `authorize` found it. Agent tokens
/// are not here: the agent routes' own extractor (`me::AgentCaller`) reads
/// them, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Staff { name: String, role: StaffRole },
}

impl Caller {
    /// Who made a change, for the event it emits.
    pub fn actor(&self) -> Actor {
        match self {
            Caller::Admin => Actor::Admin,
            Caller::Staff { name, .. } => Actor::Supervisor(name.clone()),
        }
    }
}

/// The `/v1` middleware: finds the route's roles in `ACCESS` and the caller's
/// token, refuses what the table does not allow, and hands the handler a
/// `Caller` in the request's extensions.
pub async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let Some(roles) = roles_of(request.method(), &path) else {
        // A method the route does not have: no handler runs, axum answers 405.
        if is_route(&path) {
            return next.run(request).await;
        }
        tracing::error!(path, method = %request.method(), "a /v1 route missing from roles::ACCESS: refused");
        return ApiError::Unauthorized.into_response();
    };
    let (mut parts, body) = request.into_parts();
    match identify(&state, &parts, roles).await {
        Ok(Some(caller)) => {
            parts.extensions.insert(caller);
        }
        // An agent token for an agent route: its extractor checks it.
        Ok(None) => {}
        Err(refused) => return refused.into_response(),
    }
    next.run(Request::from_parts(parts, body)).await
}

/// The caller of a route that `roles` may call: `Some` for the admin and a
/// staff token, `None` for a token left to the agent routes' extractor, or the
/// refusal.
async fn identify(
    state: &AppState,
    parts: &Parts,
    roles: &[Role],
) -> Result<Option<Caller>, ApiError> {
    if has_admin_token(state, &parts.headers) {
        if !roles.contains(&Admin) {
            return Err(ApiError::Unauthorized);
        }
        crate::http::listener::prove(&parts.extensions);
        return Ok(Some(Caller::Admin));
    }
    let token = bearer_token(&parts.headers);
    if staff::looks_like(token) {
        // Not `listener::prove`: like an agent token, a staff token is a
        // credential that leaks (a wallboard's screen is in plain sight).
        let Some(found) = state.engine.store().staff_of_token(token).await? else {
            return Err(ApiError::Unauthorized);
        };
        let role = Role::from(found.role);
        if !roles.contains(&role) {
            return Err(ApiError::Forbidden(format!(
                "a {} token may not do this; it may: {}",
                role.as_str(),
                may(role)
            )));
        }
        return Ok(Some(Caller::Staff {
            name: found.name,
            role: found.role,
        }));
    }
    if roles.contains(&Agent) && !token.is_empty() {
        return Ok(None);
    }
    Err(ApiError::Unauthorized)
}

/// What a role may do, for a 403's message.
fn may(role: Role) -> &'static str {
    match role {
        Supervisor => {
            "read queues, agents, calls, voicemails, events and the audit trail, set agents' states and take callers out of a line"
        }
        Wallboard => "read queues, agents, calls and events",
        Admin | Agent => "",
    }
}

/// Who made a change, for the handlers that record it: the admin or a
/// supervisor (from `authorize`'s `Caller`).
pub struct ActingCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for ActingCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .map(ActingCaller)
            .ok_or(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_found_with_or_without_the_v1_prefix() {
        assert_eq!(roles_of(&Method::GET, "/v1/agents"), Some(READ));
        assert_eq!(roles_of(&Method::GET, "/agents"), Some(READ));
        assert_eq!(roles_of(&Method::HEAD, "/agents/{id}"), Some(READ));
        assert_eq!(roles_of(&Method::PUT, "/agents/{id}"), Some(ADMIN));
        assert_eq!(roles_of(&Method::PATCH, "/agents/{id}"), None);
        assert_eq!(roles_of(&Method::GET, "/v1/nothing"), None);
    }

    #[test]
    fn each_route_is_listed_once() {
        for (i, a) in ACCESS.iter().enumerate() {
            assert!(a.path.starts_with("/v1/"), "{a:?}");
            assert!(!a.roles.is_empty(), "{a:?}");
            assert!(
                ACCESS[i + 1..]
                    .iter()
                    .all(|b| b.method != a.method || b.path != a.path),
                "{a:?} twice"
            );
        }
    }
}
