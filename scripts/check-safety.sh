#!/usr/bin/env bash
# The safety lines the compiler holds only when the manifests say so, checked for CI:
#  1. `unsafe` only where it belongs: the workspace forbids `unsafe_code`, every member
#     inherits that except the five listed below, and `allow(unsafe_code)` appears only in
#     the two modules of SysV calls, ml-healthcheck's raw NVML fabric call (and the probe). Then a crate under the workspace's
#     lints that writes `unsafe` (tests/tools/unsafe-probe) must fail to build.
#  2. panic = "abort" is refused: slurm-plugin built with -C panic=abort must fail with its
#     compile_error (the FFI guard needs unwinding).
#  3. rust-version is not a claim the code or the lockfile contradicts: see msrv() below
#     for what that does and does not prove.
# Run after `cargo clippy` (which, with -D warnings, turns clippy's incompatible_msrv
# warnings into errors). Builds only in the `check` profile: no artifact of `cargo build`
# is touched.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "check-safety: $*" >&2
  exit 1
}

# 1a. The manifests and the sources.
python3 - <<'EOF'
import pathlib, re, subprocess, sys, tomllib

# member -> its own level of unsafe_code; every other member inherits the workspace's.
OWN_LEVEL = {
    "slurm-sys": "allow",                 # raw bindgen bindings
    "plugins/slurm-plugin": "allow",      # the safe layer over Slurm's C API
    "helpers/ml-epilog": "deny",          # lifted in src/ipc_ctl.rs only
    "tests/tools/ipc-fixture": "deny",    # lifted in src/sysv.rs only
    "helpers/ml-healthcheck": "deny",     # lifted in src/nvml_fabric.rs only
}
# Files outside the two FFI crates that may lift the lint.
MAY_ALLOW = {
    "helpers/ml-epilog/src/ipc_ctl.rs",
    "helpers/ml-healthcheck/src/nvml_fabric.rs",
    "tests/tools/ipc-fixture/src/sysv.rs",
    "tests/tools/unsafe-probe/src/lib.rs",  # the probe: it must fail to build with it
}
errors = []
root = tomllib.loads(pathlib.Path("Cargo.toml").read_text())
level = root.get("workspace", {}).get("lints", {}).get("rust", {}).get("unsafe_code")
if level != "forbid":
    errors.append(f'Cargo.toml: [workspace.lints.rust] unsafe_code is {level!r}, not "forbid"')
members = root["workspace"]["members"]
for m in members:
    manifest = tomllib.loads((pathlib.Path(m) / "Cargo.toml").read_text())
    lints = manifest.get("lints")
    key = m.rstrip("/") if m != "." else "."
    want = {"rust": {"unsafe_code": OWN_LEVEL[key]}} if key in OWN_LEVEL else {"workspace": True}
    if lints != want:
        errors.append(f"{m}/Cargo.toml: [lints] is {lints!r}, expected {want!r}")
for m in OWN_LEVEL:
    if m not in members:
        errors.append(f"{m} has its own unsafe_code level but is no workspace member")

lift = re.compile(r"\b(allow|expect|warn)\s*\([^)]*\bunsafe_code\b")
ffi = ("slurm-sys/", "plugins/slurm-plugin/")
# Tracked and untracked sources, never what git ignores (target/, the release roots).
sources = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z", "*.rs"],
                         capture_output=True, check=True).stdout.decode().split("\0")
for p in sorted(s for s in sources if s):
    path = pathlib.Path(p)
    if p.startswith(ffi) or not path.is_file():
        continue
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if lift.search(line) and p not in MAY_ALLOW and not line.lstrip().startswith("//"):
            errors.append(f"{p}:{n}: lifts unsafe_code: {line.strip()}")
for cfg in pathlib.Path(".").glob(".cargo/config*"):
    if "unsafe_code" in cfg.read_text():
        errors.append(f"{cfg}: sets unsafe_code (rustflags bypass the manifests)")
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
EOF
echo "check-safety: unsafe_code: forbidden in every member but slurm-sys, slurm-plugin, ml-epilog, ipc-fixture, ml-healthcheck (one module each for the last three)"

# 1b. The probe: as built normally it is empty and builds; with an unsafe block it must
# not build, nor with an allow(unsafe_code) on a module.
cargo rustc -q -p unsafe-probe --lib --profile check ||
  fail "unsafe-probe does not build even without its probe cfg"
for probe in block allow; do
  if out=$(cargo rustc -q -p unsafe-probe --lib --profile check -- \
    --cfg "unsafe_probe=\"$probe\"" 2>&1); then
    fail "unsafe-probe built with unsafe_probe=\"$probe\": unsafe_code is not forbidden"
  fi
  grep -q 'error: usage of an `unsafe` block' <<<"$out" ||
    fail "unsafe-probe ($probe) failed for another reason: $out"
done
grep -q 'error\[E0453\]: allow(unsafe_code) incompatible with previous forbid' <<<"$out" ||
  fail "unsafe-probe (allow): the allow was not refused: $out"
echo "check-safety: unsafe-probe: an unsafe block and an allow(unsafe_code) both refused"

# 2. panic = "abort".
if out=$(cargo rustc -q -p slurm-plugin --lib --profile check -- -C panic=abort 2>&1); then
  fail 'slurm-plugin built with -C panic=abort'
fi
grep -q 'slurm-plugin needs panic = "unwind"' <<<"$out" ||
  fail "slurm-plugin with -C panic=abort failed for another reason: $out"
echo 'check-safety: panic = "abort": slurm-plugin refuses to build'

# 3. rust-version. What this proves: (a) every package of the locked graph this host
# builds (normal, build and dev dependencies) declares a rust-version no newer than ours;
# (b) none of the language features rustc accepted after ours (up to the installed 1.95,
# from rustc's compiler/rustc_feature/src/accepted.rs) that can be seen in the source text
# is used: if-let guards and cfg_select! (1.95), #[repr(i128/u128)] and `[x; _]` (1.89),
# target features and inline asm (1.89-1.93; none is used here). With clippy's
# incompatible_msrv (std items newer than rust-version, run by `cargo clippy -D warnings`)
# that covers the usual ways a newer toolchain is needed. What it does not prove: that
# rust-version's toolchain builds the workspace. Not checked: std trait impls added after
# it (impls carry no stability version), APIs called only inside macro expansions
# (clippy skips them), `_` for an inferred const generic argument written as `::<_>`,
# inference and borrow-checker improvements, and lints a newer rustc dropped. Only
# building with that toolchain would (none can be downloaded on these machines).
msrv() {
  local declared
  declared=$(cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json,sys; [v] = {p["rust_version"] for p in json.load(sys.stdin)["packages"]}; print(v)')
  local tmp
  tmp=$(mktemp -d)
  cargo tree --workspace -e normal,build,dev --prefix none --format '{p}' |
    awk '{print $1, $2}' | sort -u >"$tmp/tree"
  cargo metadata --format-version 1 >"$tmp/metadata.json"
  python3 - "$declared" "$tmp/tree" "$tmp/metadata.json" <<'EOF'
import json, sys
declared, tree_file, meta_file = sys.argv[1:]
def ver(v):
    return tuple(int(x) for x in (v.split(".") + ["0", "0"])[:3])
used = {tuple(l.split()) for l in open(tree_file) if l.strip()}
meta = json.load(open(meta_file))
ours = {p["name"] for p in meta["packages"] if p["id"] in meta["workspace_members"]}
newer, highest = [], ("-", "0")
for p in meta["packages"]:
    rv = p.get("rust_version")
    if not rv or p["name"] in ours or (p["name"], "v" + p["version"]) not in used:
        continue
    if ver(rv) > ver(highest[1]):
        highest = (f'{p["name"]} {p["version"]}', rv)
    if ver(rv) > ver(declared):
        newer.append(f'{p["name"]} {p["version"]} needs {rv}')
if newer:
    sys.exit(f"rust-version {declared} is too old for the locked dependencies: " + "; ".join(newer))
print(f"check-safety: rust-version {declared}: the newest need of a locked dependency is {highest[1]} ({highest[0]})")
EOF
  rm -r "$tmp"
  # Syntax newer than 1.88 (update this list with rust-version).
  local newer_syntax
  newer_syntax=$(git ls-files -z '*.rs' | xargs -0 grep -nE \
    'if let [^{};]*=>|cfg_select!|#\[repr\((i|u)128\)\]|;\s*_\s*\]|#\[target_feature|\basm!' || true)
  [ -z "$newer_syntax" ] || fail "syntax newer than rust-version:
$newer_syntax"
  echo "check-safety: rust-version: no if-let guard, cfg_select!, repr(128), [x; _], target_feature or asm!"
}
msrv
