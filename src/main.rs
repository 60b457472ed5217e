//! The `elkfs` command: argument dispatch only; the work lives in the crates.

mod local;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// mimalloc: the data path allocates little, but the control path and the
/// benches should not measure glibc's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// elkfs: a MooseFS 3.0 compatible distributed file system.
#[derive(Parser)]
#[command(name = "elkfs", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a chunkserver (mfschunkserver.cfg syntax), in the foreground.
    Chunkserver {
        /// The configuration file.
        #[arg(short = 'c', long = "config", default_value = elkfs_chunkserver::config::DEFAULT_CONFIG_PATH)]
        config: std::path::PathBuf,
    },
    /// Run the master (mfsmaster.cfg syntax), in the foreground.
    Master {
        /// The configuration file.
        #[arg(short = 'c', long = "config", default_value = elkfs_master::config::DEFAULT_CONFIG_PATH)]
        config: std::path::PathBuf,
    },
    /// Run a metalogger (mfsmetalogger.cfg syntax), in the foreground.
    Metalogger {
        /// The configuration file.
        #[arg(short = 'c', long = "config", default_value = elkfs_master::metalogger::DEFAULT_CONFIG_PATH)]
        config: std::path::PathBuf,
    },
    /// Show what a master knows (elkfs or MooseFS 3.0): chunkservers,
    /// metaloggers, sessions, chunk health, metadata version.
    Admin {
        /// The master's host name or address.
        #[arg(short = 'H', long = "host")]
        host: String,
        /// The master's client port.
        #[arg(short = 'P', long = "port", default_value_t = 9421)]
        port: u16,
        /// Print JSON (stable field names) instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// A whole cluster on this machine: master, metalogger, chunkservers
    /// and a mount on loopback, until Ctrl-C.
    Local(local::LocalArgs),
    /// Mount the file system (FUSE), in the foreground, like mfsmount.
    Mount {
        /// Where to mount.
        mountpoint: std::path::PathBuf,
        /// The master's host name or address (or `-o mfsmaster=`).
        #[arg(short = 'H', long = "host", default_value = "mfsmaster")]
        host: String,
        /// The master's client port (or `-o mfsport=`).
        #[arg(short = 'P', long = "port", default_value_t = 9421)]
        port: u16,
        /// The exported folder to mount (or `-o mfssubfolder=`).
        #[arg(short = 'S', long = "subfolder", default_value = "/")]
        subfolder: String,
        /// Options, comma separated: mfsmount names (mfsmaster, mfsport,
        /// mfssubfolder, mfsattrcacheto, mfsentrycacheto, mfswritecachesize,
        /// mfsgiveup) and FUSE mount options (ro, allow_other, auto_unmount…).
        #[arg(short = 'o')]
        options: Vec<String>,
        /// Accepted for mfsmount compatibility: elkfs mount always stays in
        /// the foreground.
        #[arg(short = 'f', hide = true)]
        foreground: bool,
    },
    /// Measure elkfs against rivals on this machine.
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Subcommand)]
enum Bench {
    /// The chunk engine against fio (io_uring, O_DIRECT) on the same disk.
    Engine(elkfs_bench::EngineArgs),
    /// Real MooseFS master and mount with 3 real chunkservers, then with 3
    /// elkfs chunkservers: the same fio jobs, plus the data protocol spoken
    /// straight to one chunkserver (root; MooseFS 3.0 and fio installed).
    Cluster(elkfs_bench::ClusterArgs),
    /// Real mfsmaster vs elkfs master (changelog fsync off and on):
    /// creates, stats, renames, unlinks per second over the client
    /// protocol and through mfsmount, and RSS per file (root; MooseFS 3.0).
    Meta(elkfs_bench::MetaArgs),
    /// The real mfsmount vs elkfs mount, on mfsmaster + 3 mfschunkserver
    /// and on elkfs master + 3 elkfs chunkservers: the same fio jobs and a
    /// small-file run (root; MooseFS 3.0 and fio installed).
    Mount(elkfs_bench::MountArgs),
}

fn main() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(ansi).with_env_filter(filter).init();
    match Cli::parse().command {
        Command::Chunkserver { config } => Ok(elkfs_chunkserver::run(&config)?),
        Command::Master { config } => {
            Ok(elkfs_master::server::run(elkfs_master::config::MasterConfig::load(&config)?)?)
        }
        Command::Metalogger { config } => {
            Ok(elkfs_master::metalogger::run(elkfs_master::metalogger::MlConfig::load(&config)?)?)
        }
        Command::Admin { host, port, json } => Ok(elkfs_master::admin_cli::run(&host, port, json)?),
        Command::Local(args) => local::run(&args),
        Command::Mount { mountpoint, host, port, subfolder, options, foreground: _ } => {
            let mut opts = elkfs_client::MountOptions::new(mountpoint, host, port, subfolder);
            options.iter().try_for_each(|o| opts.apply(o))?;
            Ok(elkfs_client::run(&opts)?)
        }
        Command::Bench(Bench::Engine(args)) => elkfs_bench::run_engine_bench(&args).map(|_| ()),
        Command::Bench(Bench::Cluster(args)) => elkfs_bench::run_cluster_bench(&args).map(|_| ()),
        Command::Bench(Bench::Meta(args)) => elkfs_bench::run_meta_bench(&args).map(|_| ()),
        Command::Bench(Bench::Mount(args)) => elkfs_bench::run_mount_bench(&args).map(|_| ()),
    }
}
