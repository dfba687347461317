//! `[contacts] allow`: with it, the admin API refuses contacts outside the
//! patterns, so a leaked admin token cannot point an agent at a premium-rate
//! number.

mod common;

use common::*;
use serde_json::json;

const ALLOW: &str = r#"
[contacts]
allow = ["+1*", "client:*"]

[[queues]]
name = "default"
"#;

#[tokio::test]
async fn contacts_outside_the_allow_list_are_refused_with_422_and_nothing_changes() {
    let app = spawn_app(ALLOW).await;
    let before = app.snapshot().await;
    for contact in ["+900123456", "sip:ana@pbx.example.com"] {
        let refused = app
            .admin(
                reqwest::Method::PUT,
                "/agents/ana",
                Some(json!({ "name": "Ana", "contact": contact, "queues": ["default"] })),
            )
            .await;
        assert_eq!(refused.status, 422, "{contact}: {refused:?}");
        assert!(
            refused.json()["error"]
                .as_str()
                .unwrap()
                .contains("not allowed"),
            "{refused:?}"
        );
    }
    assert_eq!(app.snapshot().await, before, "nothing changed");

    for (id, contact) in [("ana", "+15551230001"), ("bo", "client:bo")] {
        let ok = app
            .admin(
                reqwest::Method::PUT,
                &format!("/agents/{id}"),
                Some(json!({ "name": id, "contact": contact, "queues": ["default"] })),
            )
            .await;
        assert_eq!(ok.status, 201, "{contact}: {ok:?}");
    }
}
