//! What `file upload|download` show while they work: an `indicatif` bar on
//! stderr (stage, bytes, rate, ETA) when stderr is a terminal and the user
//! did not say `-N`; nothing otherwise. It also counts the bytes received,
//! which tells a failed download that fetched nothing (its new file is removed).

use super::table::clean;
use crate::clients::pithos::{Progress, Stage};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The progress of one file's transfer.
pub struct Tracker {
    bar: Option<ProgressBar>,
    label: String,
    received: AtomicU64,
}

/// Whether bars are drawn: only for a person watching stderr.
pub fn wanted(no_progress: bool) -> bool {
    !no_progress && std::io::stderr().is_terminal()
}

impl Tracker {
    /// A tracker for the transfer of `label`; with `show`, it draws a bar.
    pub fn new(label: &str, show: bool) -> Arc<Tracker> {
        let bar = show.then(|| ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()));
        Arc::new(Tracker { bar, label: clean(label), received: AtomicU64::new(0) })
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Takes the bar off the screen: the command's summary line (or its
    /// error) takes its place.
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

const KNOWN: &str = "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}";
const UNKNOWN: &str = "{msg} {spinner} {bytes} {bytes_per_sec}";

fn style(template: &str) -> ProgressStyle {
    // The templates are constants: a failure here is a bug, and a plain bar will do.
    ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Progress for Tracker {
    fn start(&self, stage: Stage, total: Option<u64>) {
        let Some(bar) = &self.bar else { return };
        match total {
            Some(t) => {
                bar.set_style(style(KNOWN));
                bar.set_length(t);
            }
            None => {
                bar.set_style(style(UNKNOWN));
                bar.unset_length();
            }
        }
        bar.set_position(0);
        bar.reset_eta();
        bar.set_message(format!("{} ({})", self.label, stage.name()));
    }

    fn advance(&self, stage: Stage, bytes: u64) {
        if stage == Stage::Receiving {
            self.received.fetch_add(bytes, Ordering::Relaxed);
        }
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }
}
