//! Pins that an input's fingerprint is the same in every process, even for
//! inputs whose serialised order depends on a per-process random seed.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use conveyor::checkpoint::Fingerprint;

const CHILD: &str = "CONVEYOR_FINGERPRINT_CHILD";

/// Maps of maps, in hash order. (Sets serialise as plain sequences in
/// iteration order, which no encoder can tell from a `Vec`; an input that
/// holds a set should hold a `BTreeSet`.)
fn input() -> HashMap<String, HashMap<u64, BTreeSet<u64>>> {
    (0..64)
        .map(|i| {
            let inner = (0..i).map(|j| (j * 7, (0..j).collect())).collect();
            (format!("key-{i}"), inner)
        })
        .collect()
}

/// In a child process, prints the fingerprint; in the test run, does
/// nothing.
#[test]
fn child_prints_its_fingerprint() {
    if std::env::var_os(CHILD).is_some() {
        println!("FINGERPRINT={}", Fingerprint::of_value(&input()).unwrap());
    }
}

fn fingerprint_in_a_child() -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_prints_its_fingerprint",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("the test binary starts again");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The harness may print the test's name on the same line.
    stdout
        .split("FINGERPRINT=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no fingerprint in: {stdout}"))
        .to_owned()
}

#[test]
fn a_hash_map_input_fingerprints_alike_in_two_processes() {
    let here = Fingerprint::of_value(&input()).unwrap().to_string();
    let first = fingerprint_in_a_child();
    let second = fingerprint_in_a_child();
    assert_eq!(first, second);
    assert_eq!(first, here);
}
