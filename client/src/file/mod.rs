//! Files as byte ranges over chunks: reads with retries on other copies,
//! write-back buffers streamed out a chunk write at a time, and the chunk
//! location cache.

mod buffer;
mod chunkwrite;
mod fetch;
mod io;
mod lanes;
mod readahead;
mod writer;

pub use buffer::WriteBuffer;
pub use io::{Files, FilesConfig};
pub use readahead::ReadBytes;
