//! How late waiting callers moved on to their next step, judged from outside
//! after the run from the histories of the calls that waited (history.rs):
//! each `step_relaxed` event
//! says when the step began (`starts_ms`) and when the call moved on
//! (`waited_ms`), both after its arrival. Later than one sweep and 250 ms is
//! a violation (issue 21's goal).

use std::time::Duration;

/// What the histories said.
#[derive(Debug, Default)]
pub(crate) struct StepFindings {
    /// How late each step relaxed, in ms.
    pub late_ms: Vec<u64>,
    /// Histories that could not be read.
    pub unread: u64,
    pub examples: Vec<String>,
}

/// Judges the steps relaxed in `histories` (CallSid, history); `unread`:
/// histories that could not be read.
pub(crate) fn judge(
    histories: &[(String, serde_json::Value)],
    unread: u64,
    sweep: Duration,
) -> StepFindings {
    let allowed = sweep + Duration::from_millis(250);
    let mut findings = StepFindings {
        unread,
        ..StepFindings::default()
    };
    for (sid, history) in histories {
        let events = history["events"].as_array().cloned().unwrap_or_default();
        for e in events.iter().filter(|e| e["event"] == "step_relaxed") {
            let (Some(waited), Some(starts)) = (
                e["data"]["waited_ms"].as_u64(),
                e["data"]["starts_ms"].as_u64(),
            ) else {
                continue;
            };
            let late = waited.saturating_sub(starts);
            findings.late_ms.push(late);
            if Duration::from_millis(late) > allowed && findings.examples.len() < 5 {
                findings.examples.push(format!(
                        "{sid} moved on to step {} {late} ms after its time (more than a sweep and 250 ms)",
                        e["data"]["step"]
                    ));
            }
        }
    }
    findings
}
