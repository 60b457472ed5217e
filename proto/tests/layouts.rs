//! Golden byte layouts of the messages elkfs must get exactly right, written
//! out by hand from the wire reference (`moosefs-wire.md` §1, §3–§6): every
//! field is big-endian, the 8-byte header is `type:32 length:32`, and the
//! length counts only the payload.
//!
//! Each test encodes a message, compares every byte, and decodes the bytes
//! back.

use elkfs_proto::data::{self, fold_checksum, DataMsg, ReadDataHead, WriteDataHead, CRC_TABLE_LEN};
use elkfs_proto::frame::Encode;
use elkfs_proto::master_cs::{self, Ack, CsToMa, MaToCs, Space};
use elkfs_proto::{Addr, Header, Status, HEADER_LEN};

/// Concatenates byte groups, so each expected field stays visible.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn header(kind: u32, len: u32) -> Vec<u8> {
    cat(&[&kind.to_be_bytes(), &len.to_be_bytes()])
}

fn data_round_trip(bytes: &[u8], msg: &DataMsg) {
    let h = Header::parse(bytes[..HEADER_LEN].try_into().unwrap());
    assert_eq!(DataMsg::decode(h.kind, &bytes[HEADER_LEN..]).as_ref(), Ok(msg));
}

#[test]
fn version_constant() {
    assert_eq!(elkfs_proto::VERSION, 0x0003_00EA);
    assert_eq!(elkfs_proto::version_string(elkfs_proto::VERSION), "3.0.117");
}

#[test]
fn cltocs_read_current_form_is_21_bytes() {
    let msg = DataMsg::Read {
        protocol: Some(1),
        chunk: 0x0102_0304_0506_0708,
        version: 0x0A0B_0C0D,
        offset: 0x0001_0000,
        size: 0x0002_0000,
    };
    #[rustfmt::skip]
    let want = cat(&[
        &[0, 0, 0, 200, 0, 0, 0, 21],
        &[1],                                    // protocolid
        &[1, 2, 3, 4, 5, 6, 7, 8],               // chunkid
        &[0x0A, 0x0B, 0x0C, 0x0D],               // version
        &[0, 1, 0, 0],                           // offset
        &[0, 2, 0, 0],                           // size
    ]);
    assert_eq!(msg.to_packet(), want);
    data_round_trip(&want, &msg);

    // The 20-byte form the replicator sends: the same without protocolid.
    let old = DataMsg::Read {
        protocol: None,
        chunk: 0x0102_0304_0506_0708,
        version: 0x0A0B_0C0D,
        offset: 0x0001_0000,
        size: 0x0002_0000,
    };
    let mut want_old = header(data::READ, 20);
    want_old.extend_from_slice(&want[9..]);
    assert_eq!(old.to_packet(), want_old);
    data_round_trip(&want_old, &old);
}

#[test]
fn cltocs_write_with_two_server_chain_has_odd_length() {
    let chain = vec![Addr::new("10.88.0.2".parse().unwrap(), 9522), Addr::new("192.168.1.200".parse().unwrap(), 9422)];
    let msg = DataMsg::Write { protocol: Some(1), chunk: 0x11, version: 3, chain };
    #[rustfmt::skip]
    let want = cat(&[
        &[0, 0, 0, 210, 0, 0, 0, 25],            // 13 + 2 * 6
        &[1],                                    // protocolid
        &[0, 0, 0, 0, 0, 0, 0, 0x11],            // chunkid
        &[0, 0, 0, 3],                           // version
        &[10, 88, 0, 2], &[0x25, 0x32],          // 10.88.0.2:9522
        &[192, 168, 1, 200], &[0x24, 0xCE],      // 192.168.1.200:9422
    ]);
    assert_eq!(want.len() - HEADER_LEN, 25);
    assert_eq!(msg.to_packet(), want);
    data_round_trip(&want, &msg);
}

#[test]
fn write_data_prefix() {
    let h = WriteDataHead {
        chunk: 0x0102_0304_0506_0708,
        write_id: 5,
        block: 0x03FF,
        offset: 0x8000,
        size: 0x8000,
        crc: 0xD797_8EEB,
    };
    #[rustfmt::skip]
    let want: [u8; 32] = [
        0, 0, 0, 212, 0, 0, 0x80, 0x18,          // 24 + 0x8000
        1, 2, 3, 4, 5, 6, 7, 8,                  // chunkid
        0, 0, 0, 5,                              // writeid
        0x03, 0xFF,                              // blocknum
        0x80, 0x00,                              // offset in block
        0, 0, 0x80, 0,                           // size
        0xD7, 0x97, 0x8E, 0xEB,                  // crc
    ];
    assert_eq!(h.packet_prefix(), want);
    assert_eq!(DataMsg::WriteData(h).to_packet(), want);
    assert_eq!(DataMsg::decode_framed(data::WRITE_DATA, &want[8..], 24 + 0x8000), Ok(DataMsg::WriteData(h)));
}

#[test]
fn read_data_prefix() {
    let h = ReadDataHead { chunk: 0xFFEE_DDCC_BBAA_9988, block: 1023, offset: 0, size: 0x1_0000, crc: 0x1234_5678 };
    #[rustfmt::skip]
    let want: [u8; 28] = [
        0, 0, 0, 202, 0, 1, 0, 0x14,             // 20 + 65536
        0xFF, 0xEE, 0xDD, 0xCC, 0xBB, 0xAA, 0x99, 0x88,
        0x03, 0xFF,                              // blocknum
        0, 0,                                    // offset in block
        0, 1, 0, 0,                              // size
        0x12, 0x34, 0x56, 0x78,                  // crc
    ];
    assert_eq!(h.packet_prefix(), want);
    assert_eq!(DataMsg::ReadData(h).to_packet(), want);
    assert_eq!(DataMsg::decode_framed(data::READ_DATA, &want[8..], 20 + 0x1_0000), Ok(DataMsg::ReadData(h)));
}

#[test]
fn cstoma_register_begin_is_55_bytes() {
    let space = Space { used: 0x0101, total: 0x0202, chunks: 3, td_used: 0x0404, td_total: 0x0505, td_chunks: 6 };
    let msg = CsToMa::RegisterBegin {
        auth: None,
        version: elkfs_proto::VERSION,
        ip: u32::from(std::net::Ipv4Addr::new(10, 88, 0, 1)),
        port: 9422,
        timeout: 0,
        csid: 0x0102,
        space,
    };
    #[rustfmt::skip]
    let want = cat(&[
        &[0, 0, 0, 100, 0, 0, 0, 55],
        &[60],                                   // rver: version-6 BEGIN
        &[0x00, 0x03, 0x00, 0xEA],               // 3.0.117
        &[10, 88, 0, 1],                         // data-port ip
        &[0x24, 0xCE],                           // port 9422
        &[0, 0],                                 // timeout: master default
        &[0x01, 0x02],                           // csid
        &[0, 0, 0, 0, 0, 0, 0x01, 0x01],         // used
        &[0, 0, 0, 0, 0, 0, 0x02, 0x02],         // total
        &[0, 0, 0, 3],                           // chunks
        &[0, 0, 0, 0, 0, 0, 0x04, 0x04],         // td used
        &[0, 0, 0, 0, 0, 0, 0x05, 0x05],         // td total
        &[0, 0, 0, 6],                           // td chunks
    ]);
    assert_eq!(want.len(), HEADER_LEN + 55);
    assert_eq!(msg.to_packet(), want);
    assert_eq!(CsToMa::decode(master_cs::REGISTER, &want[8..]), Ok(msg.clone()));

    // With the digest answering an auth challenge: 16 bytes after rver.
    let digest = [0xAB; 16];
    let authed = match msg {
        CsToMa::RegisterBegin { version, ip, port, timeout, csid, space, .. } => {
            CsToMa::RegisterBegin { auth: Some(digest), version, ip, port, timeout, csid, space }
        }
        _ => unreachable!(),
    };
    let want71 = cat(&[&header(100, 71), &[60], &digest, &want[9..]]);
    assert_eq!(authed.to_packet(), want71);
    assert_eq!(CsToMa::decode(master_cs::REGISTER, &want71[8..]), Ok(authed));
}

#[test]
fn matocs_master_ack_is_17_bytes() {
    let msg = MaToCs::Ack(Ack::Welcome {
        master_version: 0x0003_00EA,
        timeout: 10,
        csid: 7,
        metaid: Some(0x0123_4567_89AB_CDEF),
    });
    #[rustfmt::skip]
    let want = cat(&[
        &[0, 0, 0, 104, 0, 0, 0, 17],
        &[0],                                    // atype: accepted
        &[0x00, 0x03, 0x00, 0xEA],               // master version
        &[0, 10],                                // timeout
        &[0, 7],                                 // csid
        &[0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF], // metaid
    ]);
    assert_eq!(msg.to_packet(), want);
    assert_eq!(MaToCs::decode(master_cs::MASTER_ACK, &want[8..]), Ok(msg));
    // The 1-byte "send the next chunk batch" ack.
    assert_eq!(MaToCs::Ack(Ack::Next).to_packet(), cat(&[&header(104, 1), &[0]]));
}

#[test]
fn cstoma_space_is_40_bytes() {
    let msg = CsToMa::Space(Space {
        used: 0x1122_3344_5566_7788,
        total: 0x99AA_BBCC_DDEE_FF00,
        chunks: 0x0102_0304,
        td_used: 1,
        td_total: 2,
        td_chunks: 3,
    });
    #[rustfmt::skip]
    let want = cat(&[
        &[0, 0, 0, 101, 0, 0, 0, 40],
        &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88],
        &[0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x00],
        &[1, 2, 3, 4],
        &[0, 0, 0, 0, 0, 0, 0, 1],
        &[0, 0, 0, 0, 0, 0, 0, 2],
        &[0, 0, 0, 3],
    ]);
    assert_eq!(msg.to_packet(), want);
    assert_eq!(CsToMa::decode(master_cs::SPACE, &want[8..]), Ok(msg));
}

#[test]
fn matocs_replicate_is_18_bytes() {
    let msg = MaToCs::Replicate { chunk: 5, version: 2, source: Addr::new("10.88.0.1".parse().unwrap(), 9422) };
    #[rustfmt::skip]
    let want = cat(&[
        &[0, 0, 0, 150, 0, 0, 0, 18],
        &[0, 0, 0, 0, 0, 0, 0, 5],               // chunkid
        &[0, 0, 0, 2],                           // version
        &[10, 88, 0, 1],                         // source ip
        &[0x24, 0xCE],                           // source port 9422
    ]);
    assert_eq!(msg.to_packet(), want);
    assert_eq!(MaToCs::decode(master_cs::REPLICATE, &want[8..]), Ok(msg));
}

#[test]
fn status_replies() {
    let msg = DataMsg::WriteStatus { chunk: 9, write_id: 0, status: Status::CANTCONNECT };
    assert_eq!(msg.to_packet(), cat(&[&header(211, 13), &9u64.to_be_bytes(), &[0, 0, 0, 0], &[26]]));
    let msg = DataMsg::ReadStatus { chunk: 9, status: Status::CRC };
    assert_eq!(msg.to_packet(), cat(&[&header(201, 9), &9u64.to_be_bytes(), &[29]]));
    let msg = CsToMa::ReplicateReply { chunk: 9, version: 4, status: Status::OK };
    assert_eq!(msg.to_packet(), cat(&[&header(151, 13), &9u64.to_be_bytes(), &[0, 0, 0, 4], &[0]]));
}

/// The `CHUNK_CHECKSUM` fold of a table of empty blocks, recomputed here
/// with 64-bit arithmetic reduced by hand instead of wrapping u32 ops.
#[test]
fn fold_checksum_of_empty_chunk() {
    const EMPTY_BLOCK_CRC: u32 = 0xD797_8EEB;
    let table = vec![EMPTY_BLOCK_CRC; CRC_TABLE_LEN];
    let mut x: u64 = 1;
    for &c in &table {
        x = ((x * 426_265_243) % (1u64 << 32)) ^ c as u64;
    }
    assert!(x <= u32::MAX as u64);
    assert_eq!(fold_checksum(&table), x as u32);
    // The same value, computed once outside Rust (Python, `& 0xFFFFFFFF`).
    assert_eq!(fold_checksum(&table), 0x4A00_B401);
    // Start value 1 and multiplication before the XOR: one entry.
    assert_eq!(fold_checksum(&[0]), 426_265_243);
    assert_eq!(fold_checksum(&[]), 1);
}
