//! Load a plugin component into the gateway's sandbox and translate a file with it, from Rust:
//! `cargo run -p lakegate --example translate -- target/plugins/aws-vpc-flow.wasm plugins/sources/aws-vpc-flow/golden/default-v2.input.log`.

use std::time::Duration;

use anyhow::Context;
use lakegate::host::{Host, Limits};
use lakegate_plugin_sdk::host::runner::{RunOptions, Runner};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (plugin, input) = (
        args.next().context("usage: translate PLUGIN.wasm INPUT")?,
        args.next().context("usage: translate PLUGIN.wasm INPUT")?,
    );
    let host = Host::new(
        Limits {
            deadline: Duration::from_millis(500),
            memory_bytes: 64 << 20,
        },
        None,
    )?;
    let mut runner = Runner::new(host.load(plugin.as_ref())?)?;
    let report = runner.run(&std::fs::read(&input)?, &RunOptions::default())?;
    for (class_uid, n) in report.per_class() {
        println!("class {class_uid}: {n} records");
    }
    println!("{} rejected", report.rejected.len());
    Ok(())
}
