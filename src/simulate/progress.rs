//! A run's progress while it lasts, on stderr (stdout keeps the report, its
//! last line JSON): at a terminal one line rewritten four times a second, else
//! a line every 10 s, so a three-minute run is not silent in a log either.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Calls finished and begun so far, shared with the workers.
#[derive(Default)]
pub struct Progress {
    pub begun: AtomicUsize,
    pub done: AtomicUsize,
}

/// Shows `progress` of `total` calls until dropped.
pub struct Ticker {
    task: tokio::task::JoinHandle<()>,
    terminal: bool,
    /// A line was drawn, so the summary needs a fresh one.
    drew: Arc<AtomicBool>,
}

impl Ticker {
    pub fn start(progress: Arc<Progress>, total: usize, started: Instant) -> Ticker {
        let terminal = std::io::stderr().is_terminal();
        let every = if terminal {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(10)
        };
        let drew = Arc::new(AtomicBool::new(false));
        let drawn = drew.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at((Instant::now() + every).into(), every);
            loop {
                ticks.tick().await;
                let done = progress.done.load(Ordering::Relaxed);
                let running = progress.begun.load(Ordering::Relaxed).min(total) - done.min(total);
                let line = format!(
                    "{done}/{total} calls done, {running} in progress, {:.0} s",
                    started.elapsed().as_secs_f64()
                );
                // A closed stderr is no reason to stop the run.
                let mut err = std::io::stderr().lock();
                let _ = if terminal {
                    write!(err, "\r{line}   ")
                } else {
                    writeln!(err, "{line}")
                };
                let _ = err.flush();
                drawn.store(true, Ordering::Relaxed);
            }
        });
        Ticker {
            task,
            terminal,
            drew,
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
        if self.terminal && self.drew.load(Ordering::Relaxed) {
            // The summary starts on a line of its own.
            let _ = writeln!(std::io::stderr().lock());
        }
    }
}
