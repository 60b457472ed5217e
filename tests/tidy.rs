//! House rules that a machine can check (fmt and clippy run in
//! `scripts/test`): no source file over the length cap, every module opens
//! with a `//!` comment saying what it holds.

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 800;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "fixtures" {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(Path::new(env!("CARGO_MANIFEST_DIR")), &mut files);
    assert!(files.len() > 10, "found too few sources: {files:?}");
    files
}

#[test]
fn no_file_is_over_the_length_cap() {
    let long: Vec<String> = sources()
        .into_iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(&path).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files (cap {MAX_LINES} lines): {long:?}");
}

#[test]
fn every_library_module_says_what_it_holds() {
    let bare: Vec<String> = sources()
        .into_iter()
        .filter(|path| path.components().any(|c| c.as_os_str() == "src"))
        .filter(|path| !std::fs::read_to_string(path).unwrap().trim_start().starts_with("//!"))
        .map(|path| path.display().to_string())
        .collect();
    assert!(bare.is_empty(), "start these modules with a //! comment: {bare:?}");
}
