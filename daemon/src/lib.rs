//! Pieces every elkfs daemon (chunkserver, master, metalogger) needs and
//! that must behave the same in all of them: the MooseFS configuration file
//! syntax and the switch to `WORKING_USER`/`WORKING_GROUP`.

pub mod cfgfile;
mod error;
pub mod privs;

pub use error::{Error, Result};
