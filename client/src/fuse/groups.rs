//! The caller's supplementary groups, which the master needs to check
//! permissions as the kernel would. FUSE passes only uid, gid and pid, so
//! they come from `/proc/PID/status`, cached briefly per (pid, uid, gid):
//! a `make` runs thousands of requests from one process.

use std::time::Duration;

use super::ttlmap::TtlMap;

/// How long a process's group list is trusted.
const TTL: Duration = Duration::from_secs(1);
/// Entries kept before the cache is emptied (bounded memory).
const MAX_ENTRIES: usize = 4096;

/// `(pid, uid, gid)` of a request.
type Caller = (u32, u32, u32);

pub struct Groups {
    cache: TtlMap<Caller, Vec<u32>>,
}

impl Default for Groups {
    fn default() -> Self {
        Groups { cache: TtlMap::new(TTL, MAX_ENTRIES) }
    }
}

impl Groups {
    /// `gid` first, then the process's other groups.
    pub fn of(&self, pid: u32, uid: u32, gid: u32) -> Vec<u32> {
        let key = (pid, uid, gid);
        if let Some(gids) = self.cache.get(&key) {
            return gids;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let gids = with_primary(gid, parse_groups(&status));
        self.cache.put(key, gids.clone());
        gids
    }
}

/// The `Groups:` line of a `/proc/PID/status` text.
fn parse_groups(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|rest| rest.split_whitespace().filter_map(|g| g.parse().ok()).collect())
        .unwrap_or_default()
}

fn with_primary(gid: u32, groups: Vec<u32>) -> Vec<u32> {
    let mut out = Vec::with_capacity(groups.len() + 1);
    out.push(gid);
    out.extend(groups.into_iter().filter(|g| *g != gid));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_line_read_primary_first() {
        let status = "Name:\tcat\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 100 1000 \nNSpid:\t1\n";
        assert_eq!(with_primary(100, parse_groups(status)), vec![100, 4, 24, 1000]);
        assert_eq!(with_primary(7, parse_groups("Name:\tx\n")), vec![7]);
        // This very process has a readable status and at least its gid.
        let me = std::process::id();
        // SAFETY: getgid has no preconditions.
        let gid = unsafe { libc::getgid() };
        assert_eq!(Groups::default().of(me, 0, gid)[0], gid);
    }
}
