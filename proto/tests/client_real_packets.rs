//! Packets captured from real MooseFS 3.0.117 daemons (Debian packages
//! 3.0.117-1) on 2026-11-25, decoded with our decoders and re-encoded byte
//! for byte.
//!
//! Capture setup: one mfsmaster, one mfschunkserver, one mfsmetalogger and
//! mfsmounts in a private network namespace, all on one address (10.91.0.1,
//! then 10.91.0.2); tcpdump on its `lo` for everything but ports 9420/9422.
//!
//! First capture, one mount: mkdir, write a small and a 1.25 MiB file,
//! read, `ls -la`, symlink, readlink, hard link, rename, truncate, mknod
//! (fifo), chmod, utimes, set/get/list/remove an xattr, flock, fcntl lock,
//! statfs; then `mfsgetgoal`, `mfssetgoal` (plain and `-r`),
//! `mfsgettrashtime`, `mfssettrashtime`, `mfsfileinfo`, `mfscheckfile`,
//! `mfsdirinfo`; then unlink and rmdir. The tools talk to mfsmount's proxy,
//! which forwards their requests on the mount's own 9421 link.
//!
//! Second capture: a second mount of a password-protected subfolder
//! (GETRANDOM, then NEWSESSION with the digest, which matched
//! `MD5(random[..16] ‖ MD5(password) ‖ random[16..])`), a meta mount, a
//! read after dropping caches (READ_CHUNK), a master restart (every mount
//! sent RECONNECT, then CLOSESESSION for its old session id), the
//! metalogger registering again with `rver` 2.
//!
//! Third capture: a storage class created with `mfsscadmin`, then
//! `mfssetsclass` (plain and `-r`), `mfsgetsclass`, `mfsxchgsclass`.
//!
//! All 900 packets of the three captures (9419, 9421 and the proxy streams)
//! decoded and re-encoded to the same bytes, except the `GETFACL`,
//! `SCLASS_CREATE` and `SCLASS_LIST` requests, which elkfs keeps as `Other`
//! (kind and msgid only, to be answered with a status), and the four
//! `SCLASS_LIST` replies, which `MaToCl` does not model. The ones below are
//! a sample of each kind and form.

use elkfs_proto::client::{ids, *};
use elkfs_proto::frame::Encode;
use elkfs_proto::metalogger::{MaToMl, MlToMa};
use elkfs_proto::{Addr, Header, Status, HEADER_LEN};

/// The address every daemon of the capture used: 10.91.0.1.
const IP: u32 = 0x0A5B_0001;
const VERSION: u32 = 0x0003_00EA;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn attr(hex: &str) -> AttrBytes {
    unhex(hex).try_into().expect("36-byte attribute record")
}

/// The credential the mount sent for root: uid 0, one group, gid 0.
fn root() -> Cred {
    Cred { uid: 0, gids: vec![0] }
}

fn cs() -> CsLoc {
    CsLoc { addr: Addr { ip: IP, port: 9422 }, version: VERSION, labelmask: 0 }
}

enum Expect {
    Cl(ClToMa),
    /// Master → client; readdir replies decode with the entry form given.
    Ma(MaToCl, DirForm),
    Ml(MlToMa),
    MaMl(MaToMl),
}

fn check(name: &str, hex: &str, expect: Expect) {
    let packet = unhex(hex);
    let header = Header::parse(packet[..HEADER_LEN].try_into().unwrap());
    let payload = &packet[HEADER_LEN..];
    assert_eq!(header.len as usize, payload.len(), "{name}: length");
    let encoded = match expect {
        Expect::Cl(want) => {
            assert_eq!(ClToMa::decode(header.kind, payload).as_ref(), Ok(&want), "{name}");
            want.to_packet()
        }
        Expect::Ma(want, form) => {
            assert_eq!(MaToCl::decode(header.kind, payload, form).as_ref(), Ok(&want), "{name}");
            want.to_packet()
        }
        Expect::Ml(want) => {
            assert_eq!(MlToMa::decode(header.kind, payload).as_ref(), Ok(&want), "{name}");
            want.to_packet()
        }
        Expect::MaMl(want) => {
            assert_eq!(MaToMl::decode(header.kind, payload).as_ref(), Ok(&want), "{name}");
            want.to_packet()
        }
    };
    assert_eq!(encoded, packet, "{name}: re-encoded bytes differ");
}

fn cl(name: &str, hex: &str, msg: ClToMa) {
    check(name, hex, Expect::Cl(msg));
}

fn ma(name: &str, hex: &str, msg: MaToCl) {
    check(name, hex, Expect::Ma(msg, DirForm::Types));
}

fn status(kind: u32, msgid: u32, status: Status) -> MaToCl {
    MaToCl::Status { kind, msgid, status }
}

const BLOB_HEX: &str = "446a493147415144554c49356432596a413236797063336f766b686a7668636954515678334353346e596774426f5563736c6a6956707345724a454e48617730";

#[test]
fn mount_session() {
    cl(
        "NEWSESSION",
        &format!("0000019000000063{BLOB_HEX}02000300ea000000142f746d702f706361702d656c6b2f772f6d6e7400000000022f00"),
        ClToMa::NewSession {
            version: VERSION,
            info: b"/tmp/pcap-elk/w/mnt\0".to_vec(),
            path: b"/\0".to_vec(),
            resume: None,
            digest: None,
        },
    );
    ma(
        "NEWSESSION reply (49 bytes)",
        "0000019100000031000300ea000000016b07410f75f9a0c70800000000000000000000000003e7000003e7010900000000ffffffff00000000",
        MaToCl::Session(Session {
            version: VERSION,
            sessionid: 1,
            metaid: 0x6B07_410F_75F9_A0C7,
            sesflags: 8,
            umask: 0,
            rootuid: 0,
            rootgid: 0,
            mapalluid: 999,
            mapallgid: 999,
            mingoal: 1,
            maxgoal: 9,
            mintrashtime: 0,
            maxtrashtime: u32::MAX,
            disables: 0,
        }),
    );
    cl("TIME_SYNC", "000002c00000000400000000", ClToMa::TimeSync { msgid: Some(0) });
    ma(
        "TIME_SYNC reply",
        "000002c10000000c000000000006611f709f874d",
        MaToCl::TimeSync { msgid: Some(0), usec: 0x0006_611F_709F_874D },
    );
    cl("NOP", "000000000000000400000000", ClToMa::Nop { msgid: 0 });
    ma("NOP", "000000000000000400000000", MaToCl::Nop { msgid: 0 });
    cl(
        "AMTIME_INODES",
        "000002bd00000018000000046b0741126b074111000000056b0741126b074112",
        ClToMa::AmtimeInodes(vec![(4, 0x6B07_4112, 0x6B07_4111), (5, 0x6B07_4112, 0x6B07_4112)]),
    );
    cl("STATFS", "000001920000000400000004", ClToMa::Statfs { msgid: 4 });
    ma(
        "STATFS reply (48 bytes)",
        "00000193000000300000000400000016b7ca0000000000100659a000000000100659a0000000000000000000000000000000000000000008",
        MaToCl::Statfs {
            msgid: 4,
            total: 0x16_B7CA_0000,
            avail: 0x10_0659_A000,
            free: 0x10_0659_A000,
            trash: 0,
            sustained: 0,
            inodes: 8,
        },
    );
}

#[test]
fn lookups_and_attributes() {
    cl(
        "GETATTR (17 bytes)",
        "00000198000000110000000100000001000000000000000000",
        ClToMa::GetAttr { msgid: 1, inode: 1, opened: 0, uid: 0, gid: 0 },
    );
    ma(
        "GETATTR reply",
        "0000019900000028000000010c21ff00000000000000006b07410b6b07410b6b07410b00000002000000000000000100",
        MaToCl::Attr {
            kind: ids::GETATTR_REPLY,
            msgid: 1,
            attr: attr("0c21ff00000000000000006b07410b6b07410b6b07410b00000002000000000000000100"),
        },
    );
    cl(
        "ACCESS",
        "000001940000001600000001000000010000000000000001000000000001",
        ClToMa::Access { msgid: 1, inode: 1, cred: root(), mask: 1 },
    );
    ma("ACCESS reply", "00000195000000050000000100", status(ids::ACCESS_REPLY, 1, Status::OK));
    cl(
        "LOOKUP",
        "00000196000000170000000200000001026431000000000000000100000000",
        ClToMa::Lookup { msgid: 2, parent: 1, name: b"d1".to_vec(), cred: root() },
    );
    ma("LOOKUP ENOENT", "00000197000000050000000203", status(ids::LOOKUP_REPLY, 2, Status::ENOENT));
    ma(
        "LOOKUP reply with chunk 0",
        "000001970000004900000004000000040811a400000000000000006b0741116b0741116b0741110000000100000000000000060001ff020000000000000001000000010a5b000124ce000300ea00000000",
        MaToCl::Lookup {
            msgid: 4,
            inode: 4,
            attr: attr("0811a400000000000000006b0741116b0741116b074111000000010000000000000006 00"),
            lflags: Some(0x01FF),
            first_chunk: Some(FirstChunk { chunk: 1, version: 1, servers: vec![cs()] }),
        },
    );
    cl(
        "SETATTR (chmod)",
        "0000019a0000002a000000020000000400000000000000000100000000020180000000000000000000000000000000000004",
        ClToMa::SetAttr {
            msgid: 2,
            inode: 4,
            opened: 0,
            cred: root(),
            setmask: 2,
            mode: 0o600,
            uid: 0,
            gid: 0,
            atime: 0,
            mtime: 0,
            winattr: 0,
            sugid_clear: 4,
        },
    );
    ma(
        "SETATTR reply",
        "0000019b00000028000000020c118000000000000000006b0741126b0741176b07411700000002000000000000006400",
        MaToCl::Attr {
            kind: ids::SETATTR_REPLY,
            msgid: 2,
            attr: attr("0c118000000000000000006b0741126b0741176b07411700000002000000000000006400"),
        },
    );
}

#[test]
fn namespace_changes() {
    cl(
        "MKDIR",
        "000001a20000001c000000010000000102643101ff001200000000000000010000000001",
        ClToMa::Mkdir {
            msgid: 1,
            parent: 1,
            name: b"d1".to_vec(),
            mode: 0o777,
            umask: 0o22,
            cred: root(),
            copysgid: 1,
        },
    );
    ma(
        "MKDIR reply",
        "000001a30000002c00000001000000020c21ed00000000000000006b0741116b0741116b07411100000002000000000000000100",
        MaToCl::Entry {
            kind: ids::MKDIR_REPLY,
            msgid: 1,
            inode: 2,
            attr: attr("0c21ed00000000000000006b0741116b0741116b07411100000002000000000000000100"),
        },
    );
    cl(
        "CREATE",
        "000001e20000001b000000020000000202663101b60012000000000000000100000000",
        ClToMa::Create { msgid: 2, parent: 2, name: b"f1".to_vec(), mode: 0o666, umask: 0o22, cred: root() },
    );
    ma(
        "CREATE reply (45 bytes)",
        "000001e30000002d0000000200000000040811a400000000000000006b0741116b0741116b07411100000001000000000000000000",
        MaToCl::Create {
            msgid: 2,
            oflags: 0,
            inode: 4,
            attr: attr("0811a400000000000000006b0741116b0741116b07411100000001000000000000000000"),
        },
    );
    cl(
        "MKNOD (fifo)",
        "000001a0000000220000000200000002046669666f0401b6001200000000000000010000000000000000",
        ClToMa::Mknod {
            msgid: 2,
            parent: 2,
            name: b"fifo".to_vec(),
            node_type: 4,
            mode: 0o666,
            umask: 0o22,
            cred: root(),
            rdev: 0,
        },
    );
    ma(
        "MKNOD reply",
        "000001a10000002c00000002000000070c41a400000000000000006b0741176b0741176b07411700000001000000000000000000",
        MaToCl::Entry {
            kind: ids::MKNOD_REPLY,
            msgid: 2,
            inode: 7,
            attr: attr("0c41a400000000000000006b0741176b0741176b07411700000001000000000000000000"),
        },
    );
    cl(
        "SYMLINK",
        "0000019e0000001e000000020000000202736c00000003663100000000000000000100000000",
        ClToMa::Symlink { msgid: 2, parent: 2, name: b"sl".to_vec(), path: b"f1".to_vec(), cred: root() },
    );
    cl("READLINK", "0000019c000000080000000100000006", ClToMa::ReadLink { msgid: 1, inode: 6 });
    ma("READLINK reply", "0000019d0000000b0000000100000003663100", MaToCl::ReadLink { msgid: 1, path: b"f1".to_vec() });
    cl(
        "LINK",
        "000001aa0000001b00000001000000040000000202686c000000000000000100000000",
        ClToMa::Link { msgid: 1, inode: 4, dst_parent: 2, dst_name: b"hl".to_vec(), cred: root() },
    );
    cl(
        "RENAME",
        "000001a80000001f000000020000000202686c0000000203686c32000000000000000100000000",
        ClToMa::Rename {
            msgid: 2,
            src_parent: 2,
            src_name: b"hl".to_vec(),
            dst_parent: 2,
            dst_name: b"hl2".to_vec(),
            cred: root(),
        },
    );
    ma(
        "RENAME reply",
        "000001a90000002c00000002000000040c11a400000000000000006b0741116b0741116b07411200000002000000000000000600",
        MaToCl::Entry {
            kind: ids::RENAME_REPLY,
            msgid: 2,
            inode: 4,
            attr: attr("0c11a400000000000000006b0741116b0741116b07411200000002000000000000000600"),
        },
    );
    cl(
        "UNLINK",
        "000001a400000018000000010000000203686c32000000000000000100000000",
        ClToMa::Unlink { msgid: 1, parent: 2, name: b"hl2".to_vec(), cred: root() },
    );
    ma(
        "UNLINK reply (removed inode)",
        "000001a5000000080000000100000004",
        MaToCl::Removed { kind: ids::UNLINK_REPLY, msgid: 1, inode: 4 },
    );
    cl(
        "RMDIR",
        "000001a600000018000000040000000203737562000000000000000100000000",
        ClToMa::Rmdir { msgid: 4, parent: 2, name: b"sub".to_vec(), cred: root() },
    );
    ma(
        "RMDIR reply",
        "000001a7000000080000000400000003",
        MaToCl::Removed { kind: ids::RMDIR_REPLY, msgid: 4, inode: 3 },
    );
}

#[test]
fn readdir_with_attributes() {
    cl(
        "READDIR",
        "000001ac00000021000000040000000200000000000000010000000001ffffffff0000000000000000",
        ClToMa::ReadDir { msgid: 4, inode: 2, cred: root(), flags: READDIR_ATTRS, max_entries: u32::MAX, edge: 0 },
    );
    let entry = |name: &[u8], inode, a: &str| (name.to_vec(), inode, attr(a));
    check(
        "READDIR reply",
        "000001ad000000e4000000040000000000000000         012e000000020c21ed00000000000000006b0741126b0741126b0741120000000300000000001e84fd00         022e2e000000010c21ff00000000000000006b07410b6b0741116b0741110000000300000000001e84fd00         03626967000000050c11a400000000000000006b0741126b0741126b07411200000001000000000014000000         026631000000040c11a400000000000000006b0741116b0741116b07411100000001000000000000000600         03737562000000030c21ed00000000000000006b0741116b0741116b07411100000002000000000000000100",
        Expect::Ma(
            MaToCl::ReadDir {
                msgid: 4,
                next_edge: 0,
                entries: DirEntries::Attrs(vec![
                    entry(b".", 2, "0c21ed00000000000000006b0741126b0741126b0741120000000300000000001e84fd00"),
                    entry(b"..", 1, "0c21ff00000000000000006b07410b6b0741116b0741110000000300000000001e84fd00"),
                    entry(b"big", 5, "0c11a400000000000000006b0741126b0741126b07411200000001000000000014000000"),
                    entry(b"f1", 4, "0c11a400000000000000006b0741116b0741116b07411100000001000000000000000600"),
                    entry(b"sub", 3, "0c21ed00000000000000006b0741116b0741116b07411100000002000000000000000100"),
                ]),
            },
            DirForm::Attrs,
        ),
    );
}

#[test]
fn file_data_path() {
    cl(
        "OPEN",
        "000001ae00000015000000020000000400000000000000010000000015",
        ClToMa::Open { msgid: 2, inode: 4, cred: root(), flags: 0x15 },
    );
    ma(
        "OPEN reply (oflags + attr)",
        "000001af0000002900000002010c11a400000000000000006b0741116b0741116b07411100000001000000000000000600",
        MaToCl::Open {
            msgid: 2,
            oflags: 1,
            attr: attr("0c11a400000000000000006b0741116b0741116b07411100000001000000000000000600"),
        },
    );
    cl(
        "WRITE_CHUNK",
        "000001b20000000d00000003000000040000000004",
        ClToMa::WriteChunk { msgid: 3, inode: 4, index: 0, flags: 4 },
    );
    ma(
        "WRITE_CHUNK reply",
        "000001b300000027000000030200000000000000000000000000000001000000010a5b000124ce000300ea00000000",
        MaToCl::Chunk {
            kind: ids::WRITE_CHUNK_REPLY,
            msgid: 3,
            loc: ChunkLoc { length: 0, chunk: 1, version: 1, servers: vec![cs()] },
        },
    );
    cl(
        "WRITE_CHUNK_END (29 bytes)",
        "000001b40000001d0000000300000000000000010000000400000000000000000000000600",
        ClToMa::WriteChunkEnd { msgid: 3, chunk: 1, inode: 4, index: Some(0), length: 6, flags: Some(0) },
    );
    ma("WRITE_CHUNK_END reply", "000001b5000000050000000300", status(ids::WRITE_CHUNK_END_REPLY, 3, Status::OK));
    cl(
        "TRUNCATE",
        "000001d00000001d0000000400000004010000000000000001000000000000000000000064",
        ClToMa::Truncate { msgid: 4, inode: 4, flags: 1, cred: root(), length: 100 },
    );
    ma("TRUNCATE EAGAIN", "000001d100000005000000042d", status(ids::TRUNCATE_REPLY, 4, Status::EAGAIN));
    ma(
        "TRUNCATE reply (prevlength + attr)",
        "000001d1000000300000000400000000000000060c11a400000000000000006b0741126b0741176b07411700000002000000000000006400",
        MaToCl::Truncate {
            msgid: 4,
            prev_length: 6,
            attr: attr("0c11a400000000000000006b0741126b0741176b07411700000002000000000000006400"),
        },
    );
}

#[test]
fn xattrs_and_locks() {
    cl(
        "GETXATTR",
        "000001de0000002700000002000000021073656375726974792e73656c696e75780000000000000000000100000000",
        ClToMa::GetXattr { msgid: 2, inode: 2, name: b"security.selinux".to_vec(), mode: 0, opened: 0, cred: root() },
    );
    ma("GETXATTR ENOATTR", "000001df000000050000000226", status(ids::GETXATTR_REPLY, 2, Status::ENOATTR));
    cl(
        "GETXATTR list",
        "000001de000000170000000100000004000000000000000000000100000000",
        ClToMa::GetXattr { msgid: 1, inode: 4, name: Vec::new(), mode: 0, opened: 0, cred: root() },
    );
    ma(
        "GETXATTR list reply",
        "000001df0000000f0000000100000007757365722e6b00",
        MaToCl::Xattr { msgid: 1, size: 7, value: b"user.k\0".to_vec() },
    );
    cl(
        "SETXATTR",
        "000001e000000022000000020000000406757365722e6b00000001760000000000000000000100000000",
        ClToMa::SetXattr {
            msgid: 2,
            inode: 4,
            name: b"user.k".to_vec(),
            value: b"v".to_vec(),
            mode: 0,
            opened: 0,
            cred: root(),
        },
    );
    ma("SETXATTR reply", "000001e1000000050000000200", status(ids::SETXATTR_REPLY, 2, Status::OK));
    cl(
        "FLOCK",
        "000001ec0000001500000002000000040000000190944510e1d85ccf04",
        ClToMa::Flock { msgid: 2, inode: 4, reqid: 1, owner: 0x9094_4510_E1D8_5CCF, cmd: 4 },
    );
    ma("FLOCK reply", "000001ed000000050000000200", status(ids::FLOCK_REPLY, 2, Status::OK));
    cl(
        "POSIX_LOCK",
        "000001ee0000002a000000040000000400000001fb4fef8e016666210000445902020000000000000000000000000000000a",
        ClToMa::PosixLock {
            msgid: 4,
            inode: 4,
            reqid: 1,
            owner: 0xFB4F_EF8E_0166_6621,
            pid: 0x4459,
            cmd: 2,
            lock_type: 2,
            start: 0,
            end: 10,
        },
    );
    ma("POSIX_LOCK reply", "000001ef000000050000000400", status(ids::POSIX_LOCK_REPLY, 4, Status::OK));
    // GETFACL is not modelled: kept as its kind and msgid, answered by status.
    let packet = unhex("000001e800000009000000040000000201");
    assert_eq!(ClToMa::decode(ids::GETFACL, &packet[HEADER_LEN..]), Ok(ClToMa::Other { kind: 488, msgid: Some(4) }));
    ma("GETFACL reply", "000001e9000000050000000426", status(ids::GETFACL_REPLY, 4, Status::ENOATTR));
}

/// What the tools send to mfsmount's proxy (msgid 0) and what the mount
/// then sends on its own link (its next msgid).
#[test]
fn tools() {
    cl(
        "REGISTER tools (to the proxy)",
        &format!("0000019000000049{BLOB_HEX}0400000001000300ea"),
        ClToMa::Tools { sessionid: 1, version: VERSION, metaid: None },
    );
    ma("REGISTER tools reply", "000001910000000100", MaToCl::RegisterStatus(Status::OK));
    cl("GETSCLASS", "000001be00000009000000060000000400", ClToMa::GetSclass { msgid: 6, inode: 4, gmode: 0 });
    ma(
        "GETSCLASS reply",
        "000001bf0000000b0000000601000200000001",
        MaToCl::Sclass { msgid: 6, files: vec![(Sclass::Goal(2), 1)], dirs: Vec::new() },
    );
    cl("GETSCLASS -r", "000001be00000009000000060000000201", ClToMa::GetSclass { msgid: 6, inode: 2, gmode: 1 });
    ma(
        "GETSCLASS -r reply",
        "000001bf0000001000000006010103000000030300000002",
        MaToCl::Sclass { msgid: 6, files: vec![(Sclass::Goal(3), 3)], dirs: vec![(Sclass::Goal(3), 2)] },
    );
    cl(
        "SETSCLASS",
        "000001c00000000e0000000600000004000000000200",
        ClToMa::SetSclass { msgid: 6, inode: 4, uid: 0, smode: 0, target: SclassSet::Goal(2) },
    );
    ma(
        "SETSCLASS reply",
        "000001c10000001000000006000000000000000100000000",
        MaToCl::Changed { kind: ids::SETSCLASS_REPLY, msgid: 6, changed: 0, not_changed: 1, not_permitted: 0 },
    );
    cl("GETTRASHTIME -r", "000001ba00000009000000060000000201", ClToMa::GetTrashTime { msgid: 6, inode: 2, gmode: 1 });
    ma(
        "GETTRASHTIME -r reply",
        "000001bb0000002400000006000000020000000100000e100000000200015180000000010001518000000002",
        MaToCl::TrashTime { msgid: 6, files: vec![(3600, 2), (86400, 1)], dirs: vec![(86400, 2)] },
    );
    cl(
        "SETTRASHTIME",
        "000001bc0000001100000006000000040000000000000e1000",
        ClToMa::SetTrashTime { msgid: 6, inode: 4, uid: 0, trashtime: 3600, smode: 0 },
    );
    ma(
        "SETTRASHTIME reply",
        "000001bd0000001000000006000000010000000000000000",
        MaToCl::Changed { kind: ids::SETTRASHTIME_REPLY, msgid: 6, changed: 1, not_changed: 0, not_permitted: 0 },
    );
    cl("CHECK (mfscheckfile)", "000001b8000000080000000600000004", ClToMa::Check { msgid: 6, inode: 4, index: None });
    ma(
        "CHECK reply (counts)",
        "000001b90000003400000006000000000000000100000000000000000000000000000000000000000000000000000000000000000000000000000000",
        MaToCl::CheckCounts { msgid: 6, counts: [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] },
    );
    cl(
        "CHECK (mfsfileinfo)",
        "000001b80000000c000000060000000400000000",
        ClToMa::Check { msgid: 6, inode: 4, index: Some(0) },
    );
    ma(
        "CHECK reply (one chunk)",
        "000001b900000017000000060000000000000001000000020a5b000124ce00",
        MaToCl::CheckChunk { msgid: 6, chunk: 1, version: 2, copies: vec![(Addr { ip: IP, port: 9422 }, 0)] },
    );
    cl("GETDIRSTATS", "000001ce000000080000000600000002", ClToMa::GetDirStats { msgid: 6, inode: 2 });
    ma(
        "GETDIRSTATS reply (60 bytes on a mount link)",
        "000001cf0000003c00000006000000070000000200000003000000000000000000000002000000000000000000000000000000ca0000000000024000000000000006c000",
        MaToCl::DirStats {
            msgid: 6,
            stats: DirStats { inodes: 7, dirs: 2, files: 3, chunks: 2, length: 202, size: 147_456, realsize: 442_368 },
            padded: true,
        },
    );
}

#[test]
fn metalogger() {
    let ml = |name, hex, msg| check(name, hex, Expect::Ml(msg));
    let mm = |name, hex, msg| check(name, hex, Expect::MaMl(msg));
    ml("REGISTER (rver 1)", "000000320000000701000300ea000a", MlToMa::Register { version: VERSION, timeout: 10 });
    ml("NOP", "0000000000000000", MlToMa::Nop);
    mm("NOP", "0000000000000000", MaToMl::Nop);
    ml("DOWNLOAD_START metadata", "0000003c0000000101", MlToMa::DownloadStart { file: 1 });
    mm("DOWNLOAD_INFO", "0000003d000000080000000000000009", MaToMl::DownloadSize(9));
    ml(
        "DOWNLOAD_REQUEST",
        "0000003e0000000c000000000000000000000009",
        MlToMa::DownloadRequest { offset: 0, length: 9 },
    );
    mm(
        "DOWNLOAD_DATA",
        "0000003f000000190000000000000000000000095ea9bca04d46534d204e45570a",
        MaToMl::DownloadData { offset: 0, crc: 0x5EA9_BCA0, data: b"MFSM NEW\n".to_vec() },
    );
    ml("DOWNLOAD_END", "0000004000000000", MlToMa::DownloadEnd);
    ml("DOWNLOAD_START changelog.0", "0000003c000000010b", MlToMa::DownloadStart { file: 11 });
    ml("DOWNLOAD_START changelog.1", "0000003c000000010c", MlToMa::DownloadStart { file: 12 });
    mm("DOWNLOAD_INFO (missing file)", "0000003d000000080000000000000000", MaToMl::DownloadSize(0));
    mm(
        "METACHANGES_LOG",
        "000000330000002fff0000000000000002313739353633373531377c435344424f5028302c3137333733353933372c393432322c302900",
        MaToMl::Log { version: 2, text: b"1795637517|CSDBOP(0,173735937,9422,0)".to_vec() },
    );
}

#[test]
fn password_meta_and_reconnect() {
    cl("GETRANDOM", &format!("0000019000000041{BLOB_HEX}01"), ClToMa::GetRandom);
    let random = unhex("ce4aa839b03bd820468a5849bb6cd2609cc550c09c9efb40e553acdc406565af");
    ma(
        "GETRANDOM reply",
        "0000019100000020ce4aa839b03bd820468a5849bb6cd2609cc550c09c9efb40e553acdc406565af",
        MaToCl::Random(random.try_into().unwrap()),
    );
    cl(
        "NEWSESSION with digest",
        &format!(
            "0000019000000077{BLOB_HEX}02000300ea000000162f746d702f706361702d656c6b2f77322f6d6e743200000000042f707700\
             606f139d703e7bdbb3d9bc06f98eb27c"
        ),
        ClToMa::NewSession {
            version: VERSION,
            info: b"/tmp/pcap-elk/w2/mnt2\0".to_vec(),
            path: b"/pw\0".to_vec(),
            resume: None,
            digest: Some(unhex("606f139d703e7bdbb3d9bc06f98eb27c").try_into().unwrap()),
        },
    );
    cl(
        "NEWMETASESSION",
        &format!("000001900000005f{BLOB_HEX}05000300ea000000162f746d702f706361702d656c6b2f77322f6d6e743300"),
        ClToMa::NewMetaSession {
            version: VERSION,
            info: b"/tmp/pcap-elk/w2/mnt3\0".to_vec(),
            resume: None,
            digest: None,
        },
    );
    ma(
        "NEWMETASESSION reply (27 bytes)",
        "000001910000001b000300ea000000036b07426f76ac047600010900000000ffffffff",
        MaToCl::MetaSession(MetaSession {
            version: VERSION,
            sessionid: 3,
            metaid: 0x6B07_426F_76AC_0476,
            sesflags: 0,
            mingoal: 1,
            maxgoal: 9,
            mintrashtime: 0,
            maxtrashtime: u32::MAX,
        }),
    );
    cl(
        "RECONNECT (81 bytes)",
        &format!("0000019000000051{BLOB_HEX}0300000001000300ea6b07426f76ac0476"),
        ClToMa::Reconnect { sessionid: 1, version: VERSION, metaid: Some(0x6B07_426F_76AC_0476) },
    );
    ma(
        "RECONNECT reply (version + status)",
        "0000019100000005000300ea00",
        MaToCl::Reconnected { version: VERSION, status: Status::OK },
    );
    cl(
        "CLOSESESSION (77 bytes)",
        &format!("000001900000004d{BLOB_HEX}06000000016b07426f76ac0476"),
        ClToMa::CloseSession { sessionid: 1, metaid: Some(0x6B07_426F_76AC_0476) },
    );
    ma("CLOSESESSION reply", "000001910000000100", MaToCl::RegisterStatus(Status::OK));
}

#[test]
fn second_capture_data_and_one_way() {
    cl(
        "READ_CHUNK",
        "000001b00000000d00000004000000040000000000",
        ClToMa::ReadChunk { msgid: 4, inode: 4, index: 0, flags: 0 },
    );
    ma(
        "READ_CHUNK reply",
        "000001b1000000270000000402000000000000000b0000000000000001000000010a5b000224ce000300ea00000000",
        MaToCl::Chunk {
            kind: ids::READ_CHUNK_REPLY,
            msgid: 4,
            loc: ChunkLoc {
                length: 11,
                chunk: 1,
                version: 1,
                servers: vec![CsLoc { addr: Addr { ip: IP + 1, port: 9422 }, version: VERSION, labelmask: 0 }],
            },
        },
    );
    cl("SUSTAINED_INODES (none)", "000002bc00000000", ClToMa::SustainedInodes(Vec::new()));
    cl("SUSTAINED_INODES", "000002bc000000080000000400000005", ClToMa::SustainedInodes(vec![4, 5]));
    ma("INVALIDATE_CHUNK_CACHE", "000002c20000000400000000", MaToCl::InvalidateChunkCache);
    let packet = unhex("00000168000000050000000600");
    assert_eq!(
        ClToMa::decode(ids::SCLASS_LIST, &packet[HEADER_LEN..]),
        Ok(ClToMa::Other { kind: ids::SCLASS_LIST, msgid: Some(6) })
    );
    check(
        "REGISTER (rver 2, after the master restart)",
        "000000320000000f02000300ea000a000000000000001e",
        Expect::Ml(MlToMa::RegisterFrom { version: VERSION, timeout: 10, min_version: 30 }),
    );
}

#[test]
fn named_storage_classes() {
    let two_any = || b"two_any".to_vec();
    cl(
        "SETSCLASS by name",
        "000001c000000016000000050000000300000000ff000774776f5f616e79",
        ClToMa::SetSclass {
            msgid: 5,
            inode: 3,
            uid: 0,
            smode: 0,
            target: SclassSet::Named { src: None, dst: two_any() },
        },
    );
    cl(
        "SETSCLASS by name, recursive",
        "000001c000000016000000050000000200000000ff040774776f5f616e79",
        ClToMa::SetSclass {
            msgid: 5,
            inode: 2,
            uid: 0,
            smode: 4,
            target: SclassSet::Named { src: None, dst: two_any() },
        },
    );
    // mfsxchgsclass names the new class even when it is a goal ("3").
    cl(
        "SETSCLASS exchange",
        "000001c000000018000000050000000300000000ff030774776f5f616e790133",
        ClToMa::SetSclass {
            msgid: 5,
            inode: 3,
            uid: 0,
            smode: SMODE_EXCHANGE,
            target: SclassSet::Named { src: Some(two_any()), dst: b"3".to_vec() },
        },
    );
    ma(
        "GETSCLASS reply, named",
        "000001bf00000013000000050100ff0774776f5f616e7900000001",
        MaToCl::Sclass { msgid: 5, files: vec![(Sclass::Named(two_any()), 1)], dirs: Vec::new() },
    );
    ma(
        "GETSCLASS -r reply, named",
        "000001bf00000020000000050101ff0774776f5f616e7900000001ff0774776f5f616e7900000001",
        MaToCl::Sclass {
            msgid: 5,
            files: vec![(Sclass::Named(two_any()), 1)],
            dirs: vec![(Sclass::Named(two_any()), 1)],
        },
    );
    let packet = unhex("00000168000000050000000500");
    assert_eq!(
        ClToMa::decode(ids::SCLASS_LIST, &packet[HEADER_LEN..]),
        Ok(ClToMa::Other { kind: ids::SCLASS_LIST, msgid: Some(5) })
    );
}
