//! Tidy: the rules of `docs/architecture.md` ("Architecture invariants")
//! that a program can check, checked by reading the workspace's files, as
//! rust-analyzer's `xtask/src/tidy.rs` does. Each test names its rule and
//! every file (and line) that breaks it, so a failure says what to fix.
//!
//! The Rust sources are read with comments and literals blanked
//! ([`code_only`]) and, where a rule is about what ships, without their
//! `#[cfg(test)]` items ([`without_tests`]); modules are found by
//! following `mod name;` from each crate root.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use crate::workspace_root;

/// Crates whose library does no I/O and nothing asynchronous: the
/// featurizer ("`features` does no I/O") and the statistics ("pure
/// computation").
const PURE_CRATES: [&str; 2] = ["triad-features", "triad-series"];

/// Crates that do I/O or run asynchronously, by name or name prefix: none
/// of them may be in a pure crate's dependency tree.
const IO_CRATES: [&str; 14] = [
    "tokio",
    "tonic",
    "hyper",
    "axum",
    "sqlx",
    "tower",
    "h2",
    "mio",
    "socket2",
    "reqwest",
    "rustls",
    "futures",
    "async-",
    "opentelemetry",
];

/// Modules of the standard library that do I/O.
const IO_MODULES: [&str; 3] = ["fs", "net", "process"];

/// The one integration-test binary a crate may have.
const TEST_BINARY: &str = "tests/it/main.rs";

#[test]
fn every_crate_takes_the_workspace_lints() {
    let mut broken = Vec::new();
    for krate in crates() {
        let workspace = krate
            .manifest
            .get("lints")
            .and_then(|lints| lints.get("workspace"))
            .and_then(toml::Value::as_bool);
        if workspace != Some(true) {
            broken.push(format!(
                "{}: no `[lints] workspace = true`",
                relative(&krate.manifest_path)
            ));
        }
    }
    report("every crate takes the workspace's lints", broken);
}

#[test]
fn pure_crates_depend_on_nothing_doing_io() {
    let crates = crates();
    let resolve = Resolve::of_this_platform();
    let mut broken = Vec::new();
    for name in PURE_CRATES {
        let krate = crates
            .iter()
            .find(|krate| krate.name == name)
            .unwrap_or_else(|| panic!("no crate {name} in the workspace"));
        for chain in resolve.dependency_chains(name) {
            let leaf = chain.last().expect("a chain names at least one crate");
            if IO_CRATES.iter().any(|io| leaf.starts_with(io)) {
                broken.push(format!(
                    "{}: depends on {leaf}, which does I/O or runs asynchronously ({})",
                    relative(&krate.manifest_path),
                    chain.join(" → ")
                ));
            }
        }
    }
    report(
        "triad-features and triad-series depend on nothing doing I/O",
        broken,
    );
}

#[test]
fn pure_crates_use_no_io_module_of_std() {
    let mut broken = Vec::new();
    for krate in crates().iter().filter(|k| PURE_CRATES.contains(&&*k.name)) {
        for file in shipped_files(krate) {
            for (offset, path) in std_paths(&file.code) {
                if IO_MODULES.contains(&path.as_str()) {
                    broken.push(format!(
                        "{}:{}: uses std::{path}",
                        relative(&file.path),
                        line_of(&file.code, offset)
                    ));
                }
            }
        }
    }
    report(
        "triad-features and triad-series use no I/O module of std",
        broken,
    );
}

#[test]
fn anyhow_only_in_binaries() {
    let mut broken = Vec::new();
    for krate in crates() {
        let targets = targets(&krate);
        if let Some(library) = targets.iter().find(|t| t.kind == TargetKind::Library) {
            for file in &library.files {
                for offset in word_offsets(&file.code, "anyhow") {
                    broken.push(format!(
                        "{}:{}: anyhow in a library module (thiserror there)",
                        relative(&file.path),
                        line_of(&file.code, offset)
                    ));
                }
            }
        }
        let has_binary = targets.iter().any(|t| t.kind == TargetKind::Binary);
        if !has_binary && dependency_names(&krate.manifest).contains("anyhow") {
            broken.push(format!(
                "{}: a library-only crate depends on anyhow",
                relative(&krate.manifest_path)
            ));
        }
    }
    report("anyhow only in binaries", broken);
}

#[test]
fn every_rust_file_starts_with_a_doc_comment() {
    let mut broken = Vec::new();
    for krate in crates() {
        for file in rust_files(&krate.dir) {
            if !read(&file).starts_with("//!") {
                broken.push(format!(
                    "{}: does not begin with a `//!` line saying what it is for",
                    relative(&file)
                ));
            }
        }
    }
    report("every Rust file begins with a `//!` doc", broken);
}

#[test]
fn each_crate_has_at_most_one_integration_test_binary() {
    let mut broken = Vec::new();
    for krate in crates() {
        for binary in test_binaries(&krate) {
            if binary != krate.dir.join(TEST_BINARY) {
                broken.push(format!(
                    "{}: a test binary of its own; make it a module of {}",
                    relative(&binary),
                    relative(&krate.dir.join(TEST_BINARY))
                ));
            }
        }
    }
    report(
        "each crate's integration tests are one binary (tests/it/main.rs)",
        broken,
    );
}

#[test]
fn no_literal_field_counts() {
    let crates = crates();
    let lists = field_lists(&crates);
    let lengths: BTreeSet<usize> = lists.iter().filter_map(|list| list.written_out).collect();
    assert!(
        !lengths.is_empty(),
        "no written-out field list found: the rule checks nothing"
    );
    let mut broken = Vec::new();
    for list in &lists {
        if let (Some(len), None) = (list.literal_len, list.written_out) {
            let code = code_only(&read(&list.file));
            broken.push(format!(
                "{}:{}: {} is computed but declares its length as {len}; write the \
                 length from the lists it is made of",
                relative(&list.file),
                line_of(&code, list.len_offset),
                list.name
            ));
        }
    }
    for krate in &crates {
        let knows_the_lists = krate.name == "triad-features"
            || dependency_names(&krate.manifest).contains("triad-features");
        for SourceFile {
            path: file, code, ..
        } in shipped_files(krate)
        {
            for (offset, name) in literal_count_constants(&code) {
                broken.push(format!(
                    "{}:{}: `{name}` counts fields with a literal; derive it from the list \
                     (e.g. `BUDGET_FIELDS.len() - 1`)",
                    relative(&file),
                    line_of(&code, offset)
                ));
            }
            if !knows_the_lists {
                continue;
            }
            for (offset, len) in literal_array_lengths(&code) {
                let declares_a_list = lists
                    .iter()
                    .any(|list| list.file == file && list.len_offset == offset);
                if lengths.contains(&len) && !declares_a_list {
                    let names: Vec<&str> = lists
                        .iter()
                        .filter(|list| list.written_out == Some(len))
                        .map(|list| list.name.as_str())
                        .collect();
                    broken.push(format!(
                        "{}:{}: array length {len}, the length of {}; write the \
                         list's `.len()` (or a constant derived from it)",
                        relative(&file),
                        line_of(&code, offset),
                        names.join(" / ")
                    ));
                }
            }
        }
    }
    report("no literal field counts", broken);
}

#[test]
fn no_import_cycle_between_a_crates_modules() {
    let mut broken = Vec::new();
    for krate in crates() {
        for target in targets(&krate) {
            let graph = module_graph(&target);
            for cycle in cycles(&graph) {
                let mut edges = Vec::new();
                for from in &cycle {
                    for (to, (file, line)) in &graph[from] {
                        if cycle.contains(to) {
                            edges.push(format!("{from} → {to} ({}:{line})", relative(file)));
                        }
                    }
                }
                broken.push(format!(
                    "{}: modules {} import each other:\n    {}",
                    relative(&target.root),
                    cycle.iter().cloned().collect::<Vec<_>>().join(", "),
                    edges.join("\n    ")
                ));
            }
        }
    }
    report(
        "no import cycle between a crate's top-level modules",
        broken,
    );
}

/// Fails with every breach of `rule`, if any.
fn report(rule: &str, broken: Vec<String>) {
    assert!(
        broken.is_empty(),
        "\ntidy: {rule} (docs/architecture.md, \"Architecture invariants\") is broken:\n  {}\n",
        broken.join("\n  ")
    );
}

/// A workspace member.
struct Crate {
    /// The package name.
    name: String,
    dir: PathBuf,
    manifest_path: PathBuf,
    manifest: toml::Table,
}

/// Every crate under `crates/`, by directory name.
fn crates() -> Vec<Crate> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("crates"))
        .expect("read crates/")
        .map(|entry| entry.expect("a crates/ entry").path())
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let manifest_path = dir.join("Cargo.toml");
            let manifest: toml::Table = read(&manifest_path)
                .parse()
                .unwrap_or_else(|error| panic!("{}: {error}", relative(&manifest_path)));
            let name = manifest
                .get("package")
                .and_then(|package| package.get("name"))
                .and_then(toml::Value::as_str)
                .unwrap_or_else(|| panic!("{}: no package name", relative(&manifest_path)))
                .to_owned();
            Crate {
                name,
                dir,
                manifest_path,
                manifest,
            }
        })
        .collect()
}

/// The package names of what a manifest's library and binaries are built
/// with: `[dependencies]` and every `[target.*.dependencies]`.
fn dependency_names(manifest: &toml::Table) -> BTreeSet<String> {
    let mut tables = vec![manifest.get("dependencies")];
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        tables.extend(targets.values().map(|target| target.get("dependencies")));
    }
    tables
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_table)
        .flat_map(|table| {
            table.iter().map(|(key, spec)| {
                spec.get("package")
                    .and_then(toml::Value::as_str)
                    .unwrap_or(key)
                    .to_owned()
            })
        })
        .collect()
}

/// The workspace's dependency graph as Cargo resolves it for this
/// platform (`cargo metadata --filter-platform <host>`): what each package
/// is built with, kept apart from what only its tests, benchmarks or build
/// script are.
struct Resolve {
    /// Package id to package name.
    names: BTreeMap<String, String>,
    /// Package id to the ids of its normal (library) dependencies.
    normal: BTreeMap<String, Vec<String>>,
}

impl Resolve {
    fn of_this_platform() -> Self {
        let output = std::process::Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--offline", "--locked"])
            .args(["--filter-platform", &host_triple()])
            .current_dir(workspace_root())
            .output()
            .expect("run cargo metadata");
        assert!(
            output.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let metadata: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
        let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
        let names = metadata["packages"]
            .as_array()
            .expect("cargo metadata lists packages")
            .iter()
            .map(|package| (text(&package["id"]), text(&package["name"])))
            .collect();
        let normal = metadata["resolve"]["nodes"]
            .as_array()
            .expect("cargo metadata resolves the workspace")
            .iter()
            .map(|node| {
                let deps = node["deps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|dep| {
                        dep["dep_kinds"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|kind| kind["kind"].is_null())
                    })
                    .map(|dep| text(&dep["pkg"]))
                    .collect();
                (text(&node["id"]), deps)
            })
            .collect();
        Self { names, normal }
    }

    /// Every package the library of the workspace crate `name` is built
    /// with, each as the chain of dependencies that brings it in.
    fn dependency_chains(&self, name: &str) -> Vec<Vec<String>> {
        let root = self
            .names
            .iter()
            .find(|(id, package)| *package == name && self.normal.contains_key(*id))
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("cargo metadata does not resolve {name}"));
        let mut seen = BTreeSet::from([root.clone()]);
        let mut queue = VecDeque::from([vec![root]]);
        let mut chains = Vec::new();
        while let Some(chain) = queue.pop_front() {
            let last = chain.last().expect("a chain names at least one package");
            for dependency in self.normal.get(last).into_iter().flatten() {
                if seen.insert(dependency.clone()) {
                    let mut longer = chain.clone();
                    longer.push(dependency.clone());
                    chains.push(longer.iter().map(|id| self.names[id].clone()).collect());
                    queue.push_back(longer);
                }
            }
        }
        chains
    }
}

/// The platform the tests run on, as `rustc -vV` names it.
fn host_triple() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = std::process::Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

/// Every integration-test binary Cargo builds for `krate`: `tests/*.rs`,
/// `tests/*/main.rs` and `[[test]]` targets.
fn test_binaries(krate: &Crate) -> BTreeSet<PathBuf> {
    let tests = krate.dir.join("tests");
    let mut binaries = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(&tests) {
        for entry in entries {
            let path = entry.expect("a tests/ entry").path();
            if path.extension().is_some_and(|ext| ext == "rs") {
                binaries.insert(path);
            } else if path.join("main.rs").is_file() {
                binaries.insert(path.join("main.rs"));
            }
        }
    }
    for test in krate
        .manifest
        .get("test")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
    {
        let path = test
            .get("path")
            .and_then(toml::Value::as_str)
            .map(|path| krate.dir.join(path))
            .or_else(|| {
                let name = test.get("name").and_then(toml::Value::as_str)?;
                Some(tests.join(format!("{name}.rs")))
            });
        binaries.extend(path);
    }
    binaries
}

/// A list of field names: a `const NAME: [&str; N]` named `*_FIELDS`, or
/// the feature columns (`FEATURE_NAMES`).
struct FieldList {
    name: String,
    file: PathBuf,
    /// Where its declared length `N` is written.
    len_offset: usize,
    /// `N`, when it is an integer literal.
    literal_len: Option<usize>,
    /// How many names it holds, when they are written out as string
    /// literals (`= ["a", "b"]`) rather than computed.
    written_out: Option<usize>,
}

/// Every field list in the workspace's shipped code.
fn field_lists(crates: &[Crate]) -> Vec<FieldList> {
    let mut lists = Vec::new();
    for krate in crates {
        for SourceFile {
            path: file, code, ..
        } in shipped_files(krate)
        {
            let text = read(&file);
            for (offset, name) in words(&code) {
                if !(name.ends_with("_FIELDS") || name == "FEATURE_NAMES")
                    || !preceded_by_word(&code, offset, "const")
                {
                    continue;
                }
                let rest = &code[offset + name.len()..];
                let Some(length) =
                    strip_tokens(rest, &[":", "[", "&", "str", ";"]).map(str::trim_start)
                else {
                    continue;
                };
                let len_offset = code.len() - length.len();
                let digits = length.len()
                    - length
                        .trim_start_matches(|c: char| c.is_ascii_digit())
                        .len();
                let literal_len = (digits > 0 && length[digits..].trim_start().starts_with(']'))
                    .then(|| length[..digits].parse().expect("digits"));
                let written_out = length
                    .find('=')
                    .map(|eq| &length[eq + 1..])
                    .and_then(|value| value.trim_start().strip_prefix('['))
                    .and_then(|value| {
                        let end = value.find(']')?;
                        // String literals are blanked in `code`: count them
                        // in the source.
                        let start = code.len() - value.len();
                        let names = text[start..start + end].matches('"').count() / 2;
                        let only_literals = value[..end].trim_matches([' ', '\n', ',']).is_empty();
                        (names > 0 && only_literals).then_some(names)
                    });
                lists.push(FieldList {
                    name: name.to_owned(),
                    file: file.clone(),
                    len_offset,
                    literal_len,
                    written_out,
                });
            }
        }
    }
    lists
}

/// `const NAME: usize = <integer literal>` where `NAME` counts fields
/// (`*_FIELDS`, `*_FLAGS`): each with its offset and name.
fn literal_count_constants(code: &str) -> Vec<(usize, String)> {
    words(code)
        .filter(|(offset, name)| {
            (name.ends_with("_FIELDS") || name.ends_with("_FLAGS"))
                && preceded_by_word(code, *offset, "const")
        })
        .filter(|(offset, name)| {
            strip_tokens(&code[offset + name.len()..], &[":", "usize", "="])
                .and_then(|value| {
                    let value = value.trim_start();
                    let digits = value.len()
                        - value
                            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '_')
                            .len();
                    (digits > 0).then(|| value[digits..].trim_start().starts_with(';'))
                })
                .unwrap_or(false)
        })
        .map(|(offset, name)| (offset, name.to_owned()))
        .collect()
}

/// Array types and repeat expressions whose length is an integer literal
/// (`[T; 15]`, `[0; 15]`), except arrays of bytes: each length's offset and
/// value.
fn literal_array_lengths(code: &str) -> Vec<(usize, usize)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    for (semicolon, _) in code.match_indices(';') {
        let rest = &code[semicolon + 1..];
        let trimmed = rest.trim_start();
        let digits = trimmed.len()
            - trimmed
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        if digits == 0 || !trimmed[digits..].trim_start().starts_with(']') {
            continue;
        }
        // The element: back to the `[` that opens this array.
        let mut depth = 0_i32;
        let mut open = None;
        for i in (0..semicolon).rev() {
            match bytes[i] {
                b']' | b')' | b'}' => depth += 1,
                b'(' | b'{' => depth -= 1,
                b'[' if depth == 0 => {
                    open = Some(i);
                    break;
                }
                b'[' => depth -= 1,
                _ => {}
            }
            if depth < 0 {
                break;
            }
        }
        let Some(open) = open else { continue };
        let element = code[open + 1..semicolon].trim();
        if element == "u8" || element.ends_with("u8") {
            continue;
        }
        let offset = code.len() - trimmed.len();
        let value = trimmed[..digits].parse().expect("digits");
        found.push((offset, value));
    }
    found
}

/// Every file of `krate`'s library and binaries as they ship: reached from
/// the crate roots, `#[cfg(test)]` items left out.
fn shipped_files(krate: &Crate) -> Vec<SourceFile> {
    let mut files: BTreeMap<PathBuf, SourceFile> = BTreeMap::new();
    for target in targets(krate) {
        for file in target.files {
            files.entry(file.path.clone()).or_insert(file);
        }
    }
    files.into_values().collect()
}

/// What a crate target is built as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetKind {
    Library,
    Binary,
}

/// A crate target: its root file and every file of its module tree.
struct Target {
    kind: TargetKind,
    root: PathBuf,
    files: Vec<SourceFile>,
}

/// A file of a target's module tree.
struct SourceFile {
    path: PathBuf,
    /// The top-level module it belongs to (`None` for the root file).
    top: Option<String>,
    /// Its code without comments, literals and `#[cfg(test)]` items.
    code: String,
}

/// The library (`src/lib.rs`) and binaries (`src/main.rs`,
/// `src/bin/*.rs`) of `krate`.
fn targets(krate: &Crate) -> Vec<Target> {
    let src = krate.dir.join("src");
    let mut roots = Vec::new();
    if src.join("lib.rs").is_file() {
        roots.push((TargetKind::Library, src.join("lib.rs")));
    }
    if src.join("main.rs").is_file() {
        roots.push((TargetKind::Binary, src.join("main.rs")));
    }
    if let Ok(entries) = std::fs::read_dir(src.join("bin")) {
        let mut bins: Vec<PathBuf> = entries
            .map(|entry| entry.expect("a src/bin entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
            .collect();
        bins.sort();
        roots.extend(bins.into_iter().map(|bin| (TargetKind::Binary, bin)));
    }
    roots
        .into_iter()
        .map(|(kind, root)| Target {
            kind,
            files: module_tree(&root),
            root,
        })
        .collect()
}

/// `root` and every file its `mod name;` declarations (outside
/// `#[cfg(test)]`) reach, each with its top-level module.
fn module_tree(root: &Path) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut queue = VecDeque::from([(root.to_owned(), None::<String>, true)]);
    while let Some((path, top, is_root)) = queue.pop_front() {
        let code = without_tests(&code_only(&read(&path)));
        let owns_dir = is_root || path.file_name().is_some_and(|name| name == "mod.rs");
        let dir = if owns_dir {
            path.parent().expect("a file's directory").to_owned()
        } else {
            path.with_extension("")
        };
        for module in module_declarations(&code) {
            let file = [
                dir.join(format!("{module}.rs")),
                dir.join(&module).join("mod.rs"),
            ]
            .into_iter()
            .find(|file| file.is_file())
            .unwrap_or_else(|| panic!("{}: no file for `mod {module};`", relative(&path)));
            let top = top.clone().or_else(|| Some(module.clone()));
            queue.push_back((file, top, false));
        }
        files.push(SourceFile { path, top, code });
    }
    files
}

/// The names of the `mod name;` declarations in `code`.
fn module_declarations(code: &str) -> Vec<String> {
    words(code)
        .filter(|(_, word)| *word == "mod")
        .filter_map(|(offset, _)| {
            let rest = code[offset + 3..].trim_start();
            let name_len = rest.len() - rest.trim_start_matches(is_ident_char).len();
            let name = &rest[..name_len];
            (name_len > 0 && rest[name_len..].trim_start().starts_with(';'))
                .then(|| name.to_owned())
        })
        .collect()
}

/// For each top-level module of `target`, the top-level modules it
/// refers to through `crate::` (directly, or through a name the root
/// re-exports), each with the first file and line that does.
fn module_graph(target: &Target) -> BTreeMap<String, BTreeMap<String, (PathBuf, usize)>> {
    let modules: BTreeSet<String> = target.files.iter().filter_map(|f| f.top.clone()).collect();
    // Names the root file imports from a module (`pub use store::Store;`).
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    if let Some(root) = target.files.iter().find(|f| f.top.is_none()) {
        for (_, path, name) in use_paths(&root.code) {
            let path: Vec<&str> = path
                .iter()
                .map(String::as_str)
                .skip_while(|segment| matches!(*segment, "crate" | "self"))
                .collect();
            if let Some(first) = path.first()
                && modules.contains(*first)
                && name != "*"
            {
                reexports.insert(name, (*first).to_owned());
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeMap<String, (PathBuf, usize)>> = modules
        .iter()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for file in &target.files {
        let Some(from) = &file.top else { continue };
        let mut refer = |offset: usize, name: &str| {
            let to = if modules.contains(name) {
                Some(name.to_owned())
            } else {
                reexports.get(name).cloned()
            };
            if let Some(to) = to
                && &to != from
            {
                graph
                    .get_mut(from)
                    .expect("every module is a node")
                    .entry(to)
                    .or_insert_with(|| (file.path.clone(), line_of(&file.code, offset)));
            }
        };
        for (offset, path, _) in use_paths(&file.code) {
            if path.first().is_some_and(|first| first == "crate")
                && let Some(second) = path.get(1)
            {
                refer(offset, second);
            }
        }
        for (offset, _) in file.code.match_indices("crate::") {
            let before = file.code[..offset].chars().next_back();
            if before.is_some_and(|c| is_ident_char(c) || c == '$') {
                continue;
            }
            let rest = &file.code[offset + "crate::".len()..];
            let len = rest.len() - rest.trim_start_matches(is_ident_char).len();
            if len > 0 {
                refer(offset, &rest[..len]);
            }
        }
    }
    graph
}

/// Every `use` declaration's imported paths: its offset, the path's
/// segments and the name it binds (the last segment, its alias or `*`).
fn use_paths(code: &str) -> Vec<(usize, Vec<String>, String)> {
    let mut found = Vec::new();
    for (offset, _) in words(code).filter(|(_, word)| *word == "use") {
        let rest = &code[offset + 3..];
        let Some(end) = rest.find(';') else { continue };
        let tokens = use_tokens(&rest[..end]);
        let mut position = 0;
        let mut trees = Vec::new();
        parse_use_tree(&tokens, &mut position, Vec::new(), &mut trees);
        found.extend(trees.into_iter().map(|(path, name)| (offset, path, name)));
    }
    found
}

fn use_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() || c == ':' {
            chars.next();
        } else if is_ident_char(c) {
            let mut word = String::new();
            while let Some(&c) = chars.peek().filter(|c| is_ident_char(**c)) {
                word.push(c);
                chars.next();
            }
            tokens.push(word);
        } else {
            tokens.push(c.to_string());
            chars.next();
        }
    }
    tokens
}

/// Parses one use tree (`a::b::{c, d::e as f}`) from `tokens`, `::`
/// dropped, pushing each imported path with the name it binds.
fn parse_use_tree(
    tokens: &[String],
    position: &mut usize,
    mut prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) {
    while let Some(token) = tokens.get(*position) {
        match token.as_str() {
            "{" => {
                *position += 1;
                while tokens.get(*position).is_some_and(|t| t != "}") {
                    parse_use_tree(tokens, position, prefix.clone(), out);
                    if tokens.get(*position).is_some_and(|t| t == ",") {
                        *position += 1;
                    }
                }
                *position += 1;
                return;
            }
            "*" => {
                *position += 1;
                out.push((prefix, "*".to_owned()));
                return;
            }
            "," | "}" => break,
            "as" => {
                let alias = tokens.get(*position + 1).cloned().unwrap_or_default();
                *position += 2;
                out.push((prefix, alias));
                return;
            }
            word => {
                prefix.push(word.to_owned());
                *position += 1;
            }
        }
    }
    if let Some(last) = prefix.last().cloned() {
        let name = if last == "self" && prefix.len() > 1 {
            prefix[prefix.len() - 2].clone()
        } else {
            last
        };
        out.push((prefix, name));
    }
}

/// The strongly connected components of `graph` with more than one
/// module: its import cycles (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeMap<String, (PathBuf, usize)>>) -> Vec<BTreeSet<String>> {
    struct Tarjan<'a> {
        graph: &'a BTreeMap<String, BTreeMap<String, (PathBuf, usize)>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<BTreeSet<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, node: &'a str) {
            let index = self.index.len();
            self.index.insert(node, index);
            self.low.insert(node, index);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.graph[node].keys() {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = BTreeSet::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack.remove(member);
                    component.insert(member.to_owned());
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.components.push(component);
                }
            }
        }
    }
    let mut tarjan = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for node in graph.keys() {
        if !tarjan.index.contains_key(node.as_str()) {
            tarjan.visit(node);
        }
    }
    tarjan.components
}

/// Each `std::<module>` path in `code` (`std::{fs, io}` gives two), with
/// its offset.
fn std_paths(code: &str) -> Vec<(usize, String)> {
    let mut found: Vec<(usize, String)> = use_paths(code)
        .into_iter()
        .filter(|(_, path, _)| path.first().is_some_and(|first| first == "std"))
        .filter_map(|(offset, path, _)| Some((offset, path.get(1)?.clone())))
        .collect();
    for (offset, _) in code.match_indices("std::") {
        if code[..offset]
            .chars()
            .next_back()
            .is_some_and(is_ident_char)
        {
            continue;
        }
        let rest = &code[offset + "std::".len()..];
        let len = rest.len() - rest.trim_start_matches(is_ident_char).len();
        if len > 0 {
            found.push((offset, rest[..len].to_owned()));
        }
    }
    found
}

/// `text` with comments, string, byte-string and character literals
/// blanked (every byte but newlines made a space), so that searches see
/// code only and offsets and lines stay the file's.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for byte in &mut out[from..to.min(bytes.len())] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
    };
    let mut i = 0;
    while i < bytes.len() {
        let at = |j: usize| bytes.get(j).copied().unwrap_or(0);
        match bytes[i] {
            b'/' if at(i + 1) == b'/' => {
                let end = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if at(i + 1) == b'*' => {
                let (mut depth, mut j) = (1, i + 2);
                while j < bytes.len() && depth > 0 {
                    if at(j) == b'/' && at(j + 1) == b'*' {
                        depth += 1;
                        j += 2;
                    } else if at(j) == b'*' && at(j + 1) == b'/' {
                        depth -= 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            b'r' if starts_raw_string(bytes, i) => {
                let hashes = bytes[i + 1..].iter().take_while(|b| **b == b'#').count();
                let close: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let start = i + 2 + hashes;
                let end = text[start..]
                    .find(&close)
                    .map_or(bytes.len(), |n| start + n + close.len());
                blank(&mut out, i, end);
                i = end;
            }
            b'"' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i, j + 1);
                i = j + 1;
            }
            b'\'' => {
                // A character literal, or a lifetime or label (left alone).
                let end = if at(i + 1) == b'\\' {
                    // The escaped character, then the closing quote.
                    text[i + 3..].find('\'').map(|n| i + 3 + n + 1)
                } else {
                    text[i + 1..]
                        .chars()
                        .next()
                        .filter(|c| at(i + 1 + c.len_utf8()) == b'\'' && *c != '\'')
                        .map(|c| i + 1 + c.len_utf8() + 1)
                };
                match end {
                    Some(end) => {
                        blank(&mut out, i, end);
                        i = end;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    String::from_utf8(out).expect("blanking whole literals keeps UTF-8")
}

/// Whether a raw string (`r"..."`, `r#"..."#`, `br"..."`) starts at
/// `bytes[i]`, an `r` that does not end an identifier.
fn starts_raw_string(bytes: &[u8], i: usize) -> bool {
    let before = |back: usize| i.checked_sub(back).map(|j| bytes[j]);
    let prefix_ok = match before(1) {
        None => true,
        Some(b'b') => before(2).is_none_or(|b| !is_ident_byte(b)),
        Some(b) => !is_ident_byte(b),
    };
    let hashes = bytes[i + 1..].iter().take_while(|b| **b == b'#').count();
    prefix_ok && bytes.get(i + 1 + hashes) == Some(&b'"')
}

/// `code` with every `#[cfg(test)]` item blanked (attributes, header and
/// body): the rules that are about what ships ignore test code.
fn without_tests(code: &str) -> String {
    let mut out = code.as_bytes().to_vec();
    let bytes = code.as_bytes();
    for (start, attribute) in code.match_indices("#[cfg(test)]") {
        let mut i = start + attribute.len();
        let (mut round, mut square) = (0_i32, 0_i32);
        let end = loop {
            match bytes.get(i) {
                None => break bytes.len(),
                Some(b'(') => round += 1,
                Some(b')') => round -= 1,
                Some(b'[') => square += 1,
                Some(b']') => square -= 1,
                Some(b';') if round == 0 && square == 0 => break i + 1,
                Some(b'{') if round == 0 && square == 0 => {
                    let mut depth = 0;
                    let mut j = i;
                    while j < bytes.len() {
                        match bytes[j] {
                            b'{' => depth += 1,
                            b'}' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                    break j + 1;
                }
                Some(_) => {}
            }
            i += 1;
        };
        for byte in &mut out[start..end.min(bytes.len())] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
    }
    String::from_utf8(out).expect("blanking ASCII spans keeps UTF-8")
}

/// Every identifier-like word of `code`, with its offset.
fn words(code: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    std::iter::from_fn(move || {
        let rest = &code[offset..];
        let start = offset + rest.find(is_ident_char)?;
        let len = code[start..].len() - code[start..].trim_start_matches(is_ident_char).len();
        offset = start + len;
        Some((start, &code[start..start + len]))
    })
}

/// The offsets of the word `word` in `code`.
fn word_offsets(code: &str, word: &str) -> Vec<usize> {
    words(code)
        .filter(|(_, w)| *w == word)
        .map(|(offset, _)| offset)
        .collect()
}

/// Whether the word before `offset` in `code` is `word`.
fn preceded_by_word(code: &str, offset: usize, word: &str) -> bool {
    code[..offset]
        .trim_end()
        .strip_suffix(word)
        .is_some_and(|before| !before.ends_with(is_ident_char))
}

/// `text` past `tokens` (each after optional whitespace), or `None` if it
/// does not start with them; a token of letters must end at a word's end.
fn strip_tokens<'a>(mut text: &'a str, tokens: &[&str]) -> Option<&'a str> {
    for token in tokens {
        text = text.trim_start().strip_prefix(token)?;
        if token.ends_with(is_ident_char) && text.starts_with(is_ident_char) {
            return None;
        }
    }
    Some(text)
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The 1-based line of `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// Every `.rs` file under `dir`, sorted, skipping `target/` directories.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|name| name != "target") {
                    dirs.push(path);
                }
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", relative(path)))
}

/// `path` relative to the workspace root, for messages.
fn relative(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn code_only_blanks_comments_and_literals_but_keeps_offsets() {
    let text =
        "let a = \"x // y\"; // note\nlet b = r#\"q\"#; /* d\n */ let c = '\\''; fn f<'a>() {}\n";
    let code = code_only(text);
    assert_eq!(code.len(), text.len());
    assert_eq!(code.lines().count(), text.lines().count());
    for gone in ["x", "note", "q", "d", "\\"] {
        assert!(!code.contains(gone), "{gone:?} left in {code:?}");
    }
    for kept in ["let a =", "let b =", "let c =", "fn f<'a>() {}"] {
        assert!(code.contains(kept), "{kept:?} lost from {code:?}");
    }
}

#[test]
fn test_items_are_left_out() {
    let code = "fn kept() {}\n#[cfg(test)]\nmod tests {\n    fn gone() { [0u8; 4]; }\n}\nfn also_kept() {}\n";
    let kept = without_tests(code);
    assert!(kept.contains("fn kept") && kept.contains("fn also_kept"));
    assert!(!kept.contains("gone"));
}

#[test]
fn use_trees_give_every_path_and_name() {
    let paths: Vec<(Vec<String>, String)> =
        use_paths("use crate::{a::B, c::{self, d::E as F}, g::*};")
            .into_iter()
            .map(|(_, path, name)| (path, name))
            .collect();
    let names: Vec<&str> = paths.iter().map(|(_, name)| name.as_str()).collect();
    assert_eq!(names, ["B", "c", "F", "*"]);
    assert_eq!(paths[2].0, ["crate", "c", "d", "E"]);
}

#[test]
fn literal_counts_are_found_and_byte_arrays_are_not() {
    let code = "const N_BUDGET_FLAGS: usize = 8;\nconst X: usize = 8;\nfn f(a: [Option<&str>; 15], b: [u8; 8]) { let c = [0; 15]; }";
    let constants = literal_count_constants(code);
    assert_eq!(constants.len(), 1);
    assert_eq!(constants[0].1, "N_BUDGET_FLAGS");
    let lengths: Vec<usize> = literal_array_lengths(code)
        .into_iter()
        .map(|(_, len)| len)
        .collect();
    assert_eq!(lengths, [15, 15]);
}

#[test]
fn a_cycle_is_found_with_its_modules() {
    let edge = || (PathBuf::new(), 1);
    let graph = BTreeMap::from([
        ("a".to_owned(), BTreeMap::from([("b".to_owned(), edge())])),
        ("b".to_owned(), BTreeMap::from([("a".to_owned(), edge())])),
        ("c".to_owned(), BTreeMap::from([("a".to_owned(), edge())])),
    ]);
    let found = cycles(&graph);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0], BTreeSet::from(["a".to_owned(), "b".to_owned()]));
}
