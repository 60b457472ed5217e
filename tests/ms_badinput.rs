//! Bad input to the elkfs master: garbage, oversized and truncated packets
//! on each of its three ports close only that connection; the mount keeps
//! working. A client asking for what it may not see gets EACCES or ENOENT.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use elkfs_harness::{Cluster, MasterKind};
use elkfs_proto::client::{ClToMa, Cred, DirForm, MaToCl};
use elkfs_proto::frame::Encode;
use elkfs_proto::{Header, Status, HEADER_LEN};

/// Runs `f` on a thread that has entered the network namespace at `ns`.
fn in_netns<T: Send>(ns: &Path, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(ns).expect("open the namespace");
            // SAFETY: setns on this thread only, with a descriptor we own.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread")
    })
}

/// Sends `bytes` and expects the master to close the connection.
fn closed_after(addr: SocketAddr, bytes: &[u8], half_close: bool) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(bytes).expect("send");
    if half_close {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            // NOPs and the like may come first.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("{addr}: connection still open after bad input ({e})"),
        }
    }
}

fn request(s: &mut TcpStream, msg: &ClToMa) -> MaToCl {
    s.write_all(&msg.to_packet()).expect("send");
    loop {
        let mut head = [0u8; HEADER_LEN];
        s.read_exact(&mut head).expect("reply header");
        let h = Header::parse(&head);
        let mut payload = vec![0u8; h.len as usize];
        s.read_exact(&mut payload).expect("reply payload");
        if h.kind == 0 {
            continue; // NOP
        }
        return MaToCl::decode(h.kind, &payload, DirForm::Types).expect("decodable reply");
    }
}

#[test]
fn bad_packets_close_only_their_connection() {
    let c = Cluster::builder().master_kind(MasterKind::Elkfs).elkfs_chunkservers(1).mount(true).start();
    let ports = c.ports();
    let ip = c.addr();
    std::fs::write(c.path("before"), b"kept").unwrap();
    in_netns(&c.netns().path(), || {
        for port in [ports.metalogger, ports.chunkserver, ports.client] {
            let addr = SocketAddr::from((ip, port));
            let garbage: Vec<u8> = (0..64u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
            closed_after(addr, &garbage, false);
            // A header asking for 4 GiB of payload.
            closed_after(addr, &Header { kind: 400, len: u32::MAX }.to_bytes(), false);
            // A truncated packet: 100 bytes announced, 10 sent.
            let mut short = Header { kind: 406, len: 100 }.to_bytes().to_vec();
            short.extend_from_slice(&[7; 10]);
            closed_after(addr, &short, true);
        }
    });
    // The master is still there for everyone else.
    assert_eq!(std::fs::read(c.path("before")).unwrap(), b"kept");
    std::fs::write(c.path("after"), b"new").unwrap();
    assert_eq!(std::fs::read(c.path("after")).unwrap(), b"new");
}

#[test]
fn another_user_gets_eacces_and_unknown_inodes_enoent() {
    let c = Cluster::builder().master_kind(MasterKind::Elkfs).elkfs_chunkservers(1).mount(true).start();
    let closed = c.path("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::write(closed.join("secret"), b"x").unwrap();
    std::fs::set_permissions(&closed, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let closed_inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&closed).unwrap()) as u32;
    let addr = SocketAddr::from((c.addr(), c.ports().client));
    in_netns(&c.netns().path(), || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let reply = request(
            &mut s,
            &ClToMa::NewSession {
                version: elkfs_proto::VERSION,
                info: b"ms_badinput\0".to_vec(),
                path: b"/\0".to_vec(),
                resume: None,
                digest: None,
            },
        );
        assert!(matches!(reply, MaToCl::Session(_)), "registration: {reply:?}");
        let nobody = Cred { uid: 65534, gids: vec![65534] };
        let lookup = ClToMa::Lookup { msgid: 1, parent: closed_inode, name: b"secret".to_vec(), cred: nobody.clone() };
        match request(&mut s, &lookup) {
            MaToCl::Status { msgid: 1, status, .. } => assert_eq!(status, Status::EACCES),
            other => panic!("lookup in a 0700 root directory as nobody: {other:?}"),
        }
        let root = Cred { uid: 0, gids: vec![0] };
        let lookup = ClToMa::Lookup { msgid: 2, parent: closed_inode, name: b"secret".to_vec(), cred: root };
        assert!(matches!(request(&mut s, &lookup), MaToCl::Lookup { msgid: 2, .. }), "root may look");
        let getattr = ClToMa::GetAttr { msgid: 3, inode: 3_000_000, opened: 0, uid: 0, gid: 0 };
        match request(&mut s, &getattr) {
            MaToCl::Status { msgid: 3, status, .. } => assert_eq!(status, Status::ENOENT),
            other => panic!("getattr of an inode that does not exist: {other:?}"),
        }
    });
}
