//! MooseFS 3.0 configuration files for the master and the chunkservers
//! (the same `mfschunkserver.cfg` for the real one and for elkfs), and
//! parsers for what the MooseFS tools print: `mfscli -SCS` and
//! `mfsfileinfo`.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Which chunkserver program serves a slot of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkserverKind {
    /// MooseFS 3.0's `mfschunkserver -f -c CFG start`.
    Real,
    /// `elkfs chunkserver -c CFG` (the binary of this package).
    Elkfs,
}

/// Which master program runs the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MasterKind {
    /// MooseFS 3.0's `mfsmaster -f -c CFG start`.
    Real,
    /// `elkfs master -c CFG` (the same config file).
    Elkfs,
}

/// Ports of the master; each cluster has its own namespace, so the MooseFS
/// defaults never clash between clusters.
#[derive(Clone, Copy, Debug)]
pub struct MasterPorts {
    /// Metaloggers (MATOML).
    pub metalogger: u16,
    /// Chunkservers (MATOCS).
    pub chunkserver: u16,
    /// Clients and tools (MATOCL).
    pub client: u16,
}

impl Default for MasterPorts {
    fn default() -> Self {
        MasterPorts { metalogger: 9419, chunkserver: 9420, client: 9421 }
    }
}

/// First chunkserver port; chunkserver `i` listens on `CS_BASE_PORT + i`.
pub const CS_BASE_PORT: u16 = 9422;

/// Writes `KEY = VALUE` lines; later keys of `extra` replace earlier ones.
fn render(lines: &[(&str, String)], extra: &[(String, String)]) -> String {
    let mut out = String::from("# written by the elkfs test harness\n");
    for (k, v) in lines {
        if !extra.iter().any(|(ek, _)| ek == k) {
            writeln!(out, "{k} = {v}").expect("write to a String");
        }
    }
    for (k, v) in extra {
        writeln!(out, "{k} = {v}").expect("write to a String");
    }
    out
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn mkdir(path: &Path) {
    std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
}

/// Lays out a fresh master under `dir` (data folder with a new empty
/// metadata file, exports, topology, config) and returns the config path.
pub fn write_master(dir: &Path, addr: Ipv4Addr, ports: MasterPorts, extra: &[(String, String)]) -> PathBuf {
    let data = dir.join("data");
    mkdir(&data);
    // A master starts from an empty file system only when told so.
    write(&data.join("metadata.mfs"), "MFSM NEW");
    let exports = dir.join("mfsexports.cfg");
    write(&exports, "* / rw,alldirs,admin,maproot=0:0\n* . rw\n");
    let topology = dir.join("mfstopology.cfg");
    write(&topology, "");
    let cfg = dir.join("mfsmaster.cfg");
    let lines = [
        ("WORKING_USER", "root".to_string()),
        ("WORKING_GROUP", "root".to_string()),
        ("DATA_PATH", data.display().to_string()),
        ("EXPORTS_FILENAME", exports.display().to_string()),
        ("TOPOLOGY_FILENAME", topology.display().to_string()),
        ("MATOML_LISTEN_HOST", addr.to_string()),
        ("MATOML_LISTEN_PORT", ports.metalogger.to_string()),
        ("MATOCS_LISTEN_HOST", addr.to_string()),
        ("MATOCS_LISTEN_PORT", ports.chunkserver.to_string()),
        ("MATOCL_LISTEN_HOST", addr.to_string()),
        ("MATOCL_LISTEN_PORT", ports.client.to_string()),
        ("NICE_LEVEL", "0".to_string()),
        // Replicate from the first second (default: 60 s after start).
        ("REPLICATIONS_DELAY_INIT", "0".to_string()),
        // The master raises anything lower to 60 (default 300).
        ("CHUNKS_LOOP_MIN_TIME", "60".to_string()),
    ];
    write(&cfg, &render(&lines, extra));
    cfg
}

/// A master config under `dir` serving the existing metadata folder `data`
/// on `addr` (replacing a dead master from a metalogger's copy).
pub fn write_master_on(
    dir: &Path,
    data: &Path,
    addr: Ipv4Addr,
    ports: MasterPorts,
    extra: &[(String, String)],
) -> PathBuf {
    mkdir(dir);
    let cfg = write_master(dir, addr, ports, extra);
    let text = std::fs::read_to_string(&cfg).unwrap_or_else(|e| panic!("read {}: {e}", cfg.display()));
    let old = format!("DATA_PATH = {}", dir.join("data").display());
    write(&cfg, &text.replace(&old, &format!("DATA_PATH = {}", data.display())));
    cfg
}

/// `mfsmetalogger.cfg` under `dir` following the master at `master:port`.
pub fn write_metalogger(dir: &Path, master: Ipv4Addr, port: u16) -> PathBuf {
    let data = dir.join("data");
    mkdir(&data);
    let cfg = dir.join("mfsmetalogger.cfg");
    let lines = [
        ("WORKING_USER", "root".to_string()),
        ("WORKING_GROUP", "root".to_string()),
        ("DATA_PATH", data.display().to_string()),
        ("MASTER_HOST", master.to_string()),
        ("MASTER_PORT", port.to_string()),
        ("MASTER_RECONNECTION_DELAY", "1".to_string()),
    ];
    write(&cfg, &render(&lines, &[]));
    cfg
}

/// Rewrites `MASTER_HOST` in a chunkserver config.
pub fn repoint_chunkserver(cfg: &Path, master: Ipv4Addr) {
    let text = std::fs::read_to_string(cfg).unwrap_or_else(|e| panic!("read {}: {e}", cfg.display()));
    let text: String = text
        .lines()
        .map(|l| if l.starts_with("MASTER_HOST") { format!("MASTER_HOST = {master}\n") } else { format!("{l}\n") })
        .collect();
    write(cfg, &text);
}

/// Files of one chunkserver slot, the same for both kinds.
#[derive(Clone, Debug)]
pub struct ChunkserverFiles {
    /// `mfschunkserver.cfg`.
    pub cfg: PathBuf,
    /// The one chunk folder listed in its `mfshdd.cfg`.
    pub hdd: PathBuf,
    /// DATA_PATH (lock file, server id).
    pub data: PathBuf,
}

/// Lays out chunkserver slot files under `dir`: one chunk folder, its
/// `mfshdd.cfg`, DATA_PATH and `mfschunkserver.cfg` listening on
/// `addr:port` and registering with the master at `master:master_port`.
pub fn write_chunkserver(
    dir: &Path,
    addr: Ipv4Addr,
    port: u16,
    master: Ipv4Addr,
    master_port: u16,
    extra: &[(String, String)],
) -> ChunkserverFiles {
    let data = dir.join("data");
    let hdd = dir.join("hdd");
    mkdir(&data);
    mkdir(&hdd);
    let hdd_cfg = dir.join("mfshdd.cfg");
    write(&hdd_cfg, &format!("{}\n", hdd.display()));
    let cfg = dir.join("mfschunkserver.cfg");
    let lines = [
        ("WORKING_USER", "root".to_string()),
        ("WORKING_GROUP", "root".to_string()),
        ("DATA_PATH", data.display().to_string()),
        ("HDD_CONF_FILENAME", hdd_cfg.display().to_string()),
        ("HDD_LEAVE_SPACE_DEFAULT", "256MiB".to_string()),
        ("MASTER_HOST", master.to_string()),
        ("MASTER_PORT", master_port.to_string()),
        ("BIND_HOST", addr.to_string()),
        ("CSSERV_LISTEN_HOST", addr.to_string()),
        ("CSSERV_LISTEN_PORT", port.to_string()),
        ("NICE_LEVEL", "0".to_string()),
        // Back within a second after a master restart (default 5 s).
        ("MASTER_RECONNECTION_DELAY", "1".to_string()),
    ];
    write(&cfg, &render(&lines, extra));
    ChunkserverFiles { cfg, hdd, data }
}

/// One connected chunkserver as the master lists it (`mfscli -SCS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsStatus {
    /// `ip:port` as the master knows it.
    pub addr: String,
    /// Version string it reported (`3.0.117`).
    pub version: String,
    /// Chunks it holds.
    pub chunks: u64,
    /// Bytes used and total on its disks.
    pub used: u64,
    pub total: u64,
}

/// Parses `mfscli -SCS -p -n` (3.0.38+ columns: ip, port, id, labels,
/// version, load, maintenance, chunks, used, total, then the
/// marked-for-removal columns). Disconnected servers are left out.
pub fn parse_cs_list(text: &str) -> Vec<CsStatus> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("chunk servers:") else { continue };
        let cols: Vec<&str> = rest.split('\t').map(str::trim).filter(|c| !c.is_empty()).collect();
        if cols.len() < 10 {
            continue;
        }
        let num = |i: usize| cols[i].parse::<u64>().unwrap_or(0);
        out.push(CsStatus {
            addr: format!("{}:{}", cols[0], cols[1]),
            version: cols[4].to_string(),
            chunks: num(7),
            used: num(8),
            total: num(9),
        });
    }
    out
}

/// One chunk of a file as `mfsfileinfo` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Chunk index in the file (offset / 64 MiB).
    pub index: u32,
    /// Chunk id; 0 for a hole (`chunk N: empty`).
    pub id: u64,
    pub version: u32,
    /// `ip:port` of every copy in status VALID.
    pub copies: Vec<String>,
    /// Copies in any other status: (`ip:port`, status such as `INVALID`).
    pub other_copies: Vec<(String, String)>,
}

impl ChunkInfo {
    /// The chunk's file name on a chunkserver disk.
    pub fn file_name(&self) -> String {
        format!("chunk_{:016X}_{:08X}.mfs", self.id, self.version)
    }

    /// True when the valid copies are on `n` distinct servers, no other.
    pub fn has_distinct_copies(&self, n: usize) -> bool {
        let mut addrs = self.copies.clone();
        addrs.sort();
        addrs.dedup();
        self.copies.len() == n && addrs.len() == n
    }
}

/// Parses `mfsfileinfo FILE` output for one file.
pub fn parse_fileinfo(text: &str) -> Result<Vec<ChunkInfo>, String> {
    let mut chunks: Vec<ChunkInfo> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("chunk ") {
            let (idx, rest) = rest.split_once(':').ok_or_else(|| format!("bad chunk line {line:?}"))?;
            let index = idx.trim().parse().map_err(|_| format!("bad chunk index in {line:?}"))?;
            let (id, version) = if rest.trim() == "empty" {
                (0, 0)
            } else {
                let field = |key: &str| {
                    rest.split(|c: char| c == '(' || c == ')' || c.is_whitespace())
                        .find_map(|w| w.strip_prefix(key))
                        .ok_or_else(|| format!("no {key} in {line:?}"))
                };
                let id = field("id:")?.parse().map_err(|_| format!("bad id in {line:?}"))?;
                let ver = field("ver:")?.parse().map_err(|_| format!("bad version in {line:?}"))?;
                (id, ver)
            };
            chunks.push(ChunkInfo { index, id, version, copies: Vec::new(), other_copies: Vec::new() });
        } else if let Some(rest) = line.strip_prefix("copy ") {
            let chunk = chunks.last_mut().ok_or_else(|| format!("copy before any chunk: {line:?}"))?;
            let (_, rest) = rest.split_once(':').ok_or_else(|| format!("bad copy line {line:?}"))?;
            let rest = rest.trim();
            let addr = rest.split_whitespace().next().unwrap_or_default().to_string();
            let status = rest
                .split_once("status:")
                .map(|(_, s)| s.split([';', ')']).next().unwrap_or_default().trim().to_string())
                .ok_or_else(|| format!("no status in {line:?}"))?;
            if status == "VALID" {
                chunk.copies.push(addr);
            } else {
                chunk.other_copies.push((addr, status));
            }
        }
    }
    Ok(chunks)
}

/// Every chunk file under a chunkserver's chunk folder (`XX/chunk_*.mfs`).
pub fn chunk_files_in(hdd: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(hdd) else { return out };
    for sub in dirs.flatten() {
        let Ok(files) = std::fs::read_dir(sub.path()) else { continue };
        for f in files.flatten() {
            let name = f.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("chunk_") && name.ends_with(".mfs") {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fileinfo() {
        let text = "/m/f:\n\tchunk 0: 0000000000000001_00000002 / (id:1 ver:2)\n\t\tcopy 1: 10.0.0.1:9422 \
                    (status:VALID)\n\t\tcopy 2: 10.0.0.1:9423 (status:INVALID)\n\tchunk 1: empty\n";
        let c = parse_fileinfo(text).expect("parse");
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].id, c[0].version), (1, 2));
        assert_eq!(c[0].copies, vec!["10.0.0.1:9422".to_string()]);
        assert_eq!(c[0].other_copies, vec![("10.0.0.1:9423".to_string(), "INVALID".to_string())]);
        assert_eq!(c[1].id, 0);
        assert_eq!(c[0].file_name(), "chunk_0000000000000001_00000002.mfs");
    }

    #[test]
    fn parses_cs_list() {
        let text = "chunk servers:\t10.1.2.1\t9425\t3\t-\t3.0.117\t0\tmaintenance_off\t3\t19\t97\t-\t0\t0\t0\n\
                    Disconnected chunk servers:\t10.1.2.1\t9426\t1\tmaintenance_off\n";
        let s = parse_cs_list(text);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].addr, "10.1.2.1:9425");
        assert_eq!((s[0].chunks, s[0].used, s[0].total), (3, 19, 97));
    }
}
