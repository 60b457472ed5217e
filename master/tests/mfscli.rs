//! The real `mfscli` 3.0.117 against `answer()`: a small TCP server on
//! 127.0.0.1 serves the replies for a made-up view, and mfscli must parse
//! every section we claim to support (master info, chunkservers,
//! metaloggers, mounts) without a traceback and show what the view holds.
//!
//! Needs `/usr/bin/mfscli` (Debian package `moosefs-cli`); its absence fails
//! the test loudly rather than skipping it.

use elkfs_master::admin::{answer, matrix_with, AdminView, MetaloggerView, NamespaceStats, ServerView, SessionView};
use elkfs_proto::{Header, HEADER_LEN};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const MFSCLI: &str = "/usr/bin/mfscli";
/// Bound for one mfscli run and for the whole server.
const LIMIT: Duration = Duration::from_secs(60);

fn view() -> AdminView {
    let mut v = AdminView::new();
    for (i, total) in [(1u8, 500u64 << 30), (2, 250 << 30)] {
        v.servers.push(ServerView {
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, i), 9422),
            csid: i as u16,
            version: elkfs_proto::VERSION,
            used_bytes: 3 << 30,
            total_bytes: total,
            chunks: 1234 + i as u32,
            registered: true,
            ..ServerView::default()
        });
    }
    v.servers.push(ServerView {
        addr: SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 9), 9422),
        csid: 9,
        ..ServerView::default()
    });
    v.metaloggers.push(MetaloggerView { addr: Ipv4Addr::new(10, 77, 0, 20), version: elkfs_proto::VERSION });
    v.sessions.push(SessionView {
        id: 4242,
        peer: Ipv4Addr::new(10, 77, 0, 30),
        version: elkfs_proto::VERSION,
        info: "/mnt/elkfs-test".into(),
        open_files: 5,
        ..SessionView::default()
    });
    v.namespace = NamespaceStats {
        inodes: 100,
        dirs: 10,
        files: 90,
        chunks: 2469,
        meta_version: 31337,
        last_save_time: 1_700_000_000,
        last_save_ms: 120,
        ..NamespaceStats::default()
    };
    v.all_copies = matrix_with(&[(2, 2, 2400), (2, 1, 69)]);
    v.regular_copies = v.all_copies;
    v
}

/// One connection: request, reply, until the peer leaves or sends something
/// we do not answer (then we close, as the real master does).
fn serve(mut s: TcpStream, view: &AdminView) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    loop {
        let mut head = [0u8; HEADER_LEN];
        if s.read_exact(&mut head).is_err() {
            return;
        }
        let Ok(h) = Header::parse_limited(&head, 1 << 16) else { return };
        let mut payload = vec![0; h.len as usize];
        if s.read_exact(&mut payload).is_err() {
            return;
        }
        let Some(reply) = answer(h.kind, &payload, view) else { return };
        if s.write_all(&reply).is_err() {
            return;
        }
    }
}

/// The server thread stops when the guard drops (bounded by [`LIMIT`]).
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start(view: AdminView) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let view = Arc::new(view);
        let thread = thread::spawn(move || {
            let until = Instant::now() + LIMIT;
            while !flag.load(Ordering::Relaxed) && Instant::now() < until {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let v = view.clone();
                        thread::spawn(move || serve(s, &v));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Server { port, stop, thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs mfscli with `args`, killing it past [`LIMIT`]; returns its stdout.
fn mfscli(port: u16, args: &[&str]) -> String {
    assert!(std::path::Path::new(MFSCLI).exists(), "{MFSCLI} is missing: install moosefs-cli");
    let mut child = Command::new(MFSCLI)
        .args(["-H", "127.0.0.1", "-P", &port.to_string(), "-p", "-n"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mfscli");
    let until = Instant::now() + LIMIT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for mfscli") {
            break st;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mfscli {args:?} ran past {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read stdout");
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("read stderr");
    assert!(status.success(), "mfscli {args:?} failed: {status}\n{out}\n{err}");
    for bad in ["Traceback", "unrecognized answer", "communication error", "Can't detect"] {
        assert!(!out.contains(bad) && !err.contains(bad), "mfscli {args:?} printed {bad:?}:\n{out}\n{err}");
    }
    out
}

#[test]
fn mfscli_parses_every_section_we_answer() {
    let server = Server::start(view());

    let info = mfscli(server.port, &["-SIN"]);
    assert!(info.contains("master version\t3.0.117"), "{info}");
    assert!(info.contains("files\t90"), "{info}");
    assert!(info.contains("chunks\t2469"), "{info}");
    assert!(info.contains("2400"), "copy matrix missing:\n{info}");

    let cs = mfscli(server.port, &["-SCS"]);

    assert!(
        cs.contains(
            "chunk servers:\t10.77.0.1\t9422\t1\t-\t3.0.117\t0\tmaintenance_off\t1235\t3221225472\t536870912000\t"
        ),
        "{cs}"
    );
    assert!(cs.contains("chunk servers:\t10.77.0.2\t9422\t2\t"), "{cs}");
    assert!(cs.contains("Disconnected chunk servers:\t10.77.0.9\t9422\t9\t"), "{cs}");

    let mb = mfscli(server.port, &["-SMB"]);
    assert!(mb.contains("metadata backup loggers:\t10.77.0.20\t3.0.117"), "{mb}");

    let ms = mfscli(server.port, &["-SMS"]);
    assert!(ms.contains("active mounts, parameters:\t4242\t10.77.0.30\t/mnt/elkfs-test\t5\t"), "{ms}");

    let all = mfscli(server.port, &["-SIN", "-SCS", "-SMB", "-SMS"]);
    assert!(all.contains("\t10.77.0.1\t9422\t") && all.contains("\t4242\t"), "{all}");
}
