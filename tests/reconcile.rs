//! The backstop for answered calls whose end is never reported (SPEC 1, "cannot
//! be applied"): with REST credentials, the worker asks Twilio about an agent
//! leg that has been on a call with no callback for
//! SWITCHBOARD_RECONCILE_AFTER_SECS, through a local stand-in of Twilio's Calls
//! fetch endpoint, and ends the call when Twilio says it is over.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The agent leg's CallSid `TestApp::agent_leg` reports.
fn leg() -> String {
    format!("CA{:032x}", 0xa9e47u64)
}

async fn app(stand_in: Option<&TwilioApiStandIn>) -> TestApp {
    let rest = stand_in.map(TwilioApiStandIn::auth_token_config);
    spawn_app_with(ROUTING, true, move |s| {
        if let Some(rest) = rest {
            connect_through(rest)(s);
        }
        s.reconcile_after = Duration::from_secs(1);
    })
    .await
}

/// A call answered by agent "ana"; then nothing more is reported.
async fn answered_then_quiet(app: &TestApp) -> String {
    app.add_available("ana", &["sales"]).await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SALES).await;
    assert_eq!(app.agent_leg(&sid, &dial, "in-progress").await.status, 200);
    assert_eq!(app.agent("ana").await["state"], "on_call");
    sid
}

#[tokio::test]
async fn a_quiet_call_that_twilio_says_is_over_frees_its_agent() {
    let stand_in = TwilioApiStandIn::start().await;
    stand_in.call_status(&leg(), "completed");
    let app = app(Some(&stand_in)).await;
    answered_then_quiet(&app).await;
    let started = Instant::now();
    loop {
        let a = app.agent("ana").await;
        if a["state"] == "wrap_up" {
            assert!(a["call_sid"].is_null(), "{a}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never reconciled: {a}; fetched {:?}",
            stand_in.fetched()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Not before the quiet time, and about that agent leg only.
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(stand_in.fetched(), vec![leg()]);
}

#[tokio::test]
async fn a_quiet_call_still_in_progress_is_left_and_asked_about_again_later() {
    let stand_in = TwilioApiStandIn::start().await;
    stand_in.call_status(&leg(), "in-progress");
    let app = app(Some(&stand_in)).await;
    answered_then_quiet(&app).await;
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(app.agent("ana").await["state"], "on_call");
    let fetched = stand_in.fetched();
    // Asked once per quiet second (a slow machine may fit in one fewer).
    assert!(
        (1..=3).contains(&fetched.len()) && fetched.iter().all(|f| *f == leg()),
        "{fetched:?}"
    );
}

#[tokio::test]
async fn a_call_whose_end_was_reported_is_never_asked_about() {
    let stand_in = TwilioApiStandIn::start().await;
    let app = app(Some(&stand_in)).await;
    let sid = answered_then_quiet(&app).await;
    assert_eq!(app.call_status(&sid, "completed").await.status, 200);
    // The list of answered calls forgets it at once (it would otherwise grow
    // with every call when nobody reconciles).
    let listed: u64 = redis::cmd("ZCARD")
        .arg("sb:{default}:reconcile")
        .query_async(&mut app.redis().await)
        .await
        .unwrap();
    assert_eq!(listed, 0);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(stand_in.fetched().is_empty(), "{:?}", stand_in.fetched());
}

#[tokio::test]
async fn without_rest_credentials_nothing_is_asked_and_the_lease_stays_the_backstop() {
    let app = app(None).await;
    answered_then_quiet(&app).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(app.agent("ana").await["state"], "on_call");
}

/// A call of a sub-account (its webhook's `AccountSid`) is looked up in that
/// sub-account's path, with the parent's credentials.
#[tokio::test]
async fn a_quiet_call_of_a_subaccount_is_asked_about_in_that_subaccount() {
    let stand_in = TwilioApiStandIn::start().await;
    stand_in.call_status(&leg(), "completed");
    let app = app(Some(&stand_in)).await;
    app.add_available("ana", &["sales"]).await;
    let sid = call_sid(2);
    let voice = format!("{}/twilio/voice", app.base());
    let dial = post_signed(
        &app.http,
        &voice,
        &[
            ("CallSid", sid.as_str()),
            ("AccountSid", SUBACCOUNT_SID),
            ("From", "+15005550002"),
            ("To", SALES),
            ("CallStatus", "ringing"),
        ],
    )
    .await;
    assert_eq!(dialed(&dial).as_deref(), Some("ana"), "{}", dial.body);
    assert_eq!(app.agent_leg(&sid, &dial, "in-progress").await.status, 200);
    let started = Instant::now();
    while app.agent("ana").await["state"] != "wrap_up" {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never reconciled; fetched {:?}",
            stand_in.fetched_in()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        stand_in.fetched_in(),
        vec![(SUBACCOUNT_SID.to_owned(), leg())]
    );
}
