//! Metaloggers and replacing the master: what an operator does when the
//! master machine dies for good.

use std::path::{Path, PathBuf};

use crate::moosefs::{self, MasterKind};
use crate::proc::{tool_path, Daemon};
use crate::{elkfs_binary, Cluster, LISTEN_LIMIT};

impl Cluster {
    /// Starts a metalogger (`elkfs metalogger` for an elkfs master, the
    /// real `mfsmetalogger` otherwise) following the master; returns its
    /// data folder.
    pub fn start_metalogger(&mut self) -> PathBuf {
        let n = self.metaloggers.len();
        let dir = self.dir().join(format!("ml{n}"));
        let cfg = moosefs::write_metalogger(&dir, self.addr(), self.ports.metalogger);
        let cfg_arg = cfg.as_os_str().to_os_string();
        let (program, args) = match self.master_kind {
            MasterKind::Elkfs => (elkfs_binary(), vec!["metalogger".into(), "-c".into(), cfg_arg]),
            MasterKind::Real => (tool_path("mfsmetalogger"), vec!["-f".into(), "-c".into(), cfg_arg, "start".into()]),
        };
        let spec = self.spec(&format!("ml{n}"), program, args);
        self.metaloggers.push(Daemon::spawn(spec));
        self.note(&format!("metalogger {n} started"));
        dir.join("data")
    }

    /// Kills the master for good and starts a new one on a new address,
    /// from the metadata in `data` (a metalogger's folder). Chunkservers are
    /// pointed at it (config rewritten, restarted); the mount, if any, is
    /// remounted from the new address. Returns the new master's address.
    pub fn replace_master(&mut self, data: &Path) -> std::net::Ipv4Addr {
        if let Some(mut old) = self.master.take() {
            old.kill();
        }
        let ip = self.netns.add_address();
        self.master_ip = Some(ip);
        let dir = self.dir().join("master2");
        let cfg = moosefs::write_master_on(&dir, data, ip, self.ports, &[]);
        let program = elkfs_binary();
        let spec = self.spec("master2", program, vec!["master".into(), "-c".into(), cfg.into()]);
        let master = self.master.insert(Daemon::spawn(spec));
        master.wait_listening(self.ports.chunkserver, LISTEN_LIMIT);
        master.wait_listening(self.ports.client, LISTEN_LIMIT);
        self.note(&format!("new master on {ip} from {}", data.display()));
        for i in 0..self.chunkservers.len() {
            let cs = &mut self.chunkservers[i];
            moosefs::repoint_chunkserver(cs.cfg(), ip);
            cs.daemon.stop();
            cs.daemon.start();
            let port = cs.port;
            cs.daemon.wait_listening(port, LISTEN_LIMIT);
        }
        if self.has_mount() {
            self.remount();
        }
        ip
    }
}
