//! A bare client-protocol session with the master: one blocking TCP
//! connection, registered with `NEWSESSION`, that keeps up to `depth`
//! requests in flight and matches replies by message id.
//!
//! Blocking sockets on plain threads, not tokio: each session is what one
//! FUSE worker thread of mfsmount is, and a thread per session keeps the
//! latency a request's own (no runtime scheduling in between).

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use elkfs_proto::client::{ClToMa, Cred, DirForm, MaToCl};
use elkfs_proto::frame::Encode;
use elkfs_proto::{Header, HEADER_LEN};

use crate::stats::Latency;

/// The root directory's inode.
pub const ROOT_INODE: u32 = 1;
/// No single request may take longer (a stalled master fails the bench
/// instead of hanging it).
const REPLY_LIMIT: Duration = Duration::from_secs(60);
/// Replies the bench reads are small; anything larger is a broken stream.
const REPLY_MAX_PAYLOAD: usize = 1 << 20;
/// The most requests one session may keep in flight: their packets (under
/// 100 bytes each) must fit in the socket buffers, so writing the next one
/// never waits on the master while the master waits on us to read.
pub const MAX_DEPTH: usize = 256;

/// Root: the bench owns every file it makes, and permission checks cost
/// the same on every master.
pub fn root() -> Cred {
    Cred { uid: 0, gids: vec![0] }
}

/// Runs `f` on a thread that has entered the network namespace at `ns`
/// (sockets it opens stay in that namespace when used from elsewhere).
pub fn in_netns<T: Send>(ns: &Path, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(ns).with_context(|| format!("opening {}", ns.display()))?;
            // SAFETY: setns affects only this thread, with a descriptor we own.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                bail!("setns {}: {}", ns.display(), std::io::Error::last_os_error());
            }
            f()
        })
        .join()
        .map_err(|_| anyhow!("the namespace thread panicked"))?
    })
}

/// One registered session.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_msgid: u32,
}

impl Conn {
    /// Connects to `addr` (from inside the cluster's namespace) and
    /// registers a session on `/`.
    pub fn open(addr: SocketAddr, info: &str) -> Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to the master at {addr}"))?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        stream.set_read_timeout(Some(REPLY_LIMIT)).context("read timeout")?;
        let writer = stream.try_clone().context("cloning the socket")?;
        let mut conn = Conn { reader: BufReader::new(stream), writer, next_msgid: 1 };
        let mut info = info.as_bytes().to_vec();
        info.push(0);
        let hello = ClToMa::NewSession {
            version: elkfs_proto::VERSION,
            info,
            path: b"/\0".to_vec(),
            resume: None,
            digest: None,
        };
        conn.send(&hello)?;
        match conn.recv()? {
            MaToCl::Session(_) => Ok(conn),
            other => bail!("NEWSESSION to {addr} answered {other:?}"),
        }
    }

    /// A fresh message id (0 is the keep-alive's).
    pub fn msgid(&mut self) -> u32 {
        let id = self.next_msgid;
        self.next_msgid = self.next_msgid.checked_add(1).unwrap_or(1);
        id
    }

    fn send(&mut self, msg: &ClToMa) -> Result<()> {
        self.writer.write_all(&msg.to_packet()).context("sending a request")
    }

    /// The next reply that is not a keep-alive.
    fn recv(&mut self) -> Result<MaToCl> {
        loop {
            let mut head = [0u8; HEADER_LEN];
            self.reader.read_exact(&mut head).context("reading a reply header")?;
            let h = Header::parse_limited(&head, REPLY_MAX_PAYLOAD).context("reply header")?;
            let mut payload = vec![0u8; h.len as usize];
            self.reader.read_exact(&mut payload).context("reading a reply")?;
            if h.kind == 0 {
                continue;
            }
            return MaToCl::decode(h.kind, &payload, DirForm::Types).context("decoding a reply");
        }
    }

    /// One request, its reply; an error status is an error.
    pub fn call(&mut self, msg: &ClToMa) -> Result<MaToCl> {
        self.send(msg)?;
        let reply = self.recv()?;
        fail_on_status(&reply)?;
        Ok(reply)
    }

    /// Sends `count` requests built by `make(index, msgid)`, at most
    /// `depth` unanswered at a time, records each one's latency and hands
    /// each reply to `done(index, reply)`. Any error status stops the run.
    pub fn pipeline(
        &mut self,
        count: usize,
        depth: usize,
        latency: &mut Latency,
        mut make: impl FnMut(usize, u32) -> ClToMa,
        mut done: impl FnMut(usize, MaToCl) -> Result<()>,
    ) -> Result<()> {
        assert!((1..=MAX_DEPTH).contains(&depth), "depth {depth} outside 1..={MAX_DEPTH}");
        let mut in_flight: HashMap<u32, (usize, Instant)> = HashMap::with_capacity(depth);
        let mut sent = 0usize;
        let mut answered = 0usize;
        while answered < count {
            while sent < count && in_flight.len() < depth {
                let msgid = self.msgid();
                let msg = make(sent, msgid);
                debug_assert_eq!(msg.msgid(), Some(msgid), "the request carries its msgid");
                in_flight.insert(msgid, (sent, Instant::now()));
                self.send(&msg)?;
                sent += 1;
            }
            let reply = self.recv()?;
            let msgid = reply.msgid().ok_or_else(|| anyhow!("a reply without a msgid: {reply:?}"))?;
            let (index, at) = in_flight.remove(&msgid).ok_or_else(|| anyhow!("a reply to msgid {msgid}, not asked"))?;
            latency.record(at.elapsed());
            fail_on_status(&reply).with_context(|| format!("request {index}"))?;
            done(index, reply)?;
            answered += 1;
        }
        Ok(())
    }
}

fn fail_on_status(reply: &MaToCl) -> Result<()> {
    match reply {
        MaToCl::Status { kind, status, .. } if !status.is_ok() => bail!("reply {kind}: {status}"),
        MaToCl::RegisterStatus(status) if !status.is_ok() => bail!("registration: {status}"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_statuses_are_errors() {
        let bad = MaToCl::Status { kind: 401, msgid: 1, status: elkfs_proto::Status::ENOENT };
        assert!(fail_on_status(&bad).is_err());
        let ok = MaToCl::Status { kind: 401, msgid: 1, status: elkfs_proto::Status::OK };
        assert!(fail_on_status(&ok).is_ok());
        assert!(fail_on_status(&MaToCl::Removed { kind: 411, msgid: 1, inode: 5 }).is_ok());
    }
}
