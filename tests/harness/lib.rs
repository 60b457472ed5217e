//! The cluster test harness for whole-cluster integration tests: a MooseFS
//! master, chunkservers (real `mfschunkserver` or `elkfs chunkserver`, same
//! config files) and an `mfsmount` client, all inside a private network
//! namespace, in a temp dir, torn down on drop, also when the test panics
//! (then the tail of every daemon log goes to stderr). A library so that
//! both the tests in `tests/` and `elkfs bench cluster` build the same
//! clusters:
//!
//! ```ignore
//! let mut c = elkfs_harness::Cluster::builder().real_chunkservers(3).mount(true).start();
//! c.mfs_setgoal(c.mountpoint(), 2);
//! let sha = elkfs_harness::data::write_pattern_file(&c.path("f"), 1 << 20, 1);
//! c.wait_for_goal(&c.path("f"), 2, std::time::Duration::from_secs(30));
//! ```
//!
//! Needs root and the MooseFS 3.0 tools; both are checked up front and a
//! missing one fails the test loudly. Every wait is bounded.

pub mod data;
mod failover;
pub mod moosefs;
pub mod mount;
pub mod netns;
pub mod posix;
pub mod proc;

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

pub use moosefs::{ChunkInfo, ChunkserverKind, CsStatus, MasterKind, MasterPorts};
pub use mount::{ClientKind, Mount};
pub use netns::Netns;
pub use proc::{require_root, require_tools, wait_until, Daemon};

use moosefs::ChunkserverFiles;
use proc::{run_in, run_ok, tail, tool_path, Spec, STOP_GRACE};

/// Bound for one MooseFS tool run (mfscli, mfsfileinfo, mfssetgoal).
const TOOL_LIMIT: Duration = Duration::from_secs(60);
/// Bound for a daemon to start listening.
pub(crate) const LISTEN_LIMIT: Duration = Duration::from_secs(30);
/// Bound for chunkservers to register with the master.
const REGISTER_LIMIT: Duration = Duration::from_secs(60);
/// Lines of each log printed when a test fails.
const TAIL_LINES: usize = 40;

/// Temp dirs are `DIR_PREFIX<pid>-XXXXXX` in `$ELKFS_TEST_TMPDIR` or `/tmp`.
const DIR_PREFIX: &str = "elkfs-cluster-";

/// Removes temp dirs of test processes that died before cleaning up (their
/// daemons died with them), unless something is still mounted inside.
fn sweep_stale_dirs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else { return };
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(DIR_PREFIX).and_then(|r| r.split('-').next()) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        let path = e.path();
        let busy = mounts.lines().any(|l| l.split(' ').nth(4).is_some_and(|m| Path::new(m).starts_with(&path)));
        if Path::new(&format!("/proc/{pid}")).exists() || busy {
            continue;
        }
        eprintln!("[harness] removing stale {} (its test process {pid} is gone)", path.display());
        let _ = std::fs::remove_dir_all(&path);
    }
}

/// What `Cluster::builder()` will start.
pub struct ClusterBuilder {
    master_kind: MasterKind,
    kinds: Vec<ChunkserverKind>,
    mount: bool,
    client: ClientKind,
    ports: MasterPorts,
    master_extra: Vec<(String, String)>,
    cs_extra: Vec<(String, String)>,
    mount_options: Vec<String>,
    distinct_addresses: bool,
    wait_registered: bool,
    temp_base: Option<PathBuf>,
}

impl ClusterBuilder {
    /// Which client mounts (default: the real `mfsmount`).
    pub fn client(mut self, kind: ClientKind) -> Self {
        self.client = kind;
        self
    }

    /// Which master to run (default: the real `mfsmaster`).
    pub fn master_kind(mut self, kind: MasterKind) -> Self {
        self.master_kind = kind;
        self
    }

    /// Adds `n` real MooseFS chunkservers.
    pub fn real_chunkservers(mut self, n: usize) -> Self {
        self.kinds.extend(std::iter::repeat_n(ChunkserverKind::Real, n));
        self
    }

    /// Adds `n` elkfs chunkservers (`elkfs chunkserver -c CFG`).
    pub fn elkfs_chunkservers(mut self, n: usize) -> Self {
        self.kinds.extend(std::iter::repeat_n(ChunkserverKind::Elkfs, n));
        self
    }

    /// Adds one chunkserver of `kind`.
    pub fn chunkserver(mut self, kind: ChunkserverKind) -> Self {
        self.kinds.push(kind);
        self
    }

    /// Mounts the file system with mfsmount (default: no).
    pub fn mount(mut self, on: bool) -> Self {
        self.mount = on;
        self
    }

    /// Master ports (default 9419/9420/9421; each cluster has its own
    /// namespace, so defaults never clash).
    pub fn master_ports(mut self, ports: MasterPorts) -> Self {
        self.ports = ports;
        self
    }

    /// Sets (or overrides) one `mfsmaster.cfg` option.
    pub fn master_config(mut self, key: &str, value: &str) -> Self {
        self.master_extra.push((key.into(), value.into()));
        self
    }

    /// Sets (or overrides) one `mfschunkserver.cfg` option on every server.
    pub fn chunkserver_config(mut self, key: &str, value: &str) -> Self {
        self.cs_extra.push((key.into(), value.into()));
        self
    }

    /// Adds one mfsmount `-o` option (e.g. `mfscachemode=DIRECT`).
    pub fn mount_option(mut self, opt: &str) -> Self {
        self.mount_options.push(opt.into());
        self
    }

    /// Gives each chunkserver its own address instead of sharing the
    /// master's (ports differ either way).
    pub fn distinct_addresses(mut self, on: bool) -> Self {
        self.distinct_addresses = on;
        self
    }

    /// Waits for every chunkserver to register before `start` returns
    /// (default: yes).
    pub fn wait_registered(mut self, on: bool) -> Self {
        self.wait_registered = on;
        self
    }

    /// Puts the cluster's temp dir (chunk folders included) in `base`
    /// instead of `$ELKFS_TEST_TMPDIR` or `/tmp` (the bench: its `--dir`).
    pub fn temp_dir_in(mut self, base: &Path) -> Self {
        self.temp_base = Some(base.to_path_buf());
        self
    }

    /// Starts everything; panics (cleaning up what started) on any failure.
    pub fn start(self) -> Cluster {
        require_root();
        let mut tools = vec!["ip", "nsenter", "timeout", "mfscli"];
        if self.master_kind == MasterKind::Real {
            tools.push("mfsmaster");
        }
        if self.kinds.contains(&ChunkserverKind::Real) {
            tools.push("mfschunkserver");
        }
        if self.mount {
            tools.extend(["fusermount3", "umount", "mfsfileinfo", "mfssetgoal"]);
            if self.client == ClientKind::Real {
                tools.push("mfsmount");
            }
        }
        require_tools(&tools);
        let base = self.temp_base.clone().unwrap_or_else(|| {
            std::env::var_os("ELKFS_TEST_TMPDIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir)
        });
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(|| sweep_stale_dirs(&base));
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("create a temp dir in {}: {e}", base.display()));
        let netns = Netns::new();
        // From here on a panic drops the partly built cluster, which cleans up.
        let mut c = Cluster {
            started: Instant::now(),
            master_kind: self.master_kind,
            master: None,
            master_ip: None,
            metaloggers: Vec::new(),
            ports: self.ports,
            chunkservers: Vec::new(),
            mount: None,
            client: self.client,
            mount_options: self.mount_options,
            cs_extra: self.cs_extra,
            distinct_addresses: self.distinct_addresses,
            netns,
            dir: Some(dir),
        };
        c.note(&format!("netns {} ({}), dir {}", c.netns.name(), c.addr(), c.dir().display()));
        let master_dir = c.dir().join("master");
        let mut extra = Vec::new();
        if self.master_kind == MasterKind::Elkfs {
            // The real master raises the loop time to at least 60 s; elkfs
            // takes what it is given, and tests want repairs in seconds.
            extra.push(("CHUNKS_LOOP_MIN_TIME".to_string(), "1".to_string()));
        }
        extra.extend(self.master_extra.iter().cloned());
        let cfg = moosefs::write_master(&master_dir, c.addr(), c.ports, &extra);
        let (program, args) = master_command(self.master_kind, &cfg);
        let spec = c.spec("master", program, args);
        let master = c.master.insert(Daemon::spawn(spec));
        master.wait_listening(self.ports.chunkserver, LISTEN_LIMIT);
        master.wait_listening(self.ports.client, LISTEN_LIMIT);
        c.note("master listening");
        for kind in self.kinds {
            c.add_chunkserver_unregistered(kind);
        }
        if self.wait_registered {
            let want: Vec<String> = c.chunkservers.iter().map(Chunkserver::addr).collect();
            c.wait_registered(&want, REGISTER_LIMIT);
            c.note(&format!("{} chunkservers registered", want.len()));
        }
        if self.mount {
            c.mount_now();
            c.note("mounted");
        }
        c
    }
}

/// One chunkserver slot: its files, address and process.
pub struct Chunkserver {
    kind: ChunkserverKind,
    index: usize,
    ip: Ipv4Addr,
    port: u16,
    files: ChunkserverFiles,
    daemon: Daemon,
}

impl Chunkserver {
    /// `ip:port` as the master and `mfsfileinfo` name it.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn kind(&self) -> ChunkserverKind {
        self.kind
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its `mfschunkserver.cfg`.
    pub fn cfg(&self) -> &Path {
        &self.files.cfg
    }

    /// Its chunk folder (the one line of its `mfshdd.cfg`).
    pub fn hdd(&self) -> &Path {
        &self.files.hdd
    }

    /// The process (signals, restart, log).
    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// SIGKILL (fault injection).
    pub fn kill(&mut self) {
        self.daemon.kill();
    }

    /// SIGTERM, bounded, then SIGKILL. Note: the real master puts a
    /// gracefully stopped chunkserver into temporary maintenance, which
    /// delays re-replication of its chunks (CS_TEMP_MAINTENANCE_MODE_TIMEOUT).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// Starts it again with the same files and waits until it listens.
    pub fn start(&mut self) {
        self.daemon.start();
        self.daemon.wait_listening(self.port, LISTEN_LIMIT);
    }

    /// Stops it (SIGTERM, bounded) and starts `kind` in its place on the
    /// same config files, folders and port (a drop-in swap); waits until it
    /// listens. The log goes on in the same file.
    pub fn restart_as(&mut self, kind: ChunkserverKind) {
        self.daemon.stop();
        let (program, args) = chunkserver_command(kind, &self.files.cfg);
        let spec = self.daemon.spec_mut();
        spec.program = program;
        spec.args = args;
        self.kind = kind;
        self.start();
    }

    /// Every chunk file on its disk.
    pub fn all_chunk_files(&self) -> Vec<PathBuf> {
        moosefs::chunk_files_in(&self.files.hdd)
    }

    /// The files of chunk `id` on its disk (any version).
    pub fn chunk_files(&self, id: u64) -> Vec<PathBuf> {
        let prefix = format!("chunk_{id:016X}_");
        self.all_chunk_files()
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&prefix)))
            .collect()
    }
}

/// A running cluster. Drop unmounts, stops every daemon (SIGTERM, bounded,
/// then SIGKILL), deletes the namespace and the temp dir.
pub struct Cluster {
    started: Instant,
    master_kind: MasterKind,
    master: Option<Daemon>,
    master_ip: Option<Ipv4Addr>,
    metaloggers: Vec<Daemon>,
    ports: MasterPorts,
    chunkservers: Vec<Chunkserver>,
    mount: Option<Mount>,
    client: ClientKind,
    mount_options: Vec<String>,
    cs_extra: Vec<(String, String)>,
    distinct_addresses: bool,
    // Dropped after the daemons, before the temp dir.
    netns: Netns,
    dir: Option<tempfile::TempDir>,
}

impl Cluster {
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder {
            master_kind: MasterKind::Real,
            kinds: Vec::new(),
            mount: false,
            client: ClientKind::Real,
            ports: MasterPorts::default(),
            master_extra: Vec::new(),
            cs_extra: Vec::new(),
            mount_options: Vec::new(),
            distinct_addresses: false,
            wait_registered: true,
            temp_base: None,
        }
    }

    fn note(&self, what: &str) {
        eprintln!("[harness +{:.1}s] {what}", self.started.elapsed().as_secs_f64());
    }

    fn spec(&self, name: &str, program: PathBuf, args: Vec<std::ffi::OsString>) -> Spec {
        Spec { name: name.into(), program, args, log: self.dir().join(format!("{name}.log")), netns: self.netns.path() }
    }

    /// The master's address (the namespace's first address, until
    /// [`replace_master`](Self::replace_master) moves it).
    pub fn addr(&self) -> Ipv4Addr {
        self.master_ip.unwrap_or_else(|| self.netns.addr())
    }

    /// Master ports.
    pub fn ports(&self) -> MasterPorts {
        self.ports
    }

    /// `ip:port` of the master's client port.
    pub fn master_addr(&self) -> String {
        format!("{}:{}", self.addr(), self.ports.client)
    }

    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The cluster's temp dir (configs, logs, data, mount point).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("the temp dir lives as long as the cluster").path()
    }

    /// The master process.
    pub fn master(&mut self) -> &mut Daemon {
        self.master.as_mut().expect("the master was started")
    }

    pub fn master_kind(&self) -> MasterKind {
        self.master_kind
    }

    /// The master's data folder (`DATA_PATH`).
    pub fn master_data(&self) -> PathBuf {
        self.dir().join("master").join("data")
    }

    /// Stops the master (SIGTERM) and starts it again; for the real one
    /// `-a` lets it recover from its changelogs after a crash
    /// (`master().kill()` first); elkfs always does.
    pub fn restart_master(&mut self) {
        let ports = self.ports;
        let kind = self.master_kind;
        let master = self.master();
        master.stop();
        let args = &mut master.spec_mut().args;
        if kind == MasterKind::Real && !args.iter().any(|a| a == "-a") {
            args.insert(0, "-a".into());
        }
        master.start();
        master.wait_listening(ports.chunkserver, LISTEN_LIMIT);
        master.wait_listening(ports.client, LISTEN_LIMIT);
    }

    pub fn chunkservers(&self) -> &[Chunkserver] {
        &self.chunkservers
    }

    pub fn chunkserver(&mut self, i: usize) -> &mut Chunkserver {
        let n = self.chunkservers.len();
        self.chunkservers.get_mut(i).unwrap_or_else(|| panic!("no chunkserver {i} (the cluster has {n})"))
    }

    /// The chunkserver serving `ip:port`, if any.
    pub fn chunkserver_at(&self, addr: &str) -> Option<&Chunkserver> {
        self.chunkservers.iter().find(|c| c.addr() == addr)
    }

    /// Starts one more chunkserver, waits until it registers, returns its index.
    pub fn add_chunkserver(&mut self, kind: ChunkserverKind) -> usize {
        let i = self.add_chunkserver_unregistered(kind);
        let addr = self.chunkservers[i].addr();
        self.wait_registered(&[addr], REGISTER_LIMIT);
        i
    }

    fn add_chunkserver_unregistered(&mut self, kind: ChunkserverKind) -> usize {
        let index = self.chunkservers.len();
        let port = moosefs::CS_BASE_PORT + u16::try_from(index).expect("fewer than 65k chunkservers");
        let ip = if self.distinct_addresses { self.netns.add_address() } else { self.addr() };
        let dir = self.dir().join(format!("cs{index}"));
        let files = moosefs::write_chunkserver(&dir, ip, port, self.addr(), self.ports.chunkserver, &self.cs_extra);
        let (program, args) = chunkserver_command(kind, &files.cfg);
        let mut daemon = Daemon::spawn(self.spec(&format!("cs{index}"), program, args));
        daemon.wait_listening(port, LISTEN_LIMIT);
        self.chunkservers.push(Chunkserver { kind, index, ip, port, files, daemon });
        self.note(&format!("cs{index} ({kind:?}) listening on {ip}:{port}"));
        index
    }

    /// Runs a MooseFS tool (`mfscli`, `mfsfileinfo`, ...) inside the
    /// namespace, bounded; returns its output whatever its exit status.
    pub fn tool(&self, prog: &str, args: &[&OsStr]) -> Output {
        run_in(Some(&self.netns.path()), TOOL_LIMIT, prog, args)
    }

    /// Chunkservers the master lists as connected (`mfscli -SCS`).
    pub fn connected_chunkservers(&self) -> Vec<CsStatus> {
        let (host, port) = (self.addr().to_string(), self.ports.client.to_string());
        let args: Vec<&OsStr> = ["-H", &host, "-P", &port, "-SCS", "-p", "-n"].map(OsStr::new).to_vec();
        moosefs::parse_cs_list(&run_ok(Some(&self.netns.path()), TOOL_LIMIT, "mfscli", &args))
    }

    /// Waits until every chunkserver of `addrs` is connected with its disk
    /// space known to the master.
    pub fn wait_registered(&self, addrs: &[String], limit: Duration) -> Vec<CsStatus> {
        wait_until(&format!("chunkservers {addrs:?} to register"), limit, || {
            let seen = self.connected_chunkservers();
            let ready = addrs.iter().all(|a| seen.iter().any(|s| &s.addr == a && s.total > 0));
            if ready {
                Ok(seen)
            } else {
                Err(format!("{seen:?}"))
            }
        })
    }

    /// Waits until at least `n` chunkservers are registered with space.
    pub fn wait_chunkservers_registered(&self, n: usize, limit: Duration) -> Vec<CsStatus> {
        wait_until(&format!("{n} chunkservers to register"), limit, || {
            let seen = self.connected_chunkservers();
            let ready = seen.iter().filter(|s| s.total > 0).count();
            if ready >= n {
                Ok(seen)
            } else {
                Err(format!("{seen:?}"))
            }
        })
    }

    fn mount_now(&mut self) {
        let mnt = self.dir().join("mnt");
        let log = self.dir().join("mount.log");
        let m = Mount::start_client(
            self.client,
            &self.netns.path(),
            &self.addr().to_string(),
            self.ports.client,
            &mnt,
            &self.mount_options,
            &log,
        );
        self.mount = Some(m);
    }

    /// Another mount of the file system with `client`, at `DIR/name` (log
    /// `DIR/name.log`), unmounted when dropped.
    pub fn extra_mount(&self, client: ClientKind, name: &str, options: &[String]) -> Mount {
        Mount::start_client(
            client,
            &self.netns.path(),
            &self.addr().to_string(),
            self.ports.client,
            &self.dir().join(name),
            options,
            &self.dir().join(format!("{name}.log")),
        )
    }

    pub fn has_mount(&self) -> bool {
        self.mount.is_some()
    }

    /// The mount point. Panics when the cluster has no mount.
    pub fn mountpoint(&self) -> &Path {
        self.mount.as_ref().expect("the cluster was built with .mount(true)").path()
    }

    /// `mountpoint/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mountpoint().join(rel)
    }

    /// The client process, when mounted.
    pub fn mount_daemon(&mut self) -> Option<&mut Daemon> {
        self.mount.as_mut().map(Mount::daemon)
    }

    /// Unmounts and mounts again: a fresh client with empty caches.
    pub fn remount(&mut self) {
        if let Some(mut m) = self.mount.take() {
            assert!(m.unmount(), "could not unmount {}", m.path().display());
        }
        self.mount_now();
    }

    /// `mfssetgoal -r GOAL PATH`.
    pub fn mfs_setgoal(&self, path: &Path, goal: u8) {
        let goal = goal.to_string();
        run_ok(
            Some(&self.netns.path()),
            TOOL_LIMIT,
            "mfssetgoal",
            &[OsStr::new("-r"), OsStr::new(&goal), path.as_os_str()],
        );
    }

    /// The chunks of a file and where their copies are (`mfsfileinfo`).
    pub fn mfs_fileinfo(&self, path: &Path) -> Vec<ChunkInfo> {
        let out = run_ok(Some(&self.netns.path()), TOOL_LIMIT, "mfsfileinfo", &[path.as_os_str()]);
        moosefs::parse_fileinfo(&out).unwrap_or_else(|e| panic!("mfsfileinfo {}: {e}\n{out}", path.display()))
    }

    /// Polls `mfsfileinfo` until `ready` holds for the file's chunks.
    pub fn wait_fileinfo(
        &self,
        path: &Path,
        what: &str,
        limit: Duration,
        ready: impl Fn(&[ChunkInfo]) -> bool,
    ) -> Vec<ChunkInfo> {
        wait_until(&format!("{what} for {}", path.display()), limit, || {
            let chunks = self.mfs_fileinfo(path);
            if ready(&chunks) {
                Ok(chunks)
            } else {
                Err(format!("{chunks:?}"))
            }
        })
    }

    /// Waits until every chunk of the file has exactly `goal` valid copies
    /// on distinct chunkservers.
    pub fn wait_for_goal(&self, path: &Path, goal: usize, limit: Duration) -> Vec<ChunkInfo> {
        self.wait_fileinfo(path, &format!("{goal} copies of every chunk"), limit, |chunks| {
            chunks.iter().all(|c| c.has_distinct_copies(goal))
        })
    }

    /// Drops the machine's page cache (see `data::drop_caches`).
    pub fn drop_caches(&self) {
        data::drop_caches();
    }

    /// Every log of the cluster (master, chunkservers, mount).
    pub fn logs(&self) -> Vec<PathBuf> {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.dir())
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension() == Some(OsStr::new("log"))).collect())
            .unwrap_or_default();
        logs.sort();
        logs
    }

    /// Prints the last `n` lines of every log to stderr.
    pub fn print_logs(&self, n: usize) {
        for log in self.logs() {
            eprintln!("---- {} (last {n} lines)\n{}", log.display(), tail(&log, n));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if panicking {
            self.print_logs(TAIL_LINES);
        }
        let mut keep = panicking && std::env::var_os("ELKFS_TEST_KEEP").is_some();
        if let Some(mut m) = self.mount.take() {
            if !m.unmount() {
                keep = true;
            }
        }
        // Every daemon gets SIGTERM at once, then each a bounded wait.
        for cs in &mut self.chunkservers {
            cs.daemon.signal(libc::SIGTERM);
        }
        for ml in &mut self.metaloggers {
            ml.signal(libc::SIGTERM);
        }
        if let Some(m) = self.master.as_mut() {
            m.signal(libc::SIGTERM);
        }
        for cs in &mut self.chunkservers {
            cs.daemon.wait_exit(STOP_GRACE);
        }
        for ml in &mut self.metaloggers {
            ml.wait_exit(STOP_GRACE);
        }
        if let Some(m) = self.master.as_mut() {
            m.wait_exit(STOP_GRACE);
        }
        self.note("stopped");
        if keep {
            if let Some(dir) = self.dir.take() {
                eprintln!("[harness] keeping {}", dir.keep().display());
            }
        }
    }
}

/// The program and arguments that run a master of `kind` on `cfg`.
fn master_command(kind: MasterKind, cfg: &Path) -> (PathBuf, Vec<std::ffi::OsString>) {
    let cfg = cfg.as_os_str().to_os_string();
    match kind {
        MasterKind::Real => (tool_path("mfsmaster"), vec!["-f".into(), "-c".into(), cfg, "start".into()]),
        MasterKind::Elkfs => (elkfs_binary(), vec!["master".into(), "-c".into(), cfg]),
    }
}

/// The program and arguments that run a chunkserver of `kind` on `cfg`.
fn chunkserver_command(kind: ChunkserverKind, cfg: &Path) -> (PathBuf, Vec<std::ffi::OsString>) {
    let cfg = cfg.as_os_str().to_os_string();
    match kind {
        ChunkserverKind::Real => (tool_path("mfschunkserver"), vec!["-f".into(), "-c".into(), cfg, "start".into()]),
        ChunkserverKind::Elkfs => (elkfs_binary(), vec!["chunkserver".into(), "-c".into(), cfg]),
    }
}

/// The `elkfs` binary to start: `ELKFS_BIN` if set, else the `elkfs` next
/// to the running executable (the bench is that binary; test executables
/// live one folder below it, in `deps/`).
pub fn elkfs_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ELKFS_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the running executable has a path");
    let here = exe.parent().expect("an executable lives in a folder");
    for dir in [Some(here), here.parent()].into_iter().flatten() {
        let candidate = dir.join("elkfs");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("no elkfs binary next to {}: build it (cargo build) or set ELKFS_BIN", exe.display());
}
