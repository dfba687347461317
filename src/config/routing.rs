//! The routing file: which queue each called number lands in, each queue's timings
//! and fallback chain, the voicemail greeting and the `[emergency]` answer used
//! while Redis is unreachable. The whole file is checked at start-up, so a mistake
//! stops the process naming the file, line and problem instead of failing a call.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::console::ConsoleLists;
use super::hold::Hold;
use super::hours::BusinessHours;
use super::menus::{Menu, MenuOption};
use super::steps::Steps;
use super::targets::{StatsSettings, Targets};
use crate::agent::{is_client_identity, is_e164, is_valid_id};
use crate::needs::{Needs, Test};
use crate::twilio::twiml::Speech;

/// A routing file that cannot be used: where (file, line, the line's text) and
/// what is wrong, the message naming the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}{}: {message}{}", at_line(*.line), excerpt(*.line, .text))]
pub struct RoutingFileError {
    pub path: String,
    /// 0: about the whole file (it cannot be read), no line.
    pub line: usize,
    pub message: String,
    /// The offending line as written (empty when there is none to show).
    pub text: String,
}

/// `:3` after the path; nothing for the whole file.
fn at_line(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}

/// Something in a routing file that works but is likely a mistake: logged at
/// start-up, in the same `file:line: message` form as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RoutingFileWarning(pub RoutingFileError);

/// `\n  3 | max_attempts = "three"` under the message, as compilers show it.
pub(crate) fn excerpt(line: usize, text: &str) -> String {
    if text.trim().is_empty() {
        String::new()
    } else {
        format!("\n  {line} | {}", text.trim_end())
    }
}

/// The setting written at byte `offset`: the key of its line (`key = …`), or of
/// the nearest line above for a value that spans lines (an array).
fn setting_at(source: &str, offset: usize) -> Option<&str> {
    let before = source.get(..offset)?;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let upto_line_end = source[start..]
        .find('\n')
        .map_or(source.len(), |i| start + i);
    source[..upto_line_end].lines().rev().find_map(|line| {
        let line = line.trim_start();
        if line.starts_with('[') {
            return Some(None); // a table header: the value has no key above it
        }
        let (key, _) = line.split_once('=')?;
        let key = key.trim().trim_matches('"');
        Some((!key.is_empty() && !key.starts_with('#')).then_some(key))
    })?
}

/// The queue that exists without being defined: see `build`.
const BUILTIN_QUEUE: &str = "default";

/// One step of a fallback chain, taken when no agent of the call's queue is free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FallbackStep {
    /// An agent from another queue (`routed_total{via="overflow"}`).
    Queue(String),
    /// Forward the call to a number.
    Number(String),
    /// Forward the call to a Twilio Client identity.
    Client(String),
    /// Greeting, then a recorded message.
    Voicemail,
}

impl FallbackStep {
    fn parse(raw: &str) -> Result<FallbackStep, String> {
        if raw == "voicemail" {
            return Ok(FallbackStep::Voicemail);
        }
        let bad = || {
            format!(
                "bad fallback step {raw:?}: expected queue:NAME, number:E164, client:IDENTITY or voicemail"
            )
        };
        let (kind, value) = raw.split_once(':').ok_or_else(bad)?;
        match kind {
            "queue" if is_valid_id(value) => Ok(FallbackStep::Queue(value.to_owned())),
            "number" if is_e164(value) => Ok(FallbackStep::Number(value.to_owned())),
            "client" if is_client_identity(value) => Ok(FallbackStep::Client(value.to_owned())),
            _ => Err(bad()),
        }
    }

    /// The `step` label of `switchboard_fallbacks_total`: no phone numbers, so the
    /// label set stays small and free of personal data.
    pub fn metric_label(&self) -> String {
        match self {
            FallbackStep::Queue(name) => format!("queue:{name}"),
            FallbackStep::Number(_) => "number".to_owned(),
            FallbackStep::Client(_) => "client".to_owned(),
            FallbackStep::Voicemail => "voicemail".to_owned(),
        }
    }
}

impl fmt::Display for FallbackStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FallbackStep::Queue(name) => write!(f, "queue:{name}"),
            FallbackStep::Number(n) => write!(f, "number:{n}"),
            FallbackStep::Client(id) => write!(f, "client:{id}"),
            FallbackStep::Voicemail => f.write_str("voicemail"),
        }
    }
}

impl std::str::FromStr for FallbackStep {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        FallbackStep::parse(raw)
    }
}

/// Declares the per-queue timings once: the `[defaults]` table, the override
/// fields of `[[queues]]`, and the resolved `QueueSettings` all come from it.
macro_rules! timings {
    ($($(#[$doc:meta])* $field:ident: $min:literal ..= $max:literal = $default:literal;)*) => {
        /// A queue's timings, after `[defaults]` and its own overrides.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct QueueSettings {
            $($(#[$doc])* pub $field: u32,)*
        }

        impl Default for QueueSettings {
            fn default() -> Self {
                QueueSettings { $($field: $default,)* }
            }
        }

        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawDefaults {
            default_queue: Option<Spanned<String>>,
            say_voice: Option<Spanned<String>>,
            say_language: Option<Spanned<String>>,
            /// The zone of "today" for queues without `[queues.hours]`.
            timezone: Option<Spanned<String>>,
            targets: Option<super::targets::RawTargets>,
            $($field: Option<Spanned<i64>>,)*
        }

        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawQueue {
            name: Spanned<String>,
            #[serde(default)]
            numbers: Vec<Spanned<super::numbers::RawNumber>>,
            #[serde(default)]
            fallback: Vec<Spanned<String>>,
            #[serde(default)]
            confirm: bool,
            priority: Option<Spanned<i64>>,
            hold: Option<super::hold::RawHold>,
            hours: Option<super::hours::RawHours>,
            targets: Option<super::targets::RawTargets>,
            say_voice: Option<Spanned<String>>,
            say_language: Option<Spanned<String>>,
            /// Replaces `[console] dispositions` for calls taken through it.
            dispositions: Option<super::console::RawList>,
            /// What a waiting call needs of an agent, relaxed as it waits.
            steps: Option<Spanned<Vec<super::steps::RawStep>>>,
            $($field: Option<Spanned<i64>>,)*
        }

        /// The timing values one table of the file sets.
        struct RawTimings<'a> {
            $($field: &'a Option<Spanned<i64>>,)*
        }

        impl RawDefaults {
            fn timings(&self) -> RawTimings<'_> {
                RawTimings { $($field: &self.$field,)* }
            }
        }

        impl RawQueue {
            fn timings(&self) -> RawTimings<'_> {
                RawTimings { $($field: &self.$field,)* }
            }
        }

        impl QueueSettings {
            /// `self` with every value `raw` sets, each checked against its range.
            fn overlay(mut self, raw: RawTimings<'_>, errors: &mut Errors) -> QueueSettings {
                $(
                    if let Some(value) = raw.$field {
                        match u32::try_from(*value.get_ref()) {
                            Ok(v) if ($min..=$max).contains(&v) => self.$field = v,
                            _ => errors.at(value.span(), format!(
                                "{} must be between {} and {}, not {}",
                                stringify!($field), $min, $max, value.get_ref()
                            )),
                        }
                    }
                )*
                self
            }
        }
    };
}

timings! {
    /// `<Dial timeout>`: how long one agent rings (Twilio's range).
    ring_timeout_secs: 5 ..= 600 = 20;
    /// A reservation expires ring timeout + grace after it is made. Twilio rings
    /// up to five seconds past the Dial timeout, so less would release an agent
    /// who is still ringing.
    reservation_grace_secs: 5 ..= 86400 = 10;
    /// Agents tried for one call before the fallback chain.
    max_attempts: 1 ..= 20 = 3;
    /// After a call, an agent gets no call for this long.
    wrap_up_secs: 0 ..= 3600 = 15;
    /// An agent who missed a call is skipped this long.
    no_answer_delay_secs: 0 ..= 86400 = 30;
    /// Misses in a row after which the agent is set `away`.
    max_missed_in_row: 1 ..= 1000 = 3;
    /// `<Dial timeLimit>`; an on-call lease never outlives it.
    max_call_secs: 1 ..= 86400 = 14400;
    /// A caller goes first to the agent who last answered them (0: never).
    affinity_days: 0 ..= 3650 = 30;
}

impl QueueSettings {
    /// How long a reservation lives before the worker releases it as a miss.
    pub fn reservation_ms(&self) -> u64 {
        (u64::from(self.ring_timeout_secs) + u64::from(self.reservation_grace_secs)) * 1000
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub name: String,
    pub numbers: Vec<String>,
    pub fallback: Vec<FallbackStep>,
    pub settings: QueueSettings,
    /// Agents on real phones (`<Number>`, `<Sip>`) must press 1 to take a call,
    /// so a voicemail or an unattended phone that picks up is a miss.
    pub confirm: bool,
    /// An agent in several queues serves the highest first.
    pub priority: i64,
    /// Callers wait in line when no agent can take them (`[queues.hold]`).
    pub hold: Option<Hold>,
    /// Outside these hours calls take the `closed` steps (`[queues.hours]`).
    pub hours: Option<BusinessHours>,
    /// The voice of every `<Say>` for this queue's calls (`say_voice`,
    /// `say_language`, else `[defaults]`').
    pub speech: Speech,
    /// Its figures' time zone and tile colours (`[queues.targets]`).
    pub stats: StatsSettings,
    /// What its calls need of an agent, step by step (`steps`); `any` without.
    pub steps: Steps,
}

impl Queue {
    /// Answered within this counts towards the service level: the hold
    /// table's `service_level_secs`, else its default (20 s).
    pub fn service_level_secs(&self) -> u32 {
        self.hold
            .as_ref()
            .map_or(Hold::default().service_level_secs, |h| h.service_level_secs)
    }

    /// The first step of the chain at or after `from` that answers without an
    /// agent (queue steps are only tried before the first such step).
    pub fn answering_step(&self, from: usize) -> Option<(usize, &FallbackStep)> {
        self.fallback
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, step)| !matches!(step, FallbackStep::Queue(_)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voicemail {
    pub greeting: String,
    pub max_length_secs: u32,
}

impl Default for Voicemail {
    fn default() -> Self {
        Voicemail {
            greeting: "All our agents are busy. Please leave a message after the tone.".into(),
            max_length_secs: 120,
        }
    }
}

/// How far down its fallback chain a call may look for an agent, and what it gets
/// when none of those queues has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePlan<'a> {
    /// The call's own queue first (`via = "queue"`), then overflow queues.
    pub queues: Vec<(&'a Queue, &'static str)>,
    /// The first step of the chain that is not a queue (voicemail when none is).
    pub terminal: FallbackStep,
}

/// `[contacts] allow`: the patterns every agent contact and `number:` step must
/// match, so a leaked admin token cannot make switchboard dial premium-rate
/// numbers. `None`: everything is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactPolicy {
    allow: Option<Vec<String>>,
}

impl ContactPolicy {
    /// Whether `contact` (as written: `+1555…`, `client:ana`, `sip:…`) matches a
    /// pattern; `*` stands for any run of characters, everything else for itself.
    pub fn allows(&self, contact: &str) -> bool {
        self.allow
            .as_ref()
            .is_none_or(|patterns| patterns.iter().any(|p| wildcard_match(p, contact)))
    }

    /// The patterns, for error messages.
    pub fn patterns(&self) -> &[String] {
        self.allow.as_deref().unwrap_or(&[])
    }
}

/// `*`-only glob matching: the classic two-pointer walk that backtracks to the
/// last `*`, O(pattern × text) at worst and linear for the usual `+1*`.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// The validated routing file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingTable {
    queues: Vec<Queue>,
    by_number: HashMap<String, usize>,
    /// (source, queue) -> the steps of a call with needs in a queue it may
    /// take an agent from: the queue's steps and the needs of the source, a
    /// number with needs or a menu option (`Menu::source`).
    needs_steps: HashMap<(String, String), Steps>,
    /// `[menus.NAME]`, by name.
    menus: HashMap<String, Menu>,
    /// number -> the menu it answers with.
    number_menus: HashMap<String, String>,
    /// What every call to a number needs (its `numbers` entry's `needs`).
    number_needs: HashMap<String, Needs>,
    default_queue: usize,
    pub voicemail: Voicemail,
    /// What callers get while Redis is unreachable: never a queue.
    pub emergency: FallbackStep,
    /// Which contacts may be dialled at all.
    pub contacts: ContactPolicy,
    /// `[defaults]`' voice: for what is said outside any queue (the emergency
    /// voicemail).
    pub speech: Speech,
    /// What start-up logs as warnings.
    pub warnings: Vec<RoutingFileWarning>,
    /// `[console]`: away reasons and disposition codes (and queues' own).
    pub console: ConsoleLists,
    /// `[lookup]`: the customer's service asked about each new call.
    pub lookup: Option<super::lookup::LookupSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    queues: Vec<RawQueue>,
    voicemail: Option<RawVoicemail>,
    emergency: Option<RawEmergency>,
    contacts: Option<RawContacts>,
    console: Option<super::console::RawConsole>,
    #[serde(default)]
    menus: std::collections::BTreeMap<String, super::menus::RawMenu>,
    lookup: Option<super::lookup::RawLookup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContacts {
    allow: Spanned<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVoicemail {
    greeting: Option<Spanned<String>>,
    max_length_secs: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmergency {
    fallback: Spanned<String>,
}

/// Collects every problem of a file, each with the byte span it was found at.
struct Errors {
    found: Vec<(Range<usize>, String)>,
    /// Not problems that stop start-up: logged.
    warnings: Vec<(Range<usize>, String)>,
}

impl Errors {
    fn at(&mut self, span: Range<usize>, message: String) {
        self.found.push((span, message));
    }
}

impl RoutingTable {
    /// The table used without a routing file: one queue `default`, voicemail fallback.
    pub fn builtin() -> RoutingTable {
        RoutingTable {
            queues: vec![Queue {
                name: BUILTIN_QUEUE.into(),
                numbers: vec![],
                fallback: vec![FallbackStep::Voicemail],
                settings: QueueSettings::default(),
                confirm: false,
                priority: 0,
                hold: None,
                hours: None,
                speech: Speech::default(),
                stats: StatsSettings::default(),
                steps: Steps::default(),
            }],
            by_number: HashMap::new(),
            needs_steps: HashMap::new(),
            number_needs: HashMap::new(),
            menus: HashMap::new(),
            number_menus: HashMap::new(),
            default_queue: 0,
            voicemail: Voicemail::default(),
            emergency: FallbackStep::Voicemail,
            contacts: ContactPolicy::default(),
            speech: Speech::default(),
            warnings: Vec::new(),
            console: ConsoleLists::default(),
            lookup: None,
        }
    }

    /// Reads and checks a routing file.
    pub fn load(path: &Path) -> Result<RoutingTable, RoutingFileError> {
        let shown = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|e| RoutingFileError {
            path: shown.clone(),
            line: 0,
            message: match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "routing file not found (SWITCHBOARD_ROUTING / --routing)".to_owned()
                }
                _ => format!("cannot read the routing file: {e}"),
            },
            text: String::new(),
        })?;
        RoutingTable::parse(&source, &shown)
    }

    /// Checks a routing file's text; `path` only names it in errors. The first
    /// problem (by position in the file) is reported.
    pub fn parse(source: &str, path: &str) -> Result<RoutingTable, RoutingFileError> {
        let error_at = |span: Option<Range<usize>>, message: String| {
            let line = span.as_ref().map_or(1, |s| line_of(source, s.start));
            RoutingFileError {
                path: path.to_owned(),
                line,
                message,
                text: source.lines().nth(line - 1).unwrap_or("").to_owned(),
            }
        };
        let raw: RawFile = toml::from_str(source).map_err(|e| {
            // toml's own messages ("invalid type: string …") do not say which
            // setting they are about; ours (below) start with it.
            let message = e
                .message()
                .trim()
                .replace("expected i64", "expected a whole number");
            let message = match e.span().and_then(|s| setting_at(source, s.start)) {
                Some(key) if !message.contains(key) => format!("{key}: {message}"),
                _ => message,
            };
            error_at(e.span(), message)
        })?;
        let mut errors = Errors {
            found: Vec::new(),
            warnings: Vec::new(),
        };
        let table = build(raw, source, &mut errors);
        if let Some((span, message)) = errors.found.into_iter().min_by_key(|(span, _)| span.start) {
            return Err(error_at(Some(span), message));
        }
        let mut table = table.ok_or_else(|| error_at(None, "invalid routing file".into()))?;
        table.warnings = errors
            .warnings
            .into_iter()
            .map(|(span, message)| RoutingFileWarning(error_at(Some(span), message)))
            .collect();
        Ok(table)
    }

    pub fn queues(&self) -> &[Queue] {
        &self.queues
    }

    pub fn queue(&self, name: &str) -> Option<&Queue> {
        self.queues.iter().find(|q| q.name == name)
    }

    /// The queue a call to `to` lands in: the one listing the number, else the default.
    pub fn queue_for_number(&self, to: &str) -> &Queue {
        let index = self
            .by_number
            .get(to)
            .copied()
            .unwrap_or(self.default_queue);
        &self.queues[index]
    }

    /// True when some queue has steps or some number needs: calls route by
    /// skills.
    pub fn routes_by_needs(&self) -> bool {
        !self.needs_steps.is_empty() || self.queues.iter().any(|q| !q.steps.is_any())
    }

    /// Every alternative a call may need of an agent of each queue, at any
    /// step, as this file names them (its queues' steps, with its numbers'
    /// and menu options' needs): the ones Redis keeps a line of free agents
    /// for (lua/lib/skills.lua). A lookup's needs are not known in advance.
    pub fn named_alternatives(&self) -> BTreeMap<&str, BTreeSet<&[Test]>> {
        let mut named: BTreeMap<&str, BTreeSet<&[Test]>> = BTreeMap::new();
        let by_queue = self
            .queues
            .iter()
            .map(|q| (q.name.as_str(), &q.steps))
            .chain(
                self.needs_steps
                    .iter()
                    .map(|((_, q), steps)| (q.as_str(), steps)),
            );
        for (queue, steps) in by_queue {
            let alts = named.entry(queue).or_default();
            for step in steps.all() {
                alts.extend(
                    step.needs
                        .alternatives()
                        .iter()
                        .filter(|tests| !tests.is_empty())
                        .map(Vec::as_slice),
                );
            }
        }
        named.retain(|_, alts| !alts.is_empty());
        named
    }

    /// The menu a call to `to` answers with, if its `numbers` entry names one.
    pub fn menu_for_number(&self, to: &str) -> Option<&Menu> {
        self.menus.get(self.number_menus.get(to)?)
    }

    pub fn menu(&self, name: &str) -> Option<&Menu> {
        self.menus.get(name)
    }

    /// What every call to `to` needs, if its `numbers` entry says.
    pub fn needs_of_number(&self, to: &str) -> Option<&Needs> {
        self.number_needs.get(to)
    }

    /// What a call from `source` (the number called, or a menu option's
    /// `Menu::source`) needs of an agent of `queue`, step by step: the
    /// queue's steps, with the source's needs if it has any.
    pub fn steps_for<'a>(&'a self, source: &str, queue: &'a Queue) -> &'a Steps {
        if self.needs_steps.is_empty() {
            return &queue.steps;
        }
        self.needs_steps
            .get(&(source.to_owned(), queue.name.clone()))
            .unwrap_or(&queue.steps)
    }

    /// The voice of what is said for `queue`'s calls; `[defaults]`' for a queue
    /// the file does not have (the emergency answer names none).
    pub fn speech(&self, queue: &str) -> &Speech {
        self.queue(queue).map_or(&self.speech, |q| &q.speech)
    }

    /// What a call to `queue` gets outside its hours: the first `closed` step,
    /// else its chain's terminal step.
    pub fn closed_step(&self, queue: &Queue) -> FallbackStep {
        queue
            .hours
            .as_ref()
            .and_then(|h| h.closed_steps().first().cloned())
            .unwrap_or_else(|| self.plan(queue).terminal)
    }

    /// The queues a call to `queue` may take an agent from, and its terminal step.
    pub fn plan<'a>(&'a self, queue: &'a Queue) -> RoutePlan<'a> {
        let mut plan = RoutePlan {
            queues: vec![(queue, "queue")],
            terminal: FallbackStep::Voicemail,
        };
        for step in &queue.fallback {
            match step {
                FallbackStep::Queue(name) => {
                    let overflow = self
                        .queue(name)
                        .filter(|q| !plan.queues.iter().any(|(seen, _)| seen.name == q.name));
                    if let Some(overflow) = overflow {
                        plan.queues.push((overflow, "overflow"));
                    }
                }
                other => {
                    plan.terminal = other.clone();
                    break;
                }
            }
        }
        plan
    }
}

pub(crate) fn line_of(source: &str, offset: usize) -> usize {
    source
        .get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

fn build(raw: RawFile, source: &str, errors: &mut Errors) -> Option<RoutingTable> {
    let contacts = match &raw.contacts {
        None => ContactPolicy::default(),
        Some(c) => {
            if c.allow.get_ref().is_empty() {
                errors.at(
                    c.allow.span(),
                    "contacts.allow lists no pattern: it would refuse every contact (leave [contacts] out to allow all)".into(),
                );
            }
            for pattern in c.allow.get_ref() {
                let p = pattern.get_ref();
                if p.is_empty() || p.len() > 256 || p.chars().any(char::is_whitespace) {
                    errors.at(
                        pattern.span(),
                        format!("contacts.allow pattern {p:?} must be 1 to 256 characters without spaces"),
                    );
                }
            }
            ContactPolicy {
                allow: Some(
                    c.allow
                        .get_ref()
                        .iter()
                        .map(|p| p.get_ref().clone())
                        .collect(),
                ),
            }
        }
    };
    let d = &raw.defaults;
    let defaults = QueueSettings::default().overlay(d.timings(), errors);
    let default_speech = Speech::default().overlay(&d.say_voice, &d.say_language, errors);
    let default_stats = StatsSettings {
        timezone: super::targets::default_zone(&d.timezone, &mut |span, e| errors.at(span, e)),
        targets: d.targets.as_ref().map_or_else(Targets::default, |t| {
            t.build(Targets::default(), &mut |span, e| errors.at(span, e))
        }),
    };

    let mut queues: Vec<Queue> = Vec::new();
    let mut by_number = HashMap::new();
    let mut number_needs = HashMap::new();
    let mut number_menus = HashMap::new();
    for rq in &raw.queues {
        let name = rq.name.get_ref();
        if !is_valid_id(name) {
            errors.at(
                rq.name.span(),
                format!("queue name {name:?} must match [A-Za-z0-9._-]{{1,64}}"),
            );
        }
        if queues.iter().any(|q| &q.name == name) {
            errors.at(rq.name.span(), format!("queue {name:?} is defined twice"));
        }
        for number in &rq.numbers {
            let n = &number.get_ref().number;
            if !is_e164(n) {
                errors.at(
                    number.span(),
                    format!("number {n:?} is not E.164 (+15551230001)"),
                );
            } else if by_number.insert(n.clone(), queues.len()).is_some() {
                errors.at(number.span(), format!("number {n} is listed in two queues"));
            }
            if let Some(menu) = &number.get_ref().menu {
                if number.get_ref().needs.is_some() {
                    errors.at(
                        number.span(),
                        format!("number {n}: a number with a menu takes its needs from the menu's options"),
                    );
                }
                if !raw.menus.contains_key(menu) {
                    errors.at(number.span(), format!("number {n}: no [menus.{menu}]"));
                }
                number_menus.insert(n.clone(), menu.clone());
            }
            if let Some(text) = &number.get_ref().needs {
                match Needs::parse(text) {
                    Ok(needs) => {
                        number_needs.insert(n.clone(), (needs, number.span()));
                    }
                    Err(e) => errors.at(number.span(), format!("number {n}: needs {text:?}: {e}")),
                }
            }
        }
        let mut fallback = Vec::new();
        for step in &rq.fallback {
            match FallbackStep::parse(step.get_ref()) {
                Ok(s) => {
                    check_allowed(&s, &contacts, step.span(), errors);
                    fallback.push(s);
                }
                Err(message) => errors.at(step.span(), message),
            }
        }
        let settings = defaults.clone().overlay(rq.timings(), errors);
        let priority = rq.priority.as_ref().map_or(0, |p| {
            let value = *p.get_ref();
            if !(-1000..=1000).contains(&value) {
                errors.at(
                    p.span(),
                    format!("priority must be between -1000 and 1000, not {value}"),
                );
            }
            value
        });
        let speech = default_speech
            .clone()
            .overlay(&rq.say_voice, &rq.say_language, errors);
        let hold = rq.hold.as_ref().map(|raw| {
            let mut warnings = Vec::new();
            let hold = raw.build(
                &mut |span, message| errors.at(span, message),
                &mut |span, message| warnings.push((span, message)),
            );
            errors.warnings.append(&mut warnings);
            for step in hold.exit_digits.values() {
                let span = rq.name.span();
                check_allowed(step, &contacts, span, errors);
            }
            hold
        });
        let hours = rq.hours.as_ref().and_then(|raw| {
            let hours = super::hours::build(raw, &mut |span, e| errors.at(span, e.to_string()))?;
            let spans = raw
                .closed
                .iter()
                .flat_map(|c| c.get_ref().iter().map(|s| s.span()));
            for (step, span) in hours.closed_steps().iter().zip(spans) {
                if matches!(step, FallbackStep::Queue(_)) {
                    errors.at(
                        span,
                        "hours.closed steps answer the call: they cannot be a queue".into(),
                    );
                } else {
                    check_allowed(step, &contacts, span, errors);
                }
            }
            Some(hours)
        });
        let stats = StatsSettings {
            timezone: hours
                .as_ref()
                .map_or_else(|| default_stats.timezone.clone(), |h| h.timezone().clone()),
            targets: rq.targets.as_ref().map_or(default_stats.targets, |t| {
                t.build(default_stats.targets, &mut |span, e| errors.at(span, e))
            }),
        };
        let steps = rq.steps.as_ref().map_or_else(Steps::default, |raw| {
            super::steps::check(name, raw, &mut |span, e| errors.at(span, e))
        });
        queues.push(Queue {
            name: name.clone(),
            numbers: rq
                .numbers
                .iter()
                .map(|n| n.get_ref().number.clone())
                .collect(),
            fallback,
            settings,
            confirm: rq.confirm,
            priority,
            hold,
            hours,
            speech,
            stats,
            steps,
        });
    }

    // Overflow targets must exist and not be the queue itself.
    for (rq, queue) in raw.queues.iter().zip(&queues) {
        for (step, parsed) in rq.fallback.iter().zip(&queue.fallback) {
            if let FallbackStep::Queue(target) = parsed {
                if target == &queue.name {
                    errors.at(
                        step.span(),
                        format!("queue {target:?} falls back to itself"),
                    );
                } else if !queues.iter().any(|q| &q.name == target) {
                    errors.at(
                        step.span(),
                        format!("fallback names unknown queue {target:?}"),
                    );
                }
            }
        }
    }

    // The built-in queue `default` exists unless the file defines it: it takes
    // calls to unlisted numbers, with the [defaults] timings and voicemail. Any
    // other default_queue must be defined, so a typo cannot go unnoticed.
    let default_name = d.default_queue.as_ref();
    let wanted = default_name.map_or(BUILTIN_QUEUE, |n| n.get_ref().as_str());
    let default_queue = match queues.iter().position(|q| q.name == wanted) {
        Some(i) => i,
        None if wanted == BUILTIN_QUEUE => {
            queues.push(Queue {
                name: BUILTIN_QUEUE.into(),
                numbers: vec![],
                fallback: vec![FallbackStep::Voicemail],
                settings: defaults.clone(),
                confirm: false,
                priority: 0,
                hold: None,
                hours: None,
                speech: default_speech.clone(),
                stats: default_stats.clone(),
                steps: Steps::default(),
            });
            queues.len() - 1
        }
        None => {
            let span = default_name.map_or(0..source.len().min(1), |n| n.span());
            errors.at(
                span,
                format!("default_queue {wanted:?} names no [[queues]] entry"),
            );
            0
        }
    };

    let mut voicemail = Voicemail::default();
    if let Some(v) = &raw.voicemail {
        if let Some(greeting) = &v.greeting {
            let text = greeting.get_ref().trim();
            if text.is_empty() || text.len() > 4096 {
                errors.at(
                    greeting.span(),
                    "greeting must be 1 to 4096 characters".into(),
                );
            }
            voicemail.greeting = text.to_owned();
        }
        if let Some(max) = &v.max_length_secs {
            match u32::try_from(*max.get_ref()) {
                // Twilio's <Record maxLength> must be greater than 1.
                Ok(secs) if (2..=14400).contains(&secs) => voicemail.max_length_secs = secs,
                _ => errors.at(
                    max.span(),
                    format!(
                        "max_length_secs must be between 2 and 14400, not {}",
                        max.get_ref()
                    ),
                ),
            }
        }
    }

    let mut console = raw
        .console
        .as_ref()
        .map(|c| c.build(&mut |span, message| errors.at(span, message)))
        .unwrap_or_default();
    for rq in &raw.queues {
        if let Some(list) = &rq.dispositions {
            let codes = super::console::check_list("dispositions", list, &mut |span, message| {
                errors.at(span, message)
            });
            console
                .queue_dispositions
                .insert(rq.name.get_ref().clone(), codes);
        }
    }

    let mut emergency = FallbackStep::Voicemail;
    if let Some(e) = &raw.emergency {
        match FallbackStep::parse(e.fallback.get_ref()) {
            Ok(FallbackStep::Queue(_)) => errors.at(
                e.fallback.span(),
                "the emergency fallback runs without Redis, so it cannot be a queue".into(),
            ),
            Ok(step) => {
                check_allowed(&step, &contacts, e.fallback.span(), errors);
                emergency = step;
            }
            Err(message) => errors.at(e.fallback.span(), message),
        }
    }

    let mut table = RoutingTable {
        queues,
        by_number,
        needs_steps: HashMap::new(),
        number_needs: HashMap::new(),
        menus: HashMap::new(),
        number_menus: HashMap::new(),
        default_queue,
        voicemail,
        emergency,
        contacts,
        speech: default_speech,
        warnings: Vec::new(),
        console,
        lookup: raw
            .lookup
            .as_ref()
            .map(|l| super::lookup::check(l, &mut |span, e| errors.at(span, e))),
    };
    let mut menus = HashMap::new();
    for (name, raw_menu) in &raw.menus {
        let mut steps = Vec::new();
        let menu = super::menus::check(
            name,
            raw_menu,
            &|q| table.queue(q).is_some(),
            &mut |step, span| steps.push((step.clone(), span)),
            &mut |span, e| errors.at(span, e),
        );
        for (step, span) in steps {
            check_allowed(&step, &table.contacts, span, errors);
        }
        menus.insert(name.clone(), menu);
    }
    // Needs of a number or a menu option join the steps of every queue its
    // calls may take an agent from.
    let mut sources: Vec<(String, usize, &Needs, String, Range<usize>)> = Vec::new();
    for (number, (needs, span)) in &number_needs {
        if let Some(&home) = table.by_number.get(number) {
            sources.push((
                number.clone(),
                home,
                needs,
                format!("number {number}"),
                span.clone(),
            ));
        }
    }
    for (name, menu) in &menus {
        for (key, option) in &menu.options {
            if let MenuOption::Route { queue, needs, .. } = option
                && !needs.is_any()
                && let Some(home) = table.queues.iter().position(|q| &q.name == queue)
            {
                let span = raw.menus[name].options_span();
                let at = format!("menu {name:?}, option \"{key}\"");
                sources.push((menu.source(*key), home, needs, at, span));
            }
        }
    }
    let mut needs_steps = HashMap::new();
    for (source, home, needs, at, span) in sources {
        for (queue, _) in table.plan(&table.queues[home]).queues {
            match queue.steps.and(needs) {
                Ok(steps) => {
                    needs_steps.insert((source.clone(), queue.name.clone()), steps);
                }
                Err((step, e)) => errors.at(
                    span.clone(),
                    format!(
                        "{at}: needs {:?} with queue {:?}, step {}: {e}",
                        needs.text(),
                        queue.name,
                        step + 1
                    ),
                ),
            }
        }
    }
    table.needs_steps = needs_steps;
    table.menus = menus;
    table.number_menus = number_menus;
    table.number_needs = number_needs
        .into_iter()
        .map(|(number, (needs, _))| (number, needs))
        .collect();
    Some(table)
}

impl Speech {
    /// `self` with the `say_voice` and `say_language` one table of the file sets.
    /// Checked loosely: Twilio's list of voices and languages grows, so any
    /// name it could take passes ([A-Za-z0-9._-], up to 64), and nothing that
    /// could not (spaces, quotes, markup) reaches the TwiML.
    fn overlay(
        mut self,
        voice: &Option<Spanned<String>>,
        language: &Option<Spanned<String>>,
        errors: &mut Errors,
    ) -> Speech {
        for (value, name, slot, example) in [
            (voice, "say_voice", &mut self.voice, "Polly.Joanna"),
            (language, "say_language", &mut self.language, "en-US"),
        ] {
            let Some(value) = value else { continue };
            let v = value.get_ref();
            let ok = (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if ok {
                *slot = Some(v.clone());
            } else {
                errors.at(
                    value.span(),
                    format!(
                        "{name} {v:?} must be 1 to 64 letters, digits, '.', '_' or '-' (e.g. \"{example}\")"
                    ),
                );
            }
        }
        self
    }
}

/// A `number:` step must match `[contacts] allow` like an agent's contact.
fn check_allowed(
    step: &FallbackStep,
    contacts: &ContactPolicy,
    span: Range<usize>,
    errors: &mut Errors,
) {
    if let FallbackStep::Number(n) = step
        && !contacts.allows(n)
    {
        errors.at(
            span,
            format!("fallback step number:{n} is not allowed by [contacts] allow"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_EXAMPLE: &str = r#"
[defaults]
ring_timeout_secs = 20
reservation_grace_secs = 10
max_attempts = 3
wrap_up_secs = 15
no_answer_delay_secs = 30
max_missed_in_row = 3
max_call_secs = 14400
affinity_days = 30
default_queue = "default"

[[queues]]
name = "default"

[[queues]]
name = "sales"
numbers = ["+15005550006"]
fallback = ["queue:support", "voicemail"]
wrap_up_secs = 5

[[queues]]
name = "support"
fallback = ["number:+15005550010"]

[voicemail]
greeting = "All our agents are busy."
max_length_secs = 120

[emergency]
fallback = "number:+15005550010"
"#;

    #[test]
    fn the_spec_example_parses_with_overrides() {
        let table = RoutingTable::parse(SPEC_EXAMPLE, "r.toml").expect("valid");
        let sales = table.queue_for_number("+15005550006");
        assert_eq!(sales.name, "sales");
        assert_eq!(sales.settings.wrap_up_secs, 5);
        assert_eq!(sales.settings.ring_timeout_secs, 20);
        assert_eq!(table.queue_for_number("+19999999999").name, "default");
        let plan = table.plan(sales);
        let names: Vec<_> = plan
            .queues
            .iter()
            .map(|(q, via)| (q.name.as_str(), *via))
            .collect();
        assert_eq!(names, [("sales", "queue"), ("support", "overflow")]);
        assert_eq!(plan.terminal, FallbackStep::Voicemail);
        assert_eq!(
            table.plan(table.queue("support").unwrap()).terminal,
            FallbackStep::Number("+15005550010".into())
        );
        assert_eq!(table.emergency, FallbackStep::Number("+15005550010".into()));
    }

    /// SPEC 1 "Routing file", verbatim: `default` is built in.
    const SPEC_VERBATIM: &str = r#"
[defaults]
ring_timeout_secs = 20        # <Dial timeout>: how long one agent rings (5..=600, Twilio's range)
reservation_grace_secs = 10   # a reservation expires ring timeout + grace after it is made
max_attempts = 3              # agents tried for one call before the fallback chain
wrap_up_secs = 15             # after a call, an agent gets no call for this long
no_answer_delay_secs = 30     # an agent who missed a call is skipped this long
max_missed_in_row = 3         # then the agent is set `away`
max_call_secs = 14400         # <Dial timeLimit>; an on-call lease never outlives it
affinity_days = 30            # a caller goes first to the agent who last answered them
default_queue = "default"     # queue for calls to numbers not listed below

[[queues]]
name = "sales"
numbers = ["+15005550006"]            # the To numbers that land in this queue
fallback = ["queue:support", "voicemail"]

[[queues]]
name = "support"
fallback = ["number:+15005550010"]    # forward to an answering service

[voicemail]
greeting = "All our agents are busy. Please leave a message after the tone."
max_length_secs = 120

[emergency]                           # what callers get while Redis is unreachable
fallback = "number:+15005550010"      # or "voicemail"
"#;

    #[test]
    fn the_spec_example_loads_verbatim_with_the_builtin_default_queue() {
        let table = RoutingTable::parse(SPEC_VERBATIM, "spec.toml").expect("valid");
        let names: Vec<&str> = table.queues().iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["sales", "support", "default"]);
        let default = table.queue_for_number("+15551112222");
        assert_eq!(default.name, "default");
        assert_eq!(default.fallback, [FallbackStep::Voicemail]);
        assert_eq!(default.settings.wrap_up_secs, 15);
        let huge_grace = "[defaults]\nreservation_grace_secs = 86400\n";
        assert!(RoutingTable::parse(huge_grace, "r.toml").is_ok());
    }

    #[test]
    fn an_empty_file_is_the_builtin_table() {
        assert_eq!(
            RoutingTable::parse("", "r.toml").unwrap(),
            RoutingTable::builtin()
        );
    }

    fn error(source: &str) -> String {
        RoutingTable::parse(source, "r.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_the_file_line_and_problem() {
        assert_eq!(
            error("[defaults]\nring_timeout_secs = 3\n"),
            "r.toml:2: ring_timeout_secs must be between 5 and 600, not 3\n  2 | ring_timeout_secs = 3"
        );
        assert!(
            error("[defaults]\nmax_attempts = \"three\"\n").starts_with("r.toml:2: max_attempts: "),
            "{}",
            error("[defaults]\nmax_attempts = \"three\"\n")
        );
        assert!(
            error("[[queues]]\nname = \"q\"\nnumbers = [\n  \"+15005550006\",\n  7,\n]\n")
                .starts_with("r.toml:5: numbers: ")
        );
        assert!(error("[[queues]]\nname = \"default\"\n\n[[queues]]\nname = \"x\"\nfallback = [\"queue:nope\"]\n")
            .starts_with("r.toml:6: fallback names unknown queue \"nope\""));
        assert!(
            error("[defaults]\nring_timeout = 20\n")
                .starts_with("r.toml:2: unknown field `ring_timeout`")
        );
        assert!(
            error("[[queues]]\nname = \"default\"\nnumbers = [\"555\"]\n")
                .starts_with("r.toml:3: number \"555\"")
        );
        assert!(
            error("[emergency]\nfallback = \"queue:default\"\n")
                .starts_with("r.toml:2: the emergency fallback")
        );
        let steps = "[[queues]]\nname = \"default\"\nsteps = [\n  { needs = \"es\", for_secs = 30 },\n  { needs = \"es or\" },\n]\n";
        assert!(
            error(steps)
                .starts_with("r.toml:5: queue \"default\", step 2: needs \"es or\": ends too soon"),
            "{}",
            error(steps)
        );
        assert!(
            error("[defaults]\ndefault_queue = \"suport\"\n[[queues]]\nname = \"support\"\n")
                .starts_with("r.toml:2: default_queue \"suport\" names no [[queues]] entry")
        );
        assert!(error("[defaults\n").starts_with("r.toml:1:"));
        // Numbers' needs and menus.
        let both = "[[queues]]\nname = \"default\"\nnumbers = [{ number = \"+15005550006\", needs = \"es\", menu = \"m\" }]\n[menus.m]\nprompt = \"p\"\ndefault = \"1\"\noptions = { \"1\" = { queue = \"default\" } }\n";
        assert!(
            error(both).contains("a number with a menu takes its needs from the menu's options"),
            "{}",
            error(both)
        );
        let unknown = "[[queues]]\nname = \"default\"\nnumbers = [{ number = \"+15005550006\", menu = \"m\" }]\n";
        assert!(
            error(unknown).contains("no [menus.m]"),
            "{}",
            error(unknown)
        );
        let bad = "[[queues]]\nname = \"default\"\nnumbers = [{ number = \"+15005550006\", needs = \"es or\" }]\n";
        assert!(
            error(bad).starts_with("r.toml:3: number +15005550006: needs \"es or\": ends too soon"),
            "{}",
            error(bad)
        );
        let contradiction = "[[queues]]\nname = \"default\"\nsteps = [{ needs = \"not es\" }]\nnumbers = [{ number = \"+15005550006\", needs = \"es\" }]\n";
        assert!(
            error(contradiction).contains(
                "number +15005550006: needs \"es\" with queue \"default\", step 1: together no agent can ever satisfy them"
            ),
            "{}",
            error(contradiction)
        );
    }

    #[test]
    fn limits_twilio_imposes_are_refused() {
        // Twilio rings up to 5 s past the Dial timeout.
        assert!(
            error("[defaults]\nreservation_grace_secs = 4\n")
                .starts_with("r.toml:2: reservation_grace_secs must be between 5 and 86400")
        );
        assert!(
            error("[[queues]]\nname = \"q\"\nreservation_grace_secs = 1\n")
                .starts_with("r.toml:3: reservation_grace_secs")
        );
        assert!(RoutingTable::parse("[defaults]\nreservation_grace_secs = 5\n", "r.toml").is_ok());
        // <Record maxLength> must be greater than 1.
        assert!(
            error("[voicemail]\nmax_length_secs = 1\n")
                .starts_with("r.toml:2: max_length_secs must be between 2 and 14400")
        );
    }

    #[test]
    fn contacts_allow_limits_needs_steps_and_matches_wildcards() {
        let allow = "[contacts]\nallow = [\"+1*\", \"sip:*@pbx.example.com\", \"client:*\"]\n";
        let table = RoutingTable::parse(allow, "r.toml").unwrap();
        for ok in ["+15551230001", "sip:ana@pbx.example.com", "client:ana"] {
            assert!(table.contacts.allows(ok), "{ok}");
        }
        for refused in [
            "+441234567890",
            "+19",
            "sip:ana@evil.example.com",
            "sip:a@pbx.example.com.evil",
        ] {
            assert_eq!(
                table.contacts.allows(refused),
                refused == "+19",
                "{refused}"
            );
        }
        assert!(RoutingTable::builtin().contacts.allows("+900123456"));
        let premium =
            format!("{allow}[[queues]]\nname = \"q\"\nfallback = [\"number:+900123456\"]\n");
        assert!(
            error(&premium).starts_with("r.toml:5: fallback step number:+900123456 is not allowed"),
            "{}",
            error(&premium)
        );
        let emergency = format!("{allow}[emergency]\nfallback = \"number:+441234567\"\n");
        assert!(error(&emergency).starts_with("r.toml:4: fallback step number:+441234567"));
        assert!(
            error("[contacts]\nallow = []\n")
                .starts_with("r.toml:2: contacts.allow lists no pattern")
        );
        assert!(wildcard_match("*a*b*", "xxaxxbxx"));
        assert!(!wildcard_match("a*b", "acbd"));
        assert!(wildcard_match("", ""));
    }

    #[test]
    fn music_without_its_length_warns_at_its_line_and_its_length_feeds_the_round() {
        let hold = "[[queues]]\nname = \"q\"\n[queues.hold]\nloop_secs = 20\nmusic_url = \"https://m.example/a.mp3\"\n";
        let table = RoutingTable::parse(hold, "r.toml").expect("valid");
        let warnings: Vec<String> = table.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("r.toml:5: hold.music_url is set without hold.music_secs"),
            "{warnings:?}"
        );
        assert_eq!(
            table.queue("q").unwrap().hold.as_ref().unwrap().round_ms(),
            20_000
        );
        let timed = RoutingTable::parse(&format!("{hold}music_secs = 185\n"), "r.toml").unwrap();
        assert_eq!(timed.warnings, []);
        let h = timed.queue("q").unwrap().hold.clone().unwrap();
        assert_eq!((h.music_secs, h.round_ms()), (Some(185), 185_000));
        let short = RoutingTable::parse(&format!("{hold}music_secs = 8\n"), "r.toml").unwrap();
        assert_eq!(
            short.queue("q").unwrap().hold.as_ref().unwrap().round_ms(),
            20_000
        );
    }

    #[test]
    fn say_voice_and_language_come_from_defaults_unless_the_queue_sets_them() {
        let file = "[defaults]\nsay_voice = \"woman\"\nsay_language = \"en-GB\"\n[[queues]]\nname = \"es\"\nsay_voice = \"Google.es-US-Standard-A\"\n";
        let table = RoutingTable::parse(file, "r.toml").unwrap();
        let es = table.speech("es");
        assert_eq!(es.voice.as_deref(), Some("Google.es-US-Standard-A"));
        assert_eq!(es.language.as_deref(), Some("en-GB"));
        for defaulted in ["default", ""] {
            assert_eq!(table.speech(defaulted).voice.as_deref(), Some("woman"));
        }
        assert_eq!(RoutingTable::builtin().speech(""), &Speech::default());
    }

    #[test]
    fn confirm_is_a_per_queue_switch() {
        let table =
            RoutingTable::parse("[[queues]]\nname = \"desk\"\nconfirm = true\n", "r.toml").unwrap();
        assert!(table.queue("desk").unwrap().confirm);
        assert!(!table.queue("default").unwrap().confirm);
    }
}
