//! The stop request: SIGINT, SIGTERM or SIGHUP set a flag that the
//! supervisor loop polls, so the orderly stop (unmount, then daemons)
//! always runs on the main thread and never inside a signal handler.
//!
//! Handlers are reset to the default by `exec`, so the daemons spawned
//! afterwards keep their own handling of SIGTERM.

use std::sync::atomic::{AtomicI32, Ordering};

/// The last stop signal received; 0 while none came.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signo: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    RECEIVED.store(signo, Ordering::SeqCst);
}

/// Installs the handlers; call once, before any child is spawned.
pub fn install() -> std::io::Result<()> {
    for signo in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value;
        // the handler only stores to an atomic, which is async-signal-safe.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signo, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The stop signal received so far, by name.
pub fn received() -> Option<&'static str> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        libc::SIGINT => Some("SIGINT"),
        libc::SIGTERM => Some("SIGTERM"),
        libc::SIGHUP => Some("SIGHUP"),
        _ => Some("a stop signal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_sets_the_flag() {
        install().expect("install handlers");
        assert_eq!(received(), None);
        // SAFETY: raise delivers SIGHUP to this thread, whose handler is ours.
        assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
        assert_eq!(received(), Some("SIGHUP"));
    }
}
