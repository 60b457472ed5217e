//! Data requests on the simulated disk: reads, writes, fsync and the
//! faults drawn for them.

use super::*;

impl State {
    /// Bytes held by files that still exist: named ones and open ones.
    pub(super) fn used_bytes(&self) -> u64 {
        self.inodes
            .values()
            .filter(|inode| inode.links > 0 || inode.open > 0)
            .map(|inode| inode.volatile.len() as u64)
            .sum()
    }

    /// Fails `ENOSPC` when growing a file by `growth` bytes would pass the capacity.
    pub(super) fn check_space(&self, growth: u64) -> io::Result<()> {
        match self.capacity {
            Some(capacity) if growth > 0 && self.used_bytes() + growth > capacity => Err(errno(libc::ENOSPC)),
            _ => Ok(()),
        }
    }

    pub(super) fn draw(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.rng.random_bool(probability)
    }

    pub(super) fn check_handle(&self, file: &SimFile) -> io::Result<()> {
        if file.generation != self.generation || !self.inodes.contains_key(&file.ino) {
            return Err(errno(libc::EBADF));
        }
        Ok(())
    }

    pub(super) fn run(&mut self, file: &SimFile, req: &mut IoReq) -> io::Result<usize> {
        self.check_handle(file)?;
        if file.direct_io && req.op != IoOp::Fsync {
            check_aligned(req)?;
        }
        match req.op {
            IoOp::Read => self.read(file.ino, req.offset, &mut req.bufs),
            IoOp::Write => self.write(file.ino, req.offset, &req.bufs),
            IoOp::Fsync => self.fsync(file.ino),
        }
    }

    pub(super) fn read(&mut self, ino: Ino, offset: u64, bufs: &mut [Buf]) -> io::Result<usize> {
        if self.fail_reads {
            return Err(errno(libc::EIO));
        }
        if self.draw(self.faults.read_eio) {
            self.injected.read_eio += 1;
            return Err(errno(libc::EIO));
        }
        let data = &self.inode_mut(ino)?.volatile;
        let mut pos = offset;
        let mut moved = 0;
        for buf in bufs.iter_mut() {
            let start = pos.min(data.len() as u64) as usize;
            let take = buf.len().min(data.len() - start);
            buf[..take].copy_from_slice(&data[start..start + take]);
            moved += take;
            pos += take as u64;
            if take < buf.len() {
                break;
            }
        }
        Ok(moved)
    }

    pub(super) fn write(&mut self, ino: Ino, offset: u64, bufs: &[Buf]) -> io::Result<usize> {
        if self.fail_writes {
            return Err(errno(libc::EIO));
        }
        if self.draw(self.faults.write_eio) {
            self.injected.write_eio += 1;
            return Err(errno(libc::EIO));
        }
        if self.draw(self.faults.write_enospc) {
            self.injected.write_enospc += 1;
            return Err(errno(libc::ENOSPC));
        }
        let len: u64 = bufs.iter().map(|buf| buf.len() as u64).sum();
        let size = self.inode_mut(ino)?.volatile.len() as u64;
        self.check_space((offset + len).saturating_sub(size))?;
        let torn = self.draw(self.faults.torn_write);
        self.injected.torn_write += u64::from(torn);
        let keep = if torn { self.torn_prefix(offset, len) } else { len };
        let data = Arc::make_mut(&mut self.inode_mut(ino)?.volatile);
        let end = (offset + keep) as usize;
        // A write that lands nothing does not extend the file either.
        if keep > 0 && data.len() < end {
            data.resize(end, 0);
        }
        let mut pos = offset as usize;
        for buf in bufs {
            let take = buf.len().min(end.saturating_sub(pos));
            data[pos..pos + take].copy_from_slice(&buf[..take]);
            pos += take;
        }
        if keep < len {
            return Err(errno(libc::EIO));
        }
        Ok(len as usize)
    }

    /// Bytes of a torn write that land: up to a random sector boundary of
    /// the file strictly before the write's end. Worked example: offset
    /// 4096, 8192 bytes; boundaries 4096, 4608, …, 11776 are candidates, so
    /// 0 to 7680 bytes land.
    pub(super) fn torn_prefix(&mut self, offset: u64, len: u64) -> u64 {
        let first = offset.div_ceil(SECTOR) * SECTOR;
        let end = offset + len;
        if first >= end {
            return 0;
        }
        let count = (end - 1 - first) / SECTOR + 1;
        first + self.rng.random_range(0..count) * SECTOR - offset
    }

    pub(super) fn fsync(&mut self, ino: Ino) -> io::Result<usize> {
        if self.fail_writes {
            return Err(errno(libc::EIO));
        }
        if self.draw(self.faults.fsync_eio) {
            self.injected.fsync_eio += 1;
            return Err(errno(libc::EIO));
        }
        let inode = self.inode_mut(ino)?;
        inode.durable = inode.volatile.clone();
        Ok(0)
    }
}

/// O_DIRECT's rule: offset and every length a multiple of 4096.
fn check_aligned(req: &IoReq) -> io::Result<()> {
    let align = IO_ALIGN as u64;
    let bad_buf = req
        .bufs
        .iter()
        .any(|buf| !buf.len().is_multiple_of(IO_ALIGN) || !(buf.as_ptr() as usize).is_multiple_of(IO_ALIGN));
    if !req.offset.is_multiple_of(align) || bad_buf {
        return Err(errno(libc::EINVAL));
    }
    Ok(())
}
