//! `--watch-redis`: while the calls run, a look at every line every 100 ms
//! (`Store::watch_lines`, one instant of Redis each), checking invariant 7 from
//! outside the servers:
//! - nobody idle beside a waiting caller: an agent of a queue, free without a
//!   break (the same `free_since`) in every look for longer than a sweep
//!   interval and a second's slack, while that queue's line was never empty;
//! - nobody left in line after hanging up: a caller still in a line a round
//!   (`loop_secs`, or `music_secs` when longer) + 15 s (the heartbeat's slack),
//!   a sweep and a second after its call ended.
//!
//! After the last call it keeps looking until every line is empty, or until a
//! caller still there is overdue.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::store::watch::FreeAgent;

/// Between two looks.
const EVERY: Duration = Duration::from_millis(100);
/// A waiting caller's heartbeat outlives its last fetch by the round and this
/// (lua/lib/line.lua's WAIT_SLACK_MS).
const HEARTBEAT_SLACK: Duration = Duration::from_secs(15);
/// For the look itself and the sweep's own run time.
const SLACK: Duration = Duration::from_secs(1);

/// What the looks found.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub looks: u64,
    /// The most callers in line at one look, all lines together.
    pub most_waiting: u64,
    pub idle_beside_waiters: Vec<String>,
    /// The longest any agent was seen free beside a line it serves, in
    /// every look, so a run shows its margin under the limit.
    pub longest_idle_beside: Duration,
    pub left_in_line: Vec<String>,
}

/// Looks at the lines until `stop`, then hands back what it saw for
/// [`Watch::settle`].
pub(crate) struct Watch {
    store: Store,
    started: Instant,
    sweep: Duration,
    /// (queue, agent) free beside a non-empty line since this look.
    idle_since: HashMap<(String, FreeAgent), Instant>,
    reported: HashSet<(String, FreeAgent)>,
    /// Each caller's last look in a line: (when, that queue's round).
    last_in_line: HashMap<String, (Instant, Duration)>,
    findings: Findings,
}

impl Watch {
    pub(crate) fn new(
        redis_url: &str,
        namespace: &str,
        sweep: Duration,
        started: Instant,
    ) -> anyhow::Result<Watch> {
        Ok(Watch {
            store: Store::new(redis_url, namespace, Duration::from_secs(2))?,
            started,
            sweep,
            idle_since: HashMap::new(),
            reported: HashSet::new(),
            last_in_line: HashMap::new(),
            findings: Findings::default(),
        })
    }

    /// Looks every 100 ms until `stop` is cancelled.
    pub(crate) async fn run(mut self, stop: CancellationToken) -> Watch {
        loop {
            self.look().await;
            tokio::select! {
                () = stop.cancelled() => return self,
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    }

    /// One look; `true` when some line still holds a caller.
    async fn look(&mut self) -> bool {
        let view = match self.store.watch_lines().await {
            Ok(view) => view,
            // Redis restarting under the test: the next look will do.
            Err(_) => return true,
        };
        let at = Instant::now();
        self.findings.looks += 1;
        let mut seen = HashSet::new();
        let waiting: usize = view.lines.iter().map(|l| l.waiting.len()).sum();
        self.findings.most_waiting = self.findings.most_waiting.max(waiting as u64);
        for line in view.lines {
            let round = Duration::from_millis(line.loop_ms);
            for sid in &line.waiting {
                self.last_in_line.insert(sid.clone(), (at, round));
            }
            for agent in line.free {
                seen.insert((line.queue.clone(), agent));
            }
        }
        self.idle_since.retain(|pair, _| seen.contains(pair));
        for pair in seen {
            let since = *self.idle_since.entry(pair.clone()).or_insert(at);
            self.findings.longest_idle_beside = self.findings.longest_idle_beside.max(at - since);
            if at - since > self.sweep + SLACK && self.reported.insert(pair.clone()) {
                let (queue, agent) = &pair;
                self.findings.idle_beside_waiters.push(format!(
                    "{} was free beside {queue}'s waiting callers for over {:?} (seen from +{:?})",
                    agent.id,
                    at - since,
                    since - self.started
                ));
            }
        }
        waiting > 0
    }

    /// After the calls: looks until every line is empty or the last caller to
    /// hang up is overdue, then judges each ended call (`ended`: CallSid and
    /// when it ended, since the run started).
    pub(crate) async fn settle(mut self, ended: &[(String, Duration)]) -> Findings {
        let longest_round = self
            .last_in_line
            .values()
            .map(|(_, round)| *round)
            .max()
            .unwrap_or_default();
        let give_up = Instant::now() + longest_round + HEARTBEAT_SLACK + self.sweep + SLACK * 2;
        while self.look().await && Instant::now() < give_up {
            tokio::time::sleep(EVERY).await;
        }
        for (sid, ended_at) in ended {
            let Some((seen, round)) = self.last_in_line.get(sid) else {
                continue;
            };
            let allowed = *ended_at + *round + HEARTBEAT_SLACK + self.sweep + SLACK;
            let in_line_at = *seen - self.started;
            if in_line_at > allowed {
                self.findings.left_in_line.push(format!(
                    "{sid} was still in line at +{in_line_at:?}, though its call ended at +{ended_at:?}"
                ));
            }
        }
        self.findings
    }
}
