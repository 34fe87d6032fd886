//! Pull progress: a bar per layer on a terminal, Docker's plain status lines otherwise.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pelagos_engine::pull::{PullEvent, PullProgress};

fn short(d: &pelagos_image::Digest) -> String {
    d.hex().chars().take(12).collect()
}

/// Plain lines on stderr (Docker's wording), for logs and pipes.
pub struct Lines;

impl PullProgress for Lines {
    fn event(&self, event: PullEvent) {
        let line = match event {
            PullEvent::LayerExists { digest, .. } => format!("{}: Already exists", short(&digest)),
            PullEvent::LayerStart { digest, .. } => format!("{}: Pulling fs layer", short(&digest)),
            PullEvent::LayerDone { digest, .. } => format!("{}: Pull complete", short(&digest)),
            PullEvent::Resolved { .. } | PullEvent::LayerProgress { .. } => return,
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// One bar per layer.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<usize, ProgressBar>>,
}

impl Bars {
    fn new() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn with_bar(&self, index: usize, f: impl FnOnce(&ProgressBar)) {
        if let Ok(bars) = self.bars.lock() {
            if let Some(b) = bars.get(&index) {
                f(b);
            }
        }
    }
}

impl PullProgress for Bars {
    fn event(&self, event: PullEvent) {
        match event {
            PullEvent::LayerExists { digest, .. } => {
                let _ = self
                    .multi
                    .println(format!("{}: Already exists", short(&digest)));
            }
            PullEvent::LayerStart {
                index,
                digest,
                size,
            } => {
                let bar = self.multi.add(ProgressBar::new(size));
                let style = ProgressStyle::with_template(
                    "{prefix}: {wide_bar} {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                bar.set_prefix(short(&digest));
                if let Ok(mut bars) = self.bars.lock() {
                    bars.insert(index, bar);
                }
            }
            PullEvent::LayerProgress { index, done } => {
                self.with_bar(index, |b| b.set_position(done))
            }
            PullEvent::LayerDone { index, digest } => self.with_bar(index, |b| {
                b.finish_and_clear();
                let _ = self
                    .multi
                    .println(format!("{}: Pull complete", short(&digest)));
            }),
            PullEvent::Resolved { .. } => {}
        }
    }
}

/// Nothing (`-q`).
pub struct Quiet;

impl PullProgress for Quiet {
    fn event(&self, _: PullEvent) {}
}

/// Bars on a terminal, lines otherwise, nothing when quiet.
pub fn for_terminal(quiet: bool) -> std::sync::Arc<dyn PullProgress> {
    if quiet {
        std::sync::Arc::new(Quiet)
    } else if std::io::stderr().is_terminal() {
        std::sync::Arc::new(Bars::new())
    } else {
        std::sync::Arc::new(Lines)
    }
}
