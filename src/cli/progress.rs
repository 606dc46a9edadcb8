//! What `file upload|download` show while they work: an `indicatif` bar per
//! file in flight on stderr (stage, bytes, rate, ETA) when stderr is a
//! terminal and the user did not say `-N`; nothing otherwise. A tracker also
//! counts the bytes received, which tells a failed download that fetched
//! nothing (its new file is removed).

use super::table::clean;
use crate::clients::pithos::{Progress, Stage};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The bars of one command: one per file in flight, drawn together.
pub struct Bars {
    multi: Option<MultiProgress>,
}

impl Bars {
    /// Bars only for a person watching stderr, and not with `-N`.
    pub fn new(no_progress: bool) -> Bars {
        let show = !no_progress && std::io::stderr().is_terminal();
        Bars { multi: show.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())) }
    }

    /// A tracker for the transfer of `label` (with a bar when bars are drawn).
    pub fn tracker(&self, label: &str) -> Arc<Tracker> {
        let label = clean(label);
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::hidden());
            bar.set_style(style(UNKNOWN));
            bar.set_message(label.clone());
            bar
        });
        Arc::new(Tracker { bar, label, received: AtomicU64::new(0) })
    }

    /// Runs `f` (which prints) with the bars off the screen, so lines and bars do not mix.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.multi {
            Some(m) => m.suspend(f),
            None => f(),
        }
    }
}

/// The progress of one file's transfer.
pub struct Tracker {
    bar: Option<ProgressBar>,
    label: String,
    received: AtomicU64,
}

impl Tracker {
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
