//! The sandbox: a plugin that loops, allocates without bound or traps fails only its batch, is
//! reported with the reason, is replaced, and the next batch succeeds.

use std::time::{Duration, Instant};

use lakegate::host::Limits;
use lakegate_plugin_sdk::host::runner::{RunOptions, Runner, Stage};
use lakegate_tests::{host, test_plugin_path};

fn runner(limits: Limits) -> Runner<lakegate::host::Plugin> {
    let plugin = host(limits)
        .load(&test_plugin_path("misbehaving"))
        .expect("loads");
    Runner::new(plugin).expect("manifest is valid")
}

/// Runs `bad` (one batch of its own) and then a good batch through the same runner.
fn fails_then_recovers(limits: Limits, bad: &str, reason: &str) {
    let mut runner = runner(limits);
    let options = RunOptions {
        batch_records: 2,
        ..RunOptions::default()
    };
    // Batch 1: a good record and the bad one. Batch 2: two good records.
    let input = format!("alice\n{bad}\nbob\ncarol\n");
    let started = Instant::now();
    let report = runner.run(input.as_bytes(), &options).expect("runs");
    let elapsed = started.elapsed();
    let failed: Vec<_> = report.rejected_at(Stage::Plugin).collect();
    assert_eq!(
        failed.iter().map(|r| r.record).collect::<Vec<_>>(),
        vec![1, 2],
        "the whole first batch is dead-lettered"
    );
    assert!(
        failed.iter().all(|r| r.reason.contains(reason)),
        "reason {:?} should mention {reason:?}",
        failed[0].reason
    );
    assert_eq!(
        failed[1].raw,
        bad.as_bytes(),
        "dead letters keep the raw bytes"
    );
    let names: Vec<_> = report
        .accepted
        .iter()
        .map(|a| {
            a.event()["actor"]["user"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        vec!["bob", "carol"],
        "the batch after the failure is translated"
    );
    assert_eq!(
        runner.translator().instantiations(),
        2,
        "the failed instance was replaced once"
    );
    assert!(
        elapsed < Duration::from_secs(20),
        "containment took {elapsed:?}"
    );
}

#[test]
fn an_infinite_loop_is_stopped_by_the_deadline() {
    fails_then_recovers(
        Limits {
            deadline: Duration::from_millis(100),
            ..Limits::default()
        },
        "loop",
        "deadline of 100 ms",
    );
}

#[test]
fn unbounded_allocation_is_stopped_by_the_memory_cap() {
    fails_then_recovers(
        Limits {
            memory_bytes: 32 << 20,
            ..Limits::default()
        },
        "alloc",
        "memory limit of 32 MiB",
    );
}

#[test]
fn a_trap_fails_only_its_batch() {
    fails_then_recovers(Limits::default(), "trap", "plugin trapped");
}

#[test]
fn a_rejected_record_is_a_diagnostic_not_a_failure() {
    let mut runner = runner(Limits::default());
    let report = runner
        .run(b"alice\nreject\nbob\n", &RunOptions::default())
        .expect("runs");
    assert_eq!(report.accepted.len(), 2);
    let rejected: Vec<_> = report
        .rejected
        .iter()
        .map(|r| (r.record, r.stage, r.reason.as_str()))
        .collect();
    assert_eq!(rejected, vec![(2, Stage::Translation, "asked to reject")]);
    assert_eq!(runner.translator().instantiations(), 1);
}
