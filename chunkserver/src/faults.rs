//! The network fault seam: switches that make this server's links fail on
//! purpose, so tests can break a write chain or a replication at a chosen
//! moment, in process, without killing anything.
//!
//! Off by default and costing one atomic load where checked. Tests reach
//! them through [`crate::Running::faults`].

use std::sync::atomic::{AtomicU64, Ordering};

const NEVER: u64 = u64::MAX;

#[derive(Debug)]
pub struct NetFaults {
    /// Pieces still forwarded down a write chain before the link to the
    /// next server is cut (counted over all chains of this server).
    forward_budget: AtomicU64,
    /// Blocks still received by a replication before its source link is cut.
    replicate_budget: AtomicU64,
}

impl Default for NetFaults {
    fn default() -> NetFaults {
        NetFaults { forward_budget: AtomicU64::new(NEVER), replicate_budget: AtomicU64::new(NEVER) }
    }
}

impl NetFaults {
    /// Cuts the next-server link after `pieces` more forwarded pieces.
    pub fn cut_forward_after(&self, pieces: u64) {
        self.forward_budget.store(pieces, Ordering::SeqCst);
    }

    /// Cuts a replication's source link after `blocks` more blocks.
    pub fn cut_replication_after(&self, blocks: u64) {
        self.replicate_budget.store(blocks, Ordering::SeqCst);
    }

    pub fn clear(&self) {
        self.forward_budget.store(NEVER, Ordering::SeqCst);
        self.replicate_budget.store(NEVER, Ordering::SeqCst);
    }

    /// True when this forward may go; false means "the link breaks now".
    pub(crate) fn forward_ok(&self) -> bool {
        take(&self.forward_budget)
    }

    pub(crate) fn replicate_ok(&self) -> bool {
        take(&self.replicate_budget)
    }
}

fn take(budget: &AtomicU64) -> bool {
    if budget.load(Ordering::Relaxed) == NEVER {
        return true;
    }
    let step = |b| match b {
        NEVER => Some(NEVER),
        0 => None,
        b => Some(b - 1),
    };
    budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, step).is_ok()
}
