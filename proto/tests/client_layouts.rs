//! Golden byte layouts of client-link and metalogger-link forms the capture
//! in `client_real_packets.rs` did not contain, written out by hand from
//! the wire reference (`moosefs-wire.md` §7, §8) and the 3.0.117 sources
//! (`matoclserv.c`, `mastercomm.c`, `matomlserv.c`). Each test encodes,
//! compares every byte, and decodes back.

use elkfs_proto::client::{ids, *};
use elkfs_proto::frame::Encode;
use elkfs_proto::metalogger::{self, MaToMl, MlToMa};
use elkfs_proto::{Addr, Header, Status, HEADER_LEN};

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn header(kind: u32, len: u32) -> Vec<u8> {
    cat(&[&kind.to_be_bytes(), &len.to_be_bytes()])
}

fn payload(bytes: &[u8]) -> (u32, &[u8]) {
    let h = Header::parse(bytes[..HEADER_LEN].try_into().unwrap());
    assert_eq!(h.len as usize, bytes.len() - HEADER_LEN);
    (h.kind, &bytes[HEADER_LEN..])
}

fn request(msg: ClToMa, want: Vec<u8>) {
    let got = msg.to_packet();
    assert_eq!(got, want, "{msg:?}");
    let (kind, p) = payload(&got);
    assert_eq!(ClToMa::decode(kind, p), Ok(msg));
}

fn reply(msg: MaToCl, want: Vec<u8>) {
    let got = msg.to_packet();
    assert_eq!(got, want, "{msg:?}");
    let (kind, p) = payload(&got);
    assert_eq!(MaToCl::decode(kind, p, DirForm::Types), Ok(msg));
}

#[test]
fn newsession_with_resume_and_digest() {
    let msg = ClToMa::NewSession {
        version: 0x0003_00EA,
        info: b"m\0".to_vec(),
        path: b"/\0".to_vec(),
        resume: Some(Resume { sessionid: 7, metaid: Some(0x0102_0304_0506_0708) }),
        digest: Some([0xAA; 16]),
    };
    // 77 + ileng 2 + pleng 2 + 12 + 16 = 109
    let want = cat(&[
        &header(400, 109),
        REGISTER_BLOB,
        &[2],
        &[0, 3, 0, 0xEA],
        &[0, 0, 0, 2, b'm', 0],
        &[0, 0, 0, 2, b'/', 0],
        &[0, 0, 0, 7],
        &[1, 2, 3, 4, 5, 6, 7, 8],
        &[0xAA; 16],
    ]);
    request(msg, want);
}

#[test]
fn reconnect_close_and_meta_session() {
    request(
        ClToMa::Reconnect { sessionid: 9, version: 0x0003_00EA, metaid: Some(5) },
        cat(&[&header(400, 81), REGISTER_BLOB, &[3, 0, 0, 0, 9, 0, 3, 0, 0xEA], &5u64.to_be_bytes()]),
    );
    request(
        ClToMa::CloseSession { sessionid: 9, metaid: None },
        cat(&[&header(400, 69), REGISTER_BLOB, &[6, 0, 0, 0, 9]]),
    );
    request(
        ClToMa::NewMetaSession { version: 0x0003_00EA, info: b"x\0".to_vec(), resume: None, digest: None },
        cat(&[&header(400, 75), REGISTER_BLOB, &[5, 0, 3, 0, 0xEA, 0, 0, 0, 2, b'x', 0]]),
    );
    request(ClToMa::GetRandom, cat(&[&header(400, 65), REGISTER_BLOB, &[1]]));
    reply(MaToCl::Random([0x5A; 32]), cat(&[&header(401, 32), &[0x5A; 32]]));
    // RECONNECT answer for clients from 3.0.95: version then status.
    reply(
        MaToCl::Reconnected { version: 0x0003_00EA, status: Status::OK },
        cat(&[&header(401, 5), &[0, 3, 0, 0xEA, 0]]),
    );
    reply(
        MaToCl::MetaSession(MetaSession {
            version: 0x0003_00EA,
            sessionid: 2,
            metaid: 3,
            sesflags: 1,
            mingoal: 1,
            maxgoal: 9,
            mintrashtime: 0,
            maxtrashtime: 86400,
        }),
        cat(&[
            &header(401, 27),
            &[0, 3, 0, 0xEA, 0, 0, 0, 2],
            &3u64.to_be_bytes(),
            &[1, 1, 9],
            &[0, 0, 0, 0],
            &86400u32.to_be_bytes(),
        ]),
    );
}

#[test]
fn lookup_reply_forms() {
    let attr = [0x11; ATTR_LEN];
    let base = cat(&[&[0, 0, 0, 1], &[0, 0, 0, 9], &attr]);
    reply(
        MaToCl::Lookup { msgid: 1, inode: 9, attr, lflags: None, first_chunk: None },
        cat(&[&header(407, 44), &base]),
    );
    reply(
        MaToCl::Lookup { msgid: 1, inode: 9, attr, lflags: Some(0x00FF), first_chunk: None },
        cat(&[&header(407, 46), &base, &[0, 0xFF]]),
    );
}

#[test]
fn read_chunk_reply_and_hole() {
    let loc = ChunkLoc {
        length: 70 << 20,
        chunk: 0x22,
        version: 3,
        servers: vec![CsLoc { addr: Addr { ip: 0x0A00_0001, port: 9422 }, version: 0x0003_00EA, labelmask: 1 }],
    };
    reply(
        MaToCl::Chunk { kind: ids::READ_CHUNK_REPLY, msgid: 5, loc },
        cat(&[
            &header(433, 25 + 14),
            &[0, 0, 0, 5, 2],
            &(70u64 << 20).to_be_bytes(),
            &0x22u64.to_be_bytes(),
            &[0, 0, 0, 3],
            &[10, 0, 0, 1, 0x24, 0xCE, 0, 3, 0, 0xEA, 0, 0, 0, 1],
        ]),
    );
    let hole = ChunkLoc { length: 100, chunk: 0, version: 0, servers: Vec::new() };
    reply(
        MaToCl::Chunk { kind: ids::READ_CHUNK_REPLY, msgid: 5, loc: hole },
        cat(&[&header(433, 25), &[0, 0, 0, 5, 2], &100u64.to_be_bytes(), &[0; 12]]),
    );
    request(
        ClToMa::ReadChunk { msgid: 5, inode: 3, index: 1, flags: 0 },
        cat(&[&header(432, 13), &[0, 0, 0, 5, 0, 0, 0, 3, 0, 0, 0, 1, 0]]),
    );
}

#[test]
fn pushes_carry_msgid_zero() {
    reply(
        MaToCl::ChunkHasChanged { inode: 4, index: 1, chunk: 7, version: 2, length: 99, truncated: 1 },
        cat(&[
            &header(702, 33),
            &[0; 4],
            &[0, 0, 0, 4, 0, 0, 0, 1],
            &7u64.to_be_bytes(),
            &[0, 0, 0, 2],
            &99u64.to_be_bytes(),
            &[1],
        ]),
    );
    reply(
        MaToCl::FlengHasChanged { inode: 4, length: 99 },
        cat(&[&header(703, 16), &[0; 4], &[0, 0, 0, 4], &99u64.to_be_bytes()]),
    );
    reply(MaToCl::InvalidateChunkCache, cat(&[&header(706, 4), &[0; 4]]));
    // The client's clock check without a msgid is answered without one.
    reply(MaToCl::TimeSync { msgid: None, usec: 5 }, cat(&[&header(705, 8), &5u64.to_be_bytes()]));
}

#[test]
fn one_way_client_messages() {
    request(ClToMa::SustainedInodes(vec![3, 4]), cat(&[&header(700, 8), &[0, 0, 0, 3, 0, 0, 0, 4]]));
    request(ClToMa::TimeSync { msgid: None }, header(704, 0));
}

#[test]
fn readdir_type_entries() {
    reply(
        MaToCl::ReadDir {
            msgid: 2,
            next_edge: 0,
            entries: DirEntries::Types(vec![(b".".to_vec(), 1, 2), (b"f".to_vec(), 5, 1)]),
        },
        cat(&[&header(429, 12 + 7 + 7), &[0, 0, 0, 2], &[0; 8], &[1, b'.', 0, 0, 0, 1, 2], &[1, b'f', 0, 0, 0, 5, 1]]),
    );
}

#[test]
fn named_storage_classes() {
    // EXCHANGE (mode 3) names the class to replace, then the new one.
    request(
        ClToMa::SetSclass {
            msgid: 1,
            inode: 2,
            uid: 0,
            smode: SMODE_EXCHANGE,
            target: SclassSet::Named { src: Some(b"a".to_vec()), dst: b"bc".to_vec() },
        },
        cat(&[&header(448, 19), &[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0xFF, 3], &[1, b'a'], &[2, b'b', b'c']]),
    );
    reply(
        MaToCl::Sclass { msgid: 1, files: vec![(Sclass::Named(b"ssd".to_vec()), 4)], dirs: Vec::new() },
        cat(&[&header(447, 15), &[0, 0, 0, 1, 1, 0], &[0xFF, 3, b's', b's', b'd'], &[0, 0, 0, 4]]),
    );
}

#[test]
fn xattr_length_only_and_lock_conflict() {
    reply(MaToCl::Xattr { msgid: 3, size: 12, value: Vec::new() }, cat(&[&header(479, 8), &[0, 0, 0, 3, 0, 0, 0, 12]]));
    reply(
        MaToCl::PosixLock { msgid: 3, pid: 77, lock_type: 1, start: 0, end: u64::MAX },
        cat(&[&header(495, 25), &[0, 0, 0, 3, 0, 0, 0, 77, 1], &[0; 8], &[0xFF; 8]]),
    );
    reply(
        MaToCl::DirStats {
            msgid: 1,
            stats: DirStats { inodes: 1, dirs: 2, files: 3, chunks: 4, length: 5, size: 6, realsize: 7 },
            padded: false,
        },
        cat(&[
            &header(463, 44),
            &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4],
            &5u64.to_be_bytes(),
            &6u64.to_be_bytes(),
            &7u64.to_be_bytes(),
        ]),
    );
}

#[test]
fn metalogger_forms() {
    let ml = |msg: MlToMa, want: Vec<u8>| {
        assert_eq!(msg.to_packet(), want);
        let (kind, p) = payload(&want);
        assert_eq!(MlToMa::decode(kind, p), Ok(msg));
    };
    let mm = |msg: MaToMl, want: Vec<u8>| {
        assert_eq!(msg.to_packet(), want);
        let (kind, p) = payload(&want);
        assert_eq!(MaToMl::decode(kind, p), Ok(msg));
    };
    ml(
        MlToMa::RegisterFrom { version: 0x0003_00EA, timeout: 60, min_version: 1000 },
        cat(&[&header(metalogger::REGISTER, 15), &[2, 0, 3, 0, 0xEA, 0, 60], &1000u64.to_be_bytes()]),
    );
    mm(MaToMl::Rotate, cat(&[&header(51, 1), &[0x55]]));
    mm(MaToMl::DownloadFailed(Status(0xFF)), cat(&[&header(61, 1), &[0xFF]]));
}
