//! The platform recipes in conf-examples/recipes/ (issue 14), checked as far as they can be
//! without those platforms: every JSON and YAML file parses; every path of ours that a
//! recipe names under /usr or /opt is one packaging/manifest installs; every spank_mlenv.so
//! argument (plugstack lines, Soperator's customPlugins) is accepted by mlenv's own parser;
//! every config file is accepted by its own loader; every slurm.conf line of the recipes is
//! accepted by this release's slurmctld (a local cluster started with the lines, with the
//! job_submit plugin they switch on and the example policy loaded).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use local_cluster::{cargo_artifact, Options};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file under `dir`, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn recipes_dir() -> PathBuf {
    root().join("conf-examples/recipes")
}

/// The platforms: one directory each.
const RECIPES: &[&str] = &[
    "onprem",
    "hyperpod",
    "slinky",
    "soperator",
    "cloud-bursting",
];

/// Where Slurm's plugins are on the platforms of the recipes: Debian's packages, SchedMD's
/// slurm-smd packages (Slinky's and Soperator's images), HyperPod's /opt/slurm.
const PLUGIN_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/slurm-wlm",
    "/usr/lib/x86_64-linux-gnu/slurm",
    "/opt/slurm/lib/slurm",
];

/// packaging/manifest's DEST column.
fn manifest_dests() -> Vec<String> {
    read(&root().join("packaging/manifest"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(
                words.len(),
                3,
                "packaging/manifest: {l:?} is not PACKAGE SOURCE DEST"
            );
            words[2].to_string()
        })
        .collect()
}

/// Every installed path, with each platform's PluginDir for @PLUGINDIR@.
fn installed_paths() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in manifest_dests() {
        for dir in PLUGIN_DIRS {
            out.insert(d.replace("@PLUGINDIR@", dir));
        }
    }
    out
}

/// File names the packages install (spank_mlenv.so, ml-epilog, mlpolicy.json, ...).
fn our_names() -> BTreeSet<String> {
    manifest_dests()
        .iter()
        .filter_map(|d| d.rsplit('/').next().map(str::to_string))
        .collect()
}

/// Path-like words of a text: runs of the characters paths here are made of.
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "_./@-".contains(c)))
        .filter(|w| !w.is_empty())
        .collect()
}

/// The files that make up the recipes: their directories, plus the shared examples the
/// on-premises recipe is made of.
fn recipe_files() -> Vec<PathBuf> {
    let mut files = files_under(&recipes_dir());
    for f in ["slurm.conf.fragment", "plugstack.conf"] {
        files.push(root().join("conf-examples").join(f));
    }
    files
}

#[test]
fn every_recipe_exists() {
    for r in RECIPES {
        let files = files_under(&recipes_dir().join(r));
        assert!(!files.is_empty(), "conf-examples/recipes/{r} is empty");
    }
}

/// A path of ours under /usr or /opt (after a staging prefix such as the Dockerfile's
/// /out) is installed by the packages; a path under /usr/share/doc/slurm-ml-* too.
#[test]
fn every_path_a_recipe_names_is_installed() {
    let installed = installed_paths();
    let names = our_names();
    let mut checked = 0;
    let mut bad = Vec::new();
    for f in recipe_files() {
        let text = read(&f);
        for w in words(&text).into_iter().filter(|w| w.starts_with('/')) {
            let w = w.trim_end_matches('.');
            let Some(at) = w.find("/usr/").or_else(|| w.find("/opt/")) else {
                continue;
            };
            let path = &w[at..];
            // An admin's file (/etc/slurm, HyperPod's /opt/slurm/etc), not a package's.
            if path.contains("/etc/") {
                continue;
            }
            let base = path.rsplit('/').next().unwrap_or_default();
            let doc = path.starts_with("/usr/share/doc/slurm-ml-");
            if !names.contains(base) && !doc {
                continue;
            }
            // A directory of ours (".../examples/accounting/") holds installed files.
            let ok = installed.contains(path)
                || (doc && path.ends_with('/') && installed.iter().any(|i| i.starts_with(path)));
            if !ok {
                bad.push(format!("{}: {path}", f.display()));
            }
            checked += 1;
        }
    }
    assert!(
        bad.is_empty(),
        "paths no package installs:\n{}",
        bad.join("\n")
    );
    assert!(checked >= 20, "only {checked} paths checked");
}

/// `conf-examples/...` files a recipe names (COPY, --set-file) exist.
#[test]
fn every_source_file_a_recipe_names_exists() {
    let mut n = 0;
    for f in recipe_files() {
        for w in words(&read(&f)) {
            if let Some(rel) = w.trim_end_matches('.').strip_prefix("conf-examples/") {
                let p = root().join("conf-examples").join(rel);
                assert!(
                    p.exists(),
                    "{} names {w}, which does not exist",
                    f.display()
                );
                n += 1;
            }
        }
    }
    assert!(n >= 4, "only {n} source files named");
}

/// Dockerfile `COPY` sources from the build context exist.
#[test]
fn dockerfile_copies_exist() {
    let text = read(&recipes_dir().join("slinky/Dockerfile"));
    let mut n = 0;
    for line in text.lines() {
        let mut w: Vec<&str> = line.split_whitespace().collect();
        if w.first() != Some(&"COPY") || w.iter().any(|a| a.starts_with("--from")) {
            continue;
        }
        w.pop(); // the destination
        for src in &w[1..] {
            let p = if *src == "." {
                root()
            } else {
                root().join(src)
            };
            assert!(p.exists(), "Dockerfile: COPY {src}: no such file");
            n += 1;
        }
    }
    assert!(n >= 2, "only {n} COPY sources");
}

fn yaml(p: &Path) -> serde_norway::Value {
    serde_norway::from_str(&read(p)).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn get<'a>(v: &'a serde_norway::Value, path: &[&str]) -> &'a serde_norway::Value {
    path.iter().fold(v, |v, k| {
        v.get(*k)
            .unwrap_or_else(|| panic!("no key {} ({path:?})", k))
    })
}

fn scalar(v: &serde_norway::Value) -> String {
    match v {
        serde_norway::Value::String(s) => s.clone(),
        serde_norway::Value::Number(n) => n.to_string(),
        serde_norway::Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// A config file of ours, by name, through its own loader.
fn check_config(name: &str, text: &str, origin: &str) {
    if name.ends_with(".json") {
        serde_json::from_str::<serde_json::Value>(text).unwrap_or_else(|e| panic!("{origin}: {e}"));
    }
    if name.contains("mlpolicy") {
        mlpolicy::config::Policy::parse(text, origin, &|_| Some(0))
            .unwrap_or_else(|e| panic!("{e}"));
    } else if name.contains("ml-healthcheck") {
        ml_healthcheck::config::Config::parse(text, origin).unwrap_or_else(|e| panic!("{e}"));
    } else if name.contains("mlenv") {
        mlenv::config::Profiles::parse(text, origin).unwrap_or_else(|e| panic!("{e}"));
    } else if name.contains("ml-epilog") {
        ml_epilog::config::Config::default()
            .apply_text(text, origin)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Every JSON and YAML file of conf-examples parses; each config of ours (a file, or one in
/// a chart's `configFiles`) is accepted by its loader.
#[test]
fn every_file_parses_and_every_config_loads() {
    let mut configs = 0;
    for f in files_under(&root().join("conf-examples")) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let origin = f.display().to_string();
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            let v = yaml(&f);
            if let Some(files) = v.get("slurm").and_then(|s| s.get("configFiles")) {
                for (k, text) in files.as_mapping().unwrap() {
                    let k = scalar(k);
                    check_config(&k, &scalar(text), &format!("{origin}: configFiles.{k}"));
                    configs += 1;
                }
            }
        } else if name.ends_with(".json") || name == "ml-epilog.conf" {
            check_config(&name, &read(&f), &origin);
            configs += 1;
        }
    }
    assert!(configs >= 7, "only {configs} configs checked");
}

/// spank_mlenv.so's arguments on a plugstack line (commented or not, in any recipe file,
/// YAML block strings included), through mlenv's own parser.
fn mlenv_lines(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches('#').trim();
        let mut w = line.split_whitespace();
        if !matches!(w.next(), Some("required" | "optional")) {
            continue;
        }
        if !w.next().is_some_and(|p| p.ends_with("/spank_mlenv.so")) {
            continue;
        }
        out.push(w.map(str::to_string).collect());
    }
    out
}

#[test]
fn every_plugin_argument_is_accepted() {
    let mut per_recipe: BTreeMap<&str, usize> = BTreeMap::new();
    for r in RECIPES {
        for f in files_under(&recipes_dir().join(r)) {
            for args in mlenv_lines(&read(&f)) {
                mlenv::config::Config::from_args(&args)
                    .unwrap_or_else(|e| panic!("{}: {args:?}: {e}", f.display()));
                *per_recipe.entry(r).or_default() += 1;
            }
        }
    }
    // Soperator: plugStackConfig.customPlugins, one `key=value` per `arguments` entry.
    let sop = recipes_dir().join("soperator/values.yaml");
    let values = yaml(&sop);
    let plugins = get(&values, &["plugStackConfig", "customPlugins"]);
    for p in plugins.as_sequence().unwrap() {
        let path = scalar(get(p, &["path"]));
        assert!(
            p.get("required").and_then(|r| r.as_bool()).is_some(),
            "{path}: required is a bool"
        );
        if !path.ends_with("/spank_mlenv.so") {
            continue;
        }
        let args: Vec<String> = p
            .get("arguments")
            .and_then(|a| a.as_mapping())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{}={}", scalar(k), scalar(v)))
                    .collect()
            })
            .unwrap_or_default();
        mlenv::config::Config::from_args(&args)
            .unwrap_or_else(|e| panic!("{}: customPlugins {args:?}: {e}", sop.display()));
        *per_recipe.entry("soperator").or_default() += 1;
    }
    for r in ["hyperpod", "slinky", "soperator"] {
        assert!(
            per_recipe.get(r).copied().unwrap_or(0) >= 1,
            "{r}: no spank_mlenv.so line: {per_recipe:?}"
        );
    }
}

/// A recipe's slurm.conf lines.
struct ConfLines {
    recipe: &'static str,
    lines: Vec<String>,
}

fn conf_file_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Every recipe's slurm.conf lines: the fragment files, the Slinky chart's
/// `extraSlurmConf` map (lists joined with commas, as the chart does), Soperator's
/// `customSlurmConfig`.
fn recipe_conf_lines() -> Vec<ConfLines> {
    let slinky = yaml(&recipes_dir().join("slinky/values.yaml"));
    let extra = get(&slinky, &["slurm", "extraSlurmConf"]);
    let slinky_lines = extra
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let v = match v.as_sequence() {
                Some(list) => list.iter().map(scalar).collect::<Vec<_>>().join(","),
                None => scalar(v),
            };
            format!("{}={v}", scalar(k))
        })
        .collect();
    let sop = yaml(&recipes_dir().join("soperator/values.yaml"));
    vec![
        ConfLines {
            recipe: "onprem",
            lines: conf_file_lines(&read(&root().join("conf-examples/slurm.conf.fragment"))),
        },
        ConfLines {
            recipe: "hyperpod",
            lines: conf_file_lines(&read(&recipes_dir().join("hyperpod/slurm.conf.fragment"))),
        },
        ConfLines {
            recipe: "slinky",
            lines: slinky_lines,
        },
        ConfLines {
            recipe: "soperator",
            lines: conf_file_lines(&scalar(get(&sop, &["customSlurmConfig"]))),
        },
    ]
}

/// Keys whose lines the local cluster writes itself; the recipes' values are checked here.
fn owned(key: &str, value: &str) -> bool {
    match key {
        "PluginDir" => {
            assert!(
                PLUGIN_DIRS.contains(&value),
                "PluginDir={value} is no platform's"
            );
            true
        }
        "PlugStackConfig" => true,
        _ => false,
    }
}

/// Packs lines into as few clusters as possible: a key never has two values in one.
fn pack(all: &[ConfLines]) -> Vec<Vec<(String, String)>> {
    let mut clusters: Vec<Vec<(String, String)>> = Vec::new();
    for c in all {
        for line in &c.lines {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: {line:?} is not Key=Value", c.recipe));
            assert!(!key.contains(char::is_whitespace), "{}: {line:?}", c.recipe);
            if owned(key, value) {
                continue;
            }
            let fits = |set: &Vec<(String, String)>| {
                set.iter()
                    .all(|(k, v)| !k.eq_ignore_ascii_case(key) || v == value)
            };
            let entry = (key.to_string(), value.to_string());
            match clusters.iter_mut().find(|s| fits(s)) {
                Some(set) if set.contains(&entry) => {}
                Some(set) => set.push(entry),
                None => clusters.push(vec![entry]),
            }
        }
    }
    clusters
}

/// `scontrol show config` as key -> values: from 24.05 keys that may be given more than
/// once are shown one per value, `Epilog[0] = ...` (src/api/config_info.c).
fn show_config(c: &local_cluster::Cluster) -> BTreeMap<String, Vec<String>> {
    let out = stdout(&ok(c.run("scontrol", ["show", "config"]).unwrap()));
    let mut shown: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in out.lines().filter_map(|l| l.split_once(" = ")) {
        let k = k.trim();
        let k = k.split_once('[').map_or(k, |(name, _)| name);
        shown
            .entry(k.to_ascii_lowercase())
            .or_default()
            .push(v.trim().to_string());
    }
    shown
}

#[test]
fn every_slurm_conf_line_is_accepted_by_slurmctld() {
    let all = recipe_conf_lines();
    let clusters = pack(&all);
    assert!(
        clusters.len() <= 2,
        "the recipes need {} clusters: {clusters:?}",
        clusters.len()
    );
    let plugin = cargo_artifact("libjob_submit_mlpolicy.so").unwrap_or_else(|e| panic!("{e}"));
    for lines in clusters {
        println!("a cluster with: {lines:?}");
        let mut extra: Vec<String> = vec![
            // The partitions conf-examples/mlpolicy.json names.
            "PartitionName=gpu Nodes=n[1-2] State=UP".into(),
            "PartitionName=interactive Nodes=n[1-2] State=UP".into(),
            "PartitionName=cpu Nodes=n[1-2] State=UP".into(),
        ];
        extra.extend(lines.iter().map(|(k, v)| format!("{k}={v}")));
        let c = start(Options {
            nodes: 2,
            gpus_per_node: 2,
            job_submit_plugins: vec![plugin.clone()],
            extra_files: vec![(
                "mlpolicy.json".into(),
                read(&root().join("conf-examples/mlpolicy.json")),
            )],
            extra_slurm_conf: extra,
            ..Options::default()
        });
        // slurmctld took every line: each key shows the recipe's value.
        let shown = show_config(&c);
        let mut differ = Vec::new();
        for (k, v) in &lines {
            let got = shown.get(&k.to_ascii_lowercase());
            if !got.is_some_and(|g| g.iter().any(|g| displayed(k, v, g))) {
                differ.push(format!("{k}={v}: scontrol shows {got:?}"));
            }
        }
        assert!(
            differ.is_empty(),
            "{}\nslurmctld log:\n{}",
            differ.join("\n"),
            c.log("slurmctld")
        );
    }
}

/// Whether `scontrol show config` shows `value` for `key` as `got`: durations in seconds
/// are printed with their unit, flag lists in Slurm's own order.
fn displayed(key: &str, value: &str, got: &str) -> bool {
    let set = |s: &str| -> BTreeSet<String> { s.split(',').map(str::to_ascii_lowercase).collect() };
    got == value
        || (key == "HealthCheckInterval" && got == format!("{value} sec"))
        || set(got) == set(value)
}

/// What Slinky's chart (0.3.x, templates/controller/slurm-configmap.yaml) refuses or
/// cannot run: `configFiles` may not hold the files the chart writes itself, and a
/// prolog/epilog script without a shebang cannot be executed by slurmd.
#[test]
fn slinky_values_follow_the_chart() {
    let v = yaml(&recipes_dir().join("slinky/values.yaml"));
    let files = get(&v, &["slurm", "configFiles"]).as_mapping().unwrap();
    for reserved in ["slurm.conf", "slurmdbd.conf"] {
        assert!(
            !files.keys().any(|k| scalar(k) == reserved),
            "configFiles cannot contain {reserved}"
        );
    }
    let mut scripts = 0;
    for key in ["prologScripts", "epilogScripts"] {
        for (name, script) in get(&v, &["slurm", key]).as_mapping().unwrap() {
            let script = scalar(script);
            assert!(
                script.starts_with("#!"),
                "{key}.{}: no shebang",
                scalar(name)
            );
            scripts += 1;
        }
    }
    assert_eq!(scripts, 2);
}

/// The on-prem setup copies plugstack.conf into /etc/slurm; every file its active mlenv line
/// names there (`profiles=/etc/slurm/mlenv.json`) must be copied by the same role too: a
/// `required` plugin whose profiles file is missing fails every srun, sbatch and job.
#[test]
fn onprem_setup_copies_what_its_plugstack_line_names() {
    let plugstack = read(&root().join("conf-examples/plugstack.conf"));
    let named: Vec<String> = plugstack
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|w| {
            let (_, v) = w.split_once('=')?;
            v.strip_prefix("/etc/slurm/").map(str::to_string)
        })
        .collect();
    assert!(
        !named.is_empty(),
        "plugstack.conf's active line names no /etc/slurm file"
    );
    let setup = read(&recipes_dir().join("onprem/setup.sh"));
    // The case arms: `  login)`, `  node)`, `  controller)` up to `;;`.
    let mut checked = 0;
    for arm in setup.split(";;") {
        if !arm.contains("example slurm-ml-login plugstack.conf") {
            continue;
        }
        checked += 1;
        for n in &named {
            assert!(
                arm.lines().any(|l| l.trim_start().starts_with("example ")
                    && l.split_whitespace().nth(2) == Some(n)),
                "onprem/setup.sh copies plugstack.conf but not {n}, which its line names:{arm}"
            );
        }
    }
    assert!(checked >= 2, "login and node roles copy plugstack.conf");
}
