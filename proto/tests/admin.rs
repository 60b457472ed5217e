//! The monitoring messages of the client port (`admin`): round trips of
//! every request and reply form, decoders that never panic on random or
//! mutated input, and replies captured from a real MooseFS 3.0.117 master.
//!
//! The capture (`fixtures/admin_3.0.117.txt`, `KIND HEX` per line) comes
//! from `tests/admin_real.rs` in the root crate, which prints the same lines
//! from a fresh real master with one real chunkserver and one mount.

use elkfs_proto::admin::*;
use elkfs_proto::frame::Encode;
use elkfs_proto::{Header, HEADER_LEN};
use proptest::collection::vec;
use proptest::prelude::*;

fn request() -> impl Strategy<Value = AdminRequest> {
    let byte = proptest::option::of(any::<u8>());
    prop_oneof![
        Just(AdminRequest::CservList),
        byte.clone().prop_map(|vmode| AdminRequest::SessionList { vmode }),
        Just(AdminRequest::Info),
        byte.clone().prop_map(|mode| AdminRequest::FsTestInfo { mode }),
        Just(AdminRequest::ChunksTestInfo),
        byte.clone().prop_map(|matrix| AdminRequest::ChunksMatrix { matrix }),
        Just(AdminRequest::MlogList),
        Just(AdminRequest::MemoryInfo),
        byte.prop_map(|mode| AdminRequest::MissingChunks { mode }),
    ]
}

fn info() -> impl Strategy<Value = MasterInfo> {
    (vec(any::<u64>(), 11), vec(any::<u32>(), 14), any::<u8>(), any::<[u8; 4]>()).prop_map(|(q, l, status, state)| {
        MasterInfo {
            version: l[0],
            memory_bytes: q[0],
            sys_cpu: q[1],
            user_cpu: q[2],
            total_space: q[3],
            avail_space: q[4],
            free_space: q[5],
            trash_space: q[6],
            trash_files: l[1],
            sustained_space: q[7],
            sustained_files: l[2],
            inodes: l[3],
            dirs: l[4],
            files: l[5],
            chunks: l[6],
            all_copies: l[7],
            regular_copies: l[8],
            last_store_time: l[9],
            last_store_ms: l[10],
            last_store_status: status,
            state,
            leader_ip: l[11],
            state_change_time: l[12],
            meta_version: q[8],
            exports_checksum: q[9],
            clock_us: q[10],
            changelog_time: l[13],
        }
    })
}

fn cs_entry() -> impl Strategy<Value = CsEntry> {
    (any::<u8>(), 0..0x100_0000u32, vec(any::<u64>(), 4), vec(any::<u32>(), 7), any::<u16>(), any::<u16>(), any::<u8>())
        .prop_map(|(flags, version, q, l, port, csid, mfr_status)| CsEntry {
            flags,
            version,
            ip: l[0],
            port,
            csid,
            used: q[0],
            total: q[1],
            chunks: l[1],
            td_used: q[2],
            td_total: q[3],
            td_chunks: l[2],
            errors: l[3],
            load: l[4],
            grace_time: l[5],
            labels: l[6],
            mfr_status,
        })
}

fn session(vmode: u8, stats: u16) -> impl Strategy<Value = SessionEntry> {
    let n = stats as usize;
    (
        vec(any::<u32>(), 13),
        any::<[u8; 4]>(),
        any::<u16>(),
        vec(any::<u8>(), 0..40),
        vec(any::<u8>(), 0..40),
        vec(any::<u32>(), n),
        vec(any::<u32>(), n),
    )
        .prop_map(move |(l, b, umask, info, path, stats_current, stats_last_hour)| SessionEntry {
            id: l[0],
            ip: l[1],
            version: l[2],
            open_files: l[3],
            sockets: b[0],
            expire: l[4],
            info,
            path,
            flags: b[1],
            umask: if vmode >= 3 { umask } else { 0 },
            root_uid: l[5],
            root_gid: l[6],
            mapall_uid: l[7],
            mapall_gid: l[8],
            min_goal: b[2],
            max_goal: b[3],
            min_trash: l[9],
            max_trash: l[10],
            disables: if vmode >= 4 { l[11] } else { 0 },
            stats_current,
            stats_last_hour,
        })
}

fn session_list(vmode: u8) -> impl Strategy<Value = SessionList> {
    (0u16..20).prop_flat_map(move |stats| {
        vec(session(vmode, stats), 0..4).prop_map(move |sessions| SessionList { vmode, stats, sessions })
    })
}

fn matrix() -> impl Strategy<Value = Box<Matrix>> {
    vec(any::<u32>(), MATRIX_SIDE * MATRIX_SIDE).prop_map(|v| {
        let mut m = Box::new([[0; MATRIX_SIDE]; MATRIX_SIDE]);
        for (i, x) in v.into_iter().enumerate() {
            m[i / MATRIX_SIDE][i % MATRIX_SIDE] = x;
        }
        m
    })
}

/// Replies in the forms `AdminReply::decode` reads back (session layout 4,
/// FSTEST with trash counts, MISSING_CHUNKS mode 1).
fn reply() -> impl Strategy<Value = AdminReply> {
    prop_oneof![
        vec(cs_entry(), 0..5).prop_map(AdminReply::CservList),
        session_list(SESSION_VMODE_DISABLES).prop_map(AdminReply::SessionList),
        info().prop_map(AdminReply::Info),
        (vec(any::<u32>(), 10), vec(any::<u8>(), 0..100)).prop_map(|(l, message)| AdminReply::FsTestInfo(FsTestInfo {
            loop_start: l[0],
            loop_end: l[1],
            files: l[2],
            undergoal_files: l[3],
            missing_files: l[4],
            missing_trash_sustained: Some((l[5], l[6])),
            chunks: l[7],
            undergoal_chunks: l[8],
            missing_chunks: l[9],
            message,
        })),
        any::<[u32; CHUNKSTEST_WORDS]>().prop_map(AdminReply::ChunksTestInfo),
        (any::<u8>(), matrix(), matrix()).prop_map(|(progress, all, regular)| AdminReply::ChunksMatrices {
            progress,
            all,
            regular
        }),
        matrix().prop_map(AdminReply::ChunksMatrix),
        vec(any::<(u32, u32)>(), 0..5)
            .prop_map(|v| AdminReply::MlogList(v.into_iter().map(|(version, ip)| MlogEntry { version, ip }).collect())),
        vec(any::<u64>(), MEMORY_INFO_WORDS).prop_map(|v| {
            let mut m = [0; MEMORY_INFO_WORDS];
            m.copy_from_slice(&v);
            AdminReply::MemoryInfo(m)
        }),
        vec(any::<(u64, u32, u32, u8)>(), 0..5).prop_map(|v| AdminReply::MissingChunks(
            v.into_iter().map(|(chunk, inode, index, kind)| MissingChunk { chunk, inode, index, kind }).collect()
        )),
    ]
}

fn split(packet: &[u8]) -> (Header, &[u8]) {
    let header = Header::parse(packet[..HEADER_LEN].try_into().expect("a header"));
    assert_eq!(header.len as usize, packet.len() - HEADER_LEN);
    (header, &packet[HEADER_LEN..])
}

const KINDS: &[u32] = &[500, 501, 508, 509, 510, 511, 512, 513, 514, 515, 516, 517, 522, 523, 528, 529, 544, 545];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn requests_round_trip(req in request()) {
        let packet = req.to_packet();
        let (h, payload) = split(&packet);
        prop_assert_eq!(AdminRequest::decode(h.kind, payload), Ok(req));
        prop_assert_eq!(req.reply_kind(), h.kind + 1);
    }

    #[test]
    fn replies_round_trip(rep in reply()) {
        let packet = rep.to_packet();
        let (h, payload) = split(&packet);
        prop_assert_eq!(AdminReply::decode(h.kind, payload), Ok(rep));
    }

    #[test]
    fn older_session_layouts_round_trip((vmode, list) in (2u8..=3).prop_flat_map(|v| (Just(v), session_list(v)))) {
        let packet = AdminReply::SessionList(list.clone()).to_packet();
        prop_assert_eq!(SessionList::decode(&packet[HEADER_LEN..], vmode), Ok(list));
    }

    #[test]
    fn random_bytes_never_panic(kind in prop_oneof![3 => proptest::sample::select(KINDS), 1 => any::<u32>()],
                                payload in prop_oneof![vec(any::<u8>(), 0..300), vec(any::<u8>(), 960..1000)]) {
        let _ = AdminRequest::decode(kind, &payload);
        if let Ok(r) = AdminReply::decode(kind, &payload) {
            let _ = r.to_packet();
        }
        for vmode in 0..6 {
            let _ = SessionList::decode(&payload, vmode);
        }
    }

    #[test]
    fn mutated_replies_never_panic(rep in reply(), at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
        let packet = rep.to_packet();
        let mut payload = packet[HEADER_LEN..].to_vec();
        if !payload.is_empty() {
            let i = at % payload.len();
            payload[i] = byte;
            payload.truncate(payload.len() - cut % (payload.len() + 1) / 2);
        }
        let _ = AdminReply::decode(rep.kind(), &payload);
    }
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

fn fixture() -> Vec<(u32, Vec<u8>)> {
    include_str!("fixtures/admin_3.0.117.txt")
        .lines()
        .map(|l| {
            let (k, hex) = l.split_once(' ').unwrap_or((l, ""));
            (k.parse().expect("kind"), unhex(hex.trim()))
        })
        .collect()
}

#[test]
fn real_master_replies_decode_and_reencode_byte_for_byte() {
    let replies = fixture();
    let kinds: Vec<u32> = replies.iter().map(|r| r.0).collect();
    assert_eq!(kinds, [511, 501, 523, 509, 517, 513, 515, 529, 545]);
    for (kind, payload) in &replies {
        let reply = AdminReply::decode(*kind, payload).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let mut again = Vec::new();
        reply.encode_payload(&mut again);
        assert_eq!(&again, payload, "{kind} re-encodes differently");
        match reply {
            AdminReply::Info(i) => {
                assert_eq!(i.version, 0x0003_00EA);
                assert_eq!((i.inodes, i.dirs, i.files, i.chunks), (1, 1, 0, 0));
                assert_eq!(i.state, STATE_NO_HA);
                assert!(i.total_space > 0 && i.avail_space <= i.total_space && i.meta_version > 0);
            }
            AdminReply::CservList(list) => {
                assert_eq!(list.len(), 1);
                let cs = list[0];
                assert_eq!((cs.flags, cs.version, cs.port, cs.csid), (0, 0x0003_00EA, 9422, 1));
                assert!(cs.total > cs.used && cs.used > 0);
            }
            AdminReply::MlogList(list) => assert!(list.is_empty()),
            AdminReply::SessionList(list) => {
                assert_eq!((list.vmode, list.stats, list.sessions.len()), (4, SESSION_STATS, 1));
                let s = &list.sessions[0];
                assert_eq!((s.id, s.version, s.sockets, s.expire), (1, 0x0003_00EA, 1, u32::MAX));
                assert!(s.info.ends_with(b"/mnt"), "{:?}", String::from_utf8_lossy(&s.info));
                assert_eq!(s.path, b"/");
            }
            AdminReply::ChunksMatrices { all, .. } => assert_eq!(all.iter().flatten().sum::<u32>(), 0),
            AdminReply::FsTestInfo(t) => assert!(t.missing_trash_sustained.is_some() && t.message.is_empty()),
            AdminReply::ChunksTestInfo(_) | AdminReply::MemoryInfo(_) | AdminReply::MissingChunks(_) => {}
            AdminReply::ChunksMatrix(_) => panic!("both matrices were asked for"),
        }
    }
}
