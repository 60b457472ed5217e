//! The chunk loop: every tick it takes the next slice of chunks (released
//! ones first), asks the catalog about them without holding the cluster
//! lock, plans with [`decide`](super::decide::decide) and sends the
//! commands. The slice size makes one pass last at least
//! `CHUNKS_LOOP_MIN_TIME` and check at most `CHUNKS_LOOP_MAX_CPS` chunks per
//! second.
//!
//! Only chunks with at least one known copy are visited: a chunk without
//! copies offers nothing to replicate from or delete.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use elkfs_proto::master_cs::MaToCs;

use super::decide::{decide, Action, ChunkFacts, Limits};
use super::state::{OpKind, Pending, State};
use super::{CatalogChunk, Cluster};

const TICK: Duration = Duration::from_millis(100);
/// Released chunks looked at per tick, on top of the scan.
const RELEASED_PER_TICK: usize = 1000;

/// Chunks to check in one tick for a pass over `total` chunks.
pub(crate) fn slice_len(total: usize, min_time: Duration, max_cps: u32) -> usize {
    let ticks_per_pass = (min_time.as_secs_f64() / TICK.as_secs_f64()).max(1.0);
    let by_time = (total as f64 / ticks_per_pass).ceil() as usize;
    let by_rate = ((max_cps as f64) * TICK.as_secs_f64()).ceil().max(1.0) as usize;
    by_time.clamp(1, by_rate)
}

pub(super) async fn run(c: Arc<Cluster>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cursor = 0u64;
    loop {
        tick.tick().await;
        step(&c, &mut cursor);
    }
}

struct Batch {
    ids: Vec<(u64, ChunkFacts, Instant)>,
    loads: Vec<super::placement::Load>,
    limits: Limits,
}

/// Takes the slice under the lock; catalog facts are filled in later.
fn collect(c: &Cluster, st: &mut State, cursor: &mut u64) -> Batch {
    let now = Instant::now();
    st.expire(now, c.config.replication_timeout, c.config.op_timeout);
    // Measured before this tick takes its share of the queue.
    let backlog = st.released.len() > c.config.soft_del_limit as usize * st.servers.len().max(1);
    let mut ids: Vec<u64> = Vec::new();
    let mut seen = HashSet::new();
    for _ in 0..RELEASED_PER_TICK.min(st.released.len()) {
        let Some(id) = st.released.pop_front() else { break };
        if st.chunks.get(&id).is_some_and(|e| e.released) && seen.insert(id) {
            ids.push(id);
        }
    }
    let n = slice_len(st.chunks.len(), c.config.loop_min_time, c.config.loop_max_cps);
    let slice: Vec<u64> = st.chunks.range(*cursor..).map(|(id, _)| *id).take(n).collect();
    *cursor = if slice.len() < n { 0 } else { slice.last().map_or(0, |id| id + 1) };
    ids.extend(slice.into_iter().filter(|id| seen.insert(*id)));
    let quiet_start = now.duration_since(c.started) < c.config.replications_delay_init;
    let quiet_disconnect =
        st.last_disconnect.is_some_and(|t| now.duration_since(t) < c.config.replications_delay_disconnect);
    let limits = Limits {
        del: if backlog { c.config.hard_del_limit } else { c.config.soft_del_limit },
        write_rep: c.config.write_rep_limit,
        read_rep: c.config.read_rep_limit,
        replicate: !quiet_start && !quiet_disconnect,
        spread_pct: c.config.acceptable_percentage_difference,
    };
    let ids = ids
        .into_iter()
        .filter_map(|id| {
            let e = st.chunks.get(&id)?;
            let facts = ChunkFacts {
                copies: e.copies.iter().map(|c| c.view()).collect(),
                catalog: None,
                released: e.released,
                unknown_long_enough: false,
                replicating: e.replicating.is_some(),
            };
            Some((id, facts, e.touched))
        })
        .collect();
    Batch { ids, loads: st.loads(), limits }
}

fn step(c: &Cluster, cursor: &mut u64) {
    let mut batch = {
        let mut st = c.lock();
        collect(c, &mut st, cursor)
    };
    if batch.ids.is_empty() {
        return;
    }
    // The catalog is asked with no cluster lock held (lock order).
    let mut known: Vec<(u64, CatalogChunk)> = Vec::new();
    for (id, facts, touched) in &mut batch.ids {
        if facts.released {
            continue;
        }
        facts.catalog = c.catalog.chunk(*id);
        match facts.catalog {
            Some(cat) => known.push((*id, cat)),
            None => {
                facts.unknown_long_enough = touched.elapsed() >= c.config.unknown_chunk_grace
                    && c.started.elapsed() >= c.config.replications_delay_init
            }
        }
    }
    let mut rng = rand::rng();
    let plans: Vec<(u64, Vec<Action>)> = batch
        .ids
        .iter()
        .map(|(id, facts, _)| (*id, decide(facts, &mut batch.loads, &batch.limits, &mut rng)))
        .collect();
    let mut st = c.lock();
    for (id, cat) in known {
        if let Some(e) = st.chunks.get_mut(&id) {
            e.known_version = Some(cat.version);
            e.touched = Instant::now();
        }
    }
    for (id, actions) in plans {
        for a in actions {
            send(&mut st, id, a);
        }
        if st.chunks.get(&id).is_some_and(|e| e.released && !e.copies.is_empty()) {
            st.released.push_back(id);
        }
    }
}

fn pending(kind: OpKind, new_version: u32) -> Pending {
    Pending { kind, new_version, waiter: None, started: Instant::now() }
}

fn send(st: &mut State, id: u64, a: Action) {
    let sent = match a {
        Action::Delete { cs, version } => {
            st.start(cs, id, pending(OpKind::Delete, 0), MaToCs::Delete { chunk: id, version })
        }
        Action::SetVersion { cs, from, to } => st.start(
            cs,
            id,
            pending(OpKind::SetVersion, to),
            MaToCs::SetVersion { chunk: id, new_version: to, old_version: from },
        ),
        Action::Replicate { dest, source, version } => {
            let Some(src) = st.servers.get(&source).map(|s| s.addr) else { return };
            st.start(
                dest,
                id,
                pending(OpKind::Replicate { source }, version),
                MaToCs::Replicate { chunk: id, version, source: src },
            )
        }
    };
    if sent {
        tracing::debug!("chunk {id:016X}: {a:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_spread_a_pass_over_the_minimum_time_within_the_rate() {
        // 300 s pass, 100 ms ticks: 3000 ticks.
        assert_eq!(slice_len(3_000_000, Duration::from_secs(300), 100_000), 1000);
        assert_eq!(slice_len(30_000_000, Duration::from_secs(300), 100_000), 10_000, "capped by the rate");
        assert_eq!(slice_len(10, Duration::from_secs(300), 100_000), 1);
        assert_eq!(slice_len(10, Duration::from_secs(1), 100_000), 1);
        assert_eq!(slice_len(100, Duration::ZERO, 100_000), 100);
    }
}
