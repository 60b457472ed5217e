//! `elkfs admin`: asks a master's client port (elkfs or real MooseFS 3.0)
//! what `mfscli` would, and prints one report as a table or as JSON.
//!
//! Blocking std sockets on purpose: four request/reply pairs on one
//! connection need no runtime. Every connect, read and write has a deadline
//! so a master that stops answering cannot hang the command.

use crate::error::{Error, Result};
use elkfs_proto::admin::{
    AdminReply, AdminRequest, CsEntry, MasterInfo, Matrix, SessionEntry, CS_FLAG_DISCONNECTED, CS_FLAG_MAINTENANCE,
    SESSION_VMODE_DISABLES,
};
use elkfs_proto::frame::Encode;
use elkfs_proto::{version_string, Header, HEADER_LEN};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Bound for connecting and for each read or write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// A reply larger than this is refused before anything is allocated for it
/// (a session list of 100 000 sessions stays far below).
const MAX_REPLY: usize = 256 << 20;

/// Everything `elkfs admin` prints. Field names are stable: scripts and
/// tests read the JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub master: MasterReport,
    pub chunkservers: Vec<ChunkserverReport>,
    pub metaloggers: Vec<MetaloggerReport>,
    pub sessions: Vec<SessionReport>,
    pub chunks: ChunkHealth,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterReport {
    pub address: String,
    pub version: String,
    pub memory_bytes: u64,
    pub total_space_bytes: u64,
    pub avail_space_bytes: u64,
    pub trash_space_bytes: u64,
    pub trash_files: u32,
    pub sustained_space_bytes: u64,
    pub sustained_files: u32,
    pub fs_objects: u32,
    pub directories: u32,
    pub files: u32,
    pub chunks: u32,
    pub all_copies: u32,
    pub regular_copies: u32,
    pub metadata_version: u64,
    /// Unix time; 0 when the master has not saved its metadata yet.
    pub last_save_time: u32,
    pub last_save_duration_ms: u32,
    pub last_save_status: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkserverReport {
    pub ip: String,
    pub port: u16,
    pub id: u16,
    pub version: String,
    pub connected: bool,
    pub maintenance: bool,
    pub labels: String,
    pub chunks: u32,
    pub used_bytes: u64,
    pub total_bytes: u64,
    pub removal_chunks: u32,
    pub removal_used_bytes: u64,
    pub removal_total_bytes: u64,
    pub errors: u32,
    pub load: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaloggerReport {
    pub ip: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionReport {
    pub id: u32,
    pub ip: String,
    pub version: String,
    pub info: String,
    pub path: String,
    pub open_files: u32,
    pub connections: u8,
}

/// Chunks by state, from the all-copies matrix, named as `mfscli` names
/// its classes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkHealth {
    /// No valid copy left.
    pub missing: u64,
    /// One copy left where the goal wants more.
    pub endangered: u64,
    /// More than one copy but fewer than the goal.
    pub undergoal: u64,
    pub stable: u64,
    pub overgoal: u64,
    /// Goal 0: chunks of deleted files still on disks.
    pub pending_deletion: u64,
    /// Nonzero cells: `[goal, copies, chunks]` (10 means "10 or more").
    pub matrix: Vec<[u64; 3]>,
}

impl ChunkHealth {
    pub fn from_matrix(m: &Matrix) -> ChunkHealth {
        let mut h = ChunkHealth::default();
        for (goal, row) in m.iter().enumerate() {
            for (copies, &n) in row.iter().enumerate() {
                let n = n as u64;
                if n == 0 {
                    continue;
                }
                h.matrix.push([goal as u64, copies as u64, n]);
                let class = match (goal, copies) {
                    (0, _) => &mut h.pending_deletion,
                    (_, 0) => &mut h.missing,
                    (g, 1) if g > 1 => &mut h.endangered,
                    (g, c) if c < g => &mut h.undergoal,
                    (g, c) if c == g => &mut h.stable,
                    _ => &mut h.overgoal,
                };
                *class += n;
            }
        }
        h
    }
}

fn ip_string(ip: u32) -> String {
    Ipv4Addr::from(ip).to_string()
}

/// Labels as `mfscli` prints them: letters A..Z of the set bits.
pub fn labels_string(mask: u32) -> String {
    let s: String = (0..26u8).filter(|b| mask & (1 << b) != 0).map(|b| (b'A' + b) as char).collect();
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

fn master_report(address: String, i: &MasterInfo) -> MasterReport {
    MasterReport {
        address,
        version: version_string(i.version),
        memory_bytes: i.memory_bytes,
        total_space_bytes: i.total_space,
        avail_space_bytes: i.avail_space,
        trash_space_bytes: i.trash_space,
        trash_files: i.trash_files,
        sustained_space_bytes: i.sustained_space,
        sustained_files: i.sustained_files,
        fs_objects: i.inodes,
        directories: i.dirs,
        files: i.files,
        chunks: i.chunks,
        all_copies: i.all_copies,
        regular_copies: i.regular_copies,
        metadata_version: i.meta_version,
        last_save_time: i.last_store_time,
        last_save_duration_ms: i.last_store_ms,
        last_save_status: i.last_store_status,
    }
}

fn cs_report(e: &CsEntry) -> ChunkserverReport {
    ChunkserverReport {
        ip: ip_string(e.ip),
        port: e.port,
        id: e.csid,
        version: version_string(e.version),
        connected: e.flags & CS_FLAG_DISCONNECTED == 0,
        maintenance: e.flags & CS_FLAG_MAINTENANCE != 0,
        labels: labels_string(e.labels),
        chunks: e.chunks,
        used_bytes: e.used,
        total_bytes: e.total,
        removal_chunks: e.td_chunks,
        removal_used_bytes: e.td_used,
        removal_total_bytes: e.td_total,
        errors: e.errors,
        load: e.load,
    }
}

fn session_report(s: &SessionEntry) -> SessionReport {
    SessionReport {
        id: s.id,
        ip: ip_string(s.ip),
        version: version_string(s.version),
        info: String::from_utf8_lossy(&s.info).into_owned(),
        path: String::from_utf8_lossy(&s.path).into_owned(),
        open_files: s.open_files,
        connections: s.sockets,
    }
}

/// One open connection to a master's client port.
struct Conn {
    peer: SocketAddr,
    stream: TcpStream,
}

impl Conn {
    fn open(host: &str, port: u16) -> Result<Conn> {
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| Error::io(format!("resolve {host}:{port}"), e))?
            .filter(SocketAddr::is_ipv4)
            .collect();
        let mut last = None;
        for peer in addrs {
            match TcpStream::connect_timeout(&peer, IO_TIMEOUT) {
                Ok(stream) => {
                    let set =
                        |r: std::io::Result<()>| r.map_err(|e| Error::io(format!("socket options for {peer}"), e));
                    set(stream.set_read_timeout(Some(IO_TIMEOUT)))?;
                    set(stream.set_write_timeout(Some(IO_TIMEOUT)))?;
                    return Ok(Conn { peer, stream });
                }
                Err(e) => last = Some(Error::io(format!("connect to {peer}"), e)),
            }
        }
        Err(last.unwrap_or_else(|| Error::peer(format!("{host}:{port}"), "no IPv4 address")))
    }

    fn ask(&mut self, req: AdminRequest) -> Result<AdminReply> {
        let peer = self.peer;
        self.stream.write_all(&req.to_packet()).map_err(|e| Error::io(format!("send to {peer}"), e))?;
        let mut head = [0u8; HEADER_LEN];
        self.stream.read_exact(&mut head).map_err(|e| Error::io(format!("read reply header from {peer}"), e))?;
        let header = Header::parse_limited(&head, MAX_REPLY)?;
        if header.kind != req.reply_kind() {
            return Err(Error::peer(peer, format!("answered type {} to {}", header.kind, req.kind())));
        }
        let mut payload = vec![0; header.len as usize];
        self.stream.read_exact(&mut payload).map_err(|e| Error::io(format!("read reply from {peer}"), e))?;
        Ok(AdminReply::decode(header.kind, &payload)?)
    }
}

fn unexpected(peer: SocketAddr, what: &str) -> Error {
    Error::peer(peer, format!("unexpected reply form to {what}"))
}

/// Asks the master at `host:port` for info, chunkservers, metaloggers,
/// sessions and the copy matrix.
pub fn fetch(host: &str, port: u16) -> Result<Report> {
    let mut c = Conn::open(host, port)?;
    let peer = c.peer;
    let AdminReply::Info(info) = c.ask(AdminRequest::Info)? else { return Err(unexpected(peer, "INFO")) };
    let AdminReply::CservList(servers) = c.ask(AdminRequest::CservList)? else {
        return Err(unexpected(peer, "CSERV_LIST"));
    };
    let AdminReply::MlogList(mlogs) = c.ask(AdminRequest::MlogList)? else {
        return Err(unexpected(peer, "MLOG_LIST"));
    };
    let vmode = Some(SESSION_VMODE_DISABLES);
    let AdminReply::SessionList(sessions) = c.ask(AdminRequest::SessionList { vmode })? else {
        return Err(unexpected(peer, "SESSION_LIST"));
    };
    let AdminReply::ChunksMatrices { all, .. } = c.ask(AdminRequest::ChunksMatrix { matrix: None })? else {
        return Err(unexpected(peer, "CHUNKS_MATRIX"));
    };
    Ok(Report {
        master: master_report(peer.to_string(), &info),
        chunkservers: servers.iter().map(cs_report).collect(),
        metaloggers: mlogs
            .iter()
            .map(|m| MetaloggerReport { ip: ip_string(m.ip), version: version_string(m.version) })
            .collect(),
        sessions: sessions.sessions.iter().map(session_report).collect(),
        chunks: ChunkHealth::from_matrix(&all),
    })
}

/// Bytes with a binary unit, as people read disk sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Left-aligned columns separated by two spaces.
fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let s: Vec<String> = cells.iter().zip(&width).map(|(c, w)| format!("{c:<w$}")).collect();
        s.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(head.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out += &line(r.clone());
    }
    out
}

fn percent(used: u64, total: u64) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{:.1}%", used as f64 * 100.0 / total as f64)
    }
}

/// The report as a person reads it.
pub fn render_table(r: &Report) -> String {
    let m = &r.master;
    let mut out = format!("master {} (version {})\n", m.address, m.version);
    out += &format!(
        "  metadata version {}, last save {} ({} ms, status {})\n",
        m.metadata_version,
        if m.last_save_time == 0 { "never".to_string() } else { format!("at unix time {}", m.last_save_time) },
        m.last_save_duration_ms,
        m.last_save_status
    );
    out += &format!(
        "  space {} total, {} available; trash {} in {} files\n",
        human_bytes(m.total_space_bytes),
        human_bytes(m.avail_space_bytes),
        human_bytes(m.trash_space_bytes),
        m.trash_files
    );
    out += &format!(
        "  {} objects: {} directories, {} files; {} chunks, {} copies\n\n",
        m.fs_objects, m.directories, m.files, m.chunks, m.all_copies
    );
    let cs: Vec<Vec<String>> = r
        .chunkservers
        .iter()
        .map(|c| {
            vec![
                format!("{}:{}", c.ip, c.port),
                c.id.to_string(),
                c.version.clone(),
                (if !c.connected {
                    "disconnected"
                } else if c.maintenance {
                    "maintenance"
                } else {
                    "up"
                })
                .into(),
                c.labels.clone(),
                c.chunks.to_string(),
                human_bytes(c.used_bytes),
                human_bytes(c.total_bytes),
                percent(c.used_bytes, c.total_bytes),
                c.errors.to_string(),
            ]
        })
        .collect();
    out += &format!("chunkservers ({})\n", r.chunkservers.len());
    out += &table(&["address", "id", "version", "state", "labels", "chunks", "used", "total", "used%", "errors"], &cs);
    let ml: Vec<Vec<String>> = r.metaloggers.iter().map(|l| vec![l.ip.clone(), l.version.clone()]).collect();
    out += &format!("\nmetaloggers ({})\n", r.metaloggers.len());
    out += &table(&["ip", "version"], &ml);
    let se: Vec<Vec<String>> = r
        .sessions
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.ip.clone(),
                s.version.clone(),
                s.info.clone(),
                s.path.clone(),
                s.open_files.to_string(),
                s.connections.to_string(),
            ]
        })
        .collect();
    out += &format!("\nsessions ({})\n", r.sessions.len());
    out += &table(&["id", "ip", "version", "info", "root", "open files", "connections"], &se);
    let h = &r.chunks;
    out += &format!(
        "\nchunks: {} missing, {} endangered, {} under goal, {} stable, {} over goal, {} pending deletion\n",
        h.missing, h.endangered, h.undergoal, h.stable, h.overgoal, h.pending_deletion
    );
    out
}

/// `elkfs admin`: fetches the report and prints it to stdout.
pub fn run(host: &str, port: u16, json: bool) -> Result<()> {
    let report = fetch(host, port)?;
    let text = if json {
        let mut s = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::peer(host, format!("report cannot be written as JSON: {e}")))?;
        s.push('\n');
        s
    } else {
        render_table(&report)
    };
    std::io::stdout().write_all(text.as_bytes()).map_err(|e| Error::io("write the report to stdout", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{answer, matrix_with, AdminView, ServerView, SessionView};
    use std::net::{SocketAddrV4, TcpListener};

    #[test]
    fn matrix_classes_follow_goal_and_copies() {
        let h =
            ChunkHealth::from_matrix(&matrix_with(&[(0, 1, 4), (2, 0, 1), (3, 1, 2), (3, 2, 3), (2, 2, 5), (1, 3, 6)]));
        assert_eq!((h.pending_deletion, h.missing, h.endangered, h.undergoal), (4, 1, 2, 3));
        assert_eq!((h.stable, h.overgoal), (5, 6));
        assert_eq!(h.matrix.len(), 6);
    }

    #[test]
    fn labels_and_sizes_read_like_mfscli() {
        assert_eq!(labels_string(0), "-");
        assert_eq!(labels_string(0b101), "AC");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn a_closed_port_is_an_io_error_naming_the_peer() {
        let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let err = fetch("127.0.0.1", port).expect_err("nothing listens there");
        assert!(matches!(&err, Error::Io { what, .. } if what.contains(&format!("127.0.0.1:{port}"))), "{err}");
    }

    /// `fetch` against `answer()` over loopback: what one side encodes the
    /// other reports.
    #[test]
    fn fetch_reads_what_answer_serves() {
        let mut view = AdminView::new();
        view.servers.push(ServerView {
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 9422),
            csid: 5,
            version: elkfs_proto::VERSION,
            total_bytes: 8 << 30,
            used_bytes: 1 << 30,
            chunks: 77,
            registered: true,
            ..ServerView::default()
        });
        view.sessions.push(SessionView { id: 9, info: "/mnt/x".into(), ..SessionView::default() });
        view.all_copies = matrix_with(&[(2, 2, 70), (2, 1, 7)]);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
            let mut head = [0u8; HEADER_LEN];
            while s.read_exact(&mut head).is_ok() {
                let h = Header::parse(&head);
                let mut payload = vec![0; h.len as usize];
                s.read_exact(&mut payload).expect("payload");
                let reply = answer(h.kind, &payload, &view).expect("monitoring request");
                s.write_all(&reply).expect("reply");
            }
        });
        let report = fetch("127.0.0.1", port).expect("fetch");
        server.join().expect("server thread");
        assert_eq!(report.master.version, "3.0.117");
        assert_eq!(report.master.total_space_bytes, 8 << 30);
        assert_eq!(report.chunkservers.len(), 1);
        let cs = &report.chunkservers[0];
        assert_eq!((cs.ip.as_str(), cs.port, cs.id, cs.chunks, cs.connected), ("10.1.2.3", 9422, 5, 77, true));
        assert_eq!(report.sessions[0].info, "/mnt/x");
        assert_eq!((report.chunks.stable, report.chunks.endangered), (70, 7));
        let text = render_table(&report);
        assert!(text.contains("10.1.2.3:9422") && text.contains("8.0 GiB"), "{text}");
        let json: Report = serde_json::from_str(&serde_json::to_string(&report).expect("json")).expect("parse");
        assert_eq!(json, report);
    }
}
