//! The quick bench end to end: engine and fio on a disk-backed temp folder,
//! JSON on the last line with all four scenarios and positive figures.
//!
//! Needs fio (`apt-get install -y fio`); without it the test fails and says
//! so, because a bench that cannot run is a broken bench.

use std::path::Path;

use clap::Parser;
use elkfs_bench::{fio, EngineArgs};
use serde_json::Value;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: EngineArgs,
}

#[test]
fn quick_bench_reports_every_scenario() {
    if let Err(e) = fio::check_installed(Path::new("fio")) {
        panic!("this test runs fio, which is missing: install it (apt-get install -y fio): {e:#}");
    }
    // /var/tmp, not /tmp: /tmp may be tmpfs, which refuses O_DIRECT.
    let parent = tempfile::Builder::new().prefix("elkfs-bench-test").tempdir_in("/var/tmp").unwrap();
    let dir = parent.path().join("bench");
    let dir_arg = dir.to_str().unwrap();
    let args = Cli::try_parse_from(["bench", "--dir", dir_arg, "--quick", "--json"]).unwrap().args;
    let mut out = Vec::new();
    let report = elkfs_bench::run(&args, &mut out).unwrap();
    assert_eq!(report.summaries.len(), 4);
    let text = String::from_utf8(out).unwrap();
    let last = text.lines().last().unwrap();
    let json: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {text}"));
    for (scenario, unit) in
        [("seq_write", "mib_s"), ("seq_read", "mib_s"), ("rand_read_4k", "iops"), ("rand_write_64k", "iops")]
    {
        let entry = &json[scenario];
        for field in [format!("elkfs_{unit}"), format!("fio_{unit}"), "ratio".into(), "elkfs_p99_us".into()] {
            let value = entry[&field].as_f64().unwrap_or(0.0);
            assert!(value > 0.0, "{scenario}.{field} = {value}, want > 0: {last}");
        }
        let (min, max) = (entry["ratio_min"].as_f64().unwrap(), entry["ratio_max"].as_f64().unwrap());
        assert!(min <= max, "{scenario}: ratio_min {min} > ratio_max {max}");
    }
    assert!(json["crc_cost"]["fio_64k_iops"].as_f64().unwrap() > 0.0, "{last}");
    assert!(!dir.exists(), "the bench removes its folders");
}
