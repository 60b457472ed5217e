//! Monitoring on the master's client port (9421): what `mfscli` and the CGI
//! ask a 3.0.117 master, and the replies in the layouts they parse.
//!
//! These messages need no session: a monitoring tool connects, sends a
//! bare request (no msgid) and reads one reply of the matching type. Reply
//! layouts are the newest each tool of 3.0.117 understands; where a request
//! selects a layout (a `vmode` or `mode` byte), the decoder here takes the
//! one `mfscli` 3.0.117 asks for and says so on the type.
//!
//! Both directions live here so the master can answer with the same types
//! that `elkfs admin` decodes.

use crate::error::{Error, Result};
use crate::frame::Encode;
use crate::wire::{Put, Reader};

// The message ids are those of the one list in `client::ids`.
pub use crate::client::ids::{
    CHUNKSTEST_INFO, CHUNKSTEST_INFO_REPLY, CHUNKS_MATRIX, CHUNKS_MATRIX_REPLY, CSERV_LIST, CSERV_LIST_REPLY,
    FSTEST_INFO, FSTEST_INFO_REPLY, INFO, INFO_REPLY, MEMORY_INFO, MEMORY_INFO_REPLY, MISSING_CHUNKS,
    MISSING_CHUNKS_REPLY, MLOG_LIST, MLOG_LIST_REPLY, SESSION_LIST, SESSION_LIST_REPLY,
};

/// The session-list layout `mfscli` asks a ≥ 3.0.112 master for: with the
/// umask and the `disables` mask.
pub const SESSION_VMODE_DISABLES: u8 = 4;
/// Per-operation counters per session in 3.0.117 (`SESSION_STATS`).
pub const SESSION_STATS: u16 = 16;
/// Rows (goal 0..=10, 10 meaning "10 or more") and columns (valid copies,
/// the same) of a copy-count matrix.
pub const MATRIX_SIDE: usize = 11;
/// `INFO` reply length of 3.0.117 (the layout with free space, exports
/// checksum, clock and changelog time).
pub const INFO_LEN: usize = 149;
/// One chunkserver in `CSERV_LIST` (≥ 3.0.38: with the removal status).
pub const CSERV_ENTRY_LEN: usize = 69;
/// One metalogger in `MLOG_LIST`.
pub const MLOG_ENTRY_LEN: usize = 8;
/// One missing chunk in `MISSING_CHUNKS` mode 1 (with its type).
pub const MISSING_ENTRY_LEN: usize = 17;
/// `CHUNKS_MATRIX` replies: both matrices after a progress byte, or one.
pub const MATRIX_LEN: usize = MATRIX_SIDE * MATRIX_SIDE * 4;
pub const MATRICES_LEN: usize = 1 + 2 * MATRIX_LEN;
/// `MEMORY_INFO`: 11 (allocated, used) pairs.
pub const MEMORY_INFO_WORDS: usize = 22;
/// `CHUNKSTEST_INFO`: loop start/end and 16 counters of the chunk loop.
pub const CHUNKSTEST_WORDS: usize = 18;

/// `CSERV_LIST` entry flags.
pub const CS_FLAG_DISCONNECTED: u8 = 1;
pub const CS_FLAG_MAINTENANCE: u8 = 2;
/// Maintenance that ends by itself when the server comes back.
pub const CS_FLAG_MAINTENANCE_TEMP: u8 = 4;

/// The four HA state bytes a master without HA (the GPL one) sends: all
/// `0xFF`, which `mfscli` reads as "the leader".
pub const STATE_NO_HA: [u8; 4] = [0xFF; 4];

/// Client → master monitoring requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRequest {
    CservList,
    /// `vmode` selects the reply layout; absent means the oldest.
    SessionList {
        vmode: Option<u8>,
    },
    Info,
    /// `Some(_)` (any byte) asks for the form with trash/sustained counts.
    FsTestInfo {
        mode: Option<u8>,
    },
    ChunksTestInfo,
    /// `Some(id)` asks for one matrix (0 all copies, 1 regular copies).
    ChunksMatrix {
        matrix: Option<u8>,
    },
    MlogList,
    MemoryInfo,
    /// `Some(1)` asks for entries with their type byte.
    MissingChunks {
        mode: Option<u8>,
    },
}

/// Whole-master figures (`MATOCL_INFO`, 149-byte form).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MasterInfo {
    /// `major<<16 | mid<<8 | minor*2 (+1 for Pro)`.
    pub version: u32,
    pub memory_bytes: u64,
    /// CPU use, in millionths of a percent (`mfscli` divides by 10^7).
    pub sys_cpu: u64,
    pub user_cpu: u64,
    pub total_space: u64,
    pub avail_space: u64,
    pub free_space: u64,
    pub trash_space: u64,
    pub trash_files: u32,
    pub sustained_space: u64,
    pub sustained_files: u32,
    pub inodes: u32,
    pub dirs: u32,
    pub files: u32,
    pub chunks: u32,
    pub all_copies: u32,
    pub regular_copies: u32,
    /// Unix time of the last metadata save that succeeded (0: none yet).
    pub last_store_time: u32,
    pub last_store_ms: u32,
    /// 0 background, 1 downloaded, 2 foreground, other: error.
    pub last_store_status: u8,
    /// HA working/next/stable state and sync flag; [`STATE_NO_HA`] without HA.
    pub state: [u8; 4],
    pub leader_ip: u32,
    pub state_change_time: u32,
    pub meta_version: u64,
    pub exports_checksum: u64,
    pub clock_us: u64,
    pub changelog_time: u32,
}

/// One chunkserver the master knows (`MATOCL_CSERV_LIST`, 69 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CsEntry {
    /// [`CS_FLAG_DISCONNECTED`], [`CS_FLAG_MAINTENANCE`], ...
    pub flags: u8,
    /// 24-bit version (`major<<16 | mid<<8 | minor*2`).
    pub version: u32,
    pub ip: u32,
    pub port: u16,
    pub csid: u16,
    pub used: u64,
    pub total: u64,
    pub chunks: u32,
    /// Space and chunks on disks marked for removal.
    pub td_used: u64,
    pub td_total: u64,
    pub td_chunks: u32,
    pub errors: u32,
    pub load: u32,
    /// Seconds until a heavy-loaded server is back; top bits mark states.
    pub grace_time: u32,
    pub labels: u32,
    /// Status of the "marked for removal" disks (0 none, 1 waiting, 2 ready).
    pub mfr_status: u8,
}

/// One connected metalogger (`MATOCL_MLOG_LIST`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MlogEntry {
    pub version: u32,
    pub ip: u32,
}

/// One session (`MATOCL_SESSION_LIST`, layouts 2..=4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionEntry {
    pub id: u32,
    pub ip: u32,
    pub version: u32,
    pub open_files: u32,
    /// Connections of the session (at most 255 on the wire).
    pub sockets: u8,
    /// Seconds left before a disconnected session expires; `u32::MAX` while
    /// connected.
    pub expire: u32,
    /// Usually the mount point; not UTF-8 on the wire necessarily.
    pub info: Vec<u8>,
    /// Exported root path; `.` for the meta mount.
    pub path: Vec<u8>,
    pub flags: u8,
    /// Only in layouts ≥ 3.
    pub umask: u16,
    pub root_uid: u32,
    pub root_gid: u32,
    pub mapall_uid: u32,
    pub mapall_gid: u32,
    pub min_goal: u8,
    pub max_goal: u8,
    pub min_trash: u32,
    pub max_trash: u32,
    /// Only in layout 4.
    pub disables: u32,
    /// This hour's and last hour's operation counters, `stats` each.
    pub stats_current: Vec<u32>,
    pub stats_last_hour: Vec<u32>,
}

/// The session list: its layout (`vmode` 2..=4) and the counter count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionList {
    pub vmode: u8,
    pub stats: u16,
    pub sessions: Vec<SessionEntry>,
}

/// A copy-count matrix: `m[goal][valid copies]`, both capped at 10.
pub type Matrix = [[u32; MATRIX_SIDE]; MATRIX_SIDE];

/// The last pass of the namespace check loop (`FSTEST_INFO`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsTestInfo {
    pub loop_start: u32,
    pub loop_end: u32,
    pub files: u32,
    pub undergoal_files: u32,
    pub missing_files: u32,
    /// Missing trash and sustained files: only when the request had a byte.
    pub missing_trash_sustained: Option<(u32, u32)>,
    pub chunks: u32,
    pub undergoal_chunks: u32,
    pub missing_chunks: u32,
    /// The check's report text.
    pub message: Vec<u8>,
}

/// One chunk no copy of which is left (`MISSING_CHUNKS` mode 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MissingChunk {
    pub chunk: u64,
    pub inode: u32,
    pub index: u32,
    pub kind: u8,
}

/// Master → client monitoring replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminReply {
    CservList(Vec<CsEntry>),
    SessionList(SessionList),
    Info(MasterInfo),
    /// Decoded in the form with trash/sustained counts (what `mfscli` asks).
    FsTestInfo(FsTestInfo),
    ChunksTestInfo([u32; CHUNKSTEST_WORDS]),
    /// Both matrices: all copies and regular copies only; `progress` is
    /// nonzero while servers are still (dis)connecting.
    ChunksMatrices {
        progress: u8,
        all: Box<Matrix>,
        regular: Box<Matrix>,
    },
    /// One matrix, asked for by id.
    ChunksMatrix(Box<Matrix>),
    MlogList(Vec<MlogEntry>),
    MemoryInfo([u64; MEMORY_INFO_WORDS]),
    MissingChunks(Vec<MissingChunk>),
}

fn optional_byte(r: &mut Reader<'_>, kind: u32, len: usize) -> Result<Option<u8>> {
    match len {
        0 => Ok(None),
        1 => Ok(Some(r.u8()?)),
        _ => Err(Error::BadLength { kind, len }),
    }
}

fn empty(kind: u32, len: usize) -> Result<()> {
    if len != 0 {
        return Err(Error::BadLength { kind, len });
    }
    Ok(())
}

impl AdminRequest {
    pub fn decode(kind: u32, payload: &[u8]) -> Result<AdminRequest> {
        let len = payload.len();
        let mut r = Reader::new(kind, payload);
        let msg = match kind {
            CSERV_LIST => empty(kind, len).map(|_| AdminRequest::CservList)?,
            SESSION_LIST => AdminRequest::SessionList { vmode: optional_byte(&mut r, kind, len)? },
            INFO => empty(kind, len).map(|_| AdminRequest::Info)?,
            FSTEST_INFO => AdminRequest::FsTestInfo { mode: optional_byte(&mut r, kind, len)? },
            CHUNKSTEST_INFO => empty(kind, len).map(|_| AdminRequest::ChunksTestInfo)?,
            CHUNKS_MATRIX => AdminRequest::ChunksMatrix { matrix: optional_byte(&mut r, kind, len)? },
            MLOG_LIST => empty(kind, len).map(|_| AdminRequest::MlogList)?,
            MEMORY_INFO => empty(kind, len).map(|_| AdminRequest::MemoryInfo)?,
            MISSING_CHUNKS => AdminRequest::MissingChunks { mode: optional_byte(&mut r, kind, len)? },
            _ => return Err(Error::UnknownType { kind, len }),
        };
        r.finish()?;
        Ok(msg)
    }

    /// The reply type that answers this request.
    pub fn reply_kind(&self) -> u32 {
        self.kind() + 1
    }
}

impl Encode for AdminRequest {
    fn kind(&self) -> u32 {
        match self {
            AdminRequest::CservList => CSERV_LIST,
            AdminRequest::SessionList { .. } => SESSION_LIST,
            AdminRequest::Info => INFO,
            AdminRequest::FsTestInfo { .. } => FSTEST_INFO,
            AdminRequest::ChunksTestInfo => CHUNKSTEST_INFO,
            AdminRequest::ChunksMatrix { .. } => CHUNKS_MATRIX,
            AdminRequest::MlogList => MLOG_LIST,
            AdminRequest::MemoryInfo => MEMORY_INFO,
            AdminRequest::MissingChunks { .. } => MISSING_CHUNKS,
        }
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            AdminRequest::SessionList { vmode: Some(b) }
            | AdminRequest::ChunksMatrix { matrix: Some(b) }
            | AdminRequest::MissingChunks { mode: Some(b) }
            | AdminRequest::FsTestInfo { mode: Some(b) } => out.put_u8(*b),
            _ => {}
        }
    }
}

/// Splits a list payload into fixed-size entries, refusing a ragged tail.
fn entries<T>(
    r: &mut Reader<'_>,
    kind: u32,
    size: usize,
    get: impl Fn(&mut Reader<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    if !r.remaining().is_multiple_of(size) {
        return Err(Error::BadLength { kind, len: r.remaining() });
    }
    let mut out = Vec::with_capacity(r.remaining() / size);
    while r.remaining() > 0 {
        out.push(get(r)?);
    }
    Ok(out)
}

fn words<const N: usize>(r: &mut Reader<'_>) -> Result<[u32; N]> {
    let mut out = [0; N];
    for w in &mut out {
        *w = r.u32()?;
    }
    Ok(out)
}

fn matrix(r: &mut Reader<'_>) -> Result<Box<Matrix>> {
    let mut m = Box::new([[0; MATRIX_SIDE]; MATRIX_SIDE]);
    for row in m.iter_mut() {
        *row = words(r)?;
    }
    Ok(m)
}

fn put_matrix(m: &Matrix, out: &mut Vec<u8>) {
    for w in m.iter().flatten() {
        out.put_u32(*w);
    }
}

impl AdminReply {
    /// Decodes a reply. `SESSION_LIST_REPLY` is read in layout
    /// [`SESSION_VMODE_DISABLES`] (use [`SessionList::decode`] for another),
    /// and `MISSING_CHUNKS_REPLY` in mode 1.
    pub fn decode(kind: u32, payload: &[u8]) -> Result<AdminReply> {
        let len = payload.len();
        let mut r = Reader::new(kind, payload);
        let msg = match kind {
            CSERV_LIST_REPLY => AdminReply::CservList(entries(&mut r, kind, CSERV_ENTRY_LEN, CsEntry::get)?),
            SESSION_LIST_REPLY => {
                return Ok(AdminReply::SessionList(SessionList::decode(payload, SESSION_VMODE_DISABLES)?))
            }
            INFO_REPLY if len == INFO_LEN => AdminReply::Info(MasterInfo::get(&mut r)?),
            FSTEST_INFO_REPLY => AdminReply::FsTestInfo(FsTestInfo::get(&mut r)?),
            CHUNKSTEST_INFO_REPLY if len == CHUNKSTEST_WORDS * 4 => AdminReply::ChunksTestInfo(words(&mut r)?),
            CHUNKS_MATRIX_REPLY if len == MATRICES_LEN => {
                AdminReply::ChunksMatrices { progress: r.u8()?, all: matrix(&mut r)?, regular: matrix(&mut r)? }
            }
            CHUNKS_MATRIX_REPLY if len == MATRIX_LEN => AdminReply::ChunksMatrix(matrix(&mut r)?),
            MLOG_LIST_REPLY => AdminReply::MlogList(entries(&mut r, kind, MLOG_ENTRY_LEN, |r| {
                Ok(MlogEntry { version: r.u32()?, ip: r.u32()? })
            })?),
            MEMORY_INFO_REPLY if len == MEMORY_INFO_WORDS * 8 => {
                let mut m = [0; MEMORY_INFO_WORDS];
                for w in &mut m {
                    *w = r.u64()?;
                }
                AdminReply::MemoryInfo(m)
            }
            MISSING_CHUNKS_REPLY => AdminReply::MissingChunks(entries(&mut r, kind, MISSING_ENTRY_LEN, |r| {
                Ok(MissingChunk { chunk: r.u64()?, inode: r.u32()?, index: r.u32()?, kind: r.u8()? })
            })?),
            INFO_REPLY | CHUNKSTEST_INFO_REPLY | CHUNKS_MATRIX_REPLY | MEMORY_INFO_REPLY => {
                return Err(Error::BadLength { kind, len })
            }
            _ => return Err(Error::UnknownType { kind, len }),
        };
        r.finish()?;
        Ok(msg)
    }
}

impl Encode for AdminReply {
    fn kind(&self) -> u32 {
        match self {
            AdminReply::CservList(_) => CSERV_LIST_REPLY,
            AdminReply::SessionList(_) => SESSION_LIST_REPLY,
            AdminReply::Info(_) => INFO_REPLY,
            AdminReply::FsTestInfo(_) => FSTEST_INFO_REPLY,
            AdminReply::ChunksTestInfo(_) => CHUNKSTEST_INFO_REPLY,
            AdminReply::ChunksMatrices { .. } | AdminReply::ChunksMatrix(_) => CHUNKS_MATRIX_REPLY,
            AdminReply::MlogList(_) => MLOG_LIST_REPLY,
            AdminReply::MemoryInfo(_) => MEMORY_INFO_REPLY,
            AdminReply::MissingChunks(_) => MISSING_CHUNKS_REPLY,
        }
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            AdminReply::CservList(list) => list.iter().for_each(|e| e.put(out)),
            AdminReply::SessionList(list) => list.put(out),
            AdminReply::Info(info) => info.put(out),
            AdminReply::FsTestInfo(t) => t.put(out),
            AdminReply::ChunksTestInfo(w) => w.iter().for_each(|v| out.put_u32(*v)),
            AdminReply::ChunksMatrices { progress, all, regular } => {
                out.put_u8(*progress);
                put_matrix(all, out);
                put_matrix(regular, out);
            }
            AdminReply::ChunksMatrix(m) => put_matrix(m, out),
            AdminReply::MlogList(list) => list.iter().for_each(|e| {
                out.put_u32(e.version);
                out.put_u32(e.ip);
            }),
            AdminReply::MemoryInfo(w) => w.iter().for_each(|v| out.put_u64(*v)),
            AdminReply::MissingChunks(list) => list.iter().for_each(|m| {
                out.put_u64(m.chunk);
                out.put_u32(m.inode);
                out.put_u32(m.index);
                out.put_u8(m.kind);
            }),
        }
    }
}

impl MasterInfo {
    fn get(r: &mut Reader<'_>) -> Result<MasterInfo> {
        Ok(MasterInfo {
            version: r.u32()?,
            memory_bytes: r.u64()?,
            sys_cpu: r.u64()?,
            user_cpu: r.u64()?,
            total_space: r.u64()?,
            avail_space: r.u64()?,
            free_space: r.u64()?,
            trash_space: r.u64()?,
            trash_files: r.u32()?,
            sustained_space: r.u64()?,
            sustained_files: r.u32()?,
            inodes: r.u32()?,
            dirs: r.u32()?,
            files: r.u32()?,
            chunks: r.u32()?,
            all_copies: r.u32()?,
            regular_copies: r.u32()?,
            last_store_time: r.u32()?,
            last_store_ms: r.u32()?,
            last_store_status: r.u8()?,
            state: r.array()?,
            leader_ip: r.u32()?,
            state_change_time: r.u32()?,
            meta_version: r.u64()?,
            exports_checksum: r.u64()?,
            clock_us: r.u64()?,
            changelog_time: r.u32()?,
        })
    }

    fn put(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u32(self.version);
        for v in [self.memory_bytes, self.sys_cpu, self.user_cpu] {
            out.put_u64(v);
        }
        for v in [self.total_space, self.avail_space, self.free_space, self.trash_space] {
            out.put_u64(v);
        }
        out.put_u32(self.trash_files);
        out.put_u64(self.sustained_space);
        out.put_u32(self.sustained_files);
        for v in [self.inodes, self.dirs, self.files, self.chunks, self.all_copies, self.regular_copies] {
            out.put_u32(v);
        }
        out.put_u32(self.last_store_time);
        out.put_u32(self.last_store_ms);
        out.put_u8(self.last_store_status);
        out.extend_from_slice(&self.state);
        out.put_u32(self.leader_ip);
        out.put_u32(self.state_change_time);
        out.put_u64(self.meta_version);
        out.put_u64(self.exports_checksum);
        out.put_u64(self.clock_us);
        out.put_u32(self.changelog_time);
        assert_eq!(out.len() - start, INFO_LEN, "INFO layout drifted from 149 bytes");
    }
}

impl FsTestInfo {
    fn get(r: &mut Reader<'_>) -> Result<FsTestInfo> {
        let (loop_start, loop_end, files, undergoal_files, missing_files) =
            (r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?);
        let missing_trash_sustained = Some((r.u32()?, r.u32()?));
        let (chunks, undergoal_chunks, missing_chunks) = (r.u32()?, r.u32()?, r.u32()?);
        let message = bytes32(r)?;
        Ok(FsTestInfo {
            loop_start,
            loop_end,
            files,
            undergoal_files,
            missing_files,
            missing_trash_sustained,
            chunks,
            undergoal_chunks,
            missing_chunks,
            message,
        })
    }

    fn put(&self, out: &mut Vec<u8>) {
        for v in [self.loop_start, self.loop_end, self.files, self.undergoal_files, self.missing_files] {
            out.put_u32(v);
        }
        if let Some((trash, sustained)) = self.missing_trash_sustained {
            out.put_u32(trash);
            out.put_u32(sustained);
        }
        for v in [self.chunks, self.undergoal_chunks, self.missing_chunks] {
            out.put_u32(v);
        }
        put_bytes32(out, &self.message);
    }
}

impl CsEntry {
    fn get(r: &mut Reader<'_>) -> Result<CsEntry> {
        let head = r.u32()?;
        Ok(CsEntry {
            flags: (head >> 24) as u8,
            version: head & 0xFF_FFFF,
            ip: r.u32()?,
            port: r.u16()?,
            csid: r.u16()?,
            used: r.u64()?,
            total: r.u64()?,
            chunks: r.u32()?,
            td_used: r.u64()?,
            td_total: r.u64()?,
            td_chunks: r.u32()?,
            errors: r.u32()?,
            load: r.u32()?,
            grace_time: r.u32()?,
            labels: r.u32()?,
            mfr_status: r.u8()?,
        })
    }

    /// The flags share a word with the version: a version over 24 bits
    /// cannot be sent and is cut.
    fn put(&self, out: &mut Vec<u8>) {
        out.put_u32(((self.flags as u32) << 24) | (self.version & 0xFF_FFFF));
        out.put_u32(self.ip);
        out.put_u16(self.port);
        out.put_u16(self.csid);
        out.put_u64(self.used);
        out.put_u64(self.total);
        out.put_u32(self.chunks);
        out.put_u64(self.td_used);
        out.put_u64(self.td_total);
        out.put_u32(self.td_chunks);
        for v in [self.errors, self.load, self.grace_time, self.labels] {
            out.put_u32(v);
        }
        out.put_u8(self.mfr_status);
    }
}

impl SessionList {
    /// Decodes layout `vmode` (2, 3 or 4; the older ones are not read).
    pub fn decode(payload: &[u8], vmode: u8) -> Result<SessionList> {
        let kind = SESSION_LIST_REPLY;
        if !(2..=4).contains(&vmode) {
            return Err(Error::BadValue { kind, what: "session list layout not supported" });
        }
        let mut r = Reader::new(kind, payload);
        let stats = r.u16()?;
        let mut sessions = Vec::new();
        while r.remaining() > 0 {
            sessions.push(SessionEntry::get(&mut r, vmode, stats)?);
        }
        Ok(SessionList { vmode, stats, sessions })
    }

    /// Every session carries `stats` counters twice; shorter lists are padded
    /// with zeros and longer ones cut, so the reply stays parseable.
    fn put(&self, out: &mut Vec<u8>) {
        assert!((2..=4).contains(&self.vmode), "session list layout {} cannot be encoded", self.vmode);
        out.put_u16(self.stats);
        for s in &self.sessions {
            s.put(out, self.vmode, self.stats);
        }
    }
}

fn bytes32(r: &mut Reader<'_>) -> Result<Vec<u8>> {
    let n = r.u32()? as usize;
    Ok(r.bytes(n)?.to_vec())
}

fn put_bytes32(out: &mut Vec<u8>, b: &[u8]) {
    assert!(b.len() <= u32::MAX as usize, "field of {} bytes cannot be sent", b.len());
    out.put_u32(b.len() as u32);
    out.extend_from_slice(b);
}

fn counters(r: &mut Reader<'_>, n: u16) -> Result<Vec<u32>> {
    (0..n).map(|_| r.u32()).collect()
}

fn put_counters(out: &mut Vec<u8>, c: &[u32], n: u16) {
    for i in 0..n as usize {
        out.put_u32(c.get(i).copied().unwrap_or(0));
    }
}

impl SessionEntry {
    fn get(r: &mut Reader<'_>, vmode: u8, stats: u16) -> Result<SessionEntry> {
        let id = r.u32()?;
        let ip = r.u32()?;
        let version = r.u32()?;
        let open_files = r.u32()?;
        let sockets = r.u8()?;
        let expire = r.u32()?;
        let info = bytes32(r)?;
        let path = bytes32(r)?;
        let flags = r.u8()?;
        let umask = if vmode >= 3 { r.u16()? } else { 0 };
        let (root_uid, root_gid, mapall_uid, mapall_gid) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
        let (min_goal, max_goal, min_trash, max_trash) = (r.u8()?, r.u8()?, r.u32()?, r.u32()?);
        let disables = if vmode >= 4 { r.u32()? } else { 0 };
        let stats_current = counters(r, stats)?;
        let stats_last_hour = counters(r, stats)?;
        Ok(SessionEntry {
            id,
            ip,
            version,
            open_files,
            sockets,
            expire,
            info,
            path,
            flags,
            umask,
            root_uid,
            root_gid,
            mapall_uid,
            mapall_gid,
            min_goal,
            max_goal,
            min_trash,
            max_trash,
            disables,
            stats_current,
            stats_last_hour,
        })
    }

    fn put(&self, out: &mut Vec<u8>, vmode: u8, stats: u16) {
        for v in [self.id, self.ip, self.version, self.open_files] {
            out.put_u32(v);
        }
        out.put_u8(self.sockets);
        out.put_u32(self.expire);
        put_bytes32(out, &self.info);
        put_bytes32(out, &self.path);
        out.put_u8(self.flags);
        if vmode >= 3 {
            out.put_u16(self.umask);
        }
        for v in [self.root_uid, self.root_gid, self.mapall_uid, self.mapall_gid] {
            out.put_u32(v);
        }
        out.put_u8(self.min_goal);
        out.put_u8(self.max_goal);
        out.put_u32(self.min_trash);
        out.put_u32(self.max_trash);
        if vmode >= 4 {
            out.put_u32(self.disables);
        }
        put_counters(out, &self.stats_current, stats);
        put_counters(out, &self.stats_last_hour, stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::framed;

    #[test]
    fn info_is_149_bytes_and_starts_with_the_version() {
        let info = MasterInfo { version: crate::VERSION, meta_version: 7, ..MasterInfo::default() };
        let packet = framed(&AdminReply::Info(info));
        assert_eq!(packet.len(), 8 + INFO_LEN);
        assert_eq!(&packet[8..12], &[0, 3, 0, 234]);
        assert_eq!(AdminReply::decode(INFO_REPLY, &packet[8..]), Ok(AdminReply::Info(info)));
    }

    #[test]
    fn cserv_entry_puts_flags_in_the_version_word() {
        let e = CsEntry { flags: CS_FLAG_DISCONNECTED, version: 0x03_00EA, csid: 3, ..CsEntry::default() };
        let packet = framed(&AdminReply::CservList(vec![e]));
        assert_eq!(packet.len(), 8 + CSERV_ENTRY_LEN);
        assert_eq!(&packet[8..12], &[1, 3, 0, 0xEA]);
    }

    #[test]
    fn requests_refuse_extra_bytes() {
        assert_eq!(AdminRequest::decode(INFO, &[1]), Err(Error::BadLength { kind: INFO, len: 1 }));
        assert_eq!(AdminRequest::decode(SESSION_LIST, &[4]), Ok(AdminRequest::SessionList { vmode: Some(4) }));
        assert_eq!(AdminRequest::decode(SESSION_LIST, &[4, 0]), Err(Error::BadLength { kind: SESSION_LIST, len: 2 }));
    }

    #[test]
    fn session_layouts_differ_by_umask_and_disables() {
        let s = SessionEntry { id: 1, info: b"/mnt".to_vec(), path: b"/".to_vec(), ..SessionEntry::default() };
        let len = |vmode| {
            let list = SessionList { vmode, stats: SESSION_STATS, sessions: vec![s.clone()] };
            framed(&AdminReply::SessionList(list)).len() - 8
        };
        // 2 + fixed part + info + path + 2 × 16 counters.
        assert_eq!(len(2), 2 + 56 + 4 + 1 + 128);
        assert_eq!(len(3), len(2) + 2);
        assert_eq!(len(4), len(3) + 4);
    }

    #[test]
    fn session_list_refuses_a_truncated_entry() {
        let list = SessionList { vmode: 4, stats: 2, sessions: vec![SessionEntry::default()] };
        let packet = framed(&AdminReply::SessionList(list));
        let cut = &packet[8..packet.len() - 1];
        assert!(matches!(AdminReply::decode(SESSION_LIST_REPLY, cut), Err(Error::Truncated { .. })));
    }
}
