//! Parsing and matching of export lines, each option, passwords, the grant a session keeps.

use std::net::Ipv4Addr;

use super::*;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn table(text: &str) -> Exports {
    let (exports, warnings) = parse(text);
    assert!(warnings.is_empty(), "{warnings:?}");
    exports
}

const V3: u32 = 0x0003_0075;

fn check(e: &Exports, addr: &str, path: &str) -> Result<Grant, Status> {
    e.check(ip(addr), V3, Some(path.as_bytes()), None)
}

#[test]
fn every_address_form() {
    let range = |s: &str| parse::parse_address(s).map(|(a, b)| (a.to_string(), b.to_string()));
    let pair = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
    assert_eq!(range("*"), pair("0.0.0.0", "255.255.255.255"));
    assert_eq!(range("10.1.2.3"), pair("10.1.2.3", "10.1.2.3"));
    assert_eq!(range("10.1.2.3/24"), pair("10.1.2.0", "10.1.2.255"));
    assert_eq!(range("10.1.2.3/0"), pair("0.0.0.0", "255.255.255.255"));
    assert_eq!(range("10.1.2.3/32"), pair("10.1.2.3", "10.1.2.3"));
    assert_eq!(range("10.1.0.0/255.255.0.0"), pair("10.1.0.0", "10.1.255.255"));
    assert_eq!(range("10.0.0.1-10.0.0.5"), pair("10.0.0.1", "10.0.0.5"));
    for bad in ["", "10.1.2", "10.1.2.256", "10.1.2.3/33", "a.b.c.d", "10.1.2.3-", "0x1.2.3.4"] {
        assert_eq!(range(bad), None, "{bad}");
    }
}

#[test]
fn addresses_limit_who_gets_in() {
    let e = table("10.0.0.0/8 / rw\n192.168.1.1-192.168.1.9 /x rw\n");
    assert!(check(&e, "10.9.9.9", "/").is_ok());
    assert_eq!(check(&e, "11.0.0.1", "/"), Err(Status::EACCES));
    assert!(check(&e, "192.168.1.9", "/x").is_ok());
    assert_eq!(check(&e, "192.168.1.10", "/x"), Err(Status::EACCES));
}

#[test]
fn defaults_are_readonly_with_root_squashed() {
    let e = table("* /\n");
    let g = check(&e, "1.2.3.4", "/").unwrap();
    assert_eq!(g, Grant::DEFAULT);
    assert!(g.readonly());
    assert_eq!((g.rootuid, g.rootgid, g.mingoal, g.maxgoal), (999, 999, 1, 9));
    assert_eq!((g.mintrashtime, g.maxtrashtime), (0, u32::MAX));
}

#[test]
fn alldirs_opens_subfolders_and_only_then() {
    let e = table("* /data rw\n* /all rw,alldirs\n* / ro,alldirs\n");
    let only = table("* /data rw\n");
    assert!(!check(&only, "1.1.1.1", "/data").unwrap().readonly());
    assert!(check(&only, "1.1.1.1", "/data/").is_ok(), "trailing slash");
    assert_eq!(check(&only, "1.1.1.1", "/data/sub"), Err(Status::EACCES));
    assert_eq!(check(&only, "1.1.1.1", "/"), Err(Status::EACCES));
    assert_eq!(check(&only, "1.1.1.1", "/database"), Err(Status::EACCES));
    assert!(!check(&e, "1.1.1.1", "/all/a/b").unwrap().readonly());
    assert!(check(&e, "1.1.1.1", "/allx").unwrap().readonly(), "only the root line covers /allx");
    assert!(check(&e, "1.1.1.1", "/data/sub").unwrap().readonly());
}

#[test]
fn meta_lines_match_only_meta_sessions() {
    let e = table("* . rw\n");
    assert!(e.check(ip("1.1.1.1"), V3, None, None).is_ok());
    assert_eq!(check(&e, "1.1.1.1", "/"), Err(Status::EACCES));
    let g = e.check(ip("1.1.1.1"), V3, None, None).unwrap();
    assert_eq!((g.rootuid, g.rootgid), (0, 0), "meta sessions keep root unless told");
}

#[test]
fn first_of_equal_matches_wins() {
    let e = table("* / rw,umask=0022\n* / rw,umask=0077\n");
    assert_eq!(check(&e, "1.1.1.1", "/").unwrap().umask, 0o022);
}

#[test]
fn a_better_later_match_is_preferred_as_in_mfsmaster() {
    // read-write over read-only
    let e = table("* / ro\n* / rw\n");
    assert!(!check(&e, "1.1.1.1", "/").unwrap().readonly());
    // unsquashed root over squashed
    let e = table("* / rw\n* / rw,maproot=0:0\n");
    assert_eq!(check(&e, "1.1.1.1", "/").unwrap().rootuid, 0);
    // admin over not
    let e = table("* / rw,maproot=0:0\n* / rw,maproot=0:0,admin\n");
    assert!(check(&e, "1.1.1.1", "/").unwrap().sesflags & SESFLAG_ADMIN != 0);
    // the more precise path
    let e = table("* / rw,alldirs,maproot=0:0,umask=0011\n* /a rw,maproot=0:0,umask=0022\n");
    assert_eq!(check(&e, "1.1.1.1", "/a").unwrap().umask, 0o022);
    // a narrower address does not matter by itself
    let e = table("* / rw,umask=0011\n1.1.1.1 / rw,umask=0022\n");
    assert_eq!(check(&e, "1.1.1.1", "/").unwrap().umask, 0o011);
}

#[test]
fn passwords_are_checked_against_the_challenge() {
    let e = table("* / rw,password=secret\n");
    let challenge = [7u8; 32];
    let good = proof_digest(&challenge, &Md5::digest(b"secret").into());
    let bad = proof_digest(&challenge, &Md5::digest(b"wrong").into());
    let with = |d: &[u8; 16]| e.check(ip("1.1.1.1"), V3, Some(b"/"), Some(Proof { challenge: &challenge, digest: d }));
    assert!(with(&good).is_ok());
    assert_eq!(with(&bad), Err(Status::BADPASSWORD));
    assert_eq!(check(&e, "1.1.1.1", "/"), Err(Status::NOPASSWORD));
    // A zero challenge (no GETRANDOM first) proves nothing.
    let zero = [0u8; 32];
    let digest = proof_digest(&zero, &Md5::digest(b"secret").into());
    let r = e.check(ip("1.1.1.1"), V3, Some(b"/"), Some(Proof { challenge: &zero, digest: &digest }));
    assert_eq!(r, Err(Status::NOPASSWORD));
}

#[test]
fn md5pass_equals_password() {
    let hex: String = Md5::digest(b"secret").iter().map(|b| format!("{b:02X}")).collect();
    let a = table("* / password=secret\n");
    let b = table(&format!("* / md5pass={hex}\n"));
    assert_eq!(a.entries[0].password, b.entries[0].password);
    let (bad, warnings) = parse("* / md5pass=abc\n");
    assert!(bad.entries.is_empty());
    assert_eq!(warnings.len(), 1);
}

#[test]
fn minversion_refuses_older_clients() {
    let e = table("* / rw,minversion=3.0.100\n");
    assert_eq!(e.entries[0].minversion, 0x0003_0064);
    assert!(e.check(ip("1.1.1.1"), 0x0003_0075, Some(b"/"), None).is_ok());
    assert_eq!(e.check(ip("1.1.1.1"), 0x0003_0063, Some(b"/"), None), Err(Status::EACCES));
    assert_eq!(table("* / minversion=2\n").entries[0].minversion, 0x0002_0000);
    assert_eq!(table("* / minversion=2.1\n").entries[0].minversion, 0x0002_0100);
}

#[test]
fn flags_options() {
    let g = table("* / rw,alldirs,dynamicip,ignoregid,admin,umask=0027\n").entries[0].grant;
    assert!(!g.readonly());
    assert_eq!(g.sesflags, SESFLAG_DYNAMICIP | SESFLAG_IGNOREGID | SESFLAG_ADMIN);
    assert_eq!(g.umask, 0o027);
    assert!(table("* / readwrite,readonly\n").entries[0].grant.readonly());
    assert!(!table("* / readonly,readwrite\n").entries[0].grant.readonly());
}

#[test]
fn maproot_and_mapall() {
    let g = table("* / maproot=1000:1001\n").entries[0].grant;
    assert_eq!((g.rootuid, g.rootgid), (1000, 1001));
    let root = table("* / maproot=root\n").entries[0].grant;
    assert_eq!((root.rootuid, root.rootgid), (0, 0), "a name takes its primary group");
    let numeric = table("* / maproot=0\n").entries[0].grant;
    assert_eq!((numeric.rootuid, numeric.rootgid), (0, 0), "a uid alone takes its primary group");
    let g = table("* / mapall=2000:2001\n").entries[0].grant;
    assert_ne!(g.sesflags & SESFLAG_MAPALL, 0);
    assert_eq!((g.mapalluid, g.mapallgid), (2000, 2001));
    assert_eq!((g.rootuid, g.rootgid), (2000, 2001), "mapall squashes root too unless maproot says");
    let g = table("* / mapall=2000:2001,maproot=0:0\n").entries[0].grant;
    assert_eq!((g.rootuid, g.rootgid), (0, 0));
    let (none, w) = parse("* / maproot=no-such-user-here\n");
    assert!(none.entries.is_empty() && w.len() == 1);
}

#[test]
fn mapping_ids() {
    let g = table("* / maproot=1000:1001\n").entries[0].grant;
    let mut gids = vec![0, 5];
    assert_eq!(g.map_ids(0, &mut gids), 1000);
    assert_eq!(gids, [1001, 5]);
    let mut gids = vec![7];
    assert_eq!(g.map_ids(42, &mut gids), 42, "others are left alone without mapall");
    assert_eq!(gids, [7]);
    let g = table("* / mapall=2000:2001\n").entries[0].grant;
    let mut gids = vec![7];
    assert_eq!(g.map_ids(42, &mut gids), 2000);
    assert_eq!(gids, [2001]);
}

#[test]
fn goal_and_trash_limits() {
    let g = table("* / mingoal=2,maxgoal=3,mintrashtime=2h30m,maxtrashtime=2w\n").entries[0].grant;
    assert_eq!((g.mingoal, g.maxgoal), (2, 3));
    assert_eq!((g.mintrashtime, g.maxtrashtime), (9_000, 1_209_600));
    assert!(g.goal_allowed(2) && g.goal_allowed(3) && !g.goal_allowed(1) && !g.goal_allowed(4));
    assert!(g.trashtime_allowed(9_000) && !g.trashtime_allowed(8_999) && !g.trashtime_allowed(1_209_601));
    assert_eq!(table("* / mintrashtime=1W2D3H4M5S\n").entries[0].grant.mintrashtime, 604_800 + 172_800 + 10_800 + 245);
    assert_eq!(table("* / maxtrashtime=3600\n").entries[0].grant.maxtrashtime, 3600);
    for bad in ["mingoal=0", "maxgoal=10", "mingoal=5,maxgoal=4", "mintrashtime=1m1h", "maxtrashtime=x", "umask=777"] {
        let (e, w) = parse(&format!("* / {bad}\n"));
        assert!(e.entries.is_empty(), "{bad}");
        assert_eq!(w.len(), 1, "{bad}");
    }
}

#[test]
fn disables() {
    let g = table("* / disable=unlink:rmdir,disable=truncate\n").entries[0].grant;
    assert!(g.disabled("unlink") && g.disabled("rmdir") && g.disabled("truncate"));
    assert!(!g.disabled("write"));
    assert_eq!(g.disables, (1 << 7) | (1 << 8) | (1 << 16));
    let (e, w) = parse("* / disable=frobnicate\n");
    assert_eq!(e.entries.len(), 1, "an unknown operation is only a warning");
    assert_eq!(w.len(), 1);
}

#[test]
fn comments_blank_lines_bad_lines_and_defaults() {
    let text = "# comment\n\n   \nbogus\n300.1.1.1 / rw\nDEFAULTS rw,maproot=0:0\n* /a\n* /b ro\n* /c nonsense\n";
    let (e, w) = parse(text);
    assert_eq!(e.entries.len(), 3);
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(!e.entries[0].grant.readonly(), "DEFAULTS applies to later lines");
    assert_eq!(e.entries[0].grant.rootuid, 0);
    assert!(e.entries[1].grant.readonly());
}

#[test]
fn the_checksum_follows_the_content() {
    assert_eq!(table("* / rw\n").checksum, table("*   /   rw\n").checksum);
    assert_ne!(table("* / rw\n").checksum, table("* / ro\n").checksum);
}

#[test]
fn load_refuses_missing_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mfsexports.cfg");
    assert!(Exports::load(&path).is_err(), "missing file");
    std::fs::write(&path, "# nothing\n").unwrap();
    assert!(Exports::load(&path).is_err(), "no exports");
    std::fs::write(&path, "* / rw\n").unwrap();
    assert_eq!(Exports::load(&path).unwrap().entries.len(), 1);
}

#[test]
fn the_open_table_lets_anyone_mount_anything() {
    let e = Exports::open();
    let g = check(&e, "8.8.8.8", "/deep/folder").unwrap();
    assert_eq!(g, Grant::OPEN);
    assert!(!g.readonly());
    assert!(e.check(ip("8.8.8.8"), 0, None, None).is_ok());
}

#[test]
fn a_master_without_usable_exports_refuses_to_start_unless_none_was_asked_for() {
    use crate::config::MasterConfig;
    use crate::shared::load_exports;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.cfg");
    let given = MasterConfig { exports_filename: missing.clone(), exports_required: true, ..MasterConfig::default() };
    let err = load_exports(&given).unwrap_err().to_string();
    assert!(err.contains("absent.cfg"), "{err}");
    let unset = MasterConfig { exports_filename: missing, exports_required: false, ..MasterConfig::default() };
    assert_eq!(load_exports(&unset).unwrap(), Exports::open());
    let file = dir.path().join("mfsexports.cfg");
    std::fs::write(&file, "* / ro\n").unwrap();
    let present = MasterConfig { exports_filename: file, exports_required: false, ..MasterConfig::default() };
    assert!(load_exports(&present).unwrap().entries[0].grant.readonly(), "the default file is read when it exists");
    let parsed = MasterConfig::parse("EXPORTS_FILENAME = /x/y.cfg\n", std::path::Path::new("m.cfg")).unwrap();
    assert!(parsed.exports_required);
    assert!(!MasterConfig::parse("", std::path::Path::new("m.cfg")).unwrap().exports_required);
}
