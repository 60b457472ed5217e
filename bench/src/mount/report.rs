//! The mount bench's table and one-line JSON object.
//!
//! One row per work and stack: mfsmount's figure, elkfs mount's, and the
//! ratio elkfs mount / mfsmount as the median of per-round ratios with min
//! and max (each round's clusters ran back to back, so a round's ratio is
//! the fairest single comparison), against the target where it
//! sets one. Then per work the all-elkfs stack (elkfs master, chunkservers
//! and mount) over the all-MooseFS one, paired by round the same way.
//!
//! Figures are medians over the rounds that succeeded; a round where
//! either side failed gives no ratio, and a pairing with no successful
//! round shows `failed` (and misses any target). CPU of the mount process
//! is CPU-seconds per GiB of file data for the fio jobs and CPU-µs per
//! file for the small-file phases, where the data is tiny.

use std::io::Write;

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::small::FILE_BYTES;
use super::{Client, MountPlan, Results, Stack, Unit, Work};
use crate::cluster::jobs::{Job, QUEUE_DEPTH};
use crate::cluster::report::Setting;
use crate::cluster::Sample;
use crate::report::{insert_spread, num, spread_text};
use crate::stats::{ratio, spread, Spread};

/// The main figure of `work` in one sample.
fn metric(work: Work, s: &Sample) -> f64 {
    match work.unit() {
        Unit::MibPerSecond => s.figures.mib_s(),
        Unit::Iops | Unit::FilesPerSecond => s.figures.iops(),
    }
}

/// Medians over the successful rounds of one stack, client and work.
#[derive(Debug, Clone, Copy, Default)]
pub struct Medians {
    pub value: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mount_cpu_s_per_gib: f64,
    pub mount_cpu_us_per_op: f64,
    pub master_cpu_us_per_op: f64,
    pub cs_cpu_s_per_gib: f64,
    pub cs_cpu_us_per_op: f64,
    /// fio's CPU, or the bench's own threads' in the small-file phases.
    pub client_cpu_us_per_op: f64,
    pub machine_busy: f64,
    /// Rounds that succeeded.
    pub rounds: usize,
}

impl Medians {
    fn of(work: Work, slots: &[Option<Sample>]) -> Option<Medians> {
        let ok: Vec<&Sample> = slots.iter().flatten().collect();
        if ok.is_empty() {
            return None;
        }
        let median = |f: &dyn Fn(&Sample) -> f64| spread(&ok.iter().map(|s| f(s)).collect::<Vec<_>>()).median;
        let per_op = |cpu_s: f64, s: &Sample| ratio(cpu_s * 1e6, s.figures.ops as f64);
        Some(Medians {
            value: median(&|s| metric(work, s)),
            p50_us: median(&|s| s.figures.p50_us),
            p99_us: median(&|s| s.figures.p99_us),
            mount_cpu_s_per_gib: median(&|s| s.figures.per_gib(s.mount_cpu_s)),
            mount_cpu_us_per_op: median(&|s| per_op(s.mount_cpu_s, s)),
            master_cpu_us_per_op: median(&|s| per_op(s.master_cpu_s, s)),
            cs_cpu_s_per_gib: median(&|s| s.figures.per_gib(s.cs_cpu_s)),
            cs_cpu_us_per_op: median(&|s| per_op(s.cs_cpu_s, s)),
            client_cpu_us_per_op: median(&|s| per_op(s.client_cpu_s, s)),
            machine_busy: median(&|s| s.machine_busy),
            rounds: ok.len(),
        })
    }
}

/// Per-round `a / b` of `work`'s figure over the rounds both succeeded.
fn per_round(work: Work, a: &[Option<Sample>], b: &[Option<Sample>]) -> Option<Spread> {
    let ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter_map(|(x, y)| Some(ratio(metric(work, x.as_ref()?), metric(work, y.as_ref()?))))
        .collect();
    (!ratios.is_empty()).then(|| spread(&ratios))
}

/// One work on one stack: the two clients side by side.
#[derive(Debug, Clone)]
pub struct StackRow {
    pub stack: Stack,
    pub mfsmount: Option<Medians>,
    pub elkfs: Option<Medians>,
    /// elkfs mount / mfsmount.
    pub ratio: Option<Spread>,
}

/// One work, summarised over its rounds.
#[derive(Debug, Clone)]
pub struct Row {
    pub work: Work,
    pub stacks: Vec<StackRow>,
    /// The elkfs stack with elkfs mount over the MooseFS stack with
    /// mfsmount.
    pub all: Option<Spread>,
    pub all_elkfs: Option<Medians>,
    pub all_moose: Option<Medians>,
}

/// Everything the mount bench prints.
#[derive(Debug, Clone)]
pub struct MountReport {
    pub rows: Vec<Row>,
    pub results: Results,
    pub setting: Setting,
    pub plan: MountPlan,
}

/// `met` or `MISSED` against `target`, empty without one.
fn verdict(target: Option<f64>, ratio: Option<&Spread>) -> String {
    match (target, ratio) {
        (None, _) => String::new(),
        (Some(t), Some(r)) if r.median >= t => format!(">={t:.1} met"),
        (Some(t), _) => format!(">={t:.1} MISSED"),
    }
}

fn meets(target: f64, ratio: Option<&Spread>) -> bool {
    ratio.is_some_and(|r| r.median >= target)
}

fn value_text(unit: Unit, m: Option<&Medians>) -> String {
    let Some(m) = m else { return "failed".into() };
    match unit {
        Unit::MibPerSecond => format!("{:.0} MiB/s", m.value),
        Unit::Iops => format!("{:.0} IOPS", m.value),
        Unit::FilesPerSecond => format!("{:.0} files/s", m.value),
    }
}

fn ratio_text(r: Option<&Spread>) -> String {
    r.map_or_else(|| "failed".into(), spread_text)
}

/// `m|e` of one figure of the two sides, `-` for a failed side.
fn pair(m: Option<&Medians>, e: Option<&Medians>, f: impl Fn(&Medians) -> f64, decimals: usize) -> String {
    let side = |x: Option<&Medians>| x.map_or_else(|| "-".into(), |x| format!("{:.*}", decimals, f(x)));
    format!("{}|{}", side(m), side(e))
}

impl MountReport {
    pub fn new(plan: &MountPlan, results: Results, setting: Setting) -> MountReport {
        let rows = plan
            .works
            .iter()
            .map(|&work| {
                let stacks = Stack::ALL
                    .iter()
                    .map(|&stack| {
                        let m = results.slots(stack, Client::Mfsmount, work);
                        let e = results.slots(stack, Client::Elkfs, work);
                        StackRow {
                            stack,
                            mfsmount: Medians::of(work, &m),
                            elkfs: Medians::of(work, &e),
                            ratio: per_round(work, &e, &m),
                        }
                    })
                    .collect();
                let all_e = results.slots(Stack::Elkfs, Client::Elkfs, work);
                let all_m = results.slots(Stack::Moose, Client::Mfsmount, work);
                Row {
                    work,
                    stacks,
                    all: per_round(work, &all_e, &all_m),
                    all_elkfs: Medians::of(work, &all_e),
                    all_moose: Medians::of(work, &all_m),
                }
            })
            .collect();
        MountReport { rows, results, setting, plan: plan.clone() }
    }

    fn shape(&self, work: Work) -> String {
        let p = &self.plan;
        match work {
            Work::Fio(Job::RandRead { goal }) => format!("4 KiB QD{QUEUE_DEPTH} {} s g{goal}", p.seconds),
            Work::Fio(Job::SeqWrite { goal } | Job::SeqRead { goal }) => format!("1 MiB QD{QUEUE_DEPTH} g{goal}"),
            Work::Fio(_) => String::new(),
            Work::Small(_) => format!("{} x 4 KiB, {} thr", p.files, p.threads),
        }
    }

    /// The mount CPU column: CPU-s/GiB for fio jobs, CPU-µs/file for the
    /// small-file phases.
    fn mount_cpu(&self, work: Work, r: &StackRow) -> String {
        match work {
            Work::Fio(_) => {
                format!("{} s/GiB", pair(r.mfsmount.as_ref(), r.elkfs.as_ref(), |m| m.mount_cpu_s_per_gib, 2))
            }
            Work::Small(_) => {
                format!("{} us/file", pair(r.mfsmount.as_ref(), r.elkfs.as_ref(), |m| m.mount_cpu_us_per_op, 0))
            }
        }
    }

    /// The human-readable table.
    pub fn print_table(&self, out: &mut dyn Write) -> Result<()> {
        let p = &self.plan;
        let s = &self.setting;
        writeln!(
            out,
            "elkfs bench mount: mfsmount {} vs elkfs mount, on a moosefs stack (mfsmaster + 3 mfschunkserver) and an elkfs stack (elkfs master + 3 elkfs chunkserver), in {}, {} round(s), a fresh cluster per stack and client",
            s.moosefs_version,
            p.dir.display(),
            p.rounds
        )?;
        writeln!(
            out,
            "fio jobs: {}, io_uring direct=1 QD{QUEUE_DEPTH}, one file of {} MiB at goal 1 and one at goal 2 (writes end with fsync), 4 KiB random reads of the goal 1 file for {} s",
            s.fio_version,
            p.file_bytes >> 20,
            p.seconds
        )?;
        writeln!(
            out,
            "small files: {} files of {FILE_BYTES} B at goal 1 over {} threads (a directory each): create = open(O_CREAT|O_EXCL)+write+close, stat, read = open+read+verify+close, delete",
            p.files, p.threads
        )?;
        writeln!(
            out,
            "before every job: sync + drop_caches; a fresh mount before every fio read and before the small-file stat (cold caches); trash time 0"
        )?;
        writeln!(
            out,
            "machine: {} CPUs, Linux {}, load {} at start, {} at end",
            s.cpus, s.kernel, s.load_before, s.load_after
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "{:<15} {:<8} {:<21} {:>13} {:>13}  {:<19} {:<12} {:>13} {:>15} {:>21}",
            "job",
            "stack",
            "shape",
            "mfsmount",
            "elkfs mount",
            "e/m med [min-max]",
            "target",
            "p50 us m|e",
            "p99 us m|e",
            "mount CPU m|e"
        )?;
        for row in &self.rows {
            let unit = row.work.unit();
            for r in &row.stacks {
                let (m, e) = (r.mfsmount.as_ref(), r.elkfs.as_ref());
                writeln!(
                    out,
                    "{:<15} {:<8} {:<21} {:>13} {:>13}  {:<19} {:<12} {:>13} {:>15} {:>21}",
                    row.work.key(),
                    r.stack.key(),
                    self.shape(row.work),
                    value_text(unit, m),
                    value_text(unit, e),
                    ratio_text(r.ratio.as_ref()),
                    verdict(row.work.client_target(), r.ratio.as_ref()),
                    pair(m, e, |x| x.p50_us, 0),
                    pair(m, e, |x| x.p99_us, 0),
                    self.mount_cpu(row.work, r)
                )?;
            }
        }
        writeln!(
            out,
            "e/m: elkfs mount / mfsmount on the same stack, median of per-round ratios [min-max]; m|e: mfsmount|elkfs mount; mount CPU: CPU-s per GiB of file data (fio jobs), CPU-us per file (small files)"
        )?;
        writeln!(out)?;
        writeln!(out, "all-elkfs (elkfs master + chunkservers + elkfs mount) vs all-MooseFS (mfsmaster + mfschunkserver + mfsmount):")?;
        writeln!(
            out,
            "{:<15} {:>13} {:>13}  {:<19} {:<12}",
            "job", "all-MooseFS", "all-elkfs", "ratio med [min-max]", "target"
        )?;
        for row in &self.rows {
            let unit = row.work.unit();
            writeln!(
                out,
                "{:<15} {:>13} {:>13}  {:<19} {:<12}",
                row.work.key(),
                value_text(unit, row.all_moose.as_ref()),
                value_text(unit, row.all_elkfs.as_ref()),
                ratio_text(row.all.as_ref()),
                verdict(row.work.stack_target(), row.all.as_ref())
            )?;
        }
        if !self.results.disk.is_empty() {
            let w = spread(&self.results.disk.iter().map(|d| d.0).collect::<Vec<_>>());
            let r = spread(&self.results.disk.iter().map(|d| d.1).collect::<Vec<_>>());
            writeln!(
                out,
                "the disk alone (fio, same jobs, on the clusters' folder): seq write {:.0} MiB/s [{:.0}-{:.0}], seq read {:.0} MiB/s [{:.0}-{:.0}]; every stack's goal 1 writes share that disk, goal 2 writes put each byte on it twice",
                w.median, w.min, w.max, r.median, r.min, r.max
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "CPU per op (fio request or file), m|e: chunkservers (all 3), master, and the client side (fio, or the bench's own threads for small files); machine CPU busy"
        )?;
        for row in &self.rows {
            for r in &row.stacks {
                let (m, e) = (r.mfsmount.as_ref(), r.elkfs.as_ref());
                writeln!(
                    out,
                    "{:<15} {:<8} CS {} us, master {} us, client {} us; CS CPU-s/GiB {}; busy {}% (rounds ok {})",
                    row.work.key(),
                    r.stack.key(),
                    pair(m, e, |x| x.cs_cpu_us_per_op, 0),
                    pair(m, e, |x| x.master_cpu_us_per_op, 1),
                    pair(m, e, |x| x.client_cpu_us_per_op, 0),
                    pair(m, e, |x| x.cs_cpu_s_per_gib, 2),
                    pair(m, e, |x| 100.0 * x.machine_busy, 0),
                    pair(m, e, |x| x.rounds as f64, 0)
                )?;
            }
        }
        if !self.results.failures.is_empty() {
            writeln!(out)?;
            writeln!(out, "failures ({}):", self.results.failures.len())?;
            for failure in &self.results.failures {
                let lines: Vec<&str> = failure.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect();
                writeln!(out, "  {}", lines.join("\n    "))?;
            }
        }
        Ok(())
    }

    /// One JSON object keyed by work, each with a `moosefs` and an `elkfs`
    /// object and `all_elkfs_vs_all_moosefs`; then `failures`, `config`.
    pub fn json(&self) -> Value {
        let mut root = Map::new();
        for row in &self.rows {
            let unit = row.work.unit().key();
            let mut e = Map::new();
            for r in &row.stacks {
                let mut side = Map::new();
                for (client, m) in [(Client::Mfsmount, &r.mfsmount), (Client::Elkfs, &r.elkfs)] {
                    insert_medians(&mut side, client.key(), unit, m.as_ref());
                }
                insert_ratio(&mut side, r.ratio.as_ref(), row.work.client_target());
                e.insert(r.stack.key().into(), Value::Object(side));
            }
            let mut all = Map::new();
            insert_medians(&mut all, "all_moosefs", unit, row.all_moose.as_ref());
            insert_medians(&mut all, "all_elkfs", unit, row.all_elkfs.as_ref());
            insert_ratio(&mut all, row.all.as_ref(), row.work.stack_target());
            e.insert("all_elkfs_vs_all_moosefs".into(), Value::Object(all));
            root.insert(row.work.key().into(), Value::Object(e));
        }
        root.insert("failures".into(), json!(self.results.failures));
        let disk = |f: fn(&(f64, f64)) -> f64| spread(&self.results.disk.iter().map(f).collect::<Vec<_>>()).median;
        if !self.results.disk.is_empty() {
            root.insert(
                "disk_alone".into(),
                json!({"seq_write_mib_s": disk(|d| d.0), "seq_read_mib_s": disk(|d| d.1), "rounds": self.results.disk.len()}),
            );
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
                "files": p.files,
                "threads": p.threads,
                "file_bytes_small": FILE_BYTES,
                "quick": p.quick,
                "chunkservers": super::SERVERS,
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

/// `<side>_<unit>`, latencies and CPU of one side; `<side>_failed` when
/// no round of it succeeded.
fn insert_medians(map: &mut Map<String, Value>, side: &str, unit: &str, m: Option<&Medians>) {
    let Some(m) = m else {
        map.insert(format!("{side}_failed"), Value::Bool(true));
        return;
    };
    map.insert(format!("{side}_{unit}"), num(m.value));
    map.insert(format!("{side}_p50_us"), num(m.p50_us));
    map.insert(format!("{side}_p99_us"), num(m.p99_us));
    map.insert(format!("{side}_mount_cpu_s_per_gib"), num(m.mount_cpu_s_per_gib));
    map.insert(format!("{side}_mount_cpu_us_per_op"), num(m.mount_cpu_us_per_op));
    map.insert(format!("{side}_master_cpu_us_per_op"), num(m.master_cpu_us_per_op));
    map.insert(format!("{side}_cs_cpu_s_per_gib"), num(m.cs_cpu_s_per_gib));
    map.insert(format!("{side}_cs_cpu_us_per_op"), num(m.cs_cpu_us_per_op));
    map.insert(format!("{side}_client_cpu_us_per_op"), num(m.client_cpu_us_per_op));
    map.insert(format!("{side}_machine_busy"), num(m.machine_busy));
    map.insert(format!("{side}_rounds_ok"), json!(m.rounds));
}

/// `ratio`, `ratio_min`, `ratio_max` (absent when no round paired up),
/// and `target` / `meets_target` where there is a target.
fn insert_ratio(map: &mut Map<String, Value>, r: Option<&Spread>, target: Option<f64>) {
    if let Some(r) = r {
        insert_spread(map, "ratio", r);
    }
    if let Some(t) = target {
        map.insert("target".into(), num(t));
        map.insert("meets_target".into(), Value::Bool(meets(t, r)));
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::small::Phase;
    use super::*;
    use crate::stats::Figures;

    fn sample(per_s: f64) -> Sample {
        let figures = Figures {
            bytes: (per_s as u64) << 20,
            ops: per_s as u64,
            seconds: 1.0,
            p50_us: 10.0,
            p99_us: 20.0,
            ..Figures::default()
        };
        Sample { figures, mount_cpu_s: 0.5, cs_cpu_s: 1.0, master_cpu_s: 0.1, machine_busy: 0.5, ..Sample::default() }
    }

    fn plan() -> MountPlan {
        MountPlan {
            dir: PathBuf::from("/var/tmp/m"),
            rounds: 2,
            file_bytes: 256 << 20,
            seconds: 3,
            files: 1000,
            threads: 4,
            fio: PathBuf::from("fio"),
            json: true,
            quick: true,
            works: Work::ALL.to_vec(),
            stacks: Stack::ALL.to_vec(),
        }
    }

    #[test]
    fn ratios_pair_rounds_and_failures_show() {
        let mut results = Results::new(2);
        for work in Work::ALL {
            for (r, (moose, elkfs)) in [(100.0, 150.0), (200.0, 200.0)].into_iter().enumerate() {
                results.record(Stack::Moose, Client::Mfsmount, work, r + 1, sample(moose));
                results.record(Stack::Moose, Client::Elkfs, work, r + 1, sample(elkfs));
                results.record(Stack::Elkfs, Client::Mfsmount, work, r + 1, sample(moose));
                if work != Work::Small(Phase::Create) {
                    results.record(Stack::Elkfs, Client::Elkfs, work, r + 1, sample(4.0 * moose));
                }
            }
        }
        // Round 2 of the all-elkfs seq write g2 failed.
        let g2 = Work::Fio(Job::SeqWrite { goal: 2 });
        results.samples.get_mut(&(Stack::Elkfs, Client::Elkfs, g2)).unwrap()[1] = None;
        results.failures.push("round 2/2 elkfs stack, elkfs mount: seq_write_g2: boom\n\nmount.log:\n".into());
        let report = MountReport::new(&plan(), results, Setting::probe("fio-x".into()));
        let j = report.json();
        let w = &j["seq_write_g1"]["moosefs"];
        // Per-round ratios 1.5 and 1.0.
        assert_eq!(
            (w["ratio"].clone(), w["ratio_min"].clone(), w["ratio_max"].clone()),
            (json!(1.25), json!(1.0), json!(1.5))
        );
        assert_eq!(w["target"], json!(1.3));
        assert_eq!(w["meets_target"], json!(false));
        assert_eq!(w["mfsmount_mib_s"], json!(150.0));
        assert_eq!(j["seq_write_g1"]["elkfs"]["meets_target"], json!(true));
        let all = &j["seq_write_g2"]["all_elkfs_vs_all_moosefs"];
        assert_eq!(all["ratio"], json!(4.0), "only round 1 pairs up");
        assert_eq!(all["meets_target"], json!(true));
        assert_eq!(all["all_elkfs_rounds_ok"], json!(1));
        assert!(j["seq_write_g1"]["all_elkfs_vs_all_moosefs"].get("target").is_none());
        let create = &j["small_create"];
        assert_eq!(create["elkfs"]["elkfs_mount_failed"], json!(true));
        assert_eq!(create["elkfs"]["meets_target"], json!(false));
        assert!(create["elkfs"].get("ratio").is_none());
        assert_eq!(create["moosefs"]["elkfs_mount_files_s"], json!(175.0));
        assert_eq!(j["rand_read_4k_g1"]["moosefs"]["mfsmount_iops"], json!(150.0));
        assert_eq!(j["failures"].as_array().unwrap().len(), 1);
        assert_eq!(j["config"]["files"], json!(1000));
        let mut text = Vec::new();
        report.print_table(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        for want in
            ["small_delete", "files/s", "failed", ">=1.3 MISSED", ">=2.0 met", "all-elkfs", "failures (1)", "us/file"]
        {
            assert!(text.contains(want), "{want} missing:\n{text}");
        }
        assert!(text.ends_with("seq_write_g2: boom\n    mount.log:\n"), "blank lines are left out:\n{text}");
    }
}
