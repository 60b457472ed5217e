//! Snapshots: byte-identical round trips and refusal of damaged input.

use super::*;

fn sample() -> Meta {
    let mut m = fs();
    let d = dir(&mut m, ROOT, "d");
    let f = file(&mut m, d, "f");
    m.symlink(&root(), d, b"s", b"f").unwrap();
    m.mknod(&root(), ROOT, b"blk", NodeType::BlockDev, 0o600, 0, 0x0800_0001).unwrap();
    m.link(&root(), f, ROOT, b"f2").unwrap();
    m.write_chunk(1, f, 1, 100).unwrap();
    let g = file(&mut m, ROOT, "g");
    m.write_chunk(1, g, 0, 100).unwrap();
    m.unlink(&root(), ROOT, b"g").unwrap();
    m.new_session(b"info", b"/d", 5).unwrap();
    m
}

#[test]
fn round_trip_is_byte_identical() {
    let m = sample();
    let bytes = snapshot_bytes(&m);
    let r = Meta::read_snapshot(&mut &bytes[..]).unwrap();
    assert_eq!(snapshot_bytes(&r), bytes);
    assert_eq!((r.version(), r.metaid()), (m.version(), 42));
    assert_eq!(r.stats(), m.stats());
    let d = r.resolve(b"/d").unwrap();
    assert_eq!(r.readdir(&root(), d).unwrap(), m.readdir(&root(), d).unwrap());
    assert_eq!(r.trash_list(), vec![(r.trash_list()[0].0, b"g".to_vec())]);
    // Paths after a reload still know directory names.
    let mut r = r;
    r.unlink(&root(), d, b"f").unwrap();
    r.unlink(&root(), ROOT, b"f2").unwrap();
    assert!(r.trash_list().iter().any(|(_, p)| p == b"f2"));
}

#[test]
fn refuses_corrupt_and_truncated_input() {
    let bytes = snapshot_bytes(&sample());
    for cut in [0, 4, 12, bytes.len() / 2, bytes.len() - 1] {
        let err = Meta::read_snapshot(&mut &bytes[..cut]).unwrap_err();
        assert!(matches!(err, Error::Snapshot { .. }), "cut at {cut}: {err}");
    }
    for at in [8, 20, bytes.len() / 2, bytes.len() - 2] {
        let mut b = bytes.clone();
        b[at] ^= 0x40;
        let err = Meta::read_snapshot(&mut &b[..]).unwrap_err();
        assert!(err.to_string().contains("CRC") || err.to_string().contains("magic"), "{err}");
    }
    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(Meta::read_snapshot(&mut &b[..]).unwrap_err().to_string().contains("magic"));
}

#[test]
fn refuses_structural_damage_with_a_good_crc() {
    let bytes = snapshot_bytes(&sample());
    let body = &bytes[..bytes.len() - 4];
    // Drop the chunk table's last entry by lowering the count is hard to
    // locate generically; instead change the format version and re-seal.
    let mut b = body.to_vec();
    b[11] = 9;
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_be_bytes());
    let err = Meta::read_snapshot(&mut &b[..]).unwrap_err();
    assert!(err.to_string().contains("format version 9"), "{err}");
    // Trailing garbage inside the sealed part.
    let mut b = body.to_vec();
    b.push(0);
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_be_bytes());
    assert!(Meta::read_snapshot(&mut &b[..]).unwrap_err().to_string().contains("after the last section"));
}

#[test]
fn replay_refuses_gaps_and_bad_records() {
    let mut m = fs();
    let rec = Record { ts: 1, op: Op::Unlock { chunk: 5 } };
    assert!(matches!(m.replay(2, &rec), Err(Error::Replay { version: 2, .. })));
    assert!(matches!(m.replay(1, &rec), Err(Error::Replay { version: 1, .. })));
    assert_eq!(m.version(), 0);
    let rec = Record { ts: 1, op: Op::Unlink { parent: ROOT, name: b"x".to_vec(), inode: 9 } };
    assert!(m.replay(1, &rec).is_err());
    let mut rec = Record {
        ts: 1,
        op: Op::Create {
            parent: ROOT,
            name: b"x".to_vec(),
            kind: NodeType::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            rdev: 0,
            inode: 9,
        },
    };
    assert!(m.replay(1, &rec).unwrap_err().to_string().contains("next"), "inode numbers follow the allocator");
    let Op::Create { ref mut inode, .. } = rec.op else { unreachable!() };
    *inode = 2;
    m.replay(1, &rec).unwrap();
    assert_eq!(m.version(), 1);
    assert_eq!(m.lookup(&root(), ROOT, b"x").unwrap().0, 2);
    // The counter moved past the replayed inode.
    assert_eq!(file(&mut m, ROOT, "y"), 3);
}
