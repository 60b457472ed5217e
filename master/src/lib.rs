//! The elkfs master: the namespace and chunk catalogue of a MooseFS 3.0
//! compatible file system, serving chunkservers (9420), clients (9421) and
//! metaloggers (9419); and the metalogger, which keeps a live copy.
//!
//! Shape: [`meta`] is a deterministic state machine; the only way to change
//! it is a changelog record, applied the same way live and on replay
//! ([`shared::Shared::change`]). [`cluster`] is the volatile view of
//! chunkservers and the copies they hold. [`changelog`] and [`store`] make
//! the records durable and load them back.

pub mod admin;
pub mod admin_cli;
pub mod changelog;
mod clserv;
pub mod cluster;
pub mod config;
pub mod error;
pub mod exports;
pub mod meta;
pub mod metalogger;
mod mlserv;
pub mod monitor;
mod net;
pub mod server;
pub mod shared;
pub mod store;

pub use error::{Error, Result};
