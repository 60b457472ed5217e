//! Replay determinism: for random operation sequences, a snapshot taken
//! part-way plus the records logged after it rebuild the live state byte
//! for byte, and every record survives its text form.

use proptest::prelude::*;

use super::*;

#[derive(Clone, Debug)]
enum Step {
    Mknod(usize, u8, u8),
    Mkdir(usize, u8, u16),
    Symlink(usize, u8),
    Link(usize, usize, u8),
    Unlink(usize),
    Rmdir(usize),
    Rename(usize, usize, u8),
    Chmod(usize, u16),
    Truncate(usize, u64),
    Write(usize, u32, u64),
    WriteFailed(usize),
    Unlock(usize),
    Goal(usize, u8, bool),
    Trash(usize, u32, bool),
    Purge(u32),
    Session(usize),
    CloseSession(u32),
    Open(u32, usize),
    Undel(usize),
    Release(u32, usize),
}

fn step() -> impl Strategy<Value = Step> {
    let i = 0usize..64;
    prop_oneof![
        6 => (i.clone(), 0u8..8, prop_oneof![4 => Just(1u8), 1 => 1u8..=7]).prop_map(|(p, n, k)| Step::Mknod(p, n, k)),
        3 => (i.clone(), 0u8..8, prop_oneof![Just(0o755u16), Just(0o1777), Just(0o2775), Just(0o500)])
            .prop_map(|(p, n, m)| Step::Mkdir(p, n, m)),
        1 => (i.clone(), 0u8..8).prop_map(|(p, n)| Step::Symlink(p, n)),
        2 => (i.clone(), i.clone(), 0u8..8).prop_map(|(a, b, n)| Step::Link(a, b, n)),
        3 => i.clone().prop_map(Step::Unlink),
        2 => i.clone().prop_map(Step::Rmdir),
        3 => (i.clone(), i.clone(), 0u8..8).prop_map(|(a, b, n)| Step::Rename(a, b, n)),
        1 => (i.clone(), any::<u16>()).prop_map(|(a, m)| Step::Chmod(a, m)),
        2 => (i.clone(), 0u64..(4 * CHUNK_SIZE)).prop_map(|(a, l)| Step::Truncate(a, l)),
        6 => (i.clone(), 0u32..4, 0u64..(4 * CHUNK_SIZE)).prop_map(|(a, x, l)| Step::Write(a, x, l)),
        2 => i.clone().prop_map(Step::WriteFailed),
        2 => i.clone().prop_map(Step::Unlock),
        1 => (i.clone(), 1u8..=9, any::<bool>()).prop_map(|(a, g, r)| Step::Goal(a, g, r)),
        1 => (i.clone(), prop_oneof![Just(0u32), Just(60), Just(86_400)], any::<bool>())
            .prop_map(|(a, t, r)| Step::Trash(a, t, r)),
        1 => (0u32..200_000).prop_map(Step::Purge),
        1 => i.clone().prop_map(Step::Session),
        1 => (0u32..4).prop_map(Step::CloseSession),
        3 => (1u32..4, i.clone()).prop_map(|(s, a)| Step::Open(s, a)),
        2 => i.clone().prop_map(Step::Undel),
        2 => (1u32..4, i.clone()).prop_map(|(s, a)| Step::Release(s, a)),
    ]
}

/// Every reachable entry, as `(parent, name, inode, kind)`, root first.
fn entries(m: &Meta) -> Vec<(Inode, Vec<u8>, Inode, NodeType)> {
    let mut out = vec![(ROOT, b".".to_vec(), ROOT, NodeType::Dir)];
    let mut i = 0;
    while i < out.len() {
        let (_, _, inode, kind) = out[i].clone();
        if kind == NodeType::Dir {
            for e in m.readdir(&root(), inode).unwrap().into_iter().skip(2) {
                out.push((inode, e.name, e.inode, e.kind));
            }
        }
        i += 1;
    }
    out
}

fn name(n: u8) -> Vec<u8> {
    // Names with bytes that need escaping in the text form.
    match n {
        0 => b"a".to_vec(),
        1 => b"b c".to_vec(),
        2 => vec![0xFF, b',', b'('],
        3 => b"%41".to_vec(),
        _ => format!("n{n}").into_bytes(),
    }
}

fn run(m: &mut Meta, steps: &[Step], now: &mut u32) {
    for (k, s) in steps.iter().enumerate() {
        *now += 7;
        let all = entries(m);
        let pick = |i: usize| &all[i % all.len()];
        let dirs: Vec<Inode> = all.iter().filter(|e| e.3 == NodeType::Dir).map(|e| e.2).collect();
        let pick_dir = |i: usize| dirs[i % dirs.len()];
        // Chunk operations aim at files, or at the root (an error) when there are none.
        let files: Vec<Inode> = all.iter().filter(|e| e.3 == NodeType::File).map(|e| e.2).collect();
        let pick_file = |i: usize| if files.is_empty() { ROOT } else { files[i % files.len()] };
        // Mostly root, sometimes two ordinary users.
        let ctx = Ctx { uid: [0, 0, 100, 0, 101][k % 5], gids: vec![100], now: *now };
        let _ = match *s {
            Step::Mknod(p, n, k) => {
                let kind = NodeType::from_wire(k).unwrap();
                m.mknod(&ctx, pick_dir(p), &name(n), kind, 0o666, 0o022, 77).map(|_| ())
            }
            Step::Mkdir(p, n, mode) => m.mkdir(&ctx, pick_dir(p), &name(n), mode, 0, true).map(|_| ()),
            Step::Symlink(p, n) => m.symlink(&ctx, pick_dir(p), &name(n), b"target").map(|_| ()),
            Step::Link(a, b, n) => m.link(&ctx, pick(a).2, pick_dir(b), &name(n)).map(|_| ()),
            Step::Unlink(a) => m.unlink(&ctx, pick(a).0, &pick(a).1.clone()).map(|_| ()),
            Step::Rmdir(a) => m.rmdir(&ctx, pick(a).0, &pick(a).1.clone()).map(|_| ()),
            Step::Rename(a, b, n) => m.rename(&ctx, pick(a).0, &pick(a).1.clone(), pick_dir(b), &name(n)).map(|_| ()),
            Step::Chmod(a, mode) => m.setattr(&ctx, pick(a).2, 0x02 | 0x10, mode, 0, 0, 0, 0).map(|_| ()),
            Step::Truncate(a, l) => m.truncate(&ctx, pick_file(a), l, false).map(|_| ()),
            Step::Write(a, index, l) => {
                let inode = pick_file(a);
                m.write_chunk(1, inode, index, *now).and_then(|p| {
                    if l % 3 == 0 {
                        Ok(())
                    } else {
                        m.write_chunk_end(inode, p.chunk, l, *now)
                    }
                })
            }
            Step::WriteFailed(a) => {
                let inode = pick_file(a);
                if let Ok((_, Some((c, _)))) = m.read_chunk(inode, 0) {
                    m.write_chunk_failed(inode, 0, c, *now);
                }
                Ok(())
            }
            Step::Unlock(a) => match m.read_chunk(pick_file(a), 0) {
                Ok((_, Some((c, v)))) if v > 1 && a % 2 == 0 => {
                    m.write_chunk_reverted(c, v - 1, *now);
                    Ok(())
                }
                Ok((_, Some((c, _)))) => m.unlock_chunk(c, *now),
                _ => Ok(()),
            },
            Step::Goal(a, g, r) => m.set_goal(&ctx, pick(a).2, g, r, SetMode::Set).map(|_| ()),
            Step::Trash(a, t, r) => m.set_trashtime(&ctx, pick(a).2, t, r, SetMode::Set).map(|_| ()),
            Step::Purge(dt) => {
                m.purge_trash(*now + dt);
                Ok(())
            }
            Step::Session(a) => {
                let path = if a % 2 == 0 { b"/".to_vec() } else { [b"/".to_vec(), pick(a).1.clone()].concat() };
                m.new_session(b"s", &path, *now).map(|_| ())
            }
            Step::CloseSession(id) => m.close_session(id, *now),
            Step::Open(session, a) => m.open(session, pick_file(a), *now),
            Step::Undel(a) => {
                let trash = m.trash_list();
                if trash.is_empty() {
                    Ok(())
                } else {
                    m.undel(trash[a % trash.len()].0, *now)
                }
            }
            Step::Release(session, a) => {
                // Sometimes a sustained file, which only a release frees.
                let sustained = m.sustained();
                let inode =
                    if a % 2 == 0 && !sustained.is_empty() { sustained[a % sustained.len()] } else { pick_file(a) };
                m.release(session, inode, *now);
                Ok(())
            }
        };
    }
}

/// 64 cases by default; `PROPTEST_CASES` asks for a longer soak.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn snapshot_plus_replay_equals_live(before in proptest::collection::vec(step(), 0..40),
                                        after in proptest::collection::vec(step(), 1..120)) {
        let mut m = fs();
        let mut now = 2000;
        run(&mut m, &before, &mut now);
        m.drain_log();
        m.take_released();
        let base = snapshot_bytes(&m);
        run(&mut m, &after, &mut now);
        let mut r = Meta::read_snapshot(&mut &base[..]).unwrap();
        let log = m.drain_log();
        for (v, rec) in &log {
            let text = rec.to_text();
            let parsed = Record::parse(&text).unwrap();
            prop_assert_eq!(&parsed, rec);
            r.replay(*v, &parsed).unwrap();
        }
        prop_assert_eq!(r.version(), m.version());
        prop_assert!(snapshot_bytes(&r) == snapshot_bytes(&m), "replayed state differs");
        prop_assert_eq!(r.take_released(), m.take_released());
        // The live state also reloads from its own snapshot.
        let again = Meta::read_snapshot(&mut &snapshot_bytes(&m)[..]).unwrap();
        prop_assert!(snapshot_bytes(&again) == snapshot_bytes(&m));
    }
}
