//! Logging: JSON lines by default (one object a line, the call's span fields such
//! as CallSid on every line logged inside it), or human-readable with `pretty`.
//! `RUST_LOG` filters, as a list of `target=level` (or a bare level); the
//! default is `info`. That is tracing-subscriber's `Targets`: its `EnvFilter`
//! would also take span and field directives, but brings a regex engine (about
//! 300 KB of the binary) for them.
//!
//! Logging must never block or kill request handling. Lines go through
//! tracing-appender's non-blocking writer: a bounded queue that one thread
//! writes to stdout. A full queue (stdout not read) drops the line, and so does
//! a failed write (stdout closed: `serve | head`); both are counted in
//! `switchboard_log_lines_dropped_total`. Before this, a closed stdout made
//! tracing-subscriber report the failed write with `eprintln!`, which panics
//! when stderr is closed too: every task that logged died, the SIGTERM handler
//! among them.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;
use crate::metrics;

/// Lines the queue may hold while stdout is slow: about 5 MB of JSON lines,
/// where tracing-appender's default (128,000) would let a stalled log reader
/// pin some 40 MB.
const QUEUED_LINES: usize = 16_384;

/// Lines dropped because the queue was full (tracing-appender counts them).
static QUEUE_FULL: OnceLock<ErrorCounter> = OnceLock::new();

/// Keep it until the process ends: dropping it flushes the queued lines.
#[must_use = "dropping the guard stops logging"]
pub struct LogGuard {
    _worker: Option<WorkerGuard>,
}

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(format: LogFormat) -> LogGuard {
    let (filter, unreadable) = filter_from(std::env::var("RUST_LOG").ok());
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("switchboard-log")
        .finish(Stdout);
    let dropped = writer.error_counter();
    let builder = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(writer)
        // Colours for a person at a terminal (unless NO_COLOR is set); none in
        // a file, a pipe or a log collector, where the escape codes are noise.
        .with_ansi(
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        // Its report of a failed write is an `eprintln!`, which panics on a
        // closed stderr. Our writer never fails anyway; this is the belt.
        .log_internal_errors(false);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(filter)
            .try_init(),
        LogFormat::Pretty => builder.finish().with(filter).try_init(),
    };
    if installed.is_err() {
        return LogGuard { _worker: None };
    }
    if let Some(value) = unreadable {
        tracing::warn!(
            RUST_LOG = %value,
            "RUST_LOG is not a list of target=level; logging at info"
        );
    }
    let _ = QUEUE_FULL.set(dropped);
    LogGuard {
        _worker: Some(guard),
    }
}

/// `RUST_LOG`'s value as a filter, or `info` and the value that could not be
/// read.
fn filter_from(rust_log: Option<String>) -> (Targets, Option<String>) {
    let info = Targets::new().with_default(tracing::Level::INFO);
    match rust_log {
        None => (info, None),
        Some(value) if value.trim().is_empty() => (info, None),
        Some(value) => match value.parse::<Targets>() {
            Ok(targets) => (targets, None),
            Err(_) => (info, Some(value)),
        },
    }
}

/// Copies tracing-appender's count of lines dropped at a full queue into the
/// metric (it keeps its own counter; called before `/metrics` renders).
pub fn publish_dropped() {
    if let Some(counter) = QUEUE_FULL.get() {
        metrics::log_lines_dropped_queue_full(counter.dropped_lines() as u64);
    }
}

/// Stdout for the log thread: a line that cannot be written is dropped and
/// counted, never retried or reported on stderr (which may be the same pipe).
struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    /// tracing-appender writes one line per call.
    fn write_all(&mut self, line: &[u8]) -> std::io::Result<()> {
        if std::io::stdout().lock().write_all(line).is_err() {
            metrics::log_line_write_failed();
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stdout().lock().flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::filter_from;

    #[test]
    fn rust_log_is_read_as_targets_and_anything_else_falls_back_to_info() {
        let (unset, unreadable) = filter_from(None);
        assert!(unreadable.is_none());
        assert!(unset.would_enable("switchboard::routing", &Level::INFO));
        assert!(!unset.would_enable("switchboard::routing", &Level::DEBUG));

        let (targets, unreadable) = filter_from(Some("warn,switchboard=debug".into()));
        assert!(unreadable.is_none());
        assert!(targets.would_enable("switchboard::routing", &Level::DEBUG));
        assert!(!targets.would_enable("hyper::proto", &Level::INFO));
        assert!(targets.would_enable("hyper::proto", &Level::WARN));

        // EnvFilter's span directives are not taken: said, and info is used.
        let directive = "[call{CallSid=CA1}]=debug".to_string();
        let (fallback, unreadable) = filter_from(Some(directive.clone()));
        assert_eq!(unreadable, Some(directive));
        assert!(fallback.would_enable("switchboard", &Level::INFO));
        assert!(!fallback.would_enable("switchboard", &Level::DEBUG));
    }
}
