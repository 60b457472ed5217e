//! Read access to sessions for monitoring.

use super::{Meta, Session};

impl Meta {
    /// Every session with the number of files it holds open.
    pub fn sessions(&self) -> Vec<(u32, Session, u32)> {
        self.sessions.iter().map(|(&id, s)| (id, s.clone(), self.open.of_session(id).len() as u32)).collect()
    }
}
