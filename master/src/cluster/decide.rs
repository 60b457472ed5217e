//! What the maintenance loop does with one chunk, as a pure function of its
//! copies, its catalog record and the servers' loads. The loads are updated
//! as actions are planned, so the per-server limits hold across all chunks
//! of one batch, before any reply has come back.
//!
//! Rules, in order: a released chunk loses every copy; a chunk the catalog
//! does not know loses every copy once it has been unknown for a while;
//! copies one version behind a locked chunk with no current copy are
//! brought forward (a write was cut off by a master restart); invalid copies
//! (damaged, wrong version) are deleted, but only while a valid copy
//! exists, so the last copies are never deleted; locked or busy chunks get
//! nothing more; surplus copies are deleted from the fullest servers; a
//! missing copy is replicated, one at a time per chunk.

use rand::Rng;

use super::placement::{pick_destination, pick_source, pick_surplus, Load};
use super::{CatalogChunk, CsId};
use crate::cluster::config::RepLimit;

/// One copy as the loop sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CopyView {
    pub cs: CsId,
    pub version: u32,
    pub on_removal_disk: bool,
    pub damaged: bool,
    /// A command is in flight for it (set version, truncate, delete...).
    pub busy: bool,
}

/// Everything known about one chunk when it is checked.
#[derive(Debug, Clone)]
pub(crate) struct ChunkFacts {
    pub copies: Vec<CopyView>,
    pub catalog: Option<CatalogChunk>,
    /// The namespace released it: every copy goes.
    pub released: bool,
    /// Unknown to the catalog for longer than the grace period.
    pub unknown_long_enough: bool,
    /// A replication of it is in flight.
    pub replicating: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// `version` 0 deletes whatever version the server holds.
    Delete {
        cs: CsId,
        version: u32,
    },
    SetVersion {
        cs: CsId,
        from: u32,
        to: u32,
    },
    Replicate {
        dest: CsId,
        source: CsId,
        version: u32,
    },
}

/// The limits one pass works under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub del: u32,
    pub write_rep: RepLimit,
    pub read_rep: RepLimit,
    /// False during the start and disconnect delays.
    pub replicate: bool,
    pub spread_pct: f64,
}

fn load_mut(loads: &mut [Load], cs: CsId) -> Option<&mut Load> {
    loads.iter_mut().find(|l| l.csid == cs)
}

/// Plans a deletion if the server is under its deletion limit.
fn delete(loads: &mut [Load], limits: &Limits, cs: CsId, version: u32, out: &mut Vec<Action>) {
    if let Some(l) = load_mut(loads, cs) {
        if l.deletions < limits.del {
            l.deletions += 1;
            out.push(Action::Delete { cs, version });
        }
    }
}

pub(crate) fn decide(facts: &ChunkFacts, loads: &mut [Load], limits: &Limits, rng: &mut impl Rng) -> Vec<Action> {
    let mut out = Vec::new();
    let idle = || facts.copies.iter().filter(|c| !c.busy);
    if facts.released {
        for c in idle() {
            delete(loads, limits, c.cs, c.version, &mut out);
        }
        return out;
    }
    let Some(cat) = facts.catalog else {
        if facts.unknown_long_enough {
            for c in idle() {
                delete(loads, limits, c.cs, 0, &mut out);
            }
        }
        return out;
    };
    let valid: Vec<&CopyView> = facts.copies.iter().filter(|c| c.version == cat.version && !c.damaged).collect();
    // Only while no copy is at the catalog's version: then no write can
    // have reached any copy since the bump, and the old copies hold the
    // newest data. Once one copy is current, older ones are merely stale.
    let behind = |c: &CopyView| {
        valid.is_empty() && cat.stale_lock && cat.version > 1 && c.version == cat.version - 1 && !c.damaged
    };
    for c in idle().filter(|c| behind(c)) {
        out.push(Action::SetVersion { cs: c.cs, from: c.version, to: cat.version });
    }
    if !valid.is_empty() {
        for c in idle().filter(|c| (c.version != cat.version || c.damaged) && !behind(c)) {
            delete(loads, limits, c.cs, 0, &mut out);
        }
    }
    if cat.locked || facts.copies.iter().any(|c| c.busy) || facts.replicating {
        return out;
    }
    // A chunk the catalog knows keeps a copy whatever its goal says.
    let goal = (cat.goal as usize).max(1);
    let regular: Vec<CsId> = valid.iter().filter(|c| !c.on_removal_disk).map(|c| c.cs).collect();
    if regular.len() > goal {
        for cs in pick_surplus(loads, &regular, regular.len() - goal) {
            delete(loads, limits, cs, cat.version, &mut out);
        }
    } else if regular.len() < goal && !valid.is_empty() && limits.replicate {
        let endangered = valid.len() == 1;
        let pick = |r: RepLimit| if endangered { r.endangered } else { r.undergoal };
        let holders: Vec<CsId> = facts.copies.iter().map(|c| c.cs).collect();
        let sources: Vec<CsId> = valid.iter().map(|c| c.cs).collect();
        let dest = pick_destination(loads, &holders, pick(limits.write_rep), limits.spread_pct, rng);
        let source = pick_source(loads, &sources, pick(limits.read_rep), rng);
        if let (Some(dest), Some(source)) = (dest, source) {
            if let Some(l) = load_mut(loads, dest) {
                l.rep_in += 1;
            }
            if let Some(l) = load_mut(loads, source) {
                l.rep_out += 1;
            }
            out.push(Action::Replicate { dest, source, version: cat.version });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::config::ClusterConfig;
    use crate::cluster::placement::tests::load;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn copy(cs: CsId, version: u32) -> CopyView {
        CopyView { cs, version, on_removal_disk: false, damaged: false, busy: false }
    }

    fn facts(copies: Vec<CopyView>, version: u32, goal: u8, locked: bool) -> ChunkFacts {
        ChunkFacts {
            copies,
            catalog: Some(CatalogChunk { version, goal, locked, stale_lock: locked }),
            released: false,
            unknown_long_enough: false,
            replicating: false,
        }
    }

    fn limits() -> Limits {
        let c = ClusterConfig::default();
        Limits { del: 10, write_rep: c.write_rep_limit, read_rep: c.read_rep_limit, replicate: true, spread_pct: 1.0 }
    }

    fn loads(n: CsId) -> Vec<Load> {
        (1..=n).map(|i| load(i, i as u64, 100)).collect()
    }

    fn run(f: &ChunkFacts, loads: &mut [Load]) -> Vec<Action> {
        decide(f, loads, &limits(), &mut SmallRng::seed_from_u64(7))
    }

    #[test]
    fn undergoal_replicates_to_the_emptiest_server_without_a_copy() {
        let mut l = loads(4);
        let acts = run(&facts(vec![copy(2, 5)], 5, 2, false), &mut l);
        assert_eq!(acts, vec![Action::Replicate { dest: 1, source: 2, version: 5 }]);
        assert_eq!((l[0].rep_in, l[1].rep_out), (1, 1));
    }

    #[test]
    fn write_limit_stops_a_second_replication_into_one_server() {
        let mut l = loads(2);
        let two = facts(vec![copy(2, 1), copy(3, 1)], 1, 3, false);
        let mut l3 = loads(3);
        l3[0].rep_in = 1; // undergoal limit is 1 into a server
        assert!(run(&two, &mut l3).is_empty());
        // A single copy is endangered: limit 2.
        let one = facts(vec![copy(2, 1)], 1, 2, false);
        l[0].rep_in = 1;
        assert_eq!(run(&one, &mut l), vec![Action::Replicate { dest: 1, source: 2, version: 1 }]);
        assert!(run(&one, &mut l).is_empty(), "endangered limit of 2 reached");
    }

    #[test]
    fn overgoal_deletes_copies_on_the_fullest_servers() {
        let mut l = loads(3);
        let acts = run(&facts(vec![copy(1, 2), copy(2, 2), copy(3, 2)], 2, 1, false), &mut l);
        assert_eq!(acts, vec![Action::Delete { cs: 3, version: 2 }, Action::Delete { cs: 2, version: 2 }]);
    }

    #[test]
    fn goal_zero_still_keeps_one_copy() {
        let mut l = loads(2);
        let acts = run(&facts(vec![copy(1, 2), copy(2, 2)], 2, 0, false), &mut l);
        assert_eq!(acts, vec![Action::Delete { cs: 2, version: 2 }]);
    }

    #[test]
    fn wrong_versions_go_only_while_a_valid_copy_exists() {
        let mut l = loads(3);
        let mut damaged = copy(3, 4);
        damaged.damaged = true;
        let acts = run(&facts(vec![copy(1, 4), copy(2, 3), damaged], 4, 1, false), &mut l);
        assert_eq!(acts, vec![Action::Delete { cs: 2, version: 0 }, Action::Delete { cs: 3, version: 0 }]);
        let acts = run(&facts(vec![copy(2, 3), damaged], 4, 1, false), &mut l);
        assert!(acts.is_empty(), "the last copies stay: {acts:?}");
    }

    #[test]
    fn locked_chunk_brings_the_previous_version_forward_and_waits() {
        let mut l = loads(3);
        let acts = run(&facts(vec![copy(1, 6), copy(2, 6), copy(3, 5)], 7, 3, true), &mut l);
        let forward = |cs| Action::SetVersion { cs, from: 6, to: 7 };
        assert_eq!(acts, vec![forward(1), forward(2)], "the older copy is kept, not deleted");
        let acts = run(&facts(vec![copy(1, 6), copy(2, 7)], 7, 3, true), &mut l);
        assert_eq!(acts, vec![Action::Delete { cs: 1, version: 0 }], "one copy is current: the other is stale");
        let acts = run(&facts(vec![copy(1, 6)], 7, 1, false), &mut l);
        assert!(acts.is_empty(), "unlocked: a lone stale copy is kept, not renumbered");
        // Just bumped: the write path is about to renumber the copies
        // itself, and must not find them busy with the loop's command.
        let mut fresh = facts(vec![copy(1, 6), copy(2, 6)], 7, 3, true);
        if let Some(cat) = &mut fresh.catalog {
            cat.stale_lock = false;
        }
        assert!(run(&fresh, &mut l).is_empty(), "a fresh lock is the write path's business");
    }

    #[test]
    fn released_and_unknown_chunks_lose_every_copy_within_the_deletion_limit() {
        let mut l = loads(2);
        let mut f = facts(vec![copy(1, 3), copy(2, 3)], 3, 2, false);
        f.released = true;
        assert_eq!(run(&f, &mut l), vec![Action::Delete { cs: 1, version: 3 }, Action::Delete { cs: 2, version: 3 }]);
        l[0].deletions = 10;
        l[1].deletions = 9;
        assert_eq!(run(&f, &mut l), vec![Action::Delete { cs: 2, version: 3 }]);
        let mut unknown = facts(vec![copy(1, 3)], 3, 1, false);
        unknown.catalog = None;
        let mut l = loads(1);
        assert!(run(&unknown, &mut l).is_empty(), "within the grace period");
        unknown.unknown_long_enough = true;
        assert_eq!(run(&unknown, &mut l), vec![Action::Delete { cs: 1, version: 0 }]);
    }

    #[test]
    fn busy_or_replicating_chunks_and_start_delay_hold_goal_work() {
        let mut l = loads(3);
        let mut f = facts(vec![copy(1, 1)], 1, 2, false);
        f.replicating = true;
        assert!(run(&f, &mut l).is_empty());
        f.replicating = false;
        f.copies[0].busy = true;
        assert!(run(&f, &mut l).is_empty());
        f.copies[0].busy = false;
        let quiet = Limits { replicate: false, ..limits() };
        assert!(decide(&f, &mut l, &quiet, &mut SmallRng::seed_from_u64(1)).is_empty());
    }

    #[test]
    fn copies_on_removal_disks_do_not_count_toward_the_goal() {
        let mut l = loads(3);
        let mut td = copy(1, 2);
        td.on_removal_disk = true;
        let acts = run(&facts(vec![td, copy(2, 2)], 2, 2, false), &mut l);
        assert!(matches!(acts[..], [Action::Replicate { dest: 3, .. }]), "{acts:?}");
    }
}
