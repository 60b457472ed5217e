//! The binary image of a [`Meta`], written at a metaversion so that image +
//! changelog records after it rebuild the state.
//!
//! Format version 1; all integers big-endian; `name` = `len:8 bytes`,
//! `blob` = `len:32 bytes`:
//!
//! | field | size |
//! |---|---|
//! | magic `ELKMETA\0` | 8 |
//! | format version (1) | 4 |
//! | metaid, metaversion | 8 + 8 |
//! | next inode, next chunk id, next session id | 4 + 8 + 4 |
//! | node count N, then N nodes in inode order | 4 + … |
//! | free inode count, then `inode:32 freed_at:32` each, oldest first | 4 + 8·n |
//! | trash count, then `inode:32 path:blob` each | 4 + … |
//! | chunk count, then `id:64 version:32 goal:8 locked_until:32 refs:32` each | 8 + 21·n |
//! | session count, then `id:32 root:32 created:32 info:blob root_path:blob` each | 4 + … |
//! | open count, then `session:32 inode:32` each, in that order | 4 + 8·n |
//! | sustained count, then `inode:32` each | 4 + 4·n |
//! | CRC-32 (zlib) of every byte before it | 4 |
//!
//! A node: `inode:32 type:8 goal:8 mode:16 uid:32 gid:32 atime:32 mtime:32
//! ctime:32 nlink:32 trashtime:32`, then by type: file `length:64 n:32
//! n×chunk:64`; directory `n:32 n×(name inode:32)` in name order; symlink
//! `target:blob`; block/char device `rdev:32`; fifo/socket nothing.
//!
//! Every map is written in key order, so equal states give equal bytes —
//! which is how tests compare a replayed state with the live one. Reading
//! checks the CRC before it parses anything, then the structure (every
//! entry names a node, a directory has one parent, chunk reference counts
//! match the files), and refuses with [`Error::Snapshot`] otherwise.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};

use crate::error::{Error, Result};

use super::compact::{ChunkList, Name};
use super::node::{Body, Dir, Inode, Node, NodeType, ROOT};
use super::{ChunkInfo, Meta, Session, TrashEntry};

const MAGIC: &[u8; 8] = b"ELKMETA\0";
const FORMAT: u32 = 1;

struct CrcWriter<'a> {
    inner: io::BufWriter<&'a mut dyn Write>,
    crc: crc32fast::Hasher,
}

impl CrcWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.inner.write_all(bytes)
    }
}

impl Meta {
    pub fn write_snapshot(&self, w: &mut dyn Write) -> io::Result<()> {
        let mut out = CrcWriter { inner: io::BufWriter::with_capacity(1 << 20, w), crc: crc32fast::Hasher::new() };
        let mut b = Vec::with_capacity(256);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&FORMAT.to_be_bytes());
        b.extend_from_slice(&self.metaid.to_be_bytes());
        b.extend_from_slice(&self.version.to_be_bytes());
        b.extend_from_slice(&self.next_inode.to_be_bytes());
        b.extend_from_slice(&self.next_chunk.to_be_bytes());
        b.extend_from_slice(&self.next_session.to_be_bytes());
        b.extend_from_slice(&(self.nodes.len() as u32).to_be_bytes());
        out.put(&b)?;
        for (inode, node) in self.nodes.iter() {
            b.clear();
            encode_node(&mut b, inode, node);
            out.put(&b)?;
        }
        b.clear();
        b.extend_from_slice(&(self.nodes.free_list().count() as u32).to_be_bytes());
        for (inode, freed) in self.nodes.free_list() {
            b.extend_from_slice(&inode.to_be_bytes());
            b.extend_from_slice(&freed.to_be_bytes());
        }
        b.extend_from_slice(&(self.trash.len() as u32).to_be_bytes());
        for (inode, t) in &self.trash {
            b.extend_from_slice(&inode.to_be_bytes());
            blob(&mut b, &t.path);
        }
        b.extend_from_slice(&(self.chunks.len() as u64).to_be_bytes());
        out.put(&b)?;
        for (id, c) in &self.chunks {
            b.clear();
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&c.version.to_be_bytes());
            b.push(c.goal);
            b.extend_from_slice(&c.locked_until.to_be_bytes());
            b.extend_from_slice(&c.refs.to_be_bytes());
            out.put(&b)?;
        }
        b.clear();
        b.extend_from_slice(&(self.sessions.len() as u32).to_be_bytes());
        for (id, s) in &self.sessions {
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&s.root.to_be_bytes());
            b.extend_from_slice(&s.created.to_be_bytes());
            blob(&mut b, &s.info);
            blob(&mut b, &s.root_path);
        }
        b.extend_from_slice(&(self.open.pairs().count() as u32).to_be_bytes());
        for (session, inode) in self.open.pairs() {
            b.extend_from_slice(&session.to_be_bytes());
            b.extend_from_slice(&inode.to_be_bytes());
        }
        b.extend_from_slice(&(self.sustained.len() as u32).to_be_bytes());
        for inode in &self.sustained {
            b.extend_from_slice(&inode.to_be_bytes());
        }
        out.put(&b)?;
        let crc = out.crc.clone().finalize();
        out.inner.write_all(&crc.to_be_bytes())?;
        out.inner.flush()
    }

    pub fn read_snapshot(r: &mut dyn Read) -> Result<Meta> {
        let mut all = Vec::new();
        r.read_to_end(&mut all).map_err(|e| Error::io("reading metadata snapshot", e))?;
        if all.len() < MAGIC.len() + 4 || &all[..MAGIC.len()] != MAGIC {
            return Err(bad("not an elkfs metadata snapshot (bad magic)"));
        }
        let (body, crc) = all.split_at(all.len() - 4);
        let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32fast::hash(body) != crc {
            return Err(bad("CRC mismatch (corrupt or truncated)"));
        }
        let mut c = Cursor { b: body, at: MAGIC.len() };
        let format = c.u32()?;
        if format != FORMAT {
            return Err(bad(&format!("format version {format}, this build reads {FORMAT}")));
        }
        let mut meta = Meta::empty(c.u64()?);
        meta.version = c.u64()?;
        meta.next_inode = c.u32()?;
        meta.next_chunk = c.u64()?;
        meta.next_session = c.u32()?;
        let n = c.u32()?;
        let mut entries: Vec<(Inode, DirList)> = Vec::new();
        for _ in 0..n {
            let (inode, node, dir) = decode_node(&mut c)?;
            if inode == 0 || inode >= meta.next_inode {
                return Err(bad(&format!("inode {inode} beyond the next inode {}", meta.next_inode)));
            }
            if meta.nodes.insert(inode, node).is_some() {
                return Err(bad(&format!("inode {inode} twice")));
            }
            if let Some(d) = dir {
                entries.push((inode, d));
            }
        }
        for _ in 0..c.u32()? {
            let inode = c.u32()?;
            let freed = c.u32()?;
            if inode == 0 || inode >= meta.next_inode || meta.nodes.contains_key(&inode) {
                return Err(bad(&format!("free inode {inode} in use or beyond the next inode")));
            }
            meta.nodes.push_free(inode, freed);
        }
        for _ in 0..c.u32()? {
            let inode = c.u32()?;
            let path = c.blob()?.into_boxed_slice();
            meta.trash.insert(inode, TrashEntry { path });
        }
        for _ in 0..c.u64()? {
            let id = c.u64()?;
            if id == 0 || id >= meta.next_chunk {
                return Err(bad(&format!("chunk {id:016X} beyond the next chunk id")));
            }
            let info = ChunkInfo { version: c.u32()?, goal: c.u8()?, locked_until: c.u32()?, refs: c.u32()? };
            meta.chunks.insert(id, info);
        }
        for _ in 0..c.u32()? {
            let id = c.u32()?;
            let s = Session { root: c.u32()?, created: c.u32()?, info: c.blob()?, root_path: c.blob()? };
            meta.sessions.insert(id, s);
        }
        for _ in 0..c.u32()? {
            let (session, inode) = (c.u32()?, c.u32()?);
            if !meta.sessions.contains_key(&session) || !meta.nodes.contains_key(&inode) {
                return Err(bad(&format!("open file {inode} of session {session}: one of them is missing")));
            }
            meta.open.insert(session, inode);
        }
        for _ in 0..c.u32()? {
            let inode = c.u32()?;
            if !meta.open.is_open(inode) || meta.trash.contains_key(&inode) {
                return Err(bad(&format!("sustained inode {inode} is not open or is in the trash")));
            }
            meta.sustained.insert(inode);
        }
        if c.at != body.len() {
            return Err(bad("bytes after the last section"));
        }
        link_dirs(&mut meta, entries)?;
        check_refs(&meta)?;
        Ok(meta)
    }
}

fn bad(why: &str) -> Error {
    Error::Snapshot { why: why.to_string() }
}

fn blob(b: &mut Vec<u8>, bytes: &[u8]) {
    b.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    b.extend_from_slice(bytes);
}

fn encode_node(b: &mut Vec<u8>, inode: Inode, n: &Node) {
    b.extend_from_slice(&inode.to_be_bytes());
    b.push(n.kind.wire());
    b.push(n.goal);
    b.extend_from_slice(&n.mode.to_be_bytes());
    for v in [n.uid, n.gid, n.atime, n.mtime, n.ctime, n.nlink, n.trashtime] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    match &n.body {
        Body::File { length, chunks } => {
            b.extend_from_slice(&length.to_be_bytes());
            b.extend_from_slice(&(chunks.as_slice().len() as u32).to_be_bytes());
            for c in chunks.as_slice() {
                b.extend_from_slice(&c.to_be_bytes());
            }
        }
        Body::Dir(d) => {
            b.extend_from_slice(&(d.entries.len() as u32).to_be_bytes());
            for (name, child) in &d.entries {
                let name = name.as_bytes();
                assert!(name.len() <= super::NAME_MAX, "names are checked at creation");
                b.push(name.len() as u8);
                b.extend_from_slice(name);
                b.extend_from_slice(&child.to_be_bytes());
            }
        }
        Body::Symlink(t) => blob(b, t),
        Body::Dev(rdev) => b.extend_from_slice(&rdev.to_be_bytes()),
        Body::Empty => {}
    }
}

type DirList = Vec<(Name, Inode)>;

fn decode_node(c: &mut Cursor) -> Result<(Inode, Node, Option<DirList>)> {
    let inode = c.u32()?;
    let kind = NodeType::from_wire(c.u8()?).ok_or_else(|| bad(&format!("inode {inode}: bad type")))?;
    let goal = c.u8()?;
    let mode = c.u16()?;
    let mut v = [0u32; 7];
    for x in &mut v {
        *x = c.u32()?;
    }
    let mut dir = None;
    let body = match kind {
        NodeType::File => {
            let length = c.u64()?;
            let n = c.u32()? as usize;
            c.need(n.saturating_mul(8))?;
            let mut chunks = Vec::with_capacity(n);
            for _ in 0..n {
                chunks.push(c.u64()?);
            }
            Body::File { length, chunks: ChunkList::from_vec(chunks) }
        }
        NodeType::Dir => {
            let n = c.u32()?;
            let mut list = Vec::new();
            for _ in 0..n {
                let len = c.u8()? as usize;
                let name = Name::from(c.take(len)?);
                list.push((name, c.u32()?));
            }
            dir = Some(list);
            Body::Dir(Box::new(Dir { parent: ROOT, name: Box::default(), entries: BTreeMap::new() }))
        }
        NodeType::Symlink => Body::Symlink(c.blob()?.into_boxed_slice()),
        NodeType::BlockDev | NodeType::CharDev => Body::Dev(c.u32()?),
        NodeType::Fifo | NodeType::Socket => Body::Empty,
    };
    let [uid, gid, atime, mtime, ctime, nlink, trashtime] = v;
    Ok((inode, Node { kind, goal, mode, uid, gid, atime, mtime, ctime, nlink, trashtime, body }, dir))
}

/// Fills directories from their entry lists and checks the tree: every
/// entry names a node, a directory hangs in exactly one place.
fn link_dirs(meta: &mut Meta, entries: Vec<(Inode, DirList)>) -> Result<()> {
    if meta.nodes.get(&ROOT).and_then(Node::dir).is_none() {
        return Err(bad("no root directory"));
    }
    let mut placed: HashMap<Inode, (Inode, Name)> = HashMap::new();
    for (_, list) in &entries {
        for (_, child) in list {
            if !meta.nodes.contains_key(child) || *child == ROOT {
                return Err(bad(&format!("entry names missing inode {child}")));
            }
        }
    }
    for (parent, list) in entries {
        for (name, child) in list {
            if meta.nodes.get(&child).is_some_and(|n| n.kind == NodeType::Dir)
                && placed.insert(child, (parent, name.clone())).is_some()
            {
                return Err(bad(&format!("directory {child} in two places")));
            }
            if let Some(d) = meta.nodes.get_mut(&parent).and_then(Node::dir_mut) {
                d.entries.insert(name, child);
            }
        }
    }
    for (child, (parent, name)) in placed {
        if let Some(d) = meta.nodes.get_mut(&child).and_then(Node::dir_mut) {
            d.parent = parent;
            d.name = name.as_bytes().into();
        }
    }
    Ok(())
}

/// Chunk reference counts must equal the file slots naming each chunk.
fn check_refs(meta: &Meta) -> Result<()> {
    let mut refs: HashMap<u64, u32> = HashMap::new();
    for n in meta.nodes.values() {
        for &c in n.chunks().iter().filter(|c| **c != 0) {
            *refs.entry(c).or_default() += 1;
        }
    }
    for (id, info) in &meta.chunks {
        if refs.remove(id) != Some(info.refs) {
            return Err(bad(&format!("chunk {id:016X}: reference count does not match the files")));
        }
    }
    match refs.keys().next() {
        Some(id) => Err(bad(&format!("chunk {id:016X} used by a file but not in the table"))),
        None => Ok(()),
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn need(&self, n: usize) -> Result<()> {
        if self.b.len() - self.at < n {
            return Err(bad("truncated"));
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        self.need(n)?;
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }

    fn blob(&mut self) -> Result<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
}
