//! A queue's `[queues.hold]` table: callers wait in line instead of taking the
//! fallback chain at once when no agent can take them (SPEC 1, "Callers wait in
//! line"). Parsed and checked with the rest of the routing file, each problem
//! reported at the value it is about.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::routing::FallbackStep;

/// What a waiting caller hears each round, besides the music or silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// "You are number 3 in line."
    Position,
    /// The estimated wait (lua/lib/forecast.lua).
    Wait,
    Both,
    None,
}

/// A queue's hold settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Then the fallback chain runs; 0: no limit.
    pub max_wait_secs: u32,
    /// A caller who would be number `max_waiting + 1` gets the fallback chain.
    pub max_waiting: u32,
    /// One round of music or silence between announcements (each round ends in
    /// a fetch of the wait URL: the caller's heartbeat).
    pub loop_secs: u32,
    /// `<Play>`ed each round; `None`: `<Pause length=loop_secs>`.
    pub music_url: Option<String>,
    /// How long `music_url` plays, in seconds: a round with music lasts that long
    /// (Twilio fetches the wait URL only when the `<Play>` ends), so the
    /// heartbeat must wait for it (`round_ms`).
    pub music_secs: Option<u32>,
    pub announce: Announce,
    /// The most a caller's estimated wait may rise from one round to the next
    /// while no agent of the queue signed out.
    pub estimate_max_rise_secs: u32,
    /// Keys a caller may press to leave the line, and the step each takes.
    pub exit_digits: BTreeMap<char, FallbackStep>,
    /// Callbacks (docs/callbacks.md): the key a waiting caller presses to be
    /// called back, keeping its place; `None`: no callbacks.
    pub callback_key: Option<char>,
    /// The offer ("press 2 to be called back") is spoken once the caller's
    /// estimated wait reaches this; 0: every round.
    pub offer_callback_after_secs: u32,
    /// Tries after the first when the customer does not answer.
    pub callback_retries: u32,
    /// Between two tries.
    pub callback_retry_secs: u32,
    /// Ask Twilio to tell a machine from a person (`MachineDetection`): a try
    /// a machine answers is over, and retried.
    pub callback_machine_detection: bool,
    /// Call the reserved agent first, then the customer from the agent's call
    /// (default: the customer first, connected to the agent after a 1).
    pub callback_agent_first: bool,
    /// The numbers a callback may call: those that start with one of these
    /// (E.164 prefixes such as `+1`, `+44`). Empty: only the caller's own
    /// number, never one keyed in (a keyed number would be called from the
    /// business's number, at its cost: premium-rate fraud).
    pub callback_number_prefixes: Vec<String>,
    /// Wait only while an agent of the queue is signed in (not offline or away).
    pub join_when_no_agents: bool,
    /// Answered within this counts towards the service level.
    pub service_level_secs: u32,
}

impl Default for Hold {
    fn default() -> Self {
        Hold {
            max_wait_secs: 600,
            max_waiting: 100,
            loop_secs: 20,
            music_url: None,
            music_secs: None,
            announce: Announce::Position,
            estimate_max_rise_secs: 60,
            exit_digits: BTreeMap::new(),
            callback_key: None,
            offer_callback_after_secs: 0,
            callback_retries: 2,
            callback_retry_secs: 300,
            callback_machine_detection: false,
            callback_agent_first: false,
            callback_number_prefixes: Vec::new(),
            join_when_no_agents: false,
            service_level_secs: 20,
        }
    }
}

impl Hold {
    /// The longest a hold round lasts, in ms: the music's length when that is
    /// longer than `loop_secs`. A waiting caller's heartbeat (and a reservation
    /// waiting for its next fetch) allows one such round and 15 s of slack
    /// (lua/lib/line.lua): `loop_secs` alone would take a caller still
    /// listening to long music for gone. Never less than `loop_secs`, so SPEC 1
    /// invariant 7's `loop_secs + 15 s` holds wherever the music is not longer.
    pub fn round_ms(&self) -> u64 {
        u64::from(self.loop_secs.max(self.music_secs.unwrap_or(0))) * 1000
    }

    /// Whether a callback may call `number` (E.164); `own`: it is the caller's
    /// own (its caller ID), not one keyed in.
    pub fn may_call_back(&self, number: &str, own: bool) -> bool {
        match self.callback_number_prefixes.as_slice() {
            [] => own,
            prefixes => prefixes.iter().any(|p| number.starts_with(p.as_str())),
        }
    }

    /// Whether a caller may key in a number to be called back at.
    pub fn takes_keyed_numbers(&self) -> bool {
        !self.callback_number_prefixes.is_empty()
    }

    /// Whether the keys a waiting caller pressed (`Digits`) ask for a callback.
    pub fn asks_callback(&self, digits: &str) -> bool {
        let mut keys = digits.chars();
        matches!((keys.next(), keys.next()), (Some(k), None) if Some(k) == self.callback_key)
    }
}

/// `[queues.hold]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHold {
    max_wait_secs: Option<Spanned<i64>>,
    max_waiting: Option<Spanned<i64>>,
    loop_secs: Option<Spanned<i64>>,
    music_url: Option<Spanned<String>>,
    music_secs: Option<Spanned<i64>>,
    announce: Option<Spanned<String>>,
    estimate_max_rise_secs: Option<Spanned<i64>>,
    #[serde(default)]
    exit_digits: BTreeMap<String, Spanned<String>>,
    callback_key: Option<Spanned<String>>,
    offer_callback_after_secs: Option<Spanned<i64>>,
    callback_retries: Option<Spanned<i64>>,
    callback_retry_secs: Option<Spanned<i64>>,
    callback_machine_detection: Option<bool>,
    callback_agent_first: Option<bool>,
    callback_number_prefixes: Option<Vec<Spanned<String>>>,
    join_when_no_agents: Option<bool>,
    service_level_secs: Option<Spanned<i64>>,
}

/// A whole number setting within `range`, or a problem at its value.
fn number(
    value: &Option<Spanned<i64>>,
    name: &str,
    range: Range<u32>,
    default: u32,
    error: &mut dyn FnMut(Range<usize>, String),
) -> u32 {
    let Some(value) = value else {
        return default;
    };
    match u32::try_from(*value.get_ref()) {
        Ok(v) if range.contains(&v) => v,
        _ => {
            error(
                value.span(),
                format!(
                    "hold.{name} must be between {} and {}, not {}",
                    range.start,
                    range.end - 1,
                    value.get_ref()
                ),
            );
            default
        }
    }
}

impl RawHold {
    /// The checked settings; every problem goes to `error` with its span, and
    /// what works but is likely a mistake to `warn`.
    pub(super) fn build(
        &self,
        error: &mut dyn FnMut(Range<usize>, String),
        warn: &mut dyn FnMut(Range<usize>, String),
    ) -> Hold {
        let d = Hold::default();
        let music_url = self.music_url.as_ref().and_then(|url| {
            let u = url.get_ref();
            let ok = (u.starts_with("https://") || u.starts_with("http://"))
                && u.len() <= 2048
                && !u.chars().any(|c| c.is_control() || c.is_whitespace());
            if !ok {
                error(
                    url.span(),
                    format!("hold.music_url {u:?} must be an absolute http(s) URL"),
                );
            }
            ok.then(|| u.clone())
        });
        let announce = match self.announce.as_ref() {
            None => d.announce,
            Some(a) => match a.get_ref().as_str() {
                "position" => Announce::Position,
                "wait" => Announce::Wait,
                "both" => Announce::Both,
                "none" => Announce::None,
                other => {
                    error(
                        a.span(),
                        format!(
                            "hold.announce must be \"position\", \"wait\", \"both\" or \"none\", not {other:?}"
                        ),
                    );
                    d.announce
                }
            },
        };
        let mut exit_digits = BTreeMap::new();
        for (key, step) in &self.exit_digits {
            let digit = match key.chars().collect::<Vec<_>>()[..] {
                [c] if c.is_ascii_digit() || c == '*' || c == '#' => c,
                _ => {
                    error(
                        step.span(),
                        format!("hold.exit_digits key {key:?} must be one of 0-9, * or #"),
                    );
                    continue;
                }
            };
            match step.get_ref().parse::<FallbackStep>() {
                Ok(FallbackStep::Queue(_)) => error(
                    step.span(),
                    "hold.exit_digits steps leave the line: they cannot be a queue".into(),
                ),
                Ok(s) => {
                    exit_digits.insert(digit, s);
                }
                Err(message) => error(step.span(), message),
            }
        }
        let callback_key = self.callback_key.as_ref().and_then(|key| {
            let digit = match key.get_ref().chars().collect::<Vec<_>>()[..] {
                [c] if c.is_ascii_digit() || c == '*' => c,
                _ => {
                    error(
                        key.span(),
                        format!(
                            "hold.callback_key {:?} must be one of 0-9 or * (# ends the number a caller keys in)",
                            key.get_ref()
                        ),
                    );
                    return None;
                }
            };
            if exit_digits.contains_key(&digit) {
                error(
                    key.span(),
                    format!("hold.callback_key {digit:?} is also an exit digit"),
                );
                return None;
            }
            Some(digit)
        });
        let mut callback_number_prefixes = Vec::new();
        for prefix in self.callback_number_prefixes.iter().flatten() {
            let digits = prefix.get_ref().strip_prefix('+').unwrap_or("");
            if (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
                callback_number_prefixes.push(prefix.get_ref().clone());
            } else {
                error(
                    prefix.span(),
                    format!(
                        "hold.callback_number_prefixes {:?} must be + and 1 to 15 digits (an E.164 prefix such as \"+1\")",
                        prefix.get_ref()
                    ),
                );
            }
        }
        let loop_secs = number(&self.loop_secs, "loop_secs", 5..301, d.loop_secs, error);
        let music_secs = self
            .music_secs
            .is_some()
            .then(|| number(&self.music_secs, "music_secs", 1..3601, 1, error));
        match (&self.music_url, &self.music_secs) {
            (None, Some(secs)) => error(
                secs.span(),
                "hold.music_secs is the length of hold.music_url, which is not set".into(),
            ),
            // Not an error: SPEC 1's example sets music_url alone, and a file
            // valid before music_secs existed must still start.
            (Some(url), None) => warn(
                url.span(),
                format!(
                    "hold.music_url is set without hold.music_secs (its length in seconds): a caller who hears more than {} s of it before the next round is taken for gone and leaves the line",
                    loop_secs + 15
                ),
            ),
            _ => {}
        }
        Hold {
            max_wait_secs: number(
                &self.max_wait_secs,
                "max_wait_secs",
                0..86_401,
                d.max_wait_secs,
                error,
            ),
            max_waiting: number(
                &self.max_waiting,
                "max_waiting",
                1..100_001,
                d.max_waiting,
                error,
            ),
            loop_secs,
            music_url,
            music_secs,
            announce,
            estimate_max_rise_secs: number(
                &self.estimate_max_rise_secs,
                "estimate_max_rise_secs",
                0..3601,
                d.estimate_max_rise_secs,
                error,
            ),
            exit_digits,
            callback_key,
            offer_callback_after_secs: number(
                &self.offer_callback_after_secs,
                "offer_callback_after_secs",
                0..86_401,
                d.offer_callback_after_secs,
                error,
            ),
            callback_retries: number(
                &self.callback_retries,
                "callback_retries",
                0..11,
                d.callback_retries,
                error,
            ),
            callback_retry_secs: number(
                &self.callback_retry_secs,
                "callback_retry_secs",
                5..86_401,
                d.callback_retry_secs,
                error,
            ),
            callback_machine_detection: self
                .callback_machine_detection
                .unwrap_or(d.callback_machine_detection),
            callback_agent_first: self.callback_agent_first.unwrap_or(d.callback_agent_first),
            callback_number_prefixes,
            join_when_no_agents: self.join_when_no_agents.unwrap_or(d.join_when_no_agents),
            service_level_secs: number(
                &self.service_level_secs,
                "service_level_secs",
                1..3601,
                d.service_level_secs,
                error,
            ),
        }
    }
}
