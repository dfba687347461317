//! The REST client that connects held callers (`twilio::rest`), against a local
//! stand-in of Twilio's Calls update endpoint: what it sends, how it reads each
//! answer (redirected, the call is over, failed), that it retries only what is
//! worth retrying and only within its budget, and that no secret is printed.

mod common;

use std::time::{Duration, Instant};

use common::*;
use switchboard::twilio::rest::{
    RedirectOutcome, RequestBudget, RestClient, RestConfig, RestError,
};

const CONNECT_URL: &str = "https://switchboard.example/twilio/voice/connect?call=1";

/// A budget whose backoff pauses are short, so a test of many tries is quick;
/// the total stays large enough that only `max_tries` ends a retried redirect.
fn quick(mut config: RestConfig) -> RestConfig {
    config.budget = RequestBudget {
        total: Duration::from_secs(5),
        connect: Duration::from_secs(1),
        per_try: Duration::from_secs(2),
        max_tries: 3,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    };
    config
}

fn client(config: RestConfig) -> RestClient {
    RestClient::new(quick(config)).expect("client")
}

/// One redirect of `call_sid(n)` through a stand-in that answers it with
/// `answer`: the stand-in (to count the tries), the CallSid and the outcome.
async fn redirect_once(n: u64, answer: CallAnswer) -> (TwilioApiStandIn, String, RedirectOutcome) {
    let twilio = TwilioApiStandIn::start().await;
    let sid = call_sid(n);
    twilio.answer(&sid, answer);
    let outcome = client(twilio.auth_token_config())
        .redirect(&sid, CONNECT_URL)
        .await;
    (twilio, sid, outcome)
}

#[tokio::test]
async fn a_redirect_with_the_auth_token_posts_url_and_method_as_the_account() {
    let (twilio, sid, outcome) = redirect_once(1, CallAnswer::Succeed).await;
    assert!(
        matches!(outcome, RedirectOutcome::Redirected),
        "{outcome:?}"
    );
    assert_eq!(
        twilio.requests(),
        [RedirectRequest {
            account: ACCOUNT_SID.into(),
            call_sid: sid,
            user: ACCOUNT_SID.into(),
            url: CONNECT_URL.into(),
            method: "POST".into(),
        }]
    );
}

#[tokio::test]
async fn a_redirect_with_an_api_key_authenticates_as_the_key() {
    let twilio = TwilioApiStandIn::start().await;
    let sid = call_sid(2);
    twilio.answer(&sid, CallAnswer::Succeed);
    let outcome = client(twilio.api_key_config())
        .redirect(&sid, CONNECT_URL)
        .await;
    assert!(
        matches!(outcome, RedirectOutcome::Redirected),
        "{outcome:?}"
    );
    let requests = twilio.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].user, API_KEY_SID);
}

#[tokio::test]
async fn an_unknown_call_is_told_apart_from_an_ended_one_without_a_retry() {
    let (twilio, sid, outcome) = redirect_once(3, CallAnswer::NotFound).await;
    assert!(
        matches!(outcome, RedirectOutcome::UnknownCall),
        "{outcome:?}"
    );
    assert_eq!(twilio.requests_for(&sid).len(), 1);
}

#[tokio::test]
async fn a_call_no_longer_in_progress_error_21220_is_over_without_a_retry() {
    let (twilio, sid, outcome) = redirect_once(4, CallAnswer::NotInProgress).await;
    assert!(matches!(outcome, RedirectOutcome::CallOver), "{outcome:?}");
    assert_eq!(twilio.requests_for(&sid).len(), 1);
}

#[tokio::test]
async fn a_429_is_retried_and_the_second_try_redirects() {
    let (twilio, sid, outcome) = redirect_once(
        5,
        CallAnswer::RateLimitedThenSucceed {
            times: 1,
            retry_after_secs: None,
        },
    )
    .await;
    assert!(
        matches!(outcome, RedirectOutcome::Redirected),
        "{outcome:?}"
    );
    let requests = twilio.requests_for(&sid);
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0], requests[1], "a retry sends the same request");
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_is_capped_not_obeyed() {
    let twilio = TwilioApiStandIn::start().await;
    let sid = call_sid(6);
    // Obeyed, 60 s would outlast the 5 s budget and the client would give up;
    // capped at max_backoff, the second try comes and succeeds.
    twilio.answer(
        &sid,
        CallAnswer::RateLimitedThenSucceed {
            times: 1,
            retry_after_secs: Some(60),
        },
    );
    let outcome = client(twilio.auth_token_config())
        .redirect(&sid, CONNECT_URL)
        .await;
    assert!(
        matches!(outcome, RedirectOutcome::Redirected),
        "{outcome:?}"
    );
    assert_eq!(twilio.requests_for(&sid).len(), 2);
}

#[tokio::test]
async fn a_500_forever_fails_after_max_tries() {
    let (twilio, sid, outcome) = redirect_once(7, CallAnswer::ServerErrorForever).await;
    let RedirectOutcome::Failed(RestError::GaveUp { tries, last }) = outcome else {
        panic!("expected GaveUp, got {outcome:?}");
    };
    assert_eq!(tries, 3);
    assert_eq!(twilio.requests_for(&sid).len(), 3);
    assert!(
        matches!(
            *last,
            RestError::Twilio {
                status: 500,
                code: Some(20500),
                ..
            }
        ),
        "{last:?}"
    );
}

#[tokio::test]
async fn a_request_that_timed_out_is_never_sent_again() {
    // It may have reached Twilio: a second redirect would cut off the <Dial>
    // the first one started.
    let twilio = TwilioApiStandIn::start().await;
    let sid = call_sid(8);
    twilio.answer(&sid, CallAnswer::Slow(Duration::from_secs(30)));
    let mut config = quick(twilio.auth_token_config());
    config.budget.per_try = Duration::from_millis(200);
    config.budget.max_tries = 4;
    let client = RestClient::new(config).expect("client");
    let outcome = client.redirect(&sid, CONNECT_URL).await;
    let RedirectOutcome::Failed(RestError::Network(e)) = outcome else {
        panic!("expected a network failure, got {outcome:?}");
    };
    assert!(e.is_timeout(), "{e:?}");
    assert_eq!(twilio.requests_for(&sid).len(), 1, "sent once");
}

#[tokio::test]
async fn the_budget_ends_retries_before_max_tries() {
    let twilio = TwilioApiStandIn::start().await;
    let sid = call_sid(9);
    twilio.answer(&sid, CallAnswer::ServerErrorForever);
    let mut config = quick(twilio.auth_token_config());
    // Backoffs of up to 200 ms in a 300 ms budget leave room for a few tries,
    // never the hundred allowed.
    config.budget.total = Duration::from_millis(300);
    config.budget.max_backoff = Duration::from_millis(200);
    config.budget.base_backoff = Duration::from_millis(100);
    config.budget.max_tries = 100;
    let client = RestClient::new(config).expect("client");
    let outcome = client.redirect(&sid, CONNECT_URL).await;
    let RedirectOutcome::Failed(RestError::GaveUp { tries, .. }) = outcome else {
        panic!("expected GaveUp, got {outcome:?}");
    };
    assert!(tries < 100, "{tries} tries");
    assert_eq!(twilio.requests_for(&sid).len() as u32, tries);
}

#[tokio::test]
async fn wrong_credentials_fail_at_once_without_retries() {
    let twilio = TwilioApiStandIn::start().await;
    let sid = call_sid(10);
    twilio.answer(&sid, CallAnswer::Succeed);
    let config = RestConfig::new(
        &twilio.base,
        switchboard::twilio::rest::Credentials::AuthToken {
            account_sid: ACCOUNT_SID.into(),
            token: "not-the-auth-token".into(),
        },
    );
    let outcome = client(config).redirect(&sid, CONNECT_URL).await;
    let RedirectOutcome::Failed(error) = outcome else {
        panic!("expected Failed, got {outcome:?}");
    };
    assert!(
        matches!(
            error,
            RestError::Twilio {
                status: 401,
                code: Some(20003),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(twilio.refused(), 1);
    assert!(twilio.requests().is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_fails() {
    // A port nobody listens on: bound, then released.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let config = RestConfig::new(
        format!("http://127.0.0.1:{port}"),
        switchboard::twilio::rest::Credentials::AuthToken {
            account_sid: ACCOUNT_SID.into(),
            token: AUTH_TOKEN.into(),
        },
    );
    let outcome = client(config).redirect(&call_sid(11), CONNECT_URL).await;
    let RedirectOutcome::Failed(RestError::GaveUp { tries, last }) = outcome else {
        panic!("expected GaveUp, got {outcome:?}");
    };
    assert_eq!(tries, 3);
    assert!(matches!(*last, RestError::Network(_)), "{last:?}");
}

#[tokio::test]
async fn a_call_sid_that_would_change_the_path_is_refused_before_sending() {
    let twilio = TwilioApiStandIn::start().await;
    let outcome = client(twilio.auth_token_config())
        .redirect("CA1/../../Accounts", CONNECT_URL)
        .await;
    assert!(
        matches!(outcome, RedirectOutcome::Failed(RestError::Sid { .. })),
        "{outcome:?}"
    );
    assert!(twilio.requests().is_empty());
    assert_eq!(twilio.refused(), 0);
}

#[tokio::test]
async fn no_secret_appears_in_the_debug_output_of_client_config_or_errors() {
    let twilio = TwilioApiStandIn::start().await;
    for config in [twilio.auth_token_config(), twilio.api_key_config()] {
        let client = client(config.clone());
        let sid = call_sid(12);
        twilio.answer(&sid, CallAnswer::ServerErrorForever);
        let outcome = client.redirect(&sid, CONNECT_URL).await;
        let printed = format!("{client:?} {config:?} {outcome:?}");
        let shown = match &outcome {
            RedirectOutcome::Failed(e) => e.to_string(),
            other => panic!("expected Failed, got {other:?}"),
        };
        for secret in [AUTH_TOKEN, API_KEY_SECRET] {
            assert!(!printed.contains(secret), "{printed}");
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(printed.contains("***"), "{printed}");
    }
}

#[tokio::test]
async fn the_stand_in_refuses_what_twilio_would_refuse() {
    let twilio = TwilioApiStandIn::start().await;
    let sid = call_sid(13);
    twilio.answer(&sid, CallAnswer::Succeed);
    let url = format!(
        "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json",
        twilio.base
    );
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    let no_auth = http
        .post(&url)
        .form(&[("Url", CONNECT_URL), ("Method", "POST")])
        .send()
        .await
        .expect("request");
    let no_auth = answer(no_auth).await;
    assert_eq!(no_auth.status, 401);
    assert_eq!(no_auth.json()["code"], 20003);
    let no_url = http
        .post(&url)
        .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
        .form(&[("Method", "POST")])
        .send()
        .await
        .expect("request");
    let no_url = answer(no_url).await;
    assert_eq!(no_url.status, 400);
    assert_eq!(no_url.json()["code"], 21205);
    assert_eq!(no_url.json()["status"], 400);
    assert!(twilio.requests().is_empty());
}

/// Twilio on a bad day answers in a second and a half: the default budget (4 s
/// a try) waits for it, where the old one (1 s a try) gave up and left the
/// caller to their next hold round. The stand-in accepts the connection at
/// once and answers late.
#[tokio::test]
async fn a_redirect_answered_after_a_second_and_a_half_succeeds_with_the_default_budget() {
    let twilio = TwilioApiStandIn::start().await;
    let sid = call_sid(14);
    twilio.answer(&sid, CallAnswer::Slow(Duration::from_millis(1500)));
    let client = RestClient::new(twilio.auth_token_config()).expect("client");
    assert_eq!(client.config().budget, RequestBudget::default());
    let outcome = client.redirect(&sid, CONNECT_URL).await;
    assert!(
        matches!(outcome, RedirectOutcome::Redirected),
        "{outcome:?}"
    );
    assert_eq!(twilio.requests_for(&sid).len(), 1);
}

/// Slow failures are retried only inside the total budget: the redirect gives
/// up by then, however many tries were allowed and however long each may be.
#[tokio::test]
async fn slow_server_errors_are_retried_only_within_the_total_budget() {
    let twilio = TwilioApiStandIn::start().await;
    let sid = call_sid(15);
    twilio.answer(
        &sid,
        CallAnswer::SlowServerError(Duration::from_millis(1200)),
    );
    let mut config = twilio.auth_token_config();
    config.budget.total = Duration::from_secs(3);
    config.budget.max_tries = 100;
    let client = RestClient::new(config).expect("client");
    let started = Instant::now();
    let outcome = client.redirect(&sid, CONNECT_URL).await;
    let took = started.elapsed();
    assert!(matches!(outcome, RedirectOutcome::Failed(_)), "{outcome:?}");
    let tries = twilio.requests_for(&sid).len();
    assert!((2..100).contains(&tries), "{tries} tries");
    // A correctness bound (the budget and scheduling slack), not a speed goal.
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

/// A call of a sub-account is redirected in that sub-account's path, with the
/// parent's credentials (Twilio lets them act on sub-accounts' calls).
#[tokio::test]
async fn a_redirect_in_a_subaccount_names_it_in_the_path() {
    let twilio = TwilioApiStandIn::start().await;
    let sid = call_sid(16);
    twilio.answer(&sid, CallAnswer::Succeed);
    let outcome = client(twilio.auth_token_config())
        .redirect_in(SUBACCOUNT_SID, &sid, CONNECT_URL)
        .await;
    assert!(
        matches!(outcome, RedirectOutcome::Redirected),
        "{outcome:?}"
    );
    let requests = twilio.requests_for(&sid);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].account, SUBACCOUNT_SID);
    assert_eq!(requests[0].user, ACCOUNT_SID);
    // An AccountSid that would change the path is refused before sending.
    let outcome = client(twilio.auth_token_config())
        .redirect_in("AC1/../x", &sid, CONNECT_URL)
        .await;
    assert!(
        matches!(outcome, RedirectOutcome::Failed(RestError::Sid { .. })),
        "{outcome:?}"
    );
    assert_eq!(twilio.requests_for(&sid).len(), 1);
}
