//! `elkfs bench meta --quick` end to end: the real mfsmaster and the elkfs
//! master with changelog fsync off and on, each in its own cluster; the
//! JSON on the last line has every phase of both paths for the three
//! masters with ops/s > 0, and a memory figure for each.
//!
//! Needs root, the MooseFS 3.0 tools (mfsmaster, mfsmount) and the `elkfs`
//! binary (`cargo build --bin elkfs`); without them the test fails and says
//! which is missing, like the other cluster tests. About 15 s on an idle
//! machine; every wait inside is bounded.

use clap::Parser;
use elkfs_bench::MetaArgs;
use serde_json::Value;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: MetaArgs,
}

#[test]
fn quick_meta_bench_reports_every_phase_for_every_master() {
    elkfs_harness::require_root();
    elkfs_harness::require_tools(&["ip", "nsenter", "mfsmaster", "mfsmount", "fusermount3"]);
    let elkfs = elkfs_harness::elkfs_binary();
    assert!(elkfs.is_file(), "no elkfs binary at {}: run `cargo build --bin elkfs`", elkfs.display());
    // /var/tmp, not /tmp: the fsync=1 master should pay a real disk's fsync.
    let parent = tempfile::Builder::new().prefix("elkfs-bench-meta-test").tempdir_in("/var/tmp").unwrap();
    let dir = parent.path().join("meta");
    let dir_arg = dir.to_str().unwrap();
    let args = Cli::try_parse_from(["meta", "--dir", dir_arg, "--quick", "--json"]).unwrap().args;
    let mut out = Vec::new();
    let report = elkfs_bench::meta::run(&args, &mut out).unwrap_or_else(|e| panic!("bench meta --quick: {e:#}"));
    assert_eq!(report.results.len(), 3, "three masters measured");
    let text = String::from_utf8(out).unwrap();
    let last = text.lines().last().unwrap();
    let json: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {text}"));
    for path in ["direct", "mount"] {
        for phase in ["create", "stat", "rename", "unlink"] {
            let entry = &json[format!("{path}_{phase}")];
            for master in ["mfsmaster", "elkfs_fsync0", "elkfs_fsync1"] {
                let ops_s = entry[format!("{master}_ops_s")].as_f64().unwrap_or(0.0);
                assert!(ops_s > 0.0, "{path}_{phase}.{master}_ops_s = {ops_s}, want > 0: {last}");
            }
            assert!(entry["ratio_fsync0"].as_f64().unwrap() > 0.0, "{path}_{phase}: {last}");
        }
    }
    for master in ["mfsmaster", "elkfs_fsync0", "elkfs_fsync1"] {
        let files = json["rss"][format!("{master}_files")].as_u64().unwrap_or(0);
        assert_eq!(files, 20_000, "{master} filled every file: {last}");
        let rss = json["rss"][format!("{master}_rss_after")].as_u64().unwrap_or(0);
        assert!(rss > 0, "{master} has a resident set: {last}");
    }
    assert!(text.contains("direct create") && text.contains("RSS B/file"), "{text}");
    assert!(!dir.exists(), "the bench removes the folder it made");
}
