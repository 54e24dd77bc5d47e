//! Pins that no async runtime is in the crate's normal dependency tree, on
//! any target.
//!
//! The check reads `Cargo.toml` and `Cargo.lock` rather than asking cargo to
//! resolve the tree: `Cargo.lock` lists every package for every target, so
//! the answer does not depend on which packages the local cargo cache holds.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

const RUNTIMES: [&str; 6] = [
    "tokio",
    "async-std",
    "smol",
    "futures-executor",
    "async-executor",
    "async-global-executor",
];

fn read(file: &str) -> toml::Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The crate's normal (not dev) dependencies, on every target.
fn direct_normal_dependencies(manifest: &toml::Table) -> Vec<String> {
    let mut tables: Vec<&toml::Table> = manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .into_iter()
        .collect();
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        tables.extend(
            targets
                .values()
                .filter_map(|t| t.get("dependencies").and_then(|d| d.as_table())),
        );
    }
    tables
        .into_iter()
        .flat_map(|t| {
            t.iter().map(|(key, spec)| {
                spec.get("package")
                    .and_then(|p| p.as_str())
                    .unwrap_or(key)
                    .to_owned()
            })
        })
        .collect()
}

/// Package name to the names it depends on. A registry package's entry in
/// the lock file holds only its normal and build dependencies: cargo never
/// resolves the dev-dependencies of a dependency.
fn lock_graph(lock: &toml::Table) -> HashMap<String, Vec<String>> {
    let packages = lock["package"].as_array().expect("Cargo.lock has packages");
    let mut graph: HashMap<String, Vec<String>> = HashMap::new();
    for package in packages {
        let name = package["name"].as_str().expect("a package has a name").to_owned();
        let deps = package
            .get("dependencies")
            .and_then(|d| d.as_array())
            .map(|deps| {
                deps.iter()
                    .filter_map(|d| d.as_str())
                    .map(|d| d.split_whitespace().next().unwrap_or(d).to_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        graph.entry(name).or_default().extend(deps);
    }
    graph
}

#[test]
fn no_async_runtime_is_a_dependency() {
    let manifest = read("Cargo.toml");
    let graph = lock_graph(&read("Cargo.lock"));
    let direct = direct_normal_dependencies(&manifest);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut queue = direct.clone();
    while let Some(name) = queue.pop() {
        if seen.insert(name.clone()) {
            let deps = graph
                .get(&name)
                .unwrap_or_else(|| panic!("{name} is a dependency but Cargo.lock does not list it"));
            queue.extend(deps.iter().cloned());
        }
    }
    // An empty or truncated walk would pass the check below vacuously.
    for expected in [
        "rayon",
        "rayon-core",
        "crossbeam-channel",
        "crossbeam-deque",
        "parking_lot",
    ] {
        assert!(
            seen.contains(expected),
            "{expected} missing from the tree: {seen:?}"
        );
    }
    let found: Vec<&String> = seen.iter().filter(|c| RUNTIMES.contains(&c.as_str())).collect();
    assert!(
        found.is_empty(),
        "async runtimes in the dependency tree: {found:?}"
    );
}
