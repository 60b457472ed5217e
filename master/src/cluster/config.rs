//! The chunkserver side's settings, named after their `mfsmaster.cfg` keys
//! and defaulting to MooseFS 3.0.117's values. Tests shorten the delays
//! with [`ClusterConfig::test_min`].

use std::time::Duration;

/// Per-server replication limits for the four urgencies MooseFS knows
/// (`CHUNKS_WRITE_REP_LIMIT` / `CHUNKS_READ_REP_LIMIT` take "a,b,c,d").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepLimit {
    /// A chunk with a single valid copy left.
    pub endangered: u32,
    /// Fewer valid copies than the goal.
    pub undergoal: u32,
    /// Moving copies between servers for balance.
    pub rebalance: u32,
    /// Balancing when the usage spread is extreme.
    pub rebalance_extreme: u32,
}

impl RepLimit {
    /// Parses "a,b,c,d" or a single number (used for all four), as
    /// `mfsmaster.cfg` allows.
    pub fn parse(text: &str) -> Option<RepLimit> {
        let parts: Vec<u32> = text.split(',').map(|p| p.trim().parse().ok()).collect::<Option<_>>()?;
        match parts[..] {
            [a] => Some(RepLimit { endangered: a, undergoal: a, rebalance: a, rebalance_extreme: a }),
            [a, b, c, d] => Some(RepLimit { endangered: a, undergoal: b, rebalance: c, rebalance_extreme: d }),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// `CHUNKS_LOOP_MAX_CPS`: most chunks the maintenance loop checks per second.
    pub loop_max_cps: u32,
    /// `CHUNKS_LOOP_MIN_TIME`: shortest time for one pass over all chunks.
    pub loop_min_time: Duration,
    /// `CHUNKS_SOFT_DEL_LIMIT`: deletions in flight per server, normally.
    pub soft_del_limit: u32,
    /// `CHUNKS_HARD_DEL_LIMIT`: deletions in flight per server while a
    /// deletion backlog persists.
    pub hard_del_limit: u32,
    /// `CHUNKS_WRITE_REP_LIMIT`: replications into one server at a time.
    pub write_rep_limit: RepLimit,
    /// `CHUNKS_READ_REP_LIMIT`: replications out of one server at a time.
    pub read_rep_limit: RepLimit,
    /// `REPLICATIONS_DELAY_INIT`: no replication this long after start, so
    /// servers have time to register before copies look missing.
    pub replications_delay_init: Duration,
    /// `REPLICATIONS_DELAY_DISCONNECT`: no replication this long after a
    /// server went away, as it may come back.
    pub replications_delay_disconnect: Duration,
    /// `ACCEPTABLE_PERCENTAGE_DIFFERENCE`: servers whose free space differs
    /// by less than this (percent) count as equal when placing copies, and
    /// are taken in random order. (MooseFS also rebalances by it; elkfs
    /// does not rebalance yet.)
    pub acceptable_percentage_difference: f64,
    /// `AUTH_CODE`: shared secret chunkservers must prove they know.
    pub auth_code: Option<String>,
    /// `MATOCS_TIMEOUT`: link timeout for servers that ask for none.
    pub link_timeout: Duration,
    /// How long the client path waits for chunkservers' replies.
    pub op_timeout: Duration,
    /// A command of the maintenance loop (replication, deletion) not
    /// answered in this time is given up: its counters are freed and the
    /// chunk considered again.
    pub replication_timeout: Duration,
    /// Copies of chunks the catalog does not know are deleted only after
    /// this long without news of the chunk (and never within
    /// `replications_delay_init` of start), so a chunk created a moment
    /// before its namespace record is committed, or a namespace still
    /// loading, loses nothing. MooseFS waits 7 days.
    pub unknown_chunk_grace: Duration,
    /// MooseFS refuses chunkservers on 127.0.0.0/8; tests on one host allow them.
    pub allow_loopback: bool,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            loop_max_cps: 100_000,
            loop_min_time: Duration::from_secs(300),
            soft_del_limit: 10,
            hard_del_limit: 25,
            write_rep_limit: RepLimit { endangered: 2, undergoal: 1, rebalance: 1, rebalance_extreme: 4 },
            read_rep_limit: RepLimit { endangered: 10, undergoal: 5, rebalance: 2, rebalance_extreme: 5 },
            replications_delay_init: Duration::from_secs(60),
            replications_delay_disconnect: Duration::from_secs(3600),
            acceptable_percentage_difference: 1.0,
            auth_code: None,
            link_timeout: Duration::from_secs(10),
            op_timeout: Duration::from_secs(20),
            replication_timeout: Duration::from_secs(300),
            unknown_chunk_grace: Duration::from_secs(3600),
            allow_loopback: false,
        }
    }
}

impl ClusterConfig {
    /// Everything fast: loops of a second, no replication delays, loopback
    /// servers accepted.
    pub fn test_min() -> ClusterConfig {
        ClusterConfig {
            loop_min_time: Duration::from_secs(1),
            replications_delay_init: Duration::ZERO,
            replications_delay_disconnect: Duration::ZERO,
            op_timeout: Duration::from_secs(10),
            replication_timeout: Duration::from_secs(30),
            unknown_chunk_grace: Duration::from_secs(2),
            allow_loopback: true,
            ..ClusterConfig::default()
        }
    }
}

impl ClusterConfig {
    /// Applies one `mfsmaster.cfg` line. `Ok(false)`: the key is not one of
    /// the cluster's (the caller's other sections may want it). `Err` says
    /// what is wrong with the value, for the caller's config error.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<bool, String> {
        use elkfs_daemon::cfgfile::{decimal, flag, int, non_empty, secs};
        let rep = |v: &str| RepLimit::parse(v).ok_or_else(|| format!("'{v}' is not N or A,B,C,D"));
        let forever = i64::from(u32::MAX);
        match key {
            "CHUNKS_LOOP_MAX_CPS" => self.loop_max_cps = int(value, 1..=10_000_000)?,
            // MooseFS raises shorter passes to a minute; elkfs takes what it
            // is told (tests want repairs within seconds).
            "CHUNKS_LOOP_MIN_TIME" => self.loop_min_time = secs(value, 1..=forever)?,
            "CHUNKS_SOFT_DEL_LIMIT" => self.soft_del_limit = int(value, 1..=100_000)?,
            "CHUNKS_HARD_DEL_LIMIT" => self.hard_del_limit = int(value, 1..=100_000)?,
            "CHUNKS_WRITE_REP_LIMIT" => self.write_rep_limit = rep(value)?,
            "CHUNKS_READ_REP_LIMIT" => self.read_rep_limit = rep(value)?,
            "REPLICATIONS_DELAY_INIT" => self.replications_delay_init = secs(value, 0..=forever)?,
            "REPLICATIONS_DELAY_DISCONNECT" => self.replications_delay_disconnect = secs(value, 0..=forever)?,
            "ACCEPTABLE_PERCENTAGE_DIFFERENCE" => self.acceptable_percentage_difference = decimal(value, 0.0..=100.0)?,
            "AUTH_CODE" => self.auth_code = non_empty(value),
            "MATOCS_TIMEOUT" => self.link_timeout = secs(value, 10..=65_535)?,
            // elkfs: MooseFS refuses chunkservers on 127.0.0.0/8; a one-host
            // cluster (`elkfs local`) needs them.
            "CHUNKSERVERS_ON_LOOPBACK" => self.allow_loopback = flag(value)?,
            _ => return Ok(false),
        }
        // As MooseFS: the hard limit is never below the soft one.
        self.hard_del_limit = self.hard_del_limit.max(self.soft_del_limit);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rep_limits_parse_like_mfsmaster_cfg() {
        assert_eq!(RepLimit::parse("2,1,1,4"), Some(ClusterConfig::default().write_rep_limit));
        assert_eq!(
            RepLimit::parse("3"),
            Some(RepLimit { endangered: 3, undergoal: 3, rebalance: 3, rebalance_extreme: 3 })
        );
        assert_eq!(RepLimit::parse("1,2"), None);
        assert_eq!(RepLimit::parse("x"), None);
    }

    #[test]
    fn mfsmaster_cfg_keys_apply_with_bounds() {
        let mut c = ClusterConfig::default();
        assert_eq!(c.apply("CHUNKS_LOOP_MIN_TIME", "5"), Ok(true));
        assert_eq!(c.loop_min_time, Duration::from_secs(5));
        assert!(c.apply("CHUNKS_LOOP_MIN_TIME", "0").is_err());
        assert_eq!(c.apply("CHUNKS_SOFT_DEL_LIMIT", "40"), Ok(true));
        assert_eq!(c.hard_del_limit, 40, "hard follows soft up");
        assert_eq!(c.apply("CHUNKS_WRITE_REP_LIMIT", "3"), Ok(true));
        assert_eq!(c.write_rep_limit.undergoal, 3);
        assert_eq!(c.apply("AUTH_CODE", "a#b"), Ok(true));
        assert_eq!(c.auth_code.as_deref(), Some("a#b"));
        assert!(c.apply("MATOCS_TIMEOUT", "2").is_err());
        assert_eq!(c.apply("CHUNKSERVERS_ON_LOOPBACK", "1"), Ok(true));
        assert!(c.allow_loopback);
        assert_eq!(c.apply("DATA_PATH", "/x"), Ok(false));
        assert!(c.apply("REPLICATIONS_DELAY_INIT", "soon").is_err());
        assert!(c.apply("ACCEPTABLE_PERCENTAGE_DIFFERENCE", "150").is_err());
    }
}
