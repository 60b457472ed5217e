//! `FUSE_REGISTER`: sessions of mounts and tools.
//!
//! Sessions are metadata (a changelog record each), so a mount whose master
//! restarted reconnects to the same session instead of losing it. A session
//! may be rooted at any folder (`subtree`). Exports (`mfsexports.cfg`) are
//! not enforced yet: every client may mount any folder read-write.

use elkfs_proto::client::{ClToMa, MaToCl, Session};
use elkfs_proto::Status;

use super::{Conn, SessionView};
use crate::error::{Error, Result};
use crate::shared::unix_now;

/// Counts this connection under `session` for monitoring.
fn attach(conn: &mut Conn, id: u32, root: u32, version: u32) {
    if conn.session.is_some_and(|s| s.id == id) {
        return;
    }
    let ip = conn.peer.parse::<std::net::SocketAddrV4>().map(|a| *a.ip()).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    let mut lists = conn.shared.lists();
    let entry = lists.sessions.entry(id).or_insert((ip, 0, version));
    *entry = (ip, entry.1 + 1, version);
    drop(lists);
    conn.session = Some(SessionView { id, root });
}

pub(super) fn handle(conn: &mut Conn, request: ClToMa) -> Result<()> {
    match request {
        ClToMa::GetRandom => {
            conn.send(0, MaToCl::Random(rand::random()));
        }
        ClToMa::NewSession { version, info, path, resume, .. } => {
            let path = path.strip_suffix(b"\0").unwrap_or(&path).to_vec();
            let known = resume.and_then(|r| {
                let meta = conn.shared.lock();
                meta.session(r.sessionid).filter(|s| s.root_path == path).map(|s| (r.sessionid, s.root))
            });
            let (made, after) = match known {
                Some(found) => (Ok(found), conn.shared.lock().version()),
                None => conn.shared.change(|meta| meta.new_session(&info, &path, unix_now())),
            };
            match made {
                Ok((id, root)) => {
                    attach(conn, id, root, version);
                    let metaid = conn.shared.lock().metaid();
                    conn.send(after, MaToCl::Session(session_reply(id, metaid)));
                }
                Err(status) => conn.send(after, MaToCl::RegisterStatus(status)),
            }
        }
        ClToMa::Reconnect { sessionid, metaid, version } => {
            let meta = conn.shared.lock();
            let root = meta.session(sessionid).map(|s| s.root).filter(|_| metaid.is_none_or(|m| m == meta.metaid()));
            let after = meta.version();
            drop(meta);
            let status = if let Some(root) = root {
                attach(conn, sessionid, root, version);
                Status::OK
            } else {
                Status::BADSESSIONID
            };
            conn.send(after, MaToCl::Reconnected { version: elkfs_proto::VERSION, status });
        }
        ClToMa::Tools { sessionid, .. } => {
            let root = conn.shared.lock().session(sessionid).map_or(crate::meta::ROOT, |s| s.root);
            conn.session = Some(SessionView { id: sessionid, root });
            conn.send(0, MaToCl::RegisterStatus(Status::OK));
        }
        ClToMa::NewMetaSession { .. } => {
            conn.send(0, MaToCl::RegisterStatus(Status::ENOTSUP));
        }
        ClToMa::CloseSession { sessionid, .. } => {
            let (_, after) = conn.shared.change(|meta| meta.close_session(sessionid, unix_now()));
            conn.send(after, MaToCl::RegisterStatus(Status::OK));
            conn.session = None;
        }
        other => return Err(Error::peer(&conn.peer, format!("not a registration: {other:?}"))),
    }
    Ok(())
}

fn session_reply(sessionid: u32, metaid: u64) -> Session {
    Session {
        version: elkfs_proto::VERSION,
        sessionid,
        metaid,
        sesflags: 0,
        umask: 0,
        rootuid: 0,
        rootgid: 0,
        mapalluid: 0,
        mapallgid: 0,
        mingoal: 1,
        maxgoal: 9,
        mintrashtime: 0,
        maxtrashtime: u32::MAX,
        disables: 0,
    }
}
