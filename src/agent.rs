//! What an agent is: its id, the contact a call dials, and the states it moves
//! through. Validation lives here so the admin API, the routing file and the
//! TwiML writer agree on one definition of a valid id, number or identity.

use std::fmt;

use serde::Serialize;

use crate::needs::{Skills, SkillsInput, check_skills};

/// An agent or queue id: `[A-Za-z0-9._-]{1,64}`, safe inside Redis keys and URLs,
/// except `.` and `..`: as a URL path segment those are resolved away by every
/// HTTP client, so `/v1/agents/..` could never be reached.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// An agent's display name: 1 to 128 characters, no control characters, not
/// only whitespace.
pub fn is_valid_name(name: &str) -> bool {
    (1..=128).contains(&name.chars().count())
        && !name.chars().any(char::is_control)
        && name.chars().any(|c| !c.is_whitespace())
}

/// An E.164 number: `+`, a non-zero digit, then 1 to 14 more digits.
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A Twilio Client identity as `<Client>` accepts it: no spaces or markup.
pub fn is_client_identity(identity: &str) -> bool {
    (1..=121).contains(&identity.len())
        && identity
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b'+'))
}

/// Where a call to an agent goes: the three nouns `<Dial>` can ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    /// `+15551230001` → `<Number>`
    Number(String),
    /// `client:alice` → `<Client>` (the stored form keeps the prefix)
    Client(String),
    /// `sip:alice@example.com` → `<Sip>` (the whole URI)
    Sip(String),
}

impl Contact {
    /// Parses a contact as the admin API and the routing file write it.
    pub fn parse(raw: &str) -> Option<Contact> {
        if is_e164(raw) {
            return Some(Contact::Number(raw.to_owned()));
        }
        if let Some(identity) = raw.strip_prefix("client:") {
            return is_client_identity(identity).then(|| Contact::Client(identity.to_owned()));
        }
        if let Some(address) = raw.strip_prefix("sip:") {
            // Twilio refuses a <Sip> URI longer than 255 characters, prefix included.
            return (raw.len() <= 255 && is_sip_address(address))
                .then(|| Contact::Sip(raw.to_owned()));
        }
        None
    }
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Number(n) => f.write_str(n),
            Contact::Client(id) => write!(f, "client:{id}"),
            Contact::Sip(uri) => f.write_str(uri),
        }
    }
}

/// `user@host` (optionally `;params`), nothing a SIP URI cannot hold unescaped.
/// The user part is up to 64 characters and the rest up to 190, so the rule is
/// one regular expression in the OpenAPI document (and the whole stays within
/// the 255 characters allowed before).
fn is_sip_address(address: &str) -> bool {
    let Some((user, host)) = address.split_once('@') else {
        return false;
    };
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/%:[]".contains(&b);
    (1..=64).contains(&user.len())
        && (1..=190).contains(&host.len())
        && !host.starts_with(['.', ';', ':'])
        && user.bytes().all(allowed)
        && host.bytes().all(allowed)
}

/// Longest heartbeat interval an agent may be given: a day.
pub const MAX_HEARTBEAT_SECS: u32 = 86_400;

/// What an agent is configured as (not its live state), checked: what
/// `PUT /v1/agents/{id}` and `switchboard agents import` store, through the
/// same `AgentSpec::check`, so both take and refuse exactly the same agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    pub id: String,
    /// Without the whitespace around it.
    pub name: String,
    /// As stored: `Contact`'s `Display`.
    pub contact: String,
    /// Each once, in the order first given.
    pub queues: Vec<String>,
    /// 0: no heartbeats expected.
    pub heartbeat_secs: u32,
    /// What the agent can do, and how well (`crate::needs`): what a call's
    /// needs and a queue's steps are matched against.
    pub skills: Skills,
}

/// An agent's setting that breaks its rule, naming the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("agent id {0:?} must match [A-Za-z0-9._-]{{1,64}} and not be . or ..")]
    Id(String),
    #[error("name must be 1 to 128 characters, no control characters, not only whitespace")]
    Name,
    #[error(
        "contact {0:?} must be an E.164 number (+15551230001), client:IDENTITY or sip:user@host"
    )]
    Contact(String),
    #[error(
        "contact {contact:?} is not allowed by the routing file's [contacts] allow {patterns:?}"
    )]
    ContactNotAllowed {
        contact: String,
        patterns: Vec<String>,
    },
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    #[error("heartbeat_secs must be 0 to {MAX_HEARTBEAT_SECS}")]
    HeartbeatSecs,
    #[error("skills: {0}")]
    Skills(String),
}

/// Every problem of one agent, the first (in the order of the fields) apart:
/// the API answers that one, an agents file lists them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors {
    pub first: SpecError,
    pub more: Vec<SpecError>,
}

impl SpecErrors {
    pub fn all(self) -> impl Iterator<Item = SpecError> {
        std::iter::once(self.first).chain(self.more)
    }
}

impl SpecError {
    /// The setting it is about, as the API body and the agents file name it.
    pub fn field(&self) -> &'static str {
        match self {
            SpecError::Id(_) => "id",
            SpecError::Name => "name",
            SpecError::Contact(_) | SpecError::ContactNotAllowed { .. } => "contact",
            SpecError::UnknownQueue(_) => "queues",
            SpecError::HeartbeatSecs => "heartbeat_secs",
            SpecError::Skills(_) => "skills",
        }
    }
}

impl AgentSpec {
    /// Checks an agent as given against `table` (its queues, its `[contacts]`
    /// allow list): the agent as stored, or every problem.
    pub fn check(
        table: &crate::config::RoutingTable,
        id: &str,
        name: &str,
        contact: &str,
        queues: &[String],
        heartbeat_secs: Option<i64>,
        skills: Option<&SkillsInput>,
    ) -> Result<AgentSpec, SpecErrors> {
        let mut errors = Vec::new();
        if !is_valid_id(id) {
            errors.push(SpecError::Id(id.to_owned()));
        }
        if !is_valid_name(name) {
            errors.push(SpecError::Name);
        }
        let stored_contact = match Contact::parse(contact) {
            Some(parsed) => {
                let stored = parsed.to_string();
                if !table.contacts.allows(&stored) {
                    errors.push(SpecError::ContactNotAllowed {
                        contact: contact.to_owned(),
                        patterns: table.contacts.patterns().to_vec(),
                    });
                }
                stored
            }
            None => {
                errors.push(SpecError::Contact(contact.to_owned()));
                String::new()
            }
        };
        let mut unique: Vec<String> = Vec::new();
        for queue in queues {
            if table.queue(queue).is_none() {
                errors.push(SpecError::UnknownQueue(queue.clone()));
            } else if !unique.contains(queue) {
                unique.push(queue.clone());
            }
        }
        let heartbeat_secs = match heartbeat_secs.map(u32::try_from) {
            None => 0,
            Some(Ok(secs)) if secs <= MAX_HEARTBEAT_SECS => secs,
            Some(_) => {
                errors.push(SpecError::HeartbeatSecs);
                0
            }
        };
        let skills = match skills.map(check_skills) {
            None => Skills::new(),
            Some(Ok(skills)) => skills,
            Some(Err(why)) => {
                errors.push(SpecError::Skills(why));
                Skills::new()
            }
        };
        let mut errors = errors.into_iter();
        if let Some(first) = errors.next() {
            return Err(SpecErrors {
                first,
                more: errors.collect(),
            });
        }
        Ok(AgentSpec {
            id: id.to_owned(),
            name: name.trim().to_owned(),
            contact: stored_contact,
            queues: unique,
            heartbeat_secs,
            skills,
        })
    }
}

/// The states of SPEC section 2, as the admin API shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    Offline,
    Available,
    Reserved,
    OnCall,
    WrapUp,
    Away,
}

impl AgentState {
    pub const ALL: [AgentState; 6] = [
        AgentState::Offline,
        AgentState::Available,
        AgentState::Reserved,
        AgentState::OnCall,
        AgentState::WrapUp,
        AgentState::Away,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Offline => "offline",
            AgentState::Available => "available",
            AgentState::Reserved => "reserved",
            AgentState::OnCall => "on_call",
            AgentState::WrapUp => "wrap_up",
            AgentState::Away => "away",
        }
    }

    pub fn parse(raw: &str) -> Option<AgentState> {
        AgentState::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// How many agents are in each state: a queue document's `agents`, and the
/// `switchboard_agents` gauges.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StateCounts {
    offline: usize,
    available: usize,
    reserved: usize,
    on_call: usize,
    wrap_up: usize,
    away: usize,
}

impl StateCounts {
    pub fn of(states: impl IntoIterator<Item = AgentState>) -> StateCounts {
        let mut counts = StateCounts::default();
        for state in states {
            *counts.slot(state) += 1;
        }
        counts
    }

    fn slot(&mut self, state: AgentState) -> &mut usize {
        match state {
            AgentState::Offline => &mut self.offline,
            AgentState::Available => &mut self.available,
            AgentState::Reserved => &mut self.reserved,
            AgentState::OnCall => &mut self.on_call,
            AgentState::WrapUp => &mut self.wrap_up,
            AgentState::Away => &mut self.away,
        }
    }

    /// Adds `n` agents in `state`.
    pub fn add(&mut self, state: AgentState, n: usize) {
        *self.slot(state) += n;
    }

    /// Every state with its count, zeros included.
    pub fn by_state(mut self) -> impl Iterator<Item = (AgentState, usize)> {
        AgentState::ALL
            .map(|state| (state, *self.slot(state)))
            .into_iter()
    }
}

/// The states an operator may set through `PUT /v1/agents/{id}/state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SettableState {
    Available,
    Away,
    Offline,
}

impl SettableState {
    pub fn parse(raw: &str) -> Option<SettableState> {
        match raw {
            "available" => Some(SettableState::Available),
            "away" => Some(SettableState::Away),
            "offline" => Some(SettableState::Offline),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SettableState::Available => "available",
            SettableState::Away => "away",
            SettableState::Offline => "offline",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_parse_into_the_three_dial_nouns() {
        assert_eq!(
            Contact::parse("+15551230001"),
            Some(Contact::Number("+15551230001".into()))
        );
        assert_eq!(
            Contact::parse("client:alice"),
            Some(Contact::Client("alice".into()))
        );
        assert_eq!(
            Contact::parse("sip:alice@example.com"),
            Some(Contact::Sip("sip:alice@example.com".into()))
        );
        for bad in [
            "",
            "5551230001",
            "+0123",
            "+1",
            "client:",
            "client:a b",
            "sip:alice",
            "sip:@host",
            "sip:a@<b>",
            "tel:+1555",
        ] {
            assert_eq!(Contact::parse(bad), None, "{bad:?} must be refused");
        }
    }

    #[test]
    fn a_sip_uri_longer_than_twilio_takes_is_refused() {
        let user = "a".repeat(64);
        let uri = |host_len: usize| format!("sip:{user}@{}.com", "h".repeat(host_len - 4));
        assert_eq!(uri(186).len(), 255);
        assert!(Contact::parse(&uri(186)).is_some());
        assert_eq!(uri(187).len(), 256);
        assert_eq!(Contact::parse(&uri(187)), None);
    }

    #[test]
    fn ids_are_limited_to_safe_characters() {
        assert!(is_valid_id("ana.b_c-1"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id(&"a".repeat(65)));
        assert!(!is_valid_id("a:b"));
        assert!(!is_valid_id("a{b}"));
        assert!(!is_valid_id("."));
        assert!(!is_valid_id(".."));
        assert!(is_valid_id("..."));
        assert!(is_valid_id(".a"));
    }
}
