//! Ctrl-C for the commands that must clean up (up, watch, verify...): they install the handler and poll
//! `interrupted()` in their loops. Commands that never install it keep the default (zkdev just exits).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// From now on SIGINT (and SIGTERM) set a flag instead of ending zkdev.
pub fn install() {
    INSTALL.call_once(|| {
        let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    });
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
