//! The histories of the calls that waited, read from outside after a run
//! (`GET /v1/calls/{sid}`, with the admin token), for the checks that judge
//! what happened inside: how late steps relaxed (steps.rs) and how right the
//! estimated waits were (estimates.rs).

/// Reads the histories of `calls` (CallSids) from `base`, 16 at a time;
/// also how many could not be read.
pub(crate) async fn read(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    calls: Vec<String>,
) -> (Vec<(String, serde_json::Value)>, u64) {
    let mut histories = Vec::with_capacity(calls.len());
    let mut unread = 0;
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
            match done {
                Ok(Some(read)) => histories.push(read),
                _ => unread += 1,
            }
        }
    }
    (histories, unread)
}
