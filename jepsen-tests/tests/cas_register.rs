//! Hand-built compare-and-set register histories, good and bad, through the generic checker,
//! and Jepsen logs through the reader.

use std::time::Duration;

use jepsen_tests::cas_register::{
    check, from_log, CasRegister, RegisterCall, RegisterOp, RegisterOutput,
};
use jepsen_tests::jepsen_log::{parse, LogError, Outcome, Value};
use jepsen_tests::linearizability::{brute_force, Operation};
use jepsen_tests::Verdict;

const BUDGET: Duration = Duration::from_secs(10);

fn read(process: u64, at: (u64, u64), value: Option<i64>) -> RegisterCall {
    RegisterCall::ok(
        process,
        RegisterOp::Read,
        at.0,
        at.1,
        RegisterOutput::Read(value),
    )
}

fn write(process: u64, at: (u64, u64), value: i64) -> RegisterCall {
    RegisterCall::ok(
        process,
        RegisterOp::Write(value),
        at.0,
        at.1,
        RegisterOutput::Done,
    )
}

fn cas(process: u64, at: (u64, u64), from: i64, to: i64) -> RegisterCall {
    RegisterCall::ok(
        process,
        RegisterOp::Cas { from, to },
        at.0,
        at.1,
        RegisterOutput::Done,
    )
}

fn info(process: u64, op: RegisterOp, at: (u64, u64)) -> RegisterCall {
    RegisterCall::info(process, op, at.0, at.1)
}

/// The WGL verdict, checked against the brute-force search so the cases test both.
fn verdict(calls: &[RegisterCall]) -> Verdict {
    let report = check(calls, BUDGET);
    let operations: Vec<_> = calls
        .iter()
        .map(|call| Operation {
            call: call.call,
            returned: call.returned.as_ref().map(|(ret, output)| (*ret, output)),
            input: &call.op,
        })
        .collect();
    let brute = brute_force(&CasRegister, &operations);
    assert_eq!(
        report.verdict() == Verdict::Pass,
        brute,
        "WGL and brute force disagree:\n{report}"
    );
    if report.verdict() == Verdict::Fail {
        assert!(report.check.violation.is_some(), "{report}");
        assert!(!report.window.is_empty(), "{report}");
    }
    report.verdict()
}

#[test]
fn sequential_and_concurrent_legal_histories_pass() {
    assert_eq!(verdict(&[]), Verdict::Pass);
    assert_eq!(verdict(&[read(0, (1, 2), None)]), Verdict::Pass);
    assert_eq!(
        verdict(&[
            write(0, (1, 2), 1),
            read(1, (3, 4), Some(1)),
            cas(0, (5, 6), 1, 2),
            read(1, (7, 8), Some(2)),
        ]),
        Verdict::Pass
    );
    // Concurrent with the write, the read may see either value.
    for seen in [None, Some(5)] {
        assert_eq!(
            verdict(&[write(0, (1, 4), 5), read(1, (2, 3), seen)]),
            Verdict::Pass
        );
    }
    // Two concurrent cas chained: 0 -> 1 -> 2 in one order only.
    assert_eq!(
        verdict(&[
            write(0, (1, 2), 0),
            cas(1, (3, 6), 1, 2),
            cas(2, (4, 5), 0, 1),
            read(0, (7, 8), Some(2)),
        ]),
        Verdict::Pass
    );
}

#[test]
fn stale_read_after_a_completed_write_fails() {
    let calls = [
        write(0, (1, 2), 1),
        write(1, (3, 4), 2),
        read(2, (5, 6), Some(1)),
    ];
    assert_eq!(verdict(&calls), Verdict::Fail);
    let report = check(&calls, BUDGET);
    // The read contradicts the second write; the first is context.
    assert_eq!(report.window, vec![calls[1], calls[2]]);
    assert_eq!(report.context, vec![calls[0]]);
    assert_eq!(
        report.check.violation.as_ref().unwrap().could_answer,
        vec!["2"]
    );
    assert!(report.to_string().starts_with("not-linearizable\n"));
}

#[test]
fn two_successful_cas_from_the_same_value_fail() {
    let calls = [
        write(0, (1, 2), 0),
        cas(1, (3, 6), 0, 1),
        cas(2, (4, 5), 0, 2),
    ];
    assert_eq!(verdict(&calls), Verdict::Fail);
    // Unless something wrote the old value back in between.
    let mut restored = calls.to_vec();
    restored.push(write(3, (3, 6), 0));
    assert_eq!(verdict(&restored), Verdict::Pass);
}

#[test]
fn a_read_of_a_value_never_written_fails_on_its_own() {
    let calls = [write(0, (1, 2), 1), read(1, (3, 4), Some(7))];
    assert_eq!(verdict(&calls), Verdict::Fail);
    let report = check(&calls, BUDGET);
    assert_eq!(report.window, vec![calls[1]]);
    let text = report.to_string();
    assert!(text.contains("read: invoked line 3, ok 7 line 4"), "{text}");
}

#[test]
fn info_ops_may_or_may_not_have_happened() {
    let write_1 = info(0, RegisterOp::Write(1), (1, 2));
    // Taken effect later than the info, or never.
    assert_eq!(verdict(&[write_1, read(1, (5, 6), Some(1))]), Verdict::Pass);
    assert_eq!(verdict(&[write_1, read(1, (5, 6), None)]), Verdict::Pass);
    assert_eq!(
        verdict(&[write_1, read(1, (3, 4), None), read(1, (5, 6), Some(1)),]),
        Verdict::Pass
    );
    // Once seen, it cannot vanish.
    assert_eq!(
        verdict(&[write_1, read(1, (3, 4), Some(1)), read(1, (5, 6), None),]),
        Verdict::Fail
    );
    // An info cas took effect only if the register held its old value.
    let cas_1_2 = info(0, RegisterOp::Cas { from: 1, to: 2 }, (3, 4));
    assert_eq!(
        verdict(&[write(1, (1, 2), 1), cas_1_2, read(1, (5, 6), Some(2))]),
        Verdict::Pass
    );
    assert_eq!(
        verdict(&[write(1, (1, 2), 3), cas_1_2, read(1, (5, 6), Some(2))]),
        Verdict::Fail
    );
    // But not before it was invoked.
    assert_eq!(
        verdict(&[
            read(1, (1, 2), Some(1)),
            info(0, RegisterOp::Write(1), (3, 4))
        ]),
        Verdict::Fail
    );
}

#[test]
fn a_process_number_reused_after_info_is_a_new_op() {
    let log = "\
INFO  jepsen.util - 0\t:invoke\t:write\t1
INFO  jepsen.util - 0\t:info\t:write\t1\t:timed-out
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 0\t:ok\t:read\t1
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 0\t:ok\t:read\tnil
";
    let calls = from_log(&parse(log).unwrap()).unwrap();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c.process == 0));
    assert_eq!(calls[0].returned, None);
    assert_eq!(calls[0].info, Some(2));
    // The write was seen, then it vanished.
    assert_eq!(verdict(&calls), Verdict::Fail);
    // Without the last read: the info write took effect between lines 1 and 4.
    assert_eq!(verdict(&calls[..2]), Verdict::Pass);
}

#[test]
fn an_exhausted_budget_is_unknown_never_a_pass() {
    let calls = [write(0, (1, 2), 1), read(1, (3, 4), Some(1))];
    let report = check(&calls, Duration::ZERO);
    assert_eq!(report.verdict(), Verdict::Unknown);
    assert!(!report.verdict().is_pass());
    assert!(report
        .to_string()
        .starts_with("unknown: time budget exhausted\n"));
    // The same history decides with a budget.
    assert_eq!(check(&calls, BUDGET).verdict(), Verdict::Pass);
}

/// Forty concurrent info writes of distinct values: to show that no order explains the reads
/// (1 is read twice around a 4, and only one op writes 1) the search must visit about 2^40
/// subsets of them, so a short budget runs out, and that is not a pass.
#[test]
fn a_large_budget_bound_history_is_unknown() {
    let mut calls: Vec<RegisterCall> = (0..40)
        .map(|p| info(p, RegisterOp::Write(p as i64), (1, 2)))
        .collect();
    // Reads in an order no write sequence gives, so the search must try them all.
    for (k, value) in [3, 1, 4, 1, 5, 9, 2, 6].into_iter().enumerate() {
        let at = 10 + 2 * k as u64;
        calls.push(read(100, (at, at + 1), Some(value)));
    }
    let report = check(&calls, Duration::from_millis(50));
    assert_eq!(report.verdict(), Verdict::Unknown, "{report}");
}

const LOG: &str = "\
2017-03-02 17:41:01,402{GMT}\tINFO\t[jepsen test runner] jepsen.core: Running test
2017-03-02 17:41:01,416 INFO [jepsen worker 3] jepsen.util - 3\t:invoke\t:read\tnil
2017-03-02 17:41:01,417 INFO [jepsen worker 1] jepsen.util - 1\t:invoke\t:cas\t[3 4]
2017-03-02 17:41:01,420 INFO [jepsen nemesis] jepsen.util - :nemesis\t:info\t:start\tnil
2017-03-02 17:41:01,421 INFO [jepsen worker 3] jepsen.util - 3\t:ok\t:read\tnil
2017-03-02 17:41:01,425 INFO [jepsen worker 1] jepsen.util - 1\t:fail\t:cas\t[3 4]
INFO  jepsen.util - 4\t:invoke\t:write\t1
INFO  jepsen.util - 4\t:ok\t:write\t1
INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2]
INFO  jepsen.util - :nemesis\t:info\t:start\t\"partitioned n1\"
INFO  jepsen.util - 0\t:info\t:cas\t[1 2]\t:timed-out
INFO  jepsen.util - 3\t:invoke\t:read\tnil
INFO  jepsen.util - 3\t:ok\t:read\t2
INFO  jepsen.core - Run complete, writing
";

#[test]
fn a_jepsen_log_with_timestamps_and_nemesis_lines_reads_as_its_ops() {
    let ops = parse(LOG).unwrap();
    let summary: Vec<(u64, &str, usize, &Outcome)> = ops
        .iter()
        .map(|op| (op.process, op.f.as_str(), op.invoke_line, &op.outcome))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                3,
                "read",
                2,
                &Outcome::Ok {
                    line: 5,
                    value: Value::Nil
                }
            ),
            (1, "cas", 3, &Outcome::Fail { line: 6 }),
            (
                4,
                "write",
                7,
                &Outcome::Ok {
                    line: 8,
                    value: Value::Int(1)
                }
            ),
            (0, "cas", 9, &Outcome::Info { line: 11 }),
            (
                3,
                "read",
                12,
                &Outcome::Ok {
                    line: 13,
                    value: Value::Int(2)
                }
            ),
        ]
    );
    assert_eq!(
        ops[1].value,
        Value::List(vec![Value::Int(3), Value::Int(4)])
    );
    let calls = from_log(&ops).unwrap();
    // The failed cas is gone.
    assert_eq!(
        calls.iter().map(|c| c.op).collect::<Vec<_>>(),
        vec![
            RegisterOp::Read,
            RegisterOp::Write(1),
            RegisterOp::Cas { from: 1, to: 2 },
            RegisterOp::Read,
        ]
    );
    assert_eq!(calls[3].returned, Some((13, RegisterOutput::Read(Some(2)))));
    // The timed-out cas took effect before the last read.
    assert_eq!(verdict(&calls), Verdict::Pass);
    // Had the read seen 3, nothing explains it.
    let bad = LOG.replace("3\t:ok\t:read\t2", "3\t:ok\t:read\t3");
    assert_eq!(
        verdict(&from_log(&parse(&bad).unwrap()).unwrap()),
        Verdict::Fail
    );
}

fn parse_error(log: &str) -> LogError {
    parse(log)
        .and_then(|ops| from_log(&ops))
        .expect_err("a malformed log")
}

#[test]
fn malformed_logs_name_their_line() {
    let orphan = parse_error(
        "INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
         INFO  jepsen.util - 1\t:ok\t:read\tnil\n\
         INFO  jepsen.util - 2\t:ok\t:read\tnil\n",
    );
    assert_eq!(orphan.line, 3);
    assert!(orphan.message.contains("no open invocation"), "{orphan}");

    let overlapping = parse_error(
        "INFO  jepsen.util - 1\t:invoke\t:write\t1\n\
         something else\n\
         INFO  jepsen.util - 1\t:invoke\t:read\tnil\n",
    );
    assert_eq!(overlapping.line, 3);
    assert!(
        overlapping
            .to_string()
            .starts_with("line 3: process 1 invokes :read while its :write invoked at line 1"),
        "{overlapping}"
    );

    let mismatched = parse_error(
        "INFO  jepsen.util - 1\t:invoke\t:write\t1\n\
         INFO  jepsen.util - 1\t:ok\t:read\t1\n",
    );
    assert_eq!(mismatched.line, 2);

    let not_a_register = parse_error("INFO  jepsen.util - 1\t:invoke\t:add\t1\n");
    assert_eq!(not_a_register.line, 1);
    assert!(
        not_a_register.message.contains("cas-register"),
        "{not_a_register}"
    );

    let bad_cas = parse_error("INFO  jepsen.util - 1\t:invoke\t:cas\t[1]\n");
    assert_eq!(bad_cas.line, 1);

    let bad_read = parse_error(
        "INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
         \n\
         INFO  jepsen.util - 1\t:ok\t:read\t[1 2]\n",
    );
    assert_eq!(bad_read.line, 3);

    let bad_type = parse_error("INFO  jepsen.util - 1\t:invoked\t:read\tnil\n");
    assert_eq!(bad_type.line, 1);
}

#[test]
fn ops_open_at_the_end_of_the_log_are_unknown() {
    let log = "INFO  jepsen.util - 1\t:invoke\t:write\t5\n\
               INFO  jepsen.util - 2\t:invoke\t:read\tnil\n\
               INFO  jepsen.util - 2\t:ok\t:read\t5\n";
    let ops = parse(log).unwrap();
    assert_eq!(ops[0].outcome, Outcome::Open);
    let calls = from_log(&ops).unwrap();
    assert_eq!(calls[0].returned, None);
    assert_eq!(verdict(&calls), Verdict::Pass);
}
