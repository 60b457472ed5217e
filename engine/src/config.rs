//! Engine configuration: the `mfshdd.cfg` lines and the knobs around them.
//!
//! `mfshdd.cfg` syntax, as operators know it: one folder per line, `#`
//! comments, optional leading flags (`*` marked for removal, `~` tolerate
//! size changes, `<`/`>` rebalance hints), then an optional space option:
//! `-SIZE` keeps SIZE free on that folder, `SIZE` caps what chunks may use.
//! Sizes are `[0-9]*(.[0-9]*)?([kMGTPE]|[KMGTPE]i)?B?`: `k`/`M`/… are powers
//! of 1000, `Ki`/`Mi`/… powers of 1024.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Space kept free on every folder unless its line says otherwise. The
/// project's brief sets 1 GiB (MooseFS 3.0.117 ships 256 MiB).
pub const LEAVE_SPACE_DEFAULT: u64 = 1 << 30;
/// `HDD_RR_CHUNK_COUNT` default: how far the current subfolder may run ahead
/// of the emptiest one before placement moves on.
pub const RR_CHUNK_COUNT_DEFAULT: u32 = 10_000;

/// One folder line of `mfshdd.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HddLine {
    pub path: PathBuf,
    /// `*`: serve, but place nothing new here; chunks are reported so the
    /// master moves them away.
    pub marked_for_removal: bool,
    /// `~`: accepted and kept; the engine does not watch device size yet.
    pub ignore_size_changes: bool,
    /// `-SIZE`: overrides the default reserve for this folder.
    pub leave_free: Option<u64>,
    /// `SIZE`: the most this folder may hold in chunks.
    pub size_limit: Option<u64>,
}

impl HddLine {
    pub fn new(path: impl Into<PathBuf>) -> HddLine {
        HddLine {
            path: path.into(),
            marked_for_removal: false,
            ignore_size_changes: false,
            leave_free: None,
            size_limit: None,
        }
    }
}

/// Everything the engine needs to start.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub disks: Vec<HddLine>,
    /// `HDD_LEAVE_SPACE_DEFAULT`.
    pub leave_space_default: u64,
    /// `HDD_FSYNC_BEFORE_CLOSE`: when set, a write is fsynced before it is
    /// acknowledged, so it survives power loss as well as a process crash.
    pub fsync_before_ack: bool,
    /// `HDD_RR_CHUNK_COUNT`.
    pub rr_chunk_count: u32,
    /// 64 KiB buffers in the shared pool; bounds memory on the data path.
    pub pool_buffers: usize,
    /// Operations in flight on one disk's ring at most.
    pub queue_depth: usize,
    /// Chunk files kept open at most; idle ones are closed past this.
    pub max_open_files: usize,
    /// Use O_DIRECT where the file system allows it; off forces buffered
    /// I/O on every folder (it stays on the same ring).
    pub direct_io: bool,
    /// Read every chunk header during the start-up scan (refuses damaged
    /// files up front instead of at first use).
    pub verify_headers_at_scan: bool,
    /// When a write extends a chunk file, size the file this many blocks
    /// ahead (rounded up) with one `ftruncate`, so the block writes that
    /// follow do not extend it: ext4 runs O_DIRECT writes that extend a
    /// file one at a time. The tail is a hole that reads as zeros and
    /// matches the empty-block CRC, so the file stays a valid chunk file
    /// of whole blocks. 0 sizes files exactly, block by block.
    pub grow_ahead_blocks: usize,
}

impl EngineConfig {
    pub fn new(disks: Vec<HddLine>) -> EngineConfig {
        EngineConfig {
            disks,
            leave_space_default: LEAVE_SPACE_DEFAULT,
            fsync_before_ack: false,
            rr_chunk_count: RR_CHUNK_COUNT_DEFAULT,
            pool_buffers: 1024,
            queue_depth: 64,
            max_open_files: 4096,
            direct_io: true,
            verify_headers_at_scan: true,
            grow_ahead_blocks: 0,
        }
    }

    /// Small limits so tests reach every bound quickly.
    pub fn test_min(disks: Vec<HddLine>) -> EngineConfig {
        EngineConfig {
            leave_space_default: 0,
            pool_buffers: 64,
            queue_depth: 8,
            max_open_files: 16,
            ..EngineConfig::new(disks)
        }
    }

    /// Reads an `mfshdd.cfg` file.
    pub fn parse_hdd_file(path: &Path) -> Result<Vec<HddLine>> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            op: "read mfshdd.cfg",
            path: path.to_path_buf(),
            source,
        })?;
        parse_hdd_cfg(&text)
    }
}

/// Parses the text of an `mfshdd.cfg`.
pub fn parse_hdd_cfg(text: &str) -> Result<Vec<HddLine>> {
    let mut lines = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        lines.push(
            parse_hdd_line(line)
                .map_err(|why| Error::Config(format!("mfshdd.cfg line {}: {why}: {raw:?}", number + 1)))?,
        );
    }
    Ok(lines)
}

fn parse_hdd_line(line: &str) -> std::result::Result<HddLine, String> {
    let mut rest = line;
    let mut flags = HddLine::new("");
    loop {
        match rest.chars().next() {
            Some('*') => flags.marked_for_removal = true,
            Some('~') => flags.ignore_size_changes = true,
            Some('<') | Some('>') => {}
            _ => break,
        }
        rest = &rest[1..];
    }
    // The space option is the last whitespace-separated word, when it parses.
    let (path, option) = match rest.rsplit_once(char::is_whitespace) {
        Some((path, word)) if looks_like_size(word) => (path.trim_end(), Some(word)),
        _ => (rest, None),
    };
    if path.is_empty() {
        return Err("no folder".into());
    }
    flags.path = PathBuf::from(path);
    if let Some(word) = option {
        if let Some(free) = word.strip_prefix('-') {
            flags.leave_free = Some(parse_size(free)?);
        } else {
            flags.size_limit = Some(parse_size(word.trim_start_matches('='))?);
        }
    }
    Ok(flags)
}

fn looks_like_size(word: &str) -> bool {
    let body = word.trim_start_matches(['-', '=']);
    body.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '.')
}

/// Parses a MooseFS size (`1GiB`, `256MiB`, `10G`, `1.5TiB`, `4096`).
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let digits_end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, mut unit) = text.split_at(digits_end);
    let value: f64 = number.parse().map_err(|_| format!("bad size {text:?}"))?;
    unit = unit.strip_suffix('B').unwrap_or(unit);
    let multiplier: f64 = match unit {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" | "ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return Err(format!("bad size unit in {text:?}")),
    };
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("size out of range: {text:?}"));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("10G"), Ok(10_000_000_000));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2kB"), Ok(2000));
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("GiB").is_err());
    }

    #[test]
    fn hdd_lines() {
        let text = "# comment\n/mnt/a\n*/mnt/b\n~/mnt/c -5GiB\n/mnt/with space 100GiB\n\n  /mnt/d =1TiB\n";
        let lines = parse_hdd_cfg(text).unwrap();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], HddLine::new("/mnt/a"));
        assert!(lines[1].marked_for_removal);
        assert_eq!(lines[1].path, PathBuf::from("/mnt/b"));
        assert!(lines[2].ignore_size_changes);
        assert_eq!(lines[2].leave_free, Some(5 << 30));
        assert_eq!(lines[3].path, PathBuf::from("/mnt/with space"));
        assert_eq!(lines[3].size_limit, Some(100 << 30));
        assert_eq!(lines[4].size_limit, Some(1 << 40));
    }

    #[test]
    fn bad_lines_name_their_line() {
        let err = parse_hdd_cfg("/ok\n/mnt/x -12QB\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(parse_hdd_cfg("*\n").is_err());
    }
}
