//! Callbacks judged from their histories after a run (docs/simulate.md):
//! every callback asked for ends exactly once (connected, failed or
//! cancelled), and how long a connected one took from its agent's
//! reservation to that agent answering, on Redis's clock.

use serde::Serialize;

/// What the histories said of the callbacks.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CallbackFindings {
    /// Callbacks asked for (a `callback_requested` in the history).
    pub requested: u64,
    /// Of those, ended by `callback_connected`, `callback_ended`.
    pub connected: u64,
    pub ended_otherwise: u64,
    /// Not ended exactly once: none (still live when read), or twice.
    pub without_one_outcome: u64,
    #[serde(skip)]
    pub examples: Vec<String>,
    /// Connected ones: (the outbound CallSid, the ms its agent was reserved).
    #[serde(skip)]
    pub reserved: Vec<(String, i64)>,
}

/// Judges the callbacks among `histories` (CallSid, history).
pub(crate) fn judge(histories: &[(String, serde_json::Value)]) -> CallbackFindings {
    let mut found = CallbackFindings::default();
    for (sid, history) in histories {
        let events = history["events"].as_array().cloned().unwrap_or_default();
        if !events.iter().any(|e| e["event"] == "callback_requested") {
            continue;
        }
        found.requested += 1;
        let ends: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| e["event"] == "callback_connected" || e["event"] == "callback_ended")
            .collect();
        if ends.len() != 1 {
            found.without_one_outcome += 1;
            if found.examples.len() < 5 {
                found
                    .examples
                    .push(format!("callback {sid} ended {} times", ends.len()));
            }
            continue;
        }
        if ends[0]["event"] != "callback_connected" {
            found.ended_otherwise += 1;
            continue;
        }
        found.connected += 1;
        // Its agent was reserved by the last routing before the connection.
        let reserved = events
            .iter()
            .filter(|e| e["event"] == "call_routed" && e["data"]["via"] == "callback")
            .filter_map(|e| e["data"]["at"].as_i64())
            .next_back();
        if let (Some(outbound), Some(at)) = (ends[0]["data"]["outbound"].as_str(), reserved) {
            found.reserved.push((outbound.to_owned(), at));
        }
    }
    found
}

/// When the agent answered the outbound call (its `call_connected`), ms.
pub(crate) fn agent_answered(history: &serde_json::Value) -> Option<i64> {
    history["events"]
        .as_array()?
        .iter()
        .find(|e| e["event"] == "call_connected")?["data"]["at"]
        .as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, at: i64, extra: serde_json::Value) -> serde_json::Value {
        let mut data = serde_json::json!({ "at": at });
        if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        serde_json::json!({ "event": kind, "data": data })
    }

    #[test]
    fn each_callback_must_end_once_and_its_reservation_is_read() {
        let none = serde_json::json!({});
        let histories = vec![
            (
                "a".to_owned(),
                serde_json::json!({ "events": [
                    event("callback_requested", 1, none.clone()),
                    event("call_routed", 5, serde_json::json!({"via": "callback"})),
                    event("callback_ended", 6, none.clone()),
                ]}),
            ),
            (
                "b".to_owned(),
                serde_json::json!({ "events": [
                    event("callback_requested", 1, none.clone()),
                    event("call_routed", 5, serde_json::json!({"via": "callback"})),
                    event("call_routed", 9, serde_json::json!({"via": "callback"})),
                    event("callback_connected", 12, serde_json::json!({"outbound": "X"})),
                ]}),
            ),
            (
                "c".to_owned(),
                serde_json::json!({ "events": [event("callback_requested", 1, none.clone())]}),
            ),
            (
                "d".to_owned(),
                serde_json::json!({ "events": [event("call_waiting", 1, none)]}),
            ),
        ];
        let found = judge(&histories);
        assert_eq!(
            (
                found.requested,
                found.connected,
                found.ended_otherwise,
                found.without_one_outcome
            ),
            (3, 1, 1, 1)
        );
        assert_eq!(found.reserved, [("X".to_owned(), 9)]);
        let answered =
            serde_json::json!({"events": [event("call_connected", 15, serde_json::json!({}))]});
        assert_eq!(agent_answered(&answered), Some(15));
    }
}
