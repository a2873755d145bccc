//! Arbitrary bytes never make a plugin fail its batch: every record of random or mangled input
//! ends up translated or rejected with a reason, through the real components.

use lakegate_plugin_sdk::host::runner::{RunOptions, Runner, Stage};
use lakegate_plugin_sdk::Framing;
use lakegate_tests::{load, plugin_path, root};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Lines of a golden input with random bytes overwritten, inserted and cut off.
fn mangle(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for line in input.split(|&b| b == b'\n') {
        let mut line = line.to_vec();
        match rng.below(4) {
            0 => {
                for _ in 0..1 + rng.below(4) {
                    if !line.is_empty() {
                        let i = rng.below(line.len());
                        line[i] = rng.next() as u8;
                    }
                }
            }
            1 => line.truncate(rng.below(line.len() + 1)),
            2 => {
                let i = rng.below(line.len() + 1);
                line.splice(i..i, (0..rng.below(16)).map(|_| rng.next() as u8));
            }
            _ => {}
        }
        line.retain(|&b| b != b'\n');
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    out
}

fn survives(plugin: &str, golden: &str, framing: Framing) {
    let input = std::fs::read(
        root()
            .join("plugins/sources")
            .join(plugin)
            .join("golden")
            .join(golden),
    )
    .expect("golden input");
    let mut runner = Runner::new(load(&plugin_path(plugin))).expect("manifest");
    let mut rng = Rng(0x5EED_1A4E_6A7E);
    for round in 0..20 {
        let mangled = mangle(&input, &mut rng);
        let report = runner
            .run(
                &mangled,
                &RunOptions {
                    framing: Some(framing),
                    batch_records: 16,
                    ..RunOptions::default()
                },
            )
            .expect("runs");
        let failed: Vec<_> = report.rejected_at(Stage::Plugin).collect();
        assert!(
            failed.is_empty(),
            "{plugin} round {round}: the plugin failed a batch: {:?}",
            failed[0].reason
        );
        let accounted = report
            .accepted
            .iter()
            .map(|a| a.record)
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64
            + report.rejected.len() as u64
            + report.consumed;
        assert_eq!(
            accounted, report.read,
            "{plugin} round {round}: every record is translated, rejected or consumed"
        );
        assert!(report.rejected.iter().all(|r| !r.reason.is_empty()));
    }
}

#[test]
fn cloudtrail_survives_mangled_input() {
    survives(
        "aws-cloudtrail",
        "panther-rule-tests.input.jsonl",
        Framing::JsonLines,
    );
}

#[test]
fn vpc_flow_survives_mangled_input() {
    survives(
        "aws-vpc-flow",
        "custom-v3-header.input.log",
        Framing::TextLines,
    );
}

#[test]
fn okta_survives_mangled_input() {
    survives(
        "okta-system-log",
        "edge-cases.input.jsonl",
        Framing::JsonLines,
    );
}
