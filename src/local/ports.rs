//! Loopback ports of a local cluster: the MooseFS defaults (9419 to 9421
//! for the master, 9422 and up for the chunkservers) when they are free,
//! so `mfscli` and `elkfs admin` work without `-P`; otherwise ports the
//! kernel hands out.
//!
//! A port found free can be taken by someone else before the daemon binds
//! it; the daemon then fails to start and says so in its log, which the
//! supervisor prints. No retry: the window is milliseconds.

use std::net::{Ipv4Addr, TcpListener};

/// The MooseFS default first port (the master's metalogger port).
pub const DEFAULT_BASE: u16 = 9419;

/// Every port a local cluster listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ports {
    /// Master port for metaloggers (MATOML).
    pub metalogger: u16,
    /// Master port for chunkservers (MATOCS).
    pub chunkserver: u16,
    /// Master port for clients and tools (MATOCL).
    pub client: u16,
    /// One data port per chunkserver.
    pub chunkservers: Vec<u16>,
}

impl Ports {
    /// `base`, `base+1`, ... for the master then the chunkservers.
    fn consecutive(base: u16, chunkservers: usize) -> Option<Ports> {
        let port = |i: usize| u16::try_from(i).ok().and_then(|i| base.checked_add(i));
        Some(Ports {
            metalogger: port(0)?,
            chunkserver: port(1)?,
            client: port(2)?,
            chunkservers: (0..chunkservers).map(|i| port(3 + i)).collect::<Option<Vec<u16>>>()?,
        })
    }

    /// Every port, master first.
    pub fn all(&self) -> Vec<u16> {
        let mut v = vec![self.metalogger, self.chunkserver, self.client];
        v.extend(&self.chunkservers);
        v
    }
}

/// True when nothing listens on `127.0.0.1:port` now.
fn is_free(port: u16) -> bool {
    port != 0 && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A port the kernel considers free now. The listeners are held until all
/// ports are chosen so that the same port is not handed out twice.
fn any_free(held: &mut Vec<TcpListener>) -> std::io::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = l.local_addr()?.port();
    held.push(l);
    Ok(port)
}

/// Ports from `base` on when all are free, otherwise kernel-chosen ones.
/// The second element says why the consecutive block was not used.
pub fn choose(base: u16, chunkservers: usize) -> std::io::Result<(Ports, Option<String>)> {
    assert!(chunkservers > 0, "a cluster needs at least one chunkserver");
    let why = match Ports::consecutive(base, chunkservers) {
        Some(p) => match p.all().into_iter().find(|&port| !is_free(port)) {
            None => return Ok((p, None)),
            Some(taken) => format!("port {taken} is in use"),
        },
        None => format!("{} ports from {base} do not fit below 65536", 3 + chunkservers),
    };
    let mut held = Vec::new();
    let ports = Ports {
        metalogger: any_free(&mut held)?,
        chunkserver: any_free(&mut held)?,
        client: any_free(&mut held)?,
        chunkservers: (0..chunkservers).map(|_| any_free(&mut held)).collect::<std::io::Result<_>>()?,
    };
    Ok((ports, Some(why)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_block_in_order() {
        let p = Ports::consecutive(9419, 3).expect("fits");
        assert_eq!(p.all(), vec![9419, 9420, 9421, 9422, 9423, 9424]);
        assert_eq!(Ports::consecutive(65534, 1), None);
    }

    #[test]
    fn falls_back_when_a_port_is_taken() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let base = taken.local_addr().expect("addr").port();
        let (p, why) = choose(base, 2).expect("choose");
        assert_eq!(why, Some(format!("port {base} is in use")));
        let mut all = p.all();
        assert!(!all.contains(&base));
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 5, "ports are distinct");
    }
}
