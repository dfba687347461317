//! What `deploy/` ships speaks of metrics that exist: the Grafana dashboard and
//! the Prometheus alerts name only the catalogue, and the alerts pass their
//! `promtool test rules` unit tests. (The Kubernetes manifests are built and
//! validated by deploy/check-k8s in .ci/run.)

use std::path::Path;
use std::process::Command;

fn deploy(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Every `switchboard_…` name in `text`, histogram suffixes removed.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("switchboard_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.push(base.to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn the_dashboard_queries_only_metrics_switchboard_exports() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&deploy("grafana/switchboard.json")).expect("valid JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8);
    let mut seen = std::collections::BTreeSet::new();
    let mut exprs = Vec::new();
    for panel in panels {
        if panel["type"] == "row" {
            continue; // a row only groups the panels below it
        }
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            exprs.push(expr.to_owned());
            for name in metric_names(expr) {
                assert!(
                    switchboard::metrics::CATALOGUE.contains(&name.as_str()),
                    "panel {:?} queries unknown {name}",
                    panel["title"]
                );
                seen.insert(name);
            }
        }
    }
    check_promql(&exprs);
    for wanted in [
        "switchboard_calls_total",
        "switchboard_routed_total",
        "switchboard_fallbacks_total",
        "switchboard_routing_failures_total",
        "switchboard_agents",
        "switchboard_webhook_duration_seconds",
        "switchboard_waiting",
        "switchboard_longest_wait_seconds",
        "switchboard_wait_seconds",
        "switchboard_wait_outcomes_total",
        "switchboard_answered_within_service_level_total",
        "switchboard_connect_seconds",
        "switchboard_twilio_redirects_total",
    ] {
        assert!(seen.contains(wanted), "no panel shows {wanted}");
    }
}

#[test]
fn the_alerts_name_only_exported_metrics_and_pass_their_unit_tests() {
    let rules = deploy("prometheus/alerts.yml");
    for name in metric_names(&rules) {
        assert!(
            switchboard::metrics::CATALOGUE.contains(&name.as_str()),
            "alerts.yml uses unknown {name}"
        );
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ] {
        let out = match Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
        {
            Ok(out) => out,
            Err(e) => panic!(
                "promtool is needed ({e}): install it with `sudo apt-get install prometheus` (Debian/Ubuntu)"
            ),
        };
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Parses the dashboard's queries with promtool, as recording rules, after
/// putting values in for Grafana's variables.
fn check_promql(exprs: &[String]) {
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "5m")
            .replace("$queue", ".*");
        rules.push_str(&format!(
            "      - record: dashboard:panel{i}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let file = std::env::temp_dir().join(format!("sb-dashboard-rules-{}.yml", std::process::id()));
    std::fs::write(&file, rules).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output();
    let _ = std::fs::remove_file(&file);
    let out = out.unwrap_or_else(|e| {
        panic!("promtool is needed ({e}): install it with `sudo apt-get install prometheus`")
    });
    assert!(
        out.status.success(),
        "a dashboard query does not parse:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
