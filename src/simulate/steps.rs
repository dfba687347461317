//! How late waiting callers moved on to their next step, read from outside
//! after the run: each call that waited has its history fetched (`GET
//! /v1/calls/{sid}`, with the admin token), and each `step_relaxed` event
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

/// Reads the histories of `calls` (CallSids) from `base`, 16 at a time.
pub(crate) async fn read(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    calls: Vec<String>,
    sweep: Duration,
) -> StepFindings {
    let allowed = sweep + Duration::from_millis(250);
    let mut findings = StepFindings::default();
    for chunk in calls.chunks(16) {
        let mut reads = tokio::task::JoinSet::new();
        for sid in chunk {
            let url = format!("{base}/v1/calls/{sid}");
            let (http, token, sid) = (http.clone(), admin_token.to_owned(), sid.clone());
            reads.spawn(async move {
                let history = http
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())?
                    .json::<serde_json::Value>()
                    .await
                    .ok()?;
                Some((sid, history))
            });
        }
        while let Some(done) = reads.join_next().await {
            let Ok(Some((sid, history))) = done else {
                findings.unread += 1;
                continue;
            };
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
    }
    findings
}
