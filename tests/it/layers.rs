//! The architecture's dependency rules, checked on the sources (ARCHITECTURE.md,
//! "Layers"): no import cycle between top-level modules, and the pure core (`model`,
//! `plan`) imports nothing it must not. Test code (`tests.rs`, `testing.rs`, `fake.rs`)
//! may use anything and is not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module → the top-level modules its non-test code names as `crate::X`.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let module_of = |p: &Path| -> Option<String> {
        let rel = p.strip_prefix(&src).ok()?;
        let first = rel.components().next()?.as_os_str().to_str()?;
        let name = first.trim_end_matches(".rs");
        (name != "main" && name != "lib").then(|| name.to_string())
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|p| module_of(p)).collect();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if matches!(name, "tests.rs" | "testing.rs" | "fake.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read");
        let code = text
            .split("#[cfg(test)]\nmod tests {")
            .next()
            .unwrap_or_default();
        for part in code.split("crate::").skip(1) {
            let used: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if used != module && modules.contains(&used) {
                deps.entry(module.clone()).or_default().insert(used);
            }
        }
        deps.entry(module).or_default();
    }
    deps
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let deps = dependencies();
    fn visit(
        m: &str,
        deps: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == m) {
            panic!("import cycle: {}", path[i..].join(" -> ") + " -> " + m);
        }
        if done.contains(m) {
            return;
        }
        path.push(m.to_string());
        for d in deps.get(m).into_iter().flatten() {
            visit(d, deps, path, done);
        }
        path.pop();
        done.insert(m.to_string());
    }
    let mut done = BTreeSet::new();
    for m in deps.keys() {
        visit(m, &deps, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_pure_core_and_the_leaves_stay_small() {
    let deps = dependencies();
    let allowed: &[(&str, &[&str])] = &[
        ("model", &[]),
        ("plan", &["model"]),
        ("config", &[]),
        ("shutdown", &[]),
        ("out", &[]),
        ("budget", &["shutdown"]),
        ("retry", &["budget", "config", "shutdown"]),
        ("http", &["budget", "config", "retry"]),
        ("store", &["model"]),
        ("ha", &["config", "shutdown"]),
        ("notify", &["config", "http", "model", "report", "store"]),
    ];
    for (module, may) in allowed {
        let used = deps.get(*module).cloned().unwrap_or_default();
        let extra: Vec<&String> = used.iter().filter(|u| !may.contains(&u.as_str())).collect();
        assert!(extra.is_empty(), "`{module}` must not use {extra:?}");
    }
}
