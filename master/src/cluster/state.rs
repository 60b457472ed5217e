//! The volatile view behind one lock: connected servers, the copies they
//! reported, and the commands in flight. Nothing here awaits or calls the
//! catalog; every method runs under the cluster's mutex and is quick.
//!
//! Invariants: every copy and every pending command names a connected
//! server (a disconnect removes both); a server has at most one command in
//! flight per chunk, which is what lets replies (which carry only the chunk
//! id) find their command.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Instant, SystemTime};

use elkfs_proto::master_cs::{MaToCs, Space, VERSION_ON_REMOVED_DISK};
use elkfs_proto::{Addr, Status};
use tokio::sync::{mpsc, oneshot};

use super::decide::CopyView;
use super::placement::Load;
use super::CsId;

pub(crate) struct Server {
    pub csid: CsId,
    /// Which connection this is, so a late close of an old one for the
    /// same server does not drop the new one.
    pub conn: u64,
    /// Data port (9422) clients and peers use.
    pub addr: Addr,
    pub version: u32,
    pub labelmask: u32,
    pub space: Space,
    pub load: u32,
    pub overloaded: bool,
    pub errors: u32,
    pub connected_since: SystemTime,
    pub registered: bool,
    pub tx: mpsc::UnboundedSender<MaToCs>,
    pub creations: u32,
    pub rep_in: u32,
    pub rep_out: u32,
    pub deletions: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Copy {
    pub cs: CsId,
    pub version: u32,
    pub on_removal_disk: bool,
    pub damaged: bool,
    pub busy: bool,
    pub deleting: bool,
}

impl Copy {
    pub fn reported(cs: CsId, raw_version: u32) -> Copy {
        Copy {
            cs,
            version: raw_version & !VERSION_ON_REMOVED_DISK,
            on_removal_disk: raw_version & VERSION_ON_REMOVED_DISK != 0,
            damaged: false,
            busy: false,
            deleting: false,
        }
    }

    pub fn view(&self) -> CopyView {
        CopyView {
            cs: self.cs,
            version: self.version,
            on_removal_disk: self.on_removal_disk,
            damaged: self.damaged,
            busy: self.busy || self.deleting,
        }
    }
}

pub(crate) struct ChunkEntry {
    pub copies: Vec<Copy>,
    /// The version the namespace last told us (through a command or the
    /// loop); lets `copies()` say "wrong version" without the catalog.
    pub known_version: Option<u32>,
    pub released: bool,
    /// Last time a command for it was issued or its catalog record seen.
    pub touched: Instant,
    /// A replication in flight (destination).
    pub replicating: Option<CsId>,
}

impl ChunkEntry {
    fn new() -> ChunkEntry {
        ChunkEntry {
            copies: Vec::new(),
            known_version: None,
            released: false,
            touched: Instant::now(),
            replicating: None,
        }
    }

    pub fn copy_mut(&mut self, cs: CsId) -> Option<&mut Copy> {
        self.copies.iter_mut().find(|c| c.cs == cs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Create,
    Delete,
    SetVersion,
    Truncate,
    Duplicate,
    DupTrunc,
    Replicate { source: CsId },
}

pub(crate) struct Pending {
    pub kind: OpKind,
    /// Version the copy has after success.
    pub new_version: u32,
    pub waiter: Option<oneshot::Sender<Status>>,
    pub started: Instant,
}

#[derive(Default)]
pub(crate) struct State {
    pub servers: HashMap<CsId, Server>,
    /// Stable ids: an address keeps its id across reconnects.
    pub ids: HashMap<Addr, CsId>,
    pub chunks: BTreeMap<u64, ChunkEntry>,
    pub pending: HashMap<(CsId, u64), Pending>,
    pub released: VecDeque<u64>,
    pub last_disconnect: Option<Instant>,
    pub next_conn: u64,
}

impl State {
    /// The id for a server at `addr`: the one it had, else the one it asks
    /// for if free, else the lowest free. `None` when that address is
    /// connected already.
    pub fn assign_id(&mut self, addr: Addr, hint: CsId) -> Option<CsId> {
        if let Some(&id) = self.ids.get(&addr) {
            return (!self.servers.contains_key(&id)).then_some(id);
        }
        let taken = |id: CsId, s: &State| id == 0 || s.ids.values().any(|v| *v == id);
        let id = if !taken(hint, self) { hint } else { (1..=CsId::MAX).find(|id| !taken(*id, self))? };
        self.ids.insert(addr, id);
        Some(id)
    }

    pub fn entry(&mut self, chunk: u64) -> &mut ChunkEntry {
        self.chunks.entry(chunk).or_insert_with(ChunkEntry::new)
    }

    pub fn add_copy(&mut self, cs: CsId, chunk: u64, raw_version: u32) {
        let copy = Copy::reported(cs, raw_version);
        let e = self.entry(chunk);
        match e.copy_mut(cs) {
            Some(c) => *c = copy,
            None => e.copies.push(copy),
        }
    }

    pub fn remove_copy(&mut self, cs: CsId, chunk: u64) {
        if let Some(e) = self.chunks.get_mut(&chunk) {
            e.copies.retain(|c| c.cs != cs);
            self.forget_if_empty(chunk);
        }
    }

    fn forget_if_empty(&mut self, chunk: u64) {
        let empty = self.chunks.get(&chunk).is_some_and(|e| e.copies.is_empty() && e.replicating.is_none());
        let pending = self.pending.keys().any(|(_, c)| *c == chunk);
        if empty && !pending {
            self.chunks.remove(&chunk);
        }
    }

    pub fn loads(&self) -> Vec<Load> {
        let mut out: Vec<Load> = self
            .servers
            .values()
            .map(|s| Load {
                csid: s.csid,
                registered: s.registered,
                overloaded: s.overloaded,
                used: s.space.used,
                total: s.space.total,
                creations: s.creations,
                rep_in: s.rep_in,
                rep_out: s.rep_out,
                deletions: s.deletions,
            })
            .collect();
        out.sort_by_key(|l| l.csid);
        out
    }

    pub fn any_registered(&self) -> bool {
        self.servers.values().any(|s| s.registered)
    }

    fn counter(&mut self, cs: CsId, kind: OpKind, up: bool) {
        let step = |v: &mut u32| *v = if up { *v + 1 } else { v.saturating_sub(1) };
        if let OpKind::Replicate { source } = kind {
            if let Some(s) = self.servers.get_mut(&source) {
                step(&mut s.rep_out);
            }
        }
        if let Some(s) = self.servers.get_mut(&cs) {
            match kind {
                OpKind::Create | OpKind::Duplicate | OpKind::DupTrunc => step(&mut s.creations),
                OpKind::Delete => step(&mut s.deletions),
                OpKind::Replicate { .. } => step(&mut s.rep_in),
                OpKind::SetVersion | OpKind::Truncate => {}
            }
        }
    }

    /// Records and sends a command. False when the server is gone, its
    /// link closed or it already has a command in flight for `chunk`.
    pub fn start(&mut self, cs: CsId, chunk: u64, pending: Pending, msg: MaToCs) -> bool {
        if self.pending.contains_key(&(cs, chunk)) {
            return false;
        }
        let Some(server) = self.servers.get(&cs) else { return false };
        if server.tx.send(msg).is_err() {
            return false;
        }
        let kind = pending.kind;
        self.pending.insert((cs, chunk), pending);
        self.counter(cs, kind, true);
        let e = self.entry(chunk);
        e.touched = Instant::now();
        if let Some(c) = e.copy_mut(cs) {
            match kind {
                OpKind::Delete => c.deleting = true,
                OpKind::SetVersion | OpKind::Truncate => c.busy = true,
                _ => {}
            }
        }
        if let OpKind::Replicate { .. } = kind {
            e.replicating = Some(cs);
        }
        true
    }

    /// Applies a reply (or a timeout or disconnect, as a failure status) to
    /// the command in flight for `chunk` on `cs`, if it is of `kind`.
    pub fn finish(&mut self, cs: CsId, chunk: u64, kind: fn(&OpKind) -> bool, status: Status) {
        match self.pending.get(&(cs, chunk)) {
            Some(p) if kind(&p.kind) => {}
            _ => {
                if status.is_ok() && kind(&OpKind::Delete) {
                    self.remove_copy(cs, chunk);
                }
                return;
            }
        }
        let Some(p) = self.pending.remove(&(cs, chunk)) else { return };
        self.counter(cs, p.kind, false);
        let ok = status.is_ok();
        let e = self.entry(chunk);
        match p.kind {
            OpKind::Create | OpKind::Duplicate | OpKind::DupTrunc | OpKind::Replicate { .. } => {
                if matches!(p.kind, OpKind::Replicate { .. }) {
                    e.replicating = None;
                }
                if ok {
                    let copy = Copy::reported(cs, p.new_version);
                    match e.copy_mut(cs) {
                        Some(c) => *c = copy,
                        None => e.copies.push(copy),
                    }
                }
            }
            OpKind::SetVersion | OpKind::Truncate => {
                if let Some(c) = e.copy_mut(cs) {
                    c.busy = false;
                    if ok {
                        c.version = p.new_version;
                    } else {
                        c.damaged = true;
                    }
                }
            }
            OpKind::Delete => {
                if ok || status == Status::NOCHUNK {
                    e.copies.retain(|c| c.cs != cs);
                } else if let Some(c) = e.copy_mut(cs) {
                    // Tried again by a later pass.
                    c.deleting = false;
                    c.damaged = true;
                }
            }
        }
        if let Some(w) = p.waiter {
            let _ = w.send(status);
        }
        self.forget_if_empty(chunk);
    }

    /// Drops a server's connection: its copies vanish, its commands fail.
    pub fn disconnect(&mut self, cs: CsId, conn: u64) {
        if self.servers.get(&cs).is_none_or(|s| s.conn != conn) {
            return;
        }
        let keys: Vec<(CsId, u64)> = self.pending.keys().filter(|(c, _)| *c == cs).copied().collect();
        for (c, chunk) in keys {
            self.finish(c, chunk, |_| true, Status::DISCONNECTED);
        }
        self.servers.remove(&cs);
        let touched: Vec<u64> =
            self.chunks.iter().filter(|(_, e)| e.copies.iter().any(|c| c.cs == cs)).map(|(id, _)| *id).collect();
        for chunk in touched {
            self.remove_copy(cs, chunk);
        }
        self.last_disconnect = Some(Instant::now());
    }

    /// Fails commands nobody waits for (the loop's) once older than
    /// `limit`, and those whose waiter went away once older than `waited`.
    /// Commands with a waiter are timed out by that waiter.
    pub fn expire(&mut self, now: Instant, limit: std::time::Duration, waited: std::time::Duration) {
        let old: Vec<(CsId, u64)> = self
            .pending
            .iter()
            .filter(|(_, p)| {
                let age = now.duration_since(p.started);
                match &p.waiter {
                    None => age > limit,
                    Some(w) => w.is_closed() && age > waited,
                }
            })
            .map(|(k, _)| *k)
            .collect();
        for (cs, chunk) in old {
            tracing::warn!("chunk {chunk:016X}: no answer from server {cs}, command given up");
            self.finish(cs, chunk, |_| true, Status::NOTDONE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(st: &mut State, cs: CsId) -> mpsc::UnboundedReceiver<MaToCs> {
        let (tx, rx) = mpsc::unbounded_channel();
        st.servers.insert(
            cs,
            Server {
                csid: cs,
                conn: cs as u64,
                addr: Addr { ip: 0x0A00_0001, port: 9422 + cs },
                version: 0,
                labelmask: 0,
                space: Space::default(),
                load: 0,
                overloaded: false,
                errors: 0,
                connected_since: SystemTime::now(),
                registered: true,
                tx,
                creations: 0,
                rep_in: 0,
                rep_out: 0,
                deletions: 0,
            },
        );
        rx
    }

    fn pending(kind: OpKind, new_version: u32) -> Pending {
        Pending { kind, new_version, waiter: None, started: Instant::now() }
    }

    #[test]
    fn ids_are_stable_per_address_and_honour_free_hints() {
        let mut st = State::default();
        let a = Addr { ip: 1, port: 1 };
        let b = Addr { ip: 2, port: 1 };
        assert_eq!(st.assign_id(a, 7), Some(7));
        assert_eq!(st.assign_id(b, 7), Some(1), "7 is taken");
        assert_eq!(st.assign_id(a, 0), Some(7), "same address, same id");
        let _rx = server(&mut st, 7);
        assert_eq!(st.assign_id(a, 0), None, "already connected");
    }

    #[test]
    fn replies_update_copies_and_counters() {
        let mut st = State::default();
        let mut rx = server(&mut st, 1);
        st.add_copy(1, 10, 3 | VERSION_ON_REMOVED_DISK);
        assert!(st.chunks[&10].copies[0].on_removal_disk);
        st.add_copy(1, 10, 3);
        assert!(st.start(1, 10, pending(OpKind::SetVersion, 4), MaToCs::Nop));
        assert!(!st.start(1, 10, pending(OpKind::Delete, 0), MaToCs::Nop), "one command per chunk");
        assert!(st.chunks[&10].copies[0].busy);
        st.finish(1, 10, |k| *k == OpKind::SetVersion, Status::OK);
        assert_eq!(st.chunks[&10].copies[0].version, 4);
        assert!(st.start(1, 10, pending(OpKind::Delete, 0), MaToCs::Nop));
        assert_eq!(st.servers[&1].deletions, 1);
        st.finish(1, 10, |k| *k == OpKind::Delete, Status::OK);
        assert_eq!(st.servers[&1].deletions, 0);
        assert!(!st.chunks.contains_key(&10), "no copies left, entry forgotten");
        assert_eq!(rx.try_recv().ok(), Some(MaToCs::Nop));
    }

    #[test]
    fn failed_set_version_damages_and_disconnect_fails_waiters() {
        let mut st = State::default();
        let _rx1 = server(&mut st, 1);
        let _rx2 = server(&mut st, 2);
        st.add_copy(1, 5, 1);
        st.add_copy(2, 5, 1);
        st.start(1, 5, pending(OpKind::SetVersion, 2), MaToCs::Nop);
        st.finish(1, 5, |k| *k == OpKind::SetVersion, Status::IO);
        assert!(st.chunks[&5].copies[0].damaged);
        let (tx, mut rx) = oneshot::channel();
        st.start(2, 6, Pending { waiter: Some(tx), ..pending(OpKind::Replicate { source: 1 }, 1) }, MaToCs::Nop);
        assert_eq!((st.servers[&2].rep_in, st.servers[&1].rep_out), (1, 1));
        st.disconnect(2, 2);
        assert_eq!(rx.try_recv(), Ok(Status::DISCONNECTED));
        assert_eq!(st.servers[&1].rep_out, 0);
        assert_eq!(st.chunks[&5].copies.len(), 1);
        assert!(st.last_disconnect.is_some());
    }

    #[test]
    fn stale_commands_expire() {
        let mut st = State::default();
        let _rx = server(&mut st, 1);
        st.add_copy(1, 9, 1);
        st.start(1, 9, pending(OpKind::Truncate, 2), MaToCs::Nop);
        let later = Instant::now() + std::time::Duration::from_secs(5);
        st.expire(later, std::time::Duration::from_secs(60), std::time::Duration::from_secs(1));
        assert_eq!(st.pending.len(), 1, "the loop's commands get the long limit");
        st.expire(later, std::time::Duration::from_secs(1), std::time::Duration::from_secs(60));
        assert!(st.pending.is_empty());
        assert!(st.chunks[&9].copies[0].damaged, "unknown outcome makes the copy invalid");

        let (tx, rx) = oneshot::channel();
        st.start(1, 9, Pending { waiter: Some(tx), ..pending(OpKind::Delete, 0) }, MaToCs::Nop);
        st.expire(later, std::time::Duration::ZERO, std::time::Duration::ZERO);
        assert_eq!(st.pending.len(), 1, "a live waiter times out by itself");
        drop(rx);
        st.expire(later, std::time::Duration::ZERO, std::time::Duration::ZERO);
        assert!(st.pending.is_empty(), "an abandoned waiter's command expires");
    }
}
