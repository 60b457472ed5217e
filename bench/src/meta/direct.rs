//! The four metadata phases spoken straight to the master: N sessions,
//! each its own connection and thread, each in its own directory.
//!
//! A phase starts on all sessions at once (a barrier) and lasts from the
//! first start to the last finish, so a slow session counts against the
//! master rather than vanishing in an average. Requests are counted one
//! by one: the STAT phase sends a LOOKUP and a GETATTR per file, two ops.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Barrier;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use elkfs_proto::client::{ClToMa, MaToCl};

use super::client::{in_netns, root, Conn, ROOT_INODE};
use super::{Phase, Rate};
use crate::stats::Latency;

/// Mode of the files made: a plain 0644 file, no umask (mfsmount sends the
/// caller's umask; 0 makes the mode the same on every master).
const FILE_MODE: u16 = 0o644;
const DIR_MODE: u16 = 0o755;

/// One session's connection, directory and the inodes of its files.
pub struct Session {
    conn: Conn,
    dir: u32,
    inodes: Vec<u32>,
}

/// Opens `n` sessions in the namespace `ns`, each with a fresh directory
/// `PREFIX-i` under the root.
pub fn open_sessions(ns: &Path, addr: SocketAddr, n: usize, prefix: &str) -> Result<Vec<Session>> {
    in_netns(ns, || {
        (0..n)
            .map(|i| {
                let mut conn = Conn::open(addr, &format!("elkfs bench meta {prefix} {i}"))?;
                let msgid = conn.msgid();
                let mkdir = ClToMa::Mkdir {
                    msgid,
                    parent: ROOT_INODE,
                    name: format!("{prefix}-{i}").into_bytes(),
                    mode: DIR_MODE,
                    umask: 0,
                    cred: root(),
                    copysgid: 0,
                };
                let dir = match conn.call(&mkdir)? {
                    MaToCl::Entry { inode, .. } => inode,
                    other => bail!("MKDIR answered {other:?}"),
                };
                Ok(Session { conn, dir, inodes: Vec::new() })
            })
            .collect()
    })
}

/// Unlinked files go away at once instead of into the trash, on every
/// master alike (new files inherit the trash time of their directory).
pub fn disable_trash(ns: &Path, addr: SocketAddr) -> Result<()> {
    in_netns(ns, || {
        let mut conn = Conn::open(addr, "elkfs bench meta setup")?;
        let msgid = conn.msgid();
        let set = ClToMa::SetTrashTime { msgid, inode: ROOT_INODE, uid: 0, trashtime: 0, smode: 0 };
        conn.call(&set)?;
        Ok(())
    })
}

fn name(prefix: char, j: usize) -> Vec<u8> {
    format!("{prefix}{j:07}").into_bytes()
}

/// Runs `phase` for `files` files on every session at once.
pub fn run_phase(sessions: &mut [Session], phase: Phase, files: usize, depth: usize) -> Result<Rate> {
    let barrier = Barrier::new(sessions.len());
    // Made before the threads: nothing may fail before the barrier, or the
    // other sessions would wait on it forever.
    let latencies = sessions.iter().map(|_| Latency::new()).collect::<Result<Vec<_>>>()?;
    let outcomes: Vec<Result<(Instant, Instant, Latency)>> = std::thread::scope(|s| {
        let handles: Vec<_> = sessions
            .iter_mut()
            .zip(latencies)
            .map(|(session, mut latency)| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    session_phase(session, phase, files, depth, &mut latency)?;
                    Ok((start, Instant::now(), latency))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a session thread panicked")))).collect()
    });
    Rate::combine(outcomes)
}

/// One session's share of a phase.
fn session_phase(s: &mut Session, phase: Phase, files: usize, depth: usize, latency: &mut Latency) -> Result<()> {
    let dir = s.dir;
    let cred = root();
    match phase {
        Phase::Create => {
            s.inodes = vec![0; files];
            let inodes = &mut s.inodes;
            s.conn.pipeline(
                files,
                depth,
                latency,
                |j, msgid| ClToMa::Create {
                    msgid,
                    parent: dir,
                    name: name('f', j),
                    mode: FILE_MODE,
                    umask: 0,
                    cred: cred.clone(),
                },
                |j, reply| match reply {
                    MaToCl::Create { inode, .. } => {
                        inodes[j] = inode;
                        Ok(())
                    }
                    other => bail!("CREATE answered {other:?}"),
                },
            )
        }
        Phase::Stat => {
            assert_eq!(s.inodes.len(), files, "STAT follows CREATE");
            let inodes = &s.inodes;
            s.conn.pipeline(
                2 * files,
                depth,
                latency,
                |k, msgid| {
                    let j = k / 2;
                    if k % 2 == 0 {
                        ClToMa::Lookup { msgid, parent: dir, name: name('f', j), cred: cred.clone() }
                    } else {
                        ClToMa::GetAttr { msgid, inode: inodes[j], opened: 0, uid: 0, gid: 0 }
                    }
                },
                |k, reply| match reply {
                    MaToCl::Lookup { inode, .. } if inode == inodes[k / 2] => Ok(()),
                    MaToCl::Attr { .. } => Ok(()),
                    other => bail!("STAT of file {} answered {other:?}", k / 2),
                },
            )
        }
        Phase::Rename => s.conn.pipeline(
            files,
            depth,
            latency,
            |j, msgid| ClToMa::Rename {
                msgid,
                src_parent: dir,
                src_name: name('f', j),
                dst_parent: dir,
                dst_name: name('r', j),
                cred: cred.clone(),
            },
            |_, reply| match reply {
                MaToCl::Entry { .. } | MaToCl::Status { .. } => Ok(()),
                other => bail!("RENAME answered {other:?}"),
            },
        ),
        Phase::Unlink => s.conn.pipeline(
            files,
            depth,
            latency,
            |j, msgid| ClToMa::Unlink { msgid, parent: dir, name: name('r', j), cred: cred.clone() },
            |_, reply| match reply {
                MaToCl::Removed { .. } | MaToCl::Status { .. } => Ok(()),
                other => bail!("UNLINK answered {other:?}"),
            },
        ),
    }
}

/// Every phase in order on `sessions`, `files` files each.
pub fn run_all(sessions: &mut [Session], files: usize, depth: usize, master: u32) -> Result<Vec<(Phase, Rate)>> {
    let mut out = Vec::new();
    for phase in Phase::ALL {
        crate::interrupt::check()?;
        let rate = super::with_master_cpu(master, || run_phase(sessions, phase, files, depth))?;
        tracing::info!(
            "  direct {}: {} ops in {:.2} s, {:.0} ops/s, p50 {:.0} us, p99 {:.0} us",
            phase.key(),
            rate.ops,
            rate.seconds,
            rate.ops_s(),
            rate.p50_us,
            rate.p99_us
        );
        out.push((phase, rate));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_and_differ_by_prefix() {
        assert_eq!(name('f', 42), b"f0000042".to_vec());
        assert!(name('f', 9) < name('f', 10), "zero-padded names sort by number");
        assert_ne!(name('f', 1), name('r', 1));
    }
}
