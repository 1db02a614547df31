//! The benchmark's floor: what any program pays to read a people file into typed
//! records, as a process of its own. It does not use roster (its parser, allocator or
//! runtime): a plain `#[derive(Deserialize)]` struct, the file read whole, `serde_json`.
//!
//! `cargo build --release --example bare_parse`, then `bare_parse people.json`: prints
//! the number of people and exits 0, or says why not and exits 1. The benchmark
//! (`benches/roster_bench.rs`) builds it and times it against `roster reconcile`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One record as `examples/people.json` and the benchmark's files hold it.
#[derive(Deserialize)]
#[allow(dead_code)] // Parsed to be paid for, never read.
struct Person {
    id: String,
    email: Option<String>,
    username: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

fn main() {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: bare_parse PEOPLE.json");
        std::process::exit(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bare_parse: {}: {e}", path.to_string_lossy());
            std::process::exit(1);
        }
    };
    match serde_json::from_str::<Vec<Person>>(&text) {
        Ok(people) => println!("{}", people.len()),
        Err(e) => {
            eprintln!("bare_parse: {}: {e}", path.to_string_lossy());
            std::process::exit(1);
        }
    }
}
