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
}
