//! `simulate --day SECS`: a working day played in SECS seconds. Callers
//! arrive at random (a Poisson process) at a rate that starts at 40 % of
//! `--rate`, peaks at `--rate` at lunch (mid-day) and falls back; the agents
//! `--agents` creates sign in and out one by one on a plan drawn from the
//! seed (a late shift for the peak, breaks during it, the late shift leaving
//! early). Handle times
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

/// One agent's move: at this share of the day, agent `sim-<agent>` moves to
/// `state`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Move {
    pub at: f64,
    pub agent: usize,
    pub state: &'static str,
}

/// The day's plan for `agents` agents, drawn from `seed`, each agent on its
/// own, as a workforce plan staggers them: 70 % start the day; the other 30 %
/// sign in one by one between 20 % and 40 % of the day (before the peak) and
/// sign out one by one between 80 % and 95 %; a fifth of the day shift takes
/// a break (away) of 8 % of the day, starting between 45 % and 65 %.
pub(crate) fn plan(seed: u64, agents: usize) -> Vec<Move> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5A1F);
    let late_from = (agents as f64 * 0.7).round() as usize;
    let mut moves = Vec::new();
    for agent in 0..agents {
        if agent >= late_from {
            moves.push(Move {
                at: 0.0,
                agent,
                state: "offline",
            });
            moves.push(Move {
                at: rng.random_range(0.2..0.4),
                agent,
                state: "available",
            });
            moves.push(Move {
                at: rng.random_range(0.8..0.95),
                agent,
                state: "offline",
            });
        } else if agent % 5 == 0 {
            let away = rng.random_range(0.45..0.65);
            moves.push(Move {
                at: away,
                agent,
                state: "away",
            });
            moves.push(Move {
                at: away + 0.08,
                agent,
                state: "available",
            });
        }
    }
    moves.sort_by(|a, b| a.at.total_cmp(&b.at));
    moves
}

/// Plays the plan against the first server: each move when its time comes.
/// An agent on a call cannot be moved (409): as a real one, it finishes the
/// call first, so the move is asked again every half second, for up to five
/// minutes. Returns how many moves never went through.
pub(crate) async fn play_shifts(
    http: reqwest::Client,
    args: SimulateArgs,
    started: std::time::Instant,
) -> anyhow::Result<u64> {
    let base = args.urls[0].trim_end_matches('/').to_owned();
    let day = Duration::from_secs_f64(args.day.unwrap_or(0.0));
    let mut moves = tokio::task::JoinSet::new();
    for m in plan(args.seed, args.agents) {
        tokio::time::sleep_until((started + day.mul_f64(m.at)).into()).await;
        let url = format!("{base}/v1/agents/sim-{}/state", m.agent);
        let (http, token) = (http.clone(), args.admin_token.clone());
        let body = serde_json::json!({ "state": m.state });
        moves.spawn(async move {
            for _ in 0..600 {
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
    let mut missed = 0;
    while let Some(done) = moves.join_next().await {
        if !done.context("an agent's move panicked")? {
            missed += 1;
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

    #[test]
    fn agents_move_one_by_one_and_each_late_agent_comes_and_goes() {
        let moves = plan(3, 30);
        assert_eq!(moves, plan(3, 30));
        assert!(moves.windows(2).all(|w| w[0].at <= w[1].at), "in order");
        for agent in 21..30 {
            let mine: Vec<&str> = moves
                .iter()
                .filter(|m| m.agent == agent)
                .map(|m| m.state)
                .collect();
            assert_eq!(mine, ["offline", "available", "offline"], "agent {agent}");
        }
        let breaks = moves.iter().filter(|m| m.state == "away").count();
        assert_eq!(breaks, 5, "agents 0, 5, 10, 15, 20");
        // Staggered: no two sign-ins at the same instant.
        let mut ins: Vec<f64> = moves
            .iter()
            .filter(|m| m.state == "available")
            .map(|m| m.at)
            .collect();
        ins.dedup();
        assert_eq!(ins.len(), 9 + 5);
    }
}
