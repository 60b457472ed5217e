//! Tests of the state machine as a whole; helpers shared by the topic files.

mod file;
mod memory;
mod namespace;
mod replay;
mod snapshot;

use super::*;

pub fn fs() -> Meta {
    Meta::new_fs(42, 1000)
}

pub fn root() -> Ctx {
    Ctx::root(2000)
}

pub fn user(uid: u32) -> Ctx {
    Ctx { uid, gids: vec![uid], now: 2000 }
}

pub fn snapshot_bytes(m: &Meta) -> Vec<u8> {
    let mut b = Vec::new();
    m.write_snapshot(&mut b).unwrap();
    b
}

/// Replays everything `m` logged since `base` was taken onto `base` and
/// checks the result is byte for byte the live state.
pub fn check_replay(base: &[u8], m: &mut Meta) {
    let mut r = Meta::read_snapshot(&mut &base[..]).unwrap();
    for (v, rec) in m.drain_log() {
        let rec = Record::parse(&rec.to_text()).unwrap();
        r.replay(v, &rec).unwrap();
    }
    assert_eq!(r.version(), m.version());
    assert!(snapshot_bytes(&r) == snapshot_bytes(m), "replayed state differs from the live one");
}

pub fn file(m: &mut Meta, parent: Inode, name: &str) -> Inode {
    m.mknod(&root(), parent, name.as_bytes(), NodeType::File, 0o644, 0, 0).unwrap().0
}

pub fn dir(m: &mut Meta, parent: Inode, name: &str) -> Inode {
    m.mkdir(&root(), parent, name.as_bytes(), 0o755, 0, false).unwrap().0
}
