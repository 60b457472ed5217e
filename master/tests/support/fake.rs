//! A scripted chunkserver speaking the master link from the test thread,
//! for exchanges real servers cannot be made to produce on demand
//! (damage reports, failures, silence, garbage mid-session).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use elkfs_proto::frame::{Encode, Header, HEADER_LEN};
use elkfs_proto::master_cs::{Ack, CsToMa, MaToCs, Space};

use super::LOCALHOST;

pub struct FakeCs {
    pub s: TcpStream,
    pub data_port: u16,
    pub csid: u16,
}

pub fn space(total_gib: u64, used_gib: u64) -> Space {
    Space { used: used_gib << 30, total: total_gib << 30, ..Space::default() }
}

pub fn begin(data_port: u16, timeout: u16, space: Space) -> CsToMa {
    CsToMa::RegisterBegin {
        auth: None,
        version: elkfs_proto::VERSION,
        ip: u32::from(LOCALHOST),
        port: data_port,
        timeout,
        csid: 0,
        space,
    }
}

impl FakeCs {
    pub fn connect(master_port: u16, data_port: u16) -> FakeCs {
        let s = TcpStream::connect((LOCALHOST, master_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        FakeCs { s, data_port, csid: 0 }
    }

    /// Registers with `chunks` in one batch and a complete END.
    pub fn register(master_port: u16, data_port: u16, chunks: &[(u64, u32)], space: Space) -> FakeCs {
        let mut cs = FakeCs::connect(master_port, data_port);
        cs.send(&begin(data_port, 0, space));
        match cs.recv() {
            Some(MaToCs::Ack(Ack::Welcome { csid, .. })) => cs.csid = csid,
            other => panic!("expected a welcome, got {other:?}"),
        }
        if !chunks.is_empty() {
            cs.send(&CsToMa::RegisterChunks(chunks.to_vec()));
            assert_eq!(cs.recv(), Some(MaToCs::Ack(Ack::Next)));
        }
        cs.send(&CsToMa::RegisterEnd);
        cs
    }

    pub fn send(&mut self, msg: &CsToMa) {
        self.s.write_all(&msg.to_packet()).unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// The next message other than NOP; `None` when the master closed the
    /// link (or said nothing for 5 s).
    pub fn recv(&mut self) -> Option<MaToCs> {
        loop {
            let mut head = [0u8; HEADER_LEN];
            self.s.read_exact(&mut head).ok()?;
            let h = Header::parse(&head);
            let mut payload = vec![0u8; h.len as usize];
            self.s.read_exact(&mut payload).ok()?;
            match MaToCs::decode(h.kind, &payload).unwrap() {
                MaToCs::Nop => continue,
                m => return Some(m),
            }
        }
    }

    /// True when the master closed the link: a read sees end of file.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 64];
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }

    /// Answers NOP so the master keeps the link; call between long waits.
    pub fn nop(&mut self) {
        self.send(&CsToMa::Nop);
    }
}

impl FakeCs {
    /// Like [`FakeCs::recv`] but gives up after `limit` of silence.
    pub fn recv_within(&mut self, limit: Duration) -> Option<MaToCs> {
        self.s.set_read_timeout(Some(limit)).unwrap();
        let got = self.recv();
        self.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        got
    }
}
