//! The metadata bench's table and one-line JSON object.
//!
//! Rows are phase × path (direct protocol, mfsmount) plus memory; columns
//! the three masters, then elkfs over mfsmaster for each fsync policy with
//! ✓ or ✗ against its target. One run per master: no medians, so the
//! notes in `bench/RESULTS.md` say how much a figure moves between runs.

use std::io::Write;

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::{Master, MasterResults, MetaPlan, Phase, Rate};
use crate::report::{load, num, read_trimmed};
use crate::stats::ratio;

/// elkfs with `CHANGELOG_FSYNC = 0` against mfsmaster, which never fsyncs.
pub const NO_FSYNC_TARGET: f64 = 2.0;
/// elkfs with its safe default against mfsmaster.
pub const FSYNC_TARGET: f64 = 1.0;
/// Resident bytes per file the elkfs master may use.
pub const BYTES_PER_FILE_TARGET: f64 = 200.0;

/// Where and how the bench ran.
#[derive(Debug, Clone)]
pub struct Setting {
    pub moosefs_version: String,
    pub cpus: usize,
    pub kernel: String,
    pub load_before: String,
    pub load_after: String,
}

impl Setting {
    pub fn probe() -> Setting {
        let moosefs_version = std::process::Command::new("mfsmaster")
            .arg("-v")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().nth(1).map(str::to_string))
            .unwrap_or_else(|| "?".into());
        Setting {
            moosefs_version,
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            load_before: load(),
            load_after: String::new(),
        }
    }

    pub fn finish(&mut self) {
        self.load_after = load();
    }
}

/// Which way the phases reached the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Direct,
    Mount,
}

impl Path {
    fn key(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Mount => "mount",
        }
    }
}

/// Everything the metadata bench prints.
#[derive(Debug, Clone)]
pub struct MetaReport {
    pub plan: MetaPlan,
    pub results: Vec<(Master, MasterResults)>,
    pub setting: Setting,
}

fn mark(met: bool) -> &'static str {
    if met {
        "✓"
    } else {
        "✗"
    }
}

impl MetaReport {
    pub fn new(plan: &MetaPlan, results: Vec<(Master, MasterResults)>, setting: Setting) -> MetaReport {
        MetaReport { plan: plan.clone(), results, setting }
    }

    fn of(&self, master: Master) -> Option<&MasterResults> {
        self.results.iter().find(|(m, _)| *m == master).map(|(_, r)| r)
    }

    fn rate(&self, master: Master, path: Path, phase: Phase) -> Rate {
        let Some(r) = self.of(master) else { return Rate::default() };
        let list = if path == Path::Direct { &r.direct } else { &r.mount };
        list.iter().find(|(p, _)| *p == phase).map(|(_, rate)| *rate).unwrap_or_default()
    }

    /// elkfs (`master`) ops/s over mfsmaster's.
    fn speedup(&self, master: Master, path: Path, phase: Phase) -> f64 {
        ratio(self.rate(master, path, phase).ops_s(), self.rate(Master::Moose, path, phase).ops_s())
    }

    fn bytes_per_file(&self, master: Master) -> f64 {
        self.of(master).map_or(0.0, |r| r.memory.bytes_per_file())
    }

    /// The human-readable table.
    pub fn print_table(&self, out: &mut dyn Write) -> Result<()> {
        let p = &self.plan;
        let s = &self.setting;
        writeln!(
            out,
            "elkfs bench meta: mfsmaster {} vs elkfs master (CHANGELOG_FSYNC=0 and =1), each alone in its own cluster (no chunkserver), data in {}",
            s.moosefs_version,
            p.dir.display()
        )?;
        writeln!(
            out,
            "direct: {} sessions x {} files, {} request(s) in flight per session, one op = one request (stat = LOOKUP + GETATTR, 2 ops per file)",
            p.sessions, p.files, p.depth
        )?;
        writeln!(
            out,
            "mount: {} threads x {} files with std::fs through mfsmount (default caches), one op = one syscall; rss: {} files created over the protocol",
            p.threads, p.mount_files, p.rss_files
        )?;
        writeln!(
            out,
            "machine: {} CPUs (shared with everything else running), Linux {}, load {} at start, {} at end",
            s.cpus, s.kernel, s.load_before, s.load_after
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "{:<14} {:>11} {:>13} {:>13}  {:<17} {:<17} {:>26}",
            "ops/s",
            "mfsmaster",
            "elkfs fsync=0",
            "elkfs fsync=1",
            format!("fsync=0/mfs >={NO_FSYNC_TARGET:.0}"),
            format!("fsync=1/mfs >={FSYNC_TARGET:.0}"),
            "p50|p99 us mfs/e0/e1"
        )?;
        for path in [Path::Direct, Path::Mount] {
            for phase in Phase::ALL {
                let rates = Master::ALL.map(|m| self.rate(m, path, phase));
                let r0 = self.speedup(Master::ElkfsNoFsync, path, phase);
                let r1 = self.speedup(Master::ElkfsFsync, path, phase);
                let lat = rates.iter().map(|r| format!("{:.0}|{:.0}", r.p50_us, r.p99_us)).collect::<Vec<_>>();
                writeln!(
                    out,
                    "{:<14} {:>11.0} {:>13.0} {:>13.0}  {:<17} {:<17} {:>26}",
                    format!("{} {}", path.key(), phase.key()),
                    rates[0].ops_s(),
                    rates[1].ops_s(),
                    rates[2].ops_s(),
                    format!("{r0:.2} {}", mark(r0 >= NO_FSYNC_TARGET)),
                    format!("{r1:.2} {}", mark(r1 >= FSYNC_TARGET)),
                    lat.join(" ")
                )?;
            }
        }
        writeln!(out)?;
        // The clients share the machine's cores with the master, so ops/s
        // is partly their speed; CPU per op is the master's own cost.
        writeln!(
            out,
            "{:<14} {:>11} {:>13} {:>13}  {:<17}",
            "master CPU us/op", "mfsmaster", "elkfs fsync=0", "elkfs fsync=1", "mfs/fsync=0 (less CPU: >1)"
        )?;
        for path in [Path::Direct, Path::Mount] {
            for phase in Phase::ALL {
                let cpu = Master::ALL.map(|m| self.rate(m, path, phase).cpu_us_per_op());
                writeln!(
                    out,
                    "{:<14} {:>11.1} {:>13.1} {:>13.1}  {:.2}",
                    format!("{} {}", path.key(), phase.key()),
                    cpu[0],
                    cpu[1],
                    cpu[2],
                    ratio(cpu[0], cpu[1])
                )?;
            }
        }
        writeln!(out)?;
        let bytes = Master::ALL.map(|m| self.bytes_per_file(m));
        writeln!(
            out,
            "{:<14} {:>11.0} {:>13.0} {:>13.0}  elkfs target <= {BYTES_PER_FILE_TARGET:.0}: {} {}",
            "RSS B/file",
            bytes[0],
            bytes[1],
            bytes[2],
            mark(bytes[1] <= BYTES_PER_FILE_TARGET),
            mark(bytes[2] <= BYTES_PER_FILE_TARGET)
        )?;
        let mib = Master::ALL.map(|m| self.of(m).map_or(0.0, |r| r.memory.mib_per_million()));
        writeln!(out, "{:<14} {:>11.1} {:>13.1} {:>13.1}", "MiB/1M files", mib[0], mib[1], mib[2])?;
        let cpu = Master::ALL.map(|m| self.of(m).map_or(0.0, |r| r.master_cpu_s));
        writeln!(out, "{:<14} {:>11.2} {:>13.2} {:>13.2}", "master CPU-s", cpu[0], cpu[1], cpu[2])?;
        for (master, r) in &self.results {
            let m = &r.memory;
            writeln!(
                out,
                "  {}: VmRSS {} -> {} KiB over {} files, filled in {:.1} s",
                master.label(),
                m.rss_before >> 10,
                m.rss_after >> 10,
                m.files,
                m.fill_seconds
            )?;
        }
        Ok(())
    }

    /// One JSON object: `direct_create` … `mount_unlink`, `rss`, `config`.
    pub fn json(&self) -> Value {
        let mut root = Map::new();
        for path in [Path::Direct, Path::Mount] {
            for phase in Phase::ALL {
                let mut e = Map::new();
                for master in Master::ALL {
                    let r = self.rate(master, path, phase);
                    e.insert(format!("{}_ops_s", master.key()), num(r.ops_s()));
                    e.insert(format!("{}_ops", master.key()), json!(r.ops));
                    e.insert(format!("{}_p50_us", master.key()), num(r.p50_us));
                    e.insert(format!("{}_p99_us", master.key()), num(r.p99_us));
                    e.insert(format!("{}_cpu_us_per_op", master.key()), num(r.cpu_us_per_op()));
                }
                let r0 = self.speedup(Master::ElkfsNoFsync, path, phase);
                let r1 = self.speedup(Master::ElkfsFsync, path, phase);
                e.insert("ratio_fsync0".into(), num(r0));
                e.insert("ratio_fsync1".into(), num(r1));
                e.insert("meets_fsync0_target".into(), Value::Bool(r0 >= NO_FSYNC_TARGET));
                e.insert("meets_fsync1_target".into(), Value::Bool(r1 >= FSYNC_TARGET));
                root.insert(format!("{}_{}", path.key(), phase.key()), Value::Object(e));
            }
        }
        let mut rss = Map::new();
        for master in Master::ALL {
            let m = self.of(master).map(|r| r.memory).unwrap_or_default();
            rss.insert(format!("{}_bytes_per_file", master.key()), num(m.bytes_per_file()));
            rss.insert(format!("{}_mib_per_million", master.key()), num(m.mib_per_million()));
            rss.insert(format!("{}_rss_before", master.key()), json!(m.rss_before));
            rss.insert(format!("{}_rss_after", master.key()), json!(m.rss_after));
            rss.insert(format!("{}_files", master.key()), json!(m.files));
        }
        let elkfs_max = self.bytes_per_file(Master::ElkfsNoFsync).max(self.bytes_per_file(Master::ElkfsFsync));
        rss.insert("target_bytes_per_file".into(), num(BYTES_PER_FILE_TARGET));
        rss.insert("meets_target".into(), Value::Bool(elkfs_max <= BYTES_PER_FILE_TARGET));
        root.insert("rss".into(), Value::Object(rss));
        let cpu: Map<String, Value> =
            self.results.iter().map(|(m, r)| (format!("{}_cpu_s", m.key()), num(r.master_cpu_s))).collect();
        root.insert("master_cpu".into(), Value::Object(cpu));
        let p = &self.plan;
        let s = &self.setting;
        root.insert(
            "config".into(),
            json!({
                "dir": p.dir.display().to_string(),
                "sessions": p.sessions,
                "files": p.files,
                "depth": p.depth,
                "threads": p.threads,
                "mount_files": p.mount_files,
                "rss_files": p.rss_files,
                "quick": p.quick,
                "moosefs": s.moosefs_version,
                "cpus": s.cpus,
                "kernel": s.kernel,
                "load_before": s.load_before,
                "load_after": s.load_after,
            }),
        );
        Value::Object(root)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::rss::Memory;
    use super::*;

    fn rate(ops_s: f64) -> Rate {
        Rate { ops: ops_s as u64, seconds: 1.0, p50_us: 50.0, p99_us: 90.0, master_cpu_s: 0.5 }
    }

    fn results(ops_s: f64, bytes_per_file: u64) -> MasterResults {
        let phases = |scale: f64| Phase::ALL.iter().map(|p| (*p, rate(ops_s * scale))).collect();
        MasterResults {
            direct: phases(1.0),
            mount: phases(0.5),
            memory: Memory {
                files: 1000,
                rss_before: 1 << 20,
                rss_after: (1 << 20) + 1000 * bytes_per_file,
                fill_seconds: 1.0,
            },
            master_cpu_s: 1.5,
        }
    }

    #[test]
    fn ratios_and_targets_in_table_and_json() {
        let plan = MetaPlan {
            dir: PathBuf::from("/var/tmp/m"),
            json: true,
            sessions: 8,
            files: 10,
            depth: 1,
            threads: 2,
            mount_files: 5,
            rss_files: 1000,
            quick: true,
        };
        let report = MetaReport::new(
            &plan,
            vec![
                (Master::Moose, results(1000.0, 300)),
                (Master::ElkfsNoFsync, results(2500.0, 150)),
                (Master::ElkfsFsync, results(900.0, 150)),
            ],
            Setting::probe(),
        );
        let j = report.json();
        let c = &j["direct_create"];
        assert_eq!(c["mfsmaster_ops_s"], json!(1000.0));
        assert_eq!(c["ratio_fsync0"], json!(2.5));
        assert_eq!(c["meets_fsync0_target"], json!(true));
        assert_eq!(c["ratio_fsync1"], json!(0.9));
        assert_eq!(c["meets_fsync1_target"], json!(false));
        assert_eq!(j["mount_unlink"]["elkfs_fsync1_ops_s"], json!(450.0));
        assert_eq!(j["rss"]["elkfs_fsync0_bytes_per_file"], json!(150.0));
        assert_eq!(j["rss"]["meets_target"], json!(true));
        assert_eq!(j["config"]["sessions"], json!(8));
        let mut text = Vec::new();
        report.print_table(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("direct rename") && text.contains("mount stat"), "{text}");
        assert!(text.contains("2.50 ✓") && text.contains("0.90 ✗"), "{text}");
    }
}
