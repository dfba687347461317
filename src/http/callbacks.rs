//! The callback webhooks (docs/callbacks.md): the number a waiting caller keys
//! in, then, on the outbound call to the customer, its answer, the customer's
//! 1 and its status callbacks. Each is signed like every webhook (the
//! extractor checks it), and the outbound call's URLs carry the callback, its
//! try's token and its queue, covered by the signature, so a report about an
//! old try changes nothing.

use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use tracing::Instrument;

use super::webhooks::{
    Refusal, Webhook, WebhookError, emergency, paths, render, status_callback_status,
    twiml_response, within_budget,
};
use crate::agent::{is_e164, is_valid_id};
use crate::app::AppState;
use crate::config::hold::Hold;
use crate::routing::Decision;
use crate::routing::callbacks::{Pressed, fenced_query, paths as callback_paths};
use crate::store::callbacks::{Requested, TryVerdict};
use crate::twilio::params::{ParamsError, is_sid};
use crate::twilio::twiml::{self, KeyPrompt, NoKey, Speech};

/// How long a caller keying a number may pause between keys.
const NUMBER_TIMEOUT_SECS: u32 = 6;
/// How long the customer has to press 1.
const CONNECT_TIMEOUT_SECS: u32 = 8;

/// A number to call back: E.164 with at least 8 digits (shorter ones are
/// service numbers, not a caller's phone).
fn callable(number: &str) -> bool {
    is_e164(number) && number.len() > 8
}

/// A number as a caller hears it: digit by digit.
fn spoken_number(number: &str) -> String {
    let digits: Vec<String> = number
        .chars()
        .filter(char::is_ascii_digit)
        .map(String::from)
        .collect();
    digits.join(" ")
}

/// The number to call back for `keyed` (the caller's keys: 1 for its own
/// number `caller`, or a number with its country code), if the queue may call
/// it (`callback_number_prefixes`).
fn number_to_call(hold: &Hold, caller: &str, keyed: &str) -> Option<String> {
    if keyed == "1" && callable(caller) {
        return hold.may_call_back(caller, true).then(|| caller.to_owned());
    }
    Some(format!("+{keyed}")).filter(|n| callable(n) && hold.may_call_back(n, false))
}

/// The prompt for the number to call back (after the callback key): the
/// caller's own with 1, or (where the queue takes keyed numbers) another keyed
/// in; no key goes back to the hold rounds. `again`: the last number keyed was
/// not one the queue may call.
pub(super) fn number_prompt(
    state: &AppState,
    base: &str,
    queue: &str,
    hold: &Hold,
    caller: &str,
    again: bool,
) -> String {
    let table = state.engine.table();
    let wait_url = format!("{base}{}?queue={queue}", paths::WAIT);
    let own = callable(caller) && hold.may_call_back(caller, true);
    let mut prompt = String::new();
    if again {
        prompt.push_str("That was not a number we can call. ");
    }
    match (own, hold.takes_keyed_numbers()) {
        (true, true) => prompt.push_str(&format!(
            "To be called back at {}, keeping your place in line, press 1, then pound. To be called at another number, enter it with its country code, then press pound.",
            spoken_number(caller)
        )),
        (true, false) => prompt.push_str(&format!(
            "To be called back at {}, keeping your place in line, press 1, then pound.",
            spoken_number(caller)
        )),
        (false, true) => prompt.push_str(
            "To be called back, keeping your place in line, enter your number with its country code, then press pound.",
        ),
        (false, false) => {
            return back_in_line(
                &wait_url,
                "Sorry, we cannot call you back at your number. You keep your place in line.",
                table.speech(queue),
            );
        }
    }
    let action = format!(
        "{base}{}?queue={queue}{}",
        callback_paths::NUMBER,
        if again { "&again=1" } else { "" }
    );
    twiml::key_prompt(&KeyPrompt {
        prompt: &prompt,
        action: &action,
        num_digits: None,
        finish_on_key: "#",
        timeout_secs: NUMBER_TIMEOUT_SECS,
        no_key: NoKey::Redirect(&wait_url),
        speech: table.speech(queue),
    })
}

const CANNOT_NOW: &str = "Sorry, we cannot call you back now. You keep your place in line.";

/// `said`, then back to the hold rounds (`wait_url`), in the same place.
fn back_in_line(wait_url: &str, said: &str, speech: &Speech) -> String {
    twiml::key_prompt(&KeyPrompt {
        prompt: said,
        action: wait_url,
        num_digits: Some(1),
        finish_on_key: "",
        timeout_secs: 1,
        no_key: NoKey::Redirect(wait_url),
        speech,
    })
}

#[derive(serde::Deserialize)]
struct NumberQuery {
    queue: String,
    #[serde(default)]
    again: Option<String>,
}

/// `POST /twilio/voice/callback/number?queue=…`: the number a waiting caller
/// keyed in (or 1 for its own). A number that is one becomes a callback that
/// keeps the caller's place; the caller hears it confirmed and is hung up on.
/// One that is not is asked for again, once, then the caller goes back to its
/// hold rounds.
pub async fn number(
    State(state): State<AppState>,
    hook: Webhook,
) -> Result<Response, WebhookError> {
    let Webhook { params, uri, base } = hook;
    let call_sid = params.call_sid()?;
    let query: NumberQuery = serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|_| Refusal::Params(ParamsError::Missing("queue")))?;
    if !is_valid_id(&query.queue) {
        return Err(Refusal::Params(ParamsError::Malformed("queue")).into());
    }
    let queue = query.queue.as_str();
    let caller = params.optional_text("From").unwrap_or("");
    let keyed = params.get("Digits").unwrap_or("");
    let wait_url = format!("{base}{}?queue={queue}", paths::WAIT);
    let speech = state.engine.table().speech(queue).clone();
    let Ok(hold) = state.engine.callbacks_of(queue) else {
        return Ok(twiml_response(back_in_line(&wait_url, CANNOT_NOW, &speech)));
    };
    let Some(to) = number_to_call(hold, caller, keyed) else {
        if query.again.is_some() {
            return Ok(twiml_response(back_in_line(
                &wait_url,
                "Sorry, that was not a number we can call. You keep your place in line.",
                &speech,
            )));
        }
        return Ok(twiml_response(number_prompt(
            &state, &base, queue, hold, caller, true,
        )));
    };
    // The number the caller called is the one that calls back.
    let from = params.optional_text("To").unwrap_or("").to_owned();
    let span = tracing::info_span!("call", call_sid, queue);
    async {
        let requested = within_budget(
            &state,
            state.engine.request_callback(call_sid, queue, &to, &from),
        )
        .await
        .map_err(|e| {
            let keep_waiting = Decision::Wait {
                queue: queue.to_owned(),
                position: 0,
                estimated_wait_secs: None,
            };
            WebhookError::store(
                e,
                "callback not requested: the caller keeps waiting on the line",
                render(&state, &base, call_sid, &keep_waiting),
            )
        })?;
        let answer = match requested {
            Some(Requested::Callback { .. }) => twiml::say_and_hang_up(
                &format!(
                    "Thank you. We will call you back at {}, and you keep your place in line. Goodbye.",
                    spoken_number(&to)
                ),
                &speech,
            ),
            Some(Requested::Not(outcome)) => {
                let decision = state
                    .engine
                    .decide(queue, outcome, false)
                    .map_err(|e| WebhookError::store(e, "callback not requested", emergency(&state, &base)))?;
                render(&state, &base, call_sid, &decision)
            }
            None => back_in_line(&wait_url, CANNOT_NOW, &speech),
        };
        Ok(twiml_response(answer))
    }
    .instrument(span)
    .await
}

/// The callback, its try and its queue, from an outbound call's URL.
#[derive(serde::Deserialize)]
struct TryQuery {
    call: String,
    token: String,
    queue: String,
    /// `agent` for an agent-first try.
    #[serde(default)]
    first: Option<String>,
}

impl TryQuery {
    fn parse(uri: &Uri) -> Result<TryQuery, Refusal> {
        let q: TryQuery = serde_urlencoded::from_str(uri.query().unwrap_or(""))
            .map_err(|_| Refusal::Params(ParamsError::Missing("call, token and queue")))?;
        let token_ok = q.token.len() == 32 && q.token.bytes().all(|b| b.is_ascii_hexdigit());
        let first_ok = q.first.as_deref().is_none_or(|f| f == "agent");
        if !is_sid(&q.call, "CA") || !token_ok || !is_valid_id(&q.queue) || !first_ok {
            return Err(Refusal::Params(ParamsError::Malformed(
                "call, token, queue or first",
            )));
        }
        Ok(q)
    }

    /// The try rang the agent first.
    fn agent_first(&self) -> bool {
        self.first.is_some()
    }

    /// The query of the try's next URLs: the same try.
    fn fenced(&self) -> String {
        fenced_query(&self.call, &self.token, &self.queue, self.agent_first())
    }

    fn connect_url(&self, base: &str) -> String {
        format!("{base}{}?{}", callback_paths::CONNECT, self.fenced())
    }
}

/// The prompt the customer hears: press 1 for the agent waiting for them.
fn customer_prompt(state: &AppState, base: &str, attempt: &TryQuery, again: bool) -> String {
    let table = state.engine.table();
    let prompt = if again {
        "Press 1 to speak to an agent now."
    } else {
        "Hello, this is the call back you asked for. Press 1 to speak to an agent now."
    };
    twiml::key_prompt(&KeyPrompt {
        prompt,
        action: &attempt.connect_url(base),
        num_digits: Some(1),
        finish_on_key: "",
        timeout_secs: CONNECT_TIMEOUT_SECS,
        no_key: NoKey::HangUp("We will try again later. Goodbye."),
        speech: table.speech(&attempt.queue),
    })
}

/// Agent first: the agent answered; it hears who it calls back, and the
/// customer is dialled from the number the caller called.
fn dial_customer(state: &AppState, base: &str, attempt: &TryQuery, to: &str, from: &str) -> String {
    let fenced = attempt.fenced();
    twiml::dial_customer(&twiml::CustomerDial {
        announcement: &format!(
            "Calling back a caller of {} at {}.",
            attempt.queue,
            spoken_number(to)
        ),
        to,
        caller_id: from,
        timeout_secs: crate::routing::callbacks::CUSTOMER_RING_SECS,
        action: &format!("{base}{}?{fenced}", callback_paths::DIALED),
        answered_callback: &format!(
            "{base}{}?{fenced}#{}",
            callback_paths::CUSTOMER,
            twiml::CONNECTION_OVERRIDES
        ),
        speech: state.engine.table().speech(&attempt.queue),
    })
}

/// `POST /twilio/voice/callback/customer?call=…&token=…&queue=…`: agent
/// first, the customer's leg's status callback: its answer connects the
/// callback (the agent's call becomes the queue's answered call). Twilio
/// ignores the answer; one not applied is answered 503 to come again.
pub async fn customer(
    State(state): State<AppState>,
    hook: Webhook,
) -> Result<Response, WebhookError> {
    let Webhook { params, uri, .. } = hook;
    let attempt = TryQuery::parse(&uri)?;
    let outbound = params.sid("ParentCallSid", "CA")?;
    let status = status_callback_status(&params)?;
    if status.as_str() != "in-progress" {
        return Ok(twiml_response(twiml::empty()));
    }
    let span = tracing::info_span!("callback", call_sid = attempt.call, outbound);
    async {
        within_budget(
            &state,
            state
                .engine
                .callback_bridged(&attempt.call, &attempt.token, outbound, &attempt.queue),
        )
        .await
        .map_err(|e| {
            WebhookError::unapplied(
                e,
                "callback's customer answer not applied: answered 503 for Twilio to send it again",
            )
        })?;
        Ok(twiml_response(twiml::empty()))
    }
    .instrument(span)
    .await
}

/// `POST /twilio/voice/callback/dialed?call=…&token=…&queue=…`: agent first,
/// the `<Dial>` to the customer is over. Answered (`completed`, `answered`):
/// the callback was connected (if its answer's report was lost, now) and the
/// call ends as any call. Otherwise the customer was not reached: the try is
/// over, and the agent hears so.
pub async fn dialed(
    State(state): State<AppState>,
    hook: Webhook,
) -> Result<Response, WebhookError> {
    let Webhook { params, uri, .. } = hook;
    let attempt = TryQuery::parse(&uri)?;
    let outbound = params.call_sid()?;
    let dial_status = params.dial_call_status()?;
    let reached = matches!(dial_status.as_str(), "completed" | "answered");
    let span = tracing::info_span!(
        "callback",
        call_sid = attempt.call,
        outbound,
        dial_status = dial_status.as_str()
    );
    async {
        let engine = &state.engine;
        let applied = async {
            if reached {
                engine
                    .callback_bridged(&attempt.call, &attempt.token, outbound, &attempt.queue)
                    .await?;
                engine.store().end_call(outbound).await.map(|_| ())
            } else {
                let status = match dial_status.as_str() {
                    "busy" => "busy",
                    "failed" => "failed",
                    "canceled" => "canceled",
                    _ => "no-answer",
                };
                engine
                    .callback_status(
                        &attempt.call,
                        &attempt.token,
                        outbound,
                        status,
                        &attempt.queue,
                        attempt.agent_first(),
                    )
                    .await
            }
        };
        within_budget(&state, applied).await.map_err(|e| {
            WebhookError::store(
                e,
                "callback's dial not applied: its status callback or deadline settles the try",
                twiml::hangup(),
            )
        })?;
        state.connect_waiting_soon();
        Ok(twiml_response(if reached {
            twiml::hangup()
        } else {
            twiml::say_and_hang_up(
                "The customer did not answer. We will try again later.",
                state.engine.table().speech(&attempt.queue),
            )
        }))
    }
    .instrument(span)
    .await
}

/// `POST /twilio/voice/callback/answer?call=…&token=…&queue=…`: the customer
/// answered (the outbound call's `Url`). With answering machine detection,
/// `AnsweredBy` says whether a person did: a machine or fax ends the try
/// without a message.
pub async fn answer(
    State(state): State<AppState>,
    hook: Webhook,
) -> Result<Response, WebhookError> {
    let Webhook { params, uri, base } = hook;
    let attempt = TryQuery::parse(&uri)?;
    let outbound = params.call_sid()?;
    let answered_by = params.optional_text("AnsweredBy").unwrap_or("");
    let machine = answered_by.starts_with("machine") || answered_by == "fax";
    let span = tracing::info_span!("callback", call_sid = attempt.call, outbound, answered_by);
    async {
        let verdict = within_budget(
            &state,
            state.engine.callback_answered(
                &attempt.call,
                &attempt.token,
                outbound,
                machine,
                &attempt.queue,
            ),
        )
        .await
        .map_err(|e| {
            WebhookError::store(
                e,
                "callback answer not applied: hung up; the try's deadline ends it",
                twiml::hangup(),
            )
        })?;
        Ok(twiml_response(match verdict {
            TryVerdict::Prompt { to, from, .. } if attempt.agent_first() => {
                dial_customer(&state, &base, &attempt, &to, &from)
            }
            TryVerdict::Prompt { .. } => customer_prompt(&state, &base, &attempt, false),
            _ => twiml::hangup(),
        }))
    }
    .instrument(span)
    .await
}

/// `POST /twilio/voice/callback/connect?call=…&token=…&queue=…`: the
/// customer's key. 1 rings the reserved agent (the outbound call becomes the
/// queue's call); another key asks again.
pub async fn connect(
    State(state): State<AppState>,
    hook: Webhook,
) -> Result<Response, WebhookError> {
    let Webhook { params, uri, base } = hook;
    let attempt = TryQuery::parse(&uri)?;
    let outbound = params.call_sid()?;
    if params.get("Digits") != Some("1") {
        return Ok(twiml_response(customer_prompt(
            &state, &base, &attempt, true,
        )));
    }
    let span = tracing::info_span!("callback", call_sid = attempt.call, outbound);
    async {
        let pressed = within_budget(
            &state,
            state
                .engine
                .callback_connect(&attempt.call, &attempt.token, outbound, &attempt.queue),
        )
        .await
        .map_err(|e| {
            WebhookError::store(
                e,
                "callback not connected: the customer gets the emergency answer",
                emergency(&state, &base),
            )
        })?;
        let speech = state.engine.table().speech(&attempt.queue);
        Ok(twiml_response(match pressed {
            Pressed::Dial(decision) => render(&state, &base, outbound, &decision),
            Pressed::Later => twiml::say_and_hang_up(
                "Sorry, the agent is no longer free. We will call you back. Goodbye.",
                speech,
            ),
            Pressed::Over => twiml::say_and_hang_up(
                "Sorry, this call back can no longer be connected. Goodbye.",
                speech,
            ),
        }))
    }
    .instrument(span)
    .await
}

/// `POST /twilio/voice/callback/status?call=…&token=…&queue=…`: the outbound
/// call's status callback. Twilio ignores the answer; one that could not be
/// applied is answered 503 for Twilio to send it again.
pub async fn status(
    State(state): State<AppState>,
    hook: Webhook,
) -> Result<Response, WebhookError> {
    let Webhook { params, uri, .. } = hook;
    let attempt = TryQuery::parse(&uri)?;
    let outbound = params.call_sid()?;
    let status = status_callback_status(&params)?;
    let span = tracing::info_span!(
        "callback",
        call_sid = attempt.call,
        outbound,
        call_status = status.as_str()
    );
    async {
        within_budget(
            &state,
            state.engine.callback_status(
                &attempt.call,
                &attempt.token,
                outbound,
                status.as_str(),
                &attempt.queue,
                attempt.agent_first(),
            ),
        )
        .await
        .map_err(|e| {
            WebhookError::unapplied(
                e,
                "callback status not applied: answered 503 for Twilio to send it again",
            )
        })?;
        state.connect_waiting_soon();
        Ok(twiml_response(twiml::empty()))
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::super::webhooks::spoken_key;
    use super::*;

    #[test]
    fn only_e164_numbers_are_called_back() {
        assert!(callable("+15551230001"));
        assert!(callable("+4930123456"));
        for bad in [
            "15551230001",
            "+1555",
            "+1234567890123456",
            "+1555-123-0001",
            "anonymous",
            "+",
        ] {
            assert!(!callable(bad), "{bad}");
        }
        assert_eq!(spoken_number("+1555"), "1 5 5 5");
        assert_eq!(spoken_key('*'), "star");
    }
}
