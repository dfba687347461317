//! "Redis unreachable", said so an operator can act on it and not drowned in
//! it: the first failed readiness check of an outage is logged with the Redis
//! it tried (password redacted), then again only after a back-off that doubles
//! from 5 s to 5 min, and the recovery once. The worker checks every sweep
//! interval (1 s) and every probe checks `/readyz`: each logged its failure,
//! one line a second for as long as Redis was down.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::StoreError;

/// The wait before the second line of an outage; it doubles after each.
const FIRST_REPEAT: Duration = Duration::from_secs(5);
/// The longest wait between two lines of one outage.
const LONGEST_REPEAT: Duration = Duration::from_secs(300);

/// One per `Store` (shared by its clones): the outage in progress, if any.
#[derive(Debug)]
pub(super) struct OutageLog {
    /// Which Redis, fit for logs (no password).
    target: String,
    state: Mutex<Option<Outage>>,
}

#[derive(Debug)]
struct Outage {
    since: Instant,
    failures: u64,
    next_line: Instant,
    repeat: Duration,
}

impl OutageLog {
    pub(super) fn new(target: String) -> OutageLog {
        OutageLog {
            target,
            state: Mutex::new(None),
        }
    }

    pub(super) fn target(&self) -> &str {
        &self.target
    }

    /// Notes a readiness check's result; logs when an outage starts, when its
    /// back-off has passed, and when it ends.
    pub(super) fn note(&self, result: &Result<(), StoreError>) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match (result, state.as_mut()) {
            (Ok(()), None) => {}
            (Ok(()), Some(outage)) => {
                tracing::info!(
                    redis = %self.target,
                    down_secs = outage.since.elapsed().as_secs(),
                    failed_checks = outage.failures,
                    "Redis reachable again"
                );
                *state = None;
            }
            (Err(e), None) => {
                self.log(e, FIRST_REPEAT, 0);
                *state = Some(Outage {
                    since: now,
                    failures: 1,
                    next_line: now + FIRST_REPEAT,
                    repeat: FIRST_REPEAT,
                });
            }
            (Err(e), Some(outage)) => {
                outage.failures += 1;
                if now >= outage.next_line {
                    outage.repeat = (outage.repeat * 2).min(LONGEST_REPEAT);
                    outage.next_line = now + outage.repeat;
                    self.log(e, outage.repeat, outage.since.elapsed().as_secs());
                }
            }
        }
    }

    fn log(&self, error: &StoreError, next: Duration, down_secs: u64) {
        tracing::warn!(
            redis = %self.target,
            %error,
            down_secs,
            next_report_secs = next.as_secs(),
            "Redis unreachable (not ready): retrying every check, reported again in {}s while it lasts",
            next.as_secs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }

    #[test]
    fn an_outage_is_reported_once_then_after_its_back_off_and_ends_on_success() {
        let log = OutageLog::new("redis://:***@127.0.0.1:1".into());
        log.note(&down());
        for _ in 0..100 {
            log.note(&down());
        }
        {
            let state = log.state.lock().unwrap();
            let outage = state.as_ref().expect("an outage");
            assert_eq!(outage.failures, 101);
            // Not reported again yet: the next line is still FIRST_REPEAT away.
            assert_eq!(outage.repeat, FIRST_REPEAT);
        }
        // Past the back-off: the next failure is reported and the wait doubles.
        log.state.lock().unwrap().as_mut().unwrap().next_line = Instant::now();
        log.note(&down());
        assert_eq!(
            log.state.lock().unwrap().as_ref().unwrap().repeat,
            FIRST_REPEAT * 2
        );
        log.note(&Ok(()));
        assert!(log.state.lock().unwrap().is_none());
    }
}
