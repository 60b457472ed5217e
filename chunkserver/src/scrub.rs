//! The background chunk test: every chunk is read and its CRCs checked,
//! one after another, no faster than `HDD_TEST_SPEED`. A chunk that fails
//! is marked damaged by the engine and reported by the master link.

use std::sync::Arc;
use std::time::{Duration, Instant};

use elkfs_engine::BLOCK_SIZE;
use tokio::sync::watch;

use crate::metrics::Op;
use crate::server::Ctx;

/// Pause between passes, and before the first one, so that start-up and
/// registration go first.
const PASS_PAUSE: Duration = Duration::from_secs(5);

pub(crate) async fn run(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let speed = ctx.config.hdd.test_speed_mib_s;
    if speed <= 0.0 {
        tracing::info!("background chunk test disabled (HDD_TEST_SPEED = 0)");
        return;
    }
    let bytes_per_sec = speed * (1 << 20) as f64;
    loop {
        if sleep_or_stop(PASS_PAUSE, &mut stop).await {
            return;
        }
        let chunks = ctx.engine.list();
        for c in chunks {
            let started = Instant::now();
            let blocks = ctx.engine.blocks(c.id, c.version).await.unwrap_or(0);
            let r = ctx.engine.test(c.id, c.version).await;
            let bytes = (blocks * BLOCK_SIZE) as u64;
            ctx.metrics.record(Op::Test, started, bytes, r.is_ok());
            if let Err(e) = &r {
                tracing::warn!("background test: chunk {} v{}: {e}", c.id, c.version);
            }
            // Spread the reads so the average stays at the configured rate.
            let budget = Duration::from_secs_f64(bytes.max(BLOCK_SIZE as u64) as f64 / bytes_per_sec);
            if sleep_or_stop(budget.saturating_sub(started.elapsed()), &mut stop).await {
                return;
            }
        }
    }
}

/// Sleeps; true when asked to stop instead.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.changed() => true,
    }
}
