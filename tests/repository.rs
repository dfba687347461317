//! The repository itself: no stray output (curl dumps, logs) is committed, and
//! `.gitignore` keeps such files out.

use std::process::Command;

#[test]
fn no_scratch_output_is_committed() {
    let listed = Command::new("git")
        .args(["ls-files"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git is installed (apt-get install git)");
    assert!(listed.status.success(), "git ls-files failed");
    let files = String::from_utf8_lossy(&listed.stdout);
    let stray: Vec<&str> = files
        .lines()
        .filter(|f| {
            let name = f.rsplit('/').next().unwrap_or(f);
            [".out", ".log", ".tmp", ".orig", ".rej"]
                .iter()
                .any(|ext| name.ends_with(ext))
                || name == "nohup.out"
                || name == "core"
        })
        .collect();
    assert!(stray.is_empty(), "stray output committed: {stray:?}");
    let ignore = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.gitignore"))
        .expect(".gitignore");
    for pattern in ["*.out", "*.log"] {
        assert!(
            ignore.lines().any(|l| l.trim() == pattern),
            "{pattern} not ignored"
        );
    }
}
