//! The session with the master: requests by msgid, replies dispatched to
//! their callers, keep-alive, the list of open inodes, and reconnection.
//!
//! Fault model: the connection can drop at any time (master restart,
//! network). The receiver thread then fails every pending request with
//! `Disconnected`, the keeper thread reconnects (RECONNECT with the session
//! id; on `EPERM` a NEWSESSION that names the old session), and callers
//! resend. A request whose reply was lost may therefore run twice; like
//! mfsmount, we accept that (an `EEXIST` on a repeated create).
//! When the master stays away longer than `give_up`, the session is lost
//! for good and every call fails with [`Error::SessionLost`].

use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use elkfs_proto::client::{ids, ClToMa, DirForm, MaToCl, Resume, Session};
use elkfs_proto::Status;

use super::amtime::Stamps;
use super::link::{self, Reconnect, Target};
use crate::error::{Error, Result};

/// Silence after which a NOP goes out (the master drops a client after 10 s).
const NOP_AFTER: Duration = Duration::from_secs(2);
/// How often the open inodes are listed to the master.
const SUSTAIN_EVERY: Duration = Duration::from_secs(30);
/// The longest a reply may take: the master holds WRITE_CHUNK and
/// READ_CHUNK up to 30 s while a chunk is locked.
const REPLY_TIMEOUT: Duration = Duration::from_secs(70);
/// How often gathered modification times go out (mfsmount: each second).
const AMTIME_EVERY: Duration = Duration::from_secs(1);

/// Something the master pushes (msgid 0) that the caches must hear.
pub type PushHandler = Box<dyn Fn(&MaToCl) + Send + Sync>;

type Waiter = SyncSender<Result<MaToCl>>;

/// Where the MooseFS tools reach the master, and as which session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub ip: std::net::Ipv4Addr,
    pub port: u16,
    pub session: u32,
    pub version: u32,
}

struct Link {
    stream: Option<TcpStream>,
    /// Bumped per connection, so a dead receiver does not tear down its
    /// successor.
    generation: u64,
    last_send: Instant,
}

struct Shared {
    target: Target,
    give_up: Duration,
    session: Mutex<Session>,
    link: Mutex<Link>,
    link_up: Condvar,
    pending: Mutex<HashMap<u32, (DirForm, Waiter)>>,
    next_msgid: AtomicU32,
    open_inodes: Mutex<HashMap<u32, u32>>,
    mtimes: Stamps,
    push: Mutex<Option<PushHandler>>,
    lost: Mutex<Option<String>>,
    closing: AtomicBool,
}

/// A registered session; cheap to clone, shared by every thread.
#[derive(Clone)]
pub struct Master {
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking holder leaves consistent data here (maps and counters
    // updated in one statement), so the poison flag is not worth dying for.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Master {
    /// Registers a new session and starts the receiver and keeper threads.
    pub fn connect(target: Target, give_up: Duration) -> Result<Master> {
        let (stream, session) = link::new_session(&target, None)?;
        tracing::info!(
            "session {} with {} (master {})",
            session.sessionid,
            target.name(),
            elkfs_proto::version_string(session.version)
        );
        let shared = Arc::new(Shared {
            target,
            give_up,
            session: Mutex::new(session),
            link: Mutex::new(Link { stream: None, generation: 0, last_send: Instant::now() }),
            link_up: Condvar::new(),
            pending: Mutex::new(HashMap::new()),
            next_msgid: AtomicU32::new(1),
            open_inodes: Mutex::new(HashMap::new()),
            mtimes: Stamps::default(),
            push: Mutex::new(None),
            lost: Mutex::new(None),
            closing: AtomicBool::new(false),
        });
        install(&shared, stream)?;
        let keeper = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("master-keeper".into())
            .spawn(move || keep(&keeper))
            .map_err(|e| Error::io("spawn master keeper", e))?;
        Ok(Master { shared })
    }

    pub fn session(&self) -> Session {
        *lock(&self.shared.session)
    }

    /// The master's address on the current connection, this session and
    /// the master's version: what the MooseFS tools need to reach it.
    pub fn location(&self) -> Option<Location> {
        let peer = lock(&self.shared.link).stream.as_ref()?.peer_addr().ok()?;
        let std::net::SocketAddr::V4(v4) = peer else { return None };
        let s = self.session();
        Some(Location { ip: *v4.ip(), port: v4.port(), session: s.sessionid, version: s.version })
    }

    /// Why the session ended for good, if it did.
    pub fn lost(&self) -> Option<String> {
        lock(&self.shared.lost).clone()
    }

    pub fn set_push_handler(&self, handler: PushHandler) {
        *lock(&self.shared.push) = Some(handler);
    }

    /// Counts an open of `inode`: the master keeps open files (even when
    /// unlinked) while some session lists them.
    pub fn acquire(&self, inode: u32) {
        *lock(&self.shared.open_inodes).entry(inode).or_insert(0) += 1;
    }

    pub fn release(&self, inode: u32) {
        let mut open = lock(&self.shared.open_inodes);
        if let Some(n) = open.get_mut(&inode) {
            *n -= 1;
            if *n == 0 {
                open.remove(&inode);
            }
        }
    }

    /// `inode` was modified at `mtime` (Unix seconds), reported as clients
    /// from 3.0.74 on do. Gathered and sent about once a second (see
    /// [`super::amtime`]).
    pub fn modified(&self, inode: u32, mtime: u32) {
        self.shared.mtimes.note(inode, mtime);
    }

    /// `mtime` from the master, or a later one this mount has not sent yet.
    pub fn mtime_seen_here(&self, inode: u32, mtime: u32) -> u32 {
        self.shared.mtimes.overlay(inode, mtime)
    }

    /// An explicit mtime was set: drop any gathered one for `inode`.
    pub fn mtime_set(&self, inode: u32) {
        self.shared.mtimes.forget(inode);
    }

    /// Sends a request built for a fresh msgid and waits for its reply.
    /// A reply in the error form becomes `Error::Status`; a lost connection
    /// is retried on the next one until the session is lost.
    pub fn call(&self, op: &'static str, form: DirForm, build: impl Fn(u32) -> ClToMa) -> Result<MaToCl> {
        let deadline = Instant::now() + self.shared.give_up + REPLY_TIMEOUT;
        loop {
            if let Some(why) = self.lost() {
                return Err(Error::SessionLost(why));
            }
            match self.start(op, form, &build).and_then(|pending| self.finish(pending)) {
                Err(Error::Io { .. }) if Instant::now() < deadline => {
                    tracing::debug!("{op}: link down, waiting for the session to resume");
                    self.wait_link(deadline);
                }
                reply => return reply,
            }
        }
    }

    /// Sends a request now and leaves its answer for [`Master::finish`]:
    /// for a request that must reach the master before whatever the caller
    /// does next, but whose answer nobody needs to wait for. Not retried on
    /// a new connection (that is [`Master::call`]'s job).
    pub fn start(&self, op: &'static str, form: DirForm, build: impl Fn(u32) -> ClToMa) -> Result<Pending> {
        let msgid = self.next_msgid();
        let rx = self.register_waiter(msgid, form);
        if let Err(e) = self.send(&build(msgid)) {
            lock(&self.shared.pending).remove(&msgid);
            return Err(e);
        }
        Ok(Pending { op, msgid, rx })
    }

    /// The answer to a request sent with [`Master::start`].
    pub fn finish(&self, pending: Pending) -> Result<MaToCl> {
        let Pending { op, msgid, rx } = pending;
        match rx.recv_timeout(REPLY_TIMEOUT) {
            Ok(Ok(MaToCl::Status { status, .. })) if !status.is_ok() => Err(Error::Status { op, status }),
            Ok(reply) => reply,
            Err(RecvTimeoutError::Timeout) => {
                lock(&self.shared.pending).remove(&msgid);
                Err(Error::Timeout { op })
            }
            Err(RecvTimeoutError::Disconnected) => Err(disconnected()),
        }
    }

    fn next_msgid(&self) -> u32 {
        loop {
            let id = self.shared.next_msgid.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                return id;
            }
        }
    }

    fn register_waiter(&self, msgid: u32, form: DirForm) -> Receiver<Result<MaToCl>> {
        let (tx, rx) = sync_channel(1);
        lock(&self.shared.pending).insert(msgid, (form, tx));
        rx
    }

    /// Sends on the current connection; an error when there is none.
    fn send(&self, msg: &ClToMa) -> Result<()> {
        send_on(&self.shared, msg)
    }

    fn wait_link(&self, deadline: Instant) {
        let mut link = lock(&self.shared.link);
        while link.stream.is_none() && lock(&self.shared.lost).is_none() {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let wait = (deadline - now).min(Duration::from_millis(500));
            link = self.shared.link_up.wait_timeout(link, wait).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Ends the session: the master forgets it at once.
    pub fn close(&self) {
        send_mtimes(&self.shared);
        self.shared.closing.store(true, Ordering::SeqCst);
        let session = self.session();
        if let Some(s) = lock(&self.shared.link).stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        link::close_session(&self.shared.target, &session);
        *lock(&self.shared.lost) = Some("session closed".into());
    }
}

/// A request on its way; see [`Master::start`].
pub struct Pending {
    op: &'static str,
    msgid: u32,
    rx: Receiver<Result<MaToCl>>,
}

fn disconnected() -> Error {
    Error::io("master link", std::io::Error::from(std::io::ErrorKind::ConnectionReset))
}

fn send_on(shared: &Shared, msg: &ClToMa) -> Result<()> {
    let mut link = lock(&shared.link);
    let peer = shared.target.name();
    let Some(stream) = link.stream.as_mut() else { return Err(disconnected()) };
    let r = link::send(stream, msg, &peer);
    if r.is_ok() {
        link.last_send = Instant::now();
    }
    r
}

/// Makes `stream` the current connection and starts its receiver.
fn install(shared: &Arc<Shared>, stream: TcpStream) -> Result<()> {
    let reader = stream.try_clone().map_err(|e| Error::io("clone master socket", e))?;
    let generation = {
        let mut link = lock(&shared.link);
        link.generation += 1;
        link.stream = Some(stream);
        link.last_send = Instant::now();
        link.generation
    };
    shared.link_up.notify_all();
    let rx_shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name("master-recv".into())
        .spawn(move || receive(&rx_shared, reader, generation))
        .map_err(|e| Error::io("spawn master receiver", e))?;
    Ok(())
}

/// Reads replies until the connection fails, then marks the link down and
/// fails what was pending on it.
fn receive(shared: &Shared, stream: TcpStream, generation: u64) {
    let peer = shared.target.name();
    // A reply and its header in one system call; replies that arrive
    // together (several workers' calls) in one too.
    let mut stream = std::io::BufReader::with_capacity(64 << 10, stream);
    let err = loop {
        let (kind, payload) = match link::recv_frame(&mut stream, &peer) {
            Ok(f) => f,
            Err(e) => break e,
        };
        if let Err(e) = dispatch(shared, kind, &payload) {
            break e;
        }
    };
    if !shared.closing.load(Ordering::SeqCst) {
        tracing::warn!("{err}; reconnecting");
    }
    {
        let mut link = lock(&shared.link);
        if link.generation == generation {
            if let Some(s) = link.stream.take() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
    for (_, (_, tx)) in lock(&shared.pending).drain() {
        let _ = tx.try_send(Err(disconnected()));
    }
}

fn dispatch(shared: &Shared, kind: u32, payload: &[u8]) -> Result<()> {
    let peer = shared.target.name();
    let msgid = if payload.len() >= 4 && kind != ids::NOP {
        u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
    } else {
        0
    };
    let waiter = if msgid != 0 { lock(&shared.pending).remove(&msgid) } else { None };
    let form = waiter.as_ref().map_or(DirForm::Types, |(f, _)| *f);
    let msg = MaToCl::decode(kind, payload, form).map_err(|e| Error::proto(&peer, e));
    match waiter {
        Some((_, tx)) => {
            let _ = tx.try_send(msg);
            Ok(())
        }
        None => {
            let msg = msg?;
            if !matches!(msg, MaToCl::Nop { .. }) {
                if let Some(h) = lock(&shared.push).as_ref() {
                    h(&msg);
                }
            }
            Ok(())
        }
    }
}

/// The keeper: NOPs, open-inode lists, and reconnection.
fn keep(shared: &Arc<Shared>) {
    let mut last_sustain = Instant::now();
    let mut last_mtimes = Instant::now();
    let mut down_since: Option<Instant> = None;
    while !shared.closing.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(250));
        let up = lock(&shared.link).stream.is_some();
        if up {
            down_since = None;
            let idle = lock(&shared.link).last_send.elapsed();
            if last_mtimes.elapsed() >= AMTIME_EVERY {
                last_mtimes = Instant::now();
                send_mtimes(shared);
            }
            if idle >= NOP_AFTER {
                let _ = send_on(shared, &ClToMa::Nop { msgid: 0 });
            }
            if last_sustain.elapsed() >= SUSTAIN_EVERY {
                last_sustain = Instant::now();
                let inodes: Vec<u32> = lock(&shared.open_inodes).keys().copied().collect();
                let _ = send_on(shared, &ClToMa::SustainedInodes(inodes));
            }
            continue;
        }
        let since = *down_since.get_or_insert_with(Instant::now);
        match resume(shared) {
            Ok(()) => {
                tracing::info!("session {} resumed", lock(&shared.session).sessionid);
                let inodes: Vec<u32> = lock(&shared.open_inodes).keys().copied().collect();
                let _ = send_on(shared, &ClToMa::SustainedInodes(inodes));
            }
            Err(Error::SessionLost(why)) => return lose(shared, why),
            Err(e) if since.elapsed() >= shared.give_up => {
                return lose(shared, format!("master unreachable for {:?}: {e}", shared.give_up));
            }
            Err(e) => {
                tracing::debug!("reconnect: {e}");
                std::thread::sleep(Duration::from_millis(750));
            }
        }
    }
}

/// Sends the gathered modification times; kept for the next try when the
/// link is down.
fn send_mtimes(shared: &Shared) {
    let list = shared.mtimes.due();
    if list.is_empty() {
        return;
    }
    if send_on(shared, &ClToMa::AmtimeInodes(list.clone())).is_err() {
        shared.mtimes.unsent(&list);
    }
}

fn lose(shared: &Shared, why: String) {
    tracing::error!("session lost: {why}");
    *lock(&shared.lost) = Some(why);
    shared.link_up.notify_all();
    for (_, (_, tx)) in lock(&shared.pending).drain() {
        let _ = tx.try_send(Err(disconnected()));
    }
}

/// One attempt to get the session back on a new connection.
fn resume(shared: &Arc<Shared>) -> Result<()> {
    let session = *lock(&shared.session);
    let stream = match link::reconnect(&shared.target, &session)? {
        Reconnect::Resumed(stream) => stream,
        Reconnect::Refused(status) if status == Status::EPERM || status == Status::BADSESSIONID => {
            let resume = Resume { sessionid: session.sessionid, metaid: Some(session.metaid) };
            let (stream, fresh) = link::new_session(&shared.target, Some(resume))?;
            if fresh.metaid != session.metaid {
                return Err(Error::SessionLost("the master holds a different file system now".into()));
            }
            if fresh.sessionid != session.sessionid {
                tracing::warn!("session {} replaced by {}", session.sessionid, fresh.sessionid);
            }
            *lock(&shared.session) = fresh;
            stream
        }
        Reconnect::Refused(status) => return Err(Error::SessionLost(format!("reconnect refused: {status}"))),
    };
    install(shared, stream)
}
