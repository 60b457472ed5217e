//! The decoders never panic: whatever a peer sends, they return `Ok` or
//! `Err`.
//!
//! Two kinds of input: random bytes under random (or known) message types,
//! and mutations (bit flips, overwrites, truncation, extension, a forged
//! length) of valid packets from the shared generators, which reach far
//! deeper into each decoder than random bytes do. Case counts keep the whole
//! file at a few seconds in a debug build.

mod common;

use common::*;
use elkfs_proto::data::{self, DataMsg, ReadDataHead, WriteDataHead, READ_DATA_HEAD_LEN, WRITE_DATA_HEAD_LEN};
use elkfs_proto::frame::Encode;
use elkfs_proto::master_cs::{CsToMa, MaToCs};
use elkfs_proto::{Error, Header, HEADER_LEN};
use proptest::collection::vec;
use proptest::prelude::*;

/// A message type: mostly ones the decoders know, sometimes anything.
fn kind() -> impl Strategy<Value = u32> {
    prop_oneof![3 => proptest::sample::select(KNOWN_KINDS), 1 => any::<u32>()]
}

/// Random payloads: mostly short, sometimes long, sometimes exactly a length
/// that some message form has (those get past the length checks).
fn payload() -> impl Strategy<Value = Vec<u8>> {
    const LENGTHS: &[usize] =
        &[0, 1, 4, 5, 7, 8, 9, 12, 13, 15, 16, 17, 18, 19, 20, 21, 24, 25, 28, 32, 33, 40, 41, 46, 55, 71, 172, 4108];
    prop_oneof![
        8 => vec(any::<u8>(), 0..300),
        1 => vec(any::<u8>(), 300..5000),
        3 => proptest::sample::select(LENGTHS).prop_flat_map(|n| vec(any::<u8>(), n)),
    ]
}

/// Every decoder on one (kind, payload, announced length); the results are
/// thrown away, only a panic would fail the test.
fn decode_all(kind: u32, payload: &[u8], announced: usize) {
    let _ = DataMsg::decode(kind, payload);
    let _ = DataMsg::decode_framed(kind, payload, announced);
    let _ = CsToMa::decode(kind, payload);
    let _ = MaToCs::decode(kind, payload);
    let _ = ReadDataHead::decode(payload, announced);
    let _ = WriteDataHead::decode(payload, announced);
}

/// Any successfully decoded message re-encodes without panicking.
fn reencode_ok(kind: u32, payload: &[u8]) {
    if let Ok(m) = DataMsg::decode(kind, payload) {
        let _ = m.to_packet();
    }
    if let Ok(m) = CsToMa::decode(kind, payload) {
        let _ = m.to_packet();
    }
    if let Ok(m) = MaToCs::decode(kind, payload) {
        let _ = m.to_packet();
    }
}

/// An announced length: near the real one, or anything at all.
fn announced(real: usize) -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(real),
        (0usize..64).prop_map(move |d| real.saturating_sub(32) + d),
        any::<u32>().prop_map(|n| n as usize),
        any::<usize>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6000))]

    #[test]
    fn random_payloads_never_panic(kind in kind(), payload in payload(), pick in any::<prop::sample::Index>()) {
        let announced = [payload.len(), pick.index(200_000), pick.index(usize::MAX)][pick.index(3)];
        decode_all(kind, &payload, announced);
        reencode_ok(kind, &payload);
    }

    #[test]
    fn framed_with_any_announced_length(
        (payload, announced) in payload().prop_flat_map(|p| { let n = p.len(); (Just(p), announced(n)) }),
        bulk in proptest::sample::select(&[data::READ_DATA, data::WRITE_DATA][..]),
    ) {
        let _ = DataMsg::decode_framed(bulk, &payload, announced);
        let _ = ReadDataHead::decode(&payload, announced);
        let _ = WriteDataHead::decode(&payload, announced);
    }

    /// Heads whose `size` field agrees with the announced length, so the
    /// length check passes and the block-bounds check runs with extreme
    /// offsets and sizes.
    #[test]
    fn bulk_heads_with_consistent_size(
        chunk in any::<u64>(), block in any::<u16>(), offset in any::<u16>(),
        size in prop_oneof![any::<u32>(), (u32::MAX - 0x1_0000)..=u32::MAX, 0u32..=0x1_0001],
    ) {
        let mut r = Vec::new();
        r.extend_from_slice(&chunk.to_be_bytes());
        r.extend_from_slice(&block.to_be_bytes());
        r.extend_from_slice(&offset.to_be_bytes());
        r.extend_from_slice(&size.to_be_bytes());
        r.extend_from_slice(&0u32.to_be_bytes());
        let announced = READ_DATA_HEAD_LEN as u64 + size as u64;
        let got = ReadDataHead::decode(&r, announced as usize);
        prop_assert_eq!(got.is_ok(), offset as u64 + size as u64 <= 0x1_0000);
        let _ = DataMsg::decode_framed(data::READ_DATA, &r, announced as usize);

        let mut w = chunk.to_be_bytes().to_vec();
        w.extend_from_slice(&7u32.to_be_bytes());
        w.extend_from_slice(&r[8..]);
        let announced = WRITE_DATA_HEAD_LEN as u64 + size as u64;
        let got = WriteDataHead::decode(&w, announced as usize);
        prop_assert_eq!(got.is_ok(), offset as u64 + size as u64 <= 0x1_0000);
        let _ = DataMsg::decode_framed(data::WRITE_DATA, &w, announced as usize);
    }

    #[test]
    fn header_limit_is_exact(bytes in any::<[u8; 8]>(), max in prop_oneof![any::<usize>(), 0usize..200_000]) {
        let plain = Header::parse(&bytes);
        match Header::parse_limited(&bytes, max) {
            Ok(h) => {
                prop_assert_eq!(h, plain);
                prop_assert!(h.len as usize <= max);
            }
            Err(Error::TooLarge { kind, len, max: m }) => {
                prop_assert_eq!((kind, len, m), (plain.kind, plain.len as usize, max));
                prop_assert!(len > max);
            }
            Err(e) => prop_assert!(false, "unexpected error {:?}", e),
        }
        prop_assert_eq!(plain.to_bytes(), bytes);
    }
}

/// One edit of a valid packet.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(prop::sample::Index, u8),
    SetByte(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    Extend(Vec<u8>),
    /// Rewrites the header's length field.
    ForgeLength(u32),
    /// Replaces the message type with another known one.
    SwapKind(u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        3 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        2 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        2 => vec(any::<u8>(), 1..40).prop_map(Mutation::Extend),
        1 => any::<u32>().prop_map(Mutation::ForgeLength),
        1 => proptest::sample::select(KNOWN_KINDS).prop_map(Mutation::SwapKind),
    ]
}

fn apply(packet: &mut Vec<u8>, m: &Mutation) {
    if packet.is_empty() && matches!(m, Mutation::FlipBit(..) | Mutation::SetByte(..)) {
        return;
    }
    match m {
        Mutation::FlipBit(i, b) => {
            let i = i.index(packet.len());
            packet[i] ^= 1 << b;
        }
        Mutation::SetByte(i, v) => {
            let i = i.index(packet.len());
            packet[i] = *v;
        }
        Mutation::Truncate(i) => packet.truncate(i.index(packet.len() + 1)),
        Mutation::Extend(more) => packet.extend_from_slice(more),
        Mutation::ForgeLength(n) => {
            if packet.len() >= HEADER_LEN {
                packet[4..8].copy_from_slice(&n.to_be_bytes());
            }
        }
        Mutation::SwapKind(k) => {
            if packet.len() >= HEADER_LEN {
                packet[..4].copy_from_slice(&k.to_be_bytes());
            }
        }
    }
}

/// Parses a mutated packet the way a receiver would and runs every decoder
/// on what follows the header.
fn decode_mutated(packet: &[u8]) {
    if packet.len() < HEADER_LEN {
        return;
    }
    let head: &[u8; HEADER_LEN] = packet[..HEADER_LEN].try_into().unwrap();
    let header = Header::parse(head);
    let _ = Header::parse_limited(head, data::READ_DATA_HEAD_LEN);
    let payload = &packet[HEADER_LEN..];
    decode_all(header.kind, payload, header.len as usize);
    reencode_ok(header.kind, payload);
}

/// A valid packet from any of the three message families; bulk heads come
/// with their data so truncation can cut into it.
fn valid_packet() -> impl Strategy<Value = Vec<u8>> {
    let with_data = |m: DataMsg| {
        let mut p = m.to_packet();
        let size = match &m {
            DataMsg::ReadData(h) => h.size,
            DataMsg::WriteData(h) => h.size,
            _ => 0,
        };
        // Keep the cases small: the decoders only count data bytes.
        p.extend(std::iter::repeat_n(0xA5, size.min(64) as usize));
        p
    };
    prop_oneof![
        data_msg().prop_map(with_data),
        cs_to_ma().prop_map(|m| m.to_packet()),
        ma_to_cs().prop_map(|m| m.to_packet()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn mutated_packets_never_panic(mut packet in valid_packet(), edits in vec(mutation(), 1..5)) {
        for m in &edits {
            apply(&mut packet, m);
        }
        decode_mutated(&packet);
    }
}

/// Regression: a head announcing a size near `u32::MAX` used to overflow
/// `offset + size` in the block-bounds check (a panic in debug builds, and
/// a wrapped sum that let the piece through in release builds).
#[test]
fn huge_size_with_matching_announced_length_is_refused() {
    let size = u32::MAX - READ_DATA_HEAD_LEN as u32;
    let head = ReadDataHead { chunk: 1, block: 0, offset: 0xFFFF, size, crc: 0 };
    let payload = &head.packet_prefix()[HEADER_LEN..];
    let announced = READ_DATA_HEAD_LEN + size as usize;
    assert!(matches!(ReadDataHead::decode(payload, announced), Err(Error::BadValue { .. })));
    assert!(DataMsg::decode_framed(data::READ_DATA, payload, announced).is_err());

    let size = u32::MAX - WRITE_DATA_HEAD_LEN as u32;
    let head = WriteDataHead { chunk: 1, write_id: 1, block: 0, offset: 1, size, crc: 0 };
    let payload = &head.packet_prefix()[HEADER_LEN..];
    let announced = WRITE_DATA_HEAD_LEN + size as usize;
    assert!(matches!(WriteDataHead::decode(payload, announced), Err(Error::BadValue { .. })));
    assert!(DataMsg::decode_framed(data::WRITE_DATA, payload, announced).is_err());
}
