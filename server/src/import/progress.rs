//! The progress line of an import: on a terminal only, a few times a second.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Least time between two progress lines.
const EVERY: Duration = Duration::from_millis(250);

/// A `\r`-rewritten progress line on standard error, shown only when it is a
/// terminal (a log collector gets the summary line alone).
pub struct Progress {
    /// Whether standard error is a terminal.
    on_terminal: bool,
    /// When the import started (the rate is measured from it).
    started: Instant,
    /// When the line was last written.
    last: Option<Instant>,
}

impl Progress {
    /// Progress of an import that started at `started`, on standard error.
    pub fn on_stderr(started: Instant) -> Progress {
        Progress {
            on_terminal: std::io::stderr().is_terminal(),
            started,
            last: None,
        }
    }

    /// Show that `read` objects of `name` were read and `stored` stored in all,
    /// unless the line was written less than [`EVERY`] ago.
    pub fn show(&mut self, name: &str, read: u64, stored: u64) {
        if !self.on_terminal {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < EVERY)
        {
            return;
        }
        self.last = Some(now);
        let rate = stored as f64 / now.duration_since(self.started).as_secs_f64().max(0.001);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{name}: {read} objects read ({rate:.0} stored/s)");
        let _ = err.flush();
    }

    /// End the progress line, if one was written, so that what follows starts on a
    /// line of its own.
    pub fn end_line(&mut self) {
        if self.last.take().is_some() {
            eprintln!();
        }
    }

    /// Tell that `name` was read to its end: `read` objects, `rejected` of them
    /// rejected. On a terminal the line replaces the progress line; elsewhere it is
    /// the one line an input gets.
    pub fn input_done(&mut self, name: &str, read: u64, rejected: u64) {
        let erase = if self.last.take().is_some() {
            "\r\x1b[K"
        } else {
            ""
        };
        eprintln!("{erase}{name}: read {read} objects ({rejected} rejected)");
    }
}
