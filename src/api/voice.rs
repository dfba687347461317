//! `POST /v1/me/voice-token`: a Twilio Access Token for the console's
//! softphone, for an agent whose contact is `client:NAME` (calls to it ring
//! `<Client>NAME</Client>`, which a Twilio Voice SDK Device registered as NAME
//! receives). Signed with `TWILIO_API_KEY_SID`/`TWILIO_API_KEY_SECRET`
//! (`twilio::access_token`), timed by Redis's clock.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::agents::{not_found, rfc3339};
use super::me::AgentCaller;
use super::{ApiError, ErrorBody};
use crate::agent::Contact;
use crate::app::AppState;

/// A Twilio Access Token with a Voice grant.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoiceTokenDoc {
    /// The JWT to give `Twilio.Device` (and `device.updateToken` when it is
    /// renewed).
    pub token: String,
    /// The Device's identity: NAME of the agent's `client:NAME` contact.
    pub identity: String,
    /// When the token stops working (RFC 3339); renew it before.
    pub expires_at: String,
}

/// Why no token was minted.
#[derive(Debug, thiserror::Error)]
pub enum VoiceTokenError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Calls to this agent ring a number or a SIP address, not a browser.
    #[error(
        "this agent's contact is not client:NAME: its calls ring {0}, not a softphone in the console"
    )]
    NotAClient(&'static str),
    #[error(
        "the softphone is not configured on this server: TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET are not set"
    )]
    NotConfigured,
}

impl IntoResponse for VoiceTokenError {
    fn into_response(self) -> Response {
        let status = match self {
            VoiceTokenError::Api(e) => return e.into_response(),
            VoiceTokenError::NotAClient(_) => StatusCode::CONFLICT,
            VoiceTokenError::NotConfigured => StatusCode::SERVICE_UNAVAILABLE,
        };
        let error = self.to_string();
        (status, Json(ErrorBody { error })).into_response()
    }
}

/// A Twilio Access Token for your softphone: for an agent whose contact is
/// `client:NAME`, a Voice grant (incoming calls; outgoing ones too when a TwiML
/// application is configured) with identity NAME, valid for
/// `SWITCHBOARD_VOICE_TOKEN_TTL_SECS` (an hour by default, at most 24 h).
#[utoipa::path(post, path = "/v1/me/voice-token", operation_id = "voice_token", tag = "me",
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "a token for the agent's Twilio Voice SDK Device", body = VoiceTokenDoc),
        (status = 401, description = "no agent token, or one that is unknown, expired or revoked (also the admin token, and a token in the URL)", body = ErrorBody),
        (status = 404, description = "the agent was deleted", body = ErrorBody),
        (status = 409, description = "the agent's contact is a number or a SIP address, not client:NAME", body = ErrorBody),
        (status = 503, description = "no admin token configured, no TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET, or Redis unavailable", body = ErrorBody),
    ))]
pub async fn token(
    State(state): State<AppState>,
    AgentCaller(id): AgentCaller,
) -> Result<Json<VoiceTokenDoc>, VoiceTokenError> {
    let Some(keys) = state.settings.voice_tokens.as_ref() else {
        return Err(VoiceTokenError::NotConfigured);
    };
    let found = state
        .engine
        .store()
        .contact_at(&id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| not_found(&id))?;
    let identity = match Contact::parse(&found.contact) {
        Some(Contact::Client(name)) => name,
        Some(Contact::Number(_)) => return Err(VoiceTokenError::NotAClient("a phone number")),
        Some(Contact::Sip(_)) => return Err(VoiceTokenError::NotAClient("a SIP address")),
        None => return Err(VoiceTokenError::NotAClient("no valid contact")),
    };
    let minted = keys.mint(&identity, found.now_secs);
    Ok(Json(VoiceTokenDoc {
        token: minted.jwt,
        identity,
        expires_at: rfc3339(minted.expires_at.saturating_mul(1000)),
    }))
}
