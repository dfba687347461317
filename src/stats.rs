//! A queue's figures: the service level over the last 15 and 60 minutes and
//! today, today's tiles and the last hour's trend, computed from the buckets
//! the scripts keep in Redis (lua/lib/stats.lua) and one Redis `TIME`. Pure
//! functions of (buckets, now, time zone), so they are tested without a clock,
//! and one read per queue, whatever the traffic: a bucket holds sums, never
//! calls.
//!
//! The definitions (docs/console.md says the same for the people reading the
//! tiles): service level = answered within the queue's `service_level_secs` /
//! (answered + abandoned), where callers who hung up within 5 s of arriving
//! (short abandons) count in neither; ASA = mean wait of answered calls, from
//! arrival to answer (ringing included); AHT = mean talk time plus the wrap-up
//! that follows (`wrap_up_secs`), the industry's handle time.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Time;
use jiff::tz::TimeZone;
use serde::Serialize;
use utoipa::ToSchema;

/// Minutes in the trend, and in the longer service level window.
pub const TREND_MINUTES: i64 = 60;
/// The shorter service level window, in minutes.
pub const SHORT_WINDOW_MINUTES: i64 = 15;
const MINUTE_MS: i64 = 60_000;
const QUARTER_MS: i64 = 900_000;

/// One bucket's sums, or several added up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub offered: u64,
    pub answered: u64,
    /// Answered within the service level threshold.
    pub within: u64,
    /// Hung up before an answer, after 5 s or more.
    pub abandoned: u64,
    /// Hung up before an answer, within 5 s of arriving.
    pub short_abandoned: u64,
    /// Sum of the answered calls' waits.
    pub wait_ms: u64,
    pub handled: u64,
    /// Sum of the handled calls' talk and wrap-up.
    pub handle_ms: u64,
    /// The most callers seen waiting (a bucket's peak; sums add peaks).
    pub peak_waiting: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.offered += o.offered;
        self.answered += o.answered;
        self.within += o.within;
        self.abandoned += o.abandoned;
        self.short_abandoned += o.short_abandoned;
        self.wait_ms += o.wait_ms;
        self.handled += o.handled;
        self.handle_ms += o.handle_ms;
        self.peak_waiting = self.peak_waiting.max(o.peak_waiting);
    }

    /// Within over answered and abandoned, in percent (one decimal); None
    /// when nothing was answered or abandoned: an idle queue has no service
    /// level, rather than 0 %.
    pub fn service_level_pct(&self) -> Option<f64> {
        pct(self.within, self.answered + self.abandoned)
    }
}

fn pct(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

fn mean_secs(sum_ms: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| (sum_ms as f64 / n as f64 / 100.0).round() / 10.0)
}

/// A queue's buckets as Redis holds them: minutes and quarter hours since
/// the epoch to their sums. Stale ring slots are in too: each window picks
/// only the buckets it covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Buckets {
    pub minutes: BTreeMap<i64, Counts>,
    pub quarters: BTreeMap<i64, Counts>,
}

/// Why a `stats:<queue>` hash could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad figures field {field:?} = {value:?}")]
pub struct BadBucket {
    pub field: String,
    pub value: String,
}

impl Buckets {
    /// From the hash's fields ('m<i>' / 'q<i>' -> "<bucket>,o,a,w,x,s,aw,h,ht,pk").
    pub fn parse(fields: &[(String, String)]) -> Result<Buckets, BadBucket> {
        let mut buckets = Buckets::default();
        for (field, value) in fields {
            let bad = || BadBucket {
                field: field.clone(),
                value: value.clone(),
            };
            let numbers: Vec<u64> = value
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| bad())?;
            let [bucket, o, a, w, x, s, aw, h, ht, pk] = numbers[..] else {
                return Err(bad());
            };
            let counts = Counts {
                offered: o,
                answered: a,
                within: w,
                abandoned: x,
                short_abandoned: s,
                wait_ms: aw,
                handled: h,
                handle_ms: ht,
                peak_waiting: pk,
            };
            let bucket = i64::try_from(bucket).map_err(|_| bad())?;
            match field.chars().next() {
                Some('m') => buckets.minutes.insert(bucket, counts),
                Some('q') => buckets.quarters.insert(bucket, counts),
                _ => return Err(bad()),
            };
        }
        Ok(buckets)
    }

    fn sum(map: &BTreeMap<i64, Counts>, from: i64, to: i64) -> Counts {
        let mut total = Counts::default();
        for counts in map.range(from..=to).map(|(_, c)| c) {
            total.add(counts);
        }
        total
    }
}

/// The service level over one window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WindowDoc {
    /// Where the window starts (RFC 3339); it ends now. The minute windows
    /// start at a whole minute (so they span up to a minute more than their
    /// name), today at the start of the local day (00:00).
    pub start: String,
    pub answered: u64,
    /// Of `answered`, within the queue's `service_level_secs`.
    pub within: u64,
    /// Hung up before an answer after waiting 5 s or more.
    pub abandoned: u64,
    /// Hung up within 5 s: in neither side of the percentage.
    pub short_abandoned: u64,
    /// within / (answered + abandoned) × 100, one decimal; null when nothing
    /// was answered or abandoned in the window.
    pub pct: Option<f64>,
}

/// Service level windows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceLevelDoc {
    /// The queue's `service_level_secs` (its `[queues.hold]`'s, else 20);
    /// null in the totals, whose queues may differ.
    pub target_secs: Option<u32>,
    pub last_15m: WindowDoc,
    pub last_60m: WindowDoc,
    pub today: WindowDoc,
}

/// Today's tiles, from the start of the local day.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TodayDoc {
    /// The local day's start, 00:00 (RFC 3339, in the zone's offset); in the totals,
    /// the earliest of the queues'.
    pub start: String,
    /// The IANA zone of "today" (null in the totals).
    pub timezone: Option<String>,
    /// Calls that came in to the queue (its numbers, or the default queue),
    /// within its hours.
    pub offered: u64,
    pub answered: u64,
    /// Hung up before an answer after 5 s or more.
    pub abandoned: u64,
    /// Hung up within 5 s.
    pub short_abandoned: u64,
    /// Average speed of answer: mean wait of answered calls, arrival to
    /// answer, ringing included; null with none answered.
    pub asa_secs: Option<f64>,
    /// Average handle time: mean talk plus wrap-up of the answered calls
    /// that ended today; null with none.
    pub aht_secs: Option<f64>,
    /// As `service_level.today.pct`.
    pub service_level_pct: Option<f64>,
    /// abandoned / (answered + abandoned) × 100; null with neither.
    pub abandoned_pct: Option<f64>,
}

/// One minute of the trend.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrendPoint {
    /// The minute's start (RFC 3339).
    pub at: String,
    /// The most callers seen waiting in that minute (in the totals, the sum
    /// of the queues' peaks).
    pub waiting: u64,
    pub answered: u64,
    pub within: u64,
    pub abandoned: u64,
    /// That minute's service level; null when nothing was answered or
    /// abandoned in it.
    pub service_level_pct: Option<f64>,
}

/// A queue's figures (or the totals of every queue).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Figures {
    pub service_level: ServiceLevelDoc,
    pub today: TodayDoc,
    /// The last 60 minutes, oldest first, the current (partial) minute last.
    pub trend: Vec<TrendPoint>,
}

/// What the totals are summed from: each queue's windows as counts.
#[derive(Debug, Clone, Default)]
pub struct Sums {
    last_15m: Counts,
    last_60m: Counts,
    today: Counts,
    /// Earliest local midnight of the queues.
    today_start_ms: Option<i64>,
    trend: Vec<Counts>,
}

/// The local midnight of `now_ms` in `zone`, in ms since the epoch; the UTC
/// midnight should jiff fail (an instant out of its range).
pub fn local_midnight_ms(now_ms: i64, zone: &TimeZone) -> i64 {
    Timestamp::from_millisecond(now_ms)
        .and_then(|t| {
            let day = zone.to_datetime(t).date();
            // `compatible`: a zone whose clocks skip midnight starts the day
            // at the first instant after the gap.
            zone.to_ambiguous_timestamp(day.to_datetime(Time::midnight()))
                .compatible()
        })
        .map(|t| t.as_millisecond())
        .unwrap_or(now_ms - now_ms.rem_euclid(86_400_000))
}

/// `ms` as RFC 3339 in `zone`'s offset then (whole seconds).
fn rfc3339(ms: i64, zone: &TimeZone) -> String {
    let Ok(t) = Timestamp::from_millisecond(ms - ms.rem_euclid(1000)) else {
        return String::new();
    };
    let local = zone.to_datetime(t);
    let offset = zone.to_offset(t).seconds();
    let sign = if offset < 0 { '-' } else { '+' };
    let offset = offset.unsigned_abs();
    format!(
        "{local}{sign}{:02}:{:02}",
        offset / 3600,
        offset % 3600 / 60
    )
}

fn window(counts: &Counts, start_ms: i64, zone: &TimeZone) -> WindowDoc {
    WindowDoc {
        start: rfc3339(start_ms, zone),
        answered: counts.answered,
        within: counts.within,
        abandoned: counts.abandoned,
        short_abandoned: counts.short_abandoned,
        pct: counts.service_level_pct(),
    }
}

fn today(counts: &Counts, start_ms: i64, zone: &TimeZone, name: Option<String>) -> TodayDoc {
    TodayDoc {
        start: rfc3339(start_ms, zone),
        timezone: name,
        offered: counts.offered,
        answered: counts.answered,
        abandoned: counts.abandoned,
        short_abandoned: counts.short_abandoned,
        asa_secs: mean_secs(counts.wait_ms, counts.answered),
        aht_secs: mean_secs(counts.handle_ms, counts.handled),
        service_level_pct: counts.service_level_pct(),
        abandoned_pct: pct(counts.abandoned, counts.answered + counts.abandoned),
    }
}

fn trend(points: &[Counts], now_minute: i64) -> Vec<TrendPoint> {
    let first = now_minute - (points.len() as i64 - 1);
    points
        .iter()
        .enumerate()
        .map(|(i, c)| TrendPoint {
            at: rfc3339((first + i as i64) * MINUTE_MS, &TimeZone::UTC),
            waiting: c.peak_waiting,
            answered: c.answered,
            within: c.within,
            abandoned: c.abandoned,
            service_level_pct: c.service_level_pct(),
        })
        .collect()
}

/// One queue's figures at `now_ms`, and its sums for the totals.
pub fn figures(
    buckets: &Buckets,
    now_ms: i64,
    zone: &TimeZone,
    target_secs: u32,
) -> (Figures, Sums) {
    let minute = now_ms.div_euclid(MINUTE_MS);
    let short_from = minute - (SHORT_WINDOW_MINUTES - 1);
    let long_from = minute - (TREND_MINUTES - 1);
    let midnight = local_midnight_ms(now_ms, zone);
    let last_15m = Buckets::sum(&buckets.minutes, short_from, minute);
    let last_60m = Buckets::sum(&buckets.minutes, long_from, minute);
    let today_counts = Buckets::sum(
        &buckets.quarters,
        midnight.div_euclid(QUARTER_MS),
        now_ms.div_euclid(QUARTER_MS),
    );
    let points: Vec<Counts> = (long_from..=minute)
        .map(|m| buckets.minutes.get(&m).copied().unwrap_or_default())
        .collect();
    let figures = Figures {
        service_level: ServiceLevelDoc {
            target_secs: Some(target_secs),
            last_15m: window(&last_15m, short_from * MINUTE_MS, zone),
            last_60m: window(&last_60m, long_from * MINUTE_MS, zone),
            today: window(&today_counts, midnight, zone),
        },
        today: today(
            &today_counts,
            midnight,
            zone,
            zone.iana_name().map(str::to_owned),
        ),
        trend: trend(&points, minute),
    };
    let sums = Sums {
        last_15m,
        last_60m,
        today: today_counts,
        today_start_ms: Some(midnight),
        trend: points,
    };
    (figures, sums)
}

/// The figures of every queue together: counts added (waiting peaks too,
/// minute by minute), percentages and means computed from the sums.
pub fn totals(all: &[Sums], now_ms: i64) -> Figures {
    let minute = now_ms.div_euclid(MINUTE_MS);
    let mut sum = Sums {
        trend: vec![Counts::default(); TREND_MINUTES as usize],
        ..Sums::default()
    };
    for s in all {
        sum.last_15m.add(&s.last_15m);
        sum.last_60m.add(&s.last_60m);
        sum.today.add(&s.today);
        sum.today_start_ms = match (sum.today_start_ms, s.today_start_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for (total, point) in sum.trend.iter_mut().zip(&s.trend) {
            let waiting = total.peak_waiting + point.peak_waiting;
            total.add(point);
            total.peak_waiting = waiting;
        }
    }
    let utc = TimeZone::UTC;
    let midnight = sum
        .today_start_ms
        .unwrap_or_else(|| local_midnight_ms(now_ms, &utc));
    let long_from = minute - (TREND_MINUTES - 1);
    Figures {
        service_level: ServiceLevelDoc {
            target_secs: None,
            last_15m: window(
                &sum.last_15m,
                (minute - (SHORT_WINDOW_MINUTES - 1)) * MINUTE_MS,
                &utc,
            ),
            last_60m: window(&sum.last_60m, long_from * MINUTE_MS, &utc),
            today: window(&sum.today, midnight, &utc),
        },
        today: today(&sum.today, midnight, &utc, None),
        trend: trend(&sum.trend, minute),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap_or_else(|_| {
            jiff::tz::TimeZoneDatabase::bundled()
                .get(name)
                .expect("bundled zone")
        })
    }

    #[test]
    fn an_idle_queue_has_no_service_level_rather_than_zero() {
        let (f, _) = figures(&Buckets::default(), 1_800_000_000_000, &TimeZone::UTC, 20);
        assert_eq!(f.service_level.last_15m.pct, None);
        assert_eq!(f.service_level.today.pct, None);
        assert_eq!(f.today.asa_secs, None);
        assert_eq!(f.trend.len(), 60);
        assert!(f.trend.iter().all(|p| p.service_level_pct.is_none()));
    }

    #[test]
    fn today_starts_at_the_zones_local_midnight() {
        // 2026-07-01T03:30Z is 23:30 the day before in New York (UTC-4).
        let now = Timestamp::from_second(1_782_876_600).unwrap();
        assert_eq!(now.to_string(), "2026-07-01T03:30:00Z");
        let ny = local_midnight_ms(now.as_millisecond(), &zone("America/New_York"));
        assert_eq!(
            Timestamp::from_millisecond(ny).unwrap().to_string(),
            "2026-06-30T04:00:00Z"
        );
        // Kathmandu is UTC+5:45: still a whole number of quarter hours.
        let ktm = local_midnight_ms(now.as_millisecond(), &zone("Asia/Kathmandu"));
        assert_eq!(ktm.rem_euclid(QUARTER_MS), 0);
    }

    #[test]
    fn windows_take_only_their_buckets() {
        let now: i64 = 1_800_000_000_000;
        let minute = now / MINUTE_MS;
        let mut b = Buckets::default();
        let c = |answered, within, abandoned| Counts {
            answered,
            within,
            abandoned,
            ..Counts::default()
        };
        b.minutes.insert(minute, c(1, 1, 0));
        b.minutes.insert(minute - 20, c(3, 0, 1));
        b.minutes.insert(minute - 70, c(9, 9, 0));
        b.quarters.insert(now / QUARTER_MS, c(4, 1, 1));
        let (f, sums) = figures(&b, now, &TimeZone::UTC, 20);
        assert_eq!(f.service_level.last_15m.pct, Some(100.0));
        assert_eq!(f.service_level.last_60m.answered, 4);
        assert_eq!(f.service_level.last_60m.pct, Some(20.0));
        assert_eq!(f.service_level.today.pct, Some(20.0));
        assert_eq!(f.today.abandoned_pct, Some(20.0));
        let t = totals(&[sums.clone(), sums], now);
        assert_eq!(t.service_level.last_60m.answered, 8);
        assert_eq!(t.trend[59].answered, 2);
    }

    #[test]
    fn a_malformed_field_is_an_error() {
        let bad = vec![("m1".to_owned(), "1,2,3".to_owned())];
        assert!(Buckets::parse(&bad).is_err());
        let good = vec![("q3".to_owned(), "7,1,1,1,0,0,2500,0,0,2".to_owned())];
        let b = Buckets::parse(&good).expect("parses");
        assert_eq!(b.quarters[&7].wait_ms, 2500);
    }
}
