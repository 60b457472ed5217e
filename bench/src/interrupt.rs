//! Ctrl-C and SIGTERM: stop the runs, then clean up normally.
//!
//! The default action of SIGINT kills the process before any `Drop` runs,
//! which would leave gigabytes of bench files behind. Instead a task on the
//! bench's runtime sets a flag; every run loop checks it, a running fio is
//! killed, the bench returns an error and the work-folder guard removes the
//! files on the way out.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::runtime::Handle;

static STOP: AtomicBool = AtomicBool::new(false);

/// Whether a stop was asked for.
pub fn requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Starts watching for SIGINT and SIGTERM on `handle`'s runtime.
pub fn install(handle: &Handle) {
    handle.spawn(async {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    term.recv().await;
                }
                Err(e) => {
                    tracing::warn!("cannot watch SIGTERM: {e}");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            result = tokio::signal::ctrl_c() => {
                if let Err(e) = result {
                    tracing::warn!("cannot watch Ctrl-C: {e}");
                    return;
                }
            }
            () = term => {}
        }
        tracing::warn!("interrupted: stopping the current run and cleaning up");
        STOP.store(true, Ordering::Relaxed);
    });
}

/// An error if a stop was asked for, so `?` unwinds to the cleanup.
pub fn check() -> anyhow::Result<()> {
    if requested() {
        anyhow::bail!("interrupted");
    }
    Ok(())
}
