//! The MooseFS configuration file syntax, shared by every daemon so that
//! existing `mfs*.cfg` files work unchanged: one `KEY = VALUE` per line,
//! blank lines and lines starting with `#` skipped, whitespace around key
//! and value trimmed. There are no trailing comments: everything after `=`
//! is the value (an `AUTH_CODE` may hold a `#`). Numbers follow C's
//! `strtol` base rules as MooseFS reads them, so `FILE_UMASK = 027` is
//! octal and `0x…` is hexadecimal.
//!
//! Fault model: this is operator input. An unknown key, a line without `=`
//! and a repeated key are logged and skipped (MooseFS also goes on), because
//! refusing to start over them would make elkfs a worse drop-in. A value
//! that does not parse or is out of range is an error naming file, line, key
//! and value: silently running with a default the operator did not ask for
//! is worse than not starting.

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

/// Reads the file at `path` and feeds each setting to `apply`.
pub fn load<F>(path: &Path, apply: F) -> Result<()>
where
    F: FnMut(&str, &str) -> std::result::Result<bool, String>,
{
    let text = std::fs::read_to_string(path).map_err(|source| Error::io(format!("read {}", path.display()), source))?;
    parse(&text, path, apply)
}

/// Feeds each `KEY = VALUE` of `text` to `apply`, which answers `Ok(false)`
/// for a key it does not know and `Err(why)` for a bad value; `path` only
/// names the file in messages.
pub fn parse<F>(text: &str, path: &Path, mut apply: F) -> Result<()>
where
    F: FnMut(&str, &str) -> std::result::Result<bool, String>,
{
    let mut seen = HashSet::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=').map(|(k, v)| (k.trim(), v.trim())) else {
            tracing::warn!("{}:{number}: not `KEY = VALUE`, ignored: {line:?}", path.display());
            continue;
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            tracing::warn!("{}:{number}: not `KEY = VALUE`, ignored: {line:?}", path.display());
            continue;
        }
        if !seen.insert(key.to_owned()) {
            tracing::warn!("{}:{number}: {key} is set more than once; the last value counts", path.display());
        }
        match apply(key, value) {
            Ok(true) => {}
            Ok(false) => tracing::warn!("{}:{number}: unknown option {key}, ignored", path.display()),
            Err(why) => {
                return Err(Error::Config {
                    path: path.to_path_buf(),
                    why: format!("line {number}: {key} = {value:?}: {why}"),
                })
            }
        }
    }
    Ok(())
}

/// An empty value means "not set" for the optional strings, as in MooseFS.
pub fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// A required string: hosts, paths, names.
pub fn word(value: &str) -> std::result::Result<String, String> {
    if value.is_empty() {
        return Err("empty value".into());
    }
    Ok(value.to_owned())
}

/// A 0/1 switch. MooseFS reads these as numbers and tests for non-zero, so
/// any integer is accepted; words like `yes` are refused rather than being
/// read as 0 the way C's `strtoul` would.
pub fn flag(value: &str) -> std::result::Result<bool, String> {
    Ok(parse_c_int(value).ok_or("expected 0 or 1")? != 0)
}

pub fn int<T: TryFrom<i64>>(value: &str, range: RangeInclusive<i64>) -> std::result::Result<T, String> {
    let number = parse_c_int(value).ok_or("expected an integer")?;
    if !range.contains(&number) {
        return Err(format!("out of range {}..={}", range.start(), range.end()));
    }
    T::try_from(number).map_err(|_| "out of range".to_string())
}

pub fn secs(value: &str, range: RangeInclusive<i64>) -> std::result::Result<Duration, String> {
    int::<u64>(value, range).map(Duration::from_secs)
}

pub fn decimal(value: &str, range: RangeInclusive<f64>) -> std::result::Result<f64, String> {
    let number: f64 = value.parse().map_err(|_| "expected a decimal number")?;
    if !range.contains(&number) {
        return Err(format!("out of range {}..={}", range.start(), range.end()));
    }
    Ok(number)
}

/// An integer with C's base prefixes (`0x1F` hex, `017` octal), because
/// MooseFS reads its numbers with `strtol(…, 0)` and `FILE_UMASK = 027`
/// must stay octal.
pub fn parse_c_int(text: &str) -> Option<i64> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (radix, digits) = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        (16, hex)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i64::from_str_radix(digits, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// `LABELS`: letters A–Z, either case, each one a bit of the mask. MooseFS
/// wants them separated by `,` or `;` and complains about `AB`; elkfs takes
/// `AB`, `A B` and `a,b` alike and only refuses characters that cannot be
/// labels, since a typo there would silently change chunk placement.
pub fn parse_labels(value: &str) -> std::result::Result<u32, String> {
    let mut mask = 0u32;
    for c in value.chars() {
        match c {
            'A'..='Z' | 'a'..='z' => {
                let bit = 1u32 << (c.to_ascii_uppercase() as u32 - 'A' as u32);
                if mask & bit != 0 {
                    tracing::warn!("LABELS: label {c} given twice");
                }
                mask |= bit;
            }
            ',' | ';' | ' ' | '\t' => {}
            other => return Err(format!("{other:?} is not a label (labels are letters A-Z)")),
        }
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_c_base_prefixes() {
        assert_eq!(parse_c_int("027"), Some(0o27));
        assert_eq!(parse_c_int("0x1F"), Some(31));
        assert_eq!(parse_c_int("-19"), Some(-19));
        assert_eq!(parse_c_int("+7"), Some(7));
        assert_eq!(parse_c_int("0"), Some(0));
        for junk in ["", "-", "0x", "09", "1.5", "0x-5", "12 "] {
            assert_eq!(parse_c_int(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn lines_reach_apply_and_bad_values_name_the_line() {
        let mut seen = Vec::new();
        let text = "# comment\n\nA = 1\nnot a setting\nB=x # y\nUNKNOWN = 3\n";
        parse(text, Path::new("t.cfg"), |k, v| {
            seen.push((k.to_owned(), v.to_owned()));
            Ok(k != "UNKNOWN")
        })
        .unwrap();
        assert_eq!(seen, [("A", "1"), ("B", "x # y"), ("UNKNOWN", "3")].map(|(k, v)| (k.to_owned(), v.to_owned())));
        let err = parse("A = 1\nB = nope\n", Path::new("t.cfg"), |k, v| match k {
            "B" => int::<u32>(v, 0..=5).map(|_| true),
            _ => Ok(true),
        })
        .unwrap_err();
        assert!(err.to_string().contains("line 2: B = \"nope\""), "{err}");
    }
}
