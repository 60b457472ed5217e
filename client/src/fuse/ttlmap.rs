//! A map whose entries count for a fixed time, bounded in size: what the
//! mount's small caches (groups, attributes, access rights) are made of.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub struct TtlMap<K, V> {
    ttl: Duration,
    /// Entries kept before expired ones are swept (and, if still full,
    /// all dropped).
    max: usize,
    map: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlMap<K, V> {
    pub fn new(ttl: Duration, max: usize) -> TtlMap<K, V> {
        assert!(max > 0, "a cache holds at least one entry");
        TtlMap { ttl, max, map: Mutex::new(HashMap::new()) }
    }

    pub fn put(&self, key: K, value: V) {
        let mut map = self.lock();
        if map.len() >= self.max {
            let ttl = self.ttl;
            map.retain(|_, (_, at)| at.elapsed() < ttl);
            if map.len() >= self.max {
                map.clear();
            }
        }
        map.insert(key, (value, Instant::now()));
    }

    /// The value put less than `ttl` ago.
    pub fn get(&self, key: &K) -> Option<V> {
        let map = self.lock();
        let (value, at) = map.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    pub fn retain(&self, mut keep: impl FnMut(&K) -> bool) {
        self.lock().retain(|k, _| keep(k));
    }

    pub fn remove(&self, key: &K) {
        self.lock().remove(key);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (V, Instant)>> {
        // Entries are replaced in one statement: a panicking holder leaves
        // nothing half-written.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_size_stays_bounded() {
        let m = TtlMap::new(Duration::from_millis(100), 2);
        m.put(1, "a");
        assert_eq!(m.get(&1), Some("a"));
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(m.get(&1), None, "expired");
        m.put(2, "b");
        m.put(3, "c");
        assert_eq!(m.get(&2), Some("b"), "the expired entry was swept, not the fresh one");
        m.put(4, "d");
        assert_eq!((m.get(&2), m.get(&4)), (None, Some("d")), "full of fresh entries: emptied");
        m.retain(|k| *k != 4);
        assert_eq!(m.get(&4), None);
    }
}
