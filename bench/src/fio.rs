//! fio, the raw-disk yardstick: the same shape through io_uring and O_DIRECT.
//!
//! fio works on `chunks` files named `chunk.N` in `DIR/fio`, each as big as
//! one engine chunk's data, walked the way the engine walks its chunks (see
//! [`args`]). Neither side fsyncs. fio's JSON goes to a file (a pipe could fill up
//! while we wait) and is parsed for bandwidth, IOPS, total latency
//! percentiles (`lat_ns`, submission to completion, like the engine's);
//! CPU is measured around the process (see [`Fio`]).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::interrupt;
use crate::plan::Plan;
use crate::scenario::{Access, Shape};
use crate::stats::{children_cpu, CpuTimes, DiskBytes, Figures};

/// A whole-data-set run that takes longer than this has hung.
const SIZE_RUN_LIMIT: Duration = Duration::from_secs(900);
/// Extra time a timed run gets for setup and teardown before it is killed.
const TIMED_RUN_SLACK: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(20);

/// Checks that fio runs, and returns its version line.
pub fn check_installed(fio: &Path) -> Result<String> {
    let output = Command::new(fio).arg("--version").output().map_err(|e| {
        anyhow!("cannot run fio ({}): {e}; install it first, e.g. `apt-get install -y fio`", fio.display())
    })?;
    if !output.status.success() {
        bail!("`{} --version` failed: {}", fio.display(), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Where fio's I/O buffers live (`--iomem`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    /// System V shared memory in huge pages: physically contiguous, like
    /// the engine's pool tends to be (see `hugepages`).
    HugePages,
    Malloc,
}

impl Memory {
    pub fn fio_name(self) -> &'static str {
        match self {
            Memory::HugePages => "shmhuge",
            Memory::Malloc => "malloc",
        }
    }
}

/// Name of data file `index` (`chunk.N`, as for the engine's chunk N+1).
fn file_name(index: usize) -> String {
    format!("chunk.{index}")
}

/// The arguments of one fio run; the files live in `dir`.
///
/// Sequential runs are `streams` jobs, each with its share of the queue
/// depth and every `streams`-th file, front to back one file at a time:
/// exactly the engine's walk. (A single job with `--openfiles` looked the
/// same on paper but drained its queue at every file switch: QD 1–4 most of
/// the time.) Random runs are one job over all files, picking one per I/O.
pub fn args(plan: &Plan, shape: &Shape, dir: &Path, memory: Memory) -> Vec<String> {
    let mut args = vec![
        format!("--directory={}", dir.display()),
        "--ioengine=io_uring".to_string(),
        "--direct=1".to_string(),
        format!("--iomem={}", memory.fio_name()),
        format!("--rw={}", shape.fio_rw()),
        format!("--bs={}", shape.request_bytes),
        format!("--filesize={}", plan.chunk_bytes()),
        // The engine grows chunk files by writing; fio must not preallocate.
        "--fallocate=none".to_string(),
        "--lat_percentiles=1".to_string(),
        "--percentile_list=50:99".to_string(),
        "--group_reporting".to_string(),
        "--output-format=json".to_string(),
        "--eta=never".to_string(),
    ];
    if let Some(duration) = shape.duration {
        args.push("--time_based".to_string());
        args.push(format!("--runtime={}s", duration.as_secs().max(1)));
    }
    match shape.access {
        Access::Sequential => {
            let streams = shape.streams.clamp(1, plan.chunks);
            args.push(format!("--iodepth={}", (shape.queue_depth / streams).max(1)));
            args.push("--file_service_type=sequential".to_string());
            for stream in 0..streams {
                let files: Vec<String> = (stream..plan.chunks).step_by(streams).map(file_name).collect();
                args.push(format!("--name=stream{stream}"));
                args.push(format!("--filename={}", files.join(":")));
            }
        }
        Access::Random => {
            args.push(format!("--iodepth={}", shape.queue_depth));
            args.push("--file_service_type=random".to_string());
            args.push("--norandommap".to_string());
            args.push("--randrepeat=0".to_string());
            let files: Vec<String> = (0..plan.chunks).map(file_name).collect();
            args.push("--name=random".to_string());
            args.push(format!("--filename={}", files.join(":")));
        }
    }
    args
}

/// Runs fio in one folder, and knows what its start-up costs.
///
/// CPU: fio's own `usr_cpu`/`sys_cpu` cover only its job thread
/// (`RUSAGE_THREAD`), not the io-wq workers io_uring hands blocking work
/// to, nor completions the kernel runs elsewhere; measured here they were
/// a third to a fifth of fio's real use on writes. The engine's figure
/// counts all its threads, so fio's is taken the same way, from
/// `RUSAGE_CHILDREN` around the whole process, less the CPU a run of the
/// same job that stops after one I/O takes (start-up, file setup, exit:
/// about 0.15 s here, as much as a whole 1 GiB run's I/O).
pub struct Fio {
    plan: Plan,
    dir: PathBuf,
    memory: Memory,
    startup: HashMap<Vec<String>, CpuTimes>,
}

impl Fio {
    /// fio's files, output and error log live in `dir`.
    pub fn new(plan: &Plan, dir: &Path, memory: Memory) -> Fio {
        Fio { plan: plan.clone(), dir: dir.to_path_buf(), memory, startup: HashMap::new() }
    }

    /// Runs `shape` once and measures it.
    pub fn run(&mut self, shape: &Shape) -> Result<Figures> {
        let startup = self.calibrate(shape)?;
        let args = args(&self.plan, shape, &self.dir, self.memory);
        let (text, cpu) = self.spawn(&args, shape)?;
        let mut figures = parse(&text, shape.write)?;
        let cpu = cpu.since(&startup);
        // Never below what fio itself saw its job thread use.
        figures.cpu_s = cpu.total_s().max(figures.job_cpu_s);
        figures.cpu_sys_s = cpu.sys_s;
        figures.switches = cpu.switches;
        Ok(figures)
    }

    /// The CPU fio takes for `shape` apart from its I/O: measured once per
    /// shape, by the same job stopped after one request.
    pub fn calibrate(&mut self, shape: &Shape) -> Result<CpuTimes> {
        let args = args(&self.plan, shape, &self.dir, self.memory);
        if let Some(cpu) = self.startup.get(&args) {
            return Ok(*cpu);
        }
        let mut once = args.clone();
        once.retain(|a| a != "--time_based" && !a.starts_with("--runtime="));
        // A global option: it must come before the first --name.
        once.insert(0, "--number_ios=1".to_string());
        let (_, cpu) = self.spawn(&once, shape).context("fio start-up calibration run")?;
        tracing::debug!("fio start-up CPU for {}: {cpu:?}", shape.fio_rw());
        self.startup.insert(args, cpu);
        Ok(cpu)
    }

    /// Runs fio with `args` and returns its JSON output and CPU use.
    fn spawn(&self, args: &[String], shape: &Shape) -> Result<(String, CpuTimes)> {
        let limit = shape.duration.map_or(SIZE_RUN_LIMIT, |d| d + TIMED_RUN_SLACK);
        run_process(&self.plan.fio, args, &self.dir, limit)
    }
}

/// Runs `fio` with `args`, its JSON output and error log in files in
/// `dir`, killed past `limit` or on Ctrl-C. Returns the JSON text and the
/// CPU the process used (`RUSAGE_CHILDREN` around it).
pub fn run_process(fio: &Path, args: &[String], dir: &Path, limit: Duration) -> Result<(String, CpuTimes)> {
    let json_path = dir.join("fio-output.json");
    let err_path = dir.join("fio-stderr.txt");
    let stdout = File::create(&json_path).with_context(|| format!("creating {}", json_path.display()))?;
    let stderr = File::create(&err_path).with_context(|| format!("creating {}", err_path.display()))?;
    tracing::debug!("fio {}", args.join(" "));
    let cpu_before = children_cpu()?;
    let mut child = Command::new(fio)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {}", fio.display()))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for fio")? {
            break status;
        }
        if interrupt::requested() || started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            interrupt::check()?;
            bail!("fio ran past {} s and was killed", limit.as_secs());
        }
        std::thread::sleep(POLL);
    };
    let cpu = children_cpu()?.since(&cpu_before);
    let text = std::fs::read_to_string(&json_path).with_context(|| format!("reading {}", json_path.display()))?;
    if !status.success() {
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        bail!("fio failed ({status}): {}\n{}", err.trim(), tail(&text));
    }
    Ok((text, cpu))
}

fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(2000);
    text.get(start..).unwrap_or(text)
}

/// Reads one job's figures out of fio's JSON. Warnings fio prints before
/// the JSON object are skipped.
pub fn parse(text: &str, write: bool) -> Result<Figures> {
    let start = text.find('{').ok_or_else(|| anyhow!("no JSON object in fio output: {}", tail(text)))?;
    let root: Value = serde_json::from_str(&text[start..]).context("fio output is not JSON")?;
    let job = root.pointer("/jobs/0").ok_or_else(|| anyhow!("fio output has no job"))?;
    if let Some(error) = job.get("error").and_then(Value::as_i64).filter(|&e| e != 0) {
        bail!("fio job failed with error {error}");
    }
    let side = job.get(if write { "write" } else { "read" }).ok_or_else(|| anyhow!("fio job has no figures"))?;
    let num = |v: &Value, path: &str| -> Result<f64> {
        v.pointer(path).and_then(Value::as_f64).ok_or_else(|| anyhow!("fio output lacks {path}"))
    };
    let runtime_ms = num(side, "/runtime")?;
    // `lat_ns` (submit to completion) when --lat_percentiles gave it, else
    // `clat_ns` (completion latency only).
    let percentile = |p: &str| -> Result<f64> {
        ["/lat_ns/percentile/", "/clat_ns/percentile/"]
            .iter()
            .find_map(|prefix| side.pointer(&format!("{prefix}{p}")).and_then(Value::as_f64))
            .map(|ns| ns / 1000.0)
            .ok_or_else(|| anyhow!("fio output lacks the {p} percentile"))
    };
    // usr_cpu and sys_cpu are percentages of the job's run time.
    let cpu_percent = num(job, "/usr_cpu")? + num(job, "/sys_cpu")?;
    let job_runtime_ms = job.get("job_runtime").and_then(Value::as_f64).unwrap_or(runtime_ms);
    let job_cpu_s = cpu_percent / 100.0 * job_runtime_ms / 1000.0;
    Ok(Figures {
        bytes: num(side, "/io_bytes")? as u64,
        ops: num(side, "/total_ios")? as u64,
        seconds: runtime_ms / 1000.0,
        p50_us: percentile("50.000000")?,
        p99_us: percentile("99.000000")?,
        cpu_s: job_cpu_s,
        cpu_sys_s: num(job, "/sys_cpu")? / 100.0 * job_runtime_ms / 1000.0,
        switches: job.get("ctx").and_then(Value::as_f64).unwrap_or(0.0),
        job_cpu_s,
        disk: DiskBytes::default(),
    })
}

/// Removes fio's data files, so the next write run starts from fresh files
/// as the engine's does.
pub fn remove_files(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let path: PathBuf = entry.with_context(|| format!("listing {}", dir.display()))?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("chunk.")) {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    const SAMPLE: &str = r#"fio: some warning
{
  "fio version" : "fio-3.33",
  "jobs" : [
    {
      "jobname" : "elkfs-bench",
      "error" : 0,
      "job_runtime" : 2000,
      "read" : {
        "io_bytes" : 1073741824, "bw_bytes" : 536870912, "iops" : 512.0, "runtime" : 2000, "total_ios" : 1024,
        "clat_ns" : { "percentile" : { "50.000000" : 1000000, "99.000000" : 3000000 } },
        "lat_ns" : { "percentile" : { "50.000000" : 1100000, "99.000000" : 3200000 } }
      },
      "write" : { "io_bytes" : 0, "runtime" : 0, "total_ios" : 0 },
      "usr_cpu" : 5.0,
      "sys_cpu" : 20.0
    }
  ]
}"#;

    #[test]
    fn parses_a_job() {
        let f = parse(SAMPLE, false).unwrap();
        assert_eq!(f.bytes, 1 << 30);
        assert_eq!(f.ops, 1024);
        assert_eq!(f.mib_s(), 512.0);
        assert_eq!((f.p50_us, f.p99_us), (1100.0, 3200.0));
        assert!((f.job_cpu_s - 0.5).abs() < 1e-9);
        assert!((f.cpu_sys_s - 0.4).abs() < 1e-9);
        assert!(parse(SAMPLE, true).is_err(), "a write side without latencies is an error");
        assert!(parse("no json here", false).is_err());
    }

    #[test]
    fn args_follow_the_shape() {
        let plan = crate::plan::test_plan(16, 1024, false);
        let seq = args(&plan, &plan.shape(Scenario::SeqWrite), Path::new("/d"), Memory::HugePages);
        for want in [
            "--rw=write",
            "--bs=1048576",
            "--iodepth=4",
            "--filesize=67108864",
            "--iomem=shmhuge",
            "--name=stream3",
            "--filename=chunk.1:chunk.5:chunk.9:chunk.13",
        ] {
            assert!(seq.iter().any(|a| a == want), "{want} missing from {seq:?}");
        }
        assert!(!seq.iter().any(|a| a == "--time_based"));
        let first_job = seq.iter().position(|a| a.starts_with("--name=")).unwrap();
        assert!(seq[first_job..].iter().all(|a| a.starts_with("--name=") || a.starts_with("--filename=")));
        let rand = args(&plan, &plan.shape(Scenario::RandRead4k), Path::new("/d"), Memory::Malloc);
        for want in ["--rw=randread", "--bs=4096", "--iodepth=32", "--time_based", "--runtime=10s", "--iomem=malloc"] {
            assert!(rand.iter().any(|a| a == want), "{want} missing from {rand:?}");
        }
        assert!(rand.last().unwrap().ends_with(":chunk.15"));
    }
}
