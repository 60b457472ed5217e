//! Where a local cluster keeps everything under its folder, and the
//! MooseFS-syntax configuration files of its daemons.
//!
//! ```text
//! DIR/master/          mfsmaster.cfg, mfsexports.cfg, data/ (metadata, changelogs)
//! DIR/metalogger/      mfsmetalogger.cfg, data/ (metadata copies)
//! DIR/chunkserver-K/   mfschunkserver.cfg, mfshdd.cfg, data/, hdd/ (chunk files)
//! DIR/logs/            one log per process
//! DIR/mnt/             the mount point (unless --mount says otherwise)
//! ```
//!
//! Configuration files are rewritten on every start (ports may differ from
//! the last run); data folders are only ever created, never emptied, so a
//! second start on the same folder brings the file system back as it was.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::ports::Ports;

/// Space each chunkserver leaves free on its disk: MooseFS's 4 GiB default
/// would mark a laptop's nearly full disk as unusable.
pub const LEAVE_SPACE: &str = "256MiB";

/// Held (flock) by the running `elkfs local`; holds its pid.
const LOCK_FILE: &str = ".elkfs-local.lock";

/// Files of one chunkserver.
#[derive(Clone, Debug)]
pub struct ChunkserverFiles {
    pub cfg: PathBuf,
    /// The chunk folder listed in its `mfshdd.cfg`.
    pub hdd: PathBuf,
    pub log: PathBuf,
}

/// Every path of a local cluster under its folder.
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
    pub master_cfg: PathBuf,
    pub master_data: PathBuf,
    pub master_log: PathBuf,
    pub metalogger_cfg: PathBuf,
    pub metalogger_data: PathBuf,
    pub metalogger_log: PathBuf,
    pub chunkservers: Vec<ChunkserverFiles>,
    pub logs: PathBuf,
    pub mount_log: PathBuf,
    pub mountpoint: PathBuf,
}

impl Layout {
    /// Paths for `chunkservers` chunkservers under `dir` (absolute: the
    /// daemons and the mount run with other working folders in mind).
    pub fn new(dir: &Path, chunkservers: usize, mountpoint: Option<&Path>) -> Layout {
        assert!(dir.is_absolute(), "the cluster folder must be absolute: {}", dir.display());
        let logs = dir.join("logs");
        Layout {
            dir: dir.to_path_buf(),
            master_cfg: dir.join("master/mfsmaster.cfg"),
            master_data: dir.join("master/data"),
            master_log: logs.join("master.log"),
            metalogger_cfg: dir.join("metalogger/mfsmetalogger.cfg"),
            metalogger_data: dir.join("metalogger/data"),
            metalogger_log: logs.join("metalogger.log"),
            chunkservers: (1..=chunkservers)
                .map(|k| {
                    let cs = dir.join(format!("chunkserver-{k}"));
                    ChunkserverFiles {
                        cfg: cs.join("mfschunkserver.cfg"),
                        hdd: cs.join("hdd"),
                        log: logs.join(format!("chunkserver-{k}.log")),
                    }
                })
                .collect(),
            mount_log: logs.join("mount.log"),
            logs,
            mountpoint: mountpoint.map_or_else(|| dir.join("mnt"), Path::to_path_buf),
        }
    }

    /// Takes the folder for this process: a second `elkfs local` on the
    /// same folder would rewrite the configuration files under a running
    /// cluster. The lock lasts as long as the returned file is open, and
    /// the kernel drops it when the process dies however it dies.
    pub fn lock(&self) -> io::Result<File> {
        let path = self.dir.join(LOCK_FILE);
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            let who = holder.trim();
            let who = if who.is_empty() { String::new() } else { format!(" (pid {who})") };
            return Err(io::Error::new(
                e.kind(),
                format!("another elkfs local{who} runs on {} ({e})", self.dir.display()),
            ));
        }
        f.set_len(0)?;
        writeln!(f, "{}", std::process::id())?;
        Ok(f)
    }

    /// Creates the folders (keeping what they hold) and writes every
    /// configuration file for `ports`.
    pub fn write(&self, ports: &Ports) -> io::Result<()> {
        assert_eq!(ports.chunkservers.len(), self.chunkservers.len(), "one port per chunkserver");
        for d in [&self.logs, &self.master_data, &self.metalogger_data] {
            mkdir(d)?;
        }
        let master_dir = parent(&self.master_cfg);
        let exports = master_dir.join("mfsexports.cfg");
        // Everyone on this machine may mount everything, root stays root:
        // the cluster is a private one on loopback.
        write(&exports, "* / rw,alldirs,admin,maproot=0:0\n* . rw\n")?;
        write(&self.master_cfg, &master_cfg(&self.master_data, &exports, ports))?;
        write(&self.metalogger_cfg, &metalogger_cfg(&self.metalogger_data, ports.metalogger))?;
        for (cs, &port) in self.chunkservers.iter().zip(&ports.chunkservers) {
            let dir = parent(&cs.cfg);
            let data = dir.join("data");
            mkdir(&data)?;
            mkdir(&cs.hdd)?;
            let hdd_cfg = dir.join("mfshdd.cfg");
            write(&hdd_cfg, &format!("{}\n", cs.hdd.display()))?;
            write(&cs.cfg, &chunkserver_cfg(&data, &hdd_cfg, port, ports.chunkserver))?;
        }
        Ok(())
    }
}

fn parent(p: &Path) -> &Path {
    p.parent().expect("config paths are built as DIR/daemon/file")
}

fn mkdir(d: &Path) -> io::Result<()> {
    std::fs::create_dir_all(d).map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", d.display())))
}

fn write(path: &Path, text: &str) -> io::Result<()> {
    mkdir(parent(path))?;
    std::fs::write(path, text).map_err(|e| io::Error::new(e.kind(), format!("write {}: {e}", path.display())))
}

/// `KEY = VALUE` lines under a header saying who wrote them.
fn render(lines: &[(&str, String)]) -> String {
    let mut out = String::from("# written by `elkfs local` on every start; edits are overwritten\n");
    for (k, v) in lines {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{k} = {v}");
    }
    out
}

fn master_cfg(data: &Path, exports: &Path, ports: &Ports) -> String {
    render(&[
        ("DATA_PATH", data.display().to_string()),
        ("EXPORTS_FILENAME", exports.display().to_string()),
        ("MATOML_LISTEN_HOST", "127.0.0.1".into()),
        ("MATOML_LISTEN_PORT", ports.metalogger.to_string()),
        ("MATOCS_LISTEN_HOST", "127.0.0.1".into()),
        ("MATOCS_LISTEN_PORT", ports.chunkserver.to_string()),
        ("MATOCL_LISTEN_HOST", "127.0.0.1".into()),
        ("MATOCL_LISTEN_PORT", ports.client.to_string()),
        // Every chunkserver is on 127.0.0.1; MooseFS would refuse them.
        ("CHUNKSERVERS_ON_LOOPBACK", "1".into()),
    ])
}

fn metalogger_cfg(data: &Path, master_port: u16) -> String {
    render(&[
        ("DATA_PATH", data.display().to_string()),
        ("MASTER_HOST", "127.0.0.1".into()),
        ("MASTER_PORT", master_port.to_string()),
        ("MASTER_RECONNECTION_DELAY", "1".into()),
    ])
}

fn chunkserver_cfg(data: &Path, hdd_cfg: &Path, port: u16, master_port: u16) -> String {
    render(&[
        ("DATA_PATH", data.display().to_string()),
        ("HDD_CONF_FILENAME", hdd_cfg.display().to_string()),
        ("HDD_LEAVE_SPACE_DEFAULT", LEAVE_SPACE.into()),
        ("MASTER_HOST", "127.0.0.1".into()),
        ("MASTER_PORT", master_port.to_string()),
        ("BIND_HOST", "127.0.0.1".into()),
        ("CSSERV_LISTEN_HOST", "127.0.0.1".into()),
        ("CSSERV_LISTEN_PORT", port.to_string()),
        ("MASTER_RECONNECTION_DELAY", "1".into()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> Ports {
        Ports { metalogger: 19419, chunkserver: 19420, client: 19421, chunkservers: vec![19422, 19423] }
    }

    #[test]
    fn written_configs_parse_as_the_daemons_read_them() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::new(tmp.path(), 2, None);
        layout.write(&ports()).expect("write");
        let m = elkfs_master::config::MasterConfig::load(&layout.master_cfg).expect("master cfg");
        assert_eq!((m.ml_listen.1, m.cs_listen.1, m.cl_listen.1), (19419, 19420, 19421));
        assert_eq!(m.data_path, layout.master_data);
        let ml = elkfs_master::metalogger::MlConfig::load(&layout.metalogger_cfg).expect("metalogger cfg");
        assert_eq!(ml.master_port, 19419);
        let cs = elkfs_chunkserver::config::CsConfig::load(&layout.chunkservers[1].cfg).expect("cs cfg");
        assert_eq!(cs.master.port, 19420);
        assert_eq!(cs.clients.listen_port, 19423);
        assert_eq!(layout.mountpoint, tmp.path().join("mnt"));
    }

    #[test]
    fn a_second_write_keeps_the_data() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::new(tmp.path(), 1, Some(Path::new("/somewhere/else")));
        layout.write(&ports_one()).expect("first write");
        let kept = layout.chunkservers[0].hdd.join("00");
        std::fs::create_dir_all(&kept).expect("mkdir");
        std::fs::write(layout.master_data.join("metadata.mfs"), b"x").expect("write");
        layout.write(&ports_one()).expect("second write");
        assert!(kept.is_dir());
        assert_eq!(std::fs::read(layout.master_data.join("metadata.mfs")).expect("read"), b"x");
        assert_eq!(layout.mountpoint, Path::new("/somewhere/else"));
    }

    #[test]
    fn a_second_lock_on_the_folder_fails_until_the_first_is_gone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = Layout::new(tmp.path(), 1, None);
        let first = layout.lock().expect("first lock");
        let err = layout.lock().expect_err("second lock");
        assert!(err.to_string().contains(&format!("(pid {})", std::process::id())), "{err}");
        drop(first);
        layout.lock().expect("lock after the first is gone");
    }

    fn ports_one() -> Ports {
        Ports { chunkservers: vec![19422], ..ports() }
    }
}
