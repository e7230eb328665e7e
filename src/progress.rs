//! Progress of long operations: a bar on a terminal, nothing otherwise.
//!
//! The engine reports through the `Progress` trait so that the daemon can turn the same calls
//! into log events later.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub trait Progress: Sync {
    /// A new phase begins; `total` in the phase's unit when known.
    fn phase(&self, name: &str, total: Option<u64>, bytes: bool);
    fn advance(&self, amount: u64);
    fn finish(&self);
    /// Something the user must know now, whatever the output mode (waiting for another
    /// writer, say): a line on stderr.
    fn note(&self, message: &str) {
        eprintln!("{message}");
    }
}

pub struct Silent;

impl Progress for Silent {
    fn phase(&self, _: &str, _: Option<u64>, _: bool) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// A bar on stderr when it is a terminal; silent otherwise.
pub struct Terminal {
    bar: Option<ProgressBar>,
}

impl Terminal {
    pub fn new(enabled: bool) -> Terminal {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        Terminal { bar }
    }
}

impl Terminal {
    /// Removes the bar without a trace (before an error message).
    pub fn finish_quietly(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Terminal {
    fn phase(&self, name: &str, total: Option<u64>, bytes: bool) {
        let Some(bar) = &self.bar else { return };
        let (pos, len) = if bytes {
            ("{bytes}", "{total_bytes}")
        } else {
            ("{pos}", "{len}")
        };
        let template = match total {
            Some(_) => {
                format!("{{msg:10}} [{{bar:30}}] {pos}/{len} ({{binary_bytes_per_sec}}) {{eta}}")
            }
            None => format!("{{spinner}} {{msg:10}} {pos} ({{binary_bytes_per_sec}}) {{elapsed}}"),
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_length(total.unwrap_or(0));
        bar.set_position(0);
        bar.set_message(name.to_string());
    }

    fn advance(&self, amount: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(amount);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn note(&self, message: &str) {
        match &self.bar {
            // Above the bar, which stays.
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }
}
