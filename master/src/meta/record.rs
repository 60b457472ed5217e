//! Changelog records: the only way the namespace changes.
//!
//! A record carries everything needed to redo its change without looking at
//! a clock or a counter: the time (`ts`), allocated inode and chunk numbers,
//! new versions. Its text form is one line, `<ts>|NAME(arg,arg,…)`, in the
//! spirit of MooseFS changelogs (the names are elkfs's own). Byte strings
//! (names, paths, targets, session info) are percent-escaped: every byte
//! outside `!`..`~` and each of `%`, `,`, `(`, `)`, `|` becomes `%XX`, so any
//! byte string survives and an argument never holds a separator.

use crate::error::{Error, Result};

use super::node::{Inode, NodeType};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Unix seconds when the change happened; becomes ctime/mtime where the
    /// change touches them.
    pub ts: u32,
    pub op: Op,
}

/// How `set_goal`/`set_trashtime` treat each node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMode {
    Set,
    IncreaseOnly,
    DecreaseOnly,
}

impl SetMode {
    fn code(self) -> u8 {
        match self {
            SetMode::Set => 0,
            SetMode::IncreaseOnly => 1,
            SetMode::DecreaseOnly => 2,
        }
    }

    fn from_code(c: u8) -> Option<SetMode> {
        Some(match c {
            0 => SetMode::Set,
            1 => SetMode::IncreaseOnly,
            2 => SetMode::DecreaseOnly,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A new node of any kind but symlink; `mode`/`gid` are final (umask
    /// and sgid inheritance already applied).
    Create {
        parent: Inode,
        name: Vec<u8>,
        kind: NodeType,
        mode: u16,
        uid: u32,
        gid: u32,
        rdev: u32,
        inode: Inode,
    },
    Symlink {
        parent: Inode,
        name: Vec<u8>,
        target: Vec<u8>,
        uid: u32,
        gid: u32,
        inode: Inode,
    },
    Link {
        inode: Inode,
        parent: Inode,
        name: Vec<u8>,
    },
    /// Removes a non-directory entry; the last link goes to the trash or away.
    Unlink {
        parent: Inode,
        name: Vec<u8>,
        inode: Inode,
    },
    Rmdir {
        parent: Inode,
        name: Vec<u8>,
        inode: Inode,
    },
    /// Moves an entry; an existing destination is removed as `Unlink`/`Rmdir` would.
    Rename {
        src_parent: Inode,
        src_name: Vec<u8>,
        dst_parent: Inode,
        dst_name: Vec<u8>,
        inode: Inode,
    },
    /// Final attribute values after a setattr.
    Attr {
        inode: Inode,
        mode: u16,
        uid: u32,
        gid: u32,
        atime: u32,
        mtime: u32,
    },
    /// New file length; chunks wholly past it are dropped and the chunk
    /// holding the new end (if any, and the end is not on a chunk border)
    /// gets version + 1.
    Truncate {
        inode: Inode,
        length: u64,
    },
    /// A writer takes chunk `index` of a file: a new chunk (`version` 1,
    /// the slot was a hole) or a version bump; locked until `locked_until`.
    Write {
        inode: Inode,
        index: u32,
        chunk: u64,
        version: u32,
        locked_until: u32,
    },
    /// Undoes a `Write` that created a chunk no chunkserver holds.
    Rollback {
        inode: Inode,
        index: u32,
        chunk: u64,
    },
    WriteEnd {
        inode: Inode,
        chunk: u64,
        length: u64,
    },
    Unlock {
        chunk: u64,
    },
    /// Undoes the version bump of a `Write` no chunkserver took: the chunk
    /// goes back to `version`, unlocked, so its copies stay valid.
    Revert {
        chunk: u64,
        version: u32,
    },
    SetGoal {
        inode: Inode,
        goal: u8,
        recursive: bool,
        mode: SetMode,
        uid: u32,
    },
    SetTrashTime {
        inode: Inode,
        trashtime: u32,
        recursive: bool,
        mode: SetMode,
        uid: u32,
    },
    /// Restores a trashed file to its path; `new_dirs` are the inodes of
    /// the directories created for missing parts of the path, outermost first.
    Undel {
        inode: Inode,
        new_dirs: Vec<Inode>,
    },
    /// Changes the path a trashed file will be restored to.
    TrashPath {
        inode: Inode,
        path: Vec<u8>,
    },
    /// Removes a trashed file for good.
    Purge {
        inode: Inode,
    },
    Session {
        id: u32,
        root: Inode,
        info: Vec<u8>,
        root_path: Vec<u8>,
    },
    /// Closes a session and releases what it held open.
    CloseSession {
        id: u32,
    },
    /// A session opened a file.
    Acquire {
        session: u32,
        inode: Inode,
    },
    Release {
        session: u32,
        inode: Inode,
    },
    /// Access and modification times a client reported for a node
    /// (`CLTOMA_FUSE_AMTIME_INODES`), as the node now holds them.
    Amtime {
        inode: Inode,
        atime: u32,
        mtime: u32,
        ctime: u32,
    },
}

impl Record {
    pub fn to_text(&self) -> String {
        let mut w = Args { out: format!("{}|", self.ts) };
        match &self.op {
            Op::Create { parent, name, kind, mode, uid, gid, rdev, inode } => {
                w.name("CREATE").n(*parent).b(name).n(kind.wire()).n(*mode).n(*uid).n(*gid).n(*rdev).n(*inode)
            }
            Op::Symlink { parent, name, target, uid, gid, inode } => {
                w.name("SYMLINK").n(*parent).b(name).b(target).n(*uid).n(*gid).n(*inode)
            }
            Op::Link { inode, parent, name } => w.name("LINK").n(*inode).n(*parent).b(name),
            Op::Unlink { parent, name, inode } => w.name("UNLINK").n(*parent).b(name).n(*inode),
            Op::Rmdir { parent, name, inode } => w.name("RMDIR").n(*parent).b(name).n(*inode),
            Op::Rename { src_parent, src_name, dst_parent, dst_name, inode } => {
                w.name("RENAME").n(*src_parent).b(src_name).n(*dst_parent).b(dst_name).n(*inode)
            }
            Op::Attr { inode, mode, uid, gid, atime, mtime } => {
                w.name("ATTR").n(*inode).n(*mode).n(*uid).n(*gid).n(*atime).n(*mtime)
            }
            Op::Truncate { inode, length } => w.name("TRUNCATE").n(*inode).n(*length),
            Op::Write { inode, index, chunk, version, locked_until } => {
                w.name("WRITE").n(*inode).n(*index).n(*chunk).n(*version).n(*locked_until)
            }
            Op::Rollback { inode, index, chunk } => w.name("ROLLBACK").n(*inode).n(*index).n(*chunk),
            Op::WriteEnd { inode, chunk, length } => w.name("WRITEEND").n(*inode).n(*chunk).n(*length),
            Op::Unlock { chunk } => w.name("UNLOCK").n(*chunk),
            Op::Revert { chunk, version } => w.name("REVERT").n(*chunk).n(*version),
            Op::SetGoal { inode, goal, recursive, mode, uid } => {
                w.name("SETGOAL").n(*inode).n(*goal).n(u8::from(*recursive)).n(mode.code()).n(*uid)
            }
            Op::SetTrashTime { inode, trashtime, recursive, mode, uid } => {
                w.name("SETTRASHTIME").n(*inode).n(*trashtime).n(u8::from(*recursive)).n(mode.code()).n(*uid)
            }
            Op::Purge { inode } => w.name("PURGE").n(*inode),
            Op::Undel { inode, new_dirs } => {
                let list: Vec<String> = new_dirs.iter().map(u32::to_string).collect();
                w.name("UNDEL").n(*inode).n(list.join(":"))
            }
            Op::TrashPath { inode, path } => w.name("TRASHPATH").n(*inode).b(path),
            Op::Session { id, root, info, root_path } => w.name("SESSION").n(*id).n(*root).b(info).b(root_path),
            Op::CloseSession { id } => w.name("CLOSESESSION").n(*id),
            Op::Acquire { session, inode } => w.name("ACQUIRE").n(*session).n(*inode),
            Op::Release { session, inode } => w.name("RELEASE").n(*session).n(*inode),
            Op::Amtime { inode, atime, mtime, ctime } => w.name("AMTIME").n(*inode).n(*atime).n(*mtime).n(*ctime),
        };
        w.out.push(')');
        w.out
    }

    pub fn parse(line: &str) -> Result<Record> {
        let bad = |why: &str| Error::Record { line: line.to_string(), why: why.to_string() };
        let (ts, rest) = line.split_once('|').ok_or_else(|| bad("no '|'"))?;
        let ts = ts.parse::<u32>().map_err(|_| bad("bad timestamp"))?;
        let (name, rest) = rest.split_once('(').ok_or_else(|| bad("no '('"))?;
        let body = rest.strip_suffix(')').ok_or_else(|| bad("no closing ')'"))?;
        let mut a = Parser { args: body.split(','), line };
        let op = match name {
            "CREATE" => {
                let parent = a.n()?;
                let name = a.b()?;
                let kind = NodeType::from_wire(a.n()?).ok_or_else(|| bad("bad node type"))?;
                Op::Create { parent, name, kind, mode: a.n()?, uid: a.n()?, gid: a.n()?, rdev: a.n()?, inode: a.n()? }
            }
            "SYMLINK" => {
                Op::Symlink { parent: a.n()?, name: a.b()?, target: a.b()?, uid: a.n()?, gid: a.n()?, inode: a.n()? }
            }
            "LINK" => Op::Link { inode: a.n()?, parent: a.n()?, name: a.b()? },
            "UNLINK" => Op::Unlink { parent: a.n()?, name: a.b()?, inode: a.n()? },
            "RMDIR" => Op::Rmdir { parent: a.n()?, name: a.b()?, inode: a.n()? },
            "RENAME" => {
                Op::Rename { src_parent: a.n()?, src_name: a.b()?, dst_parent: a.n()?, dst_name: a.b()?, inode: a.n()? }
            }
            "ATTR" => Op::Attr { inode: a.n()?, mode: a.n()?, uid: a.n()?, gid: a.n()?, atime: a.n()?, mtime: a.n()? },
            "TRUNCATE" => Op::Truncate { inode: a.n()?, length: a.n()? },
            "WRITE" => Op::Write { inode: a.n()?, index: a.n()?, chunk: a.n()?, version: a.n()?, locked_until: a.n()? },
            "ROLLBACK" => Op::Rollback { inode: a.n()?, index: a.n()?, chunk: a.n()? },
            "WRITEEND" => Op::WriteEnd { inode: a.n()?, chunk: a.n()?, length: a.n()? },
            "UNLOCK" => Op::Unlock { chunk: a.n()? },
            "REVERT" => Op::Revert { chunk: a.n()?, version: a.n()? },
            "SETGOAL" => {
                Op::SetGoal { inode: a.n()?, goal: a.n()?, recursive: a.flag()?, mode: a.mode()?, uid: a.n()? }
            }
            "SETTRASHTIME" => Op::SetTrashTime {
                inode: a.n()?,
                trashtime: a.n()?,
                recursive: a.flag()?,
                mode: a.mode()?,
                uid: a.n()?,
            },
            "PURGE" => Op::Purge { inode: a.n()? },
            "UNDEL" => Op::Undel { inode: a.n()?, new_dirs: a.list()? },
            "TRASHPATH" => Op::TrashPath { inode: a.n()?, path: a.b()? },
            "SESSION" => Op::Session { id: a.n()?, root: a.n()?, info: a.b()?, root_path: a.b()? },
            "CLOSESESSION" => Op::CloseSession { id: a.n()? },
            "ACQUIRE" => Op::Acquire { session: a.n()?, inode: a.n()? },
            "RELEASE" => Op::Release { session: a.n()?, inode: a.n()? },
            "AMTIME" => Op::Amtime { inode: a.n()?, atime: a.n()?, mtime: a.n()?, ctime: a.n()? },
            _ => return Err(bad("unknown record name")),
        };
        if a.args.next().is_some() {
            return Err(bad("too many arguments"));
        }
        Ok(Record { ts, op })
    }
}

struct Args {
    out: String,
}

impl Args {
    fn name(&mut self, name: &str) -> &mut Args {
        self.out.push_str(name);
        self.out.push('(');
        self
    }

    fn sep(&mut self) {
        if !self.out.ends_with('(') {
            self.out.push(',');
        }
    }

    fn n(&mut self, v: impl std::fmt::Display) -> &mut Args {
        self.sep();
        self.out.push_str(&v.to_string());
        self
    }

    fn b(&mut self, bytes: &[u8]) -> &mut Args {
        self.sep();
        escape_into(bytes, &mut self.out);
        self
    }
}

fn escape_into(bytes: &[u8], out: &mut String) {
    for &c in bytes {
        if (b'!'..=b'~').contains(&c) && !b"%,()|".contains(&c) {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
}

fn unescape(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

struct Parser<'a> {
    args: std::str::Split<'a, char>,
    line: &'a str,
}

impl Parser<'_> {
    fn bad(&self, why: &str) -> Error {
        Error::Record { line: self.line.to_string(), why: why.to_string() }
    }

    fn next(&mut self) -> Result<&str> {
        self.args.next().ok_or_else(|| self.bad("too few arguments"))
    }

    fn n<T: std::str::FromStr>(&mut self) -> Result<T> {
        let s = self.next()?;
        s.parse::<T>().map_err(|_| self.bad("bad number"))
    }

    fn b(&mut self) -> Result<Vec<u8>> {
        let s = self.next()?;
        unescape(s).ok_or_else(|| self.bad("bad escape"))
    }

    /// A `:`-separated list of numbers, empty for none.
    fn list(&mut self) -> Result<Vec<u32>> {
        let s = self.next()?;
        if s.is_empty() {
            return Ok(Vec::new());
        }
        let list: Option<Vec<u32>> = s.split(':').map(|n| n.parse::<u32>().ok()).collect();
        list.ok_or_else(|| self.bad("bad number in list"))
    }

    fn flag(&mut self) -> Result<bool> {
        match self.n::<u8>()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.bad("bad flag")),
        }
    }

    fn mode(&mut self) -> Result<SetMode> {
        let c = self.n::<u8>()?;
        SetMode::from_code(c).ok_or_else(|| self.bad("bad set mode"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rt(r: Record) {
        let text = r.to_text();
        assert!(!text.contains('\n'));
        assert_eq!(Record::parse(&text).unwrap(), r, "{text}");
    }

    #[test]
    fn text_form() {
        let r = Record { ts: 17, op: Op::Link { inode: 5, parent: 1, name: b"a,b(c)|%d e".to_vec() } };
        assert_eq!(r.to_text(), "17|LINK(5,1,a%2Cb%28c%29%7C%25d%20e)");
        rt(r);
        rt(Record { ts: 0, op: Op::Unlock { chunk: u64::MAX } });
        rt(Record { ts: 0, op: Op::Revert { chunk: 7, version: u32::MAX } });
        rt(Record { ts: 1, op: Op::Session { id: 1, root: 1, info: vec![], root_path: b"/".to_vec() } });
    }

    #[test]
    fn refuses_bad_lines() {
        for line in ["", "x|UNLOCK(1)", "1|UNLOCK(1", "1|UNLOCK()", "1|UNLOCK(1,2)", "1|NOPE(1)", "1|LINK(1,1,%G0)"] {
            assert!(matches!(Record::parse(line), Err(Error::Record { .. })), "{line}");
        }
    }

    fn any_op() -> impl Strategy<Value = Op> {
        let name = proptest::collection::vec(any::<u8>(), 0..40);
        prop_oneof![
            (any::<u32>(), name.clone(), 1u8..=7, any::<u16>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>())
                .prop_map(|(parent, name, k, mode, uid, gid, rdev, inode)| Op::Create {
                    parent,
                    name,
                    kind: NodeType::from_wire(k).unwrap(),
                    mode,
                    uid,
                    gid,
                    rdev,
                    inode
                }),
            (any::<u32>(), name.clone(), name.clone(), any::<u32>()).prop_map(|(a, s, d, inode)| Op::Rename {
                src_parent: a,
                src_name: s,
                dst_parent: a,
                dst_name: d,
                inode
            }),
            (any::<u32>(), name.clone(), name.clone()).prop_map(|(id, info, root_path)| Op::Session {
                id,
                root: 1,
                info,
                root_path
            }),
            (any::<u32>(), any::<u64>()).prop_map(|(inode, length)| Op::Truncate { inode, length }),
            (any::<u32>(), any::<u32>()).prop_map(|(session, inode)| Op::Release { session, inode }),
            (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>())
                .prop_map(|(inode, atime, mtime, ctime)| Op::Amtime { inode, atime, mtime, ctime }),
            (any::<u32>(), proptest::collection::vec(any::<u32>(), 0..4))
                .prop_map(|(inode, new_dirs)| Op::Undel { inode, new_dirs }),
            (any::<u32>(), 1u8..=9, any::<bool>()).prop_map(|(inode, goal, recursive)| Op::SetGoal {
                inode,
                goal,
                recursive,
                mode: SetMode::DecreaseOnly,
                uid: 3
            }),
        ]
    }

    proptest! {
        #[test]
        fn text_round_trip(ts in any::<u32>(), op in any_op()) {
            let r = Record { ts, op };
            let text = r.to_text();
            prop_assert!(!text.contains('\n'));
            prop_assert_eq!(Record::parse(&text).unwrap(), r);
        }
    }
}
