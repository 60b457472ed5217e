//! Packets captured from real MooseFS 3.0.117 daemons (Debian packages
//! 3.0.117-1, build 1341) on 2026-11-25, decoded with our decoders and
//! re-encoded byte for byte.
//!
//! Capture setup: one mfsmaster, three mfschunkservers (data ports 9422,
//! 9522, 9622) and one mfsmount in a private network namespace, all on
//! 10.88.0.1, master and chunkservers with an `AUTH_CODE`; the client wrote
//! a 1 MiB and a 70 MiB file with goal 2, read them back, appended,
//! truncated, snapshotted, deleted; one chunkserver was killed and a third
//! one started so the master replicated. In two such captures the TCP
//! streams of ports 9420 and 9422/9522/9622 were reassembled and all 15 859
//! packets in them decoded without error and re-encoded to the same bytes
//! (the 11 068 data packets also had their CRC-32 checked); the ones below
//! are a sample of each kind.
//!
//! `READ_DATA`/`WRITE_DATA` are kept as their 28/32-byte prefix; their
//! header still announces the data that followed on the wire.

use elkfs_proto::data::{DataMsg, ReadDataHead, WriteDataHead};
use elkfs_proto::frame::Encode;
use elkfs_proto::master_cs::{Ack, CsToMa, MaToCs, Space};
use elkfs_proto::{Addr, Header, Status, HEADER_LEN};

/// The address every daemon of the capture used: 10.88.0.1.
const IP: u32 = 0x0A58_0001;
const MASTER_VERSION: u32 = 0x0003_00EA;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn bytes16(s: &str) -> [u8; 16] {
    unhex(s).try_into().unwrap()
}

fn bytes32(s: &str) -> [u8; 32] {
    unhex(s).try_into().unwrap()
}

enum Expect {
    /// Chunkserver → master (port 9420).
    Cs(CsToMa),
    /// Master → chunkserver (port 9420).
    Ma(MaToCs),
    /// Data port, either direction.
    Data(DataMsg),
}

fn check(name: &str, hex: &str, expect: Expect) {
    let packet = unhex(hex);
    let header = Header::parse(packet[..HEADER_LEN].try_into().unwrap());
    let payload = &packet[HEADER_LEN..];
    let encoded = match expect {
        Expect::Cs(want) => {
            assert_eq!(header.len as usize, payload.len(), "{name}: length");
            assert_eq!(CsToMa::decode(header.kind, payload).as_ref(), Ok(&want), "{name}");
            want.to_packet()
        }
        Expect::Ma(want) => {
            assert_eq!(header.len as usize, payload.len(), "{name}: length");
            assert_eq!(MaToCs::decode(header.kind, payload).as_ref(), Ok(&want), "{name}");
            want.to_packet()
        }
        Expect::Data(want) => {
            let got = DataMsg::decode_framed(header.kind, payload, header.len as usize);
            assert_eq!(got.as_ref(), Ok(&want), "{name}");
            want.to_packet()
        }
    };
    assert_eq!(encoded, packet, "{name}: re-encoded bytes differ");
}

#[test]
fn registration_with_auth() {
    let zero = Space::default();
    let begin = |auth| CsToMa::RegisterBegin {
        auth,
        version: MASTER_VERSION,
        ip: IP,
        port: 9422,
        timeout: 0,
        csid: 0,
        space: zero,
    };
    // First BEGIN without digest; the master answers with a challenge.
    check(
        "register_begin",
        "00000064 00000037 3c 000300ea 0a580001 24ce 0000 0000
         0000000000000000 0000000000000000 00000000 0000000000000000 0000000000000000 00000000",
        Expect::Cs(begin(None)),
    );
    let challenge = "894476f9f8b9401e58612c47453ef23bfea4fe096cb4116c7441a2125df9ef6a";
    check(
        "ack_auth",
        &format!("00000068 00000021 03 {challenge}"),
        Expect::Ma(MaToCs::Ack(Ack::Auth { challenge: bytes32(challenge) })),
    );
    // Second BEGIN with MD5(challenge[..16] ‖ AUTH_CODE ‖ challenge[16..]),
    // checked outside this test against the capture's AUTH_CODE.
    let digest = "9472ff134f4eee359e02357d2a437112";
    check(
        "register_begin_auth",
        &format!(
            "00000064 00000047 3c {digest} 000300ea 0a580001 24ce 0000 0000
             0000000000000000 0000000000000000 00000000 0000000000000000 0000000000000000 00000000"
        ),
        Expect::Cs(begin(Some(bytes16(digest)))),
    );
    check(
        "ack_welcome",
        "00000068 00000011 00 000300ea 000a 0001 6b07176b1a77758e",
        Expect::Ma(MaToCs::Ack(Ack::Welcome {
            master_version: MASTER_VERSION,
            timeout: 10,
            csid: 1,
            metaid: Some(0x6b07_176b_1a77_758e),
        })),
    );
    check("labels", "0000006d 00000004 00000000", Expect::Cs(CsToMa::Labels(0)));
    check("register_end", "00000064 00000001 3e", Expect::Cs(CsToMa::RegisterEnd));
    check("register_disconnect", "00000064 00000001 3f", Expect::Cs(CsToMa::RegisterDisconnect));
}

#[test]
fn periodic_reports() {
    check(
        "space",
        "00000065 00000028 00000004a2392000 00000016b7ca0000 00000003 0000000000000000 0000000000000000 00000000",
        Expect::Cs(CsToMa::Space(Space { used: 0x4_a239_2000, total: 0x16_b7ca_0000, chunks: 3, ..Space::default() })),
    );
    check(
        "current_load",
        "00000067 00000005 00000000 01",
        Expect::Cs(CsToMa::CurrentLoad { load: 0, hl_status: Some(1) }),
    );
    // Chunks found by the disk scan after the registration had ended.
    check(
        "chunk_new",
        "0000006b 00000024 0000000000000002 00000001 0000000000000003 00000002 0000000000000004 00000001",
        Expect::Cs(CsToMa::ChunkNew(vec![(2, 1), (3, 2), (4, 1)])),
    );
    check("nop", "00000000 00000000", Expect::Cs(CsToMa::Nop));
    check("nop", "00000000 00000000", Expect::Ma(MaToCs::Nop));
}

#[test]
fn master_commands_and_replies() {
    check("create", "0000006e 0000000c 0000000000000001 00000001", Expect::Ma(MaToCs::Create { chunk: 1, version: 1 }));
    check(
        "create_reply",
        "0000006f 00000009 0000000000000001 00",
        Expect::Cs(CsToMa::CreateReply { chunk: 1, status: Status::OK }),
    );
    check(
        "set_version",
        "0000008c 00000010 0000000000000004 00000002 00000001",
        Expect::Ma(MaToCs::SetVersion { chunk: 4, new_version: 2, old_version: 1 }),
    );
    // A stale copy that came back: deleted with version 0 ("any").
    check(
        "delete_any_version",
        "00000078 0000000c 0000000000000004 00000000",
        Expect::Ma(MaToCs::Delete { chunk: 4, version: 0 }),
    );
    check(
        "duplicate",
        "00000082 00000018 0000000000000004 00000001 0000000000000001 00000001",
        Expect::Ma(MaToCs::Duplicate { new_chunk: 4, new_version: 1, old_chunk: 1, old_version: 1 }),
    );
    check(
        "truncate",
        "000000a0 00000014 0000000000000003 00200000 00000002 00000001",
        Expect::Ma(MaToCs::Truncate { chunk: 3, length: 0x20_0000, new_version: 2, old_version: 1 }),
    );
    check(
        "duptrunc",
        "000000aa 0000001c 0000000000000005 00000001 0000000000000003 00000002 00100000",
        Expect::Ma(MaToCs::DupTrunc { new_chunk: 5, new_version: 1, old_chunk: 3, old_version: 2, length: 0x10_0000 }),
    );
    check(
        "replicate",
        "00000096 00000012 0000000000000005 00000001 0a580001 24ce",
        Expect::Ma(MaToCs::Replicate { chunk: 5, version: 1, source: Addr { ip: IP, port: 9422 } }),
    );
    check(
        "replicate_reply",
        "00000097 0000000d 0000000000000005 00000001 00",
        Expect::Cs(CsToMa::ReplicateReply { chunk: 5, version: 1, status: Status::OK }),
    );
}

#[test]
fn client_write() {
    // Client to the first server, the second one (port 9522) as the chain.
    check(
        "write_chain1",
        "000000d2 00000013 01 0000000000000001 00000001 0a580001 2532",
        Expect::Data(DataMsg::Write {
            protocol: Some(1),
            chunk: 1,
            version: 1,
            chain: vec![Addr { ip: IP, port: 9522 }],
        }),
    );
    // The first server forwarding to the last one: same protocolid, empty chain.
    check(
        "write_last",
        "000000d2 0000000d 01 0000000000000001 00000001",
        Expect::Data(DataMsg::Write { protocol: Some(1), chunk: 1, version: 1, chain: vec![] }),
    );
    // A 4 KiB piece in the middle of block 0 (header announces 24 + 4096).
    check(
        "write_data_piece",
        "000000d4 00001018 0000000000000004 00000001 0000 3000 00001000 a0cb4257",
        Expect::Data(DataMsg::WriteData(WriteDataHead {
            chunk: 4,
            write_id: 1,
            block: 0,
            offset: 0x3000,
            size: 0x1000,
            crc: 0xa0cb_4257,
        })),
    );
    check(
        "write_status_open",
        "000000d3 0000000d 0000000000000001 00000000 00",
        Expect::Data(DataMsg::WriteStatus { chunk: 1, write_id: 0, status: Status::OK }),
    );
    check(
        "write_status_3",
        "000000d3 0000000d 0000000000000001 00000003 00",
        Expect::Data(DataMsg::WriteStatus { chunk: 1, write_id: 3, status: Status::OK }),
    );
    check(
        "write_finish",
        "000000d5 0000000c 0000000000000001 00000001",
        Expect::Data(DataMsg::WriteFinish { chunk: 1, version: 1 }),
    );
    check("data_nop", "00000000 00000000", Expect::Data(DataMsg::Nop));
}

#[test]
fn client_read_and_replication_read() {
    check(
        "read",
        "000000c8 00000015 01 0000000000000001 00000001 00010000 00080000",
        Expect::Data(DataMsg::Read { protocol: Some(1), chunk: 1, version: 1, offset: 0x1_0000, size: 0x8_0000 }),
    );
    check(
        "read_data",
        "000000ca 00010014 0000000000000001 0001 0000 00010000 590e4a39",
        Expect::Data(DataMsg::ReadData(ReadDataHead {
            chunk: 1,
            block: 1,
            offset: 0,
            size: 0x1_0000,
            crc: 0x590e_4a39,
        })),
    );
    check(
        "read_status",
        "000000c9 00000009 0000000000000001 00",
        Expect::Data(DataMsg::ReadStatus { chunk: 1, status: Status::OK }),
    );
    // The replicating chunkserver: block count first, then the 20-byte READ.
    check(
        "get_chunk_blocks",
        "000000fa 0000000c 0000000000000005 00000001",
        Expect::Data(DataMsg::GetChunkBlocks { chunk: 5, version: 1 }),
    );
    check(
        "chunk_blocks",
        "000000fb 0000000f 0000000000000005 00000001 0010 00",
        Expect::Data(DataMsg::ChunkBlocks { chunk: 5, version: 1, blocks: 16, status: Status::OK }),
    );
    check(
        "read_replicator",
        "000000c8 00000014 0000000000000005 00000001 00000000 00100000",
        Expect::Data(DataMsg::Read { protocol: None, chunk: 5, version: 1, offset: 0, size: 0x10_0000 }),
    );
}
