//! Files as byte ranges over chunks: reads with retries on other copies,
//! write-back buffers flushed as whole chunk writes, and the chunk
//! location cache.

mod buffer;
mod io;

pub use buffer::WriteBuffer;
pub use io::{Files, FilesConfig};
