//! `elkfs admin` against a real MooseFS 3.0.117 master: a master, one real
//! chunkserver and a mount in a private namespace; `elkfs admin --json` run
//! inside it must list the chunkserver with its disk space and the mount's
//! session. The master's raw reply bytes are fetched too (a small Python
//! client, as mfscli itself is Python) and must decode with our decoders
//! and re-encode to the same bytes; they are printed as hex so fixtures in
//! `proto/tests/admin_real.rs` can be refreshed from a run.
//! Needs root and the MooseFS 3.0 Debian packages.

use std::ffi::OsStr;
use std::time::Duration;

use elkfs_harness::{elkfs_binary, wait_until, Cluster};
use elkfs_master::admin_cli::Report;
use elkfs_proto::admin::AdminReply;
use elkfs_proto::frame::Encode;

/// Sends each monitoring request on one connection and prints
/// `KIND HEX` per reply.
const RAW_CLIENT: &str = r#"
import socket, struct, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 10)
s.settimeout(10)
def recv(n):
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise SystemExit('connection closed')
        b += c
    return b
for t, d in [(510, b''), (500, b''), (522, b''), (508, b'\x04'), (516, b''), (512, b'\x00'), (514, b''), (528, b''), (544, b'\x01')]:
    s.sendall(struct.pack('>LL', t, len(d)) + d)
    k, l = struct.unpack('>LL', recv(8))
    print(k, recv(l).hex())
"#;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

#[test]
fn elkfs_admin_reads_a_real_master() {
    let c = Cluster::builder().real_chunkservers(1).mount(true).start();
    let (host, port) = (c.addr().to_string(), c.ports().client.to_string());
    let cs_addr = c.chunkservers()[0].addr();

    let elkfs = elkfs_binary();
    let args: Vec<&OsStr> =
        [OsStr::new("admin"), "-H".as_ref(), host.as_ref(), "-P".as_ref(), port.as_ref(), "--json".as_ref()].to_vec();
    // The master sums chunkserver space once a second: wait for it.
    let report = wait_until("the master to count the chunkserver's space", Duration::from_secs(30), || {
        let out = c.tool(elkfs.to_str().expect("utf-8 path"), &args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "elkfs admin failed: {}\n{stdout}\n{stderr}", out.status);
        let report: Report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{stdout}"));
        if report.master.total_space_bytes > 0 && !report.sessions.is_empty() {
            Ok(report)
        } else {
            Err(format!("{report:?}"))
        }
    });
    assert!(report.master.version.starts_with("3.0."), "{report:?}");
    assert_eq!(report.chunkservers.len(), 1, "{report:?}");
    let cs = &report.chunkservers[0];
    assert_eq!(format!("{}:{}", cs.ip, cs.port), cs_addr);
    assert!(cs.connected && cs.total_bytes > 0 && cs.used_bytes <= cs.total_bytes, "{cs:?}");
    assert!(report.master.total_space_bytes > 0, "{report:?}");
    assert!(!report.sessions.is_empty(), "the mount has a session: {report:?}");

    let table = c.tool(elkfs.to_str().expect("utf-8 path"), &args[..5]);
    let text = String::from_utf8_lossy(&table.stdout);
    eprintln!("{text}");
    assert!(table.status.success() && text.contains(&cs_addr), "table output:\n{text}");

    let raw = c.tool("python3", &[OsStr::new("-c"), RAW_CLIENT.as_ref(), host.as_ref(), port.as_ref()]);
    let raw_out = String::from_utf8_lossy(&raw.stdout);
    assert!(raw.status.success(), "raw client failed:\n{raw_out}\n{}", String::from_utf8_lossy(&raw.stderr));
    let mut kinds = Vec::new();
    for line in raw_out.lines() {
        eprintln!("[real reply] {line}");
        let (kind, hex) = line.split_once(' ').unwrap_or((line, ""));
        let kind: u32 = kind.parse().expect("reply kind");
        let payload = unhex(hex);
        let reply = AdminReply::decode(kind, &payload).unwrap_or_else(|e| panic!("reply {kind}: {e}"));
        let mut again = Vec::new();
        reply.encode_payload(&mut again);
        assert_eq!(again, payload, "reply {kind} re-encodes differently");
        kinds.push(kind);
    }
    assert_eq!(kinds, [511, 501, 523, 509, 517, 513, 515, 529, 545]);
}
