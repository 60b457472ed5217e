//! `LOOKUP`: the entry, and for clients from 3.0.40 on what they need to
//! open and read a small file without asking again.
//!
//! Such a client gets `lflags` with the answer: the caller's access modes
//! on the node, and whether the session is read-only. With those it opens
//! the file on its own and tells the master afterwards (`OPEN` with
//! `OPEN_AFTER_CREATE`). For a file of one chunk it also gets that chunk's
//! id, version and copies (`LOOKUP_CHUNK_ZERO_DATA`), so the first read
//! needs no `READ_CHUNK` either. That is two round trips fewer per small
//! file read, and the open's changelog record no longer delays the read.

use elkfs_proto::client::{Cred, CsLoc, FirstChunk, MaToCl};

use super::chunks::locations;
use super::ops::ctx;
use super::{fail, Conn, SessionView};
use crate::meta::Inode;

/// The first client version that understands `lflags` (3.0.40).
const LFLAGS_SINCE: u32 = (3 << 16) | (40 * 2);
const CHUNK_ZERO_DATA: u16 = 0x0100;
const RO_FILESYSTEM: u16 = 0x0200;
/// Access-mode bits that allow reading or writing (modes with r or w).
const IO_MODES: u16 = 0x00FC;

pub(super) fn handle(
    conn: &Conn,
    session: SessionView,
    kind: u32,
    msgid: u32,
    parent: Inode,
    name: &[u8],
    cred: &Cred,
) {
    let c = ctx(cred);
    let rich = session.client_version >= LFLAGS_SINCE;
    let (r, after) = conn.shared.read(|m| {
        let (inode, attr) = m.lookup(&c, parent, name)?;
        let extra = if rich { Some((m.access_modes(&c, inode)?, m.sole_chunk(inode))) } else { None };
        Ok((inode, attr, extra))
    });
    let msg = match r {
        Ok((inode, attr, None)) => {
            MaToCl::Lookup { msgid, inode, attr: attr.to_wire(), lflags: None, first_chunk: None }
        }
        Ok((inode, attr, Some((modes, sole)))) => {
            let mut lflags = modes;
            if session.grant.readonly() {
                lflags |= RO_FILESYSTEM;
            }
            let first_chunk = match sole {
                Some(chunk) if modes & IO_MODES != 0 && !session.grant.disabled("read") => first_chunk(conn, chunk),
                _ => None,
            };
            if first_chunk.is_some() {
                lflags |= CHUNK_ZERO_DATA;
            }
            MaToCl::Lookup { msgid, inode, attr: attr.to_wire(), lflags: Some(lflags), first_chunk }
        }
        Err(s) => fail(kind, msgid, s),
    };
    conn.send(after, msg);
}

/// Chunk 0 as the reader will need it: a hole needs nothing, a chunk
/// needs at least one copy that can be read (else the client asks with
/// `READ_CHUNK` and gets the master's full answer).
fn first_chunk(conn: &Conn, (chunk, version): (u64, u32)) -> Option<FirstChunk> {
    if chunk == 0 {
        return Some(FirstChunk { chunk: 0, version: 0, servers: Vec::new() });
    }
    let servers: Vec<CsLoc> = locations(&conn.shared, chunk, version);
    (!servers.is_empty()).then_some(FirstChunk { chunk, version, servers })
}
