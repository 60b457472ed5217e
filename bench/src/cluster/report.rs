//! The cluster bench's side-by-side table and one-line JSON object.
//!
//! Every figure is the median over rounds; each ratio is the median of the
//! per-round ratios (elkfs over the real cluster of the same round), with
//! min and max, as `elkfs bench engine` reports them ([`crate::report`]).
//! CPU is CPU-seconds per GiB of file data moved (a goal 2 write moves it
//! twice between the servers, and still counts once).

use std::io::Write;

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::jobs::{Job, QUEUE_DEPTH};
use super::{loopback, ClusterPlan, Results, Sample};
use crate::report::{insert_spread, json_units, load, num, read_trimmed, spread_text, value_text};
use crate::scenario::Measure;
use crate::stats::{ratio, spread, Figures, Spread};

/// elkfs's direct figures against the engine's own, same disk, same run.
pub const DIRECT_VS_ENGINE_TARGET: f64 = 0.90;

/// Where and how the bench ran.
#[derive(Debug, Clone)]
pub struct Setting {
    pub fio_version: String,
    pub moosefs_version: String,
    pub cpus: usize,
    pub kernel: String,
    pub load_before: String,
    pub load_after: String,
}

impl Setting {
    pub fn probe(fio_version: String) -> Setting {
        let moosefs_version = std::process::Command::new("mfsmaster")
            .arg("-v")
            .output()
            .ok()
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.split_whitespace().nth(1).map(str::to_string)
            })
            .unwrap_or_else(|| "?".into());
        Setting {
            fio_version,
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

/// Medians over rounds of one side's samples of one job.
#[derive(Debug, Clone, Copy, Default)]
pub struct Medians {
    pub mib_s: f64,
    pub iops: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cs_cpu_s_per_gib: f64,
    /// The kernel's part of `cs_cpu_s_per_gib`.
    pub cs_sys_s_per_gib: f64,
    pub mount_cpu_s_per_gib: f64,
    pub master_cpu_s_per_gib: f64,
    pub client_cpu_s_per_gib: f64,
    /// Share of the whole machine's CPU busy during the run.
    pub machine_busy: f64,
    /// Bytes the disk read and wrote per byte of file data moved.
    pub disk_read_per_byte: f64,
    pub disk_written_per_byte: f64,
    /// CPU microseconds per operation (fio request or whole-chunk op).
    pub cs_cpu_us_per_op: f64,
    pub mount_cpu_us_per_op: f64,
}

impl Medians {
    fn of(samples: &[Sample]) -> Medians {
        let median = |f: &dyn Fn(&Sample) -> f64| spread(&samples.iter().map(f).collect::<Vec<_>>()).median;
        Medians {
            mib_s: median(&|s| s.figures.mib_s()),
            iops: median(&|s| s.figures.iops()),
            p50_us: median(&|s| s.figures.p50_us),
            p99_us: median(&|s| s.figures.p99_us),
            cs_cpu_s_per_gib: median(&|s| s.figures.per_gib(s.cs_cpu_s)),
            cs_sys_s_per_gib: median(&|s| s.figures.per_gib(s.cs_sys_s)),
            mount_cpu_s_per_gib: median(&|s| s.figures.per_gib(s.mount_cpu_s)),
            master_cpu_s_per_gib: median(&|s| s.figures.per_gib(s.master_cpu_s)),
            client_cpu_s_per_gib: median(&|s| s.figures.per_gib(s.client_cpu_s)),
            machine_busy: median(&|s| s.machine_busy),
            disk_read_per_byte: median(&|s| ratio(s.figures.disk.read as f64, s.figures.bytes as f64)),
            disk_written_per_byte: median(&|s| ratio(s.figures.disk.written as f64, s.figures.bytes as f64)),
            cs_cpu_us_per_op: median(&|s| ratio(s.cs_cpu_s * 1e6, s.figures.ops as f64)),
            mount_cpu_us_per_op: median(&|s| ratio(s.mount_cpu_s * 1e6, s.figures.ops as f64)),
        }
    }

    fn value(&self, measure: Measure) -> f64 {
        match measure {
            Measure::MibPerSecond => self.mib_s,
            Measure::Iops => self.iops,
        }
    }
}

/// Loopback TCP alone: medians over the rounds.
#[derive(Debug, Clone, Copy)]
struct LoopbackRef {
    mib_s: f64,
    cpu_s_per_gib: f64,
    server_cpu_s_per_gib: f64,
    client_cpu_s_per_gib: f64,
}

/// The engine read beside loopback TCP: medians over the rounds.
#[derive(Debug, Clone, Copy)]
struct BesideRef {
    engine_mib_s: f64,
    tcp_mib_s: f64,
    pace_mib_s: f64,
    /// elkfs direct read over it, per round.
    ratio: Spread,
    /// It over the engine alone, per round.
    over_alone: Spread,
}

/// The engine's reference figures beside a direct job.
#[derive(Debug, Clone, Copy)]
pub struct EngineRef {
    pub mib_s: f64,
    pub cpu_s_per_gib: f64,
    /// elkfs direct over engine, per round.
    pub ratio: Spread,
}

/// One job, summarised over its rounds.
#[derive(Debug, Clone)]
pub struct Row {
    pub job: Job,
    pub elkfs: Medians,
    pub real: Medians,
    pub ratio: Spread,
    /// Direct jobs only.
    pub engine: Option<EngineRef>,
}

/// Everything the cluster bench prints.
#[derive(Debug, Clone)]
pub struct ClusterReport {
    pub rows: Vec<Row>,
    pub results: Results,
    pub setting: Setting,
    pub plan: ClusterPlan,
}

fn metric(job: Job, f: &Figures) -> f64 {
    match job.measure() {
        Measure::MibPerSecond => f.mib_s(),
        Measure::Iops => f.iops(),
    }
}

/// Per-round `a / b` of `metric`, pairing each round with its own.
fn per_round(a: &[f64], b: &[f64]) -> Spread {
    spread(&a.iter().zip(b).map(|(x, y)| ratio(*x, *y)).collect::<Vec<_>>())
}

impl ClusterReport {
    pub fn new(plan: &ClusterPlan, results: Results, setting: Setting) -> ClusterReport {
        let mut rows = Vec::new();
        for job in Job::ALL {
            let (Some(elkfs), Some(real)) = (results.elkfs.get(&job), results.real.get(&job)) else { continue };
            let values = |s: &[Sample]| s.iter().map(|s| metric(job, &s.figures)).collect::<Vec<_>>();
            let engine = match job {
                Job::DirectWrite => Some(&results.engine_write),
                Job::DirectRead => Some(&results.engine_read),
                _ => None,
            }
            .map(|figures| {
                let mib: Vec<f64> = figures.iter().map(Figures::mib_s).collect();
                let cpu: Vec<f64> = figures.iter().map(Figures::cpu_s_per_gib).collect();
                EngineRef {
                    mib_s: spread(&mib).median,
                    cpu_s_per_gib: spread(&cpu).median,
                    ratio: per_round(&values(elkfs), &mib),
                }
            });
            rows.push(Row {
                job,
                elkfs: Medians::of(elkfs),
                real: Medians::of(real),
                ratio: per_round(&values(elkfs), &values(real)),
                engine,
            });
        }
        ClusterReport { rows, results, setting, plan: plan.clone() }
    }

    fn shape(&self, job: Job) -> String {
        let p = &self.plan;
        match job {
            Job::SeqWrite { goal } | Job::SeqRead { goal } => format!("1 MiB QD{QUEUE_DEPTH} goal {goal}"),
            Job::RandRead { goal } => format!("4 KiB QD{QUEUE_DEPTH} {} s g{goal}", p.seconds),
            Job::DirectWrite => format!("64K x{} {} conn", p.window, p.connections),
            Job::DirectRead => format!("64M READ {} conn", p.connections),
        }
    }

    /// The human-readable table.
    pub fn print_table(&self, out: &mut dyn Write) -> Result<()> {
        let p = &self.plan;
        let s = &self.setting;
        writeln!(
            out,
            "elkfs bench cluster: mfsmaster + mfsmount {} with 3 mfschunkserver (real) vs 3 elkfs chunkserver (elkfs) on one disk, in {}, {} round(s) of real then elkfs",
            s.moosefs_version,
            p.dir.display(),
            p.rounds
        )?;
        writeln!(
            out,
            "mount jobs: {} through mfsmount, io_uring direct=1 QD{QUEUE_DEPTH}, one file of {} MiB at goal 1 and one at goal 2 (writes end with fsync), 4 KiB random reads for {} s",
            s.fio_version,
            p.file_bytes >> 20,
            p.seconds
        )?;
        writeln!(
            out,
            "direct jobs: the bench speaks the data protocol to the one chunkserver with most chunks of those files: WRITE + 64 KiB WRITE_DATA (up to {} unacknowledged) + WRITE_FINISH, or one READ per whole 64 MiB chunk; {} connections; no FUSE",
            p.window, p.connections
        )?;
        writeln!(
            out,
            "before every run: sync + drop_caches; before every read a fresh mfsmount. Chunkservers do not fsync (HDD_FSYNC_BEFORE_CLOSE=0): the real one writes through the page cache, elkfs with O_DIRECT"
        )?;
        writeln!(
            out,
            "machine: {} CPUs, Linux {}, load {} at start, {} at end",
            s.cpus, s.kernel, s.load_before, s.load_after
        )?;
        writeln!(out)?;
        if self.rows.is_empty() {
            writeln!(out, "one kind of chunkserver only (--stack): nothing to compare; each job's figures are in the log lines above")?;
        }
        writeln!(
            out,
            "{:<16} {:<20} {:>11} {:>11}  {:<19} {:>15} {:>17} {:>12} {:>15}",
            "scenario",
            "shape",
            "elkfs",
            "real",
            "ratio med [min-max]",
            "p50 us e|r",
            "p99 us e|r",
            "CS CPU-s/GiB",
            "mount CPU-s/GiB"
        )?;
        for row in &self.rows {
            let m = row.job.measure();
            writeln!(
                out,
                "{:<16} {:<20} {:>11} {:>11}  {:<19} {:>15} {:>17} {:>12} {:>15}",
                row.job.key(),
                self.shape(row.job),
                value_text(m, row.elkfs.value(m)),
                value_text(m, row.real.value(m)),
                spread_text(&row.ratio),
                format!("{:.0}|{:.0}", row.elkfs.p50_us, row.real.p50_us),
                format!("{:.0}|{:.0}", row.elkfs.p99_us, row.real.p99_us),
                format!("{:.2}|{:.2}", row.elkfs.cs_cpu_s_per_gib, row.real.cs_cpu_s_per_gib),
                if row.job.is_direct() {
                    "-".to_string()
                } else {
                    format!("{:.2}|{:.2}", row.elkfs.mount_cpu_s_per_gib, row.real.mount_cpu_s_per_gib)
                },
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "ratios are elkfs/real; CPU-s/GiB columns are elkfs|real, per GiB of file data: all 3 chunkservers for mount jobs, the one server for direct jobs; direct p50/p99 are of whole 64 MiB chunk operations; disk bytes are elkfs vs real, counted during the run only (the real chunkserver's page cache is written back after it)"
        )?;
        for row in &self.rows {
            let per_op = if row.job.measure() == Measure::Iops {
                format!(
                    "; CPU-us per read: chunkservers {:.0}|{:.0}, mount {:.0}|{:.0}",
                    row.elkfs.cs_cpu_us_per_op,
                    row.real.cs_cpu_us_per_op,
                    row.elkfs.mount_cpu_us_per_op,
                    row.real.mount_cpu_us_per_op
                )
            } else {
                String::new()
            };
            writeln!(
                out,
                "{:<16} machine CPU busy {:.0}%|{:.0}%; disk read|written per byte {:.2}|{:.2} vs {:.2}|{:.2}; kernel part of CS CPU-s/GiB {:.2}|{:.2}; master CPU-s/GiB {:.3}|{:.3}; {} CPU-s/GiB {:.2}|{:.2}{per_op}",
                row.job.key(),
                100.0 * row.elkfs.machine_busy,
                100.0 * row.real.machine_busy,
                row.elkfs.disk_read_per_byte,
                row.elkfs.disk_written_per_byte,
                row.real.disk_read_per_byte,
                row.real.disk_written_per_byte,
                row.elkfs.cs_sys_s_per_gib,
                row.real.cs_sys_s_per_gib,
                row.elkfs.master_cpu_s_per_gib,
                row.real.master_cpu_s_per_gib,
                if row.job.is_direct() { "bench client thread" } else { "fio" },
                row.elkfs.client_cpu_s_per_gib,
                row.real.client_cpu_s_per_gib
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "elkfs direct vs the engine alone (in this process, same disk, right before each elkfs direct run; 1 MiB requests QD16 over 4 chunks, {} chunks), target >= {DIRECT_VS_ENGINE_TARGET:.2}:",
            p.direct_chunks.max(4)
        )?;
        for row in &self.rows {
            let Some(engine) = row.engine else { continue };
            let verdict = if engine.ratio.median >= DIRECT_VS_ENGINE_TARGET { "met" } else { "MISSED" };
            writeln!(
                out,
                "  {:<13} elkfs {:.0} MiB/s vs engine {:.0} MiB/s: {} {verdict}; CPU-s/GiB elkfs chunkserver {:.2}, engine {:.2}",
                row.job.key(),
                row.elkfs.mib_s,
                engine.mib_s,
                spread_text(&engine.ratio),
                row.elkfs.cs_cpu_s_per_gib,
                engine.cpu_s_per_gib
            )?;
        }
        if let Some(l) = self.loopback() {
            writeln!(
                out,
                "  loopback TCP alone (same client and READs, a server in this process answering from memory: no disk, no CRC): {:.0} MiB/s, CPU-s/GiB {:.2} (server {:.2}, client {:.2}); direct_read / loopback {:.2}, engine / loopback {:.2}",
                l.mib_s, l.cpu_s_per_gib, l.server_cpu_s_per_gib, l.client_cpu_s_per_gib,
                self.direct_read_mib_s() / l.mib_s.max(1e-9),
                self.engine_read_mib_s() / l.mib_s.max(1e-9)
            )?;
        }
        if let Some(b) = self.beside() {
            let verdict = if b.over_alone.median >= DIRECT_VS_ENGINE_TARGET { "reachable" } else { "out of reach" };
            writeln!(
                out,
                "  engine seq_read with loopback TCP beside it, paced at {DIRECT_VS_ENGINE_TARGET:.2} x the engine alone ({:.0} MiB/s asked, {:.0} moved): {:.0} MiB/s, {} of the engine alone: the target is {verdict} for any chunkserver here (this VM's disk gives less while its CPUs are busy); direct_read / that {}",
                b.pace_mib_s,
                b.tcp_mib_s,
                b.engine_mib_s,
                spread_text(&b.over_alone),
                spread_text(&b.ratio)
            )?;
        }
        for note in &self.results.direct_notes {
            writeln!(out, "  {note}")?;
        }
        Ok(())
    }

    /// Medians of the loopback-alone runs, if any ran.
    fn loopback(&self) -> Option<LoopbackRef> {
        let l = &self.results.loopback;
        if l.is_empty() {
            return None;
        }
        let med = |f: &dyn Fn(&loopback::Loopback) -> f64| spread(&l.iter().map(f).collect::<Vec<_>>()).median;
        Some(LoopbackRef {
            mib_s: med(&|l| l.client.mib_s()),
            cpu_s_per_gib: med(&|l| l.cpu_s_per_gib()),
            server_cpu_s_per_gib: med(&|l| l.client.per_gib(l.server_cpu_s)),
            client_cpu_s_per_gib: med(&|l| l.client.per_gib(l.client.cpu_s)),
        })
    }

    /// Medians of the engine reads beside loopback TCP, and elkfs's direct
    /// read over them, round by round.
    fn beside(&self) -> Option<BesideRef> {
        let b = &self.results.beside;
        if b.is_empty() {
            return None;
        }
        let med = |f: &dyn Fn(&super::BesideTcp) -> f64| spread(&b.iter().map(f).collect::<Vec<_>>()).median;
        let direct: Vec<f64> = self
            .results
            .elkfs
            .get(&Job::DirectRead)
            .map(|s| s.iter().map(|s| s.figures.mib_s()).collect())
            .unwrap_or_default();
        let engine: Vec<f64> = b.iter().map(|b| b.engine.mib_s()).collect();
        let alone: Vec<f64> = self.results.engine_read.iter().map(Figures::mib_s).collect();
        Some(BesideRef {
            engine_mib_s: med(&|b| b.engine.mib_s()),
            tcp_mib_s: med(&|b| b.tcp.client.mib_s()),
            pace_mib_s: med(&|b| b.pace_mib_s),
            ratio: per_round(&direct, &engine),
            over_alone: per_round(&engine, &alone),
        })
    }

    /// Medians over rounds, from the samples (so also when only elkfs ran).
    fn direct_read_mib_s(&self) -> f64 {
        let direct = self.results.elkfs.get(&Job::DirectRead).map(|s| Medians::of(s).mib_s);
        direct.unwrap_or(0.0)
    }

    fn engine_read_mib_s(&self) -> f64 {
        spread(&self.results.engine_read.iter().map(Figures::mib_s).collect::<Vec<_>>()).median
    }

    /// One JSON object keyed by job, for the last line of output.
    pub fn json(&self) -> Value {
        let mut root = Map::new();
        for row in &self.rows {
            let mut e = Map::new();
            let (unit, other) = json_units(row.job.measure());
            let value = |m: &Medians, name: &str| if name == "mib_s" { m.mib_s } else { m.iops };
            for name in [unit, other] {
                e.insert(format!("elkfs_{name}"), num(value(&row.elkfs, name)));
                e.insert(format!("real_{name}"), num(value(&row.real, name)));
            }
            insert_spread(&mut e, "ratio", &row.ratio);
            for (side, m) in [("elkfs", &row.elkfs), ("real", &row.real)] {
                e.insert(format!("{side}_p50_us"), num(m.p50_us));
                e.insert(format!("{side}_p99_us"), num(m.p99_us));
                e.insert(format!("{side}_cs_cpu_s_per_gib"), num(m.cs_cpu_s_per_gib));
                e.insert(format!("{side}_cs_sys_s_per_gib"), num(m.cs_sys_s_per_gib));
                e.insert(format!("{side}_machine_busy"), num(m.machine_busy));
                e.insert(format!("{side}_disk_read_per_byte"), num(m.disk_read_per_byte));
                e.insert(format!("{side}_disk_written_per_byte"), num(m.disk_written_per_byte));
                e.insert(format!("{side}_mount_cpu_s_per_gib"), num(m.mount_cpu_s_per_gib));
                e.insert(format!("{side}_master_cpu_s_per_gib"), num(m.master_cpu_s_per_gib));
                e.insert(format!("{side}_client_cpu_s_per_gib"), num(m.client_cpu_s_per_gib));
                e.insert(format!("{side}_cs_cpu_us_per_op"), num(m.cs_cpu_us_per_op));
                e.insert(format!("{side}_mount_cpu_us_per_op"), num(m.mount_cpu_us_per_op));
            }
            if let Some(engine) = row.engine {
                e.insert("engine_mib_s".into(), num(engine.mib_s));
                e.insert("engine_cpu_s_per_gib".into(), num(engine.cpu_s_per_gib));
                insert_spread(&mut e, "elkfs_vs_engine", &engine.ratio);
                e.insert("target".into(), num(DIRECT_VS_ENGINE_TARGET));
                e.insert("meets_target".into(), Value::Bool(engine.ratio.median >= DIRECT_VS_ENGINE_TARGET));
            }
            root.insert(row.job.key().into(), Value::Object(e));
        }
        if let Some(l) = self.loopback() {
            root.insert(
                "loopback_read".into(),
                json!({
                    "mib_s": num(l.mib_s),
                    "cpu_s_per_gib": num(l.cpu_s_per_gib),
                    "server_cpu_s_per_gib": num(l.server_cpu_s_per_gib),
                    "client_cpu_s_per_gib": num(l.client_cpu_s_per_gib),
                }),
            );
        }
        if let Some(b) = self.beside() {
            let mut e = Map::new();
            e.insert("engine_mib_s".into(), num(b.engine_mib_s));
            e.insert("tcp_mib_s".into(), num(b.tcp_mib_s));
            e.insert("tcp_pace_mib_s".into(), num(b.pace_mib_s));
            insert_spread(&mut e, "direct_read_over_it", &b.ratio);
            insert_spread(&mut e, "over_engine_alone", &b.over_alone);
            root.insert("engine_read_beside_tcp".into(), Value::Object(e));
        }
        let p = &self.plan;
        let s = &self.setting;
        root.insert(
            "config".into(),
            json!({
                "dir": p.dir.display().to_string(),
                "rounds": p.rounds,
                "file_mib": p.file_bytes >> 20,
                "seconds": p.seconds,
                "quick": p.quick,
                "direct_chunks": p.direct_chunks,
                "direct_connections": p.connections,
                "direct_window": p.window,
                "chunkservers": 3,
                "fio": s.fio_version,
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

    use super::*;

    fn sample(mib_s: f64, cpu_s: f64) -> Sample {
        let figures = Figures {
            bytes: (mib_s as u64) << 20,
            ops: mib_s as u64,
            seconds: 1.0,
            p50_us: 10.0,
            p99_us: 20.0,
            ..Figures::default()
        };
        Sample {
            figures,
            cs_cpu_s: cpu_s,
            cs_sys_s: cpu_s / 4.0,
            mount_cpu_s: cpu_s / 2.0,
            master_cpu_s: 0.01,
            client_cpu_s: 0.1,
            machine_busy: 0.5,
        }
    }

    fn plan() -> ClusterPlan {
        ClusterPlan {
            dir: PathBuf::from("/var/tmp/c"),
            rounds: 2,
            file_bytes: 256 << 20,
            seconds: 3,
            direct_chunks: 4,
            connections: 4,
            window: 64,
            fio: PathBuf::from("fio"),
            json: true,
            quick: true,
            jobs: Job::ALL.to_vec(),
            kinds: vec![elkfs_harness::ChunkserverKind::Real, elkfs_harness::ChunkserverKind::Elkfs],
        }
    }

    #[test]
    fn json_pairs_rounds_and_compares_direct_with_the_engine() {
        let mut results = Results::default();
        for job in Job::ALL {
            results.elkfs.insert(job, vec![sample(200.0, 1.0), sample(300.0, 1.0)]);
            results.real.insert(job, vec![sample(100.0, 2.0), sample(400.0, 2.0)]);
        }
        let engine = |mib: f64| Figures { bytes: (mib as u64) << 20, ops: 1, seconds: 1.0, ..Figures::default() };
        results.engine_write = vec![engine(250.0), engine(300.0)];
        results.engine_read = vec![engine(200.0), engine(300.0)];
        let lo = |mib: f64| loopback::Loopback {
            client: Figures { bytes: (mib as u64) << 30, cpu_s: 1.0, ..engine(0.0) },
            server_cpu_s: 2.0,
        };
        results.loopback = vec![lo(500.0), lo(1000.0)];
        results.beside = vec![
            super::super::BesideTcp { engine: engine(400.0), tcp: lo(1.0), pace_mib_s: 180.0 },
            super::super::BesideTcp { engine: engine(150.0), tcp: lo(2.0), pace_mib_s: 270.0 },
        ];
        let setting = Setting::probe("fio-x".into());
        let report = ClusterReport::new(&plan(), results, setting);
        let json = report.json();
        let w = &json["seq_write_g1"];
        // Per-round ratios 2.0 and 0.75: median 1.375.
        assert_eq!(w["ratio"], json!(1.375));
        assert_eq!((w["ratio_min"].clone(), w["ratio_max"].clone()), (json!(0.75), json!(2.0)));
        assert_eq!(w["elkfs_mib_s"], json!(250.0));
        assert_eq!(w["real_mib_s"], json!(250.0));
        assert!(w.get("engine_mib_s").is_none());
        let d = &json["direct_write"];
        // 200/250 and 300/300.
        assert_eq!(d["elkfs_vs_engine"], json!(0.9));
        assert_eq!(d["meets_target"], json!(true));
        assert_eq!(json["direct_read"]["meets_target"], json!(true));
        assert!(json["rand_read_4k_g2"]["elkfs_iops"].as_f64().unwrap() > 0.0);
        assert_eq!(json["config"]["rounds"], json!(2));
        // 500 and 1000 GiB in 1 s; 3 CPU-s over them.
        assert_eq!(json["loopback_read"]["mib_s"], json!(768_000.0));
        assert_eq!(json["loopback_read"]["server_cpu_s_per_gib"], json!(0.003));
        let mut text = Vec::new();
        report.print_table(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("seq_read_g2") && text.contains("direct_read") && text.contains("met"), "{text}");
        assert!(text.contains("loopback TCP alone") && text.contains("768000 MiB/s"), "{text}");
        // Direct read 200 and 300 over 400 and 150: 0.5 and 2.0.
        let b = &json["engine_read_beside_tcp"];
        assert_eq!((b["engine_mib_s"].clone(), b["tcp_mib_s"].clone()), (json!(275.0), json!(1536.0)));
        assert_eq!(b["direct_read_over_it"], json!(1.25));
        // 400/200 and 150/300.
        assert_eq!(b["over_engine_alone"], json!(1.25));
        assert_eq!(b["tcp_pace_mib_s"], json!(225.0));
        assert!(text.contains("loopback TCP beside it, paced") && text.contains("reachable"), "{text}");
    }
}
