//! Pins that no async runtime is in the crate's normal dependency tree, on any target.

use std::process::Command;

const RUNTIMES: [&str; 5] = ["tokio", "async-std", "smol", "futures-executor", "async-executor"];

#[test]
fn no_async_runtime_is_a_dependency() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--target",
            "all",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree starts");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).expect("cargo tree prints UTF-8");
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    // An empty or truncated listing would pass the check below vacuously.
    for expected in ["conveyor", "rayon", "crossbeam-channel"] {
        assert!(crates.contains(&expected), "{expected} missing from:\n{tree}");
    }
    let found: Vec<&str> = crates.into_iter().filter(|c| RUNTIMES.contains(c)).collect();
    assert!(
        found.is_empty(),
        "async runtimes in the dependency tree: {found:?}"
    );
}
