//! Answers to the monitoring messages of the client port (`mfscli`, CGI,
//! `elkfs admin`), built from a plain snapshot of what the master knows.
//!
//! The snapshot ([`AdminView`]) is filled by whoever owns the live state
//! (cluster view, namespace, sessions) and handed to [`answer`], which only
//! lays out bytes: monitoring never touches live state, so a slow or broken
//! monitoring peer cannot hold a lock the data path needs.

use elkfs_proto::admin::{
    AdminReply, AdminRequest, CsEntry, FsTestInfo, MasterInfo, Matrix, MlogEntry, SessionEntry, SessionList,
    CHUNKSTEST_WORDS, CS_FLAG_DISCONNECTED, CS_FLAG_MAINTENANCE, CS_FLAG_MAINTENANCE_TEMP, MATRIX_SIDE,
    MEMORY_INFO_WORDS, SESSION_STATS, STATE_NO_HA,
};
use elkfs_proto::frame::Encode;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Maintenance mode of a chunkserver, as an administrator set it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Maintenance {
    #[default]
    Off,
    On,
    /// Ends by itself when the server reconnects.
    Temporary,
}

/// One chunkserver the master knows, connected or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerView {
    pub addr: SocketAddrV4,
    pub csid: u16,
    /// `major<<16 | mid<<8 | minor*2`.
    pub version: u32,
    pub labelmask: u32,
    pub used_bytes: u64,
    pub total_bytes: u64,
    pub chunks: u32,
    /// Space and chunks on disks marked for removal.
    pub removal_used_bytes: u64,
    pub removal_total_bytes: u64,
    pub removal_chunks: u32,
    pub errors: u32,
    pub load: u32,
    /// False for a server the master remembers but which is not connected:
    /// it is listed with zeros, flagged disconnected.
    pub registered: bool,
    pub maintenance: Maintenance,
}

/// One connected metalogger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaloggerView {
    pub addr: Ipv4Addr,
    pub version: u32,
}

/// One client session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub id: u32,
    pub peer: Ipv4Addr,
    pub version: u32,
    /// What the client sent at registration, usually its mount point.
    pub info: String,
    /// Exported root; `.` for a meta mount.
    pub path: String,
    pub open_files: u32,
    /// Live connections; 0 for a session kept while its client reconnects.
    pub sockets: u32,
    /// Seconds until a disconnected session is dropped.
    pub expires_in_s: u32,
    pub flags: u8,
    pub umask: u16,
    pub root_uid: u32,
    pub root_gid: u32,
    pub mapall_uid: u32,
    pub mapall_gid: u32,
    pub min_goal: u8,
    pub max_goal: u8,
    pub min_trash_s: u32,
    pub max_trash_s: u32,
    pub disables: u32,
}

impl Default for ServerView {
    fn default() -> ServerView {
        ServerView {
            addr: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            csid: 0,
            version: 0,
            labelmask: 0,
            used_bytes: 0,
            total_bytes: 0,
            chunks: 0,
            removal_used_bytes: 0,
            removal_total_bytes: 0,
            removal_chunks: 0,
            errors: 0,
            load: 0,
            registered: false,
            maintenance: Maintenance::Off,
        }
    }
}

/// A connected session of a plain mount: goal 1..9, any trash time.
impl Default for SessionView {
    fn default() -> SessionView {
        SessionView {
            id: 0,
            peer: Ipv4Addr::UNSPECIFIED,
            version: 0,
            info: String::new(),
            path: String::from("/"),
            open_files: 0,
            sockets: 1,
            expires_in_s: 0,
            flags: 0,
            umask: 0,
            root_uid: 0,
            root_gid: 0,
            mapall_uid: 0,
            mapall_gid: 0,
            min_goal: 1,
            max_goal: 9,
            min_trash_s: 0,
            max_trash_s: u32::MAX,
            disables: 0,
        }
    }
}

/// Figures of the namespace and of its metadata files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NamespaceStats {
    pub inodes: u32,
    pub dirs: u32,
    pub files: u32,
    pub chunks: u32,
    pub trash_files: u32,
    pub trash_bytes: u64,
    pub sustained_files: u32,
    pub sustained_bytes: u64,
    pub meta_version: u64,
    /// Unix time of the last successful metadata save (0: none yet).
    pub last_save_time: u32,
    pub last_save_ms: u32,
    /// 0 saved in background, 1 downloaded, 2 saved in foreground.
    pub last_save_status: u8,
    /// Unix time of the last changelog record written.
    pub changelog_time: u32,
}

/// A plain snapshot of what the master knows, for monitoring replies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminView {
    pub version: u32,
    pub memory_bytes: u64,
    pub servers: Vec<ServerView>,
    pub metaloggers: Vec<MetaloggerView>,
    pub sessions: Vec<SessionView>,
    pub namespace: NamespaceStats,
    /// `[goal][valid copies]`, both capped at 10: over all copies, and over
    /// copies on disks not marked for removal.
    pub all_copies: Matrix,
    pub regular_copies: Matrix,
    pub exports_checksum: u64,
    /// The master's clock, microseconds since the epoch.
    pub clock_us: u64,
}

impl AdminView {
    /// An empty view of a master announcing elkfs's protocol version.
    pub fn new() -> AdminView {
        AdminView { version: elkfs_proto::VERSION, ..AdminView::default() }
    }

    fn info(&self) -> MasterInfo {
        let ns = &self.namespace;
        let regs = self.servers.iter().filter(|s| s.registered);
        let (total, used) =
            regs.fold((0u64, 0u64), |(t, u), s| (t.saturating_add(s.total_bytes), u.saturating_add(s.used_bytes)));
        let avail = total.saturating_sub(used);
        let all_copies = copies(&self.all_copies);
        let regular_copies = copies(&self.regular_copies);
        MasterInfo {
            version: self.version,
            memory_bytes: self.memory_bytes,
            total_space: total,
            avail_space: avail,
            free_space: avail,
            trash_space: ns.trash_bytes,
            trash_files: ns.trash_files,
            sustained_space: ns.sustained_bytes,
            sustained_files: ns.sustained_files,
            inodes: ns.inodes,
            dirs: ns.dirs,
            files: ns.files,
            chunks: ns.chunks,
            all_copies,
            regular_copies,
            last_store_time: ns.last_save_time,
            last_store_ms: ns.last_save_ms,
            last_store_status: ns.last_save_status,
            state: STATE_NO_HA,
            meta_version: ns.meta_version,
            exports_checksum: self.exports_checksum,
            clock_us: self.clock_us,
            changelog_time: ns.changelog_time,
            ..MasterInfo::default()
        }
    }
}

/// Copies counted by a matrix: each chunk times its valid copies (column 10
/// counts as 10, a lower bound, as the matrix keeps no more).
fn copies(m: &Matrix) -> u32 {
    let sum: u64 = m.iter().flat_map(|row| row.iter().enumerate()).map(|(c, n)| c as u64 * *n as u64).sum();
    u32::try_from(sum).unwrap_or(u32::MAX)
}

fn cs_entry(s: &ServerView) -> CsEntry {
    let mut flags = match s.maintenance {
        Maintenance::Off => 0,
        Maintenance::On => CS_FLAG_MAINTENANCE,
        Maintenance::Temporary => CS_FLAG_MAINTENANCE | CS_FLAG_MAINTENANCE_TEMP,
    };
    let addr = CsEntry { ip: u32::from(*s.addr.ip()), port: s.addr.port(), csid: s.csid, ..CsEntry::default() };
    if !s.registered {
        flags |= CS_FLAG_DISCONNECTED;
        return CsEntry { flags, ..addr };
    }
    CsEntry {
        flags,
        version: s.version & 0xFF_FFFF,
        used: s.used_bytes,
        total: s.total_bytes,
        chunks: s.chunks,
        td_used: s.removal_used_bytes,
        td_total: s.removal_total_bytes,
        td_chunks: s.removal_chunks,
        errors: s.errors,
        load: s.load,
        labels: s.labelmask,
        ..addr
    }
}

fn session_entry(s: &SessionView) -> SessionEntry {
    SessionEntry {
        id: s.id,
        ip: u32::from(s.peer),
        version: s.version,
        open_files: s.open_files,
        sockets: u8::try_from(s.sockets).unwrap_or(u8::MAX),
        expire: if s.sockets > 0 { u32::MAX } else { s.expires_in_s },
        info: s.info.as_bytes().to_vec(),
        path: s.path.as_bytes().to_vec(),
        flags: s.flags,
        umask: s.umask,
        root_uid: s.root_uid,
        root_gid: s.root_gid,
        mapall_uid: s.mapall_uid,
        mapall_gid: s.mapall_gid,
        min_goal: s.min_goal,
        max_goal: s.max_goal,
        min_trash: s.min_trash_s,
        max_trash: s.max_trash_s,
        disables: s.disables,
        stats_current: vec![0; SESSION_STATS as usize],
        stats_last_hour: vec![0; SESSION_STATS as usize],
    }
}

/// The whole reply packet (header and payload) to a monitoring message, or
/// `None` when `kind` is not one, or its payload fits none of its forms (the
/// caller then closes the connection, as the real master does), or it asks
/// for a session-list layout older than 2 (pre-1.7.8 tools).
pub fn answer(kind: u32, payload: &[u8], view: &AdminView) -> Option<Vec<u8>> {
    let request = AdminRequest::decode(kind, payload).ok()?;
    let reply = match request {
        AdminRequest::CservList => AdminReply::CservList(view.servers.iter().map(cs_entry).collect()),
        AdminRequest::SessionList { vmode } => {
            let vmode = vmode.filter(|v| (2..=4).contains(v))?;
            let sessions = view.sessions.iter().map(session_entry).collect();
            AdminReply::SessionList(SessionList { vmode, stats: SESSION_STATS, sessions })
        }
        AdminRequest::Info => AdminReply::Info(view.info()),
        AdminRequest::FsTestInfo { mode } => AdminReply::FsTestInfo(FsTestInfo {
            missing_trash_sustained: mode.map(|_| (0, 0)),
            ..FsTestInfo::default()
        }),
        AdminRequest::ChunksTestInfo => AdminReply::ChunksTestInfo([0; CHUNKSTEST_WORDS]),
        AdminRequest::ChunksMatrix { matrix: None } => AdminReply::ChunksMatrices {
            progress: 0,
            all: Box::new(view.all_copies),
            regular: Box::new(view.regular_copies),
        },
        AdminRequest::ChunksMatrix { matrix: Some(id) } => {
            AdminReply::ChunksMatrix(Box::new(if id == 1 { view.regular_copies } else { view.all_copies }))
        }
        AdminRequest::MlogList => AdminReply::MlogList(
            view.metaloggers.iter().map(|m| MlogEntry { version: m.version, ip: u32::from(m.addr) }).collect(),
        ),
        AdminRequest::MemoryInfo => AdminReply::MemoryInfo([0; MEMORY_INFO_WORDS]),
        // elkfs keeps no list of chunks without copies yet; an empty list has
        // the same bytes in both modes.
        AdminRequest::MissingChunks { .. } => AdminReply::MissingChunks(Vec::new()),
    };
    Some(reply.to_packet())
}

/// A matrix with one count set, for tests and callers building views.
pub fn matrix_with(entries: &[(usize, usize, u32)]) -> Matrix {
    let mut m = [[0; MATRIX_SIDE]; MATRIX_SIDE];
    for &(goal, copies, n) in entries {
        m[goal.min(MATRIX_SIDE - 1)][copies.min(MATRIX_SIDE - 1)] += n;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use elkfs_proto::admin::{self, INFO_LEN};
    use elkfs_proto::Header;

    fn view() -> AdminView {
        let mut v = AdminView::new();
        v.servers.push(ServerView {
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 9422),
            csid: 1,
            version: elkfs_proto::VERSION,
            labelmask: 0b101,
            used_bytes: 1 << 30,
            total_bytes: 10 << 30,
            chunks: 12,
            registered: true,
            ..ServerView::default()
        });
        v.servers.push(ServerView {
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 3), 9422),
            csid: 2,
            total_bytes: 99,
            maintenance: Maintenance::On,
            ..ServerView::default()
        });
        v.metaloggers.push(MetaloggerView { addr: Ipv4Addr::new(10, 0, 0, 4), version: elkfs_proto::VERSION });
        v.sessions.push(SessionView {
            id: 7,
            peer: Ipv4Addr::new(10, 0, 0, 5),
            info: "/mnt/elkfs".into(),
            path: "/".into(),
            sockets: 1,
            open_files: 3,
            ..SessionView::default()
        });
        v.namespace =
            NamespaceStats { inodes: 5, dirs: 2, files: 3, chunks: 12, meta_version: 41, ..Default::default() };
        v.all_copies = matrix_with(&[(2, 2, 10), (2, 1, 2)]);
        v.regular_copies = v.all_copies;
        v
    }

    fn reply(kind: u32, payload: &[u8], v: &AdminView) -> AdminReply {
        let packet = answer(kind, payload, v).expect("a monitoring message");
        let header = Header::parse(packet[..8].try_into().expect("8 bytes"));
        assert_eq!(header.len as usize, packet.len() - 8);
        AdminReply::decode(header.kind, &packet[8..]).expect("decodable reply")
    }

    #[test]
    fn info_sums_registered_space_and_counts_copies() {
        let AdminReply::Info(info) = reply(admin::INFO, &[], &view()) else { panic!("not INFO") };
        assert_eq!(info.total_space, 10 << 30);
        assert_eq!(info.avail_space, 9 << 30);
        assert_eq!(info.all_copies, 22);
        assert_eq!((info.inodes, info.files, info.chunks, info.meta_version), (5, 3, 12, 41));
        assert_eq!(info.state, STATE_NO_HA);
        assert_eq!(answer(admin::INFO, &[], &view()).map(|p| p.len()), Some(8 + INFO_LEN));
    }

    #[test]
    fn unregistered_servers_are_listed_disconnected_with_zeros() {
        let AdminReply::CservList(list) = reply(admin::CSERV_LIST, &[], &view()) else { panic!("not CSERV_LIST") };
        assert_eq!(list.len(), 2);
        assert_eq!((list[0].flags, list[0].total, list[0].labels, list[0].port), (0, 10 << 30, 0b101, 9422));
        assert_eq!(list[1].flags, CS_FLAG_DISCONNECTED | CS_FLAG_MAINTENANCE);
        assert_eq!((list[1].total, list[1].csid), (0, 2));
    }

    #[test]
    fn sessions_in_layout_four_and_none_for_old_layouts() {
        let AdminReply::SessionList(list) = reply(admin::SESSION_LIST, &[4], &view()) else { panic!("not a list") };
        assert_eq!(list.sessions.len(), 1);
        let s = &list.sessions[0];
        assert_eq!((s.id, s.open_files, s.expire), (7, 3, u32::MAX));
        assert_eq!(s.info, b"/mnt/elkfs");
        assert_eq!(answer(admin::SESSION_LIST, &[], &view()), None);
        assert_eq!(answer(admin::SESSION_LIST, &[1], &view()), None);
    }

    #[test]
    fn metaloggers_matrices_and_the_rest() {
        let v = view();
        assert_eq!(
            reply(admin::MLOG_LIST, &[], &v),
            AdminReply::MlogList(vec![MlogEntry { version: elkfs_proto::VERSION, ip: 0x0A00_0004 }])
        );
        let AdminReply::ChunksMatrices { all, .. } = reply(admin::CHUNKS_MATRIX, &[], &v) else { panic!("matrices") };
        assert_eq!((all[2][2], all[2][1]), (10, 2));
        assert!(matches!(reply(admin::CHUNKS_MATRIX, &[1], &v), AdminReply::ChunksMatrix(_)));
        assert_eq!(reply(admin::MISSING_CHUNKS, &[1], &v), AdminReply::MissingChunks(vec![]));
        assert!(matches!(reply(admin::MEMORY_INFO, &[], &v), AdminReply::MemoryInfo(_)));
        assert!(matches!(reply(admin::CHUNKSTEST_INFO, &[], &v), AdminReply::ChunksTestInfo(_)));
    }

    #[test]
    fn not_monitoring_or_malformed_gives_none() {
        assert_eq!(answer(400, &[], &view()), None);
        assert_eq!(answer(admin::INFO, &[0], &view()), None);
    }
}
