//! Adding calls up into figures, printed for people and as one JSON line.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::SimulateArgs;
use super::call::{CallOutcome, CallResult, LineMark};
use super::watch::Findings;

/// What a simulation run measured.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub calls: u64,
    pub concurrency: usize,
    pub servers: usize,
    pub seconds: f64,
    pub calls_per_sec: f64,
    pub webhooks: u64,
    pub latency_ms: Percentiles,
    pub outcomes: BTreeMap<&'static str, u64>,
    pub attempts: u64,
    pub missed_attempts: u64,
    /// Attempts picked up by an agent's voicemail (see `agent_voicemail` among
    /// the outcomes for those that took the call).
    pub voicemail_pickups: u64,
    /// Calls that waited in line, and the hold rounds they heard.
    pub waited: u64,
    pub hold_rounds: u64,
    /// Waiting callers connected by a REST redirect (`--rest-listen`).
    pub rest_redirects: u64,
    /// Calls that ended in a fallback step (forwarded or voicemail).
    pub fallbacks: u64,
    pub errors: u64,
    /// Requests a server did not answer (killed, restarting), sent to the next.
    pub retried: u64,
    /// An agent handed a call while another held it, or a position announced
    /// higher than before, as the callers saw it.
    pub violations: u64,
    /// Callers given an agent while one who was surely ahead of them in the
    /// same line still waited (see `line_check`).
    pub overtaken: u64,
    /// Pairs of callers whose order in a line the times prove, the later one
    /// given an agent: each could have shown an overtaking.
    pub line_pairs_judged: u64,
    /// With `--watch-redis`: how often the lines were looked at, agents found
    /// idle beside waiting callers for longer than a sweep, and callers found
    /// in line after the heartbeat should have removed them.
    pub line_looks: u64,
    pub most_waiting: u64,
    pub idle_beside_waiters: u64,
    /// The longest an agent was seen free beside a line it serves (ms).
    pub longest_idle_beside_ms: u64,
    pub left_in_line: u64,
    /// Steps that relaxed for the calls that waited (read from their
    /// histories with the admin token), how late (ms past their time), and
    /// how many later than a sweep and 250 ms (violations of the goal).
    pub steps_relaxed: u64,
    pub step_late_ms: Percentiles,
    pub steps_late: u64,
    pub histories_unread: u64,
    /// Requests the lookup stand-in (`--lookup-listen`) answered, and those
    /// it refused for a bad signature.
    pub lookups: u64,
    pub lookups_forged: u64,
    /// Callers who asked to be called back, the tries they were called on,
    /// and those a try connected (they pressed 1 and their agent rang), as
    /// the callers saw it.
    pub callbacks_requested: u64,
    pub callback_tries: u64,
    pub callbacks_connected: u64,
    /// At the REST stand-in: calls placed, the most within any 950 ms, and
    /// callbacks dialled while an earlier try of theirs was still live.
    pub calls_placed: u64,
    pub most_placed_in_a_second: u64,
    pub dialled_twice: u64,
    /// From the histories: each callback's one outcome, and from its agent's
    /// reservation to that agent answering, for the connected ones (ms).
    pub callback_outcomes: Option<super::callback_check::CallbackFindings>,
    pub callback_connect_ms: Percentiles,
    /// Agents still reserved or on a call once every call was over.
    pub agents_held_after: u64,
    /// With `--day`: how many of the day's agent moves never went through.
    pub agent_moves_failed: u64,
    /// How right the estimated waits were (with the admin token, from the
    /// histories of the calls that waited).
    pub estimates: Option<super::estimates::EstimateFindings>,
    /// The first few errors and violations, for the reader.
    pub examples: Vec<String>,
    #[serde(skip)]
    latencies: Latencies,
    /// Each call as the caller saw it (for the overtaking check, the watch
    /// and the estimates).
    #[serde(skip)]
    journeys: Vec<Journey>,
}

/// One call's CallSid, its times and its line marks.
#[derive(Debug, Clone)]
struct Journey {
    sid: String,
    started: Duration,
    answered: Option<Duration>,
    ended: Duration,
    /// It heard a hold round.
    waited: bool,
    line: Vec<LineMark>,
}

/// Webhook latencies in µs, kept by an HDR histogram (3 significant digits): a
/// long run costs a few KiB, not a sample per webhook.
#[derive(Debug, Clone)]
struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        // 3 significant digits is a fixed, valid precision.
        Latencies(Histogram::new(3).expect("HDR histogram precision 3 is valid"))
    }
}

impl Latencies {
    fn record(&mut self, took: Duration) {
        // Auto-resizing histogram: recording cannot fail for a u64 value.
        let _ = self
            .0
            .record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }

    /// The `q` quantile in ms.
    fn ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

const EXAMPLES: usize = 10;

impl Report {
    pub(crate) fn add_call(&mut self, call: CallResult) {
        self.calls += 1;
        *self.outcomes.entry(call.outcome.label()).or_default() += 1;
        if matches!(
            call.outcome,
            CallOutcome::Forwarded | CallOutcome::Voicemail
        ) {
            self.fallbacks += 1;
        }
        self.attempts += u64::from(call.attempts);
        self.missed_attempts += u64::from(call.missed);
        self.voicemail_pickups += u64::from(call.voicemail_pickups);
        self.waited += u64::from(call.hold_rounds > 0);
        self.hold_rounds += u64::from(call.hold_rounds);
        self.rest_redirects += u64::from(call.rest_redirects);
        self.callbacks_requested += u64::from(call.callback_requested);
        self.callback_tries += u64::from(call.callback_tries);
        self.callbacks_connected += u64::from(call.callback_connected);
        self.errors += call.errors.len() as u64;
        self.retried += u64::from(call.retried);
        self.violations += call.violations.len() as u64;
        for line in call.violations.into_iter().chain(call.errors) {
            self.example(line);
        }
        self.journeys.push(Journey {
            sid: call.sid,
            started: call.started_at,
            answered: call.answered_at,
            ended: call.ended_at,
            waited: call.hold_rounds > 0,
            line: call.line,
        });
        for took in call.latencies {
            self.latencies.record(took);
        }
    }

    pub(crate) fn merge(&mut self, other: Report) {
        self.calls += other.calls;
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        self.attempts += other.attempts;
        self.missed_attempts += other.missed_attempts;
        self.voicemail_pickups += other.voicemail_pickups;
        self.waited += other.waited;
        self.hold_rounds += other.hold_rounds;
        self.rest_redirects += other.rest_redirects;
        self.callbacks_requested += other.callbacks_requested;
        self.callback_tries += other.callback_tries;
        self.callbacks_connected += other.callbacks_connected;
        self.fallbacks += other.fallbacks;
        self.errors += other.errors;
        self.retried += other.retried;
        self.violations += other.violations;
        for line in other.examples {
            self.example(line);
        }
        self.journeys.extend(other.journeys);
        // Both use the same precision and auto-resize: adding cannot fail.
        let _ = self.latencies.0.add(&other.latencies.0);
    }

    fn example(&mut self, line: String) {
        if self.examples.len() < EXAMPLES {
            self.examples.push(line);
        }
    }

    /// Every call's CallSid and when it ended.
    pub(crate) fn ended_calls(&self) -> Vec<(String, Duration)> {
        self.journeys
            .iter()
            .map(|j| (j.sid.clone(), j.ended))
            .collect()
    }

    /// The answered calls, for judging the estimated waits.
    pub(crate) fn answered_calls(&self) -> Vec<super::estimates::Answered> {
        self.journeys
            .iter()
            .filter_map(|j| {
                Some(super::estimates::Answered {
                    sid: j.sid.clone(),
                    started: j.started,
                    answered: j.answered?,
                    waited_in_line: j.waited,
                })
            })
            .collect()
    }

    /// The CallSids of the calls that waited in line.
    pub(crate) fn waited_calls(&self) -> Vec<String> {
        self.journeys
            .iter()
            .filter(|j| j.waited)
            .map(|j| j.sid.clone())
            .collect()
    }

    pub(crate) fn add_steps(&mut self, mut found: super::steps::StepFindings, sweep: Duration) {
        let allowed = (sweep + Duration::from_millis(250)).as_millis() as u64;
        found.late_ms.sort_unstable();
        let at = |q: f64| {
            found
                .late_ms
                .get(
                    ((found.late_ms.len() as f64 * q) as usize)
                        .min(found.late_ms.len().saturating_sub(1)),
                )
                .copied()
                .unwrap_or(0) as f64
        };
        self.steps_relaxed = found.late_ms.len() as u64;
        self.step_late_ms = Percentiles {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: found.late_ms.last().copied().unwrap_or(0) as f64,
        };
        self.steps_late = found.late_ms.iter().filter(|l| **l > allowed).count() as u64;
        self.histories_unread = found.unread;
        for line in found.examples {
            self.example(line);
        }
    }

    /// What the REST stand-in saw of the calls placed; more than `cps` in a
    /// second is a violation.
    pub(crate) fn add_placements(
        &mut self,
        placed: usize,
        most: usize,
        twice: Vec<String>,
        cps: Option<f64>,
    ) {
        self.calls_placed = placed as u64;
        self.most_placed_in_a_second = most as u64;
        self.dialled_twice = twice.len() as u64;
        self.violations += twice.len() as u64;
        for line in twice {
            self.example(line);
        }
        if let Some(cps) = cps
            && most as f64 > cps
        {
            self.violations += 1;
            self.example(format!(
                "{most} calls placed within a second, more than TWILIO_CPS {cps}"
            ));
        }
    }

    pub(crate) fn add_callback_outcomes(
        &mut self,
        mut found: super::callback_check::CallbackFindings,
        mut connect_ms: Vec<u64>,
    ) {
        self.violations += found.without_one_outcome;
        for line in std::mem::take(&mut found.examples) {
            self.example(line);
        }
        connect_ms.sort_unstable();
        let at = |q: f64| {
            connect_ms
                .get(
                    ((connect_ms.len() as f64 * q) as usize)
                        .min(connect_ms.len().saturating_sub(1)),
                )
                .copied()
                .unwrap_or(0) as f64
        };
        self.callback_connect_ms = Percentiles {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: connect_ms.last().copied().unwrap_or(0) as f64,
        };
        self.callback_outcomes = Some(found);
    }

    /// Agents found reserved or on a call after the run (`held`: their ids).
    pub(crate) fn add_agents_held(&mut self, held: Vec<String>) {
        self.agents_held_after = held.len() as u64;
        self.violations += held.len() as u64;
        for id in held {
            self.example(format!("agent {id} still held after every call was over"));
        }
    }

    pub(crate) fn add_estimates(&mut self, found: super::estimates::EstimateFindings) {
        self.estimates = Some(found);
    }

    pub(crate) fn add_agent_moves(&mut self, failed: u64) {
        self.agent_moves_failed = failed;
        if failed > 0 {
            self.example(format!(
                "{failed} of the day's agent moves never went through"
            ));
        }
    }

    pub(crate) fn add_lookups(&mut self, answered: u64, forged: u64) {
        self.lookups = answered;
        self.lookups_forged = forged;
    }

    pub(crate) fn add_findings(&mut self, findings: Findings) {
        self.line_looks = findings.looks;
        self.most_waiting = findings.most_waiting;
        self.idle_beside_waiters = findings.idle_beside_waiters.len() as u64;
        self.longest_idle_beside_ms =
            u64::try_from(findings.longest_idle_beside.as_millis()).unwrap_or(u64::MAX);
        self.left_in_line = findings.left_in_line.len() as u64;
        for line in findings
            .idle_beside_waiters
            .into_iter()
            .chain(findings.left_in_line)
        {
            self.example(line);
        }
    }

    /// Whether the run found anything wrong: an error or any broken invariant.
    pub fn failed(&self) -> bool {
        self.errors
            + self.violations
            + self.overtaken
            + self.idle_beside_waiters
            + self.left_in_line
            + self.steps_late
            + self.lookups_forged
            > 0
    }

    pub(crate) fn finish(&mut self, args: &SimulateArgs, took: Duration) {
        let verdict = super::line_check::check(
            self.journeys
                .iter()
                .map(|j| (j.sid.as_str(), j.line.as_slice())),
        );
        self.overtaken = verdict.overtakings.len() as u64;
        self.line_pairs_judged = verdict.pairs_judged;
        for line in verdict.overtakings {
            self.example(line);
        }
        self.concurrency = args.concurrency;
        self.servers = args.urls.len();
        self.seconds = took.as_secs_f64();
        self.calls_per_sec = if self.seconds > 0.0 {
            self.calls as f64 / self.seconds
        } else {
            0.0
        };
        self.webhooks = self.latencies.0.len();
        self.latency_ms = Percentiles {
            p50: self.latencies.ms(0.50),
            p90: self.latencies.ms(0.90),
            p99: self.latencies.ms(0.99),
            max: self.latencies.0.max() as f64 / 1000.0,
        };
    }

    /// The readable summary, then the JSON line.
    pub fn print(&self, json_only: bool) {
        if !json_only {
            let outcomes: Vec<String> = self
                .outcomes
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            println!(
                "\n{} calls in {:.2} s: {:.0} calls/s (concurrency {}, {} server{})",
                self.calls,
                self.seconds,
                self.calls_per_sec,
                self.concurrency,
                self.servers,
                if self.servers == 1 { "" } else { "s" }
            );
            println!(
                "webhooks: {}  latency p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
                self.webhooks,
                self.latency_ms.p50,
                self.latency_ms.p90,
                self.latency_ms.p99,
                self.latency_ms.max
            );
            println!("outcomes: {}", outcomes.join(", "));
            println!(
                "agent attempts: {} ({} missed, {} picked up by voicemail)  fallbacks: {}  errors: {}",
                self.attempts,
                self.missed_attempts,
                self.voicemail_pickups,
                self.fallbacks,
                self.errors
            );
            if self.waited > 0 {
                println!(
                    "waited in line: {} calls, {} hold rounds, {} connected by a REST redirect",
                    self.waited, self.hold_rounds, self.rest_redirects
                );
            }
            if self.retried > 0 {
                println!(
                    "requests sent to the next server after one did not answer: {}",
                    self.retried
                );
            }
            println!(
                "invariant violations: {}  callers overtaken: {} (of {} pairs whose order in line was proven)",
                self.violations, self.overtaken, self.line_pairs_judged
            );
            if self.steps_relaxed > 0 {
                println!(
                    "steps relaxed: {}, after their time by p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; later than a sweep and 250 ms: {}",
                    self.steps_relaxed,
                    self.step_late_ms.p50,
                    self.step_late_ms.p99,
                    self.step_late_ms.max,
                    self.steps_late
                );
            }
            if self.lookups + self.lookups_forged > 0 {
                println!(
                    "lookups answered: {}  refused for a bad signature: {}",
                    self.lookups, self.lookups_forged
                );
            }
            if self.line_looks > 0 {
                println!(
                    "lines looked at {} times (at most {} callers in line at once): agents idle beside waiting callers {} (the longest seen free beside them {} ms), callers left in line after hanging up {}",
                    self.line_looks,
                    self.most_waiting,
                    self.idle_beside_waiters,
                    self.longest_idle_beside_ms,
                    self.left_in_line
                );
            }
            if self.callbacks_requested > 0 {
                println!(
                    "callbacks: {} asked for, {} tries, {} connected; {} calls placed, at most {} within a second, {} dialled twice",
                    self.callbacks_requested,
                    self.callback_tries,
                    self.callbacks_connected,
                    self.calls_placed,
                    self.most_placed_in_a_second,
                    self.dialled_twice
                );
            }
            if let Some(c) = &self.callback_outcomes {
                println!(
                    "callback outcomes (histories): {} asked for, {} connected, {} failed or cancelled, {} not ended exactly once; agent reserved -> answered p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
                    c.requested,
                    c.connected,
                    c.ended_otherwise,
                    c.without_one_outcome,
                    self.callback_connect_ms.p50,
                    self.callback_connect_ms.p90,
                    self.callback_connect_ms.max
                );
            }
            if self.agents_held_after > 0 {
                println!(
                    "agents still held after the run: {}",
                    self.agents_held_after
                );
            }
            if let Some(e) = &self.estimates {
                println!(
                    "estimated waits, callers who waited {} s or more: {} judged, {} ({:.0} %) within 20 %; mean error {:.1} s (bias {:+.1} s), Asterisk's method {:.1} s ({:.2}x ours); {} heard none",
                    e.judged_from_secs,
                    e.judged,
                    e.within_20_percent,
                    100.0 * e.within_20_percent_share,
                    e.mean_abs_error_secs,
                    e.mean_error_secs,
                    e.asterisk_mean_abs_error_secs,
                    e.asterisk_over_ours,
                    e.without_estimate
                );
            }
            for line in &self.examples {
                println!("  {line}");
            }
        }
        println!("{}", serde_json::to_string(self).unwrap_or_default());
    }
}
