//! Choosing servers: where a new chunk goes, where a missing copy is made
//! and from where it is read, which surplus copy goes. Pure functions over
//! a snapshot of the servers' loads, so the choices are unit-tested and the
//! randomness comes from the caller (seeded in tests).

use rand::Rng;

use super::CsId;

/// A new copy needs this much free space on its server, more for every
/// creation already in flight there (MooseFS's rule: 64 MiB × (1 + 10 × n)).
pub(crate) const CHUNK_ROOM: u64 = 64 << 20;

/// What placement knows of one connected server.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Load {
    pub csid: CsId,
    /// Its chunk list is complete (`REGISTER END` arrived).
    pub registered: bool,
    pub overloaded: bool,
    pub used: u64,
    pub total: u64,
    pub creations: u32,
    pub rep_in: u32,
    pub rep_out: u32,
    pub deletions: u32,
}

impl Load {
    pub fn free(&self) -> u64 {
        self.total.saturating_sub(self.used)
    }

    /// Fraction of the disk in use; an empty server is 0, a server without
    /// disks counts as full.
    pub fn usage(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.used as f64 / self.total as f64
        }
    }

    fn has_room(&self) -> bool {
        self.registered
            && self.total > 0
            && self.used <= self.total
            && self.free() > CHUNK_ROOM * (1 + 10 * self.creations as u64)
    }
}

/// Free space blurred by up to `spread_pct` percent, so servers with nearly
/// the same free space are taken in random order instead of always the same.
fn blurred_free(load: &Load, spread_pct: f64, rng: &mut impl Rng) -> f64 {
    let jitter: f64 = if spread_pct > 0.0 { rng.random_range(0.0..spread_pct / 100.0) } else { 0.0 };
    load.free() as f64 * (1.0 + jitter)
}

fn by_free_desc<'a>(loads: impl Iterator<Item = &'a Load>, spread_pct: f64, rng: &mut impl Rng) -> Vec<CsId> {
    let mut keyed: Vec<(f64, CsId)> = loads.map(|l| (blurred_free(l, spread_pct, rng), l.csid)).collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    keyed.into_iter().map(|(_, id)| id).collect()
}

/// Up to `goal` distinct servers for a new chunk, most free space first.
/// Overloaded servers are used only when nothing else has room.
pub(crate) fn pick_create(loads: &[Load], goal: usize, spread_pct: f64, rng: &mut impl Rng) -> Vec<CsId> {
    let roomy = || loads.iter().filter(|l| l.has_room());
    let mut out = by_free_desc(roomy().filter(|l| !l.overloaded), spread_pct, rng);
    out.extend(by_free_desc(roomy().filter(|l| l.overloaded), spread_pct, rng));
    out.truncate(goal);
    out
}

/// A server to receive a new copy: it holds no copy of the chunk, has room
/// and is under `limit` incoming replications.
pub(crate) fn pick_destination(
    loads: &[Load],
    holders: &[CsId],
    limit: u32,
    spread_pct: f64,
    rng: &mut impl Rng,
) -> Option<CsId> {
    let ok = |l: &&Load| l.has_room() && !l.overloaded && l.rep_in < limit && !holders.contains(&l.csid);
    by_free_desc(loads.iter().filter(ok), spread_pct, rng).first().copied()
}

/// The copy to read from: among `valid` holders under `limit` outgoing
/// replications, the least busy one (random among equals).
pub(crate) fn pick_source(loads: &[Load], valid: &[CsId], limit: u32, rng: &mut impl Rng) -> Option<CsId> {
    let candidates: Vec<&Load> = loads.iter().filter(|l| valid.contains(&l.csid) && l.rep_out < limit).collect();
    let least = candidates.iter().map(|l| l.rep_out).min()?;
    let best: Vec<CsId> = candidates.iter().filter(|l| l.rep_out == least).map(|l| l.csid).collect();
    Some(best[rng.random_range(0..best.len())])
}

/// Which `surplus` of the `holders` to delete: those on the fullest servers.
pub(crate) fn pick_surplus(loads: &[Load], holders: &[CsId], surplus: usize) -> Vec<CsId> {
    let usage = |id: &CsId| loads.iter().find(|l| l.csid == *id).map(Load::usage).unwrap_or(1.0);
    let mut sorted = holders.to_vec();
    sorted.sort_by(|a, b| usage(b).total_cmp(&usage(a)).then(a.cmp(b)));
    sorted.truncate(surplus);
    sorted
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    pub(crate) fn load(csid: CsId, used_gib: u64, total_gib: u64) -> Load {
        Load { csid, registered: true, used: used_gib << 30, total: total_gib << 30, ..Load::default() }
    }

    #[test]
    fn create_prefers_free_space_and_distinct_servers() {
        let mut rng = SmallRng::seed_from_u64(1);
        let loads = [load(1, 90, 100), load(2, 10, 100), load(3, 50, 100)];
        assert_eq!(pick_create(&loads, 2, 1.0, &mut rng), vec![2, 3]);
        assert_eq!(pick_create(&loads, 5, 1.0, &mut rng), vec![2, 3, 1]);
    }

    #[test]
    fn create_skips_full_unregistered_and_defers_overloaded() {
        let mut rng = SmallRng::seed_from_u64(2);
        let mut full = load(1, 100, 100);
        full.used -= CHUNK_ROOM;
        let mut unreg = load(2, 0, 100);
        unreg.registered = false;
        let mut busy = load(3, 0, 100);
        busy.overloaded = true;
        let mut creating = load(5, 0, 1);
        creating.total = 10 * CHUNK_ROOM;
        creating.creations = 1;
        let loads = [full, unreg, busy, load(4, 99, 100), creating];
        assert_eq!(pick_create(&loads, 3, 1.0, &mut rng), vec![4, 3]);
    }

    #[test]
    fn create_randomises_among_equal_servers() {
        let mut rng = SmallRng::seed_from_u64(3);
        let loads = [load(1, 10, 100), load(2, 10, 100), load(3, 10, 100)];
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..100 {
            firsts.insert(pick_create(&loads, 1, 1.0, &mut rng)[0]);
        }
        assert_eq!(firsts.len(), 3, "every equal server gets chosen sometimes");
    }

    #[test]
    fn destination_respects_holders_and_write_limit() {
        let mut rng = SmallRng::seed_from_u64(4);
        let mut loaded = load(2, 0, 100);
        loaded.rep_in = 1;
        let loads = [load(1, 0, 100), loaded, load(3, 50, 100)];
        assert_eq!(pick_destination(&loads, &[1], 1, 1.0, &mut rng), Some(3));
        assert_eq!(pick_destination(&loads, &[1], 2, 1.0, &mut rng), Some(2));
        assert_eq!(pick_destination(&loads, &[1, 3], 1, 1.0, &mut rng), None);
    }

    #[test]
    fn source_is_least_busy_under_read_limit() {
        let mut rng = SmallRng::seed_from_u64(5);
        let mut a = load(1, 0, 100);
        a.rep_out = 2;
        let mut b = load(2, 0, 100);
        b.rep_out = 1;
        let loads = [a, b, load(3, 0, 100)];
        assert_eq!(pick_source(&loads, &[1, 2], 5, &mut rng), Some(2));
        assert_eq!(pick_source(&loads, &[1, 2], 1, &mut rng), None);
        assert_eq!(pick_source(&loads, &[], 5, &mut rng), None);
    }

    #[test]
    fn surplus_comes_from_the_fullest_servers() {
        let loads = [load(1, 10, 100), load(2, 80, 100), load(3, 50, 100)];
        assert_eq!(pick_surplus(&loads, &[1, 2, 3], 2), vec![2, 3]);
        assert_eq!(pick_surplus(&loads, &[1, 3], 1), vec![3]);
    }
}
