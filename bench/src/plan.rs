//! The command line of `elkfs bench engine` and the sizes it resolves to.
//!
//! Both targets get the same data set: `chunks` files of `chunk_blocks`
//! 64 KiB blocks. The engine stores them as chunk files (header, CRC table,
//! blocks) in `DIR/elkfs`; fio as plain files of the same data size in
//! `DIR/fio`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use elkfs_engine::{BLOCKS_PER_CHUNK, BLOCK_SIZE};

use crate::scenario::{
    Access, Scenario, Shape, RAND_READ_BYTES, RAND_READ_QUEUE_DEPTH, RAND_WRITE_QUEUE_DEPTH, SEQ_QUEUE_DEPTH,
    SEQ_REQUEST_BYTES, SEQ_STREAMS_DEFAULT,
};

const MIB: u64 = 1 << 20;
const CHUNK_MIB: u64 = (BLOCK_SIZE * BLOCKS_PER_CHUNK) as u64 / MIB;

/// `elkfs bench engine`: the chunk engine and fio on the same disk, in
/// alternating rounds, side by side.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Folder on the disk to measure (disk-backed: O_DIRECT is refused by
    /// tmpfs). The bench works in DIR/elkfs and DIR/fio and removes both.
    #[arg(long)]
    pub dir: PathBuf,
    /// Also print every figure as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// Rounds of (elkfs, fio) per scenario; the median ratio is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Size of the data set in MiB, a multiple of 64 (whole chunks).
    #[arg(long, default_value_t = 1024)]
    pub size_mib: u64,
    /// Seconds each random-I/O run lasts.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Tiny sizes, one round, about a second per scenario (for tests).
    #[arg(long)]
    pub quick: bool,
    /// tokio worker threads driving the engine. The default leaves one core
    /// to the disk's ring thread: on 2 cores, 1 worker beat 2 on sequential
    /// and random reads in side-by-side runs (bench/RESULTS.md).
    #[arg(long, default_value_t = default_workers())]
    pub workers: usize,
    /// Chunks written or read at once in the sequential scenarios (divides
    /// the queue depth of 16).
    #[arg(long, default_value_t = SEQ_STREAMS_DEFAULT)]
    pub streams: usize,
    /// Space the engine keeps free on the folder (HDD_LEAVE_SPACE_DEFAULT).
    #[arg(long, default_value_t = 1024)]
    pub leave_space_mib: u64,
    /// Write 3 to /proc/sys/vm/drop_caches before each run (root only).
    /// Both targets use O_DIRECT, so this only clears metadata caches; the
    /// host's cache under the virtio disk cannot be dropped from here.
    #[arg(long)]
    pub drop_caches: bool,
    /// The fio binary to run.
    #[arg(long, default_value = "fio")]
    pub fio: PathBuf,
    /// fio's buffers: `hugepages` (physically contiguous, the disk's real
    /// ceiling on this VM; the bench grows the kernel's huge-page pool as
    /// root and restores it) or `malloc` (fio's default).
    #[arg(long, value_enum, default_value_t = FioMemory::Hugepages)]
    pub fio_memory: FioMemory,
}

/// `--fio-memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FioMemory {
    Hugepages,
    Malloc,
}

/// One tokio worker per core, less one core for the ring thread.
pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1).max(1)
}

/// Resolved sizes and limits of one bench invocation.
#[derive(Debug, Clone)]
pub struct Plan {
    pub dir: PathBuf,
    pub chunks: usize,
    pub chunk_blocks: usize,
    pub seconds: u64,
    pub rounds: usize,
    pub workers: usize,
    pub streams: usize,
    pub leave_space_bytes: u64,
    pub drop_caches: bool,
    pub fio: PathBuf,
    pub fio_memory: FioMemory,
    pub json: bool,
    pub quick: bool,
}

impl Plan {
    pub fn from_args(args: &EngineArgs) -> Result<Plan> {
        let (chunks, chunk_blocks, seconds, rounds, leave_space_bytes) = if args.quick {
            // 4 chunks of 4 MiB: enough for every stream to have its own.
            (4, 64, 1, 1, 0)
        } else {
            if args.size_mib < CHUNK_MIB || !args.size_mib.is_multiple_of(CHUNK_MIB) {
                bail!("--size-mib {} is not a whole number of 64 MiB chunks", args.size_mib);
            }
            let chunks = usize::try_from(args.size_mib / CHUNK_MIB)?;
            (chunks, BLOCKS_PER_CHUNK, args.seconds, args.rounds, args.leave_space_mib.saturating_mul(MIB))
        };
        if !(1..=100).contains(&rounds) {
            bail!("--rounds {rounds} is outside 1..=100");
        }
        if !(1..=3600).contains(&seconds) {
            bail!("--seconds {seconds} is outside 1..=3600");
        }
        if !(1..=64).contains(&args.workers) {
            bail!("--workers {} is outside 1..=64", args.workers);
        }
        if args.streams == 0 || !SEQ_QUEUE_DEPTH.is_multiple_of(args.streams) {
            bail!("--streams {} does not divide the sequential queue depth {SEQ_QUEUE_DEPTH}", args.streams);
        }
        if args.streams > chunks {
            bail!("--streams {} is more than the {chunks} chunks of the data set", args.streams);
        }
        Ok(Plan {
            dir: args.dir.clone(),
            chunks,
            chunk_blocks,
            seconds,
            rounds,
            workers: args.workers,
            streams: args.streams,
            leave_space_bytes,
            drop_caches: args.drop_caches,
            fio: args.fio.clone(),
            fio_memory: args.fio_memory,
            json: args.json,
            quick: args.quick,
        })
    }

    pub fn chunk_bytes(&self) -> u64 {
        (self.chunk_blocks * BLOCK_SIZE) as u64
    }

    pub fn total_bytes(&self) -> u64 {
        self.chunk_bytes() * self.chunks as u64
    }

    /// The shape both targets run for `scenario`.
    pub fn shape(&self, scenario: Scenario) -> Shape {
        let timed = Some(Duration::from_secs(self.seconds));
        match scenario {
            Scenario::SeqWrite | Scenario::SeqRead => Shape {
                write: scenario == Scenario::SeqWrite,
                access: Access::Sequential,
                request_bytes: SEQ_REQUEST_BYTES,
                queue_depth: SEQ_QUEUE_DEPTH,
                streams: self.streams,
                duration: None,
            },
            Scenario::RandRead4k => Shape {
                write: false,
                access: Access::Random,
                request_bytes: RAND_READ_BYTES,
                queue_depth: RAND_READ_QUEUE_DEPTH,
                streams: self.chunks,
                duration: timed,
            },
            Scenario::RandWrite64k => Shape {
                write: true,
                access: Access::Random,
                request_bytes: BLOCK_SIZE,
                queue_depth: RAND_WRITE_QUEUE_DEPTH,
                streams: self.chunks,
                duration: timed,
            },
        }
    }

    /// fio reading whole 64 KiB blocks at random, at the 4 KiB scenario's
    /// queue depth: the same disk work as the engine's CRC-checked 4 KiB
    /// reads, so the gap to it is the engine's own overhead.
    pub fn crc_reference_shape(&self) -> Shape {
        Shape { request_bytes: BLOCK_SIZE, ..self.shape(Scenario::RandRead4k) }
    }
}

/// A plan for unit tests: `chunks` chunks of `chunk_blocks` blocks.
#[cfg(test)]
pub(crate) fn test_plan(chunks: usize, chunk_blocks: usize, quick: bool) -> Plan {
    Plan {
        dir: PathBuf::from("/var/tmp/b"),
        chunks,
        chunk_blocks,
        seconds: if quick { 1 } else { 10 },
        rounds: 3,
        workers: 2,
        streams: 4,
        leave_space_bytes: 0,
        drop_caches: false,
        fio: PathBuf::from("fio"),
        fio_memory: FioMemory::Hugepages,
        json: quick,
        quick,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EngineArgs,
    }

    fn plan(extra: &[&str]) -> Result<Plan> {
        let mut argv = vec!["bench", "--dir", "/var/tmp/x"];
        argv.extend_from_slice(extra);
        Plan::from_args(&Cli::try_parse_from(argv)?.args)
    }

    #[test]
    fn defaults_are_one_gib_in_whole_chunks() {
        let plan = plan(&[]).unwrap();
        assert_eq!((plan.chunks, plan.chunk_blocks, plan.rounds, plan.seconds), (16, 1024, 3, 10));
        assert_eq!(plan.total_bytes(), 1 << 30);
        let seq = plan.shape(Scenario::SeqWrite);
        assert_eq!((seq.queue_depth, seq.streams, seq.request_blocks()), (16, 4, 16));
        assert_eq!(plan.crc_reference_shape().request_bytes, BLOCK_SIZE);
    }

    #[test]
    fn quick_is_small() {
        let plan = plan(&["--quick"]).unwrap();
        assert_eq!((plan.chunks, plan.rounds, plan.seconds), (4, 1, 1));
        assert_eq!(plan.total_bytes(), 16 << 20);
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(plan(&["--size-mib", "100"]).is_err());
        assert!(plan(&["--size-mib", "0"]).is_err());
        assert!(plan(&["--streams", "3"]).is_err());
        assert!(plan(&["--size-mib", "64", "--streams", "2"]).is_err());
        assert!(plan(&["--rounds", "0"]).is_err());
    }
}
