//! What `elkfs local` prints once the cluster is up: where each process
//! runs and keeps its files, how to look at it and how to stop it, then
//! the master's own view (the `elkfs admin` table) as proof of health.

use std::fmt::Write as _;

use elkfs_master::admin_cli::{self, Report};

use super::mount::Client;
use super::ports::Ports;
use super::supervisor::Cluster;

/// The summary text, ending with a newline.
pub fn render(cluster: &Cluster, ports: &Ports, client: Option<&Client>, report: &Report) -> String {
    let l = &cluster.layout;
    let pid = |v: &[super::child::Child]| v.first().map_or(0, |c| c.pid());
    let mut s = String::new();
    // Writing to a String cannot fail; the results are ignored below.
    let _ = writeln!(s, "\nelkfs local: a whole cluster on 127.0.0.1, everything under {}", l.dir.display());
    let _ = writeln!(
        s,
        "  master        pid {:<7} ports {} (metaloggers), {} (chunkservers), {} (clients); metadata in {}",
        pid(&cluster.master),
        ports.metalogger,
        ports.chunkserver,
        ports.client,
        l.master_data.display()
    );
    let _ = writeln!(
        s,
        "  metalogger    pid {:<7} metadata copy in {}",
        pid(&cluster.metalogger),
        l.metalogger_data.display()
    );
    for ((c, files), port) in cluster.chunkservers.iter().zip(&l.chunkservers).zip(&ports.chunkservers) {
        let _ = writeln!(s, "  {:<13} pid {:<7} port {port}; chunks in {}", c.name(), c.pid(), files.hdd.display());
    }
    match client {
        Some(client) => {
            let _ = writeln!(
                s,
                "  mount         pid {:<7} {} (client: {})",
                pid(&cluster.mount),
                l.mountpoint.display(),
                client.describe()
            );
        }
        None => {
            let _ = writeln!(s, "  mount         none (--no-mount); mount it yourself with");
            let _ = writeln!(s, "                mfsmount MOUNTPOINT -o mfsmaster=127.0.0.1,mfsport={}", ports.client);
        }
    }
    let _ = writeln!(s, "  logs          {}/*.log", l.logs.display());
    let _ = writeln!(s, "  state         elkfs admin -H 127.0.0.1 -P {}", ports.client);
    let _ = writeln!(
        s,
        "  stop          Ctrl-C here (or kill -TERM {}): unmounts, then stops every daemon; the data stays",
        std::process::id()
    );
    let _ = writeln!(s, "\n{}", admin_cli::render_table(report));
    s
}
