//! `switchboard agents import`, run as the built binary against a real Redis
//! that a server also serves: an agents file creates its agents, a second run
//! of the same file writes nothing, an update never touches an agent's live
//! state or place in line, `--prune` deletes only the agents the file does not
//! list, `--dry-run` writes nothing, and a bad file is refused whole, naming
//! the file, line, agent and setting.
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use common::*;
use reqwest::Method;
use serde_json::json;

/// A test's files (the routing file the servers use, agents files), in a
/// directory of its own that is removed at the end.
struct Files(PathBuf);

impl Files {
    fn new(test: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("sb-roster-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let files = Files(dir);
        files.write("routing.toml", ROUTING);
        files
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write a test file");
        path.display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a run of the binary ended with.
#[derive(Debug)]
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// `switchboard agents import <file> <args>` against `app`'s Redis, with
/// `files`' routing file, as an operator or a Job would run it.
fn import(app: &TestApp, files: &Files, file: &str, args: &[&str]) -> Run {
    import_checked_against(app, Some(files.0.join("routing.toml")), file, args)
}

/// As [`import`], with the queues checked against `routing` (`None`: none given).
fn import_checked_against(
    app: &TestApp,
    routing: Option<PathBuf>,
    file: &str,
    args: &[&str],
) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .args(["agents", "import", file])
        .args(args)
        .env("SWITCHBOARD_REDIS_URL", app.redis.url())
        .env_remove("SWITCHBOARD_ROUTING")
        .env_remove("SWITCHBOARD_NAMESPACE");
    if let Some(routing) = routing {
        command.env("SWITCHBOARD_ROUTING", routing);
    }
    let out = command.output().expect("run switchboard");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The run succeeded and its report ends with the counts `summary`.
fn assert_summary(run: &Run, summary: &str) {
    assert!(run.ok, "{run:?}");
    assert!(run.stdout.ends_with(&format!(": {summary}\n")), "{run:?}");
}

const ROSTER: &str = r#"
[[agents]]
id = "ana"
name = "Ana"
contact = "client:ana"
queues = ["sales", "support"]
state = "available"
skills = { es = 3, billing = 5 }

[[agents]]
id = "bo"
name = "Bo"
contact = "+15551230002"
queues = ["sales"]
heartbeat_secs = 60
skills = ["vip"]

[[agents]]
id = "cy"
name = "Cy"
contact = "sip:cy@example.com"
queues = ["support"]
state = "away"
"#;

/// The scripts run on `app`'s Redis so far (every write of the store is
/// one) and every key's value: the same before and after means nothing was
/// written.
async fn written(app: &TestApp) -> (u64, BTreeMap<String, Vec<u8>>) {
    let counts = command_counts(&mut app.redis().await).await;
    let scripts = ["evalsha", "eval", "evalsha_ro", "eval_ro"]
        .iter()
        .filter_map(|c| counts.get(*c))
        .sum();
    (scripts, app.snapshot().await)
}

#[tokio::test]
async fn a_first_import_creates_the_agents_and_a_second_writes_nothing() {
    // No worker: nothing but the import runs scripts on this Redis.
    let app = spawn_app_with(ROUTING, false, |_| {}).await;
    let files = Files::new("first");
    let file = files.write("agents.toml", ROSTER);

    let first = import(&app, &files, &file, &[]);
    assert!(first.ok, "{first:?}");
    assert!(
        first.stdout.contains("created      ana (starts available)"),
        "{first:?}"
    );
    assert!(first.stdout.contains("created      bo\n"), "{first:?}");
    assert_summary(&first, "3 created, 0 updated, 0 unchanged, 0 deleted");
    let ana = app.agent("ana").await;
    assert_eq!(ana["state"], "available");
    assert_eq!(ana["queues"], json!(["sales", "support"]));
    assert_eq!(ana["skills"], json!({"billing": 5, "es": 3}));
    let bo = app.agent("bo").await;
    assert_eq!(bo["skills"], json!({"vip": 1}));
    assert_eq!(app.agent("cy").await["skills"], json!({}));
    assert_eq!(
        (
            &bo["name"],
            &bo["contact"],
            &bo["state"],
            &bo["heartbeat_secs"]
        ),
        (
            &json!("Bo"),
            &json!("+15551230002"),
            &json!("offline"),
            &json!(60)
        )
    );
    assert_eq!(app.agent("cy").await["state"], "away");

    let before = written(&app).await;
    let again = import(&app, &files, &file, &[]);
    assert!(again.ok, "{again:?}");
    for id in ["ana", "bo", "cy"] {
        assert!(
            again.stdout.contains(&format!("unchanged    {id}\n")),
            "{again:?}"
        );
    }
    assert_summary(&again, "0 created, 0 updated, 3 unchanged, 0 deleted");
    // Not one script ran, and every key (agents, lines, events) is as it was.
    assert_eq!(written(&app).await, before);
}

#[tokio::test]
async fn an_update_leaves_an_agent_on_a_call_on_it_and_a_free_one_in_its_place() {
    let app = spawn_app(ROUTING).await;
    let files = Files::new("live");
    let roster = r#"
[[agents]]
id = "first"
name = "First"
contact = "client:first"
queues = ["support"]
state = "available"

[[agents]]
id = "second"
name = "Second"
contact = "client:second"
queues = ["support"]
state = "available"

[[agents]]
id = "busy"
name = "Busy"
contact = "client:busy"
queues = ["vip"]
state = "available"
"#;
    let first_run = import(&app, &files, &files.write("agents.toml", roster), &[]);
    assert!(first_run.ok, "{first_run:?}");
    // `first`, made available first, is ahead in support's line.
    let support = app.admin(Method::GET, "/queues/support", None).await.json();
    assert_eq!(support["available"], json!(["first", "second"]));
    // `busy` takes a call to vip and answers it.
    let sid = call_sid(1);
    let dial = app.call(&sid, VIP).await;
    assert_eq!(dialed(&dial).as_deref(), Some("busy"));
    app.agent_leg(&sid, &dial, "answered").await;
    let busy_before = app.agent("busy").await;
    assert_eq!(busy_before["state"], "on_call");
    let (first_before, second_before) = (app.agent("first").await, app.agent("second").await);

    // New names and queues, and the file asks for states none of them are in.
    let changed = roster
        .replace("\"First\"", "\"First Agent\"")
        .replace(
            "contact = \"client:second\"\nqueues = [\"support\"]",
            "contact = \"client:second\"\nqueues = [\"support\", \"sales\"]",
        )
        .replace("queues = [\"vip\"]", "queues = [\"vip\", \"night\"]")
        .replace("state = \"available\"", "state = \"offline\"")
        .replace(
            "contact = \"client:second\"",
            "contact = \"client:second\"\nskills = { es = 2 }",
        );
    let run = import(&app, &files, &files.write("agents.toml", &changed), &[]);
    assert!(run.ok, "{run:?}");
    assert!(
        run.stdout
            .contains("updated      first: name \"First\" -> \"First Agent\"\n"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("updated      second: queues \"support\" -> \"support,sales\", skills \"\" -> \"es:2\"\n"),
        "{run:?}"
    );

    let busy = app.agent("busy").await;
    assert_eq!(busy["queues"], json!(["vip", "night"]));
    for field in ["state", "state_since", "call_sid"] {
        assert_eq!(busy[field], busy_before[field], "busy's {field}");
    }
    let (first, second) = (app.agent("first").await, app.agent("second").await);
    assert_eq!(first["name"], "First Agent");
    for field in ["state", "state_since", "available_at"] {
        assert_eq!(first[field], first_before[field], "first's {field}");
        assert_eq!(second[field], second_before[field], "second's {field}");
    }
    let support = app.admin(Method::GET, "/queues/support", None).await.json();
    assert_eq!(support["available"], json!(["first", "second"]));
    let sales = app.admin(Method::GET, "/queues/sales", None).await.json();
    assert_eq!(sales["available"], json!(["second"]));
    // The call goes on and ends as any other.
    let end = app.dial_action(&sid, &dial, "completed").await;
    assert!(end.body.contains("<Hangup/>"), "{end:?}");
}

#[tokio::test]
async fn prune_deletes_only_the_agents_the_file_does_not_list() {
    let app = spawn_app(ROUTING).await;
    let files = Files::new("prune");
    let run = import(&app, &files, &files.write("agents.toml", ROSTER), &[]);
    assert!(run.ok, "{run:?}");
    let extra = put_agent(&app.http, app.base(), ADMIN_TOKEN, "extra", &["night"]).await;
    assert_eq!(extra, 201);

    // Without --prune an agent the file does not list is kept, and said so.
    let kept = import(&app, &files, &files.write("agents.toml", ROSTER), &[]);
    assert!(kept.ok, "{kept:?}");
    assert!(
        kept.stdout
            .contains("not in the file, kept (--prune deletes them): extra\n"),
        "{kept:?}"
    );
    assert_eq!(app.agent("extra").await["id"], "extra");

    let without_cy = ROSTER.split("[[agents]]\nid = \"cy\"").next().unwrap();
    let pruned = import(
        &app,
        &files,
        &files.write("agents.toml", without_cy),
        &["--prune"],
    );
    assert!(pruned.ok, "{pruned:?}");
    assert!(
        pruned.stdout.contains("deleted      cy (was away)\n"),
        "{pruned:?}"
    );
    assert!(
        pruned.stdout.contains("deleted      extra (was offline)\n"),
        "{pruned:?}"
    );
    assert_summary(&pruned, "0 created, 0 updated, 2 unchanged, 2 deleted");
    for gone in ["cy", "extra"] {
        let a = app
            .admin(Method::GET, &format!("/agents/{gone}"), None)
            .await;
        assert_eq!(a.status, 404, "{gone}");
    }
    assert_eq!(app.agent("ana").await["state"], "available");
    assert_eq!(app.agent("bo").await["state"], "offline");
}

#[tokio::test]
async fn a_dry_run_prints_the_plan_and_writes_nothing() {
    let app = spawn_app_with(ROUTING, false, |_| {}).await;
    let files = Files::new("dry");
    let run = import(&app, &files, &files.write("agents.toml", ROSTER), &[]);
    assert!(run.ok, "{run:?}");
    let changed = ROSTER
        .replace("\"Bo\"", "\"Bo B\"")
        .replace("\"cy\"", "\"dee\"");
    let before = written(&app).await;

    let dry = import(
        &app,
        &files,
        &files.write("agents.toml", &changed),
        &["--dry-run", "--prune"],
    );
    assert!(dry.ok, "{dry:?}");
    for line in [
        "unchanged    ana\n",
        "would update bo: name \"Bo\" -> \"Bo B\"\n",
        "would create dee (starts away)\n",
        "would delete cy (was away)\n",
    ] {
        assert!(dry.stdout.contains(line), "{line}: {dry:?}");
    }
    assert!(
        dry.stdout.contains(" (dry run, nothing written): "),
        "{dry:?}"
    );
    assert_summary(
        &dry,
        "would be 1 created, 1 updated, 1 unchanged, 1 deleted",
    );
    assert_eq!(written(&app).await, before);
}

#[tokio::test]
async fn a_bad_file_changes_nothing_and_names_the_file_line_agent_and_setting() {
    let app = spawn_app(ROUTING).await;
    let files = Files::new("bad");
    let routing = format!("[contacts]\nallow = [\"+1*\", \"client:*\"]\n{ROUTING}");
    files.write("routing.toml", &routing);
    let before = app.snapshot().await;
    // A good agent first: it must not be created either.
    let bad = r#"[[agents]]
id = "good"
name = "Good"
contact = "client:good"
queues = ["sales"]

[[agents]]
id = "x1"
name = "X"
contact = "555-0100"
queues = ["sales", "billing"]
heartbeat_secs = -5
skills = { es = 0 }

[[agents]]
id = "good"
name = "Again"
contact = "sip:good@example.com"
queues = []
state = "on_call"
"#;
    let file = files.write("agents.toml", bad);
    let run = import(&app, &files, &file, &[]);
    assert!(!run.ok, "{run:?}");
    assert_eq!(run.stdout, "", "nothing is reported as done");
    for line in [
        format!("{file}:10: agent \"x1\": contact \"555-0100\" must be an E.164 number"),
        format!(
            "{file}:11: agent \"x1\": queues: unknown queue \"billing\"\n  11 | queues = [\"sales\", \"billing\"]"
        ),
        format!("{file}:12: agent \"x1\": heartbeat_secs must be 0 to 86400"),
        format!(
            "{file}:13: agent \"x1\": skills: skill \"es\": level 0 must be a whole number from 1 to 100"
        ),
        format!("{file}:16: agent \"good\": defined twice (first on line 2)"),
        format!(
            "{file}:18: agent \"good\": contact \"sip:good@example.com\" is not allowed by the routing file's [contacts] allow"
        ),
        format!(
            "{file}:20: agent \"good\": state \"on_call\" must be one of available, away, offline"
        ),
    ] {
        assert!(run.stderr.contains(&line), "{line}\n---\n{}", run.stderr);
    }
    assert!(run.stderr.contains("nothing was changed"), "{run:?}");
    assert_eq!(app.snapshot().await, before);

    // A file that is not the format, or has no agents at all, is refused too:
    // an empty file must not read as an empty roster (with --prune: delete all).
    let typo = files.write(
        "typo.toml",
        "[[agents]]\nid = \"a\"\nname = \"A\"\ncontact = \"client:a\"\nqueue = [\"sales\"]\n",
    );
    let run = import(&app, &files, &typo, &[]);
    assert!(
        !run.ok
            && run
                .stderr
                .contains(&format!("{typo}:5: unknown field `queue`")),
        "{run:?}"
    );
    let empty = files.write("empty.toml", "");
    let run = import(&app, &files, &empty, &["--prune"]);
    assert!(!run.ok && run.stderr.contains("no agents"), "{run:?}");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn without_the_routing_file_an_unknown_queue_says_where_queues_were_looked_up() {
    let app = spawn_app(ROUTING).await;
    let files = Files::new("norouting");
    let file = files.write("agents.toml", ROSTER);
    let run = import_checked_against(&app, None, &file, &[]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("unknown queue \"sales\"")
            && run.stderr.contains("SWITCHBOARD_ROUTING or --routing"),
        "{run:?}"
    );
}

/// The agents file that deploy/'s example overlay gives its agents-import Job
/// is one the import takes, checked against that overlay's routing file.
#[tokio::test]
async fn the_deploy_examples_agents_file_imports_against_its_routing_file() {
    let app = spawn_app_with(ROUTING, false, |_| {}).await;
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s/overlays/example");
    let agents = example.join("agents.toml");
    let run = import_checked_against(
        &app,
        Some(example.join("routing.toml")),
        agents.to_str().expect("a UTF-8 path"),
        &[],
    );
    assert_summary(&run, "1 created, 0 updated, 0 unchanged, 0 deleted");
}
