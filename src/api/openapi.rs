//! The OpenAPI document of the admin API, generated from the handlers' and types'
//! annotations (utoipa), so it cannot drift from the code. It states every rule
//! the handlers enforce (patterns, lengths, enums, ranges) and every status they
//! answer, so a client (or schemathesis, in CI) that follows it is never refused
//! for a reason it could not read. The one rule known only at run time, which
//! queue names exist, is added from the routing table by `document` — but only
//! for a request carrying the admin token: the document itself needs no token,
//! and the queue names are the routing table's, not for strangers. Without the
//! token the document is the static one (no enum), still true, only looser.

use std::sync::LazyLock;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::roles::{ACCESS, Role};
use super::{
    ErrorBody, agent_work, agents, audit, callbacks, events, explain, me, queues, supervisors,
    tokens, voice,
};
use crate::agent::{AgentState, SettableState, StateCounts};
use crate::app::AppState;
use crate::config::RoutingTable;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "switchboard admin API",
        description = "Agents and queues of switchboard, the inbound-call router for Twilio. \
                       Every path takes `Authorization: Bearer <token>` (never in the URL), \
                       and each operation's `security` lists the tokens it takes: \
                       `bearer` the admin token ($SWITCHBOARD_ADMIN_TOKEN), \
                       `supervisor_token` (`sbst_…`) and `wallboard_token` (`sbwt_…`) \
                       from `POST /v1/supervisors/{name}/tokens`, `agent_token` (`sbat_…`) \
                       from `POST /v1/agents/{id}/tokens`. A supervisor or wallboard token \
                       on an operation its role may not use is 403; any other token \
                       the operation does not take is 401."
    ),
    paths(
        agents::list,
        agents::get,
        agents::upsert,
        agents::delete,
        agents::set_state,
        tokens::issue,
        tokens::revoke,
        me::get,
        me::set_state,
        me::heartbeat,
        agent_work::set_my_wrap_up,
        agent_work::my_calls,
        agent_work::agent_calls,
        voice::token,
        events::stream,
        events::call,
        queues::list,
        queues::get,
        queues::remove_waiting,
        callbacks::list,
        callbacks::cancel,
        queues::voicemails,
        supervisors::issue,
        supervisors::revoke,
        audit::list,
        explain::explain,
    ),
    components(schemas(
        agents::AgentDoc,
        callbacks::CallbackList,
        crate::store::callbacks::CallbackDoc,
        agents::AgentId,
        agents::AgentBody,
        agents::AgentList,
        agents::StateBody,
        tokens::TokenRequest,
        tokens::TokenDoc,
        me::MeDoc,
        me::CallDoc,
        me::MeStateBody,
        agent_work::WrapUpBody,
        agent_work::WrapUpResult,
        agent_work::WrapUpDoc,
        agent_work::CallWrapUpDoc,
        agent_work::AgentCallDoc,
        agent_work::AgentCallList,
        voice::VoiceTokenDoc,
        events::CallEvent,
        events::CallHistory,
        queues::QueueDoc,
        queues::QueueList,
        queues::WaitingDoc,
        queues::TotalsDoc,
        crate::stats::ServiceLevelDoc,
        crate::stats::WindowDoc,
        crate::stats::TodayDoc,
        crate::stats::TrendPoint,
        crate::config::targets::Targets,
        crate::config::targets::Threshold,
        queues::VoicemailList,
        supervisors::StaffTokenRequest,
        supervisors::StaffTokenDoc,
        supervisors::StaffRoleName,
        audit::AuditList,
        explain::ExplainBody,
        crate::routing::explain::Explanation,
        crate::routing::explain::PlanQueue,
        crate::routing::explain::PlanStep,
        crate::routing::explain::ExplainedDecision,
        AgentState,
        SettableState,
        StateCounts,
        ErrorBody,
    )),
    modifiers(&BearerToken, &RequestTimeout, &Roles),
    security(("bearer" = [])),
    tags(
        (name = "agents", description = "Agents, their states and tokens"),
        (name = "me", description = "An agent's own view and state, with its agent token"),
        (name = "events", description = "Live events (Server-Sent Events) and a call's history"),
        (name = "queues", description = "Queues, their agents by state and offer order"),
        (name = "voicemails", description = "Recorded voicemail messages"),
        (name = "supervisors", description = "Supervisor and wallboard tokens"),
        (name = "routing", description = "Why calls go where they do"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme (the admin token) every path requires but
/// `/v1/me…`, and `agent_token`, which those require.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "supervisor_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a supervisor token (sbst_…)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "wallboard_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a wallboard token (sbwt_…)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "agent_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an agent token (sbat_…)"))
                    .build(),
            ),
        );
    }
}

/// The 408 that the admin router's `TimeoutLayer` answers for a request past
/// `SWITCHBOARD_REQUEST_TIMEOUT_MS` (as `{"error": …}`, via `json_errors`): any
/// operation can get it, and the handlers' annotations cannot say so.
struct RequestTimeout;

impl Modify for RequestTimeout {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let response = ResponseBuilder::new()
            .description("The request took longer than SWITCHBOARD_REQUEST_TIMEOUT_MS")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                operation
                    .responses
                    .responses
                    .insert("408".to_owned(), RefOr::T(response.clone()));
            }
        }
    }
}

/// Each operation's `security` from `roles::ACCESS` (one requirement per
/// token it takes, any one of which will do), its roles as
/// `x-switchboard-roles`, and a 403 where a supervisor or wallboard token is
/// refused: the table is the one statement of who may call what.
struct Roles;

impl Modify for Roles {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let forbidden = ResponseBuilder::new()
            .description("a supervisor or wallboard token, whose role may not do this")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for access in ACCESS {
            let Some(item) = openapi.paths.paths.get_mut(access.path) else {
                continue;
            };
            let operation = match access.method.as_str() {
                "GET" => item.get.as_mut(),
                "PUT" => item.put.as_mut(),
                "POST" => item.post.as_mut(),
                "DELETE" => item.delete.as_mut(),
                _ => None,
            };
            let Some(operation) = operation else {
                continue;
            };
            operation.security = Some(
                access
                    .roles
                    .iter()
                    .map(|r| SecurityRequirement::new::<&str, [&str; 0], &str>(r.scheme(), []))
                    .collect(),
            );
            let names: Vec<Value> = access
                .roles
                .iter()
                .map(|r| Value::from(r.as_str()))
                .collect();
            operation
                .extensions
                .get_or_insert_with(Default::default)
                .insert("x-switchboard-roles".to_owned(), Value::Array(names));
            let staff_refused = [Role::Supervisor, Role::Wallboard]
                .iter()
                .any(|r| !access.roles.contains(r));
            if staff_refused {
                let responses = &mut operation.responses.responses;
                responses
                    .entry("403".to_owned())
                    .or_insert_with(|| RefOr::T(forbidden.clone()));
            }
        }
    }
}

/// The document as `ApiDoc` derives it, kept as JSON in `src/api/openapi.json`:
/// the binary serves that, and carries none of the code that derives it
/// (utoipa writes every schema out inline: 377 KB of machine code). A test
/// keeps the file equal to what the code derives (`UPDATE_OPENAPI=1 cargo
/// test --lib openapi` rewrites it).
static DERIVED: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("openapi.json"))
        .expect("src/api/openapi.json is JSON (a test parses it)")
});

/// The document for a server with this routing table: the queue names an agent
/// may join, and that `GET /v1/queues/{name}` finds, are listed as enums.
/// Documenting only the 422/404 instead would leave schema-valid requests that
/// the server refuses (any other name); the live table is known when serving.
pub fn document(table: &RoutingTable) -> Value {
    let mut doc = DERIVED.clone();
    let names = Value::Array(
        table
            .queues()
            .iter()
            .map(|q| Value::from(q.name.as_str()))
            .collect(),
    );
    if let Some(item) = doc.pointer_mut("/components/schemas/AgentBody/properties/queues/items") {
        item["enum"] = names.clone();
    }
    // An away reason must be one of the routing file's (none configured: only
    // null), so a schema-valid body is one the handler accepts.
    let mut reasons: Vec<Value> = table
        .console
        .away_reasons
        .iter()
        .map(|r| Value::from(r.as_str()))
        .collect();
    reasons.push(Value::Null);
    for body in ["StateBody", "MeStateBody"] {
        if let Some(reason) =
            doc.pointer_mut(&format!("/components/schemas/{body}/properties/reason"))
        {
            reason["enum"] = Value::Array(reasons.clone());
        }
    }
    if let Some(Value::Array(parameters)) =
        doc.pointer_mut("/paths/~1v1~1queues~1{name}/get/parameters")
    {
        for parameter in parameters.iter_mut() {
            if parameter["name"] == "name" {
                parameter["schema"]["enum"] = names.clone();
            }
        }
    }
    doc
}

/// `GET /v1/openapi.json`: with the admin token, the live document (queue
/// names as enums); without it, the static one.
pub async fn serve(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    if super::has_admin_token(&state, &headers) {
        Json(document(state.engine.table()))
    } else {
        Json(DERIVED.clone())
    }
}

#[cfg(test)]
mod tests {
    use regex::Regex;
    use serde_json::Value;

    use super::*;
    use crate::agent::{Contact, is_valid_id, is_valid_name};
    use crate::store::requests::VOICEMAILS_KEPT;

    fn doc(table: &RoutingTable) -> Value {
        document(table)
    }

    #[test]
    fn the_served_document_is_the_one_the_code_derives() {
        let derived = serde_json::to_value(ApiDoc::openapi()).expect("the document is JSON");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/openapi.json");
            let text = serde_json::to_string_pretty(&derived).expect("JSON") + "\n";
            std::fs::write(path, text).expect("write src/api/openapi.json");
            return;
        }
        assert!(
            *DERIVED == derived,
            "src/api/openapi.json is not what the code derives: run UPDATE_OPENAPI=1 cargo test --lib openapi"
        );
    }

    fn pattern(schema: &Value) -> Regex {
        let pattern = schema["pattern"].as_str().expect("a pattern");
        Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"))
    }

    /// A small deterministic generator, so a failure is the same on every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Strings near every rule's edges: the prefixes, the characters each
    /// class allows or refuses (whitespace and control characters of every
    /// kind), and runs around each length limit.
    fn candidates() -> Vec<String> {
        const STARTS: &[&str] = &[
            "", "", "+", "+0", "+1", "client:", "sip:", "sip:a@", "sip:@", ".", "..", " ",
        ];
        const PIECES: &[&str] = &[
            "0", "1", "9", "a", "Z", ".", "_", "-", "+", "@", ":", ";", " ", "\t", "\n", "\r",
            "\u{0}", "\u{1c}", "\u{1f}", "\u{7f}", "\u{85}", "\u{9f}", "\u{a0}", "\u{1680}",
            "\u{2000}", "\u{200a}", "\u{200b}", "\u{2028}", "\u{2029}", "\u{202f}", "\u{205f}",
            "\u{3000}", "\u{feff}", "é", "😀", "[", "]", "<", ">", "%", "!", "~", "*", "'", "(",
            ")", "&", "=", "$", ",", "?", "/", "\\", "\"", "{", "#", "client:", "sip:",
        ];
        const RUNS: &[usize] = &[
            13, 14, 15, 62, 63, 64, 65, 120, 121, 122, 127, 128, 129, 189, 190, 191,
        ];
        let mut rng = Rng(0x5eed_cafe_f00d_1234);
        let mut out = Vec::new();
        for _ in 0..200_000 {
            let mut s = STARTS[rng.below(STARTS.len())].to_owned();
            for _ in 0..rng.below(6) {
                let piece = PIECES[rng.below(PIECES.len())];
                if rng.below(8) == 0 {
                    s.push_str(&piece.repeat(RUNS[rng.below(RUNS.len())]));
                } else {
                    s.push_str(piece);
                }
            }
            out.push(s);
        }
        out
    }

    #[test]
    fn the_patterns_accept_exactly_what_the_handlers_accept() {
        let doc = doc(&RoutingTable::builtin());
        let schemas = &doc["components"]["schemas"];
        let id = pattern(&schemas["AgentId"]);
        let name_schema = &schemas["AgentBody"]["properties"]["name"];
        let name = pattern(name_schema);
        let (min, max) = (
            name_schema["minLength"].as_u64().unwrap() as usize,
            name_schema["maxLength"].as_u64().unwrap() as usize,
        );
        let contact = pattern(&schemas["AgentBody"]["properties"]["contact"]);
        let mut checked = [0usize; 3];
        for s in candidates() {
            assert_eq!(id.is_match(&s), is_valid_id(&s), "id {s:?}");
            let length = s.chars().count();
            assert_eq!(
                name.is_match(&s) && (min..=max).contains(&length),
                is_valid_name(&s),
                "name {s:?}"
            );
            assert_eq!(
                contact.is_match(&s),
                Contact::parse(&s).is_some(),
                "contact {s:?}"
            );
            for (n, ok) in [
                is_valid_id(&s),
                is_valid_name(&s),
                Contact::parse(&s).is_some(),
            ]
            .into_iter()
            .enumerate()
            {
                checked[n] += usize::from(ok);
            }
        }
        // Both sides of each rule were exercised.
        assert!(checked.iter().all(|&n| n > 1000), "{checked:?}");
    }

    #[test]
    fn the_skill_name_pattern_accepts_exactly_the_skill_names() {
        let doc = doc(&RoutingTable::builtin());
        let levels = &doc["components"]["schemas"]["SkillsInput"]["oneOf"][0];
        let names = &levels["propertyNames"];
        let name = pattern(names);
        let max = names["maxLength"].as_u64().unwrap() as usize;
        // Every string of up to three of these characters, and longer runs
        // around the length limit.
        let alphabet: Vec<String> = "adnortyz09_A-é ".chars().map(String::from).collect();
        let mut candidates = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = candidates
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            candidates.extend(longer);
        }
        for n in [30, 31, 32, 33] {
            candidates.push(format!("a{}", "b".repeat(n)));
        }
        for word in ["and", "or", "not", "any", "an", "no", "nott", "ors", "anyx"] {
            candidates.push(word.to_owned());
        }
        let mut accepted = 0;
        for s in &candidates {
            let ok = crate::needs::is_skill_name(s);
            assert_eq!(name.is_match(s) && s.chars().count() <= max, ok, "{s:?}");
            accepted += usize::from(ok);
        }
        assert!(accepted > 500, "{accepted}");
        assert_eq!(levels["additionalProperties"]["maximum"], 100);
        assert_eq!(levels["maxProperties"], 64);
    }

    #[test]
    fn the_document_lists_the_routing_tables_queue_names() {
        let table = RoutingTable::parse(
            "[[queues]]\nname = \"sales\"\n[[queues]]\nname = \"support\"\n",
            "t.toml",
        )
        .unwrap();
        let doc = doc(&table);
        let names: Vec<String> = table.queues().iter().map(|q| q.name.clone()).collect();
        assert!(names.len() >= 2, "{names:?}");
        let items = &doc["components"]["schemas"]["AgentBody"]["properties"]["queues"]["items"];
        assert_eq!(items["enum"], serde_json::json!(names));
        let param = &doc["paths"]["/v1/queues/{name}"]["get"]["parameters"][0];
        assert_eq!(param["name"], "name");
        assert_eq!(param["schema"]["enum"], serde_json::json!(names));
    }

    #[test]
    fn the_voicemail_limit_range_is_the_servers() {
        let doc = doc(&RoutingTable::builtin());
        let limit = &doc["paths"]["/v1/voicemails"]["get"]["parameters"][0];
        assert_eq!(limit["name"], "limit");
        assert_eq!(limit["schema"]["minimum"], 1);
        assert_eq!(limit["schema"]["maximum"], VOICEMAILS_KEPT);
    }

    #[test]
    fn every_operation_documents_each_error_it_answers_with_the_error_body() {
        // What each handler (and the layers before it) can answer besides
        // success: 401/503 from the token checks, 408 from the admin router's
        // TimeoutLayer, 400/413 from the JSON extractor, 422/404/409 from the
        // handler itself.
        let expected: &[(&str, &[&str])] = &[
            ("list_agents", &["400", "401", "408", "422", "503"]),
            ("get_agent", &["401", "404", "408", "422", "503"]),
            (
                "put_agent",
                &["400", "401", "403", "408", "413", "422", "503"],
            ),
            ("delete_agent", &["401", "403", "404", "408", "422", "503"]),
            (
                "set_agent_state",
                &[
                    "400", "401", "403", "404", "408", "409", "413", "422", "503",
                ],
            ),
            ("list_queues", &["401", "408", "503"]),
            ("get_queue", &["401", "404", "408", "503"]),
            (
                "remove_waiting",
                &["401", "403", "404", "408", "422", "503"],
            ),
            ("list_callbacks", &["401", "404", "408", "503"]),
            (
                "cancel_callback",
                &["401", "403", "404", "408", "409", "422", "503"],
            ),
            (
                "list_voicemails",
                &["400", "401", "403", "408", "422", "503"],
            ),
            (
                "issue_agent_token",
                &["400", "401", "403", "404", "408", "413", "422", "503"],
            ),
            (
                "revoke_agent_tokens",
                &["401", "403", "404", "408", "422", "503"],
            ),
            (
                "issue_supervisor_token",
                &["400", "401", "403", "408", "413", "422", "503"],
            ),
            (
                "revoke_supervisor_tokens",
                &["401", "403", "404", "408", "422", "503"],
            ),
            ("get_audit", &["400", "401", "403", "408", "422", "503"]),
            ("get_me", &["401", "403", "404", "408", "503"]),
            (
                "set_my_state",
                &[
                    "400", "401", "403", "404", "408", "409", "413", "422", "503",
                ],
            ),
            ("heartbeat", &["401", "403", "404", "408", "503"]),
            ("stream_events", &["400", "401", "408", "429", "503"]),
            ("get_call", &["401", "404", "408", "422", "503"]),
            (
                "set_my_wrap_up",
                &[
                    "400", "401", "403", "404", "408", "409", "413", "422", "503",
                ],
            ),
            ("get_my_calls", &["401", "403", "408", "503"]),
            ("voice_token", &["401", "403", "404", "408", "409", "503"]),
            ("get_agent_calls", &["401", "404", "408", "422", "503"]),
            (
                "explain_routing",
                &["400", "401", "408", "413", "422", "503"],
            ),
        ];
        let doc = doc(&RoutingTable::builtin());
        let mut seen = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"].as_str().unwrap();
                seen.push(id.to_owned());
                let (_, statuses) = expected
                    .iter()
                    .find(|(op, _)| *op == id)
                    .unwrap_or_else(|| panic!("{method} {path}: {id} not expected"));
                let responses = operation["responses"].as_object().unwrap();
                let errors: Vec<&str> = responses
                    .keys()
                    .map(String::as_str)
                    .filter(|s| s.starts_with('4') || s.starts_with('5'))
                    .collect();
                assert_eq!(&errors, statuses, "{method} {path}");
                for status in errors {
                    assert_eq!(
                        responses[status]["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
        assert_eq!(seen.len(), expected.len(), "{seen:?}");
    }

    #[test]
    fn each_operation_states_the_tokens_of_the_roles_table() {
        let doc = doc(&RoutingTable::builtin());
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                operations += 1;
                let access = ACCESS
                    .iter()
                    .find(|a| a.path == path && a.method.as_str().eq_ignore_ascii_case(method))
                    .unwrap_or_else(|| panic!("{method} {path} is not in roles::ACCESS"));
                let schemes: Vec<&str> = operation["security"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|r| r.as_object().unwrap().keys().map(String::as_str))
                    .collect();
                let expected: Vec<&str> = access.roles.iter().map(|r| r.scheme()).collect();
                assert_eq!(schemes, expected, "{method} {path}");
                let roles: Vec<&str> = access.roles.iter().map(|r| r.as_str()).collect();
                assert_eq!(
                    operation["x-switchboard-roles"],
                    serde_json::json!(roles),
                    "{method} {path}"
                );
            }
        }
        assert_eq!(
            operations,
            ACCESS.len(),
            "every route of the table is documented"
        );
    }
}
