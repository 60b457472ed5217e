//! Encode → frame → decode round trips for every message of the client
//! link (9421) and the metalogger link (9419), plus the forms that decode
//! but re-encode differently (older request layouts, the deprecated
//! sustained-inodes id, empty NOPs).

mod client_common;

use client_common::*;
use elkfs_proto::client::{ids, ClToMa, Cred, DirEntries, DirForm, MaToCl, EDGEID_MAX};
use elkfs_proto::frame::{Encode, ANTOMA_MAX_PAYLOAD, MATOAN_MAX_PAYLOAD};
use elkfs_proto::metalogger::{MaToMl, MlToMa};
use elkfs_proto::{Error, Header, HEADER_LEN};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

fn split(packet: &[u8]) -> (Header, &[u8]) {
    assert!(packet.len() >= HEADER_LEN, "packet shorter than a header");
    let header = Header::parse(packet[..HEADER_LEN].try_into().unwrap());
    assert_eq!(header.len as usize, packet.len() - HEADER_LEN, "header length is not the payload length");
    (header, &packet[HEADER_LEN..])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn cl_to_ma_round_trips(msg in cl_to_ma()) {
        let packet = msg.to_packet();
        let (header, payload) = split(&packet);
        prop_assert_eq!(header.kind, msg.kind());
        prop_assert_eq!(ClToMa::decode(header.kind, payload), Ok(msg.clone()));
    }

    #[test]
    fn ma_to_cl_round_trips(msg in ma_to_cl()) {
        let packet = msg.to_packet();
        let (header, payload) = split(&packet);
        prop_assert_eq!(header.kind, msg.kind());
        prop_assert_eq!(MaToCl::decode(header.kind, payload, dir_form(&msg)), Ok(msg.clone()));
        // Replies echo the request's id, pushes carry 0 where the id goes.
        if let Some(msgid) = msg.msgid() {
            prop_assert_eq!(&payload[..4], &msgid.to_be_bytes());
        }
    }

    #[test]
    fn ml_to_ma_round_trips(msg in ml_to_ma()) {
        let packet = msg.to_packet();
        let (header, payload) = split(&packet);
        prop_assert!(header.len as usize <= ANTOMA_MAX_PAYLOAD);
        prop_assert_eq!(MlToMa::decode(header.kind, payload), Ok(msg.clone()));
    }

    #[test]
    fn ma_to_ml_round_trips(msg in ma_to_ml()) {
        let packet = msg.to_packet();
        let (header, payload) = split(&packet);
        prop_assert!(header.len as usize <= MATOAN_MAX_PAYLOAD);
        prop_assert_eq!(MaToMl::decode(header.kind, payload), Ok(msg.clone()));
    }
}

fn assert_covers<T: std::fmt::Debug>(strategy: BoxedStrategy<T>, variant: fn(&T) -> usize, count: usize) {
    let mut runner = TestRunner::deterministic();
    let mut seen = vec![false; count];
    for _ in 0..50_000 {
        let value = strategy.new_tree(&mut runner).unwrap().current();
        seen[variant(&value)] = true;
        if seen.iter().all(|s| *s) {
            return;
        }
    }
    let missing: Vec<usize> = seen.iter().enumerate().filter(|(_, s)| !**s).map(|(i, _)| i).collect();
    panic!("variants never generated: {missing:?}");
}

#[test]
fn generators_cover_every_variant() {
    assert_covers(cl_to_ma(), cl_to_ma_variant, CL_TO_MA_VARIANTS);
    assert_covers(ma_to_cl(), ma_to_cl_variant, MA_TO_CL_VARIANTS);
    assert_covers(ml_to_ma(), ml_to_ma_variant, ML_TO_MA_VARIANTS);
    assert_covers(ma_to_ml(), ma_to_ml_variant, MA_TO_ML_VARIANTS);
}

fn be(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Pre-2.0 requests put one gid where the list goes; they decode to a
/// one-gid credential (and re-encode in the counted form).
#[test]
fn single_gid_requests_decode() {
    let lookup =
        be(&[&7u32.to_be_bytes(), &1u32.to_be_bytes(), &[2, b'a', b'b'], &5u32.to_be_bytes(), &6u32.to_be_bytes()]);
    let msg = ClToMa::decode(ids::LOOKUP, &lookup).unwrap();
    let cred = Cred { uid: 5, gids: vec![6] };
    assert_eq!(msg, ClToMa::Lookup { msgid: 7, parent: 1, name: b"ab".to_vec(), cred: cred.clone() });
    assert_eq!(msg.to_packet().len(), HEADER_LEN + lookup.len() + 4);

    // OPEN: 17 bytes is `uid gid flags`.
    let open = be(&[&7u32.to_be_bytes(), &9u32.to_be_bytes(), &5u32.to_be_bytes(), &6u32.to_be_bytes(), &[3]]);
    assert_eq!(ClToMa::decode(ids::OPEN, &open), Ok(ClToMa::Open { msgid: 7, inode: 9, cred, flags: 3 }));

    // ACCESS: odd length, 8-bit mask.
    let access = be(&[&7u32.to_be_bytes(), &9u32.to_be_bytes(), &5u32.to_be_bytes(), &6u32.to_be_bytes(), &[4]]);
    let want = ClToMa::Access { msgid: 7, inode: 9, cred: Cred { uid: 5, gids: vec![6] }, mask: 4 };
    assert_eq!(ClToMa::decode(ids::ACCESS, &access), Ok(want));
}

/// The older `WRITE_CHUNK_END` forms (24 and 25 bytes) and the flagless
/// chunk requests (12 bytes) decode.
#[test]
fn older_chunk_request_forms_decode() {
    let head = be(&[&1u32.to_be_bytes(), &2u64.to_be_bytes(), &3u32.to_be_bytes(), &4u64.to_be_bytes()]);
    let want = |flags| ClToMa::WriteChunkEnd { msgid: 1, chunk: 2, inode: 3, index: None, length: 4, flags };
    assert_eq!(ClToMa::decode(ids::WRITE_CHUNK_END, &head), Ok(want(None)));
    let mut with_flags = head.clone();
    with_flags.push(9);
    assert_eq!(ClToMa::decode(ids::WRITE_CHUNK_END, &with_flags), Ok(want(Some(9))));
    with_flags.extend_from_slice(&[0, 0]);
    assert_eq!(ClToMa::decode(ids::WRITE_CHUNK_END, &with_flags), Err(Error::BadLength { kind: 436, len: 27 }));

    let read = be(&[&1u32.to_be_bytes(), &2u32.to_be_bytes(), &3u32.to_be_bytes()]);
    assert_eq!(
        ClToMa::decode(ids::READ_CHUNK, &read),
        Ok(ClToMa::ReadChunk { msgid: 1, inode: 2, index: 3, flags: 0 })
    );
}

#[test]
fn deprecated_and_empty_forms() {
    let ids = be(&[&5u32.to_be_bytes(), &6u32.to_be_bytes()]);
    let msg = ClToMa::decode(ids::SUSTAINED_INODES_DEPRECATED, &ids).unwrap();
    assert_eq!(msg, ClToMa::SustainedInodes(vec![5, 6]));
    assert_eq!(msg.kind(), ids::SUSTAINED_INODES);
    assert!(ClToMa::decode(ids::SUSTAINED_INODES, &ids[..7]).is_err());
    assert_eq!(ClToMa::decode(ids::NOP, &[]), Ok(ClToMa::Nop { msgid: 0 }));
    assert_eq!(MaToCl::decode(ids::NOP, &[], DirForm::Types), Ok(MaToCl::Nop { msgid: 0 }));
}

/// Unknown requests inside the FUSE and admin ranges are kept (to be
/// answered); outside them they are errors.
#[test]
fn unknown_requests_by_range() {
    let payload = 77u32.to_be_bytes();
    assert_eq!(ClToMa::decode(ids::SNAPSHOT, &payload), Ok(ClToMa::Other { kind: 468, msgid: Some(77) }));
    assert_eq!(ClToMa::decode(ids::SCLASS_LIST, &payload), Ok(ClToMa::Other { kind: 360, msgid: Some(77) }));
    assert_eq!(ClToMa::decode(ids::SESSION_LIST, &[]), Ok(ClToMa::Other { kind: 508, msgid: None }));
    assert!(matches!(ClToMa::decode(ids::SNAPSHOT, &[0, 1]), Err(Error::Truncated { .. })));
    assert!(matches!(ClToMa::decode(349, &payload), Err(Error::UnknownType { kind: 349, .. })));
    assert!(matches!(ClToMa::decode(548, &payload), Err(Error::UnknownType { kind: 548, .. })));
    // Odd ids are replies: no client sends them, and no status answers them.
    assert!(matches!(ClToMa::decode(ids::SNAPSHOT_REPLY, &payload), Err(Error::UnknownType { .. })));
    assert!(matches!(ClToMa::decode(ids::REGISTER_REPLY, &payload), Err(Error::UnknownType { .. })));
    assert!(matches!(ClToMa::decode(ids::CHUNK_HAS_CHANGED, &payload), Err(Error::UnknownType { .. })));
}

/// A reply decoded with the wrong entry form fails or yields other entries;
/// the request's flag must be passed.
#[test]
fn readdir_form_comes_from_the_request() {
    let msg = MaToCl::ReadDir {
        msgid: 1,
        next_edge: EDGEID_MAX,
        entries: DirEntries::Types(vec![(b".".to_vec(), 1, 2), (b"..".to_vec(), 1, 2)]),
    };
    let packet = msg.to_packet();
    let payload = &packet[HEADER_LEN..];
    assert_eq!(MaToCl::decode(ids::READDIR_REPLY, payload, DirForm::Types), Ok(msg));
    assert!(MaToCl::decode(ids::READDIR_REPLY, payload, DirForm::Attrs).is_err());
}
