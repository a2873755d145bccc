//! Builds every plugin crate into a WebAssembly component, following shared/toolchain.md:
//! the rustup `wasm32-unknown-unknown` target when it is there or can be added, otherwise
//! Debian's `rustc-web` toolchain with `-Zbuild-std`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

const TARGET: &str = "wasm32-unknown-unknown";
/// The component-model layer/version bytes (4..8) of a component, as opposed to a core module.
const COMPONENT_MAGIC: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
const DEBIAN_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "rust-web-llvm",
    "lld-22",
];

/// A plugin crate and where its component goes.
struct PluginCrate {
    package: String,
    /// `plugins/sources/aws-cloudtrail` -> `aws-cloudtrail`.
    name: String,
    /// `target/plugins` for shipped plugins, `target/test-plugins` for the test suite's.
    out_dir: PathBuf,
}

/// Builds all plugins in one cargo invocation (cargo parallelises and keeps it incremental) and
/// returns the paths of the shipped components.
pub fn build_all(root: &Path) -> Result<Vec<PathBuf>> {
    let crates = discover(root)?;
    let toolchain = Toolchain::detect()?;
    let mut cmd = toolchain.cargo_build(root);
    for c in &crates {
        cmd.args(["-p", &c.package]);
    }
    eprintln!(
        "building {} plugin components with {}",
        crates.len(),
        toolchain.describe()
    );
    crate::run(&mut cmd)?;
    let artifacts = root.join("target").join(TARGET).join("plugin");
    let mut shipped = Vec::new();
    for c in &crates {
        let built = artifacts.join(format!("{}.wasm", c.package.replace('-', "_")));
        let bytes =
            std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
        if bytes.get(4..8) != Some(&COMPONENT_MAGIC[..]) {
            bail!(
                "{} is a core module, not a component: is wasm-component-ld the linker?",
                built.display()
            );
        }
        std::fs::create_dir_all(&c.out_dir)?;
        let dest = c.out_dir.join(format!("{}.wasm", c.name));
        // Rewrite only on change, so the gateway's compile cache and file timestamps stay put.
        if std::fs::read(&dest).ok().as_deref() != Some(&bytes[..]) {
            std::fs::write(&dest, &bytes)?;
        }
        if c.out_dir.ends_with("plugins") {
            shipped.push(dest);
        }
    }
    eprintln!("plugins are in {}", root.join("target/plugins").display());
    Ok(shipped)
}

fn discover(root: &Path) -> Result<Vec<PluginCrate>> {
    let mut crates = Vec::new();
    for (dir, out) in [
        ("plugins/sources", "target/plugins"),
        ("plugins/subscribers", "target/plugins"),
        ("tests/plugins", "target/test-plugins"),
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            let manifest = path.join("Cargo.toml");
            if !manifest.exists() {
                continue;
            }
            let text = std::fs::read_to_string(&manifest)?;
            let package = text
                .lines()
                .find_map(|l| {
                    l.strip_prefix("name = \"")
                        .and_then(|r| r.strip_suffix('"'))
                })
                .with_context(|| format!("no package name in {}", manifest.display()))?
                .to_string();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .context("plugin folder name")?
                .to_string();
            crates.push(PluginCrate {
                package,
                name,
                out_dir: root.join(out),
            });
        }
    }
    crates.sort_by(|a, b| a.package.cmp(&b.package));
    Ok(crates)
}

enum Toolchain {
    /// rustup's target and its bundled `wasm-component-ld`.
    Rustup { linker: PathBuf },
    /// Debian's `rustc-web` (needs `-Zbuild-std`, as no prebuilt wasm std ships with it).
    Debian,
}

impl Toolchain {
    fn detect() -> Result<Self> {
        // `LAKEGATE_WASM_TOOLCHAIN=debian` skips rustup, e.g. to check the fallback on a machine
        // that has both.
        let debian_only = std::env::var("LAKEGATE_WASM_TOOLCHAIN").is_ok_and(|t| t == "debian");
        if !debian_only {
            if let Some(linker) = rustup_target()? {
                return Ok(Toolchain::Rustup { linker });
            }
        }
        if debian_ready() {
            return Ok(Toolchain::Debian);
        }
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if is_root && Path::new("/etc/debian_version").exists() {
            eprintln!(
                "rustup cannot add {TARGET}; installing Debian's {}",
                DEBIAN_PACKAGES.join(" ")
            );
            crate::run(
                Command::new("apt-get")
                    .args(["install", "-y", "--no-install-recommends"])
                    .args(DEBIAN_PACKAGES),
            )
            .or_else(|_| {
                crate::run(Command::new("apt-get").arg("update"))?;
                crate::run(
                    Command::new("apt-get")
                        .args(["install", "-y", "--no-install-recommends"])
                        .args(DEBIAN_PACKAGES),
                )
            })?;
            if debian_ready() {
                return Ok(Toolchain::Debian);
            }
        }
        bail!(
            "no WebAssembly toolchain: run `rustup target add {TARGET}`, or on Debian `apt-get install {}` (see plugin-sdk/README.md)",
            DEBIAN_PACKAGES.join(" ")
        )
    }

    fn describe(&self) -> String {
        match self {
            Toolchain::Rustup { .. } => format!("rustup's {TARGET} target"),
            Toolchain::Debian => "Debian's rustc-web with -Zbuild-std".into(),
        }
    }

    fn cargo_build(&self, root: &Path) -> Command {
        let mut cmd;
        match self {
            Toolchain::Rustup { linker } => {
                cmd = crate::cargo();
                cmd.env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", linker);
                cmd.args(["build", "--profile", "plugin", "--target", TARGET]);
            }
            Toolchain::Debian => {
                cmd = Command::new("/usr/bin/cargo");
                let path = std::env::var("PATH").unwrap_or_default();
                cmd.env("PATH", format!("/usr/lib/llvm-22/bin:{path}"))
                    .env("RUSTC", "/usr/bin/rustc")
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env(
                        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER",
                        debian_linker(),
                    );
                cmd.args([
                    "build",
                    "--profile",
                    "plugin",
                    "--target",
                    TARGET,
                    "-Zbuild-std=std,panic_abort",
                ]);
            }
        }
        // WebAssembly SIMD lets LLVM vectorise the byte scanning of parsers; wasmtime runs it
        // natively. Measured: about 10 % faster CloudTrail translation (ARCHITECTURE.md).
        // Inlining more (LLVM's threshold 1,000 instead of 225) leaves fewer function entries,
        // each of which pays wasmtime's epoch check: 9-10 % fewer instructions through the
        // components (callgrind); 2,000 was no better, 5,000 worse and twice the size.
        if std::env::var_os(RUSTFLAGS_VAR).is_none() {
            cmd.env(
                RUSTFLAGS_VAR,
                "-C target-feature=+simd128 -C llvm-args=-inline-threshold=1000",
            );
        }
        cmd.current_dir(root);
        cmd
    }
}

const RUSTFLAGS_VAR: &str = "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS";

fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8(out.stdout)?
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV names no host")
}

/// The rustup linker path when the target is installed or could be added within two minutes.
fn rustup_target() -> Result<Option<PathBuf>> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let Ok(installed) = installed else {
        return Ok(None);
    };
    let has_target = String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == TARGET);
    if !has_target {
        let added = Command::new("timeout")
            .args(["120", "rustup", "target", "add", TARGET])
            .status();
        if !added.is_ok_and(|s| s.success()) {
            return Ok(None);
        }
    }
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()?;
    let sysroot = String::from_utf8(sysroot.stdout)?.trim().to_string();
    let linker = Path::new(&sysroot)
        .join("lib/rustlib")
        .join(host_triple()?)
        .join("bin/wasm-component-ld");
    Ok(linker.exists().then_some(linker))
}

fn debian_linker() -> PathBuf {
    PathBuf::from("/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld")
}

fn debian_ready() -> bool {
    Path::new("/usr/bin/cargo").exists()
        && debian_linker().exists()
        && Path::new("/usr/lib/llvm-22/bin").exists()
}
