//! The four scenarios, and the one shape each gives both targets.
//!
//! A [`Shape`] is everything that decides what the disk sees: direction,
//! access pattern, request size, queue depth, how many files are written or
//! read at once, and for how long. The engine runner and the fio command
//! line are both built from the same `Shape`, so they cannot drift apart.

use std::time::Duration;

use elkfs_engine::BLOCK_SIZE;

/// Bytes in one sequential request: 16 blocks, what a MooseFS client sends
/// in one go and what fio calls `--bs=1M`.
pub const SEQ_REQUEST_BYTES: usize = 1 << 20;
/// Sequential requests in flight in total.
pub const SEQ_QUEUE_DEPTH: usize = 16;
/// Chunks (files) written or read at once by the sequential scenarios; the
/// queue depth is spread evenly over them.
pub const SEQ_STREAMS_DEFAULT: usize = 4;
/// Random 4 KiB reads in flight.
pub const RAND_READ_QUEUE_DEPTH: usize = 32;
/// Random 64 KiB writes in flight.
pub const RAND_WRITE_QUEUE_DEPTH: usize = 16;
/// Bytes of one random read.
pub const RAND_READ_BYTES: usize = 4096;

/// One of the compared workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    SeqWrite,
    SeqRead,
    RandRead4k,
    RandWrite64k,
}

/// Which figure a scenario is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    MibPerSecond,
    Iops,
}

impl Scenario {
    /// In run order: writing first leaves the data every later scenario reads.
    pub const ALL: [Scenario; 4] =
        [Scenario::SeqWrite, Scenario::SeqRead, Scenario::RandRead4k, Scenario::RandWrite64k];

    /// The scenario's key in the JSON object and the table.
    pub fn key(self) -> &'static str {
        match self {
            Scenario::SeqWrite => "seq_write",
            Scenario::SeqRead => "seq_read",
            Scenario::RandRead4k => "rand_read_4k",
            Scenario::RandWrite64k => "rand_write_64k",
        }
    }

    pub fn measure(self) -> Measure {
        match self {
            Scenario::SeqWrite | Scenario::SeqRead => Measure::MibPerSecond,
            Scenario::RandRead4k | Scenario::RandWrite64k => Measure::Iops,
        }
    }

    /// The elkfs/fio ratio the project aims for, where one is set.
    pub fn target(self) -> Option<f64> {
        match self {
            Scenario::SeqWrite | Scenario::SeqRead => Some(0.95),
            Scenario::RandRead4k => Some(0.85),
            Scenario::RandWrite64k => None,
        }
    }
}

/// Whether requests walk files front to back or land anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Sequential,
    Random,
}

/// What one run does, for either target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub write: bool,
    pub access: Access,
    pub request_bytes: usize,
    pub queue_depth: usize,
    /// Files in flight at once (fio `--openfiles`); sequential only.
    pub streams: usize,
    /// `None`: the whole data set once. `Some`: random requests until then.
    pub duration: Option<Duration>,
}

impl Shape {
    /// fio's `--rw` for this shape.
    pub fn fio_rw(&self) -> &'static str {
        match (self.access, self.write) {
            (Access::Sequential, true) => "write",
            (Access::Sequential, false) => "read",
            (Access::Random, true) => "randwrite",
            (Access::Random, false) => "randread",
        }
    }

    /// Blocks one request covers (a 4 KiB read still touches one block).
    pub fn request_blocks(&self) -> usize {
        self.request_bytes.div_ceil(BLOCK_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_documented_ones() {
        let keys: Vec<&str> = Scenario::ALL.iter().map(|s| s.key()).collect();
        assert_eq!(keys, ["seq_write", "seq_read", "rand_read_4k", "rand_write_64k"]);
    }

    #[test]
    fn request_blocks_round_up() {
        let shape = Shape {
            write: false,
            access: Access::Random,
            request_bytes: RAND_READ_BYTES,
            queue_depth: 1,
            streams: 1,
            duration: None,
        };
        assert_eq!(shape.request_blocks(), 1);
        assert_eq!(shape.fio_rw(), "randread");
        assert_eq!(Shape { request_bytes: SEQ_REQUEST_BYTES, ..shape }.request_blocks(), 16);
    }
}
