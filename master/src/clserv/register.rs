//! `FUSE_REGISTER`: sessions of mounts and tools.
//!
//! Sessions are metadata (a changelog record each), so a mount whose master
//! restarted reconnects to the same session instead of losing it. A session
//! may be rooted at any folder (`subtree`). Every new session is checked
//! against the exports (`crate::exports`): the client's address, the folder
//! and the password proof for the `GETRANDOM` challenge of this connection.
//! What the export grants lives in this process only (`Lists::grants`); a
//! session reconnecting after a restart is checked again from its root
//! path and address, and one that cannot be (a password export, a reload
//! that changed the table, another address) gets `EPERM`, which tells
//! mfsmount to register anew with its session id — as mfsmaster answers.

use std::net::Ipv4Addr;

use elkfs_proto::client::{ClToMa, MaToCl, Session};
use elkfs_proto::Status;

use super::{Conn, SessionView};
use crate::error::{Error, Result};
use crate::exports::{Grant, Proof, SESFLAG_DYNAMICIP};
use crate::shared::unix_now;

fn peer_ip(conn: &Conn) -> Ipv4Addr {
    conn.peer.parse::<std::net::SocketAddrV4>().map(|a| *a.ip()).unwrap_or(Ipv4Addr::UNSPECIFIED)
}

/// Counts this connection under `session` for monitoring and remembers
/// what it was granted.
fn attach(conn: &mut Conn, id: u32, root: u32, version: u32, grant: Grant) {
    let ip = peer_ip(conn);
    let checksum = conn.shared.exports().checksum;
    let mut lists = conn.shared.lists();
    lists.grants.insert(id, (grant, checksum, ip));
    if conn.session.is_none_or(|s| s.id != id) {
        let entry = lists.sessions.entry(id).or_insert((ip, 0, version));
        *entry = (ip, entry.1 + 1, version);
    }
    drop(lists);
    conn.session = Some(SessionView { id, root, grant, client_version: version });
}

/// The grant of an existing session for a connection from `ip`: the one it
/// registered with if the exports did not change since and the address is
/// allowed, else the exports checked again without a password.
fn regrant(conn: &Conn, id: u32, root_path: &[u8], version: u32) -> Option<Grant> {
    let ip = peer_ip(conn);
    let exports = conn.shared.exports();
    let known = conn.shared.lists().grants.get(&id).copied();
    match known {
        Some((grant, checksum, from)) => {
            let moved = from != ip && grant.sesflags & SESFLAG_DYNAMICIP == 0;
            (checksum == exports.checksum && !moved).then_some(grant)
        }
        None => exports.check(ip, version, Some(root_path), None).ok(),
    }
}

pub(super) fn handle(conn: &mut Conn, request: ClToMa) -> Result<()> {
    match request {
        ClToMa::GetRandom => {
            let challenge: [u8; 32] = rand::random();
            conn.challenge = Some(challenge);
            conn.send(0, MaToCl::Random(challenge));
        }
        ClToMa::NewSession { version, info, path, resume, digest } => {
            let path = path.strip_suffix(b"\0").unwrap_or(&path).to_vec();
            let proof = match (&conn.challenge, &digest) {
                (Some(challenge), Some(digest)) => Some(Proof { challenge, digest }),
                _ => None,
            };
            let checked = conn.shared.exports().check(peer_ip(conn), version, Some(&path), proof);
            let grant = match checked {
                Ok(grant) => grant,
                Err(status) => {
                    tracing::info!(peer = %conn.peer, path = %String::from_utf8_lossy(&path), %status, "mount refused");
                    conn.send(0, MaToCl::RegisterStatus(status));
                    return Ok(());
                }
            };
            let known = resume.and_then(|r| {
                let meta = conn.shared.lock();
                meta.session(r.sessionid).filter(|s| s.root_path == path).map(|s| (r.sessionid, s.root))
            });
            // mfsmount waits only a second for this answer, and a busy disk
            // can take longer than that to fsync: the answer goes out at
            // once. Should the session record be lost in a crash, the
            // client's RECONNECT is told BADSESSIONID and it registers anew,
            // as after any lost session; no file system change is at stake.
            let (made, _) = match known {
                Some(found) => (Ok(found), conn.shared.lock().version()),
                None => conn.shared.change(|meta| meta.new_session(&info, &path, unix_now())),
            };
            match made {
                Ok((id, root)) => {
                    attach(conn, id, root, version, grant);
                    let metaid = conn.shared.lock().metaid();
                    conn.send(0, MaToCl::Session(session_reply(id, metaid, &grant)));
                }
                Err(status) => conn.send(0, MaToCl::RegisterStatus(status)),
            }
        }
        ClToMa::Reconnect { sessionid, metaid, version } => {
            let meta = conn.shared.lock();
            let found = meta
                .session(sessionid)
                .map(|s| (s.root, s.root_path.clone()))
                .filter(|_| metaid.is_none_or(|m| m == meta.metaid()));
            drop(meta);
            let status = match found {
                None => Status::BADSESSIONID,
                Some((root, path)) => match regrant(conn, sessionid, &path, version) {
                    Some(grant) => {
                        attach(conn, sessionid, root, version, grant);
                        Status::OK
                    }
                    None => {
                        tracing::info!(peer = %conn.peer, sessionid, "reconnect: exports changed, register again");
                        Status::EPERM
                    }
                },
            };
            // Answered at once, like a new session (see above).
            conn.send(0, MaToCl::Reconnected { version: elkfs_proto::VERSION, status });
        }
        ClToMa::Tools { sessionid, version, .. } => {
            let found = conn.shared.lock().session(sessionid).map(|s| (s.root, s.root_path.clone()));
            let (root, path) = found.unwrap_or((crate::meta::ROOT, b"/".to_vec()));
            match regrant(conn, sessionid, &path, version) {
                Some(grant) => {
                    conn.session = Some(SessionView { id: sessionid, root, grant, client_version: version });
                    conn.send(0, MaToCl::RegisterStatus(Status::OK));
                }
                None => conn.send(0, MaToCl::RegisterStatus(Status::EACCES)),
            }
        }
        ClToMa::NewMetaSession { .. } => {
            conn.send(0, MaToCl::RegisterStatus(Status::ENOTSUP));
        }
        ClToMa::CloseSession { sessionid, .. } => {
            let (_, after) = conn.shared.change(|meta| meta.close_session(sessionid, unix_now()));
            conn.shared.lists().grants.remove(&sessionid);
            conn.send(after, MaToCl::RegisterStatus(Status::OK));
            conn.session = None;
        }
        other => return Err(Error::peer(&conn.peer, format!("not a registration: {other:?}"))),
    }
    Ok(())
}

fn session_reply(sessionid: u32, metaid: u64, grant: &Grant) -> Session {
    Session {
        version: elkfs_proto::VERSION,
        sessionid,
        metaid,
        sesflags: grant.sesflags,
        umask: grant.umask,
        rootuid: grant.rootuid,
        rootgid: grant.rootgid,
        mapalluid: grant.mapalluid,
        mapallgid: grant.mapallgid,
        mingoal: grant.mingoal,
        maxgoal: grant.maxgoal,
        mintrashtime: grant.mintrashtime,
        maxtrashtime: grant.maxtrashtime,
        disables: grant.disables,
    }
}
