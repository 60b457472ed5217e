//! One TCP connection to the master's client port: framed sends, framed
//! reads, and the registration exchanges (new session, reconnect).
//!
//! Registration packets carry no msgid, so they are done here, before the
//! connection is handed to the receiver thread; afterwards this module
//! only frames bytes.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use elkfs_proto::client::{ids, ClToMa, DirForm, MaToCl, Resume, Session};
use elkfs_proto::frame::Encode;
use elkfs_proto::{Header, Status, HEADER_LEN};

use crate::error::{Error, Result};

/// Replies from the master have no size limit in 3.0.117; this one only
/// keeps a corrupt header from allocating gigabytes.
const MAX_REPLY: usize = 256 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a registration exchange may take.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to register.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// The exported folder to mount, `/` for the whole tree.
    pub subfolder: String,
    /// Free text the master shows in its session list (the mount point).
    pub info: String,
}

impl Target {
    pub fn name(&self) -> String {
        format!("master {}:{}", self.host, self.port)
    }
}

pub fn connect(target: &Target) -> Result<TcpStream> {
    let what = target.name();
    let addrs =
        (target.host.as_str(), target.port).to_socket_addrs().map_err(|e| Error::io(format!("resolve {what}"), e))?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                s.set_nodelay(true).map_err(|e| Error::io(format!("nodelay {what}"), e))?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"));
    Err(Error::io(format!("connect {what}"), e))
}

pub fn send(stream: &mut TcpStream, msg: &ClToMa, peer: &str) -> Result<()> {
    stream.write_all(&msg.to_packet()).map_err(|e| Error::io(format!("send to {peer}"), e))
}

/// Reads one frame: its kind and payload.
pub fn recv_frame(stream: &mut impl Read, peer: &str) -> Result<(u32, Vec<u8>)> {
    let mut head = [0u8; HEADER_LEN];
    stream.read_exact(&mut head).map_err(|e| Error::io(format!("receive from {peer}"), e))?;
    let h = Header::parse_limited(&head, MAX_REPLY).map_err(|e| Error::proto(peer, e))?;
    let mut payload = vec![0u8; h.len as usize];
    stream.read_exact(&mut payload).map_err(|e| Error::io(format!("receive from {peer}"), e))?;
    Ok((h.kind, payload))
}

/// Reads the registration reply, skipping NOPs the master may send first.
fn recv_register(stream: &mut TcpStream, peer: &str) -> Result<MaToCl> {
    loop {
        let (kind, payload) = recv_frame(stream, peer)?;
        if kind == ids::NOP {
            continue;
        }
        if kind != ids::REGISTER_REPLY {
            return Err(Error::peer(peer, format!("message {kind} before the registration reply")));
        }
        return MaToCl::decode(kind, &payload, DirForm::Types).map_err(|e| Error::proto(peer, e));
    }
}

/// Opens a new session, or resumes `resume` when the master still knows
/// it (the master decides; a different metaid gives a new session).
pub fn new_session(target: &Target, resume: Option<Resume>) -> Result<(TcpStream, Session)> {
    let peer = target.name();
    let mut stream = connect(target)?;
    set_timeout(&stream, Some(REGISTER_TIMEOUT), &peer)?;
    let msg = ClToMa::NewSession {
        version: elkfs_proto::VERSION,
        info: nul_terminated(&target.info),
        path: nul_terminated(&target.subfolder),
        resume,
        digest: None,
    };
    send(&mut stream, &msg, &peer)?;
    match recv_register(&mut stream, &peer)? {
        MaToCl::Session(s) => {
            set_timeout(&stream, None, &peer)?;
            Ok((stream, s))
        }
        MaToCl::RegisterStatus(status) => Err(Error::Status { op: "register", status }),
        other => Err(Error::peer(&peer, format!("unexpected registration reply {other:?}"))),
    }
}

/// What a reconnect attempt found.
pub enum Reconnect {
    Resumed(TcpStream),
    /// The master knows the session but wants a full registration with it
    /// (`EPERM`), or does not know it (`BADSESSIONID`).
    Refused(Status),
}

pub fn reconnect(target: &Target, session: &Session) -> Result<Reconnect> {
    let peer = target.name();
    let mut stream = connect(target)?;
    set_timeout(&stream, Some(REGISTER_TIMEOUT), &peer)?;
    let msg =
        ClToMa::Reconnect { sessionid: session.sessionid, version: elkfs_proto::VERSION, metaid: Some(session.metaid) };
    send(&mut stream, &msg, &peer)?;
    let status = match recv_register(&mut stream, &peer)? {
        MaToCl::Reconnected { status, .. } | MaToCl::RegisterStatus(status) => status,
        other => return Err(Error::peer(&peer, format!("unexpected reconnect reply {other:?}"))),
    };
    if status.is_ok() {
        set_timeout(&stream, None, &peer)?;
        Ok(Reconnect::Resumed(stream))
    } else {
        Ok(Reconnect::Refused(status))
    }
}

/// Tells the master the session is over, so it forgets it at once instead
/// of keeping it for the session timeout. Best effort.
pub fn close_session(target: &Target, session: &Session) {
    let peer = target.name();
    let Ok(mut stream) = connect(target) else { return };
    if set_timeout(&stream, Some(Duration::from_secs(2)), &peer).is_err() {
        return;
    }
    let msg = ClToMa::CloseSession { sessionid: session.sessionid, metaid: Some(session.metaid) };
    if send(&mut stream, &msg, &peer).is_ok() {
        let _ = recv_register(&mut stream, &peer);
    }
}

fn set_timeout(stream: &TcpStream, t: Option<Duration>, peer: &str) -> Result<()> {
    stream.set_read_timeout(t).map_err(|e| Error::io(format!("timeout on {peer}"), e))
}

fn nul_terminated(text: &str) -> Vec<u8> {
    let mut v = text.as_bytes().to_vec();
    v.push(0);
    v
}
