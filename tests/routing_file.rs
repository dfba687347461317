//! An invalid routing file stops start-up with the file, line and problem.

use std::process::Command;

fn serve_with(routing: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!(
        "sb-routing-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("routing.toml");
    std::fs::write(&path, routing).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        // A configuration error is a message, never a backtrace.
        .env("RUST_BACKTRACE", "1")
        .env("SWITCHBOARD_ROUTING", &path)
        .env("TWILIO_AUTH_TOKEN", "t")
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .expect("run switchboard");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr)
            .into_owned()
            .replace(&path.display().to_string(), "routing.toml"),
    )
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn invalid_routing_files_stop_start_up_naming_file_line_and_problem() {
    let cases = [
        (
            "[defaults]\nring_timeout_secs = 601\n",
            "routing.toml:2: ring_timeout_secs must be between 5 and 600, not 601",
        ),
        (
            "[[queues]]\nname = \"default\"\n[[queues]]\nname = \"b\"\nfallback = [\"queue:c\"]\n",
            "routing.toml:5: fallback names unknown queue \"c\"",
        ),
        (
            "[[queues]]\nname = \"default\"\nfallback = [\"pager:1\"]\n",
            "routing.toml:3: bad fallback step \"pager:1\"",
        ),
        (
            "[[queues]]\nname = \"default\"\nnumbers = [\"+15005550006\"]\n[[queues]]\nname = \"b\"\nnumbers = [\"+15005550006\"]\n",
            "routing.toml:6: number +15005550006 is listed in two queues",
        ),
        (
            "[defaults]\nmax_attempts = \"three\"\n",
            "routing.toml:2: max_attempts: ",
        ),
        (
            "[voicemail]\ngreeting = \"hi\"\nmax_length = 3\n",
            "routing.toml:3: unknown field `max_length`",
        ),
        (
            "[emergency]\nfallback = \"queue:default\"\n",
            "routing.toml:2: the emergency fallback runs without Redis",
        ),
        (
            "[defaults]\nsay_voice = \"Polly.Joanna\"\nsay_language = \"en US\"\n",
            "routing.toml:3: say_language \"en US\" must be 1 to 64 letters",
        ),
        (
            "[[queues]]\nname = \"q\"\nsay_voice = \"<x/>\"\n",
            "routing.toml:3: say_voice \"<x/>\" must be 1 to 64 letters",
        ),
        (
            "[[queues]]\nname = \"q\"\n[queues.hold]\nloop_secs = 20\nmusic_secs = 180\n",
            "routing.toml:5: hold.music_secs is the length of hold.music_url, which is not set",
        ),
        (
            "[[queues]]\nname = \"q\"\n[queues.hold]\nmusic_url = \"https://m.example/a.mp3\"\nmusic_secs = 0\n",
            "routing.toml:5: hold.music_secs must be between 1 and 3600, not 0",
        ),
    ];
    for (file, expected) in cases {
        let (ok, stderr) = serve_with(file);
        assert!(!ok, "{file:?} was accepted");
        assert!(
            stderr.contains(expected),
            "{file:?}\nexpected {expected:?}\nin {stderr}"
        );
        let line: usize = expected
            .split(':')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("a line number");
        let text = file.lines().nth(line - 1).unwrap();
        assert!(
            stderr.contains(&format!("  {line} | {text}")),
            "the offending line is shown: {stderr}"
        );
        assert!(!stderr.contains("backtrace"), "{stderr}");
        assert!(!stderr.contains("Stack"), "{stderr}");
    }
}

#[test]
fn the_example_routing_file_is_valid() {
    switchboard::config::RoutingTable::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/routing.toml"
    )))
    .expect("examples/routing.toml is valid");
}
