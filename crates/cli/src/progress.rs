//! Pull progress: a bar per layer on a terminal, Docker's plain status lines otherwise.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pelagos_engine::pull::{PullEvent, PullProgress};

fn short(d: &pelagos_image::Digest) -> String {
    d.hex().chars().take(12).collect()
}

/// Where pull progress goes: stdout for `pull` (as Docker's), stderr when `run` pulls (its
/// stdout is the container's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Stdout,
    Stderr,
}

impl Out {
    /// Writes one line.
    pub fn line(self, line: &str) {
        let _ = match self {
            Out::Stdout => writeln!(std::io::stdout(), "{line}"),
            Out::Stderr => writeln!(std::io::stderr(), "{line}"),
        };
    }

    fn is_terminal(self) -> bool {
        match self {
            Out::Stdout => std::io::stdout().is_terminal(),
            Out::Stderr => std::io::stderr().is_terminal(),
        }
    }

    fn draw_target(self) -> ProgressDrawTarget {
        match self {
            Out::Stdout => ProgressDrawTarget::stdout(),
            Out::Stderr => ProgressDrawTarget::stderr(),
        }
    }
}

/// Plain lines (Docker's wording), for logs and pipes.
pub struct Lines(Out);

impl PullProgress for Lines {
    fn event(&self, event: PullEvent) {
        let line = match event {
            PullEvent::LayerExists { digest, .. } => format!("{}: Already exists", short(&digest)),
            PullEvent::LayerStart { digest, .. } => format!("{}: Pulling fs layer", short(&digest)),
            PullEvent::LayerDone { digest, .. } => format!("{}: Pull complete", short(&digest)),
            PullEvent::Resolved { .. } | PullEvent::LayerProgress { .. } => return,
        };
        self.0.line(&line);
    }
}

/// One bar per layer.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<usize, ProgressBar>>,
}

impl Bars {
    fn new(out: Out) -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(out.draw_target()),
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
pub fn for_terminal(quiet: bool, out: Out) -> std::sync::Arc<dyn PullProgress> {
    if quiet {
        std::sync::Arc::new(Quiet)
    } else if out.is_terminal() {
        std::sync::Arc::new(Bars::new(out))
    } else {
        std::sync::Arc::new(Lines(out))
    }
}
