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
//! than asserted so tests can watch the engine's discipline.
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

    /// Bytes held by files that still exist: named ones and open ones.
    fn used_bytes(&self) -> u64 {
        self.inodes
            .values()
            .filter(|inode| inode.links > 0 || inode.open > 0)
            .map(|inode| inode.volatile.len() as u64)
            .sum()
    }

    /// Fails `ENOSPC` when growing a file by `growth` bytes would pass the capacity.
    fn check_space(&self, growth: u64) -> io::Result<()> {
        match self.capacity {
            Some(capacity) if growth > 0 && self.used_bytes() + growth > capacity => Err(errno(libc::ENOSPC)),
            _ => Ok(()),
        }
    }

    fn draw(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.rng.random_bool(probability)
    }

    fn check_handle(&self, file: &SimFile) -> io::Result<()> {
        if file.generation != self.generation || !self.inodes.contains_key(&file.ino) {
            return Err(errno(libc::EBADF));
        }
        Ok(())
    }

    fn run(&mut self, file: &SimFile, req: &mut IoReq) -> io::Result<usize> {
        self.check_handle(file)?;
        if file.direct_io && req.op != IoOp::Fsync {
            check_aligned(req)?;
        }
        match req.op {
            IoOp::Read => self.read(file.ino, req.offset, &mut req.bufs),
            IoOp::Write => self.write(file.ino, req.offset, &req.bufs),
            IoOp::Fsync => self.fsync(file.ino),
        }
    }

    fn read(&mut self, ino: Ino, offset: u64, bufs: &mut [Buf]) -> io::Result<usize> {
        if self.fail_reads {
            return Err(errno(libc::EIO));
        }
        if self.draw(self.faults.read_eio) {
            self.injected.read_eio += 1;
            return Err(errno(libc::EIO));
        }
        let data = &self.inode_mut(ino)?.volatile;
        let mut pos = offset;
        let mut moved = 0;
        for buf in bufs.iter_mut() {
            let start = pos.min(data.len() as u64) as usize;
            let take = buf.len().min(data.len() - start);
            buf[..take].copy_from_slice(&data[start..start + take]);
            moved += take;
            pos += take as u64;
            if take < buf.len() {
                break;
            }
        }
        Ok(moved)
    }

    fn write(&mut self, ino: Ino, offset: u64, bufs: &[Buf]) -> io::Result<usize> {
        if self.fail_writes {
            return Err(errno(libc::EIO));
        }
        if self.draw(self.faults.write_eio) {
            self.injected.write_eio += 1;
            return Err(errno(libc::EIO));
        }
        if self.draw(self.faults.write_enospc) {
            self.injected.write_enospc += 1;
            return Err(errno(libc::ENOSPC));
        }
        let len: u64 = bufs.iter().map(|buf| buf.len() as u64).sum();
        let size = self.inode_mut(ino)?.volatile.len() as u64;
        self.check_space((offset + len).saturating_sub(size))?;
        let torn = self.draw(self.faults.torn_write);
        self.injected.torn_write += u64::from(torn);
        let keep = if torn { self.torn_prefix(offset, len) } else { len };
        let data = Arc::make_mut(&mut self.inode_mut(ino)?.volatile);
        let end = (offset + keep) as usize;
        // A write that lands nothing does not extend the file either.
        if keep > 0 && data.len() < end {
            data.resize(end, 0);
        }
        let mut pos = offset as usize;
        for buf in bufs {
            let take = buf.len().min(end.saturating_sub(pos));
            data[pos..pos + take].copy_from_slice(&buf[..take]);
            pos += take;
        }
        if keep < len {
            return Err(errno(libc::EIO));
        }
        Ok(len as usize)
    }

    /// Bytes of a torn write that land: up to a random sector boundary of
    /// the file strictly before the write's end. Worked example: offset
    /// 4096, 8192 bytes; boundaries 4096, 4608, …, 11776 are candidates, so
    /// 0 to 7680 bytes land.
    fn torn_prefix(&mut self, offset: u64, len: u64) -> u64 {
        let first = offset.div_ceil(SECTOR) * SECTOR;
        let end = offset + len;
        if first >= end {
            return 0;
        }
        let count = (end - 1 - first) / SECTOR + 1;
        first + self.rng.random_range(0..count) * SECTOR - offset
    }

    fn fsync(&mut self, ino: Ino) -> io::Result<usize> {
        if self.fail_writes {
            return Err(errno(libc::EIO));
        }
        if self.draw(self.faults.fsync_eio) {
            self.injected.fsync_eio += 1;
            return Err(errno(libc::EIO));
        }
        let inode = self.inode_mut(ino)?;
        inode.durable = inode.volatile.clone();
        Ok(0)
    }
}

/// O_DIRECT's rule: offset and every length a multiple of 4096.
fn check_aligned(req: &IoReq) -> io::Result<()> {
    let align = IO_ALIGN as u64;
    let bad_buf = req
        .bufs
        .iter()
        .any(|buf| !buf.len().is_multiple_of(IO_ALIGN) || !(buf.as_ptr() as usize).is_multiple_of(IO_ALIGN));
    if !req.offset.is_multiple_of(align) || bad_buf {
        return Err(errno(libc::EINVAL));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::BufPool;

    fn disk(seed: u64) -> SimDisk {
        SimDisk::new(SimConfig::new("t", seed))
    }

    fn filled(pool: &BufPool, len: usize, byte: u8) -> Buf {
        let mut buf = pool.try_get().unwrap();
        buf.set_len(len);
        buf.fill(byte);
        buf
    }

    fn empty(pool: &BufPool, len: usize) -> Buf {
        filled(pool, len, 0xEE)
    }

    fn one(file: &dyn DiskFile, req: IoReq) -> IoDone {
        file.submit(vec![req]).wait().unwrap().pop().unwrap()
    }

    fn write(file: &dyn DiskFile, pool: &BufPool, offset: u64, len: usize, byte: u8) -> io::Result<usize> {
        one(file, IoReq::write(offset, vec![filled(pool, len, byte)])).result
    }

    fn fsync(file: &dyn DiskFile) -> io::Result<usize> {
        one(file, IoReq::fsync()).result
    }

    fn contents(disk: &SimDisk, name: &str) -> io::Result<Vec<u8>> {
        disk.peek(Path::new(name), usize::MAX).map(|(data, _)| data)
    }

    fn errno_of(result: &io::Result<usize>) -> Option<i32> {
        result.as_ref().err().and_then(|e| e.raw_os_error())
    }

    #[test]
    fn writes_read_back_with_holes_and_short_reads() {
        let pool = BufPool::new(8);
        let disk = disk(1);
        disk.create_dir(Path::new("00")).unwrap();
        let file = disk.open(Path::new("00/f"), true).unwrap();
        assert_eq!(write(&*file, &pool, 8192, 4096, 7).unwrap(), 4096);
        assert_eq!(file.size().unwrap(), 12_288);
        let done = one(&*file, IoReq::read(4096, vec![empty(&pool, 4096), empty(&pool, 4096), empty(&pool, 4096)]));
        assert_eq!(done.result.unwrap(), 8192, "read stops at end of file");
        assert!(done.bufs[0].iter().all(|&b| b == 0), "the hole reads as zeros");
        assert!(done.bufs[1].iter().all(|&b| b == 7));
        assert!(done.bufs[2].iter().all(|&b| b == 0xEE), "bytes past end of file are left alone");
        file.set_size(4096).unwrap();
        assert_eq!(disk.peek(Path::new("00/f"), 10).unwrap(), (vec![0; 10], 4096));
        assert_eq!(disk.list_dir(Path::new("")).unwrap(), vec!["00"]);
        assert_eq!(disk.list_dir(Path::new("00")).unwrap(), vec!["f"]);
        assert_eq!(disk.requests(IoOp::Write), 1);
        assert_eq!(disk.requests(IoOp::Read), 1);
    }

    #[test]
    fn namespace_errors_follow_posix() {
        let disk = disk(1);
        let kind = |r: io::Result<Arc<dyn DiskFile>>| r.err().map(|e| e.kind());
        assert_eq!(kind(disk.open(Path::new("nodir/f"), true)), Some(io::ErrorKind::NotFound));
        assert_eq!(kind(disk.open(Path::new("f"), false)), Some(io::ErrorKind::NotFound));
        drop(disk.open(Path::new("f"), true).unwrap());
        assert_eq!(kind(disk.open(Path::new("f"), true)), Some(io::ErrorKind::AlreadyExists));
        disk.create_dir(Path::new("d")).unwrap();
        disk.create_dir(Path::new("d")).unwrap();
        disk.rename(Path::new("f"), Path::new("d/g")).unwrap();
        assert_eq!(disk.remove(Path::new("d")).unwrap_err().raw_os_error(), Some(libc::ENOTEMPTY));
        assert_eq!(disk.remove(Path::new("f")).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(disk.list_dir(Path::new("missing")).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(disk.open(Path::new("../x"), true).is_err());
        assert_eq!(disk.root(), Path::new("/sim/t"));
        assert!(disk.direct_io());
    }

    #[test]
    fn rename_replaces_and_open_handles_follow_the_inode() {
        let pool = BufPool::new(4);
        let disk = disk(1);
        let a = disk.open(Path::new("a"), true).unwrap();
        write(&*a, &pool, 0, 4096, 1).unwrap();
        let b = disk.open(Path::new("b"), true).unwrap();
        write(&*b, &pool, 0, 4096, 2).unwrap();
        disk.rename(Path::new("a"), Path::new("b")).unwrap();
        assert_eq!(disk.list_dir(Path::new("")).unwrap(), vec!["b"]);
        assert_eq!(contents(&disk, "b").unwrap(), vec![1; 4096]);
        write(&*a, &pool, 4096, 4096, 3).unwrap();
        assert_eq!(disk.peek(Path::new("b"), 0).unwrap().1, 8192, "the handle follows the renamed file");
        assert_eq!(write(&*b, &pool, 0, 4096, 4).unwrap(), 4096, "a replaced file stays usable while open");
        assert_eq!(disk.space().unwrap().avail, UNLIMITED_BYTES - 8192 - 4096);
        drop(b);
        assert_eq!(disk.space().unwrap().avail, UNLIMITED_BYTES - 8192);
    }

    #[test]
    fn a_failure_cancels_the_rest_of_the_chain() {
        let pool = BufPool::new(4);
        let disk = disk(1);
        let file = disk.open(Path::new("f"), true).unwrap();
        disk.set_fail_writes(true);
        let chain = vec![
            IoReq::write(0, vec![filled(&pool, 4096, 1)]),
            IoReq::write(4096, vec![filled(&pool, 4096, 2)]),
            IoReq::fsync(),
        ];
        let done = file.submit(chain).wait().unwrap();
        let errnos: Vec<_> = done.iter().map(|d| errno_of(&d.result)).collect();
        assert_eq!(errnos, vec![Some(libc::EIO), Some(libc::ECANCELED), Some(libc::ECANCELED)]);
        assert_eq!(done[1].bufs[0][0], 2, "buffers come back in order");
        assert_eq!(file.size().unwrap(), 0, "nothing applied");
        disk.set_fail_writes(false);
        let misaligned =
            vec![IoReq::write(512, vec![filled(&pool, 4096, 1)]), IoReq::write(0, vec![filled(&pool, 4096, 1)])];
        let done = file.submit(misaligned).wait().unwrap();
        assert_eq!(errno_of(&done[0].result), Some(libc::EINVAL), "O_DIRECT discipline");
        assert_eq!(errno_of(&done[1].result), Some(libc::ECANCELED));
        drop(done);
        let buffered = disk.open_buffered(Path::new("f")).unwrap();
        assert_eq!(write(&*buffered, &pool, 512, 100, 1).unwrap(), 100, "the page cache takes any alignment");
        assert_eq!(disk.requests(IoOp::Write), 5);
        assert_eq!(disk.requests(IoOp::Fsync), 1);
    }

    #[test]
    fn crash_keeps_only_synced_names_and_fsynced_bytes() {
        let pool = BufPool::new(4);
        let disk = disk(1);
        disk.create_dir(Path::new("d")).unwrap();
        disk.sync_dir(Path::new("")).unwrap();
        let kept = disk.open(Path::new("d/kept"), true).unwrap();
        let empty_file = disk.open(Path::new("d/empty"), true).unwrap();
        disk.sync_dir(Path::new("d")).unwrap();
        write(&*kept, &pool, 0, 4096, 1).unwrap();
        fsync(&*kept).unwrap();
        write(&*kept, &pool, 0, 8192, 2).unwrap();
        write(&*empty_file, &pool, 0, 4096, 3).unwrap();
        let lost = disk.open(Path::new("d/lost"), true).unwrap();
        write(&*lost, &pool, 0, 4096, 4).unwrap();
        fsync(&*lost).unwrap();
        disk.remove(Path::new("d/empty")).unwrap();
        disk.crash();
        assert_eq!(disk.list_dir(Path::new("d")).unwrap(), vec!["empty", "kept"]);
        assert_eq!(contents(&disk, "d/kept").unwrap(), vec![1; 4096]);
        assert_eq!(contents(&disk, "d/empty").unwrap(), Vec::<u8>::new());
        assert_eq!(errno_of(&write(&*kept, &pool, 0, 4096, 5)), Some(libc::EBADF), "handles die with the process");
        assert_eq!(kept.size().unwrap_err().raw_os_error(), Some(libc::EBADF));
        let reopened = disk.open(Path::new("d/kept"), false).unwrap();
        assert_eq!(write(&*reopened, &pool, 4096, 4096, 6).unwrap(), 4096);
    }

    #[test]
    fn unsynced_folders_vanish_with_their_files() {
        let disk = disk(1);
        disk.create_dir(Path::new("d")).unwrap();
        drop(disk.open(Path::new("d/f"), true).unwrap());
        disk.sync_dir(Path::new("d")).unwrap();
        disk.crash();
        assert!(disk.list_dir(Path::new("")).unwrap().is_empty());
        assert_eq!(disk.space().unwrap().avail, UNLIMITED_BYTES);
    }

    #[test]
    fn a_rename_is_durable_once_its_destination_folder_is_synced() {
        let pool = BufPool::new(4);
        let disk = disk(1);
        for dir in ["src", "dst"] {
            disk.create_dir(Path::new(dir)).unwrap();
        }
        disk.sync_dir(Path::new("")).unwrap();
        let file = disk.open(Path::new("src/f"), true).unwrap();
        write(&*file, &pool, 0, 4096, 9).unwrap();
        fsync(&*file).unwrap();
        disk.sync_dir(Path::new("src")).unwrap();
        disk.rename(Path::new("src/f"), Path::new("dst/g")).unwrap();
        disk.sync_dir(Path::new("src")).unwrap();
        disk.crash();
        assert_eq!(disk.list_dir(Path::new("src")).unwrap(), vec!["f"], "syncing the source alone is not enough");
        assert!(disk.list_dir(Path::new("dst")).unwrap().is_empty());
        disk.rename(Path::new("src/f"), Path::new("dst/g")).unwrap();
        disk.sync_dir(Path::new("dst")).unwrap();
        disk.crash();
        assert!(disk.list_dir(Path::new("src")).unwrap().is_empty());
        assert_eq!(contents(&disk, "dst/g").unwrap(), vec![9; 4096]);
    }

    #[test]
    fn a_rename_of_an_unsynced_create_never_shows_two_names() {
        let disk = disk(1);
        disk.create_dir(Path::new("dst")).unwrap();
        disk.sync_dir(Path::new("")).unwrap();
        drop(disk.open(Path::new("f"), true).unwrap());
        disk.rename(Path::new("f"), Path::new("dst/g")).unwrap();
        disk.sync_dir(Path::new("dst")).unwrap();
        disk.sync_dir(Path::new("")).unwrap();
        disk.crash();
        assert_eq!(disk.list_dir(Path::new("")).unwrap(), vec!["dst"]);
        assert_eq!(disk.list_dir(Path::new("dst")).unwrap(), vec!["g"]);
    }

    #[test]
    fn capacity_bounds_writes_and_growth() {
        let pool = BufPool::new(4);
        let disk = disk(1);
        disk.set_capacity(Some(8192));
        let file = disk.open(Path::new("f"), true).unwrap();
        assert_eq!(write(&*file, &pool, 0, 8192, 1).unwrap(), 8192);
        assert_eq!(disk.space().unwrap(), FsSpace { total: 8192, avail: 0 });
        assert_eq!(errno_of(&write(&*file, &pool, 8192, 4096, 2)), Some(libc::ENOSPC));
        assert_eq!(file.size().unwrap(), 8192, "nothing applied");
        assert_eq!(write(&*file, &pool, 0, 4096, 3).unwrap(), 4096, "overwrites need no space");
        assert_eq!(file.set_size(12_288).unwrap_err().raw_os_error(), Some(libc::ENOSPC));
        file.set_size(4096).unwrap();
        assert_eq!(disk.space().unwrap().avail, 4096);
        disk.set_capacity(None);
        assert_eq!(disk.space().unwrap().total, UNLIMITED_BYTES);
    }

    #[test]
    fn torn_writes_leave_a_sector_aligned_prefix() {
        let pool = BufPool::new(4);
        let mut lengths = Vec::new();
        for seed in 0..20 {
            let disk = SimDisk::new(SimConfig {
                faults: SimFaults { torn_write: 1.0, ..SimFaults::NONE },
                ..SimConfig::new("t", seed)
            });
            let file = disk.open(Path::new("f"), true).unwrap();
            let result = one(&*file, IoReq::write(4096, vec![filled(&pool, 65_536, 1), filled(&pool, 4096, 2)])).result;
            assert_eq!(errno_of(&result), Some(libc::EIO));
            assert_eq!(disk.injected(), SimFaultCounts { torn_write: 1, ..SimFaultCounts::default() });
            let data = contents(&disk, "f").unwrap();
            if !data.is_empty() {
                assert_eq!(data.len() % SECTOR as usize, 0);
                assert!(data.len() < 4096 + 69_632);
                assert!(data[..4096].iter().all(|&b| b == 0));
                assert!(data[4096..].iter().take(65_536).all(|&b| b == 1));
                assert!(data[4096..].iter().skip(65_536).all(|&b| b == 2));
            }
            lengths.push(data.len());
        }
        lengths.dedup();
        assert!(lengths.len() > 5, "cuts vary with the seed: {lengths:?}");
    }

    fn faulty_run(seed: u64) -> (Vec<Option<i32>>, Vec<u8>) {
        let pool = BufPool::new(4);
        let faults = SimFaults { read_eio: 0.2, write_eio: 0.2, fsync_eio: 0.2, write_enospc: 0.1, torn_write: 0.2 };
        let disk = SimDisk::new(SimConfig { faults, ..SimConfig::new("t", seed) });
        let file = disk.open(Path::new("f"), true).unwrap();
        let mut outcomes = Vec::new();
        for i in 0..60u64 {
            let result = match i % 3 {
                0 => write(&*file, &pool, (i % 7) * 4096, 8192, i as u8),
                1 => fsync(&*file),
                _ => one(&*file, IoReq::read(0, vec![empty(&pool, 4096)])).result,
            };
            outcomes.push(errno_of(&result));
        }
        (outcomes, contents(&disk, "f").unwrap())
    }

    #[test]
    fn the_same_seed_replays_the_same_faults() {
        let (first, data) = faulty_run(42);
        assert_eq!(faulty_run(42), (first.clone(), data));
        assert!(first.iter().any(Option::is_some) && first.iter().any(Option::is_none));
        assert_ne!(faulty_run(43).0, first, "another seed, other faults");
    }

    #[test]
    fn a_power_cut_mid_chain_keeps_the_disk_down_until_restarted() {
        let pool = BufPool::new(4);
        let disk = disk(1);
        let file = disk.open(Path::new("f"), true).unwrap();
        disk.sync_dir(Path::new("")).unwrap();
        disk.crash_after(Some(2));
        let chain = vec![
            IoReq::write(0, vec![filled(&pool, 4096, 1)]),
            IoReq::fsync(),
            IoReq::write(4096, vec![filled(&pool, 4096, 2)]),
            IoReq::fsync(),
        ];
        let done = file.submit(chain).wait().unwrap();
        let errnos: Vec<_> = done.iter().map(|d| errno_of(&d.result)).collect();
        assert_eq!(errnos, vec![None, None, Some(libc::EIO), Some(libc::ECANCELED)]);
        drop(done);
        assert!(disk.is_down());
        assert_eq!(disk.remove(Path::new("f")).unwrap_err().raw_os_error(), Some(libc::EIO));
        assert!(disk.list_dir(Path::new("")).is_err(), "nothing works while the power is off");
        disk.crash();
        assert!(!disk.is_down());
        assert_eq!(contents(&disk, "f").unwrap(), vec![1; 4096]);
    }

    #[test]
    fn corruption_is_silent_and_survives_a_crash() {
        let pool = BufPool::new(4);
        let disk = disk(1);
        let file = disk.open(Path::new("f"), true).unwrap();
        disk.sync_dir(Path::new("")).unwrap();
        write(&*file, &pool, 0, 4096, 1).unwrap();
        fsync(&*file).unwrap();
        disk.corrupt(Path::new("f"), 10, &[0xFF]).unwrap();
        disk.crash();
        let data = contents(&disk, "f").unwrap();
        assert_eq!((data[9], data[10], data[11]), (1, 0xFF, 1));
    }
}
