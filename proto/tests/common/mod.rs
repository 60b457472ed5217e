//! Proptest strategies shared by the round-trip and fuzz tests: one
//! generator per message enum, covering every variant and every length form
//! that the encoders can produce.
//!
//! Each enum also has an exhaustive `*_variant` function (no wildcard arm),
//! so adding a variant without a generator fails to compile here.

#![allow(dead_code)]

use elkfs_proto::data::{DataMsg, ReadDataHead, WriteDataHead, CRC_TABLE_LEN};
use elkfs_proto::master_cs::{Ack, ChunkOp, CsToMa, MaToCs, Space};
use elkfs_proto::{Addr, Status};
use proptest::collection::vec;
use proptest::prelude::*;

pub fn status() -> impl Strategy<Value = Status> {
    any::<u8>().prop_map(Status)
}

pub fn addr() -> impl Strategy<Value = Addr> {
    (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| Addr { ip, port })
}

pub fn space() -> impl Strategy<Value = Space> {
    (any::<u64>(), any::<u64>(), any::<u32>(), any::<u64>(), any::<u64>(), any::<u32>()).prop_map(
        |(used, total, chunks, td_used, td_total, td_chunks)| Space {
            used,
            total,
            chunks,
            td_used,
            td_total,
            td_chunks,
        },
    )
}

/// A piece inside one 64 KiB block: `offset + size <= 65536`.
fn piece() -> impl Strategy<Value = (u16, u32)> {
    any::<u16>().prop_flat_map(|offset| (Just(offset), 0..=(0x10000 - offset as u32)))
}

pub fn read_data_head() -> impl Strategy<Value = ReadDataHead> {
    (any::<u64>(), any::<u16>(), piece(), any::<u32>()).prop_map(|(chunk, block, (offset, size), crc)| ReadDataHead {
        chunk,
        block,
        offset,
        size,
        crc,
    })
}

pub fn write_data_head() -> impl Strategy<Value = WriteDataHead> {
    (any::<u64>(), any::<u32>(), any::<u16>(), piece(), any::<u32>()).prop_map(
        |(chunk, write_id, block, (offset, size), crc)| WriteDataHead { chunk, write_id, block, offset, size, crc },
    )
}

fn chunk_version() -> impl Strategy<Value = (u64, u32)> {
    (any::<u64>(), any::<u32>())
}

/// Strings the `NAME` fields can carry: at most 255 bytes (the encoder
/// would cut a longer one, which then could not round-trip).
fn name() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=255)
}

/// `DataMsg::ChunkBlocks`, `ChunkChecksum`, `ChunkChecksumTab`: the replies
/// that also travel on the master link.
pub fn data_query_reply() -> BoxedStrategy<DataMsg> {
    prop_oneof![
        (chunk_version(), any::<u16>(), status())
            .prop_map(|((chunk, version), blocks, status)| { DataMsg::ChunkBlocks { chunk, version, blocks, status } }),
        (chunk_version(), prop_oneof![any::<u32>().prop_map(Ok), status().prop_map(Err)])
            .prop_map(|((chunk, version), result)| DataMsg::ChunkChecksum { chunk, version, result }),
        (chunk_version(), prop_oneof![vec(any::<u32>(), CRC_TABLE_LEN).prop_map(Ok), status().prop_map(Err)])
            .prop_map(|((chunk, version), result)| DataMsg::ChunkChecksumTab { chunk, version, result }),
    ]
    .boxed()
}

/// `DataMsg::GetChunkBlocks`, `GetChunkChecksum`, `GetChunkChecksumTab`.
pub fn data_query() -> BoxedStrategy<DataMsg> {
    prop_oneof![
        chunk_version().prop_map(|(chunk, version)| DataMsg::GetChunkBlocks { chunk, version }),
        chunk_version().prop_map(|(chunk, version)| DataMsg::GetChunkChecksum { chunk, version }),
        chunk_version().prop_map(|(chunk, version)| DataMsg::GetChunkChecksumTab { chunk, version }),
    ]
    .boxed()
}

/// Every `DataMsg` variant. `Version` only with `msgid: None`: its decoder
/// cannot tell a leading msgid from the version number (the layout has no
/// marker), so it always decodes the form without one.
pub fn data_msg() -> BoxedStrategy<DataMsg> {
    prop_oneof![
        Just(DataMsg::Nop),
        any::<Option<u32>>().prop_map(|msgid| DataMsg::GetVersion { msgid }),
        (any::<u32>(), any::<String>()).prop_map(|(version, text)| DataMsg::Version { msgid: None, version, text }),
        (any::<u32>(), name()).prop_map(|(msgid, name)| DataMsg::GetConfig { msgid, name }),
        (any::<u32>(), name()).prop_map(|(msgid, value)| DataMsg::ConfigValue { msgid, value }),
        (any::<Option<u8>>(), chunk_version(), any::<u32>(), any::<u32>()).prop_map(
            |(protocol, (chunk, version), offset, size)| DataMsg::Read { protocol, chunk, version, offset, size }
        ),
        (any::<u64>(), status()).prop_map(|(chunk, status)| DataMsg::ReadStatus { chunk, status }),
        read_data_head().prop_map(DataMsg::ReadData),
        (any::<Option<u8>>(), chunk_version(), vec(addr(), 0..12))
            .prop_map(|(protocol, (chunk, version), chain)| DataMsg::Write { protocol, chunk, version, chain }),
        (any::<u64>(), any::<u32>(), status()).prop_map(|(chunk, write_id, status)| DataMsg::WriteStatus {
            chunk,
            write_id,
            status
        }),
        write_data_head().prop_map(DataMsg::WriteData),
        chunk_version().prop_map(|(chunk, version)| DataMsg::WriteFinish { chunk, version }),
        data_query(),
        data_query_reply(),
    ]
    .boxed()
}

fn chunk_list() -> impl Strategy<Value = Vec<(u64, u32)>> {
    vec(chunk_version(), 0..40)
}

pub fn chunk_op() -> impl Strategy<Value = ChunkOp> {
    (any::<u64>(), any::<u32>(), any::<u32>(), any::<u64>(), any::<u32>(), any::<u32>()).prop_map(
        |(chunk, version, new_version, copy_chunk, copy_version, length)| ChunkOp {
            chunk,
            version,
            new_version,
            copy_chunk,
            copy_version,
            length,
        },
    )
}

/// Every `CsToMa` variant, every length form the encoder emits.
pub fn cs_to_ma() -> BoxedStrategy<CsToMa> {
    prop_oneof![
        Just(CsToMa::Nop),
        (any::<Option<[u8; 16]>>(), any::<u32>(), addr(), any::<u16>(), any::<u16>(), space()).prop_map(
            |(auth, version, a, timeout, csid, space)| CsToMa::RegisterBegin {
                auth,
                version,
                ip: a.ip,
                port: a.port,
                timeout,
                csid,
                space
            }
        ),
        chunk_list().prop_map(CsToMa::RegisterChunks),
        Just(CsToMa::RegisterEnd),
        Just(CsToMa::RegisterDisconnect),
        (any::<u32>(), addr(), any::<u16>()).prop_map(|(version, a, timeout)| CsToMa::RegisterBeginV5 {
            version,
            ip: a.ip,
            port: a.port,
            timeout
        }),
        chunk_list().prop_map(CsToMa::RegisterChunksV5),
        space().prop_map(|space| CsToMa::RegisterEndV5 { space }),
        space().prop_map(CsToMa::Space),
        vec(any::<u64>(), 0..40).prop_map(CsToMa::ChunkDamaged),
        (any::<u32>(), any::<Option<u8>>()).prop_map(|(load, hl_status)| CsToMa::CurrentLoad { load, hl_status }),
        vec(any::<u64>(), 0..40).prop_map(CsToMa::ChunkLost),
        Just(CsToMa::ErrorOccurred),
        chunk_list().prop_map(CsToMa::ChunkNew),
        any::<u32>().prop_map(CsToMa::Labels),
        (any::<u64>(), status()).prop_map(|(chunk, status)| CsToMa::CreateReply { chunk, status }),
        (any::<u64>(), status()).prop_map(|(chunk, status)| CsToMa::DeleteReply { chunk, status }),
        (any::<u64>(), status()).prop_map(|(chunk, status)| CsToMa::DuplicateReply { chunk, status }),
        (any::<u64>(), status()).prop_map(|(chunk, status)| CsToMa::SetVersionReply { chunk, status }),
        (chunk_version(), status()).prop_map(|((chunk, version), status)| CsToMa::ReplicateReply {
            chunk,
            version,
            status
        }),
        (chunk_op(), status()).prop_map(|(op, status)| CsToMa::ChunkOpReply { op, status }),
        (any::<u64>(), status()).prop_map(|(chunk, status)| CsToMa::TruncateReply { chunk, status }),
        (any::<u64>(), status()).prop_map(|(chunk, status)| CsToMa::DupTruncReply { chunk, status }),
        data_query_reply().prop_map(CsToMa::Query),
    ]
    .boxed()
}

/// Every `Ack` form, including the optional `metaid` of `Welcome`/`Wait`.
pub fn ack() -> BoxedStrategy<Ack> {
    prop_oneof![
        (any::<u32>(), any::<u16>(), any::<u16>(), any::<Option<u64>>())
            .prop_map(|(master_version, timeout, csid, metaid)| Ack::Welcome { master_version, timeout, csid, metaid }),
        any::<u32>().prop_map(|master_version| Ack::WelcomeV5 { master_version }),
        Just(Ack::Next),
        any::<[u8; 32]>().prop_map(|challenge| Ack::Auth { challenge }),
        any::<u32>().prop_map(|leader_ip| Ack::Redirect { leader_ip }),
        (any::<u32>(), any::<u16>(), any::<Option<u64>>()).prop_map(|(version, timeout, metaid)| Ack::Wait {
            version,
            timeout,
            metaid
        }),
    ]
    .boxed()
}

/// Every `MaToCs` variant. `ReplicateXor` with 1..=8 sources, the range
/// its decoder accepts.
pub fn ma_to_cs() -> BoxedStrategy<MaToCs> {
    prop_oneof![
        Just(MaToCs::Nop),
        ack().prop_map(MaToCs::Ack),
        chunk_version().prop_map(|(chunk, version)| MaToCs::Create { chunk, version }),
        chunk_version().prop_map(|(chunk, version)| MaToCs::Delete { chunk, version }),
        (chunk_version(), chunk_version()).prop_map(|((new_chunk, new_version), (old_chunk, old_version))| {
            MaToCs::Duplicate { new_chunk, new_version, old_chunk, old_version }
        }),
        (any::<u64>(), any::<u32>(), any::<u32>())
            .prop_map(|(chunk, new_version, old_version)| { MaToCs::SetVersion { chunk, new_version, old_version } }),
        (chunk_version(), addr()).prop_map(|((chunk, version), source)| MaToCs::Replicate { chunk, version, source }),
        (chunk_version(), any::<[u32; 4]>(), vec((any::<u64>(), any::<u32>(), addr()), 1..=8)).prop_map(
            |((chunk, version), xor_mask, sources)| MaToCs::ReplicateXor { chunk, version, xor_mask, sources }
        ),
        chunk_op().prop_map(MaToCs::ChunkOp),
        (any::<u64>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
            |(chunk, length, new_version, old_version)| MaToCs::Truncate { chunk, length, new_version, old_version }
        ),
        (chunk_version(), chunk_version(), any::<u32>()).prop_map(
            |((new_chunk, new_version), (old_chunk, old_version), length)| MaToCs::DupTrunc {
                new_chunk,
                new_version,
                old_chunk,
                old_version,
                length
            }
        ),
        data_query().prop_map(MaToCs::Query),
    ]
    .boxed()
}

/// Index of a `DataMsg` variant; exhaustive, so a new variant breaks the
/// build until a generator (and a slot here) exists for it.
pub fn data_variant(m: &DataMsg) -> usize {
    match m {
        DataMsg::Nop => 0,
        DataMsg::GetVersion { .. } => 1,
        DataMsg::Version { .. } => 2,
        DataMsg::GetConfig { .. } => 3,
        DataMsg::ConfigValue { .. } => 4,
        DataMsg::Read { .. } => 5,
        DataMsg::ReadStatus { .. } => 6,
        DataMsg::ReadData(_) => 7,
        DataMsg::Write { .. } => 8,
        DataMsg::WriteStatus { .. } => 9,
        DataMsg::WriteData(_) => 10,
        DataMsg::WriteFinish { .. } => 11,
        DataMsg::GetChunkBlocks { .. } => 12,
        DataMsg::ChunkBlocks { .. } => 13,
        DataMsg::GetChunkChecksum { .. } => 14,
        DataMsg::ChunkChecksum { .. } => 15,
        DataMsg::GetChunkChecksumTab { .. } => 16,
        DataMsg::ChunkChecksumTab { .. } => 17,
    }
}
pub const DATA_VARIANTS: usize = 18;

pub fn cs_to_ma_variant(m: &CsToMa) -> usize {
    match m {
        CsToMa::Nop => 0,
        CsToMa::RegisterBegin { .. } => 1,
        CsToMa::RegisterChunks(_) => 2,
        CsToMa::RegisterEnd => 3,
        CsToMa::RegisterDisconnect => 4,
        CsToMa::RegisterBeginV5 { .. } => 5,
        CsToMa::RegisterChunksV5(_) => 6,
        CsToMa::RegisterEndV5 { .. } => 7,
        CsToMa::Space(_) => 8,
        CsToMa::ChunkDamaged(_) => 9,
        CsToMa::CurrentLoad { .. } => 10,
        CsToMa::ChunkLost(_) => 11,
        CsToMa::ErrorOccurred => 12,
        CsToMa::ChunkNew(_) => 13,
        CsToMa::Labels(_) => 14,
        CsToMa::CreateReply { .. } => 15,
        CsToMa::DeleteReply { .. } => 16,
        CsToMa::DuplicateReply { .. } => 17,
        CsToMa::SetVersionReply { .. } => 18,
        CsToMa::ReplicateReply { .. } => 19,
        CsToMa::ChunkOpReply { .. } => 20,
        CsToMa::TruncateReply { .. } => 21,
        CsToMa::DupTruncReply { .. } => 22,
        CsToMa::Query(_) => 23,
    }
}
pub const CS_TO_MA_VARIANTS: usize = 24;

/// `MaToCs` variants with each `Ack` form counted on its own.
pub fn ma_to_cs_variant(m: &MaToCs) -> usize {
    match m {
        MaToCs::Nop => 0,
        MaToCs::Ack(a) => match a {
            Ack::Welcome { .. } => 1,
            Ack::WelcomeV5 { .. } => 2,
            Ack::Next => 3,
            Ack::Auth { .. } => 4,
            Ack::Redirect { .. } => 5,
            Ack::Wait { .. } => 6,
        },
        MaToCs::Create { .. } => 7,
        MaToCs::Delete { .. } => 8,
        MaToCs::Duplicate { .. } => 9,
        MaToCs::SetVersion { .. } => 10,
        MaToCs::Replicate { .. } => 11,
        MaToCs::ReplicateXor { .. } => 12,
        MaToCs::ChunkOp(_) => 13,
        MaToCs::Truncate { .. } => 14,
        MaToCs::DupTrunc { .. } => 15,
        MaToCs::Query(_) => 16,
    }
}
pub const MA_TO_CS_VARIANTS: usize = 17;

/// Message ids the decoders know, to steer random kinds toward real code.
pub const KNOWN_KINDS: &[u32] = &[
    0, 1, 2, 10, 11, 80, 81, 100, 101, 102, 103, 104, 105, 106, 107, 109, 110, 111, 120, 121, 130, 131, 140, 141, 150,
    151, 152, 153, 160, 161, 170, 171, 200, 201, 202, 210, 211, 212, 213, 250, 251, 300, 301, 302, 303,
];
