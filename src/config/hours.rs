//! Business hours of a queue (`[queues.hours]` in the routing file): a time
//! zone, open intervals per weekday, closed dates and the fallback steps for
//! calls outside the hours. It is checked once, at start-up, like the rest of
//! the routing file, so a typo in a time or a zone stops the process with the
//! line instead of silently sending every call to voicemail; `is_open` is then
//! a pure function of an instant, cheap enough for every incoming call and
//! testable without a clock.
//!
//! Time zones come from jiff: the system's tz database when it has the zone
//! (the OS keeps it current when governments move DST), else the copy bundled
//! into the binary, so a host or CI image without `/usr/share/zoneinfo` still
//! knows `America/New_York`.
//!
//! Hours are wall-clock readings. An instant is turned into the zone's local
//! date and time, and the queue is open when that local time lies in one of
//! the local weekday's intervals and the local date is not a closed date. Every
//! instant has exactly one local reading, so DST needs no special case and
//! cannot panic: a local time skipped in spring is never read, so an interval
//! starting inside the gap opens at the first reading after it (02:30-04:00 on
//! the day New York jumps from 02:00 to 03:00 opens at 03:00); a local time
//! repeated in autumn is read twice and is open, or closed, both times
//! (01:00-02:00 on the day clocks fall back is open two real hours). That is
//! what "we are open 9 to 5" means to the people answering the phone.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;

use jiff::civil::{Date, Weekday};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use serde::Deserialize;
use toml::Spanned;

use super::routing::FallbackStep;

/// The `[queues.hours]` table as written, each value with its byte span so
/// `build` can name the line of every mistake.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHours {
    pub timezone: Spanned<String>,
    /// Weekday key (`mon`..`sun`) to `"HH:MM-HH:MM[,HH:MM-HH:MM…]"`.
    pub weekly: Spanned<BTreeMap<Spanned<String>, Spanned<String>>>,
    #[serde(default)]
    pub closed_dates: Vec<Spanned<String>>,
    pub closed: Option<Spanned<Vec<Spanned<String>>>>,
}

/// One mistake in a `[queues.hours]` table; the message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("hours.timezone {0:?} is not an IANA time zone name (like \"America/New_York\")")]
    UnknownTimeZone(String),
    #[error(
        "hours.weekly key {0:?} is not a weekday: expected mon, tue, wed, thu, fri, sat or sun"
    )]
    UnknownWeekday(String),
    #[error("hours.weekly opens on no day: the queue would always be closed")]
    NoOpenDay,
    #[error(
        "hours.weekly.{day} lists no interval: leave the day out to keep it closed, or write \"09:00-17:00\""
    )]
    NoInterval { day: &'static str },
    #[error("hours.weekly.{day} interval {interval:?} is not HH:MM-HH:MM (like \"09:00-17:00\")")]
    BadInterval { day: &'static str, interval: String },
    #[error("hours.weekly.{day} time {time:?} is not HH:MM between 00:00 and 24:00")]
    BadTime { day: &'static str, time: String },
    #[error(
        "hours.weekly.{day} interval {interval:?} must start before it ends (an interval cannot cross midnight: write 22:00-24:00 on one day and 00:00-02:00 on the next)"
    )]
    StartNotBeforeEnd { day: &'static str, interval: String },
    #[error("hours.weekly.{day} intervals {first} and {second} overlap")]
    Overlap {
        day: &'static str,
        first: OpenInterval,
        second: OpenInterval,
    },
    #[error("hours.closed_dates entry {0:?} is not a date YYYY-MM-DD (like \"2026-12-25\")")]
    BadDate(String),
    #[error("hours.closed_dates lists {0} twice")]
    DuplicateDate(Date),
    #[error(
        "hours.closed lists no step: leave it out to use the queue's fallback chain, or write [\"voicemail\"]"
    )]
    NoClosedStep,
    #[error("hours.closed: {0}")]
    BadClosedStep(String),
}

/// The routing file's weekday keys, Monday first as `Weekday::to_monday_zero_offset`.
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Minutes in a day: the largest end an interval may have (`24:00`).
const DAY_MINUTES: u16 = 24 * 60;

/// Open from `start` up to, not including, `end`, in minutes after local
/// midnight; `end` may be 1440 (`24:00`). Half-open, so 09:00-17:00 is closed
/// at 17:00 and 09:00-12:00,12:00-17:00 does not overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpenInterval {
    start: u16,
    end: u16,
}

impl OpenInterval {
    /// Minutes after local midnight at which the interval opens.
    pub fn start_minute(&self) -> u16 {
        self.start
    }

    /// Minutes after local midnight at which the interval closes (1440: midnight).
    pub fn end_minute(&self) -> u16 {
        self.end
    }

    /// Whether `second` seconds after local midnight lies inside.
    fn contains(&self, second: u32) -> bool {
        (u32::from(self.start) * 60..u32::from(self.end) * 60).contains(&second)
    }
}

impl fmt::Display for OpenInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{}", hm(self.start), hm(self.end))
    }
}

/// A queue's checked business hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    timezone: TimeZone,
    /// Monday first; each day's intervals sorted and disjoint; empty: closed.
    weekly: [Vec<OpenInterval>; 7],
    /// Local dates (in `timezone`) on which the queue is closed all day.
    closed_dates: BTreeSet<Date>,
    /// Steps for calls outside the hours; empty when the table leaves `closed`
    /// out, meaning the queue's own fallback chain.
    closed: Vec<FallbackStep>,
}

impl BusinessHours {
    /// Whether the queue takes calls at `at_unix_ms` (milliseconds since the
    /// Unix epoch, as Redis `TIME` gives). See the module header for DST.
    pub fn is_open(&self, at_unix_ms: i64) -> bool {
        // jiff represents years -9999..=9999; an instant outside cannot come
        // from a real clock, and closed is the answer that sends no one to an
        // agent at a time nobody chose.
        let Ok(instant) = jiff::Timestamp::from_millisecond(at_unix_ms) else {
            return false;
        };
        let local = self.timezone.to_datetime(instant);
        if self.closed_dates.contains(&local.date()) {
            return false;
        }
        let day = usize::from(local.weekday().to_monday_zero_offset().unsigned_abs());
        let second = u32::from(local.hour().unsigned_abs()) * 3600
            + u32::from(local.minute().unsigned_abs()) * 60
            + u32::from(local.second().unsigned_abs());
        self.weekly
            .get(day)
            .is_some_and(|intervals| intervals.iter().any(|i| i.contains(second)))
    }

    pub fn timezone(&self) -> &TimeZone {
        &self.timezone
    }

    /// The open intervals of a weekday, sorted; empty: closed all day.
    pub fn intervals(&self, day: Weekday) -> &[OpenInterval] {
        let index = usize::from(day.to_monday_zero_offset().unsigned_abs());
        self.weekly.get(index).map_or(&[], Vec::as_slice)
    }

    pub fn closed_dates(&self) -> &BTreeSet<Date> {
        &self.closed_dates
    }

    /// The steps for calls outside the hours; empty: the queue's fallback chain.
    /// Queue targets and `[contacts] allow` are checked by whoever holds the
    /// whole routing table.
    pub fn closed_steps(&self) -> &[FallbackStep] {
        &self.closed
    }
}

/// Checks a `[queues.hours]` table, calling `error` with the span of every
/// offending value (all of them, not just the first, like `routing::build`).
/// `None` when any was found.
pub fn build(
    raw: &RawHours,
    error: &mut dyn FnMut(Range<usize>, HoursError),
) -> Option<BusinessHours> {
    let mut ok = true;
    let mut fail = |span: Range<usize>, e: HoursError| {
        ok = false;
        error(span, e);
    };

    let timezone = match time_zone(raw.timezone.get_ref()) {
        Some(tz) => tz,
        None => {
            fail(
                raw.timezone.span(),
                HoursError::UnknownTimeZone(raw.timezone.get_ref().clone()),
            );
            TimeZone::UTC
        }
    };

    let mut weekly: [Vec<OpenInterval>; 7] = Default::default();
    if raw.weekly.get_ref().is_empty() {
        fail(raw.weekly.span(), HoursError::NoOpenDay);
    }
    for (key, value) in raw.weekly.get_ref() {
        let Some(index) = DAYS.iter().position(|d| d == key.get_ref()) else {
            fail(
                key.span(),
                HoursError::UnknownWeekday(key.get_ref().clone()),
            );
            continue;
        };
        match parse_day(DAYS[index], value.get_ref()) {
            Ok(intervals) => weekly[index] = intervals,
            Err(e) => fail(value.span(), e),
        }
    }

    let mut closed_dates = BTreeSet::new();
    for raw_date in &raw.closed_dates {
        match parse_date(raw_date.get_ref()) {
            Some(date) if !closed_dates.insert(date) => {
                fail(raw_date.span(), HoursError::DuplicateDate(date));
            }
            Some(_) => {}
            None => fail(
                raw_date.span(),
                HoursError::BadDate(raw_date.get_ref().clone()),
            ),
        }
    }

    let mut closed = Vec::new();
    if let Some(steps) = &raw.closed {
        if steps.get_ref().is_empty() {
            fail(steps.span(), HoursError::NoClosedStep);
        }
        for step in steps.get_ref() {
            match step.get_ref().parse::<FallbackStep>() {
                Ok(s) => closed.push(s),
                Err(message) => fail(step.span(), HoursError::BadClosedStep(message)),
            }
        }
    }

    ok.then_some(BusinessHours {
        timezone,
        weekly,
        closed_dates,
        closed,
    })
}

/// An IANA zone by name: the system database first (kept current by the OS),
/// then the bundled one, which also covers names a trimmed system database
/// lacks (Debian moved the old aliases to `tzdata-legacy`).
///
/// Names match without regard to case. jiff looks a name up in the list it
/// scanned from the folder, never as a path, so `../../etc/passwd` names nothing.
pub(super) fn time_zone(name: &str) -> Option<TimeZone> {
    jiff::tz::db()
        .get(name)
        .or_else(|_| TimeZoneDatabase::bundled().get(name))
        .ok()
}

/// One day's `"HH:MM-HH:MM[,HH:MM-HH:MM…]"`, sorted, checked to be disjoint.
fn parse_day(day: &'static str, value: &str) -> Result<Vec<OpenInterval>, HoursError> {
    if value.trim().is_empty() {
        return Err(HoursError::NoInterval { day });
    }
    let mut intervals = Vec::new();
    for piece in value.split(',').map(str::trim) {
        let Some((start, end)) = piece.split_once('-') else {
            return Err(HoursError::BadInterval {
                day,
                interval: piece.to_owned(),
            });
        };
        let (start, end) = (start.trim(), end.trim());
        let minute = |time: &str, is_end: bool| {
            parse_time(time, is_end).ok_or_else(|| HoursError::BadTime {
                day,
                time: time.to_owned(),
            })
        };
        let interval = OpenInterval {
            start: minute(start, false)?,
            end: minute(end, true)?,
        };
        if interval.start >= interval.end {
            return Err(HoursError::StartNotBeforeEnd {
                day,
                interval: piece.to_owned(),
            });
        }
        intervals.push(interval);
    }
    intervals.sort_unstable();
    if let Some(pair) = intervals.windows(2).find(|w| w[0].end > w[1].start) {
        return Err(HoursError::Overlap {
            day,
            first: pair[0],
            second: pair[1],
        });
    }
    Ok(intervals)
}

/// `HH:MM` as minutes after midnight; `24:00` only as an end.
fn parse_time(time: &str, is_end: bool) -> Option<u16> {
    let (h, m) = time.split_once(':')?;
    let two_digits = |s: &str| {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u16>().ok())
            .flatten()
    };
    let (h, m) = (two_digits(h)?, two_digits(m)?);
    let minutes = h * 60 + m;
    let fits = if is_end {
        minutes <= DAY_MINUTES
    } else {
        minutes < DAY_MINUTES
    };
    (h <= 24 && m < 60 && fits).then_some(minutes)
}

/// Exactly `YYYY-MM-DD` and a real date: jiff's own parser also takes
/// `20261225` or a time after the date, which in a routing file is more
/// likely a mistake than a wish.
fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    let year = text.get(0..4)?.parse().ok()?;
    let month = text.get(5..7)?.parse().ok()?;
    let day = text.get(8..10)?.parse().ok()?;
    Date::new(year, month, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table as it would sit under `[queues.hours]`, built; on failure every
    /// error with the source text its span covers.
    fn hours(table: &str) -> Result<BusinessHours, Vec<(String, HoursError)>> {
        let raw: RawHours = toml::from_str(table).expect("a well-formed [queues.hours] table");
        let mut errors = Vec::new();
        let built = build(&raw, &mut |span, e| {
            errors.push((table[span].to_owned(), e));
        });
        match built {
            Some(h) if errors.is_empty() => Ok(h),
            Some(_) => panic!("build returned hours despite {errors:?}"),
            None => {
                assert!(!errors.is_empty(), "build failed without saying why");
                Err(errors)
            }
        }
    }

    fn valid(table: &str) -> BusinessHours {
        hours(table).unwrap_or_else(|e| panic!("{table}\n{e:?}"))
    }

    /// The only error of `table`: the text it points at and its message.
    fn error(table: &str) -> (String, String) {
        let mut errors = hours(table).expect_err("an invalid table");
        assert_eq!(errors.len(), 1, "{errors:?}");
        let (text, e) = errors.remove(0);
        (text, e.to_string())
    }

    /// Milliseconds of an RFC 3339 instant written with its offset, so each
    /// test states both the real instant and what a wall clock shows.
    fn ms(instant: &str) -> i64 {
        instant
            .parse::<jiff::Timestamp>()
            .expect("an RFC 3339 instant")
            .as_millisecond()
    }

    fn ny(weekly: &str) -> BusinessHours {
        valid(&format!(
            "timezone = \"America/New_York\"\nweekly = {{ {weekly} }}\n"
        ))
    }

    fn berlin(weekly: &str) -> BusinessHours {
        valid(&format!(
            "timezone = \"Europe/Berlin\"\nweekly = {{ {weekly} }}\n"
        ))
    }

    const SPEC_EXAMPLE: &str = r#"
timezone = "America/New_York"
weekly = { mon = "09:00-17:00", tue = "09:00-17:00", sat = "10:00-14:00" }  # missing day: closed
closed_dates = ["2026-12-25"]
closed = ["voicemail"]        # steps for calls outside the hours
"#;

    #[test]
    fn the_spec_example_parses() {
        let h = valid(SPEC_EXAMPLE);
        assert_eq!(h.timezone().iana_name(), Some("America/New_York"));
        let shown = |day| {
            h.intervals(day)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(shown(Weekday::Monday), ["09:00-17:00"]);
        assert_eq!(shown(Weekday::Tuesday), ["09:00-17:00"]);
        assert_eq!(shown(Weekday::Saturday), ["10:00-14:00"]);
        for closed in [
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Sunday,
        ] {
            assert!(h.intervals(closed).is_empty(), "{closed:?}");
        }
        assert_eq!(
            h.closed_dates().iter().collect::<Vec<_>>(),
            [&jiff::civil::date(2026, 12, 25)]
        );
        assert_eq!(h.closed_steps(), [FallbackStep::Voicemail]);
    }

    #[test]
    fn closed_may_be_left_out_for_the_queues_own_fallback_chain() {
        let h = valid("timezone = \"UTC\"\nweekly = { mon = \"09:00-17:00\" }\n");
        assert!(h.closed_steps().is_empty());
        assert!(h.closed_dates().is_empty());
    }

    #[test]
    fn the_interval_includes_its_start_and_excludes_its_end_in_local_time() {
        let h = valid(SPEC_EXAMPLE);
        // Monday 2026-06-01, New York on EDT (UTC-4).
        assert!(!h.is_open(ms("2026-06-01T08:59:59.999-04:00")));
        assert!(h.is_open(ms("2026-06-01T09:00:00-04:00")));
        assert!(
            h.is_open(ms("2026-06-01T13:00:00Z")),
            "13:00 UTC is 09:00 in New York"
        );
        assert!(h.is_open(ms("2026-06-01T16:59:59.999-04:00")));
        assert!(!h.is_open(ms("2026-06-01T17:00:00-04:00")));
        assert!(
            h.is_open(ms("2026-06-01T17:00:00Z")),
            "17:00 UTC is 13:00 in New York"
        );
        assert!(
            !h.is_open(ms("2026-06-01T21:00:00Z")),
            "21:00 UTC is 17:00 in New York"
        );
    }

    #[test]
    fn a_day_left_out_is_closed_all_day() {
        let h = valid(SPEC_EXAMPLE);
        // Wednesday 2026-06-03 and Sunday 2026-06-07.
        for instant in [
            "2026-06-03T00:00:00-04:00",
            "2026-06-03T12:00:00-04:00",
            "2026-06-07T12:00:00-04:00",
        ] {
            assert!(!h.is_open(ms(instant)), "{instant}");
        }
        // Saturday 2026-06-06 has its own hours.
        assert!(!h.is_open(ms("2026-06-06T09:59:00-04:00")));
        assert!(h.is_open(ms("2026-06-06T10:00:00-04:00")));
        assert!(!h.is_open(ms("2026-06-06T14:00:00-04:00")));
    }

    #[test]
    fn a_day_may_have_several_intervals_in_any_order() {
        let h = ny(r#"mon = "13:00-17:00, 09:00-12:00""#);
        assert_eq!(
            h.intervals(Weekday::Monday)
                .iter()
                .map(|i| (i.start_minute(), i.end_minute()))
                .collect::<Vec<_>>(),
            [(540, 720), (780, 1020)]
        );
        assert!(h.is_open(ms("2026-06-01T11:59:59-04:00")));
        assert!(!h.is_open(ms("2026-06-01T12:00:00-04:00")), "lunch");
        assert!(!h.is_open(ms("2026-06-01T12:59:59-04:00")), "lunch");
        assert!(h.is_open(ms("2026-06-01T13:00:00-04:00")));
        // Intervals that touch do not overlap: no gap at noon.
        let h = ny(r#"mon = "09:00 - 12:00,12:00-17:00""#);
        assert!(h.is_open(ms("2026-06-01T12:00:00-04:00")));
        assert!(
            h.is_open(ms("2026-06-01T09:00:00-04:00")),
            "spaces around - are fine"
        );
    }

    #[test]
    fn twenty_four_hundred_ends_the_day_and_the_next_day_starts_closed() {
        let h = ny(r#"sun = "18:00-24:00", mon = "00:00-24:00""#);
        // Sunday 2026-06-07, then Monday, then Tuesday (closed).
        assert!(!h.is_open(ms("2026-06-07T17:59:59-04:00")));
        assert!(h.is_open(ms("2026-06-07T23:59:59.999-04:00")));
        assert!(h.is_open(ms("2026-06-08T00:00:00-04:00")));
        assert!(h.is_open(ms("2026-06-08T23:59:59.999-04:00")));
        assert!(!h.is_open(ms("2026-06-09T00:00:00-04:00")));
    }

    #[test]
    fn closed_dates_are_local_dates_not_utc_dates() {
        let every_day = DAYS.map(|d| format!("{d} = \"00:00-24:00\"")).join(", ");
        let h = valid(&format!(
            "timezone = \"America/New_York\"\nweekly = {{ {every_day} }}\nclosed_dates = [\"2026-12-25\"]\n"
        ));
        // 23:30 on Dec 24 in New York is already Dec 25 in UTC: still open.
        assert!(h.is_open(ms("2026-12-24T23:30:00-05:00")));
        assert!(h.is_open(ms("2026-12-25T04:30:00Z")));
        assert!(!h.is_open(ms("2026-12-25T00:00:00-05:00")));
        // 23:59 on Dec 25 in New York is Dec 26 in UTC: still closed.
        assert!(!h.is_open(ms("2026-12-25T23:59:59-05:00")));
        assert!(!h.is_open(ms("2026-12-26T04:59:59Z")));
        assert!(h.is_open(ms("2026-12-26T00:00:00-05:00")));
    }

    #[test]
    fn new_york_spring_forward_uses_the_new_offset_and_opens_after_the_gap() {
        // 2026-03-08: 02:00 EST (UTC-5) jumps to 03:00 EDT (UTC-4).
        let h = ny(r#"sun = "02:30-04:00", fri = "09:00-17:00", mon = "09:00-17:00""#);
        assert!(!h.is_open(ms("2026-03-08T06:59:59Z")), "01:59:59 EST");
        assert!(
            h.is_open(ms("2026-03-08T07:00:00Z")),
            "03:00 EDT, right after the gap"
        );
        assert!(h.is_open(ms("2026-03-08T07:59:59Z")), "03:59:59 EDT");
        assert!(!h.is_open(ms("2026-03-08T08:00:00Z")), "04:00 EDT");
        // 09:00 is 14:00 UTC the Friday before, 13:00 UTC the Monday after.
        assert!(!h.is_open(ms("2026-03-06T13:30:00Z")));
        assert!(h.is_open(ms("2026-03-06T14:00:00Z")));
        assert!(!h.is_open(ms("2026-03-09T12:59:59Z")));
        assert!(h.is_open(ms("2026-03-09T13:00:00Z")));
    }

    #[test]
    fn new_york_fall_back_is_open_both_times_the_clock_reads_an_hour() {
        // 2026-11-01: 02:00 EDT (UTC-4) falls back to 01:00 EST (UTC-5).
        let h = ny(r#"sun = "01:00-02:00", mon = "09:00-17:00""#);
        assert!(!h.is_open(ms("2026-11-01T04:59:59Z")), "00:59:59 EDT");
        assert!(h.is_open(ms("2026-11-01T05:00:00Z")), "01:00 EDT");
        assert!(h.is_open(ms("2026-11-01T05:59:59Z")), "01:59:59 EDT");
        assert!(h.is_open(ms("2026-11-01T06:00:00Z")), "01:00 EST, again");
        assert!(h.is_open(ms("2026-11-01T06:59:59Z")), "01:59:59 EST");
        assert!(!h.is_open(ms("2026-11-01T07:00:00Z")), "02:00 EST");
        // The Monday after: 09:00 EST is 14:00 UTC.
        assert!(!h.is_open(ms("2026-11-02T13:00:00Z")));
        assert!(h.is_open(ms("2026-11-02T14:00:00Z")));
    }

    #[test]
    fn berlin_spring_forward_skips_the_hour_that_does_not_exist() {
        // 2026-03-29: 02:00 CET (UTC+1) jumps to 03:00 CEST (UTC+2).
        let gap = berlin(r#"sun = "02:00-03:00""#);
        for instant in [
            "2026-03-29T00:59:59Z", // 01:59:59 CET
            "2026-03-29T01:00:00Z", // 03:00 CEST
            "2026-03-29T01:30:00Z",
        ] {
            assert!(!gap.is_open(ms(instant)), "{instant}");
        }
        let h = berlin(r#"sun = "01:30-02:30", mon = "09:00-17:00""#);
        assert!(h.is_open(ms("2026-03-29T00:30:00Z")), "01:30 CET");
        assert!(h.is_open(ms("2026-03-29T00:59:59Z")), "01:59:59 CET");
        assert!(!h.is_open(ms("2026-03-29T01:00:00Z")), "03:00 CEST");
        assert!(!h.is_open(ms("2026-03-30T06:59:59Z")), "08:59:59 CEST");
        assert!(h.is_open(ms("2026-03-30T07:00:00Z")), "09:00 CEST");
    }

    #[test]
    fn berlin_fall_back_is_open_both_times_the_clock_reads_an_hour() {
        // 2026-10-25: 03:00 CEST (UTC+2) falls back to 02:00 CET (UTC+1).
        let h = berlin(r#"sun = "02:00-03:00", mon = "09:00-17:00""#);
        assert!(!h.is_open(ms("2026-10-24T23:59:59Z")), "01:59:59 CEST");
        assert!(h.is_open(ms("2026-10-25T00:00:00Z")), "02:00 CEST");
        assert!(h.is_open(ms("2026-10-25T00:59:59Z")), "02:59:59 CEST");
        assert!(h.is_open(ms("2026-10-25T01:00:00Z")), "02:00 CET, again");
        assert!(h.is_open(ms("2026-10-25T01:59:59Z")), "02:59:59 CET");
        assert!(!h.is_open(ms("2026-10-25T02:00:00Z")), "03:00 CET");
        assert!(!h.is_open(ms("2026-10-26T07:59:59Z")), "08:59:59 CET");
        assert!(h.is_open(ms("2026-10-26T08:00:00Z")), "09:00 CET");
    }

    #[test]
    fn instants_no_clock_gives_are_closed_without_panicking() {
        let every_day = DAYS.map(|d| format!("{d} = \"00:00-24:00\"")).join(", ");
        let h = ny(&every_day);
        assert!(h.is_open(0));
        assert!(h.is_open(-1));
        assert!(!h.is_open(i64::MIN));
        assert!(!h.is_open(i64::MAX));
    }

    #[test]
    fn zones_resolve_from_the_bundled_database_without_a_system_one() {
        // CI's fresh Debian may have no /usr/share/zoneinfo: `time_zone` then
        // relies on the copy compiled in, which must agree with the system's.
        // (Compared by offsets: the two copies differ in encoding, not in rules.)
        let bundled = TimeZoneDatabase::bundled();
        let instants: Vec<jiff::Timestamp> = (0..24 * 365)
            .map(|hour| jiff::Timestamp::from_second(1_767_225_600 + hour * 3600).expect("2026"))
            .collect();
        for name in ["America/New_York", "Europe/Berlin", "Asia/Kolkata", "UTC"] {
            let packed = bundled.get(name).expect(name);
            let used = time_zone(name).expect(name);
            for &i in &instants {
                assert_eq!(packed.to_offset(i), used.to_offset(i), "{name} at {i}");
            }
        }
        let ny = bundled.get("America/New_York").expect("bundled");
        let offset = |i: &str| ny.to_offset(i.parse().expect("instant")).seconds();
        assert_eq!(offset("2026-03-08T06:59:59Z"), -5 * 3600);
        assert_eq!(offset("2026-03-08T07:00:00Z"), -4 * 3600);
    }

    #[test]
    fn an_unknown_time_zone_is_refused_at_its_value() {
        assert_eq!(
            error("timezone = \"America/New_Yrok\"\nweekly = { mon = \"09:00-17:00\" }\n"),
            (
                "\"America/New_Yrok\"".to_owned(),
                "hours.timezone \"America/New_Yrok\" is not an IANA time zone name (like \"America/New_York\")".to_owned()
            )
        );
        for name in [
            "",
            "EST5EDT-ish",
            "../../etc/passwd",
            "/etc/localtime",
            "Mars/Olympus",
        ] {
            let table = format!("timezone = {name:?}\nweekly = {{ mon = \"09:00-17:00\" }}\n");
            assert!(
                matches!(&error(&table).1, m if m.starts_with("hours.timezone")),
                "{name}"
            );
        }
    }

    fn mon(value: &str) -> (String, String) {
        error(&format!(
            "timezone = \"UTC\"\nweekly = {{ mon = {value:?} }}\n"
        ))
    }

    #[test]
    fn a_bad_time_is_refused_naming_the_day_and_the_time() {
        assert_eq!(
            mon("9:00-17:00"),
            (
                "\"9:00-17:00\"".to_owned(),
                "hours.weekly.mon time \"9:00\" is not HH:MM between 00:00 and 24:00".to_owned()
            )
        );
        for (value, time) in [
            ("09:60-17:00", "09:60"),
            ("25:00-26:00", "25:00"),
            ("24:00-24:00", "24:00"),
            ("09:00-24:01", "24:01"),
            ("09:00-17", "17"),
            ("+9:00-17:00", "+9:00"),
            ("09:00-1７:00", "1７:00"),
        ] {
            assert_eq!(
                mon(value).1,
                format!("hours.weekly.mon time {time:?} is not HH:MM between 00:00 and 24:00"),
                "{value}"
            );
        }
        assert_eq!(
            mon("0900 17:00").1,
            "hours.weekly.mon interval \"0900 17:00\" is not HH:MM-HH:MM (like \"09:00-17:00\")"
        );
        assert_eq!(
            mon("").1,
            "hours.weekly.mon lists no interval: leave the day out to keep it closed, or write \"09:00-17:00\""
        );
        assert!(
            mon("09:00-12:00,")
                .1
                .starts_with("hours.weekly.mon interval \"\"")
        );
    }

    #[test]
    fn an_interval_must_start_before_it_ends() {
        assert_eq!(
            mon("17:00-09:00"),
            (
                "\"17:00-09:00\"".to_owned(),
                "hours.weekly.mon interval \"17:00-09:00\" must start before it ends (an interval cannot cross midnight: write 22:00-24:00 on one day and 00:00-02:00 on the next)".to_owned()
            )
        );
        assert!(
            mon("09:00-09:00")
                .1
                .contains("\"09:00-09:00\" must start before it ends")
        );
        assert!(mon("22:00-02:00").1.contains("cannot cross midnight"));
    }

    #[test]
    fn intervals_of_one_day_must_not_overlap() {
        assert_eq!(
            mon("09:00-12:00,11:00-13:00"),
            (
                "\"09:00-12:00,11:00-13:00\"".to_owned(),
                "hours.weekly.mon intervals 09:00-12:00 and 11:00-13:00 overlap".to_owned()
            )
        );
        // Out of order, and one inside another.
        assert_eq!(
            mon("13:00-17:00,09:00-13:30").1,
            "hours.weekly.mon intervals 09:00-13:30 and 13:00-17:00 overlap"
        );
        assert_eq!(
            mon("08:00-18:00,12:00-13:00").1,
            "hours.weekly.mon intervals 08:00-18:00 and 12:00-13:00 overlap"
        );
    }

    #[test]
    fn an_unknown_weekday_key_is_refused_at_the_key() {
        assert_eq!(
            error("timezone = \"UTC\"\nweekly = { monday = \"09:00-17:00\" }\n"),
            (
                "monday".to_owned(),
                "hours.weekly key \"monday\" is not a weekday: expected mon, tue, wed, thu, fri, sat or sun".to_owned()
            )
        );
        // Written as its own table, one day a line.
        let (text, message) =
            error("timezone = \"UTC\"\n[weekly]\nmon = \"09:00-17:00\"\nMon = \"09:00-17:00\"\n");
        assert_eq!(text, "Mon");
        assert!(message.starts_with("hours.weekly key \"Mon\""), "{message}");
    }

    #[test]
    fn weekly_must_open_on_some_day() {
        assert_eq!(
            error("timezone = \"UTC\"\nweekly = {}\n"),
            (
                "{}".to_owned(),
                "hours.weekly opens on no day: the queue would always be closed".to_owned()
            )
        );
    }

    fn dates(list: &str) -> (String, String) {
        error(&format!(
            "timezone = \"UTC\"\nweekly = {{ mon = \"09:00-17:00\" }}\nclosed_dates = [{list}]\n"
        ))
    }

    #[test]
    fn a_bad_closed_date_is_refused_at_the_entry() {
        assert_eq!(
            dates("\"2026-12-25\", \"2026-02-30\""),
            (
                "\"2026-02-30\"".to_owned(),
                "hours.closed_dates entry \"2026-02-30\" is not a date YYYY-MM-DD (like \"2026-12-25\")".to_owned()
            )
        );
        for bad in [
            "20261225",
            "2026-12-25T00:00",
            "2026-1-05",
            "26-12-25",
            "2026-13-01",
            "",
            "2026/12/25",
            "2026-12-2５",
        ] {
            assert_eq!(
                dates(&format!("{bad:?}")).1,
                format!(
                    "hours.closed_dates entry {bad:?} is not a date YYYY-MM-DD (like \"2026-12-25\")"
                ),
            );
        }
        assert_eq!(
            dates("\"2026-12-25\", \"2026-12-25\""),
            (
                "\"2026-12-25\"".to_owned(),
                "hours.closed_dates lists 2026-12-25 twice".to_owned()
            )
        );
        assert!(valid("timezone = \"UTC\"\nweekly = { mon = \"09:00-17:00\" }\nclosed_dates = [\"2028-02-29\"]\n")
            .closed_dates()
            .contains(&jiff::civil::date(2028, 2, 29)));
    }

    #[test]
    fn closed_steps_use_the_fallback_step_parser() {
        let table = |closed: &str| {
            format!("timezone = \"UTC\"\nweekly = {{ mon = \"09:00-17:00\" }}\nclosed = {closed}\n")
        };
        assert_eq!(
            valid(&table(r#"["queue:night", "number:+15005550010"]"#)).closed_steps(),
            [
                FallbackStep::Queue("night".into()),
                FallbackStep::Number("+15005550010".into())
            ]
        );
        assert_eq!(
            error(&table(r#"["voicemail", "vociemail"]"#)),
            (
                "\"vociemail\"".to_owned(),
                "hours.closed: bad fallback step \"vociemail\": expected queue:NAME, number:E164, client:IDENTITY or voicemail".to_owned()
            )
        );
        assert_eq!(
            error(&table("[]")),
            (
                "[]".to_owned(),
                "hours.closed lists no step: leave it out to use the queue's fallback chain, or write [\"voicemail\"]".to_owned()
            )
        );
    }

    #[test]
    fn every_problem_of_a_table_is_reported_each_at_its_value() {
        let table = r#"
timezone = "Nowhere/Special"
weekly = { mon = "17:00-09:00", tue = "9-5", xyz = "09:00-17:00", wed = "09:00-12:00,10:00-11:00" }
closed_dates = ["2026-12-32"]
closed = ["email"]
"#;
        let errors = hours(table).expect_err("six problems");
        let texts: Vec<&str> = errors.iter().map(|(text, _)| text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "\"Nowhere/Special\"",
                "\"17:00-09:00\"",
                "\"9-5\"",
                "\"09:00-12:00,10:00-11:00\"",
                "xyz",
                "\"2026-12-32\"",
                "\"email\"",
            ]
        );
        assert!(matches!(errors[0].1, HoursError::UnknownTimeZone(_)));
        assert!(matches!(
            errors[1].1,
            HoursError::StartNotBeforeEnd { day: "mon", .. }
        ));
        assert!(matches!(
            errors[2].1,
            HoursError::BadTime { day: "tue", .. }
        ));
        assert!(matches!(
            errors[3].1,
            HoursError::Overlap { day: "wed", .. }
        ));
        assert!(matches!(errors[4].1, HoursError::UnknownWeekday(_)));
        assert!(matches!(errors[5].1, HoursError::BadDate(_)));
        assert!(matches!(errors[6].1, HoursError::BadClosedStep(_)));
    }

    #[test]
    fn missing_or_unknown_settings_are_refused_by_the_toml_reader() {
        let message = |table: &str| {
            toml::from_str::<RawHours>(table)
                .expect_err("invalid")
                .message()
                .to_owned()
        };
        assert!(
            message("weekly = { mon = \"09:00-17:00\" }\n").contains("missing field `timezone`")
        );
        assert!(message("timezone = \"UTC\"\n").contains("missing field `weekly`"));
        assert!(
            message("timezone = \"UTC\"\nweekly = { mon = \"09:00-17:00\" }\nclosed_date = []\n")
                .contains("unknown field `closed_date`")
        );
    }
}
