//! The progress of a long command on a terminal: one line on stderr with
//! the phase, a bar where the phase has a size (steps, rate, ETA), and the
//! library's own line (settled, backlog). It redraws every second even when
//! nothing moved, so a stalled phase still shows its clock. Nothing is drawn
//! with `--json` or when stderr is no terminal (CI logs, pipes).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shop_local::bench::progress::{Progress, Reporter};
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

/// A reporter that draws on this terminal, or a silent one.
pub fn reporter(json: bool) -> Reporter {
    if json || !std::io::stderr().is_terminal() {
        return Reporter::default();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_secs(1));
    Reporter::to(Arc::new(Bar(bar)))
}

struct Bar(ProgressBar);

/// A phase of known size: a bar, its count, the library's line, ETA.
const SIZED: &str = "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} · {msg} · {elapsed} (ETA {eta})";
/// A phase of unknown size: a spinner and the clock.
const UNSIZED: &str = "{spinner} {prefix:.bold} {msg} · {elapsed}";

impl Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        let template = if total > 0 { SIZED } else { UNSIZED };
        // The templates are constants: a bad one is a bug, shown as the default style.
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.0.set_style(style.progress_chars("=> "));
        }
        self.0.reset();
        self.0.set_length(total);
        self.0.set_prefix(name.to_owned());
        self.0.set_message("");
    }

    fn update(&self, done: u64, line: String) {
        self.0.set_position(done);
        self.0.set_message(line);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
