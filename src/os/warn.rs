//! Warnings from the layers that do not print. `os`, `zk`, `dist` and the supervisor hand a warning to the
//! sink the program installed at start (the command line prints it to stderr; in the supervisor that is its
//! log file); with no sink, a warning is dropped.

use std::sync::OnceLock;

static SINK: OnceLock<fn(&str)> = OnceLock::new();

/// Where warnings go from now on; the first call wins.
pub fn set_sink(sink: fn(&str)) {
    let _ = SINK.set(sink);
}

/// Hand `line` (a whole sentence, starting with `warning: `) to the sink.
pub fn warn(line: &str) {
    if let Some(sink) = SINK.get() {
        sink(line);
    }
}
