//! README.md, CONTRIBUTING.md and docs/ say only what is true where a test
//! can tell: the README stays a short front door; every relative link
//! reaches a file (and a heading) that exists; every setting they name is
//! one the binary reads; every TOML example parses as what it shows (a
//! routing file, or an agents file against the routing shown beside it);
//! and README's "Your first real call", run with its own files and commands
//! against a real redis-server and the built binary, rings the phone it names.
#![cfg(unix)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::process::Process;
use switchboard::config::RoutingTable;
use switchboard::redis_server::{RedisServer, free_port};
use switchboard::roster::Roster;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// README.md, CONTRIBUTING.md and every page of docs/, with their text.
fn pages() -> Vec<(PathBuf, String)> {
    let mut paths = vec![
        Path::new(ROOT).join("README.md"),
        Path::new(ROOT).join("CONTRIBUTING.md"),
    ];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            (p, text)
        })
        .collect()
}

/// The text outside fenced code blocks.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The fenced blocks of `lang`, in order.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed == format!("```{lang}") => current = Some(String::new()),
            Some(_) if trimmed.starts_with("```") => out.extend(current.take()),
            Some(block) => {
                // Blocks inside a list item are indented with it.
                let indent = line.len() - trimmed.len();
                block.push_str(&line[indent.min(3)..]);
                block.push('\n');
            }
            None => {}
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

#[test]
fn the_readme_is_a_front_door_of_at_most_250_lines() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines: move detail to docs/"
    );
    // Its first commands are the two that do everything on a fresh machine.
    let first = blocks(&readme, "sh")
        .into_iter()
        .next()
        .expect("a sh block");
    assert!(first.starts_with("cargo run --release -- demo"), "{first}");
    assert!(
        first.lines().nth(1).unwrap().starts_with("cargo test"),
        "{first}"
    );
}

#[test]
fn every_relative_link_reaches_a_file_and_heading_that_exist() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for (page, text) in pages() {
        let dir = page.parent().unwrap();
        let body = prose(&text);
        for link in body.split("](").skip(1) {
            let Some(target) = link.split(')').next() else {
                continue;
            };
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            checked += 1;
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            let path = if file.is_empty() {
                page.clone()
            } else {
                dir.join(file)
            };
            if !path.exists() {
                broken.push(format!("{page:?}: {target} (no such file)"));
                continue;
            }
            if !fragment.is_empty() && path.extension().is_some_and(|e| e == "md") {
                let target_text = std::fs::read_to_string(&path).unwrap();
                if !anchors(&target_text).contains(fragment) {
                    broken.push(format!("{page:?}: {target} (no such heading)"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(
        checked > 30,
        "only {checked} links found: is the parser right?"
    );
}

#[test]
fn every_setting_the_docs_name_is_one_the_binary_reads() {
    let mut source = String::new();
    for dir in [
        "src",
        "src/config",
        "src/store",
        "src/twilio",
        "src/http",
        "src/api",
        "src/routing",
        "src/simulate",
    ] {
        for entry in std::fs::read_dir(Path::new(ROOT).join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                source.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let mut unknown = BTreeSet::new();
    let mut named = 0;
    for (page, text) in pages() {
        for prefix in ["SWITCHBOARD_", "TWILIO_"] {
            for (at, _) in text.match_indices(prefix) {
                // Inside a longer name (SWITCHBOARD_TWILIO_API_URL).
                if text[..at].ends_with(|c: char| c.is_ascii_uppercase() || c == '_') {
                    continue;
                }
                let name: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                let name = name.trim_end_matches('_');
                // A family (`SWITCHBOARD_REDIS_*`) is not a setting.
                if name.len() <= prefix.len() || text[at + name.len()..].starts_with("_*") {
                    continue;
                }
                named += 1;
                if !source.contains(&format!("\"{name}\"")) {
                    unknown.insert(format!("{name} ({})", page.display()));
                }
            }
        }
    }
    assert!(unknown.is_empty(), "named but never read: {unknown:#?}");
    assert!(
        named > 50,
        "only {named} settings named: is the scan right?"
    );
}

#[test]
fn every_toml_example_parses_as_what_it_shows() {
    let mut parsed = 0;
    for (page, text) in pages() {
        let name = page.display().to_string();
        // An agents file is checked against the routing shown before it on
        // its page (their queues), else the built-in one.
        let mut routing = RoutingTable::builtin();
        for block in blocks(&text, "toml") {
            if block.contains("[[agents]]") {
                Roster::parse(&block, &name, &routing)
                    .unwrap_or_else(|e| panic!("{name}: {e}\n{block}"));
            } else {
                routing = RoutingTable::parse(&block, &name)
                    .unwrap_or_else(|e| panic!("{name}: {e}\n{block}"));
            }
            parsed += 1;
        }
    }
    assert!(parsed >= 5, "only {parsed} TOML examples found");
}

/// README's "Your first real call", as far as it goes without Twilio: its two
/// files, `agents import` and `serve` with the environment it sets, then the
/// call Twilio would post for a caller dialling the number, signed with the
/// auth token, and the admin `curl` it shows.
#[tokio::test]
async fn the_first_real_call_in_the_readme_rings_the_phone_it_names() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let section = readme
        .split("## Your first real call")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has \"Your first real call\"");
    let files = blocks(section, "toml");
    let [routing, agents] = files.as_slice() else {
        panic!("two TOML files in \"Your first real call\": {files:?}");
    };
    let commands = blocks(section, "sh").join("\n");
    for said in [
        "export SWITCHBOARD_ROUTING=routing.toml",
        "switchboard agents import agents.toml",
        "switchboard serve",
    ] {
        assert!(commands.contains(said), "README no longer says {said:?}");
    }
    let quoted = |toml: &str, key: &str| -> String {
        let line = toml
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in {toml}"));
        line.split('"').nth(1).expect("a quoted value").to_owned()
    };
    let number = quoted(routing, "numbers");
    let phone = quoted(agents, "contact");

    let dir = std::env::temp_dir().join(format!("sb-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("routing.toml"), routing).unwrap();
    std::fs::write(dir.join("agents.toml"), agents).unwrap();
    let redis = RedisServer::start().expect("redis-server (sudo apt-get install redis-server)");

    let imported = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["agents", "import", "agents.toml"])
        .current_dir(&dir)
        .env("SWITCHBOARD_REDIS_URL", redis.url())
        .env("SWITCHBOARD_ROUTING", "routing.toml")
        .output()
        .expect("run agents import");
    assert!(
        imported.status.success(),
        "agents import: {}",
        String::from_utf8_lossy(&imported.stderr)
    );

    let port = free_port().unwrap();
    let public = format!("http://127.0.0.1:{port}");
    let routing_path = dir.join("routing.toml");
    let serve = Process::start_on(
        port,
        &["serve"],
        &redis.url(),
        "readme-first-call",
        &[
            ("TWILIO_AUTH_TOKEN", common::AUTH_TOKEN),
            ("SWITCHBOARD_PUBLIC_URL", &public),
            ("SWITCHBOARD_ADMIN_TOKEN", common::ADMIN_TOKEN),
            ("SWITCHBOARD_ROUTING", routing_path.to_str().unwrap()),
        ],
    )
    .await;
    let http = switchboard::tls::http_client_builder()
        .build()
        .expect("HTTP client");
    let url = format!("{}/twilio/voice", serve.base);
    let call = common::post_signed(
        &http,
        &url,
        &[
            ("CallSid", &common::call_sid(1)),
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("From", "+15550001111"),
            ("To", &number),
            ("CallStatus", "ringing"),
            ("Direction", "inbound"),
        ],
    )
    .await;
    assert_eq!(call.status, 200, "{}", call.body);
    assert!(
        call.body.contains("<Number") && call.body.contains(&phone),
        "the call should ring {phone}: {}",
        call.body
    );
    let queue = http
        .get(format!("{}/v1/queues/support", serve.base))
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(queue.status(), 200);
    let _ = std::fs::remove_dir_all(&dir);
}
