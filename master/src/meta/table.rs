//! The inode table: a vector indexed by inode number.
//!
//! Inode numbers are dense (allocated in order, and freed numbers are
//! reused after [`INODE_REUSE_DELAY`]), so a vector costs one `Node` per
//! number and no hashing, where a hash map costs 1.1× to 2.3× that
//! depending on where its last doubling fell. The vector grows by an
//! eighth at a time for the same reason. Holes left by freed inodes are
//! filled again once their delay has passed.
//!
//! The free list is part of the persistent state: which number the next
//! create gets must be the same on every replica replaying the changelog.

use std::collections::VecDeque;

use super::node::{Inode, Node};

/// Seconds before a freed inode number is handed out again, so a client
/// holding the old number (open file, cached entry) cannot reach a new file
/// through it (MooseFS `INODE_REUSE_DELAY`).
pub const INODE_REUSE_DELAY: u32 = 86_400;

#[derive(Debug, Default)]
pub struct NodeTable {
    slots: Vec<Option<Node>>,
    count: usize,
    /// Freed numbers with the time they were freed, oldest first.
    free: VecDeque<(Inode, u32)>,
}

impl NodeTable {
    pub fn get(&self, inode: &Inode) -> Option<&Node> {
        self.slots.get(*inode as usize).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, inode: &Inode) -> Option<&mut Node> {
        self.slots.get_mut(*inode as usize).and_then(Option::as_mut)
    }

    pub fn contains_key(&self, inode: &Inode) -> bool {
        self.get(inode).is_some()
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Stores `node` at `inode`; returns the node that was there.
    pub fn insert(&mut self, inode: Inode, node: Node) -> Option<Node> {
        let i = inode as usize;
        if i >= self.slots.len() {
            let want = (i + 1).max(self.slots.len() + self.slots.len() / 8 + 64);
            self.slots.reserve_exact(want - self.slots.len());
            self.slots.resize_with(want, || None);
        }
        let old = self.slots[i].replace(node);
        if old.is_none() {
            self.count += 1;
        }
        old
    }

    /// Removes a node; its number becomes reusable `INODE_REUSE_DELAY`
    /// after `now`.
    pub fn remove(&mut self, inode: &Inode, now: u32) -> Option<Node> {
        let old = self.slots.get_mut(*inode as usize).and_then(Option::take);
        if old.is_some() {
            self.count -= 1;
            self.free.push_back((*inode, now));
        }
        old
    }

    /// The number a create at `now` gets: the oldest freed one if its delay
    /// has passed, else `next`.
    pub fn next_free(&self, now: u32, next: Inode) -> Inode {
        match self.free.front() {
            Some(&(inode, freed)) if u64::from(freed) + u64::from(INODE_REUSE_DELAY) <= u64::from(now) => inode,
            _ => next,
        }
    }

    /// Whether `inode` heads the free list.
    pub fn take_free_peek(&self, inode: Inode) -> bool {
        self.free.front().map(|f| f.0) == Some(inode)
    }

    /// The numbers `n` creates in a row at `now` get: due freed ones
    /// first, then `next`, `next + 1`, ….
    pub fn next_free_n(&self, now: u32, next: Inode, n: usize) -> Vec<Inode> {
        let due = |f: &&(Inode, u32)| u64::from(f.1) + u64::from(INODE_REUSE_DELAY) <= u64::from(now);
        let mut out: Vec<Inode> = self.free.iter().take_while(due).take(n).map(|f| f.0).collect();
        let mut i = next;
        while out.len() < n {
            out.push(i);
            i = i.wrapping_add(1);
        }
        out
    }

    /// Takes `inode` off the free list if it heads it (a create used it).
    pub fn take_free(&mut self, inode: Inode) -> bool {
        if self.free.front().map(|f| f.0) == Some(inode) {
            self.free.pop_front();
            return true;
        }
        false
    }

    pub fn free_list(&self) -> impl Iterator<Item = &(Inode, u32)> {
        self.free.iter()
    }

    pub fn push_free(&mut self, inode: Inode, freed: u32) {
        self.free.push_back((inode, freed));
    }

    /// Every node in inode order.
    pub fn iter(&self) -> impl Iterator<Item = (Inode, &Node)> {
        self.slots.iter().enumerate().filter_map(|(i, n)| n.as_ref().map(|n| (i as Inode, n)))
    }

    pub fn values(&self) -> impl Iterator<Item = &Node> {
        self.slots.iter().filter_map(Option::as_ref)
    }
}
