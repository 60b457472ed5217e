//! `mfsexports.cfg`: who may mount what, and with which rights.
//!
//! The table is read at start (a master without exports refuses to start,
//! as mfsmaster does) and again on `SIGHUP`. A session keeps the [`Grant`]
//! it got at registration; a reload changes the table's checksum, so a
//! session reconnecting afterwards is told to register again and is
//! checked against the new table (the answer mfsmaster gives, `EPERM`).

mod parse;

use std::net::Ipv4Addr;
use std::path::Path;

use elkfs_proto::Status;
use md5::{Digest, Md5};

use crate::error::{Error, Result};

pub use parse::parse;

/// `SESFLAG_*`: bits of the session flags a mount is told.
pub const SESFLAG_READONLY: u8 = 0x01;
pub const SESFLAG_DYNAMICIP: u8 = 0x02;
pub const SESFLAG_IGNOREGID: u8 = 0x04;
pub const SESFLAG_ADMIN: u8 = 0x08;
pub const SESFLAG_MAPALL: u8 = 0x10;

/// `disable=` operation names; the bit of each is its index.
pub const DISABLE_NAMES: [&str; 25] = [
    "chown",
    "chmod",
    "symlink",
    "mkfifo",
    "mkdev",
    "mksock",
    "mkdir",
    "unlink",
    "rmdir",
    "rename",
    "move",
    "link",
    "create",
    "readdir",
    "read",
    "write",
    "truncate",
    "setlength",
    "appendchunks",
    "snapshot",
    "settrash",
    "setsclass",
    "seteattr",
    "setxattr",
    "setfacl",
];

/// The bit of a `disable=` operation name.
pub fn disable_bit(name: &str) -> u32 {
    let i = DISABLE_NAMES.iter().position(|n| *n == name);
    assert!(i.is_some(), "unknown disable name {name}");
    1 << i.unwrap_or(0)
}

/// What a session may do: everything the registration reply carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub sesflags: u8,
    pub umask: u16,
    pub rootuid: u32,
    pub rootgid: u32,
    pub mapalluid: u32,
    pub mapallgid: u32,
    pub mingoal: u8,
    pub maxgoal: u8,
    pub mintrashtime: u32,
    pub maxtrashtime: u32,
    pub disables: u32,
}

impl Grant {
    /// What an export line grants when it names no option.
    pub const DEFAULT: Grant = Grant {
        sesflags: SESFLAG_READONLY,
        umask: 0,
        rootuid: 999,
        rootgid: 999,
        mapalluid: 999,
        mapallgid: 999,
        mingoal: 1,
        maxgoal: 9,
        mintrashtime: 0,
        maxtrashtime: u32::MAX,
        disables: 0,
    };

    /// Everything allowed, root stays root: sessions of a master that has
    /// no exports file configured (tests, `elkfs local`).
    pub const OPEN: Grant = Grant { sesflags: SESFLAG_ADMIN, rootuid: 0, rootgid: 0, ..Grant::DEFAULT };

    pub fn readonly(&self) -> bool {
        self.sesflags & SESFLAG_READONLY != 0
    }

    pub fn disabled(&self, name: &str) -> bool {
        self.disables & disable_bit(name) != 0
    }

    /// The ids the namespace checks permissions with: root becomes the
    /// `maproot` user, anyone else the `mapall` user when there is one.
    /// Only the primary group is replaced, as in mfsmaster.
    pub fn map_ids(&self, uid: u32, gids: &mut [u32]) -> u32 {
        let (uid, gid) = if uid == 0 {
            (self.rootuid, self.rootgid)
        } else if self.sesflags & SESFLAG_MAPALL != 0 {
            (self.mapalluid, self.mapallgid)
        } else {
            return uid;
        };
        if let Some(first) = gids.first_mut() {
            *first = gid;
        }
        uid
    }

    pub fn goal_allowed(&self, goal: u8) -> bool {
        (self.mingoal..=self.maxgoal).contains(&goal)
    }

    pub fn trashtime_allowed(&self, seconds: u32) -> bool {
        (self.mintrashtime..=self.maxtrashtime).contains(&seconds)
    }
}

/// What a line exports: a folder (`/` is the root; `alldirs` lets its
/// subfolders be mounted too) or the meta file system (`.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Path without leading or trailing slashes; empty for the root.
    Dir {
        path: Vec<u8>,
        alldirs: bool,
    },
    Meta,
}

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// Inclusive address range.
    pub from: Ipv4Addr,
    pub to: Ipv4Addr,
    pub target: Target,
    /// Clients older than this (`major<<16 | mid<<8 | minor`) are refused.
    pub minversion: u32,
    /// `MD5(password)`.
    pub password: Option<[u8; 16]>,
    pub grant: Grant,
}

impl Export {
    fn path_len(&self) -> usize {
        match &self.target {
            Target::Dir { path, .. } => path.len(),
            Target::Meta => 0,
        }
    }

    /// Whether this line covers `path` (`None`: the meta file system).
    fn covers(&self, path: Option<&[u8]>) -> bool {
        match (&self.target, path) {
            (Target::Meta, None) => true,
            (Target::Dir { path: mine, alldirs }, Some(wanted)) => {
                wanted == mine.as_slice()
                    || (*alldirs
                        && (mine.is_empty() || (wanted.starts_with(mine) && wanted.get(mine.len()) == Some(&b'/'))))
            }
            _ => false,
        }
    }

    /// Whether `self`, also matching, replaces the earlier match `best`.
    /// mfsmaster's rule: one step of preference at a time, in this order.
    fn preferred_to(&self, best: &Export) -> bool {
        let (a, b) = (&self.grant, &best.grant);
        if !a.readonly() && b.readonly() {
            return true;
        }
        if a.rootuid == 0 && b.rootuid != 0 {
            return true;
        }
        if a.sesflags & SESFLAG_ADMIN != 0 && b.sesflags & SESFLAG_ADMIN == 0 {
            return true;
        }
        if self.password.is_some() && best.password.is_none() {
            return true;
        }
        self.path_len() > best.path_len()
    }
}

/// The client's password proof: the challenge it got from `GETRANDOM`
/// and `MD5(challenge[..16] ‖ MD5(password) ‖ challenge[16..])`.
#[derive(Debug, Clone, Copy)]
pub struct Proof<'a> {
    pub challenge: &'a [u8; 32],
    pub digest: &'a [u8; 16],
}

/// `MD5(challenge[..16] ‖ password_md5 ‖ challenge[16..])`.
pub fn proof_digest(challenge: &[u8; 32], password_md5: &[u8; 16]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(&challenge[..16]);
    md5.update(password_md5);
    md5.update(&challenge[16..]);
    md5.finalize().into()
}

/// The whole table, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exports {
    pub entries: Vec<Export>,
    /// Changes whenever the table does; a session granted under another
    /// checksum must register again to reconnect.
    pub checksum: u64,
}

impl Exports {
    pub fn new(entries: Vec<Export>) -> Exports {
        let mut md5 = Md5::new();
        md5.update(format!("{entries:?}").as_bytes());
        let digest: [u8; 16] = md5.finalize().into();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Exports { entries, checksum: u64::from_be_bytes(first) }
    }

    /// The table of a master without `EXPORTS_FILENAME` and without the
    /// default file: any client, any folder, read-write, root kept.
    pub fn open() -> Exports {
        let all = |target| Export {
            from: Ipv4Addr::UNSPECIFIED,
            to: Ipv4Addr::BROADCAST,
            target,
            minversion: 0,
            password: None,
            grant: Grant::OPEN,
        };
        Exports::new(vec![all(Target::Dir { path: vec![], alldirs: true }), all(Target::Meta)])
    }

    /// Reads and parses `path`. Lines that do not parse are skipped with a
    /// warning (as mfsmaster does); a file that cannot be read, or that
    /// leaves no export, is an error.
    pub fn load(path: &Path) -> Result<Exports> {
        let text = std::fs::read(path).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            why: format!("cannot read the exports file: {e} (create one, e.g. `* / rw,alldirs,maproot=0`)"),
        })?;
        let (exports, warnings) = parse(&String::from_utf8_lossy(&text));
        for warning in &warnings {
            tracing::warn!("{}: {warning}", path.display());
        }
        if exports.entries.is_empty() {
            return Err(Error::Config { path: path.to_path_buf(), why: "no exports defined".into() });
        }
        Ok(exports)
    }

    /// Checks a registration: the client's address and version, the folder
    /// it asks for (`None`: the meta file system) and its password proof.
    /// Among the lines that let it in, the best by mfsmaster's preference
    /// wins (the first of equals).
    pub fn check(
        &self,
        ip: Ipv4Addr,
        version: u32,
        path: Option<&[u8]>,
        proof: Option<Proof<'_>>,
    ) -> std::result::Result<Grant, Status> {
        let path = path.map(trim_slashes);
        let proof = proof.filter(|p| p.challenge.iter().any(|&b| b != 0));
        let mut best: Option<&Export> = None;
        let mut wrong_password = false;
        for e in &self.entries {
            if ip < e.from || ip > e.to || version < e.minversion || !e.covers(path) {
                continue;
            }
            if let Some(password) = &e.password {
                let good = proof.is_some_and(|p| proof_digest(p.challenge, password) == *p.digest);
                if !good {
                    wrong_password = true;
                    continue;
                }
            }
            if best.is_none_or(|b| e.preferred_to(b)) {
                best = Some(e);
            }
        }
        match best {
            Some(e) => Ok(e.grant),
            None if wrong_password && proof.is_none() => Err(Status::NOPASSWORD),
            None if wrong_password => Err(Status::BADPASSWORD),
            None => Err(Status::EACCES),
        }
    }
}

fn trim_slashes(path: &[u8]) -> &[u8] {
    let start = path.iter().position(|&b| b != b'/').unwrap_or(path.len());
    let end = path.iter().rposition(|&b| b != b'/').map_or(start, |i| i + 1);
    &path[start..end.max(start)]
}

#[cfg(test)]
mod tests;
