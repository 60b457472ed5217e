//! `mfschunkserver.cfg`: the chunkserver's main configuration file, in
//! MooseFS's syntax (`elkfs_daemon::cfgfile`). Every key the 3.0.117
//! chunkserver reads is accepted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use elkfs_daemon::cfgfile::{self, decimal, flag, int, non_empty, parse_labels, secs, word};
use elkfs_engine::config::{parse_size, LEAVE_SPACE_DEFAULT, RR_CHUNK_COUNT_DEFAULT};
use elkfs_engine::EngineConfig;

use crate::error::{Error, Result};

/// Blocks a chunk file is sized ahead of its sequential writes (a
/// partly filled chunk ends with at most this many less one zero blocks).
const GROW_AHEAD_BLOCKS: usize = 16;
/// Where packages install the file; the daemon's `-c` overrides it.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/mfs/mfschunkserver.cfg";
/// The timeout used until the master answers with its own, when
/// `MASTER_TIMEOUT` is 0 (ask the master).
pub const MASTER_TIMEOUT_UNTIL_ASKED: Duration = Duration::from_secs(10);

/// Everything `mfschunkserver.cfg` can say, grouped by the part of the
/// daemon that uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct CsConfig {
    pub process: ProcessConfig,
    pub master: MasterConfig,
    pub clients: ClientsConfig,
    pub workers: WorkersConfig,
    pub hdd: HddConfig,
}

/// How the daemon process sets itself up before serving.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessConfig {
    /// `WORKING_USER`. `None` keeps the user the daemon was started as;
    /// MooseFS would switch to `mfs`, which the service unit can still ask
    /// for explicitly.
    pub working_user: Option<String>,
    /// `WORKING_GROUP`. `None` (or empty) means the user's primary group.
    pub working_group: Option<String>,
    pub syslog_ident: String,
    /// `LOCK_MEMORY`: mlockall, so the data path is never paged out.
    pub lock_memory: bool,
    /// `LIMIT_GLIBC_MALLOC_ARENAS`; 0 leaves glibc's default.
    pub limit_glibc_malloc_arenas: u32,
    pub disable_oom_killer: bool,
    /// `NICE_LEVEL`; applied only when the process may raise its priority.
    pub nice_level: i32,
    /// `FILE_UMASK` for group and others; the owner bits are always 0.
    pub file_umask: u32,
    /// `DATA_PATH`: where the lock file and the chunkserver id live.
    pub data_path: PathBuf,
}

/// The link to the master (port 9420).
#[derive(Debug, Clone, PartialEq)]
pub struct MasterConfig {
    pub host: String,
    pub port: u16,
    /// `MASTER_CONTROL_PORT`: documented for 3.0 but unused by a
    /// chunkserver; kept so the key is not reported as unknown.
    pub control_port: u16,
    /// `BIND_HOST`: local address for the master connection, `*` for any.
    pub bind_host: String,
    /// `MASTER_TIMEOUT`; `None` (the value 0) asks the master and uses
    /// [`MASTER_TIMEOUT_UNTIL_ASKED`] until it answers.
    pub timeout: Option<Duration>,
    pub reconnection_delay: Duration,
    /// `AUTH_CODE`, sent only when the master asks for authentication.
    pub auth_code: Option<String>,
    /// `LABELS` as the master takes them: bit i set for letter `'A' + i`.
    pub labels_mask: u32,
    /// Chunks per registration message; bounds the size of one message.
    pub chunks_per_register_packet: u32,
}

/// The listener for clients and other chunkservers (port 9422).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientsConfig {
    /// `CSSERV_LISTEN_HOST`, `*` for any.
    pub listen_host: String,
    /// `CSSERV_LISTEN_PORT`; 0 binds an ephemeral port (tests).
    pub listen_port: u16,
    /// `CSSERV_TIMEOUT`: a key from older MooseFS that 3.0 no longer reads;
    /// elkfs uses it as the idle timeout of one data connection.
    pub timeout: Duration,
}

/// The pool that runs chunk operations.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkersConfig {
    /// `WORKERS_MAX`: operations in flight at most.
    pub max: u32,
    /// `WORKERS_MAX_IDLE`: idle workers kept warm.
    pub max_idle: u32,
}

/// The data folders, their reserve and the background chunk tests.
#[derive(Debug, Clone, PartialEq)]
pub struct HddConfig {
    /// `HDD_CONF_FILENAME`, kept as written (MooseFS expects it absolute).
    pub conf_filename: PathBuf,
    /// `HDD_LEAVE_SPACE_DEFAULT`; elkfs defaults to 1 GiB, not 256 MiB.
    pub leave_space_default_bytes: u64,
    pub fsync_before_close: bool,
    pub rr_chunk_count: u32,
    /// `HDD_TEST_SPEED`, MiB per second per folder for the background
    /// checksum test; 0 turns the test off. When only the deprecated
    /// `HDD_TEST_FREQ` (seconds) is given, this is 10 / freq, as in 3.0.117.
    pub test_speed_mib_s: f64,
    /// `HDD_MIN_TEST_INTERVAL`: a chunk touched more recently is not tested.
    pub min_test_interval: Duration,
    /// `HDD_FADVISE_MIN_TIME`: drop a tested chunk from the page cache if it
    /// was idle this long; `None` (a negative value) never drops it.
    pub fadvise_min_time: Option<Duration>,
    pub rebalance_utilization_percent: u8,
    /// `HDD_HIGH_SPEED_REBALANCE_LIMIT`; 0 means the standard rebalance.
    pub high_speed_rebalance_limit: u32,
    /// `HDD_ERROR_TOLERANCE_COUNT` I/O errors per period mark a disk damaged.
    pub error_tolerance_count: u32,
    pub error_tolerance_period: Duration,
    pub sparsify_on_write: bool,
    /// `HDD_KEEP_DUPLICATES_HOURS`, as a duration.
    pub keep_duplicates: Duration,
    pub allow_starting_with_invalid_disks: bool,
}

impl Default for CsConfig {
    fn default() -> CsConfig {
        CsConfig {
            process: ProcessConfig {
                working_user: None,
                working_group: None,
                syslog_ident: "mfschunkserver".into(),
                lock_memory: false,
                limit_glibc_malloc_arenas: 4,
                disable_oom_killer: true,
                nice_level: -19,
                file_umask: 0o027,
                data_path: PathBuf::from("/var/lib/mfs"),
            },
            master: MasterConfig {
                host: "mfsmaster".into(),
                port: 9420,
                control_port: 9419,
                bind_host: "*".into(),
                timeout: None,
                reconnection_delay: Duration::from_secs(5),
                auth_code: None,
                labels_mask: 0,
                chunks_per_register_packet: 10_000,
            },
            clients: ClientsConfig { listen_host: "*".into(), listen_port: 9422, timeout: Duration::from_secs(5) },
            workers: WorkersConfig { max: 250, max_idle: 40 },
            hdd: HddConfig {
                conf_filename: PathBuf::from("/etc/mfs/mfshdd.cfg"),
                leave_space_default_bytes: LEAVE_SPACE_DEFAULT,
                fsync_before_close: false,
                rr_chunk_count: RR_CHUNK_COUNT_DEFAULT,
                test_speed_mib_s: 1.0,
                min_test_interval: Duration::from_secs(86_400),
                fadvise_min_time: Some(Duration::from_secs(86_400)),
                rebalance_utilization_percent: 20,
                high_speed_rebalance_limit: 0,
                error_tolerance_count: 2,
                error_tolerance_period: Duration::from_secs(600),
                sparsify_on_write: true,
                keep_duplicates: Duration::from_secs(168 * 3600),
                allow_starting_with_invalid_disks: false,
            },
        }
    }
}

/// Values whose meaning depends on other lines, settled after the last one.
#[derive(Default)]
struct Pending {
    test_speed_given: bool,
    test_freq_secs: Option<f64>,
}

impl CsConfig {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<CsConfig> {
        let text =
            std::fs::read_to_string(path).map_err(|source| Error::io(format!("read {}", path.display()), source))?;
        CsConfig::parse(&text, path)
    }

    /// Parses the text of a config file; `path` only names it in messages.
    pub fn parse(text: &str, path: &Path) -> Result<CsConfig> {
        let mut config = CsConfig::default();
        let mut pending = Pending::default();
        cfgfile::parse(text, path, |key, value| config.apply(key, value, &mut pending)).map_err(Error::from)?;
        if let (false, Some(freq)) = (pending.test_speed_given, pending.test_freq_secs) {
            config.hdd.test_speed_mib_s = if freq > 0.0 { 10.0 / freq } else { 0.0 };
        }
        Ok(config)
    }

    /// Sets one key; `Ok(false)` when the key is not one of ours.
    fn apply(&mut self, key: &str, value: &str, pending: &mut Pending) -> std::result::Result<bool, String> {
        let (p, m, c, w, h) =
            (&mut self.process, &mut self.master, &mut self.clients, &mut self.workers, &mut self.hdd);
        match key {
            "WORKING_USER" => p.working_user = non_empty(value),
            "WORKING_GROUP" => p.working_group = non_empty(value),
            "SYSLOG_IDENT" => p.syslog_ident = word(value)?,
            "LOCK_MEMORY" => p.lock_memory = flag(value)?,
            "LIMIT_GLIBC_MALLOC_ARENAS" => p.limit_glibc_malloc_arenas = int(value, 0..=1024)?,
            "DISABLE_OOM_KILLER" => p.disable_oom_killer = flag(value)?,
            "NICE_LEVEL" => p.nice_level = int(value, -20..=19)?,
            "FILE_UMASK" => p.file_umask = int(value, 0..=0o777)?,
            "DATA_PATH" => p.data_path = PathBuf::from(word(value)?),
            "MASTER_HOST" => m.host = word(value)?,
            "MASTER_PORT" => m.port = int(value, 1..=65535)?,
            "MASTER_CONTROL_PORT" => m.control_port = int(value, 1..=65535)?,
            "BIND_HOST" => m.bind_host = word(value)?,
            // The timeout travels to the master in 16 bits.
            "MASTER_TIMEOUT" => m.timeout = Some(secs(value, 0..=65535)?).filter(|t| !t.is_zero()),
            "MASTER_RECONNECTION_DELAY" => m.reconnection_delay = secs(value, 0..=86_400)?,
            "AUTH_CODE" => m.auth_code = non_empty(value),
            "LABELS" => m.labels_mask = parse_labels(value)?,
            "CHUNKS_PER_REGISTER_PACKET" => m.chunks_per_register_packet = int(value, 1000..=100_000)?,
            "CSSERV_LISTEN_HOST" => c.listen_host = word(value)?,
            "CSSERV_LISTEN_PORT" => c.listen_port = int(value, 0..=65535)?,
            "CSSERV_TIMEOUT" => c.timeout = secs(value, 1..=86_400)?,
            "WORKERS_MAX" => w.max = int(value, 1..=100_000)?,
            "WORKERS_MAX_IDLE" => w.max_idle = int(value, 0..=100_000)?,
            "HDD_CONF_FILENAME" => h.conf_filename = PathBuf::from(word(value)?),
            "HDD_LEAVE_SPACE_DEFAULT" => h.leave_space_default_bytes = parse_size(value)?,
            "HDD_FSYNC_BEFORE_CLOSE" => h.fsync_before_close = flag(value)?,
            "HDD_RR_CHUNK_COUNT" => h.rr_chunk_count = int(value, 1..=i64::from(u32::MAX))?,
            "HDD_TEST_SPEED" => {
                h.test_speed_mib_s = decimal(value, 0.0..=1e6)?;
                pending.test_speed_given = true;
            }
            "HDD_TEST_FREQ" => pending.test_freq_secs = Some(decimal(value, 0.0..=1e9)?),
            "HDD_MIN_TEST_INTERVAL" => h.min_test_interval = secs(value, 0..=i64::from(u32::MAX))?,
            "HDD_FADVISE_MIN_TIME" => {
                let seconds: i64 = int(value, i64::from(i32::MIN)..=i64::from(i32::MAX))?;
                h.fadvise_min_time = u64::try_from(seconds).ok().map(Duration::from_secs);
            }
            "HDD_REBALANCE_UTILIZATION" => h.rebalance_utilization_percent = int(value, 0..=100)?,
            "HDD_HIGH_SPEED_REBALANCE_LIMIT" => h.high_speed_rebalance_limit = int(value, 0..=1_000_000)?,
            "HDD_ERROR_TOLERANCE_COUNT" => h.error_tolerance_count = int(value, 0..=i64::from(u32::MAX))?,
            "HDD_ERROR_TOLERANCE_PERIOD" => h.error_tolerance_period = secs(value, 1..=i64::from(u32::MAX))?,
            "HDD_SPARSIFY_ON_WRITE" => h.sparsify_on_write = flag(value)?,
            "HDD_KEEP_DUPLICATES_HOURS" => h.keep_duplicates = secs(value, 0..=1_000_000)? * 3600,
            "ALLOW_STARTING_WITH_INVALID_DISKS" => h.allow_starting_with_invalid_disks = flag(value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A server of the one folder `dir/hdd` (`mfshdd.cfg` written into
    /// `dir`) on an ephemeral port of `listen_host`, with no background
    /// test and a master nobody answers for: the data port alone, for
    /// in-process tests and benches. The master link retries, harmlessly.
    pub fn standalone(dir: &Path, listen_host: &str) -> std::io::Result<CsConfig> {
        let hdd = dir.join("hdd");
        std::fs::create_dir_all(&hdd)?;
        std::fs::write(dir.join("mfshdd.cfg"), format!("{}\n", hdd.display()))?;
        let mut c = CsConfig::default();
        c.process.data_path = dir.to_path_buf();
        c.hdd.conf_filename = dir.join("mfshdd.cfg");
        c.hdd.leave_space_default_bytes = 16 << 20;
        c.hdd.test_speed_mib_s = 0.0;
        c.master.host = "127.0.0.1".into();
        c.master.port = 9;
        c.master.reconnection_delay = Duration::from_secs(60);
        c.clients.listen_host = listen_host.into();
        c.clients.listen_port = 0;
        Ok(c)
    }

    /// The engine's configuration: the folders from `HDD_CONF_FILENAME`
    /// and the knobs this file sets for the engine.
    pub fn engine_config(&self) -> Result<EngineConfig> {
        let disks = EngineConfig::parse_hdd_file(&self.hdd.conf_filename)?;
        Ok(EngineConfig {
            leave_space_default: self.hdd.leave_space_default_bytes,
            fsync_before_ack: self.hdd.fsync_before_close,
            rr_chunk_count: self.hdd.rr_chunk_count,
            // Chunk files sized ahead of sequential writes: ext4 runs
            // O_DIRECT writes that extend a file one at a time, and goal 1
            // writes through the mount went a third faster. (It was off
            // while a bench failure was blamed on it; that was the master
            // moving a chunk, see bench/RESULTS.md.)
            grow_ahead_blocks: GROW_AHEAD_BLOCKS,
            ..EngineConfig::new(disks)
        })
    }

    /// The timeout to use for the master link before the master has said.
    pub fn master_timeout_initial(&self) -> Duration {
        self.master.timeout.unwrap_or(MASTER_TIMEOUT_UNTIL_ASKED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CsConfig> {
        CsConfig::parse(text, Path::new("/etc/mfs/mfschunkserver.cfg"))
    }

    fn bad(text: &str) -> String {
        match parse(text) {
            Err(Error::Config { path, why }) => {
                assert_eq!(path, Path::new("/etc/mfs/mfschunkserver.cfg"));
                why
            }
            other => panic!("{text:?} should be a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_moosefs_3_0_117_except_the_reserve() {
        let config = CsConfig::default();
        assert_eq!(parse("").unwrap(), config);
        assert_eq!(config.master.host, "mfsmaster");
        assert_eq!(config.master.port, 9420);
        assert_eq!(config.master.timeout, None);
        assert_eq!(config.master_timeout_initial(), Duration::from_secs(10));
        assert_eq!(config.master.reconnection_delay, Duration::from_secs(5));
        assert_eq!(config.master.chunks_per_register_packet, 10_000);
        assert_eq!(config.clients.listen_host, "*");
        assert_eq!(config.clients.listen_port, 9422);
        assert_eq!(config.hdd.conf_filename, Path::new("/etc/mfs/mfshdd.cfg"));
        assert_eq!(config.hdd.leave_space_default_bytes, 1 << 30);
        assert_eq!(config.hdd.rr_chunk_count, 10_000);
        assert_eq!(config.hdd.test_speed_mib_s, 1.0);
        assert!(!config.hdd.fsync_before_close);
        assert_eq!(config.process.file_umask, 0o027);
        assert_eq!(config.process.working_user, None);
        assert_eq!((config.workers.max, config.workers.max_idle), (250, 40));
    }

    #[test]
    fn every_key_is_read() {
        let text = "\
            WORKING_USER = storage\n WORKING_GROUP = disk\n SYSLOG_IDENT = cs-rack4\n LOCK_MEMORY = 1\n\
            LIMIT_GLIBC_MALLOC_ARENAS = 2\n DISABLE_OOM_KILLER = 0\n NICE_LEVEL = -5\n FILE_UMASK = 022\n\
            DATA_PATH = /srv/mfs/run\n MASTER_HOST = 10.1.0.2\n MASTER_PORT = 19420\n MASTER_CONTROL_PORT = 19419\n\
            BIND_HOST = 10.1.0.7\n MASTER_TIMEOUT = 30\n MASTER_RECONNECTION_DELAY = 2\n AUTH_CODE = s3cret#x\n\
            LABELS = A,c;Z\n CHUNKS_PER_REGISTER_PACKET = 5000\n CSSERV_LISTEN_HOST = 10.1.0.7\n\
            CSSERV_LISTEN_PORT = 19422\n CSSERV_TIMEOUT = 8\n WORKERS_MAX = 64\n WORKERS_MAX_IDLE = 8\n\
            HDD_CONF_FILENAME = /srv/mfs/hdd.cfg\n HDD_LEAVE_SPACE_DEFAULT = 256MiB\n HDD_FSYNC_BEFORE_CLOSE = 1\n\
            HDD_RR_CHUNK_COUNT = 500\n HDD_TEST_SPEED = 2.5\n HDD_MIN_TEST_INTERVAL = 3600\n\
            HDD_FADVISE_MIN_TIME = -1\n HDD_REBALANCE_UTILIZATION = 50\n HDD_HIGH_SPEED_REBALANCE_LIMIT = 4\n\
            HDD_ERROR_TOLERANCE_COUNT = 5\n HDD_ERROR_TOLERANCE_PERIOD = 60\n HDD_SPARSIFY_ON_WRITE = 0\n\
            HDD_KEEP_DUPLICATES_HOURS = 24\n ALLOW_STARTING_WITH_INVALID_DISKS = 1\n";
        let c = parse(text).unwrap();
        let p = &c.process;
        assert_eq!((p.working_user.as_deref(), p.working_group.as_deref()), (Some("storage"), Some("disk")));
        assert_eq!(p.syslog_ident, "cs-rack4");
        assert!(p.lock_memory && !p.disable_oom_killer);
        assert_eq!((p.limit_glibc_malloc_arenas, p.nice_level, p.file_umask), (2, -5, 0o022));
        assert_eq!(p.data_path, Path::new("/srv/mfs/run"));
        let m = &c.master;
        assert_eq!(
            (m.host.as_str(), m.port, m.control_port, m.bind_host.as_str()),
            ("10.1.0.2", 19420, 19419, "10.1.0.7")
        );
        assert_eq!(m.timeout, Some(Duration::from_secs(30)));
        assert_eq!(c.master_timeout_initial(), Duration::from_secs(30));
        assert_eq!(m.reconnection_delay, Duration::from_secs(2));
        assert_eq!(m.auth_code.as_deref(), Some("s3cret#x"));
        assert_eq!(m.labels_mask, 1 | 1 << 2 | 1 << 25);
        assert_eq!(m.chunks_per_register_packet, 5000);
        assert_eq!((c.clients.listen_host.as_str(), c.clients.listen_port), ("10.1.0.7", 19422));
        assert_eq!(c.clients.timeout, Duration::from_secs(8));
        assert_eq!((c.workers.max, c.workers.max_idle), (64, 8));
        let h = &c.hdd;
        assert_eq!(h.conf_filename, Path::new("/srv/mfs/hdd.cfg"));
        assert_eq!(h.leave_space_default_bytes, 256 << 20);
        assert!(h.fsync_before_close && !h.sparsify_on_write && h.allow_starting_with_invalid_disks);
        assert_eq!((h.rr_chunk_count, h.test_speed_mib_s), (500, 2.5));
        assert_eq!(h.min_test_interval, Duration::from_secs(3600));
        assert_eq!(h.fadvise_min_time, None);
        assert_eq!((h.rebalance_utilization_percent, h.high_speed_rebalance_limit), (50, 4));
        assert_eq!((h.error_tolerance_count, h.error_tolerance_period), (5, Duration::from_secs(60)));
        assert_eq!(h.keep_duplicates, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn syntax_comments_blanks_repeats_and_junk() {
        let text = "# a comment\n\n   # indented comment\n\tMASTER_HOST\t=\tmaster.example  \r\n\
                    MASTER_PORT=9500\nthis line has no equals sign\nMASTER_PORT = 9501\n = orphan value\n\
                    NO SUCH = thing\nWORKING_GROUP =\n";
        let c = parse(text).unwrap();
        assert_eq!(c.master.host, "master.example");
        assert_eq!(c.master.port, 9501, "the last of repeated keys counts");
        assert_eq!(c.process.working_group, None, "empty group means the user's primary group");
    }

    #[test]
    fn unknown_keys_are_skipped() {
        let c = parse("REPLICATION_BANDWIDTH_LIMIT_KBPS = 1024\nmaster_host = lower\nMASTER_HOST = m1\n").unwrap();
        assert_eq!(c.master.host, "m1");
        assert_eq!(
            CsConfig { master: MasterConfig { host: "mfsmaster".into(), ..c.master.clone() }, ..c },
            CsConfig::default()
        );
    }

    #[test]
    fn bad_values_name_line_key_and_value() {
        let why = bad("# header\nMASTER_HOST = m\nMASTER_PORT = ninety\n");
        assert!(why.contains("line 3") && why.contains("MASTER_PORT") && why.contains("\"ninety\""), "{why}");
        for text in [
            "MASTER_PORT = 0",
            "MASTER_PORT = 70000",
            "CSSERV_LISTEN_PORT = -1",
            "CHUNKS_PER_REGISTER_PACKET = 999",
            "CHUNKS_PER_REGISTER_PACKET = 100001",
            "HDD_FSYNC_BEFORE_CLOSE = yes",
            "HDD_LEAVE_SPACE_DEFAULT = 12QB",
            "HDD_TEST_SPEED = fast",
            "HDD_TEST_SPEED = -1",
            "HDD_RR_CHUNK_COUNT = 0",
            "NICE_LEVEL = -21",
            "FILE_UMASK = 0999",
            "MASTER_TIMEOUT = 65536",
            "MASTER_HOST =",
            "LABELS = A,1",
            "WORKERS_MAX = 250 # inline comments are part of the value",
        ] {
            let why = bad(text);
            let key = text.split(' ').next().unwrap();
            assert!(why.contains("line 1") && why.contains(key), "{text}: {why}");
        }
    }

    #[test]
    fn numbers_follow_c_base_prefixes() {
        assert_eq!(parse("MASTER_PORT = 0x24C4").unwrap().master.port, 9412);
        assert_eq!(parse("FILE_UMASK = 027").unwrap().process.file_umask, 0o27);
    }

    #[test]
    fn labels_are_lenient_about_separators() {
        assert_eq!(parse_labels(""), Ok(0));
        assert_eq!(parse_labels("A"), Ok(1));
        assert_eq!(parse_labels("A,B"), Ok(0b11));
        assert_eq!(parse_labels("a; b ,c"), Ok(0b111));
        assert_eq!(parse_labels("AB"), Ok(0b11));
        assert_eq!(parse_labels("Z,z"), Ok(1 << 25));
        assert!(parse_labels("A-B").is_err());
        assert!(parse_labels("Ä").is_err());
    }

    #[test]
    fn deprecated_test_freq_turns_into_a_speed() {
        assert_eq!(parse("HDD_TEST_FREQ = 20").unwrap().hdd.test_speed_mib_s, 0.5);
        assert_eq!(parse("HDD_TEST_FREQ = 0").unwrap().hdd.test_speed_mib_s, 0.0, "0 turns tests off");
        let both = parse("HDD_TEST_SPEED = 3\nHDD_TEST_FREQ = 20\n").unwrap();
        assert_eq!(both.hdd.test_speed_mib_s, 3.0, "HDD_TEST_SPEED wins over the deprecated key");
    }

    /// A config an operator might really write, with the comments and odd
    /// spacing such files collect.
    #[test]
    fn realistic_file_loads_and_builds_the_engine_config() {
        let dir = tempfile::tempdir().unwrap();
        let hdd = dir.path().join("mfshdd.cfg");
        std::fs::write(&hdd, "# data disks\n/mnt/d1\n/mnt/d2 -5GiB\n*/mnt/old\n").unwrap();
        let cfg = dir.path().join("mfschunkserver.cfg");
        let text = format!(
            "# chunkserver on rack 4, managed by hand\n\
             WORKING_USER = mfs\nWORKING_GROUP = mfs\n\n\
             # the master pair sits behind this name\n\
             MASTER_HOST = mfsmaster.storage.lan\n\
             LABELS = S, D\n\
             HDD_CONF_FILENAME = {}\n\
             HDD_LEAVE_SPACE_DEFAULT = 4GiB\n\
             HDD_FSYNC_BEFORE_CLOSE = 1\n\
             HDD_RR_CHUNK_COUNT = 2000\n\
             # HDD_TEST_SPEED = 10\n\
             HDD_TEST_FREQ = 5\n",
            hdd.display()
        );
        std::fs::write(&cfg, text).unwrap();
        let config = CsConfig::load(&cfg).unwrap();
        assert_eq!(config.master.host, "mfsmaster.storage.lan");
        assert_eq!(config.master.labels_mask, 1u32 << (b'S' - b'A') | 1u32 << (b'D' - b'A'));
        assert_eq!(config.hdd.test_speed_mib_s, 2.0);
        let engine = config.engine_config().unwrap();
        assert_eq!(engine.disks.len(), 3);
        assert_eq!(engine.disks[1].leave_free, Some(5 << 30));
        assert!(engine.disks[2].marked_for_removal);
        assert_eq!(engine.leave_space_default, 4 << 30);
        assert!(engine.fsync_before_ack);
        assert_eq!(engine.rr_chunk_count, 2000);

        let missing =
            CsConfig { hdd: HddConfig { conf_filename: dir.path().join("nope.cfg"), ..config.hdd }, ..config };
        assert!(matches!(missing.engine_config(), Err(Error::Engine(_))));
        assert!(matches!(CsConfig::load(&dir.path().join("absent.cfg")), Err(Error::Io { .. })));
    }

    /// The sample the Debian package ships lists every 3.0.117 option,
    /// commented out with its default. Uncommented, it must parse, and to
    /// the same defaults, except the ones elkfs chose differently.
    #[test]
    fn moosefs_sample_parses_with_every_option_enabled() {
        let sample = Path::new("/usr/share/doc/moosefs-chunkserver/examples/mfschunkserver.cfg");
        let text = std::fs::read_to_string(sample).unwrap_or_else(|e| {
            panic!("{}: {e}; install the Debian package moosefs-chunkserver 3.0.117", sample.display())
        });
        assert_eq!(parse(&text).unwrap(), CsConfig::default(), "the sample as shipped sets nothing");
        let enabled: String = text
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest)
                    if rest
                        .split_once(" =")
                        .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_uppercase() || c == '_')) =>
                {
                    rest
                }
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let mut keys = 0;
        for line in enabled.lines().filter(|l| !l.starts_with('#')) {
            if let Some((key, value)) = line.split_once('=') {
                let known = CsConfig::default().apply(key.trim(), value.trim(), &mut Pending::default());
                assert_eq!(known, Ok(true), "sample line {line:?}");
                keys += 1;
            }
        }
        assert!(keys >= 35, "only {keys} options found uncommented in the sample");
        let config = parse(&enabled).unwrap();
        let expected = CsConfig {
            process: ProcessConfig {
                working_user: Some("mfs".into()),
                working_group: Some("mfs".into()),
                ..CsConfig::default().process
            },
            master: MasterConfig { auth_code: Some("mfspassword".into()), ..CsConfig::default().master },
            hdd: HddConfig { leave_space_default_bytes: 256 << 20, ..CsConfig::default().hdd },
            ..CsConfig::default()
        };
        assert_eq!(config, expected);
    }
}
