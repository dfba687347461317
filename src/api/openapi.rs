//! The OpenAPI document of the admin API, generated from the handlers' and types'
//! annotations (utoipa), so it cannot drift from the code.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{ErrorBody, agents, queues};
use crate::agent::{AgentState, StateCounts};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "switchboard admin API",
        description = "Agents and queues of switchboard, the inbound-call router for Twilio. \
                       Every path needs `Authorization: Bearer $SWITCHBOARD_ADMIN_TOKEN`."
    ),
    paths(
        agents::list,
        agents::get,
        agents::upsert,
        agents::delete,
        agents::set_state,
        queues::list,
        queues::get,
        queues::voicemails,
    ),
    components(schemas(
        agents::AgentDoc,
        agents::AgentBody,
        agents::AgentList,
        agents::StateBody,
        queues::QueueDoc,
        queues::QueueList,
        queues::VoicemailList,
        AgentState,
        StateCounts,
        ErrorBody,
    )),
    modifiers(&BearerToken),
    security(("bearer" = [])),
    tags(
        (name = "agents", description = "Agents and their states"),
        (name = "queues", description = "Queues, their agents by state and offer order"),
        (name = "voicemails", description = "Recorded voicemail messages"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme every path requires.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /v1/openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
