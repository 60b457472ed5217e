//! The side-by-side table and the one-line JSON object.
//!
//! Every figure is the median over rounds; each ratio is the median of the
//! per-round ratios (elkfs over the fio run beside it), with their min and
//! max. CPU is in CPU-seconds per GiB of requested bytes, and µs per
//! operation for the random scenarios.

use std::io::Write;

use anyhow::Result;
use serde_json::{json, Map, Value};

use crate::fio::Memory;
use crate::plan::Plan;
use crate::rounds::{metric, Rounds};
use crate::scenario::{Measure, Scenario};
use crate::stats::{ratio, spread, Figures, Spread};

/// One scenario, summarised over its rounds.
#[derive(Debug, Clone)]
pub struct Summary {
    pub scenario: Scenario,
    pub ratio: Spread,
    pub elkfs: Medians,
    pub fio: Medians,
}

/// Medians over rounds of one target's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Medians {
    pub mib_s: f64,
    pub iops: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_s_per_gib: f64,
    /// The kernel's part of `cpu_s_per_gib`.
    pub cpu_sys_s_per_gib: f64,
    /// fio only: CPU per GiB as fio reports it (job thread alone).
    pub job_cpu_s_per_gib: f64,
    pub cpu_us_per_op: f64,
    /// Bytes the block device moved per byte requested.
    pub disk_per_byte: f64,
    pub switches_per_op: f64,
}

impl Medians {
    fn of(figures: &[Figures]) -> Medians {
        let median = |f: fn(&Figures) -> f64| spread(&figures.iter().map(f).collect::<Vec<_>>()).median;
        Medians {
            mib_s: median(Figures::mib_s),
            iops: median(Figures::iops),
            p50_us: median(|f| f.p50_us),
            p99_us: median(|f| f.p99_us),
            cpu_s_per_gib: median(Figures::cpu_s_per_gib),
            cpu_sys_s_per_gib: median(|f| f.per_gib(f.cpu_sys_s)),
            job_cpu_s_per_gib: median(|f| f.per_gib(f.job_cpu_s)),
            cpu_us_per_op: median(Figures::cpu_us_per_op),
            disk_per_byte: median(|f| ratio((f.disk.read + f.disk.written) as f64, f.bytes as f64)),
            switches_per_op: median(|f| ratio(f.switches, f.ops as f64)),
        }
    }

    fn value(&self, measure: Measure) -> f64 {
        match measure {
            Measure::MibPerSecond => self.mib_s,
            Measure::Iops => self.iops,
        }
    }
}

/// What CRC-checking whole blocks costs the 4 KiB random reads.
#[derive(Debug, Clone)]
pub struct CrcCost {
    /// elkfs 4 KiB IOPS over fio 64 KiB IOPS, per round.
    pub ratio_vs_fio_64k: Spread,
    pub fio_64k: Medians,
    /// CPU µs to CRC one 64 KiB block, measured in-process.
    pub crc_us_per_block: f64,
}

/// Where and how the bench ran.
#[derive(Debug, Clone)]
pub struct Setting {
    pub fio_version: String,
    pub fio_memory: Memory,
    pub cpus: usize,
    pub kernel: String,
    pub load_before: String,
    pub load_after: String,
}

impl Setting {
    pub fn probe(fio_version: String, fio_memory: Memory) -> Setting {
        Setting {
            fio_version,
            fio_memory,
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

pub(crate) fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_else(|_| "?".into())
}

/// The three load averages from /proc/loadavg.
pub(crate) fn load() -> String {
    read_trimmed("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Everything the bench prints.
#[derive(Debug, Clone)]
pub struct Report {
    pub summaries: Vec<Summary>,
    pub crc: CrcCost,
    pub setting: Setting,
    pub plan: Plan,
}

impl Report {
    pub fn new(plan: &Plan, rounds: &[Rounds], crc_us_per_block: f64, setting: Setting) -> Report {
        let summaries = rounds
            .iter()
            .map(|r| Summary {
                scenario: r.scenario,
                ratio: per_round_ratio(&r.elkfs, &r.fio, |f| metric(r.scenario, f)),
                elkfs: Medians::of(&r.elkfs),
                fio: Medians::of(&r.fio),
            })
            .collect();
        let (ratio_vs_fio_64k, fio_64k) = match rounds.iter().find(|r| r.scenario == Scenario::RandRead4k) {
            Some(r) => (per_round_ratio(&r.elkfs, &r.fio_64k, Figures::iops), Medians::of(&r.fio_64k)),
            None => (spread(&[]), Medians::default()),
        };
        Report { summaries, crc: CrcCost { ratio_vs_fio_64k, fio_64k, crc_us_per_block }, setting, plan: plan.clone() }
    }

    fn summary(&self, scenario: Scenario) -> Option<&Summary> {
        self.summaries.iter().find(|s| s.scenario == scenario)
    }

    /// The human-readable table.
    pub fn print_table(&self, out: &mut dyn Write) -> Result<()> {
        let plan = &self.plan;
        let s = &self.setting;
        writeln!(
            out,
            "elkfs bench engine: {} chunks x {} MiB in {}, {} round(s) of elkfs then fio, random runs {} s",
            plan.chunks,
            plan.chunk_bytes() >> 20,
            plan.dir.display(),
            plan.rounds,
            plan.seconds
        )?;
        writeln!(
            out,
            "both sides: io_uring + O_DIRECT, no fsync (engine fsync_before_ack=false, fio without fsync); {}",
            s.fio_version
        )?;
        writeln!(
            out,
            "fio buffers: {} (the virtio disk costs per memory segment: scattered 4 KiB pages slow fio 2-4x here)",
            match s.fio_memory {
                Memory::HugePages => "huge pages (--iomem=shmhuge)",
                Memory::Malloc => "malloc (--iomem=malloc)",
            }
        )?;
        writeln!(
            out,
            "caches: O_DIRECT bypasses the guest page cache; the host cache under the virtio disk stays (drop_caches {})",
            if plan.drop_caches { "written before each run" } else { "not used" }
        )?;
        writeln!(
            out,
            "machine: {} CPUs, Linux {}, load {} at start, {} at end; engine on {} tokio worker(s)",
            s.cpus, s.kernel, s.load_before, s.load_after, plan.workers
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "{:<15} {:<22} {:>14} {:>14}  {:<24} {:>19} {:>19} {:>17}",
            "scenario",
            "shape",
            "elkfs",
            "fio",
            "ratio median [min-max]",
            "p50 us elkfs|fio",
            "p99 us elkfs|fio",
            "CPU-s/GiB e|f"
        )?;
        for sum in &self.summaries {
            let measure = sum.scenario.measure();
            let target = match sum.scenario.target() {
                Some(t) if sum.ratio.median >= t => format!(" >={t:.2} met"),
                Some(t) => format!(" >={t:.2} MISSED"),
                None => String::new(),
            };
            writeln!(
                out,
                "{:<15} {:<22} {:>14} {:>14}  {:<24} {:>19} {:>19} {:>17}",
                sum.scenario.key(),
                shape_text(plan, sum.scenario),
                value_text(measure, sum.elkfs.value(measure)),
                value_text(measure, sum.fio.value(measure)),
                format!("{}{target}", spread_text(&sum.ratio)),
                format!("{:.0}|{:.0}", sum.elkfs.p50_us, sum.fio.p50_us),
                format!("{:.0}|{:.0}", sum.elkfs.p99_us, sum.fio.p99_us),
                format!("{:.2}|{:.2}", sum.elkfs.cpu_s_per_gib, sum.fio.cpu_s_per_gib),
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "CPU counts every thread of each side (io-wq workers included); fio's start-up is taken off, and fio's own job-thread figure is shown as 'fio says'"
        )?;
        for sum in &self.summaries {
            writeln!(
                out,
                "{:<15} CPU per op: elkfs {:.1} us, fio {:.1} us; kernel part of CPU-s/GiB: elkfs {:.2}, fio {:.2}; fio says {:.2} CPU-s/GiB; disk bytes per byte: elkfs {:.2}, fio {:.2}; context switches per op: elkfs {:.2}, fio {:.2}",
                sum.scenario.key(),
                sum.elkfs.cpu_us_per_op,
                sum.fio.cpu_us_per_op,
                sum.elkfs.cpu_sys_s_per_gib,
                sum.fio.cpu_sys_s_per_gib,
                sum.fio.job_cpu_s_per_gib,
                sum.elkfs.disk_per_byte,
                sum.fio.disk_per_byte,
                sum.elkfs.switches_per_op,
                sum.fio.switches_per_op
            )?;
        }
        self.print_crc(out)
    }

    fn print_crc(&self, out: &mut dyn Write) -> Result<()> {
        let Some(read) = self.summary(Scenario::RandRead4k) else { return Ok(()) };
        let crc = &self.crc;
        writeln!(out)?;
        writeln!(
            out,
            "cost of CRC verification: each 4 KiB read moves and CRC-checks its whole 64 KiB block (16x the bytes)"
        )?;
        writeln!(
            out,
            "  elkfs 4 KiB {:.0} IOPS vs fio 64 KiB {:.0} IOPS ({:.0} MiB/s): ratio {} (same disk work; the gap is the engine's own)",
            read.elkfs.iops,
            crc.fio_64k.iops,
            crc.fio_64k.mib_s,
            spread_text(&crc.ratio_vs_fio_64k)
        )?;
        writeln!(
            out,
            "  CRC-32 of a 64 KiB block: {:.1} us CPU = {:.0}% of elkfs's {:.1} us CPU per 4 KiB read; fio: {:.1} us per 4 KiB read, {:.1} us per 64 KiB read",
            crc.crc_us_per_block,
            100.0 * ratio(crc.crc_us_per_block, read.elkfs.cpu_us_per_op),
            read.elkfs.cpu_us_per_op,
            read.fio.cpu_us_per_op,
            crc.fio_64k.cpu_us_per_op
        )?;
        Ok(())
    }

    /// One JSON object, keyed by scenario, for the last line of output.
    pub fn json(&self) -> Value {
        let mut root = Map::new();
        for sum in &self.summaries {
            let mut entry = Map::new();
            let (unit, other) = json_units(sum.scenario.measure());
            let value = |m: &Medians, name: &str| if name == "mib_s" { m.mib_s } else { m.iops };
            entry.insert(format!("elkfs_{unit}"), num(value(&sum.elkfs, unit)));
            entry.insert(format!("fio_{unit}"), num(value(&sum.fio, unit)));
            insert_spread(&mut entry, "ratio", &sum.ratio);
            if let Some(target) = sum.scenario.target() {
                entry.insert("target".into(), num(target));
                entry.insert("meets_target".into(), Value::Bool(sum.ratio.median >= target));
            }
            entry.insert(format!("elkfs_{other}"), num(value(&sum.elkfs, other)));
            entry.insert(format!("fio_{other}"), num(value(&sum.fio, other)));
            for (side, m) in [("elkfs", &sum.elkfs), ("fio", &sum.fio)] {
                entry.insert(format!("{side}_p50_us"), num(m.p50_us));
                entry.insert(format!("{side}_p99_us"), num(m.p99_us));
                entry.insert(format!("{side}_cpu_s_per_gib"), num(m.cpu_s_per_gib));
                entry.insert(format!("{side}_cpu_sys_s_per_gib"), num(m.cpu_sys_s_per_gib));
                entry.insert(format!("{side}_cpu_us_per_op"), num(m.cpu_us_per_op));
                entry.insert(format!("{side}_disk_bytes_per_byte"), num(m.disk_per_byte));
                entry.insert(format!("{side}_switches_per_op"), num(m.switches_per_op));
            }
            entry.insert("fio_job_cpu_s_per_gib".into(), num(sum.fio.job_cpu_s_per_gib));
            root.insert(sum.scenario.key().into(), Value::Object(entry));
        }
        let elkfs_read = self.summary(Scenario::RandRead4k).map(|s| s.elkfs).unwrap_or_default();
        let crc = &self.crc;
        root.insert(
            "crc_cost".into(),
            json!({
                "elkfs_4k_iops": num(elkfs_read.iops),
                "fio_64k_iops": num(crc.fio_64k.iops),
                "ratio": num(crc.ratio_vs_fio_64k.median),
                "ratio_min": num(crc.ratio_vs_fio_64k.min),
                "ratio_max": num(crc.ratio_vs_fio_64k.max),
                "crc_us_per_block": num(crc.crc_us_per_block),
                "elkfs_cpu_us_per_op": num(elkfs_read.cpu_us_per_op),
                "fio_64k_cpu_us_per_op": num(crc.fio_64k.cpu_us_per_op),
                "fio_64k_p50_us": num(crc.fio_64k.p50_us),
                "fio_64k_p99_us": num(crc.fio_64k.p99_us),
            }),
        );
        let plan = &self.plan;
        let s = &self.setting;
        root.insert(
            "config".into(),
            json!({
                "dir": plan.dir.display().to_string(),
                "chunks": plan.chunks,
                "chunk_mib": plan.chunk_bytes() >> 20,
                "rounds": plan.rounds,
                "seconds": plan.seconds,
                "quick": plan.quick,
                "workers": plan.workers,
                "streams": plan.streams,
                "fsync": false,
                "direct": true,
                "fio": s.fio_version,
                "fio_memory": s.fio_memory.fio_name(),
                "cpus": s.cpus,
                "kernel": s.kernel,
                "load_before": s.load_before,
                "load_after": s.load_after,
            }),
        );
        Value::Object(root)
    }
}

/// Per-round `elkfs / fio` of `metric`, pairing each round with its own.
fn per_round_ratio(elkfs: &[Figures], fio: &[Figures], metric: impl Fn(&Figures) -> f64) -> Spread {
    let ratios: Vec<f64> = elkfs.iter().zip(fio).map(|(e, f)| ratio(metric(e), metric(f))).collect();
    spread(&ratios)
}

/// A JSON number rounded to 3 decimals (NaN and infinities become 0).
/// `key`, `key_min` and `key_max`: a median ratio and its spread.
pub(crate) fn insert_spread(map: &mut Map<String, Value>, key: &str, s: &Spread) {
    map.insert(key.into(), num(s.median));
    map.insert(format!("{key}_min"), num(s.min));
    map.insert(format!("{key}_max"), num(s.max));
}

/// JSON names of a scenario's main figure and of the other one.
pub(crate) fn json_units(measure: Measure) -> (&'static str, &'static str) {
    match measure {
        Measure::MibPerSecond => ("mib_s", "iops"),
        Measure::Iops => ("iops", "mib_s"),
    }
}

pub(crate) fn num(value: f64) -> Value {
    let rounded = if value.is_finite() { (value * 1000.0).round() / 1000.0 } else { 0.0 };
    json!(rounded)
}

pub(crate) fn value_text(measure: Measure, value: f64) -> String {
    match measure {
        Measure::MibPerSecond => format!("{value:.0} MiB/s"),
        Measure::Iops => format!("{value:.0} IOPS"),
    }
}

pub(crate) fn spread_text(s: &Spread) -> String {
    format!("{:.2} [{:.2}-{:.2}]", s.median, s.min, s.max)
}

fn shape_text(plan: &Plan, scenario: Scenario) -> String {
    let shape = plan.shape(scenario);
    let size = if shape.request_bytes >= 1 << 20 {
        format!("{} MiB", shape.request_bytes >> 20)
    } else {
        format!("{} KiB", shape.request_bytes >> 10)
    };
    match scenario.measure() {
        Measure::MibPerSecond => format!("{size} QD{} {} files", shape.queue_depth, shape.streams),
        Measure::Iops => format!("{size} QD{} {} s", shape.queue_depth, plan.seconds),
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn figures(mib_s: f64) -> Figures {
        Figures {
            bytes: (mib_s as u64) << 20,
            ops: mib_s as u64,
            seconds: 1.0,
            p50_us: 10.0,
            p99_us: 20.0,
            cpu_s: 0.1,
            ..Figures::default()
        }
    }

    #[test]
    fn json_has_every_scenario_with_ratios() {
        let plan = crate::plan::test_plan(4, 64, true);
        let rounds: Vec<Rounds> = Scenario::ALL
            .iter()
            .map(|&scenario| Rounds {
                scenario,
                elkfs: vec![figures(90.0), figures(100.0), figures(50.0)],
                fio: vec![figures(100.0); 3],
                fio_64k: vec![figures(100.0); 3],
            })
            .collect();
        let setting = Setting::probe("fio-x".into(), Memory::HugePages);
        let report = Report::new(&plan, &rounds, 3.0, setting);
        let json = report.json();
        let seq = &json["seq_write"];
        assert_eq!(seq["ratio"], json!(0.9));
        assert_eq!(seq["ratio_min"], json!(0.5));
        assert_eq!(seq["ratio_max"], json!(1.0));
        assert_eq!(seq["elkfs_mib_s"], json!(90.0));
        assert_eq!(seq["meets_target"], json!(false));
        assert!(json["rand_read_4k"]["elkfs_iops"].as_f64().unwrap() > 0.0);
        assert!(json["crc_cost"]["fio_64k_iops"].as_f64().unwrap() > 0.0);
        let mut text = Vec::new();
        report.print_table(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("rand_write_64k") && text.contains("MISSED"), "{text}");
    }
}
