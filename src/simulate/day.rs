//! `simulate --day SECS`: a working day played in SECS seconds. Callers
//! arrive at random (a Poisson process) at a rate that starts at 40 % of
//! `--rate`, peaks at `--rate` at lunch (mid-day) and falls back; the agents
//! `--agents` creates sign in and out on a fixed plan (a late shift for the
//! peak, lunch breaks during it, the late shift leaving early). Handle times
//! are log-normal (`--talk-sigma`) and callers abandon at random while they
//! wait (`--wait-hangup`), so the estimated waits are judged against a day
//! that moves (src/simulate/estimates.rs).

use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::SimulateArgs;

/// The lunch peak: a bell this wide (a share of the day) around mid-day.
const PEAK_WIDTH: f64 = 0.125;
/// The rate outside the peak, as a share of the peak's.
const BASE_SHARE: f64 = 0.4;

/// The arrival rate (calls a second) `at` this share of the day.
fn rate_at(peak: f64, at: f64) -> f64 {
    let x = (at - 0.5) / PEAK_WIDTH;
    peak * (BASE_SHARE + (1.0 - BASE_SHARE) * (-x * x).exp())
}

/// When each call of the day arrives, since the start: a Poisson process of
/// the day's rate (by thinning), drawn from `seed`.
pub(crate) fn arrivals(seed: u64, day: Duration, peak: f64) -> Vec<Duration> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xDA7);
    let secs = day.as_secs_f64();
    let mut out = Vec::new();
    let mut t = 0.0;
    if peak <= 0.0 || secs <= 0.0 {
        return out;
    }
    loop {
        // Exponential gaps at the peak rate, each kept with the share the
        // rate then has of it.
        t += -(1.0 - rng.random::<f64>()).ln() / peak;
        if t >= secs {
            return out;
        }
        if rng.random::<f64>() < rate_at(peak, t / secs) / peak {
            out.push(Duration::from_secs_f64(t));
        }
    }
}

/// One change of the plan: at this share of the day, these agents (indexes
/// of `sim-<i>`) move to `state`.
struct Shift {
    at: f64,
    from: f64,
    to: f64,
    state: &'static str,
}

/// The day's plan, as shares of the day and of the agents: 70 % start the
/// day; the other 30 % sign in before the peak; the first 15 % go to lunch
/// during it and come back; the late 30 % leave before the day ends.
const PLAN: [Shift; 5] = [
    Shift {
        at: 0.0,
        from: 0.7,
        to: 1.0,
        state: "offline",
    },
    Shift {
        at: 0.3,
        from: 0.7,
        to: 1.0,
        state: "available",
    },
    Shift {
        at: 0.5,
        from: 0.0,
        to: 0.15,
        state: "away",
    },
    Shift {
        at: 0.65,
        from: 0.0,
        to: 0.15,
        state: "available",
    },
    Shift {
        at: 0.85,
        from: 0.7,
        to: 1.0,
        state: "offline",
    },
];

/// Plays the plan against the first server: each move when its time comes.
/// An agent on a call cannot be moved (409): as a real one, it finishes the
/// call first, so the move is asked again every half second, for up to a
/// minute. Returns how many moves never went through.
pub(crate) async fn play_shifts(
    http: reqwest::Client,
    args: SimulateArgs,
    started: std::time::Instant,
) -> anyhow::Result<u64> {
    let base = args.urls[0].trim_end_matches('/').to_owned();
    let day = Duration::from_secs_f64(args.day.unwrap_or(0.0));
    let n = args.agents as f64;
    let mut missed = 0;
    for shift in &PLAN {
        tokio::time::sleep_until((started + day.mul_f64(shift.at)).into()).await;
        let ids = (shift.from * n).round() as usize..(shift.to * n).round() as usize;
        let mut moves = tokio::task::JoinSet::new();
        for i in ids {
            let url = format!("{base}/v1/agents/sim-{i}/state");
            let (http, token) = (http.clone(), args.admin_token.clone());
            let body = serde_json::json!({ "state": shift.state });
            moves.spawn(async move {
                for _ in 0..120 {
                    let sent = http.put(&url).bearer_auth(&token).json(&body).send().await;
                    match sent {
                        Ok(r) if r.status().is_success() => return true,
                        Ok(r) if r.status() == reqwest::StatusCode::CONFLICT => {}
                        _ => return false,
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                false
            });
        }
        while let Some(done) = moves.join_next().await {
            if !done.context("an agent's move panicked")? {
                missed += 1;
            }
        }
    }
    Ok(missed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_peaks_at_lunch_and_replays_from_its_seed() {
        let day = Duration::from_secs(1000);
        let calls = arrivals(7, day, 1.0);
        assert_eq!(calls, arrivals(7, day, 1.0), "the same seed, the same day");
        assert_ne!(calls, arrivals(8, day, 1.0));
        let in_window = |from: u64, to: u64| {
            calls
                .iter()
                .filter(|t| **t >= Duration::from_secs(from) && **t < Duration::from_secs(to))
                .count()
        };
        // 100 s at the peak against 100 s at the start: about 1.0 against
        // 0.4 calls a second.
        let (peak, morning) = (in_window(450, 550), in_window(0, 100));
        assert!(peak > 2 * morning, "peak {peak}, morning {morning}");
        assert!(calls.windows(2).all(|w| w[0] <= w[1]), "in order");
        assert!(calls.last().is_some_and(|t| *t < day));
    }
}
