//! [`SimDisk`]: an in-memory [`Disk`] that injects faults on purpose.
//!
//! Everything is decided by one seeded [`SmallRng`] under one lock, so a
//! seed and a sequence of calls replay exactly. The model:
//!
//! - **Files are inodes.** A name maps to an inode; an open [`DiskFile`] holds
//!   the inode, not the name, so a renamed or removed file stays usable
//!   through handles already open (as on Linux).
//! - **Two copies of everything.** Each inode has volatile contents (what
//!   reads see) and durable contents (what survives a crash); an
//!   [`IoOp::Fsync`] copies the first over the second. The namespace has a
//!   volatile and a durable version too: create, remove, rename and
//!   `create_dir` change the volatile one and queue an entry in a pending
//!   log, and `sync_dir(d)` moves the entries for names in `d` (for a
//!   rename, the destination's folder) to the durable namespace, together
//!   with earlier entries on the same names so the durable namespace never
//!   shows an inode under two names.
//! - **Crashes keep only durable state.** [`SimDisk::crash`] replaces the
//!   volatile namespace and every file's contents with their durable
//!   versions: a file whose create was never synced vanishes, a file whose
//!   create was synced but never fsynced is empty, and entries whose folder
//!   was never made durable go with it. Handles opened before the crash fail
//!   every later call with `EBADF`, since the process that held them died.
//!
//! Fault model. Per request, with the probabilities of [`SimFaults`]: `EIO`
//! on read, write or fsync (nothing applied), `ENOSPC` on write (nothing
//! applied), and torn writes (a prefix ending on a 512-byte boundary of the
//! file is applied, then `EIO`). Deterministic switches work at any time:
//! [`SimDisk::set_fail_writes`], [`SimDisk::set_fail_reads`],
//! [`SimDisk::set_capacity`] and [`SimDisk::corrupt`] (silent media damage).
//! [`SimDisk::crash_after`] cuts the power in the middle of whatever runs:
//! after a given number of steps (each data request and each namespace
//! change is one), the disk crashes and then fails every call with `EIO`
//! until [`SimDisk::crash`] brings it back, so the dying process cannot
//! touch what survived.
//! With `direct_io` on, a request whose offset or buffer lengths are not
//! 4096-aligned fails with `EINVAL`, as O_DIRECT does; it is reported rather
//! than asserted so tests can watch the engine's discipline. Handles from
//! `open_buffered` take any alignment, like the page cache.
//!
//! Chains follow the seam's rules: requests run in order, the first failure
//! stops the chain and the rest report `ECANCELED` without effect.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::ops::Bound;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{cancelled, Completion, Disk, DiskFile, FsSpace, IoDone, IoOp, IoReq};
use crate::buffer::Buf;
use crate::layout::IO_ALIGN;

/// Torn writes end on a multiple of this, like a disk sector.
const SECTOR: u64 = 512;
/// What `space()` reports as total when no capacity is set: 1 TiB.
const UNLIMITED_BYTES: u64 = 1 << 40;

/// Probabilities, each in `0.0..=1.0`, that one request fails a certain way.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SimFaults {
    pub read_eio: f64,
    pub write_eio: f64,
    pub fsync_eio: f64,
    pub write_enospc: f64,
    /// A prefix of the write lands, then the write reports `EIO`.
    pub torn_write: f64,
}

impl SimFaults {
    pub const NONE: SimFaults =
        SimFaults { read_eio: 0.0, write_eio: 0.0, fsync_eio: 0.0, write_enospc: 0.0, torn_write: 0.0 };

    fn assert_valid(&self) {
        for p in [self.read_eio, self.write_eio, self.fsync_eio, self.write_enospc, self.torn_write] {
            assert!((0.0..=1.0).contains(&p), "fault probability {p} outside 0..=1");
        }
    }
}

/// Faults injected so far, by kind; the switches are not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimFaultCounts {
    pub read_eio: u64,
    pub write_eio: u64,
    pub fsync_eio: u64,
    pub write_enospc: u64,
    pub torn_write: u64,
}

/// How a [`SimDisk`] behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// `root()` is `/sim/<name>`.
    pub name: String,
    pub seed: u64,
    /// What `direct_io()` reports; when set, misaligned requests fail `EINVAL`.
    pub direct_io: bool,
    /// Total bytes all files may hold; `None` is unlimited (1 TiB reported).
    pub capacity: Option<u64>,
    pub faults: SimFaults,
}

impl SimConfig {
    pub fn new(name: impl Into<String>, seed: u64) -> SimConfig {
        SimConfig { name: name.into(), seed, direct_io: true, capacity: None, faults: SimFaults::NONE }
    }
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig::new("disk", 0)
    }
}

type Ino = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(Ino),
    Dir,
}

struct Inode {
    /// `Arc` so an fsync or a crash copies a pointer; a write after an fsync
    /// copies the bytes once (`Arc::make_mut`).
    volatile: Arc<Vec<u8>>,
    durable: Arc<Vec<u8>>,
    /// Names in the volatile namespace.
    links: u32,
    /// Handles open in the current generation.
    open: u32,
}

/// A namespace change not yet durable. A folder is created with `Create` of
/// a `Node::Dir`.
#[derive(Debug, Clone)]
enum NsOp {
    Create { path: PathBuf, node: Node },
    Remove { path: PathBuf, node: Node },
    Rename { from: PathBuf, to: PathBuf, ino: Ino },
}

impl NsOp {
    /// The folder whose `sync_dir` makes this change durable.
    fn folder(&self) -> PathBuf {
        match self {
            NsOp::Create { path, .. } | NsOp::Remove { path, .. } | NsOp::Rename { to: path, .. } => parent(path),
        }
    }

    fn touches(&self, name: &Path) -> bool {
        match self {
            NsOp::Create { path, .. } | NsOp::Remove { path, .. } => path == name,
            NsOp::Rename { from, to, .. } => from == name || to == name,
        }
    }

    fn shares_name(&self, other: &NsOp) -> bool {
        match other {
            NsOp::Create { path, .. } | NsOp::Remove { path, .. } => self.touches(path),
            NsOp::Rename { from, to, .. } => self.touches(from) || self.touches(to),
        }
    }

    fn refers_to(&self, ino: Ino) -> bool {
        match self {
            NsOp::Create { node, .. } | NsOp::Remove { node, .. } => *node == Node::File(ino),
            NsOp::Rename { ino: i, .. } => *i == ino,
        }
    }
}

struct State {
    rng: SmallRng,
    faults: SimFaults,
    capacity: Option<u64>,
    fail_writes: bool,
    fail_reads: bool,
    /// Bumped by every crash; handles from an older generation are dead.
    generation: u64,
    next_ino: Ino,
    inodes: HashMap<Ino, Inode>,
    names: BTreeMap<PathBuf, Node>,
    durable_names: BTreeMap<PathBuf, Node>,
    pending: Vec<NsOp>,
    /// Requests submitted, by op: read, write, fsync.
    requests: [u64; 3],
    injected: SimFaultCounts,
    /// Steps left before an armed power cut.
    countdown: Option<u64>,
    /// The power is off after a cut by `countdown`.
    down: bool,
}

/// An in-memory data folder with seeded faults and crashes; see the module notes.
pub struct SimDisk {
    root: PathBuf,
    direct_io: bool,
    state: Arc<Mutex<State>>,
}

struct SimFile {
    state: Arc<Mutex<State>>,
    ino: Ino,
    generation: u64,
    direct_io: bool,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic under the lock leaves plain data behind; the test that
    // panicked reports it, so later users may carry on.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn op_index(op: IoOp) -> usize {
    match op {
        IoOp::Read => 0,
        IoOp::Write => 1,
        IoOp::Fsync => 2,
    }
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `rel` as a map key: plain names only; the folder itself is the empty path.
fn folder_key(rel: &Path) -> io::Result<PathBuf> {
    let mut key = PathBuf::new();
    for component in rel.components() {
        match component {
            Component::Normal(name) => key.push(name),
            Component::CurDir => {}
            _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("sim: path {rel:?} leaves the disk"))),
        }
    }
    Ok(key)
}

/// Like [`folder_key`], but the folder itself is not a valid name.
fn name_key(rel: &Path) -> io::Result<PathBuf> {
    let key = folder_key(rel)?;
    if key.as_os_str().is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "sim: the data folder itself is not a file"));
    }
    Ok(key)
}

impl SimDisk {
    pub fn new(config: SimConfig) -> SimDisk {
        config.faults.assert_valid();
        let state = State {
            rng: SmallRng::seed_from_u64(config.seed),
            faults: config.faults,
            capacity: config.capacity,
            fail_writes: false,
            fail_reads: false,
            generation: 0,
            next_ino: 1,
            inodes: HashMap::new(),
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            pending: Vec::new(),
            requests: [0; 3],
            injected: SimFaultCounts::default(),
            countdown: None,
            down: false,
        };
        SimDisk {
            root: Path::new("/sim").join(&config.name),
            direct_io: config.direct_io,
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// Replaces the fault probabilities from now on.
    pub fn set_faults(&self, faults: SimFaults) {
        faults.assert_valid();
        lock(&self.state).faults = faults;
    }

    /// While set, every write, fsync and `set_size` fails with `EIO`, as on
    /// a disk that dropped off the bus.
    pub fn set_fail_writes(&self, fail: bool) {
        lock(&self.state).fail_writes = fail;
    }

    /// While set, every read fails with `EIO`.
    pub fn set_fail_reads(&self, fail: bool) {
        lock(&self.state).fail_reads = fail;
    }

    /// Caps the sum of all file sizes; writes and `set_size` past it fail `ENOSPC`.
    pub fn set_capacity(&self, capacity: Option<u64>) {
        lock(&self.state).capacity = capacity;
    }

    /// Loses power: only durable names and fsynced bytes remain, and every
    /// handle open so far is dead. The disk itself stays usable.
    pub fn crash(&self) {
        let mut state = lock(&self.state);
        state.crash();
        state.countdown = None;
        state.down = false;
    }

    /// Arms (or with `None` disarms) a power cut: `steps` more data requests
    /// or namespace changes succeed, the next one crashes the disk, and
    /// everything fails with `EIO` from then until [`SimDisk::crash`].
    pub fn crash_after(&self, steps: Option<u64>) {
        lock(&self.state).countdown = steps;
    }

    /// Random faults injected so far.
    pub fn injected(&self) -> SimFaultCounts {
        lock(&self.state).injected
    }

    /// Whether an armed power cut has happened and the power is still off.
    pub fn is_down(&self) -> bool {
        lock(&self.state).down
    }

    /// Requests of kind `op` submitted so far, cancelled ones included.
    pub fn requests(&self, op: IoOp) -> u64 {
        lock(&self.state).requests[op_index(op)]
    }

    /// Opens `rel`; a handle with `direct_io` refuses misaligned requests.
    fn open_with(&self, rel: &Path, create: bool, direct_io: bool) -> io::Result<Arc<dyn DiskFile>> {
        let key = name_key(rel)?;
        let mut state = lock(&self.state);
        if create {
            state.step()?
        } else {
            state.powered()?
        }
        let ino = if create { state.create_file(&key)? } else { state.lookup_file(&key)? };
        state.inode_mut(ino)?.open += 1;
        let generation = state.generation;
        Ok(Arc::new(SimFile { state: self.state.clone(), ino, generation, direct_io }))
    }

    /// Overwrites bytes of `rel` in both its volatile and durable contents
    /// without any error: silent media damage for CRC tests. The range must
    /// lie inside the file.
    pub fn corrupt(&self, rel: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let key = name_key(rel)?;
        let mut state = lock(&self.state);
        let ino = state.lookup_file(&key)?;
        let inode = state.inode_mut(ino)?;
        let start = offset as usize;
        let end = start + bytes.len();
        if end > inode.volatile.len() || end > inode.durable.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "sim: corrupt range outside the file"));
        }
        Arc::make_mut(&mut inode.volatile)[start..end].copy_from_slice(bytes);
        Arc::make_mut(&mut inode.durable)[start..end].copy_from_slice(bytes);
        Ok(())
    }
}

impl State {
    /// Fails while the power is off.
    fn powered(&self) -> io::Result<()> {
        if self.down {
            return Err(errno(libc::EIO));
        }
        Ok(())
    }

    /// Counts one step that may change the disk, cutting the power when an
    /// armed countdown runs out.
    fn step(&mut self) -> io::Result<()> {
        self.powered()?;
        match self.countdown {
            Some(0) => {
                self.crash();
                self.down = true;
                self.countdown = None;
                Err(errno(libc::EIO))
            }
            Some(left) => {
                self.countdown = Some(left - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn inode_mut(&mut self, ino: Ino) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or_else(|| errno(libc::EBADF))
    }

    fn require_dir(&self, folder: &Path) -> io::Result<()> {
        if folder.as_os_str().is_empty() {
            return Ok(());
        }
        match self.names.get(folder) {
            Some(Node::Dir) => Ok(()),
            Some(Node::File(_)) => Err(errno(libc::ENOTDIR)),
            None => Err(io::Error::new(io::ErrorKind::NotFound, format!("sim: no folder {folder:?}"))),
        }
    }

    fn lookup_file(&self, name: &Path) -> io::Result<Ino> {
        match self.names.get(name) {
            Some(Node::File(ino)) => Ok(*ino),
            Some(Node::Dir) => Err(errno(libc::EISDIR)),
            None => Err(io::Error::new(io::ErrorKind::NotFound, format!("sim: no file {name:?}"))),
        }
    }

    /// Names directly inside `folder`, in order.
    fn children<'a>(&'a self, folder: &'a Path) -> impl Iterator<Item = &'a PathBuf> + 'a {
        self.names
            .range::<Path, _>((Bound::Excluded(folder), Bound::Unbounded))
            .map(|(path, _)| path)
            .take_while(move |path| path.starts_with(folder))
            .filter(move |path| path.parent() == Some(folder))
    }

    fn create_file(&mut self, name: &Path) -> io::Result<Ino> {
        if self.names.contains_key(name) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("sim: {name:?} exists")));
        }
        self.require_dir(&parent(name))?;
        let ino = self.next_ino;
        self.next_ino += 1;
        let empty = Arc::new(Vec::new());
        self.inodes.insert(ino, Inode { volatile: empty.clone(), durable: empty, links: 1, open: 0 });
        self.names.insert(name.to_path_buf(), Node::File(ino));
        self.pending.push(NsOp::Create { path: name.to_path_buf(), node: Node::File(ino) });
        Ok(ino)
    }

    fn rename(&mut self, from: PathBuf, to: PathBuf) -> io::Result<()> {
        let ino = match self.names.get(&from) {
            Some(Node::File(ino)) => *ino,
            Some(Node::Dir) => {
                return Err(io::Error::new(io::ErrorKind::Unsupported, "sim: renaming folders is not modelled"))
            }
            None => return Err(io::Error::new(io::ErrorKind::NotFound, format!("sim: no file {from:?}"))),
        };
        if from == to {
            return Ok(());
        }
        self.require_dir(&parent(&to))?;
        if self.names.get(&to) == Some(&Node::Dir) {
            return Err(errno(libc::EISDIR));
        }
        self.names.remove(&from);
        let replaced = self.names.insert(to.clone(), Node::File(ino));
        self.pending.push(NsOp::Rename { from, to, ino });
        if let Some(Node::File(old)) = replaced {
            self.unlink(old);
        }
        Ok(())
    }

    fn remove(&mut self, name: PathBuf) -> io::Result<()> {
        let node = match self.names.get(&name) {
            Some(node) => *node,
            None => return Err(io::Error::new(io::ErrorKind::NotFound, format!("sim: no {name:?}"))),
        };
        if node == Node::Dir && self.children(&name).next().is_some() {
            return Err(errno(libc::ENOTEMPTY));
        }
        self.names.remove(&name);
        self.pending.push(NsOp::Remove { path: name, node });
        if let Node::File(ino) = node {
            self.unlink(ino);
        }
        Ok(())
    }

    fn create_dir(&mut self, name: PathBuf) -> io::Result<()> {
        match self.names.get(&name) {
            Some(Node::Dir) => return Ok(()),
            Some(Node::File(_)) => {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "sim: a file has that name"))
            }
            None => {}
        }
        self.require_dir(&parent(&name))?;
        self.names.insert(name.clone(), Node::Dir);
        self.pending.push(NsOp::Create { path: name, node: Node::Dir });
        Ok(())
    }

    fn unlink(&mut self, ino: Ino) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.links = inode.links.saturating_sub(1);
        }
        self.maybe_free(ino);
    }

    /// Drops an inode nothing can reach any more: no name, no handle, no
    /// durable name and no pending change that could give it one.
    fn maybe_free(&mut self, ino: Ino) {
        let Some(inode) = self.inodes.get(&ino) else { return };
        if inode.links > 0 || inode.open > 0 {
            return;
        }
        let durable = self.durable_names.values().any(|node| *node == Node::File(ino));
        if !durable && !self.pending.iter().any(|op| op.refers_to(ino)) {
            self.inodes.remove(&ino);
        }
    }

    /// Makes the pending changes to names in `folder` durable, and, first,
    /// every earlier change to a name they touch (a rename's source), so a
    /// crash can never show a moved file under both names.
    fn sync_dir(&mut self, folder: &Path) {
        let mut chosen: Vec<bool> = self.pending.iter().map(|op| op.folder() == folder).collect();
        for later in (0..self.pending.len()).rev() {
            if chosen[later] {
                let later_op = &self.pending[later];
                for (flag, op) in chosen[..later].iter_mut().zip(&self.pending) {
                    *flag |= op.shares_name(later_op);
                }
            }
        }
        let mut freed = Vec::new();
        let pending = std::mem::take(&mut self.pending);
        for (op, chosen) in pending.into_iter().zip(chosen) {
            if chosen {
                freed.extend(self.apply_durable(&op));
            } else {
                self.pending.push(op);
            }
        }
        for ino in freed {
            self.maybe_free(ino);
        }
    }

    /// Applies one change to the durable namespace; returns the inode it
    /// took a durable name from, if any.
    fn apply_durable(&mut self, op: &NsOp) -> Option<Ino> {
        let names = &mut self.durable_names;
        let dropped = match op {
            NsOp::Create { path, node } => names.insert(path.clone(), *node),
            NsOp::Remove { path, node } if names.get(path) == Some(node) => names.remove(path),
            NsOp::Remove { .. } => None,
            NsOp::Rename { from, to, ino } => {
                if names.get(from) == Some(&Node::File(*ino)) {
                    names.remove(from);
                }
                names.insert(to.clone(), Node::File(*ino))
            }
        };
        match dropped {
            Some(Node::File(ino)) => Some(ino),
            _ => None,
        }
    }

    fn crash(&mut self) {
        self.generation += 1;
        self.pending.clear();
        // Parents sort before their children, so one pass drops whole
        // subtrees whose folder never became durable.
        let mut names = BTreeMap::new();
        for (path, node) in std::mem::take(&mut self.durable_names) {
            let folder = parent(&path);
            if folder.as_os_str().is_empty() || names.get(&folder) == Some(&Node::Dir) {
                names.insert(path, node);
            }
        }
        let mut links: HashMap<Ino, u32> = HashMap::new();
        for node in names.values() {
            if let Node::File(ino) = node {
                *links.entry(*ino).or_default() += 1;
            }
        }
        self.inodes.retain(|ino, _| links.contains_key(ino));
        for (ino, inode) in self.inodes.iter_mut() {
            inode.volatile = inode.durable.clone();
            inode.open = 0;
            inode.links = links.get(ino).copied().unwrap_or(0);
        }
        self.durable_names = names.clone();
        self.names = names;
    }
}

impl Disk for SimDisk {
    fn root(&self) -> &Path {
        &self.root
    }

    fn direct_io(&self) -> bool {
        self.direct_io
    }

    fn open(&self, rel: &Path, create: bool) -> io::Result<Arc<dyn DiskFile>> {
        self.open_with(rel, create, self.direct_io)
    }

    fn open_buffered(&self, rel: &Path) -> io::Result<Arc<dyn DiskFile>> {
        self.open_with(rel, false, false)
    }

    fn peek(&self, rel: &Path, len: usize) -> io::Result<(Vec<u8>, u64)> {
        let key = name_key(rel)?;
        let mut state = lock(&self.state);
        state.powered()?;
        let ino = state.lookup_file(&key)?;
        let data = &state.inode_mut(ino)?.volatile;
        Ok((data[..len.min(data.len())].to_vec(), data.len() as u64))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (name_key(from)?, name_key(to)?);
        let mut state = lock(&self.state);
        state.step()?;
        state.rename(from, to)
    }

    fn remove(&self, rel: &Path) -> io::Result<()> {
        let key = name_key(rel)?;
        let mut state = lock(&self.state);
        state.step()?;
        state.remove(key)
    }

    fn create_dir(&self, rel: &Path) -> io::Result<()> {
        let key = name_key(rel)?;
        let mut state = lock(&self.state);
        state.step()?;
        state.create_dir(key)
    }

    fn list_dir(&self, rel: &Path) -> io::Result<Vec<String>> {
        let key = folder_key(rel)?;
        let state = lock(&self.state);
        state.powered()?;
        state.require_dir(&key)?;
        let names =
            state.children(&key).filter_map(|path| path.file_name()).map(|name| name.to_string_lossy().into_owned());
        Ok(names.collect())
    }

    fn sync_dir(&self, rel: &Path) -> io::Result<()> {
        let key = folder_key(rel)?;
        let mut state = lock(&self.state);
        state.step()?;
        state.require_dir(&key)?;
        state.sync_dir(&key);
        Ok(())
    }

    fn space(&self) -> io::Result<FsSpace> {
        let state = lock(&self.state);
        state.powered()?;
        let total = state.capacity.unwrap_or(UNLIMITED_BYTES);
        Ok(FsSpace { total, avail: total.saturating_sub(state.used_bytes()) })
    }
}

impl DiskFile for SimFile {
    fn submit(&self, chain: Vec<IoReq>) -> Completion {
        let mut state = lock(&self.state);
        let mut failed = false;
        let mut done = Vec::with_capacity(chain.len());
        for mut req in chain {
            state.requests[op_index(req.op)] += 1;
            let result = if failed { Err(cancelled()) } else { state.step().and_then(|()| state.run(self, &mut req)) };
            failed |= result.is_err();
            done.push(IoDone { bufs: req.bufs, result });
        }
        Completion::ready(done)
    }

    fn size(&self) -> io::Result<u64> {
        let mut state = lock(&self.state);
        state.powered()?;
        state.check_handle(self)?;
        Ok(state.inode_mut(self.ino)?.volatile.len() as u64)
    }

    fn set_size(&self, len: u64) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.step()?;
        state.check_handle(self)?;
        if state.fail_writes {
            return Err(errno(libc::EIO));
        }
        let size = state.inode_mut(self.ino)?.volatile.len() as u64;
        state.check_space(len.saturating_sub(size))?;
        Arc::make_mut(&mut state.inode_mut(self.ino)?.volatile).resize(len as usize, 0);
        Ok(())
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        if state.generation != self.generation {
            return;
        }
        if let Some(inode) = state.inodes.get_mut(&self.ino) {
            inode.open = inode.open.saturating_sub(1);
        }
        state.maybe_free(self.ino);
    }
}

mod data;
#[cfg(test)]
mod tests;
