//! What the master tells monitoring tools (`mfscli`, `elkfs admin`): a
//! snapshot of the namespace, chunkservers, metaloggers and sessions.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::admin::{AdminView, MetaloggerView, NamespaceStats, ServerView, SessionView};
use crate::cluster::CopyState;
use crate::shared::{unix_now, Shared};

/// Builds the view; walks every chunk for the copy-count matrix, which is
/// fine for the sizes elkfs runs today (MooseFS keeps counters instead).
pub fn admin_view(shared: &Shared) -> AdminView {
    let mut view = AdminView::new();
    view.memory_bytes = rss_bytes();
    view.clock_us =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
    view.servers = shared
        .cluster
        .servers()
        .into_iter()
        .map(|s| ServerView {
            addr: SocketAddrV4::new(Ipv4Addr::from(s.addr.ip), s.addr.port),
            csid: s.csid,
            version: s.version,
            labelmask: s.labelmask,
            used_bytes: s.space.used,
            total_bytes: s.space.total,
            chunks: s.space.chunks,
            removal_used_bytes: s.space.td_used,
            removal_total_bytes: s.space.td_total,
            removal_chunks: s.space.td_chunks,
            errors: s.errors,
            load: s.load,
            registered: s.registered,
            maintenance: Default::default(),
        })
        .collect();
    view.metaloggers =
        shared.lists().metaloggers.iter().map(|&(addr, version)| MetaloggerView { addr, version }).collect();
    let small = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let meta = shared.lock();
    let stats = meta.stats();
    let (save_time, save_ms) = shared.lists().last_save;
    view.namespace = NamespaceStats {
        inodes: small(stats.inodes),
        dirs: small(stats.dirs),
        files: small(stats.files),
        chunks: small(stats.chunks),
        trash_files: small(stats.trash_files),
        trash_bytes: stats.trash_bytes,
        sustained_files: small(stats.sustained_files),
        sustained_bytes: stats.sustained_bytes,
        meta_version: meta.version(),
        last_save_time: save_time,
        last_save_ms: save_ms,
        last_save_status: 0,
        changelog_time: unix_now(),
    };
    let live = shared.lists().sessions.clone();
    let grants = shared.lists().grants.clone();
    view.exports_checksum = shared.exports().checksum;
    view.sessions = meta
        .sessions()
        .into_iter()
        .map(|(id, s, open)| {
            let (peer, sockets, version) = live.get(&id).copied().unwrap_or((Ipv4Addr::UNSPECIFIED, 0, 0));
            // A session not seen since this process started has no grant yet.
            let grant = grants.get(&id).map(|g| g.0);
            SessionView {
                id,
                peer,
                version,
                info: String::from_utf8_lossy(s.info.strip_suffix(b"\0").unwrap_or(&s.info)).into_owned(),
                path: String::from_utf8_lossy(s.root_path.strip_suffix(b"\0").unwrap_or(&s.root_path)).into_owned(),
                open_files: open,
                sockets,
                expires_in_s: if sockets > 0 { 0 } else { shared.config.session_sustain.as_secs() as u32 },
                flags: grant.map_or(0, |g| g.sesflags),
                umask: grant.map_or(0, |g| g.umask),
                root_uid: grant.map_or(0, |g| g.rootuid),
                root_gid: grant.map_or(0, |g| g.rootgid),
                mapall_uid: grant.map_or(0, |g| g.mapalluid),
                mapall_gid: grant.map_or(0, |g| g.mapallgid),
                min_goal: grant.map_or(1, |g| g.mingoal),
                max_goal: grant.map_or(9, |g| g.maxgoal),
                min_trash_s: grant.map_or(0, |g| g.mintrashtime),
                max_trash_s: grant.map_or(u32::MAX, |g| g.maxtrashtime),
                disables: grant.map_or(0, |g| g.disables),
            }
        })
        .collect();
    for (id, chunk) in meta.chunks_from(0, usize::MAX) {
        let copies = shared.cluster.copies(id);
        let valid = copies.iter().filter(|c| c.state == CopyState::Valid && c.version == chunk.version);
        let all = valid.clone().count().min(10);
        let regular = valid.filter(|c| !c.on_removal_disk).count().min(10);
        let goal = usize::from(chunk.goal).min(10);
        view.all_copies[goal][all] += 1;
        view.regular_copies[goal][regular] += 1;
    }
    view
}

/// The process's resident memory, from `/proc/self/status`.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
