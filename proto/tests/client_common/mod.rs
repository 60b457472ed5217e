//! Proptest strategies for the client and metalogger links: one generator
//! per message enum, covering every variant and every length form the
//! encoders produce, plus exhaustive `*_variant` functions (no wildcard
//! arm) so a new variant without a generator fails to compile.
//!
//! Generated values stay inside what the encoders accept: credentials have
//! at least one gid, names at most 255 bytes, `WriteChunkEnd` has `flags`
//! whenever it has `index`, a named `SetSclass` has a source class exactly
//! in `EXCHANGE` mode, an xattr value is empty or as long as its size.

#![allow(dead_code)]

use elkfs_proto::client::{ids, *};
use elkfs_proto::metalogger::{MaToMl, MlToMa};
use elkfs_proto::{Addr, Status};
use proptest::collection::vec;
use proptest::prelude::*;

pub fn status() -> impl Strategy<Value = Status> {
    any::<u8>().prop_map(Status)
}

pub fn addr() -> impl Strategy<Value = Addr> {
    (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| Addr { ip, port })
}

pub fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![4 => vec(any::<u8>(), 0..20), 1 => vec(any::<u8>(), 250..=255)]
}

pub fn cred() -> impl Strategy<Value = Cred> {
    (any::<u32>(), vec(any::<u32>(), 1..6)).prop_map(|(uid, gids)| Cred { uid, gids })
}

pub fn attr() -> impl Strategy<Value = AttrBytes> {
    any::<[u8; 32]>().prop_flat_map(|a| {
        any::<[u8; 4]>().prop_map(move |b| {
            let mut out = [0; ATTR_LEN];
            out[..32].copy_from_slice(&a);
            out[32..].copy_from_slice(&b);
            out
        })
    })
}

fn resume() -> impl Strategy<Value = Option<Resume>> {
    proptest::option::of((any::<u32>(), proptest::option::of(any::<u64>())))
        .prop_map(|r| r.map(|(sessionid, metaid)| Resume { sessionid, metaid }))
}

fn digest() -> impl Strategy<Value = Option<[u8; 16]>> {
    proptest::option::of(any::<[u8; 16]>())
}

fn register() -> BoxedStrategy<ClToMa> {
    prop_oneof![
        Just(ClToMa::GetRandom),
        (any::<u32>(), vec(any::<u8>(), 0..40), vec(any::<u8>(), 0..20), resume(), digest()).prop_map(
            |(version, info, path, resume, digest)| ClToMa::NewSession { version, info, path, resume, digest }
        ),
        (any::<u32>(), any::<u32>(), proptest::option::of(any::<u64>()))
            .prop_map(|(sessionid, version, metaid)| ClToMa::Reconnect { sessionid, version, metaid }),
        (any::<u32>(), any::<u32>(), proptest::option::of(any::<u64>()))
            .prop_map(|(sessionid, version, metaid)| ClToMa::Tools { sessionid, version, metaid }),
        (any::<u32>(), vec(any::<u8>(), 0..40), resume(), digest())
            .prop_map(|(version, info, resume, digest)| ClToMa::NewMetaSession { version, info, resume, digest }),
        (any::<u32>(), proptest::option::of(any::<u64>()))
            .prop_map(|(sessionid, metaid)| ClToMa::CloseSession { sessionid, metaid }),
    ]
    .boxed()
}

fn namespace_ops() -> BoxedStrategy<ClToMa> {
    let u = any::<u32>;
    prop_oneof![
        u().prop_map(|msgid| ClToMa::Nop { msgid }),
        u().prop_map(|msgid| ClToMa::Statfs { msgid }),
        (u(), u(), cred(), any::<u16>()).prop_map(|(msgid, inode, cred, mask)| ClToMa::Access {
            msgid,
            inode,
            cred,
            mask
        }),
        (u(), u(), name(), cred()).prop_map(|(msgid, parent, name, cred)| ClToMa::Lookup { msgid, parent, name, cred }),
        (u(), u(), any::<u8>(), u(), u()).prop_map(|(msgid, inode, opened, uid, gid)| ClToMa::GetAttr {
            msgid,
            inode,
            opened,
            uid,
            gid
        }),
        ((u(), u(), any::<u8>(), cred(), any::<u8>(), any::<u16>()), (u(), u(), u(), u(), any::<u8>(), any::<u8>()))
            .prop_map(
                |((msgid, inode, opened, cred, setmask, mode), (uid, gid, atime, mtime, winattr, sugid_clear))| {
                    ClToMa::SetAttr {
                        msgid,
                        inode,
                        opened,
                        cred,
                        setmask,
                        mode,
                        uid,
                        gid,
                        atime,
                        mtime,
                        winattr,
                        sugid_clear,
                    }
                }
            ),
        (u(), u()).prop_map(|(msgid, inode)| ClToMa::ReadLink { msgid, inode }),
        (u(), u(), name(), vec(any::<u8>(), 0..40), cred())
            .prop_map(|(msgid, parent, name, path, cred)| ClToMa::Symlink { msgid, parent, name, path, cred }),
        (u(), u(), name(), any::<u8>(), any::<u16>(), any::<u16>(), cred(), u()).prop_map(
            |(msgid, parent, name, node_type, mode, umask, cred, rdev)| ClToMa::Mknod {
                msgid,
                parent,
                name,
                node_type,
                mode,
                umask,
                cred,
                rdev
            }
        ),
        (u(), u(), name(), any::<u16>(), any::<u16>(), cred(), any::<u8>()).prop_map(
            |(msgid, parent, name, mode, umask, cred, copysgid)| ClToMa::Mkdir {
                msgid,
                parent,
                name,
                mode,
                umask,
                cred,
                copysgid
            }
        ),
        (u(), u(), name(), cred()).prop_map(|(msgid, parent, name, cred)| ClToMa::Unlink { msgid, parent, name, cred }),
        (u(), u(), name(), cred()).prop_map(|(msgid, parent, name, cred)| ClToMa::Rmdir { msgid, parent, name, cred }),
        (u(), u(), name(), u(), name(), cred()).prop_map(
            |(msgid, src_parent, src_name, dst_parent, dst_name, cred)| {
                ClToMa::Rename { msgid, src_parent, src_name, dst_parent, dst_name, cred }
            }
        ),
        (u(), u(), u(), name(), cred()).prop_map(|(msgid, inode, dst_parent, dst_name, cred)| ClToMa::Link {
            msgid,
            inode,
            dst_parent,
            dst_name,
            cred
        }),
        (u(), u(), cred(), any::<u8>(), u(), any::<u64>()).prop_map(
            |(msgid, inode, cred, flags, max_entries, edge)| {
                ClToMa::ReadDir { msgid, inode, cred, flags, max_entries, edge }
            }
        ),
        (u(), u(), cred(), any::<u8>()).prop_map(|(msgid, inode, cred, flags)| ClToMa::Open {
            msgid,
            inode,
            cred,
            flags
        }),
        (u(), u(), any::<u8>(), cred(), any::<u64>())
            .prop_map(|(msgid, inode, flags, cred, length)| ClToMa::Truncate { msgid, inode, flags, cred, length }),
        (u(), u(), name(), any::<u16>(), any::<u16>(), cred()).prop_map(|(msgid, parent, name, mode, umask, cred)| {
            ClToMa::Create { msgid, parent, name, mode, umask, cred }
        }),
    ]
    .boxed()
}

fn write_end_forms() -> impl Strategy<Value = (Option<u32>, Option<u8>)> {
    prop_oneof![
        (any::<u32>(), any::<u8>()).prop_map(|(i, f)| (Some(i), Some(f))),
        any::<u8>().prop_map(|f| (None, Some(f))),
        Just((None, None)),
    ]
}

fn sclass_set() -> impl Strategy<Value = (u8, SclassSet)> {
    prop_oneof![
        (any::<u8>(), any::<u8>().prop_filter("0xFF marks a name", |g| *g != 0xFF))
            .prop_map(|(smode, goal)| (smode, SclassSet::Goal(goal))),
        (any::<u8>(), name(), name()).prop_map(|(smode, src, dst)| {
            let src = (smode & SMODE_TMASK == SMODE_EXCHANGE).then_some(src);
            (smode, SclassSet::Named { src, dst })
        }),
    ]
}

fn data_ops() -> BoxedStrategy<ClToMa> {
    let u = any::<u32>;
    let inodes = || vec(u(), 0..20);
    prop_oneof![
        (u(), u(), u(), any::<u8>()).prop_map(|(msgid, inode, index, flags)| ClToMa::ReadChunk {
            msgid,
            inode,
            index,
            flags
        }),
        (u(), u(), u(), any::<u8>()).prop_map(|(msgid, inode, index, flags)| ClToMa::WriteChunk {
            msgid,
            inode,
            index,
            flags
        }),
        (u(), any::<u64>(), u(), any::<u64>(), write_end_forms()).prop_map(
            |(msgid, chunk, inode, length, (index, flags))| ClToMa::WriteChunkEnd {
                msgid,
                chunk,
                inode,
                index,
                length,
                flags
            }
        ),
        (u(), u(), proptest::option::of(u())).prop_map(|(msgid, inode, index)| ClToMa::Check { msgid, inode, index }),
        (u(), u(), any::<u8>()).prop_map(|(msgid, inode, gmode)| ClToMa::GetTrashTime { msgid, inode, gmode }),
        (u(), u(), u(), u(), any::<u8>()).prop_map(|(msgid, inode, uid, trashtime, smode)| ClToMa::SetTrashTime {
            msgid,
            inode,
            uid,
            trashtime,
            smode
        }),
        (u(), u(), any::<u8>()).prop_map(|(msgid, inode, gmode)| ClToMa::GetSclass { msgid, inode, gmode }),
        (u(), u(), u(), sclass_set()).prop_map(|(msgid, inode, uid, (smode, target))| ClToMa::SetSclass {
            msgid,
            inode,
            uid,
            smode,
            target
        }),
        (u(), u()).prop_map(|(msgid, inode)| ClToMa::GetDirStats { msgid, inode }),
        (u(), u(), name(), any::<u8>(), any::<u8>(), cred()).prop_map(|(msgid, inode, name, mode, opened, cred)| {
            ClToMa::GetXattr { msgid, inode, name, mode, opened, cred }
        }),
        (u(), u(), name(), vec(any::<u8>(), 0..64), any::<u8>(), any::<u8>(), cred()).prop_map(
            |(msgid, inode, name, value, mode, opened, cred)| ClToMa::SetXattr {
                msgid,
                inode,
                name,
                value,
                mode,
                opened,
                cred
            }
        ),
        (u(), u(), u(), any::<u64>(), any::<u8>()).prop_map(|(msgid, inode, reqid, owner, cmd)| ClToMa::Flock {
            msgid,
            inode,
            reqid,
            owner,
            cmd
        }),
        ((u(), u(), u(), any::<u64>(), u()), (any::<u8>(), any::<u8>(), any::<u64>(), any::<u64>())).prop_map(
            |((msgid, inode, reqid, owner, pid), (cmd, lock_type, start, end))| ClToMa::PosixLock {
                msgid,
                inode,
                reqid,
                owner,
                pid,
                cmd,
                lock_type,
                start,
                end
            }
        ),
        proptest::option::of(u()).prop_map(|msgid| ClToMa::TimeSync { msgid }),
        inodes().prop_map(ClToMa::SustainedInodes),
        vec((u(), u(), u()), 0..10).prop_map(ClToMa::AmtimeInodes),
        other(),
    ]
    .boxed()
}

/// `Other` as the decoder produces it: a msgid for the FUSE and storage
/// class ids and `GET_CONFIG`, none for the admin ids, either for
/// `GET_VERSION`.
fn other() -> impl Strategy<Value = ClToMa> {
    // Unmodelled ids are exactly those a bare msgid decodes to `Other` for.
    let unmodelled = |k: &u32| matches!(ClToMa::decode(*k, &[0; 4]), Ok(ClToMa::Other { .. }));
    prop_oneof![
        ((350u32..=499).prop_filter("an unmodelled request id", unmodelled), any::<u32>())
            .prop_map(|(kind, m)| ClToMa::Other { kind, msgid: Some(m) }),
        (250u32..=273).prop_map(|half| ClToMa::Other { kind: half * 2, msgid: None }),
        any::<u32>().prop_map(|m| ClToMa::Other { kind: ids::GET_CONFIG, msgid: Some(m) }),
        proptest::option::of(any::<u32>()).prop_map(|msgid| ClToMa::Other { kind: ids::GET_VERSION, msgid }),
        proptest::sample::select(&[ids::UNKNOWN_COMMAND, ids::BAD_COMMAND_SIZE][..])
            .prop_map(|kind| ClToMa::Other { kind, msgid: None }),
    ]
}

pub fn cl_to_ma() -> BoxedStrategy<ClToMa> {
    prop_oneof![1 => register(), 3 => namespace_ops(), 3 => data_ops()].boxed()
}

pub fn chunk_loc() -> impl Strategy<Value = ChunkLoc> {
    let server =
        (addr(), any::<u32>(), any::<u32>()).prop_map(|(addr, version, labelmask)| CsLoc { addr, version, labelmask });
    (any::<u64>(), any::<u64>(), any::<u32>(), vec(server, 0..5))
        .prop_map(|(length, chunk, version, servers)| ChunkLoc { length, chunk, version, servers })
}

fn first_chunk() -> impl Strategy<Value = FirstChunk> {
    chunk_loc().prop_map(|l| FirstChunk { chunk: l.chunk, version: l.version, servers: l.servers })
}

fn sclass() -> impl Strategy<Value = Sclass> {
    prop_oneof![
        any::<u8>().prop_filter("0 and 0xFF are not goals", |g| *g != 0 && *g != 0xFF).prop_map(Sclass::Goal),
        name().prop_map(Sclass::Named),
    ]
}

fn dir_entries() -> impl Strategy<Value = DirEntries> {
    prop_oneof![
        vec((name(), any::<u32>(), attr()), 0..6).prop_map(DirEntries::Attrs),
        vec((name(), any::<u32>(), any::<u8>()), 0..6).prop_map(DirEntries::Types),
    ]
}

fn reply_kind(kinds: &'static [u32]) -> impl Strategy<Value = u32> {
    proptest::sample::select(kinds)
}

fn session_replies() -> BoxedStrategy<MaToCl> {
    let u = any::<u32>;
    prop_oneof![
        any::<[u8; 32]>().prop_map(MaToCl::Random),
        (
            (u(), u(), any::<u64>(), any::<u8>(), any::<u16>(), u(), u()),
            (u(), u(), any::<u8>(), any::<u8>(), u(), u(), u())
        )
            .prop_map(
                |(
                    (version, sessionid, metaid, sesflags, umask, rootuid, rootgid),
                    (mapalluid, mapallgid, mingoal, maxgoal, mintrashtime, maxtrashtime, disables),
                )| MaToCl::Session(Session {
                    version,
                    sessionid,
                    metaid,
                    sesflags,
                    umask,
                    rootuid,
                    rootgid,
                    mapalluid,
                    mapallgid,
                    mingoal,
                    maxgoal,
                    mintrashtime,
                    maxtrashtime,
                    disables,
                })
            ),
        (u(), u(), any::<u64>(), any::<u8>(), any::<u8>(), any::<u8>(), u(), u()).prop_map(
            |(version, sessionid, metaid, sesflags, mingoal, maxgoal, mintrashtime, maxtrashtime)| {
                MaToCl::MetaSession(MetaSession {
                    version,
                    sessionid,
                    metaid,
                    sesflags,
                    mingoal,
                    maxgoal,
                    mintrashtime,
                    maxtrashtime,
                })
            }
        ),
        (u(), status()).prop_map(|(version, status)| MaToCl::Reconnected { version, status }),
        status().prop_map(MaToCl::RegisterStatus),
        u().prop_map(|msgid| MaToCl::Nop { msgid }),
        ((351u32..=499).prop_filter("odd reply ids but REGISTER", |k| k % 2 == 1 && *k != 401), u(), status())
            .prop_map(|(kind, msgid, status)| MaToCl::Status { kind, msgid, status }),
        proptest::option::of(u())
            .prop_flat_map(|msgid| any::<u64>().prop_map(move |usec| MaToCl::TimeSync { msgid, usec })),
        (u(), u(), any::<u64>(), u(), any::<u64>(), any::<u8>()).prop_map(
            |(inode, index, chunk, version, length, truncated)| MaToCl::ChunkHasChanged {
                inode,
                index,
                chunk,
                version,
                length,
                truncated
            }
        ),
        (u(), any::<u64>()).prop_map(|(inode, length)| MaToCl::FlengHasChanged { inode, length }),
        Just(MaToCl::InvalidateChunkCache),
    ]
    .boxed()
}

fn namespace_replies() -> BoxedStrategy<MaToCl> {
    let u = any::<u32>;
    let w = any::<u64>;
    prop_oneof![
        (u(), w(), w(), w(), w(), w(), u()).prop_map(|(msgid, total, avail, free, trash, sustained, inodes)| {
            MaToCl::Statfs { msgid, total, avail, free, trash, sustained, inodes }
        }),
        (u(), u(), attr(), proptest::option::of(any::<u16>()), first_chunk()).prop_map(
            |(msgid, inode, attr, lflags, chunk)| {
                let flagged = lflags.is_some_and(|f| f & LOOKUP_CHUNK_ZERO_DATA != 0);
                MaToCl::Lookup { msgid, inode, attr, lflags, first_chunk: flagged.then_some(chunk) }
            }
        ),
        (reply_kind(&[ids::GETATTR_REPLY, ids::SETATTR_REPLY]), u(), attr())
            .prop_map(|(kind, msgid, attr)| MaToCl::Attr { kind, msgid, attr }),
        (
            reply_kind(&[ids::MKNOD_REPLY, ids::MKDIR_REPLY, ids::SYMLINK_REPLY, ids::LINK_REPLY, ids::RENAME_REPLY]),
            u(),
            u(),
            attr()
        )
            .prop_map(|(kind, msgid, inode, attr)| MaToCl::Entry { kind, msgid, inode, attr }),
        (u(), any::<u8>(), u(), attr()).prop_map(|(msgid, oflags, inode, attr)| MaToCl::Create {
            msgid,
            oflags,
            inode,
            attr
        }),
        (u(), any::<u8>(), attr()).prop_map(|(msgid, oflags, attr)| MaToCl::Open { msgid, oflags, attr }),
        (reply_kind(&[ids::UNLINK_REPLY, ids::RMDIR_REPLY]), u(), u())
            .prop_map(|(kind, msgid, inode)| MaToCl::Removed { kind, msgid, inode }),
        (u(), vec(any::<u8>(), 0..40)).prop_map(|(msgid, path)| MaToCl::ReadLink { msgid, path }),
        (u(), w(), dir_entries()).prop_map(|(msgid, next_edge, entries)| MaToCl::ReadDir { msgid, next_edge, entries }),
        (u(), w(), attr()).prop_map(|(msgid, prev_length, attr)| MaToCl::Truncate { msgid, prev_length, attr }),
    ]
    .boxed()
}

fn data_replies() -> BoxedStrategy<MaToCl> {
    let u = any::<u32>;
    let w = any::<u64>;
    let counts = || vec((u(), u()), 0..5);
    let classes = || vec((sclass(), u()), 0..4);
    let stats =
        (u(), u(), u(), u(), w(), w(), w()).prop_map(|(inodes, dirs, files, chunks, length, size, realsize)| {
            DirStats { inodes, dirs, files, chunks, length, size, realsize }
        });
    let xattr = (u(), vec(any::<u8>(), 0..40), any::<bool>()).prop_map(|(msgid, value, length_only)| {
        let size = value.len() as u32;
        MaToCl::Xattr { msgid, size, value: if length_only { Vec::new() } else { value } }
    });
    prop_oneof![
        (reply_kind(&[ids::READ_CHUNK_REPLY, ids::WRITE_CHUNK_REPLY]), u(), chunk_loc())
            .prop_map(|(kind, msgid, loc)| MaToCl::Chunk { kind, msgid, loc }),
        (u(), any::<[u32; 12]>()).prop_map(|(msgid, counts)| MaToCl::CheckCounts { msgid, counts }),
        (u(), w(), u(), vec((addr(), any::<u8>()), 0..5))
            .prop_map(|(msgid, chunk, version, copies)| MaToCl::CheckChunk { msgid, chunk, version, copies }),
        (u(), counts(), counts()).prop_map(|(msgid, files, dirs)| MaToCl::TrashTime { msgid, files, dirs }),
        (reply_kind(&[ids::SETTRASHTIME_REPLY, ids::SETSCLASS_REPLY]), u(), u(), u(), u()).prop_map(
            |(kind, msgid, changed, not_changed, not_permitted)| MaToCl::Changed {
                kind,
                msgid,
                changed,
                not_changed,
                not_permitted
            }
        ),
        (u(), classes(), classes()).prop_map(|(msgid, files, dirs)| MaToCl::Sclass { msgid, files, dirs }),
        (u(), stats, any::<bool>()).prop_map(|(msgid, stats, padded)| MaToCl::DirStats { msgid, stats, padded }),
        xattr,
        (u(), u(), any::<u8>(), w(), w()).prop_map(|(msgid, pid, lock_type, start, end)| MaToCl::PosixLock {
            msgid,
            pid,
            lock_type,
            start,
            end
        }),
    ]
    .boxed()
}

pub fn ma_to_cl() -> BoxedStrategy<MaToCl> {
    prop_oneof![session_replies(), namespace_replies(), data_replies()].boxed()
}

pub fn ml_to_ma() -> BoxedStrategy<MlToMa> {
    prop_oneof![
        Just(MlToMa::Nop),
        (any::<u32>(), any::<u16>()).prop_map(|(version, timeout)| MlToMa::Register { version, timeout }),
        (any::<u32>(), any::<u16>(), any::<u64>()).prop_map(|(version, timeout, min_version)| MlToMa::RegisterFrom {
            version,
            timeout,
            min_version
        }),
        any::<u8>().prop_map(|file| MlToMa::DownloadStart { file }),
        (any::<u64>(), any::<u32>()).prop_map(|(offset, length)| MlToMa::DownloadRequest { offset, length }),
        Just(MlToMa::DownloadEnd),
    ]
    .boxed()
}

pub fn ma_to_ml() -> BoxedStrategy<MaToMl> {
    prop_oneof![
        Just(MaToMl::Nop),
        (any::<u64>(), vec(any::<u8>(), 0..80)).prop_map(|(version, text)| MaToMl::Log { version, text }),
        Just(MaToMl::Rotate),
        any::<u64>().prop_map(MaToMl::DownloadSize),
        status().prop_map(MaToMl::DownloadFailed),
        (any::<u64>(), any::<u32>(), vec(any::<u8>(), 0..200)).prop_map(|(offset, crc, data)| MaToMl::DownloadData {
            offset,
            crc,
            data
        }),
    ]
    .boxed()
}

/// The `READDIR` entry form a reply needs to decode as itself.
pub fn dir_form(m: &MaToCl) -> DirForm {
    match m {
        MaToCl::ReadDir { entries: DirEntries::Attrs(_), .. } => DirForm::Attrs,
        _ => DirForm::Types,
    }
}

pub const CL_TO_MA_VARIANTS: usize = 42;

pub fn cl_to_ma_variant(m: &ClToMa) -> usize {
    use ClToMa::*;
    match m {
        GetRandom => 0,
        NewSession { .. } => 1,
        Reconnect { .. } => 2,
        Tools { .. } => 3,
        NewMetaSession { .. } => 4,
        CloseSession { .. } => 5,
        Nop { .. } => 6,
        Statfs { .. } => 7,
        Access { .. } => 8,
        Lookup { .. } => 9,
        GetAttr { .. } => 10,
        SetAttr { .. } => 11,
        ReadLink { .. } => 12,
        Symlink { .. } => 13,
        Mknod { .. } => 14,
        Mkdir { .. } => 15,
        Unlink { .. } => 16,
        Rmdir { .. } => 17,
        Rename { .. } => 18,
        Link { .. } => 19,
        ReadDir { .. } => 20,
        Open { .. } => 21,
        ReadChunk { .. } => 22,
        WriteChunk { .. } => 23,
        WriteChunkEnd { .. } => 24,
        Check { .. } => 25,
        GetTrashTime { .. } => 26,
        SetTrashTime { .. } => 27,
        GetSclass { .. } => 28,
        SetSclass { .. } => 29,
        GetDirStats { .. } => 30,
        Truncate { .. } => 31,
        Create { .. } => 32,
        GetXattr { .. } => 33,
        SetXattr { .. } => 34,
        Flock { .. } => 35,
        PosixLock { .. } => 36,
        TimeSync { .. } => 37,
        SustainedInodes(_) => 38,
        AmtimeInodes(_) => 39,
        Other { msgid: Some(_), .. } => 40,
        Other { msgid: None, .. } => 41,
    }
}

pub const MA_TO_CL_VARIANTS: usize = 31;

pub fn ma_to_cl_variant(m: &MaToCl) -> usize {
    use MaToCl::*;
    match m {
        Nop { .. } => 0,
        Status { .. } => 1,
        Random(_) => 2,
        Session(_) => 3,
        MetaSession(_) => 4,
        Reconnected { .. } => 5,
        RegisterStatus(_) => 6,
        Statfs { .. } => 7,
        Lookup { .. } => 8,
        Attr { .. } => 9,
        Entry { .. } => 10,
        Create { .. } => 11,
        Open { .. } => 12,
        Removed { .. } => 13,
        ReadLink { .. } => 14,
        ReadDir { entries: DirEntries::Attrs(_), .. } => 15,
        ReadDir { entries: DirEntries::Types(_), .. } => 16,
        Chunk { .. } => 17,
        Truncate { .. } => 18,
        CheckCounts { .. } => 19,
        CheckChunk { .. } => 20,
        TrashTime { .. } => 21,
        Changed { .. } => 22,
        Sclass { .. } => 23,
        DirStats { .. } => 24,
        Xattr { .. } => 25,
        PosixLock { .. } => 26,
        TimeSync { .. } => 27,
        ChunkHasChanged { .. } => 28,
        FlengHasChanged { .. } => 29,
        InvalidateChunkCache => 30,
    }
}

pub const ML_TO_MA_VARIANTS: usize = 6;

pub fn ml_to_ma_variant(m: &MlToMa) -> usize {
    match m {
        MlToMa::Nop => 0,
        MlToMa::Register { .. } => 1,
        MlToMa::RegisterFrom { .. } => 2,
        MlToMa::DownloadStart { .. } => 3,
        MlToMa::DownloadRequest { .. } => 4,
        MlToMa::DownloadEnd => 5,
    }
}

pub const MA_TO_ML_VARIANTS: usize = 6;

pub fn ma_to_ml_variant(m: &MaToMl) -> usize {
    match m {
        MaToMl::Nop => 0,
        MaToMl::Log { .. } => 1,
        MaToMl::Rotate => 2,
        MaToMl::DownloadSize(_) => 3,
        MaToMl::DownloadFailed(_) => 4,
        MaToMl::DownloadData { .. } => 5,
    }
}

/// Ids the client and metalogger decoders know, for the fuzzers.
pub const CLIENT_KINDS: &[u32] = &[
    0, 1, 2, 10, 50, 51, 60, 61, 62, 63, 64, 80, 350, 360, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411,
    412, 413, 414, 415, 416, 417, 418, 419, 420, 421, 422, 423, 424, 425, 426, 427, 428, 429, 430, 431, 432, 433, 434,
    435, 436, 437, 438, 440, 441, 442, 443, 444, 445, 446, 447, 448, 449, 462, 463, 464, 465, 478, 479, 480, 481, 482,
    483, 492, 493, 494, 495, 499, 500, 547, 700, 701, 702, 703, 704, 705, 706,
];
