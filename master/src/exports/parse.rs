//! The text of `mfsexports.cfg`: `ADDRESS DIRECTORY [OPTIONS]` lines.
//!
//! The format and its defaults are mfsmaster 3.0.117's (see
//! `mfsexports.cfg(5)`); elkfs only reads it. A line that does not parse
//! is skipped with a warning instead of failing the whole file, as there.

use std::net::Ipv4Addr;

use md5::{Digest, Md5};

use super::{disable_bit, Export, Exports, Grant, Target, DISABLE_NAMES};
use super::{SESFLAG_ADMIN, SESFLAG_DYNAMICIP, SESFLAG_IGNOREGID, SESFLAG_MAPALL, SESFLAG_READONLY};

/// Parses a whole file: the exports in file order and one warning per
/// line skipped or option ignored.
pub fn parse(text: &str) -> (Exports, Vec<String>) {
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    let mut defaults = Line::new();
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut warn = |w: String| warnings.push(format!("line {lineno}: {w}"));
        match parse_line(line, &defaults, &mut warn) {
            Ok(Parsed::Defaults(d)) => defaults = d,
            Ok(Parsed::Export(e)) => entries.push(e),
            Err(why) => warn(format!("{why} (line skipped)")),
        }
    }
    (Exports::new(entries), warnings)
}

/// The state of one line while its options are read.
#[derive(Debug, Clone)]
struct Line {
    grant: Grant,
    minversion: u32,
    password: Option<[u8; 16]>,
    alldirs: bool,
    root_given: bool,
}

impl Line {
    fn new() -> Line {
        Line { grant: Grant::DEFAULT, minversion: 0, password: None, alldirs: false, root_given: false }
    }
}

enum Parsed {
    Defaults(Line),
    Export(Export),
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

fn parse_line(line: &str, defaults: &Line, warn: &mut dyn FnMut(String)) -> Result<Parsed, String> {
    let mut state = defaults.clone();
    let (address, rest) = split_word(line);
    if rest.is_empty() {
        return Err("incomplete definition".into());
    }
    if address.eq_ignore_ascii_case("DEFAULTS") {
        options(rest, false, &mut state, warn)?;
        finish_mapall(&mut state);
        return Ok(Parsed::Defaults(state));
    }
    let (from, to) = parse_address(address).ok_or_else(|| format!("bad address {address:?}"))?;
    let (dir, opts) = split_word(rest);
    let meta = dir == ".";
    if meta && !state.root_given {
        state.grant.rootuid = 0;
        state.grant.rootgid = 0;
    }
    options(opts, meta, &mut state, warn)?;
    finish_mapall(&mut state);
    let target = if meta {
        Target::Meta
    } else {
        Target::Dir { path: super::trim_slashes(dir.as_bytes()).to_vec(), alldirs: state.alldirs }
    };
    Ok(Parsed::Export(Export {
        from,
        to,
        target,
        minversion: state.minversion,
        password: state.password,
        grant: state.grant,
    }))
}

/// `mapall` without `maproot` maps root to the same user.
fn finish_mapall(state: &mut Line) {
    if state.grant.sesflags & SESFLAG_MAPALL != 0 && !state.root_given {
        state.grant.rootuid = state.grant.mapalluid;
        state.grant.rootgid = state.grant.mapallgid;
    }
}

fn options(opts: &str, meta: bool, s: &mut Line, warn: &mut dyn FnMut(String)) -> Result<(), String> {
    for opt in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (opt, None),
        };
        let meta_ignored = meta && matches!(name, "ignoregid" | "alldirs" | "admin" | "disable" | "maproot" | "mapall");
        if meta_ignored {
            warn(format!("option {opt:?} means nothing for the meta file system (ignored)"));
            continue;
        }
        let g = &mut s.grant;
        match (name, value) {
            ("ro" | "readonly", None) => g.sesflags |= SESFLAG_READONLY,
            ("rw" | "readwrite", None) => g.sesflags &= !SESFLAG_READONLY,
            ("ignoregid", None) => g.sesflags |= SESFLAG_IGNOREGID,
            ("admin" | "canchangequota", None) => g.sesflags |= SESFLAG_ADMIN,
            ("dynamicip", None) => g.sesflags |= SESFLAG_DYNAMICIP,
            ("alldirs", None) => s.alldirs = true,
            ("disable", Some(v)) => {
                for op in v.split(':').map(str::trim) {
                    if DISABLE_NAMES.contains(&op) {
                        g.disables |= disable_bit(op);
                    } else {
                        warn(format!("unknown disable operation {op:?} (ignored)"));
                    }
                }
            }
            ("maproot", Some(v)) => {
                (g.rootuid, g.rootgid) = user_group(v)?;
                s.root_given = true;
            }
            ("mapall", Some(v)) => {
                (g.mapalluid, g.mapallgid) = user_group(v)?;
                g.sesflags |= SESFLAG_MAPALL;
            }
            ("password", Some(v)) => s.password = Some(Md5::digest(v.as_bytes()).into()),
            ("md5pass", Some(v)) => s.password = Some(hex16(v).ok_or_else(|| format!("bad md5pass {v:?}"))?),
            ("minversion", Some(v)) => s.minversion = version(v).ok_or_else(|| format!("bad minversion {v:?}"))?,
            ("mingoal", Some(v)) => g.mingoal = goal(v)?,
            ("maxgoal", Some(v)) => g.maxgoal = goal(v)?,
            ("mintrashtime", Some(v)) => {
                g.mintrashtime = duration(v).ok_or_else(|| format!("bad mintrashtime {v:?}"))?
            }
            ("maxtrashtime", Some(v)) => {
                g.maxtrashtime = duration(v).ok_or_else(|| format!("bad maxtrashtime {v:?}"))?
            }
            ("umask", Some(v)) => g.umask = umask(v).ok_or_else(|| format!("bad umask {v:?}"))?,
            _ => {
                warn(format!("unknown option {opt:?} (ignored)"));
                continue;
            }
        }
        if g.mingoal > g.maxgoal {
            return Err(format!("mingoal {} above maxgoal {}", g.mingoal, g.maxgoal));
        }
        if g.mintrashtime > g.maxtrashtime {
            return Err(format!("mintrashtime {} above maxtrashtime {}", g.mintrashtime, g.maxtrashtime));
        }
    }
    Ok(())
}

/// `*`, `A.B.C.D`, `A.B.C.D/BITS`, `A.B.C.D/M.A.S.K` or `A.B.C.D-E.F.G.H`.
pub(super) fn parse_address(s: &str) -> Option<(Ipv4Addr, Ipv4Addr)> {
    if s == "*" {
        return Some((Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST));
    }
    if let Some((net, mask)) = s.split_once('/') {
        let net = u32::from(ip(net)?);
        let mask = match mask.parse::<u8>() {
            Ok(bits) if bits <= 32 && !mask.contains('.') => u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0),
            _ => u32::from(ip(mask)?),
        };
        let from = net & mask;
        return Some((from.into(), (from | !mask).into()));
    }
    if let Some((a, b)) = s.split_once('-') {
        return Some((ip(a)?, ip(b)?));
    }
    let one = ip(s)?;
    Some((one, one))
}

/// A dotted quad of plain decimal numbers (no hex, no short forms).
fn ip(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        *o = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(octets))
}

fn goal(v: &str) -> Result<u8, String> {
    match v.as_bytes() {
        [d @ b'1'..=b'9'] => Ok(d - b'0'),
        _ => Err(format!("bad goal {v:?} (1 to 9)")),
    }
}

/// `0###`, octal.
fn umask(v: &str) -> Option<u16> {
    let b = v.as_bytes();
    if b.len() != 4 || b[0] != b'0' || !b[1..].iter().all(|c| (b'0'..=b'7').contains(c)) {
        return None;
    }
    u16::from_str_radix(&v[1..], 8).ok()
}

/// `x`, `x.y` or `x.y.z` as `x<<16 | y<<8 | z`.
fn version(v: &str) -> Option<u32> {
    let parts: Vec<&str> = v.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut out = 0u32;
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u8 = p.parse().ok()?;
        out |= u32::from(n) << (16 - 8 * i);
    }
    Some(out)
}

/// Seconds, or `[#w][#d][#h][#m][#s]` (units in that order, any case).
fn duration(v: &str) -> Option<u32> {
    let v = v.to_ascii_lowercase();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse::<u64>().ok().and_then(|n| u32::try_from(n).ok());
    }
    let units = [('w', 604_800u64), ('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
    let mut rest = v.as_str();
    let mut next_unit = 0;
    let mut total = 0u64;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let at = units[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
        total = total.checked_add(n.checked_mul(units[at].1)?)?;
        next_unit = at + 1;
        rest = &rest[digits + 1..];
    }
    u32::try_from(total).ok()
}

fn hex16(v: &str) -> Option<[u8; 16]> {
    if v.len() != 32 || !v.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&v[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// `USER[:GROUP]`, names or numbers; without a group, the user's primary
/// group from the master host's `/etc/passwd`.
fn user_group(v: &str) -> Result<(u32, u32), String> {
    let (user, group) = match v.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (v, None),
    };
    let gid = match group {
        Some(g) => Some(number_or(g, |name| lookup("/etc/group", name, None).map(|(_, gid)| gid), "group")?),
        None => None,
    };
    if let Ok(uid) = user.parse::<u32>() {
        if let Some(gid) = gid {
            return Ok((uid, gid));
        }
        let (_, primary) = lookup("/etc/passwd", "", Some(uid))
            .ok_or_else(|| format!("no user with uid {uid} to take a group from"))?;
        return Ok((uid, primary));
    }
    let (uid, primary) = lookup("/etc/passwd", user, None).ok_or_else(|| format!("no user named {user:?}"))?;
    Ok((uid, gid.unwrap_or(primary)))
}

fn number_or(v: &str, by_name: impl Fn(&str) -> Option<u32>, what: &str) -> Result<u32, String> {
    v.parse::<u32>().ok().or_else(|| by_name(v)).ok_or_else(|| format!("no {what} named {v:?}"))
}

/// `(id, gid)` of the `/etc/passwd` line (or `/etc/group`: `(gid, gid)`)
/// named `name`, or with id `id`.
fn lookup(file: &str, name: &str, id: Option<u32>) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let this_id: u32 = fields.get(2)?.parse().ok()?;
        let gid: u32 = if file.ends_with("group") { this_id } else { fields.get(3)?.parse().ok()? };
        let hit = match id {
            Some(id) => this_id == id,
            None => fields[0] == name,
        };
        hit.then_some((this_id, gid))
    })
}
