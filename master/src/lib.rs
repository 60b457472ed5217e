//! The elkfs master: the namespace and chunk catalogue of a MooseFS 3.0
//! compatible file system, serving chunkservers (9420), clients (9421) and
//! metaloggers (9419).
//!
//! Shape: [`meta`] is a deterministic state machine; the only way to change
//! it is a changelog record, applied the same way live and on replay.
//! [`cluster`] is the volatile view of chunkservers and the copies they hold.

pub mod admin;
pub mod admin_cli;
pub mod error;

pub use error::{Error, Result};
