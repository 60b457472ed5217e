//! The client-link and metalogger-link decoders never panic, and whatever
//! they accept re-encodes without tripping an encoder assertion.
//!
//! Inputs: random bytes under known or random ids, and mutations (bit
//! flips, overwrites, truncation, extension, a swapped id) of valid packets
//! from the shared generators.

mod client_common;

use client_common::*;
use elkfs_proto::client::{ClToMa, DirForm, MaToCl};
use elkfs_proto::frame::Encode;
use elkfs_proto::metalogger::{MaToMl, MlToMa};
use elkfs_proto::{Header, HEADER_LEN};
use proptest::collection::vec;
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = u32> {
    prop_oneof![4 => proptest::sample::select(CLIENT_KINDS), 1 => any::<u32>(), 1 => 340u32..560]
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    const LENGTHS: &[usize] = &[
        0, 1, 4, 5, 7, 8, 9, 12, 13, 15, 16, 17, 18, 21, 24, 25, 27, 29, 32, 33, 40, 41, 42, 44, 45, 46, 48, 49, 52,
        60, 65, 69, 73, 77, 81,
    ];
    prop_oneof![
        8 => vec(any::<u8>(), 0..300),
        3 => proptest::sample::select(LENGTHS).prop_flat_map(|n| vec(any::<u8>(), n)),
    ]
}

/// Every decoder on one payload; what decodes is re-encoded.
fn decode_all(kind: u32, payload: &[u8]) {
    if let Ok(m) = ClToMa::decode(kind, payload) {
        let _ = m.to_packet();
    }
    for form in [DirForm::Attrs, DirForm::Types] {
        if let Ok(m) = MaToCl::decode(kind, payload, form) {
            let _ = m.to_packet();
        }
    }
    if let Ok(m) = MlToMa::decode(kind, payload) {
        let _ = m.to_packet();
    }
    if let Ok(m) = MaToMl::decode(kind, payload) {
        let _ = m.to_packet();
    }
}

/// A registration prefix with random tail: gets past the blob check, which
/// random bytes never do.
fn register_payload() -> impl Strategy<Value = Vec<u8>> {
    (1u8..=7, vec(any::<u8>(), 0..120)).prop_map(|(code, tail)| {
        let mut p = elkfs_proto::client::REGISTER_BLOB.to_vec();
        p.push(code);
        p.extend_from_slice(&tail);
        p
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(prop::sample::Index, u8),
    SetByte(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    Extend(Vec<u8>),
    SwapKind(u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        3 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        2 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        2 => vec(any::<u8>(), 1..40).prop_map(Mutation::Extend),
        1 => proptest::sample::select(CLIENT_KINDS).prop_map(Mutation::SwapKind),
    ]
}

fn apply(packet: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::FlipBit(i, b) if !packet.is_empty() => {
            let i = i.index(packet.len());
            packet[i] ^= 1 << b;
        }
        Mutation::SetByte(i, v) if !packet.is_empty() => {
            let i = i.index(packet.len());
            packet[i] = *v;
        }
        Mutation::Truncate(i) => packet.truncate(i.index(packet.len() + 1)),
        Mutation::Extend(more) => packet.extend_from_slice(more),
        Mutation::SwapKind(k) if packet.len() >= HEADER_LEN => packet[..4].copy_from_slice(&k.to_be_bytes()),
        _ => {}
    }
}

fn valid_packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => cl_to_ma().prop_map(|m| m.to_packet()),
        3 => ma_to_cl().prop_map(|m| m.to_packet()),
        1 => ml_to_ma().prop_map(|m| m.to_packet()),
        1 => ma_to_ml().prop_map(|m| m.to_packet()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6000))]

    #[test]
    fn random_payloads_never_panic(kind in kind(), payload in payload()) {
        decode_all(kind, &payload);
    }

    #[test]
    fn random_registrations_never_panic(payload in register_payload()) {
        decode_all(elkfs_proto::client::ids::REGISTER, &payload);
    }

    #[test]
    fn mutated_packets_never_panic(mut packet in valid_packet(), edits in vec(mutation(), 1..5)) {
        for m in &edits {
            apply(&mut packet, m);
        }
        if packet.len() >= HEADER_LEN {
            let header = Header::parse(packet[..HEADER_LEN].try_into().unwrap());
            decode_all(header.kind, &packet[HEADER_LEN..]);
        }
    }
}
