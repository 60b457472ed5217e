//! `mfsmaster.cfg`: the master's configuration file, in MooseFS's syntax
//! (`elkfs_daemon::cfgfile`). Every key the 3.0.117 master reads is
//! accepted; the chunk-loop and replication keys belong to
//! [`ClusterConfig`](crate::cluster::ClusterConfig), which parses them.
//!
//! One key is elkfs's own: `CHANGELOG_FSYNC` (default 1) makes every
//! metadata change durable before the client hears of it. 0 gives
//! MooseFS's behaviour: answers go out at once and the changelog reaches
//! the disk when the kernel writes it back, for those who prefer speed to
//! the last seconds of changes (lost on a crash of the machine, or of the
//! master before its writer thread got to them).

use std::path::{Path, PathBuf};
use std::time::Duration;

use elkfs_daemon::cfgfile::{self, flag, int, non_empty, secs, word};

use crate::cluster::ClusterConfig;
use crate::error::{Error, Result};

/// Where packages install the file; the daemon's `-c` overrides it.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/mfs/mfsmaster.cfg";

#[derive(Debug, Clone)]
pub struct MasterConfig {
    pub working_user: Option<String>,
    pub working_group: Option<String>,
    pub file_umask: u32,
    pub data_path: PathBuf,
    pub exports_filename: PathBuf,
    /// `EXPORTS_FILENAME` was given: the file must then exist (without
    /// the key a missing default file means an open table, see `exports`).
    pub exports_required: bool,
    /// `BACK_LOGS`: rotated changelog files kept.
    pub back_logs: u32,
    /// `METADATA_SAVE_FREQ`: hours between snapshots.
    pub metadata_save_freq: Duration,
    /// `BACK_META_KEEP_PREVIOUS`: older snapshots kept.
    pub back_meta_keep_previous: u32,
    /// `CHANGELOG_PRESERVE_SECONDS`: how much history is kept in memory for
    /// metaloggers that reconnect.
    pub changelog_preserve: Duration,
    /// elkfs: fsync the changelog before answering (see module doc).
    pub changelog_fsync: bool,
    pub ml_listen: (String, u16),
    pub cs_listen: (String, u16),
    pub cl_listen: (String, u16),
    /// `SESSION_SUSTAIN_TIME`: how long a disconnected client's session is
    /// kept for it to come back.
    pub session_sustain: Duration,
    pub cluster: ClusterConfig,
}

impl Default for MasterConfig {
    fn default() -> MasterConfig {
        MasterConfig {
            working_user: None,
            working_group: None,
            file_umask: 0o27,
            data_path: PathBuf::from("/var/lib/mfs"),
            exports_filename: PathBuf::from("/etc/mfs/mfsexports.cfg"),
            exports_required: false,
            back_logs: 50,
            metadata_save_freq: Duration::from_secs(3600),
            back_meta_keep_previous: 1,
            changelog_preserve: Duration::from_secs(1800),
            changelog_fsync: true,
            ml_listen: ("*".into(), 9419),
            cs_listen: ("*".into(), 9420),
            cl_listen: ("*".into(), 9421),
            session_sustain: Duration::from_secs(86_400),
            cluster: ClusterConfig::default(),
        }
    }
}

/// Keys 3.0.117 reads that elkfs accepts but does not act on yet; listed so
/// a stock file does not fill the log with "unknown option".
const ACCEPTED_UNUSED: &[&str] = &[
    "SYSLOG_IDENT",
    "LOCK_MEMORY",
    "LIMIT_GLIBC_MALLOC_ARENAS",
    "DISABLE_OOM_KILLER",
    "NICE_LEVEL",
    "TOPOLOGY_FILENAME",
    "CHANGELOG_SAVE_MODE",
    "MISSING_LOG_CAPACITY",
    "REMAP_BITS",
    "REMAP_SOURCE_IP_CLASS",
    "REMAP_DESTINATION_IP_CLASS",
    "REPLICATIONS_RESPECT_TOPOLOGY",
    "CREATIONS_RESPECT_TOPOLOGY",
    "CHUNKS_UNIQUE_MODE",
    "CS_HEAVY_LOAD_THRESHOLD",
    "CS_HEAVY_LOAD_RATIO_THRESHOLD",
    "CS_HEAVY_LOAD_GRACE_PERIOD",
    "PRIORITY_QUEUES_LENGTH",
    "CS_MAINTENANCE_MODE_TIMEOUT",
    "CS_TEMP_MAINTENANCE_MODE_TIMEOUT",
    "CS_DAYS_TO_REMOVE_UNUSED",
    "QUOTA_DEFAULT_GRACE_PERIOD",
    "ATIME_MODE",
    "RESERVE_SPACE",
    "MAX_ALLOWED_HARD_LINKS",
    "INODE_REUSE_DELAY",
];

impl MasterConfig {
    pub fn load(path: &Path) -> Result<MasterConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        MasterConfig::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<MasterConfig> {
        let mut config = MasterConfig::default();
        cfgfile::parse(text, path, |key, value| config.apply(key, value))?;
        Ok(config)
    }

    fn apply(&mut self, key: &str, value: &str) -> std::result::Result<bool, String> {
        let listen_host = |v: &str| word(v);
        match key {
            "WORKING_USER" => self.working_user = non_empty(value),
            "WORKING_GROUP" => self.working_group = non_empty(value),
            "FILE_UMASK" => self.file_umask = int(value, 0..=0o777)?,
            "DATA_PATH" => self.data_path = PathBuf::from(word(value)?),
            "EXPORTS_FILENAME" => {
                self.exports_filename = PathBuf::from(word(value)?);
                self.exports_required = true;
            }
            "BACK_LOGS" => self.back_logs = int(value, 1..=10_000)?,
            "METADATA_SAVE_FREQ" => self.metadata_save_freq = secs(value, 1..=24 * 365)? * 3600,
            "BACK_META_KEEP_PREVIOUS" => self.back_meta_keep_previous = int(value, 0..=99)?,
            "CHANGELOG_PRESERVE_SECONDS" => self.changelog_preserve = secs(value, 0..=86_400 * 7)?,
            "CHANGELOG_FSYNC" => self.changelog_fsync = flag(value)?,
            "MATOML_LISTEN_HOST" => self.ml_listen.0 = listen_host(value)?,
            "MATOML_LISTEN_PORT" => self.ml_listen.1 = int(value, 0..=65535)?,
            "MATOCS_LISTEN_HOST" => self.cs_listen.0 = listen_host(value)?,
            "MATOCS_LISTEN_PORT" => self.cs_listen.1 = int(value, 0..=65535)?,
            "MATOCL_LISTEN_HOST" => self.cl_listen.0 = listen_host(value)?,
            "MATOCL_LISTEN_PORT" => self.cl_listen.1 = int(value, 0..=65535)?,
            "SESSION_SUSTAIN_TIME" => self.session_sustain = secs(value, 0..=86_400 * 365)?,
            _ if ACCEPTED_UNUSED.contains(&key) => {}
            _ => return self.cluster.apply(key, value),
        }
        Ok(true)
    }
}

/// `*` means every address, as in MooseFS.
pub fn bind_addr(host: &str, port: u16) -> String {
    let host = if host == "*" { "0.0.0.0" } else { host };
    format!("{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MasterConfig> {
        MasterConfig::parse(text, Path::new("/etc/mfs/mfsmaster.cfg"))
    }

    #[test]
    fn defaults_and_stock_keys() {
        let c = parse("").unwrap();
        assert_eq!((c.cl_listen.1, c.cs_listen.1, c.ml_listen.1), (9421, 9420, 9419));
        assert!(c.changelog_fsync);
        let c =
            parse("DATA_PATH = /srv/mfs\nMATOCL_LISTEN_PORT = 19421\nCHANGELOG_FSYNC = 0\nATIME_MODE = 2\n").unwrap();
        assert_eq!(c.data_path, Path::new("/srv/mfs"));
        assert_eq!(c.cl_listen.1, 19421);
        assert!(!c.changelog_fsync);
    }

    #[test]
    fn every_key_of_the_stock_sample_is_known() {
        let sample =
            "WORKING_USER,WORKING_GROUP,SYSLOG_IDENT,LOCK_MEMORY,LIMIT_GLIBC_MALLOC_ARENAS,DISABLE_OOM_KILLER,\
            NICE_LEVEL,FILE_UMASK,DATA_PATH,EXPORTS_FILENAME,TOPOLOGY_FILENAME,BACK_LOGS,METADATA_SAVE_FREQ,\
            BACK_META_KEEP_PREVIOUS,CHANGELOG_PRESERVE_SECONDS,CHANGELOG_SAVE_MODE,MISSING_LOG_CAPACITY,\
            MATOML_LISTEN_HOST,MATOML_LISTEN_PORT,MATOCS_LISTEN_HOST,MATOCS_LISTEN_PORT,MATOCS_TIMEOUT,AUTH_CODE,\
            REPLICATIONS_DELAY_INIT,CHUNKS_LOOP_MAX_CPS,CHUNKS_LOOP_MIN_TIME,CHUNKS_SOFT_DEL_LIMIT,\
            CHUNKS_HARD_DEL_LIMIT,CHUNKS_WRITE_REP_LIMIT,CHUNKS_READ_REP_LIMIT,ACCEPTABLE_PERCENTAGE_DIFFERENCE,\
            MATOCL_LISTEN_HOST,MATOCL_LISTEN_PORT,SESSION_SUSTAIN_TIME";
        let defaults = [
            ("CHUNKS_WRITE_REP_LIMIT", "2,1,1,4"),
            ("CHUNKS_READ_REP_LIMIT", "10,5,2,5"),
            ("ACCEPTABLE_PERCENTAGE_DIFFERENCE", "1.0"),
            ("WORKING_USER", "mfs"),
            ("WORKING_GROUP", "mfs"),
            ("SYSLOG_IDENT", "mfsmaster"),
            ("DATA_PATH", "/var/lib/mfs"),
            ("EXPORTS_FILENAME", "/etc/mfs/mfsexports.cfg"),
            ("TOPOLOGY_FILENAME", "/etc/mfs/mfstopology.cfg"),
            ("AUTH_CODE", "mfspassword"),
            ("MATOCS_TIMEOUT", "10"),
            ("MATOML_LISTEN_HOST", "*"),
            ("MATOCS_LISTEN_HOST", "*"),
            ("MATOCL_LISTEN_HOST", "*"),
        ];
        for key in sample.split(',').map(str::trim) {
            let value = defaults.iter().find(|(k, _)| *k == key).map_or("1", |(_, v)| v);
            let mut config = MasterConfig::default();
            assert_eq!(config.apply(key, value), Ok(true), "{key} = {value}");
        }
    }

    #[test]
    fn bad_values_name_the_line() {
        let err = parse("\nMATOCL_LISTEN_PORT = 70000\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("MATOCL_LISTEN_PORT"), "{err}");
    }
}
