//! Pieces shared by requests and replies: credentials, names, chunk
//! locations, storage classes, directory listings.

use crate::error::{Error, Result};
use crate::wire::{Put, Reader};
use crate::Addr;

/// Size of an attribute record for clients from 3.0.93 on.
pub const ATTR_LEN: usize = 36;
/// An attribute record as it travels; built by the master, opaque here.
pub type AttrBytes = [u8; ATTR_LEN];

/// Node types as attribute records and `MKNOD` carry them (`TYPE_*`).
pub const TYPE_FILE: u8 = 1;
pub const TYPE_DIRECTORY: u8 = 2;
pub const TYPE_SYMLINK: u8 = 3;
pub const TYPE_FIFO: u8 = 4;
pub const TYPE_BLOCKDEV: u8 = 5;
pub const TYPE_CHARDEV: u8 = 6;
pub const TYPE_SOCKET: u8 = 7;

/// `MATTR_*` flag: the client must not cache these attributes.
pub const MATTR_NOACACHE: u8 = 0x01;
/// `MATTR_*` flag: the client must not cache the name → inode entry.
pub const MATTR_NOECACHE: u8 = 0x02;

/// An attribute record read into fields, for clients (the master builds
/// the bytes itself). The 8-byte size field means different things per
/// type, so it is split here once rather than by every caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attr {
    pub flags: u8,
    /// `TYPE_*`; trash and sustained nodes already arrive as files.
    pub node_type: u8,
    /// Permission bits, `mode & 07777`.
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: u32,
    pub mtime: u32,
    pub ctime: u32,
    pub nlink: u32,
    /// File length, symlink target length, or the directory's encoded size
    /// (shown by `ls`, meaningless as a length); 0 for the other types.
    pub length: u64,
    /// `major:16 minor:16` of a block or character device, 0 otherwise.
    pub rdev: u32,
    pub winattr: u8,
}

impl Attr {
    /// Fields of a 36-byte record. Every byte pattern decodes: an unknown
    /// type number is kept as it is and left to the caller to refuse.
    pub fn decode(bytes: &AttrBytes) -> Attr {
        let u32_at = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let type_mode = u16::from_be_bytes([bytes[1], bytes[2]]);
        let node_type = (type_mode >> 12) as u8;
        let (hi, lo) = (u32_at(27), u32_at(31));
        let (length, rdev) = match node_type {
            TYPE_BLOCKDEV | TYPE_CHARDEV => (0, hi),
            TYPE_FIFO | TYPE_SOCKET => (0, 0),
            _ => ((u64::from(hi) << 32) | u64::from(lo), 0),
        };
        Attr {
            flags: bytes[0],
            node_type,
            mode: type_mode & 0o7777,
            uid: u32_at(3),
            gid: u32_at(7),
            atime: u32_at(11),
            mtime: u32_at(15),
            ctime: u32_at(19),
            nlink: u32_at(23),
            length,
            rdev,
            winattr: bytes[35],
        }
    }
}

/// Who asks: `uid:32 gcnt:32 gcnt*[gid:32]`.
///
/// The master also takes the pre-2.0 form `uid:32 gid:32` and tells the two
/// apart only by the packet's length: when exactly one word sits between
/// the uid and the fixed fields that follow, it is a single gid. A list with
/// no gids therefore cannot be sent (it would read as gid 0); clients always
/// send at least their primary group. An empty list still encodes (as
/// `uid 0`) so that anything decoded re-encodes, but most decoders read that
/// back as the single gid 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cred {
    pub uid: u32,
    pub gids: Vec<u32>,
}

impl Cred {
    /// Reads a credential followed by exactly `tail` more bytes.
    pub(crate) fn get(r: &mut Reader<'_>, kind: u32, tail: usize) -> Result<Cred> {
        let uid = r.u32()?;
        if r.remaining() == 4 + tail {
            return Ok(Cred { uid, gids: vec![r.u32()?] });
        }
        Cred::counted(r, kind, tail, uid)
    }

    /// Reads `uid gcnt gids` with no single-gid fallback, for messages
    /// whose old form differs in more than the credential.
    pub(crate) fn get_counted(r: &mut Reader<'_>, kind: u32, tail: usize) -> Result<Cred> {
        let uid = r.u32()?;
        Cred::counted(r, kind, tail, uid)
    }

    fn counted(r: &mut Reader<'_>, kind: u32, tail: usize, uid: u32) -> Result<Cred> {
        let count = r.u32()? as usize;
        let need = count.checked_mul(4).and_then(|n| n.checked_add(tail));
        if need != Some(r.remaining()) {
            return Err(Error::BadLength { kind, len: r.remaining() });
        }
        let mut gids = Vec::with_capacity(count);
        for _ in 0..count {
            gids.push(r.u32()?);
        }
        Ok(Cred { uid, gids })
    }

    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        out.put_u32(self.uid);
        out.put_u32(self.gids.len() as u32);
        self.gids.iter().for_each(|g| out.put_u32(*g));
    }
}

/// `NAME` = `len:8` and that many bytes, no NUL.
pub(crate) fn get_name(r: &mut Reader<'_>) -> Result<Vec<u8>> {
    let len = r.u8()? as usize;
    Ok(r.bytes(len)?.to_vec())
}

pub(crate) fn put_name(out: &mut Vec<u8>, name: &[u8]) {
    assert!(name.len() <= 255, "a name of {} bytes does not fit its 8-bit length", name.len());
    out.put_u8(name.len() as u8);
    out.extend_from_slice(name);
}

/// `len:32` and bytes ending in a NUL that the length counts; returned
/// without the NUL.
pub(crate) fn get_cstring(r: &mut Reader<'_>, kind: u32) -> Result<Vec<u8>> {
    let len = r.u32()? as usize;
    match r.bytes(len)?.split_last() {
        Some((0, text)) => Ok(text.to_vec()),
        _ => Err(Error::BadValue { kind, what: "string does not end in NUL" }),
    }
}

pub(crate) fn put_cstring(out: &mut Vec<u8>, text: &[u8]) {
    out.put_u32(text.len() as u32 + 1);
    out.extend_from_slice(text);
    out.put_u8(0);
}

pub(crate) fn get_attr(r: &mut Reader<'_>) -> Result<AttrBytes> {
    r.array()
}

/// One chunkserver holding a copy: `ip:32 port:16 version:32 labelmask:32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsLoc {
    pub addr: Addr,
    /// The chunkserver's software version; the client picks the data
    /// protocol variant by it.
    pub version: u32,
    pub labelmask: u32,
}

/// Where a chunk lives (`READ_CHUNK`/`WRITE_CHUNK` replies): `protocolid:8
/// (=2) length:64 chunkid:64 version:32 N*[CsLoc]`. Chunk 0 with no
/// servers is a hole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkLoc {
    /// Length of the whole file.
    pub length: u64,
    pub chunk: u64,
    pub version: u32,
    pub servers: Vec<CsLoc>,
}

impl ChunkLoc {
    pub(crate) fn get(r: &mut Reader<'_>, kind: u32) -> Result<ChunkLoc> {
        protocol(r, kind)?;
        let (length, chunk, version) = (r.u64()?, r.u64()?, r.u32()?);
        Ok(ChunkLoc { length, chunk, version, servers: servers(r, kind)? })
    }

    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        out.put_u8(super::CHUNK_LOC_PROTOCOL);
        out.put_u64(self.length);
        out.put_u64(self.chunk);
        out.put_u32(self.version);
        put_servers(out, &self.servers);
    }
}

/// Chunk 0 of a small file, sent with a `LOOKUP` reply (`lflags` 0x0100) so
/// the first read needs no `READ_CHUNK`: `protocolid:8 (=2) chunkid:64
/// version:32 N*[CsLoc]`, no file length (the attributes hold it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstChunk {
    pub chunk: u64,
    pub version: u32,
    pub servers: Vec<CsLoc>,
}

impl FirstChunk {
    pub(crate) fn get(r: &mut Reader<'_>, kind: u32) -> Result<FirstChunk> {
        protocol(r, kind)?;
        let (chunk, version) = (r.u64()?, r.u32()?);
        Ok(FirstChunk { chunk, version, servers: servers(r, kind)? })
    }

    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        out.put_u8(super::CHUNK_LOC_PROTOCOL);
        out.put_u64(self.chunk);
        out.put_u32(self.version);
        put_servers(out, &self.servers);
    }
}

fn protocol(r: &mut Reader<'_>, kind: u32) -> Result<()> {
    match r.u8()? {
        super::CHUNK_LOC_PROTOCOL => Ok(()),
        _ => Err(Error::BadValue { kind, what: "chunk location protocol is not 2" }),
    }
}

/// The rest of the payload as `CsLoc` records.
fn servers(r: &mut Reader<'_>, kind: u32) -> Result<Vec<CsLoc>> {
    if !r.remaining().is_multiple_of(14) {
        return Err(Error::BadLength { kind, len: r.remaining() });
    }
    let mut servers = Vec::with_capacity(r.remaining() / 14);
    while r.remaining() > 0 {
        let addr = Addr { ip: r.u32()?, port: r.u16()? };
        servers.push(CsLoc { addr, version: r.u32()?, labelmask: r.u32()? });
    }
    Ok(servers)
}

fn put_servers(out: &mut Vec<u8>, servers: &[CsLoc]) {
    for s in servers {
        out.put_u32(s.addr.ip);
        out.put_u16(s.addr.port);
        out.put_u32(s.version);
        out.put_u32(s.labelmask);
    }
}

/// A goal or storage class as `GETSCLASS` reports it: goals 1–9 are the
/// classes that behave like the old goals and travel as their number; any
/// other class travels as `0xFF NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sclass {
    Goal(u8),
    Named(Vec<u8>),
}

impl Sclass {
    pub(crate) fn get(r: &mut Reader<'_>, kind: u32) -> Result<Sclass> {
        match r.u8()? {
            super::SCLASS_NAMED => Ok(Sclass::Named(get_name(r)?)),
            0 => Err(Error::BadValue { kind, what: "storage class 0" }),
            goal => Ok(Sclass::Goal(goal)),
        }
    }

    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        match self {
            Sclass::Goal(goal) => {
                assert!(*goal != 0 && *goal != super::SCLASS_NAMED, "goal {goal} is not a goal number");
                out.put_u8(*goal);
            }
            Sclass::Named(name) => {
                out.put_u8(super::SCLASS_NAMED);
                put_name(out, name);
            }
        }
    }
}

/// Usage of a directory tree (`GETDIRSTATS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirStats {
    pub inodes: u32,
    pub dirs: u32,
    pub files: u32,
    pub chunks: u32,
    pub length: u64,
    pub size: u64,
    pub realsize: u64,
}

/// The entries of a `READDIR` reply. Which form arrives is not in the reply
/// but in the request's [`READDIR_ATTRS`](super::READDIR_ATTRS) flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirEntries {
    /// `NAME inode:32 ATTR` per entry.
    Attrs(Vec<(Vec<u8>, u32, AttrBytes)>),
    /// `NAME inode:32 type:8` per entry (`TYPE_*`, 1 file .. 7 socket).
    Types(Vec<(Vec<u8>, u32, u8)>),
}

impl DirEntries {
    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        match self {
            DirEntries::Attrs(list) => {
                for (name, inode, attr) in list {
                    put_name(out, name);
                    out.put_u32(*inode);
                    out.extend_from_slice(attr);
                }
            }
            DirEntries::Types(list) => {
                for (name, inode, ty) in list {
                    put_name(out, name);
                    out.put_u32(*inode);
                    out.put_u8(*ty);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_fields_by_type() {
        let mut rec: AttrBytes = [0; ATTR_LEN];
        rec[0] = MATTR_NOACACHE;
        rec[1..3].copy_from_slice(&((u16::from(TYPE_FILE) << 12) | 0o4755).to_be_bytes());
        rec[3..7].copy_from_slice(&1000u32.to_be_bytes());
        rec[7..11].copy_from_slice(&100u32.to_be_bytes());
        rec[11..15].copy_from_slice(&1u32.to_be_bytes());
        rec[15..19].copy_from_slice(&2u32.to_be_bytes());
        rec[19..23].copy_from_slice(&3u32.to_be_bytes());
        rec[23..27].copy_from_slice(&4u32.to_be_bytes());
        rec[27..35].copy_from_slice(&0x1_0000_0001u64.to_be_bytes());
        rec[35] = 9;
        let a = Attr::decode(&rec);
        assert_eq!(
            a,
            Attr {
                flags: MATTR_NOACACHE,
                node_type: TYPE_FILE,
                mode: 0o4755,
                uid: 1000,
                gid: 100,
                atime: 1,
                mtime: 2,
                ctime: 3,
                nlink: 4,
                length: 0x1_0000_0001,
                rdev: 0,
                winattr: 9,
            }
        );
        // A character device keeps `major:16 minor:16` in the high word.
        rec[1..3].copy_from_slice(&((u16::from(TYPE_CHARDEV) << 12) | 0o600).to_be_bytes());
        rec[27..35].copy_from_slice(&[0, 5, 0, 1, 0, 0, 0, 0]);
        let dev = Attr::decode(&rec);
        assert_eq!((dev.node_type, dev.mode, dev.rdev, dev.length), (TYPE_CHARDEV, 0o600, 0x0005_0001, 0));
    }

    #[test]
    fn cred_forms_told_apart_by_length() {
        // uid 7, one word, then a 2-byte tail: the old single-gid form.
        let old = [0, 0, 0, 7, 0, 0, 0, 9, 0xAA, 0xBB];
        let mut r = Reader::new(1, &old);
        assert_eq!(Cred::get(&mut r, 1, 2).unwrap(), Cred { uid: 7, gids: vec![9] });
        let new = [0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 9, 0, 0, 0, 10, 0xAA, 0xBB];
        let mut r = Reader::new(1, &new);
        assert_eq!(Cred::get(&mut r, 1, 2).unwrap(), Cred { uid: 7, gids: vec![9, 10] });
        // A count that does not match the length is refused, not read past.
        let bad = [0, 0, 0, 7, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 9, 0xAA, 0xBB];
        let mut r = Reader::new(1, &bad);
        assert_eq!(Cred::get(&mut r, 1, 2), Err(Error::BadLength { kind: 1, len: 6 }));
    }

    #[test]
    fn cstring_needs_its_nul() {
        let mut r = Reader::new(1, &[0, 0, 0, 2, b'a', 0]);
        assert_eq!(get_cstring(&mut r, 1).unwrap(), b"a");
        let mut r = Reader::new(1, &[0, 0, 0, 2, b'a', b'b']);
        assert!(matches!(get_cstring(&mut r, 1), Err(Error::BadValue { .. })));
        let mut r = Reader::new(1, &[0, 0, 0, 0]);
        assert!(matches!(get_cstring(&mut r, 1), Err(Error::BadValue { .. })));
    }
}
