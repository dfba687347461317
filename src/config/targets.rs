//! A queue's figures settings: the colour thresholds of its console tiles
//! (`[queues.targets]`, over `[defaults.targets]`) and the time zone its
//! "today" is counted in (its `[queues.hours] timezone`, else
//! `[defaults] timezone`, else UTC). Checked with the rest of the routing file,
//! each problem at the value it is about, so a threshold upside down stops
//! start-up instead of painting every tile red.

use std::ops::Range;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use toml::Spanned;
use utoipa::ToSchema;

/// Where a figure turns amber (`warn`) and red (`bad`). For
/// `service_level_pct` lower is worse (at or below `warn`, at or below `bad`);
/// for every other figure higher is worse (at or above).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Threshold {
    pub warn: u32,
    pub bad: u32,
}

/// The colour thresholds of a queue's tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Targets {
    /// Service level, percent; lower is worse.
    pub service_level_pct: Threshold,
    /// Callers waiting now.
    pub waiting: Threshold,
    /// How long the head of the line has waited.
    pub longest_wait_secs: Threshold,
    /// Today's average speed of answer.
    pub asa_secs: Threshold,
    /// Today's abandoned calls, percent of those answered or abandoned.
    pub abandoned_pct: Threshold,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            service_level_pct: Threshold { warn: 80, bad: 70 },
            waiting: Threshold { warn: 5, bad: 10 },
            longest_wait_secs: Threshold { warn: 60, bad: 120 },
            asa_secs: Threshold { warn: 30, bad: 60 },
            abandoned_pct: Threshold { warn: 5, bad: 10 },
        }
    }
}

/// A queue's figures settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSettings {
    /// The zone whose local day "today" is.
    pub timezone: TimeZone,
    pub targets: Targets,
}

impl Default for StatsSettings {
    fn default() -> Self {
        StatsSettings {
            timezone: TimeZone::UTC,
            targets: Targets::default(),
        }
    }
}

/// `{ warn = …, bad = … }` as written; either may be left out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawThreshold {
    warn: Option<Spanned<i64>>,
    bad: Option<Spanned<i64>>,
}

/// `[queues.targets]` or `[defaults.targets]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTargets {
    service_level_pct: Option<Spanned<RawThreshold>>,
    waiting: Option<Spanned<RawThreshold>>,
    longest_wait_secs: Option<Spanned<RawThreshold>>,
    asa_secs: Option<Spanned<RawThreshold>>,
    abandoned_pct: Option<Spanned<RawThreshold>>,
}

/// One threshold over `base`: each value in `0..=max`, and in the right order
/// (`lower_is_worse`: warn ≥ bad, else warn ≤ bad).
fn threshold(
    raw: &Option<Spanned<RawThreshold>>,
    name: &str,
    max: u32,
    lower_is_worse: bool,
    base: Threshold,
    error: &mut dyn FnMut(Range<usize>, String),
) -> Threshold {
    let Some(raw) = raw else {
        return base;
    };
    let mut value = |v: &Option<Spanned<i64>>, which: &str, default: u32| match v {
        None => default,
        Some(v) => match u32::try_from(*v.get_ref()) {
            Ok(n) if n <= max => n,
            _ => {
                error(
                    v.span(),
                    format!(
                        "targets.{name}.{which} must be between 0 and {max}, not {}",
                        v.get_ref()
                    ),
                );
                default
            }
        },
    };
    let t = Threshold {
        warn: value(&raw.get_ref().warn, "warn", base.warn),
        bad: value(&raw.get_ref().bad, "bad", base.bad),
    };
    if lower_is_worse && t.warn < t.bad {
        error(
            raw.span(),
            format!(
                "targets.{name}: warn ({}) must be at least bad ({}): lower is worse, so a tile turns amber at or below warn and red at or below bad",
                t.warn, t.bad
            ),
        );
    } else if !lower_is_worse && t.warn > t.bad {
        error(
            raw.span(),
            format!(
                "targets.{name}: warn ({}) must be at most bad ({}): a tile turns amber at or above warn and red at or above bad",
                t.warn, t.bad
            ),
        );
    }
    t
}

impl RawTargets {
    /// These settings over `base` (the defaults'), checked.
    pub(super) fn build(
        &self,
        base: Targets,
        error: &mut dyn FnMut(Range<usize>, String),
    ) -> Targets {
        Targets {
            service_level_pct: threshold(
                &self.service_level_pct,
                "service_level_pct",
                100,
                true,
                base.service_level_pct,
                error,
            ),
            waiting: threshold(
                &self.waiting,
                "waiting",
                100_000,
                false,
                base.waiting,
                error,
            ),
            longest_wait_secs: threshold(
                &self.longest_wait_secs,
                "longest_wait_secs",
                86_400,
                false,
                base.longest_wait_secs,
                error,
            ),
            asa_secs: threshold(
                &self.asa_secs,
                "asa_secs",
                86_400,
                false,
                base.asa_secs,
                error,
            ),
            abandoned_pct: threshold(
                &self.abandoned_pct,
                "abandoned_pct",
                100,
                false,
                base.abandoned_pct,
                error,
            ),
        }
    }
}

/// `[defaults] timezone`, checked: UTC when unset.
pub(super) fn default_zone(
    raw: &Option<Spanned<String>>,
    error: &mut dyn FnMut(Range<usize>, String),
) -> TimeZone {
    let Some(name) = raw else {
        return TimeZone::UTC;
    };
    super::hours::time_zone(name.get_ref()).unwrap_or_else(|| {
        error(
            name.span(),
            format!(
                "timezone {:?} is not an IANA time zone name (like \"America/New_York\")",
                name.get_ref()
            ),
        );
        TimeZone::UTC
    })
}
