//! The elkfs chunkserver: serves the chunk engine to MooseFS 3.0 masters,
//! clients and other chunkservers, as a drop-in for `mfschunkserver`.
//!
//! Data port connections ([`dataserv`]) run reads ([`read`]) and write
//! chains ([`write`]); the master link ([`masterlink`]) registers, obeys
//! commands and reports; [`replicate`] pulls copies; [`scrub`] tests chunks
//! in the background. [`server`] puts them together.

pub mod config;
mod dataserv;
pub mod error;
pub mod faults;
mod masterlink;
pub mod metrics;
mod net;
mod read;
mod replicate;
mod scrub;
pub mod server;
mod status;
mod write;

pub use error::{Error, Result};
pub use server::{run, Running};
