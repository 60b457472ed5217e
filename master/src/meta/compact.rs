//! Compact containers for the two things every file has: its chunk list and
//! its name in a directory. Both keep the common case (a file of at most one
//! chunk, a name of at most 22 bytes) inside the owning struct, without a
//! heap allocation, because an allocation costs at least 32 bytes per file.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;

/// A file's chunk ids by chunk index, 0 for holes, never ending in a hole.
#[derive(Clone, PartialEq, Eq)]
pub enum ChunkList {
    /// No chunk (0) or one chunk at index 0.
    One(u64),
    /// Two slots or more. Boxed twice on purpose: a thin pointer keeps the
    /// list at 16 bytes, and every file pays for the list's size.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<u64>>),
}

impl Default for ChunkList {
    fn default() -> ChunkList {
        ChunkList::One(0)
    }
}

impl fmt::Debug for ChunkList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl ChunkList {
    pub fn as_slice(&self) -> &[u64] {
        match self {
            ChunkList::One(0) => &[],
            ChunkList::One(c) => std::slice::from_ref(c),
            ChunkList::Many(v) => v,
        }
    }

    pub fn from_vec(mut v: Vec<u64>) -> ChunkList {
        while v.last() == Some(&0) {
            v.pop();
        }
        match v.len() {
            0 => ChunkList::One(0),
            1 => ChunkList::One(v[0]),
            _ => ChunkList::Many(Box::new(v)),
        }
    }

    pub fn get(&self, index: usize) -> u64 {
        self.as_slice().get(index).copied().unwrap_or(0)
    }

    /// Puts `chunk` (0 = make a hole) at `index`, growing the list as needed.
    pub fn set(&mut self, index: usize, chunk: u64) {
        if let ChunkList::Many(v) = self {
            if index < v.len() && (chunk != 0 || index + 1 < v.len()) {
                v[index] = chunk;
                return;
            }
        }
        if index == 0 && self.as_slice().len() <= 1 {
            *self = ChunkList::One(chunk);
            return;
        }
        let mut v = self.as_slice().to_vec();
        if v.len() <= index {
            v.resize(index + 1, 0);
        }
        v[index] = chunk;
        *self = ChunkList::from_vec(v);
    }

    /// Keeps the first `len` slots.
    pub fn truncate(&mut self, len: usize) {
        if self.as_slice().len() > len {
            let mut v = self.as_slice().to_vec();
            v.truncate(len);
            *self = ChunkList::from_vec(v);
        }
    }
}

const INLINE: usize = 22;

/// A directory entry name: up to 22 bytes inline, longer ones on the heap.
/// Ordered as its bytes, so a map keyed by `Name` is looked up with `&[u8]`.
#[derive(Clone)]
pub enum Name {
    Short { len: u8, bytes: [u8; INLINE] },
    Long(Box<[u8]>),
}

impl Name {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Short { len, bytes } => &bytes[..usize::from(*len)],
            Name::Long(b) => b,
        }
    }
}

impl From<&[u8]> for Name {
    fn from(s: &[u8]) -> Name {
        if s.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..s.len()].copy_from_slice(s);
            Name::Short { len: s.len() as u8, bytes }
        } else {
            Name::Long(s.into())
        }
    }
}

impl Borrow<[u8]> for Name {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

const _: () = assert!(std::mem::size_of::<ChunkList>() == 16);
const _: () = assert!(std::mem::size_of::<Name>() == 24);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_list_shapes() {
        let mut l = ChunkList::default();
        assert_eq!(l.as_slice(), &[] as &[u64]);
        l.set(0, 5);
        assert_eq!(l, ChunkList::One(5));
        l.set(2, 7);
        assert_eq!(l.as_slice(), &[5, 0, 7]);
        l.set(1, 6);
        assert_eq!(l.as_slice(), &[5, 6, 7]);
        l.set(2, 0);
        assert_eq!(l.as_slice(), &[5, 6]);
        l.truncate(1);
        assert_eq!(l, ChunkList::One(5));
        l.set(0, 0);
        assert_eq!(l.as_slice(), &[] as &[u64]);
        l.set(3, 1);
        l.set(3, 0);
        assert_eq!(l, ChunkList::One(0), "trailing holes go");
        assert_eq!(l.get(9), 0);
    }

    #[test]
    fn names_order_as_bytes() {
        let long = [b'z'; 30];
        let names: Vec<Name> = [&b"b"[..], b"a", &long, b"", b"ab"].iter().map(|s| Name::from(*s)).collect();
        let mut sorted = names.clone();
        sorted.sort();
        let bytes: Vec<&[u8]> = sorted.iter().map(Name::as_bytes).collect();
        assert_eq!(bytes, vec![&b""[..], b"a", b"ab", b"b", &long[..]]);
        let map: std::collections::BTreeMap<Name, u32> = names.into_iter().zip(0..).collect();
        assert_eq!(map.get(&long[..]), Some(&2));
        assert_eq!(map.get(&b"ab"[..]), Some(&4));
    }
}
