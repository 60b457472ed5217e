//! `elkfs local`: a whole cluster on loopback in one command — a master, a
//! metalogger and N chunkservers as child processes of this binary, plus a
//! FUSE mount — supervised until Ctrl-C, then unmounted and stopped in
//! order.
//!
//! It lives in the root package, not in `master/` or `chunkserver/`: it is
//! the one place that knows about every daemon, and it drives them only
//! through their command lines and configuration files, as a user would.
//!
//! Start-up, each step bounded: configuration files under DIR, the master
//! (until its client port answers), the metalogger and chunkservers (until
//! the master lists every one), the mount (until its root answers), then a
//! summary and the line [`READY`]. A process that dies at any point is
//! named with the end of its log, the rest are stopped, and the command
//! fails.

mod child;
mod layout;
mod mount;
mod ports;
mod signals;
mod summary;
mod supervisor;

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use elkfs_master::admin_cli;

use child::Child;
use layout::Layout;
use supervisor::{Cluster, Interrupted};

/// Printed on stdout once the cluster is up and mounted; scripts and the
/// test wait for it.
pub const READY: &str = "elkfs local: ready";

/// Bound for the master to answer on its client port.
const MASTER_LIMIT: Duration = Duration::from_secs(60);
/// Bound for every chunkserver and the metalogger to register.
const REGISTER_LIMIT: Duration = Duration::from_secs(60);
/// Bound for the mount to answer.
const MOUNT_LIMIT: Duration = Duration::from_secs(30);

/// Options of `elkfs local`.
#[derive(clap::Args, Debug)]
pub struct LocalArgs {
    /// Folder for configuration, metadata, chunks and logs; kept between
    /// runs, so the file system comes back as it was.
    #[arg(long, default_value = "./elkfs-data")]
    dir: PathBuf,
    /// Number of chunkservers.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    chunkservers: u16,
    /// Where to mount the file system (default: DIR/mnt).
    #[arg(long, conflicts_with = "no_mount")]
    mount: Option<PathBuf>,
    /// Run the cluster without mounting it.
    #[arg(long)]
    no_mount: bool,
    /// First port to try: the master takes this one and the next two, the
    /// chunkservers the following ones; when one is taken, free ports are
    /// picked instead.
    #[arg(long, default_value_t = ports::DEFAULT_BASE)]
    port_base: u16,
}

/// Runs the cluster until SIGINT, SIGTERM or SIGHUP.
pub fn run(args: &LocalArgs) -> anyhow::Result<()> {
    signals::install().context("install the Ctrl-C handler")?;
    let exe = std::env::current_exe().context("find this program's path")?;
    let client = if args.no_mount {
        None
    } else {
        let c = mount::choose(&exe).map_err(|why| {
            anyhow::anyhow!("cannot mount the file system: {why}\n(or run without a mount: --no-mount)")
        })?;
        Some(c)
    };
    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    let dir = args.dir.canonicalize().with_context(|| format!("resolve {}", args.dir.display()))?;
    let mountpoint = args.mount.as_deref().map(std::path::absolute).transpose().context("resolve --mount")?;
    let layout = Layout::new(&dir, usize::from(args.chunkservers), mountpoint.as_deref());
    let _lock = layout.lock()?;
    let (ports, fallback) = ports::choose(args.port_base, layout.chunkservers.len()).context("choose ports")?;
    if let Some(why) = fallback {
        say(format_args!("{why}; using free ports instead"));
    }
    layout.write(&ports)?;
    let mut cluster = Cluster::new(layout);
    match start_and_supervise(&mut cluster, &exe, &ports, client.as_ref()) {
        Ok(signal) => {
            say(format_args!("{signal} received, stopping"));
            for line in cluster.stop() {
                say(format_args!("{line}"));
            }
            say(format_args!("stopped; the data stays in {}", dir.display()));
            Ok(())
        }
        Err(e) if e.is::<Interrupted>() => {
            say(format_args!("{e} while starting, stopping"));
            for line in cluster.stop() {
                say(format_args!("{line}"));
            }
            Ok(())
        }
        // Dropping the cluster stops what runs and reports it on stderr.
        Err(e) => Err(e),
    }
}

fn start_and_supervise(
    cluster: &mut Cluster,
    exe: &Path,
    ports: &ports::Ports,
    client: Option<&mount::Client>,
) -> anyhow::Result<&'static str> {
    let l = cluster.layout.clone();
    cluster.master.push(daemon(exe, "master", "master", &l.master_cfg, &l.master_log)?);
    let port = ports.client;
    cluster.wait_for("the master answers", MASTER_LIMIT, || {
        admin_cli::fetch("127.0.0.1", port).map(|_| ()).map_err(|e| e.to_string())
    })?;
    cluster.metalogger.push(daemon(exe, "metalogger", "metalogger", &l.metalogger_cfg, &l.metalogger_log)?);
    for (k, cs) in l.chunkservers.iter().enumerate() {
        let name = format!("chunkserver-{}", k + 1);
        cluster.chunkservers.push(daemon(exe, &name, "chunkserver", &cs.cfg, &cs.log)?);
    }
    let n = l.chunkservers.len();
    cluster.wait_for("every chunkserver and the metalogger register", REGISTER_LIMIT, || {
        let r = admin_cli::fetch("127.0.0.1", port).map_err(|e| e.to_string())?;
        let up = r.chunkservers.iter().filter(|c| c.connected).count();
        match (up, r.metaloggers.len(), r.master.avail_space_bytes) {
            (up, _, _) if up < n => Err(format!("{up} of {n} chunkservers registered")),
            (_, 0, _) => Err("the metalogger has not connected".into()),
            (_, _, 0) => Err(format!(
                "the chunkservers report no free space (each keeps {} free on its disk)",
                layout::LEAVE_SPACE
            )),
            _ => Ok(()),
        }
    })?;
    if let Some(client) = client {
        let child = mount::start(client, &l.mountpoint, port, &l.mount_log)
            .with_context(|| format!("mount with {}", client.describe()))?;
        cluster.mount.push(child);
        let mnt = l.mountpoint.clone();
        cluster.wait_for("the mount answers", MOUNT_LIMIT, || mount::answers(&mnt))?;
    }
    let report = admin_cli::fetch("127.0.0.1", port).context("ask the master for its state")?;
    let mut out = std::io::stdout().lock();
    out.write_all(summary::render(cluster, ports, client, &report).as_bytes())?;
    writeln!(out, "{READY}; Ctrl-C to stop")?;
    out.flush()?;
    drop(out);
    cluster.supervise()
}

/// One line of progress on stdout. A closed stdout (the terminal went
/// away) must not stop the orderly shutdown, so write errors are ignored.
fn say(text: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stdout(), "elkfs local: {text}");
}

/// `elkfs SUBCOMMAND -c CFG` as a child logging to `log`.
fn daemon(exe: &Path, name: &str, subcommand: &str, cfg: &Path, log: &Path) -> anyhow::Result<Child> {
    let args = [OsStr::new(subcommand), OsStr::new("-c"), cfg.as_os_str()];
    Child::spawn(name, exe, &args, log).with_context(|| format!("start the {name}"))
}
