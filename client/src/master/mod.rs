//! Everything spoken with the master: the session ([`Master`]) and the
//! typed metadata calls on it ([`calls`]).

mod amtime;
pub mod calls;
mod link;
mod session;

pub use calls::{DirEntry, NewAttrs, SetAttr, Statfs};
pub use link::Target;
pub use session::{Location, Master, Pending, PushHandler};
