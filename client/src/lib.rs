//! The elkfs client: a MooseFS 3.0 session with the master, chunk data
//! read from and written to chunkservers, and the FUSE mount built on them.
//!
//! Layers, each using only the one below: [`master`] (session and metadata
//! calls), [`data`] (the chunkserver data port), [`file`] (file ranges over
//! chunks, write-back buffers), [`fuse`] (the kernel's requests).

pub mod data;
pub mod error;
pub mod file;
pub mod fuse;
pub mod master;
pub mod mount;

pub use error::{Error, Result};
pub use mount::{run, MountOptions};
