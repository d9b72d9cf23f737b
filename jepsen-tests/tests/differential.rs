//! Differential test of the WGL checker against a brute-force search over every real-time
//! respecting order, on small random histories of one SKU.
//!
//! Histories are generated from the model itself: each op gets a linearization point on a
//! line, an interval around it, and the model's reply at that point, so the unperturbed
//! history is linearizable by construction (including `info` ops that were or were not applied
//! and `fail` ops that were not). Perturbations (a wrong counter, status, HTTP status or
//! refusal, or a moved interval) then make some of them illegal; both checkers must agree.

use std::time::Duration;

use jepsen_tests::history::{Item, OrderView, SkuView};
use jepsen_tests::linearizability::{brute_force_linearizable, partition};
use jepsen_tests::model::{self, Body, Command, ItemLists, OrderStatus, Reply, StoreState};
use jepsen_tests::{check, Completion, History, Input, Op, Output, Verdict};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

const SKU: &str = "A";
/// Interned-id bases, so one `Id` space can name orders, users and requests.
const USER_BASE: u32 = 1_000;
const REQUEST_BASE: u32 = 2_000;

#[derive(Clone, Debug)]
enum Cmd {
    Create(u64),
    Restock(u32, i64),
    Order(u32, u32, u64),
    Pay(u32),
    Cancel(u32),
    Refund(u32, bool),
    ReadSku,
    ReadOrder(u32),
}

impl Cmd {
    fn input(&self) -> Input {
        let o = |n: &u32| format!("o{n}");
        match self {
            Cmd::Create(stock) => Input::create_sku(SKU, *stock),
            Cmd::Restock(r, delta) => Input::restock(SKU, &format!("r{r}"), *delta),
            Cmd::Order(n, u, qty) => Input::order(&o(n), &format!("u{u}"), SKU, *qty),
            Cmd::Pay(n) => Input::pay(SKU, &o(n)),
            Cmd::Cancel(n) => Input::cancel(SKU, &o(n)),
            Cmd::Refund(n, restock) => Input::refund(SKU, &o(n), *restock),
            Cmd::ReadSku => Input::read_sku(SKU),
            Cmd::ReadOrder(n) => Input::read_order(SKU, &o(n)),
        }
    }

    fn command(&self, lists: &mut ItemLists) -> Command {
        match *self {
            Cmd::Create(stock) => Command::CreateSku {
                sku: 0,
                stock,
                per_user_limit: None,
                sale_window: None,
            },
            Cmd::Restock(r, delta) => Command::Restock {
                sku: 0,
                request: REQUEST_BASE + r,
                delta,
            },
            Cmd::Order(order, u, qty) => lists.order(order, USER_BASE + u, &[(0, qty)]),
            Cmd::Pay(order) => Command::Pay { order },
            Cmd::Cancel(order) => Command::Cancel { order },
            Cmd::Refund(order, restock) => Command::Refund { order, restock },
            Cmd::ReadSku => Command::ReadSku { sku: 0 },
            Cmd::ReadOrder(order) => Command::ReadOrder { order },
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Fate {
    Ok,
    InfoApplied,
    InfoLost,
    Fail,
}

#[derive(Clone, Debug)]
struct Spec {
    cmd: Cmd,
    /// The interval is [point - lead, point + lag] around the op's linearization point.
    lead: u64,
    lag: u64,
    fate: Fate,
    record_body: bool,
}

#[derive(Clone, Debug)]
enum Perturb {
    Counter { field: usize, up: bool },
    Status(usize),
    FlipCreated,
    Refuse(usize),
    Accept,
    Retime { call: u64, len: u64 },
}

#[derive(Clone, Debug)]
struct Case {
    specs: Vec<Spec>,
    perturb: Option<(prop::sample::Index, Perturb)>,
}

fn cmd(ids: u32) -> impl Strategy<Value = Cmd> {
    prop_oneof![
        1 => (0u64..4).prop_map(Cmd::Create),
        2 => (0u32..3, prop_oneof![-2i64..=-1, 1i64..=3]).prop_map(|(r, d)| Cmd::Restock(r, d)),
        5 => (0..ids, 0u32..2, 1u64..=2).prop_map(|(o, u, q)| Cmd::Order(o, u, q)),
        2 => (0..ids).prop_map(Cmd::Pay),
        2 => (0..ids).prop_map(Cmd::Cancel),
        2 => (0..ids, any::<bool>()).prop_map(|(o, r)| Cmd::Refund(o, r)),
        3 => Just(Cmd::ReadSku),
        2 => (0..ids).prop_map(Cmd::ReadOrder),
    ]
}

fn spec(ids: u32, spread: u64) -> impl Strategy<Value = Spec> {
    let fate = prop_oneof![
        12 => Just(Fate::Ok),
        1 => Just(Fate::InfoApplied),
        1 => Just(Fate::InfoLost),
        1 => Just(Fate::Fail),
    ];
    (cmd(ids), 0..=spread, 0..=spread, fate, any::<bool>()).prop_map(
        |(cmd, lead, lag, fate, record_body)| Spec {
            cmd,
            lead,
            lag,
            fate,
            record_body,
        },
    )
}

fn perturbation() -> impl Strategy<Value = Perturb> {
    prop_oneof![
        (0usize..5, any::<bool>()).prop_map(|(field, up)| Perturb::Counter { field, up }),
        (0usize..5).prop_map(Perturb::Status),
        Just(Perturb::FlipCreated),
        (0usize..4).prop_map(Perturb::Refuse),
        Just(Perturb::Accept),
        (0u64..900, 0u64..300).prop_map(|(call, len)| Perturb::Retime { call, len }),
    ]
}

/// Up to 7 ops: usually a create first, then 1–6 random ops with overlapping intervals.
fn small_case() -> impl Strategy<Value = Case> {
    let create = prop::option::weighted(
        0.8,
        (0u64..4, 0u64..20).prop_map(|(stock, lag)| Spec {
            cmd: Cmd::Create(stock),
            lead: 0,
            lag,
            fate: Fate::Ok,
            record_body: true,
        }),
    );
    (
        create,
        prop::collection::vec(spec(4, 250), 1..=6),
        prop::option::weighted(0.75, (any::<prop::sample::Index>(), perturbation())),
    )
        .prop_map(|(create, rest, perturb)| Case {
            specs: create.into_iter().chain(rest).collect(),
            perturb,
        })
}

fn output(reply: &Reply, lists: &ItemLists, record_body: bool) -> Option<Output> {
    match reply.body {
        Body::Refused(refusal) => Some(Output::error(refusal.code())),
        Body::Sku(c) => record_body.then_some(Output::Sku(SkuView {
            total: c.total,
            available: c.available,
            reserved: c.reserved,
            sold: c.sold,
            refunded: c.refunded,
            revision: 0,
        })),
        Body::Order(o) => record_body.then(|| {
            Output::Order(OrderView {
                user_id: format!("u{}", o.user - USER_BASE),
                items: lists
                    .get(o.items)
                    .iter()
                    .map(|&(_, qty)| Item {
                        sku: SKU.into(),
                        qty,
                    })
                    .collect(),
                status: o.status,
                revision: 0,
                created_ms: None,
                expires_ms: None,
            })
        }),
        Body::Malformed => unreachable!("the model never answers Malformed"),
    }
}

/// Builds the history; returns it and whether a perturbation changed anything.
fn build(case: &Case) -> (History, bool) {
    let mut state = StoreState::default();
    let mut lists = ItemLists::default();
    let mut ops = Vec::new();
    for (i, spec) in case.specs.iter().enumerate() {
        let point = 1_000 + 100 * i as u64;
        let (call, ret) = (point - spec.lead, point + spec.lag);
        let input = spec.cmd.input();
        let command = spec.cmd.command(&mut lists);
        let (next, reply) = model::step(&state, &lists, &command);
        assert_ne!(
            reply.http, 400,
            "generator made an invalid request: {spec:?}"
        );
        let applied = matches!(spec.fate, Fate::Ok | Fate::InfoApplied);
        if applied {
            state = next.into_owned();
        }
        let process = i as u64;
        ops.push(match spec.fate {
            Fate::Ok => {
                let record_body = spec.record_body || command.is_read();
                Op::ok(
                    process,
                    input,
                    call,
                    ret,
                    reply.http,
                    output(&reply, &lists, record_body),
                )
            }
            Fate::InfoApplied | Fate::InfoLost => Op::info(process, input, call, ret),
            Fate::Fail => Op::no_answer(process, input, call, ret, Completion::Fail, "refused"),
        });
    }
    let mut perturbed = false;
    if let Some((index, kind)) = &case.perturb {
        let oks: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].completion == Completion::Ok)
            .collect();
        if !oks.is_empty() {
            perturbed = perturb(&mut ops[*index.get(&oks)], kind);
        }
    }
    let mut history = History::new();
    for op in ops {
        history.push(op).expect("generated ops are well-formed");
    }
    (history, perturbed)
}

fn perturb(op: &mut Op, kind: &Perturb) -> bool {
    let before = op.clone();
    let is_read = op.kind().is_read();
    match (kind, &mut op.output) {
        (Perturb::Counter { field, up }, Some(Output::Sku(view))) => {
            let counter = match field {
                0 => &mut view.total,
                1 => &mut view.available,
                2 => &mut view.reserved,
                3 => &mut view.sold,
                _ => &mut view.refunded,
            };
            *counter = if *up || *counter == 0 {
                *counter + 1
            } else {
                *counter - 1
            };
        }
        (Perturb::Status(n), Some(Output::Order(view))) => {
            view.status = OrderStatus::ALL[*n];
        }
        (Perturb::FlipCreated, _) if op.http == Some(200) => op.http = Some(201),
        (Perturb::FlipCreated, _) if op.http == Some(201) => op.http = Some(200),
        (Perturb::Refuse(n), _) => {
            let code = [
                "out_of_stock",
                "invalid_transition",
                "order_not_found",
                "sku_not_found",
            ][*n];
            op.http = Some(if code.ends_with("not_found") {
                404
            } else {
                409
            });
            op.output = Some(Output::error(code));
        }
        (Perturb::Accept, Some(Output::Error { .. })) if !is_read => {
            op.http = Some(200);
            op.output = None;
        }
        (Perturb::Retime { call, len }, _) => {
            op.invoke_ns = 1_000 + call;
            op.complete_ns = op.invoke_ns + len;
        }
        _ => {}
    }
    *op != before
}

/// Runs both checkers; panics if they disagree. Returns the common verdict (true = legal).
fn agree(case: &Case) -> bool {
    let (history, perturbed) = build(case);
    let parts = partition(&history).expect("one SKU, single-item orders");
    assert!(parts.len() <= 1);
    let brute = parts.iter().all(brute_force_linearizable);
    let report = check(&history, Duration::from_secs(30)).expect("checkable");
    let verdict = report.verdict();
    assert_ne!(verdict, Verdict::Unknown, "tiny history timed out");
    assert_eq!(
        verdict.is_pass(),
        brute,
        "WGL says {verdict}, brute force says {brute}\n{history}\n{report}"
    );
    if !perturbed {
        assert!(brute, "generated history must be linearizable:\n{history}");
    }
    if !brute {
        let counterexample = report.skus[0]
            .counterexample
            .as_ref()
            .expect("counterexample");
        assert!(counterexample.minimised);
        assert!(!counterexample.window.is_empty());
    }
    brute
}

#[test]
fn wgl_agrees_with_brute_force_and_sees_both_verdicts() {
    let mut runner = TestRunner::deterministic();
    let strategy = small_case();
    let (mut legal, mut illegal) = (0, 0);
    for _ in 0..10_000 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        if agree(&case) {
            legal += 1;
        } else {
            illegal += 1;
        }
    }
    // Both outcomes must be common, or the test proves little.
    assert!(
        legal > 2_000 && illegal > 2_000,
        "legal {legal}, illegal {illegal}"
    );
}

proptest! {
    // Nothing to persist to: an integration test has no lib.rs beside it; a failure prints
    // its shrunk case instead.
    #![proptest_config(Config { cases: 500, failure_persistence: None, ..Config::default() })]

    /// Random seeds each run, shrinking any disagreement to a minimal history.
    #[test]
    fn wgl_agrees_with_brute_force(case in small_case()) {
        agree(&case);
    }
}

/// 400 ops, each overlapping several others, about one in fifteen `info`.
fn long_case(runner: &mut TestRunner) -> Vec<Spec> {
    let strategy = prop::collection::vec(spec(40, 400), 400);
    let mut specs = strategy.new_tree(runner).unwrap().current();
    specs.insert(
        0,
        Spec {
            cmd: Cmd::Create(20),
            lead: 0,
            lag: 0,
            fate: Fate::Ok,
            record_body: true,
        },
    );
    specs
}

/// Long histories with info ops mixed in must check within budget.
#[test]
fn long_legal_histories_check_quickly() {
    let mut runner = TestRunner::deterministic();
    for _ in 0..3 {
        let specs = long_case(&mut runner);
        let (history, _) = build(&Case {
            specs,
            perturb: None,
        });
        // A search that blows up exhausts the budget and answers Unknown, which fails here;
        // no wall-clock bound, which would only measure how busy the machine is.
        let report = check(&history, Duration::from_secs(60)).unwrap();
        assert_eq!(report.verdict(), Verdict::Pass, "{report}");
    }
}

/// How a read deep in a long history goes wrong.
#[derive(Clone, Copy, Debug)]
enum BadRead {
    /// It shows what an earlier read showed (a stale read).
    Stale,
    /// It shows one more unit available than ever could be (a corrupt read).
    Corrupt,
}

/// A single wrong read deep in a long history is found, named as the culprit, and explained.
#[test]
fn long_histories_with_one_bad_read_fail_and_point_at_it() {
    let mut runner = TestRunner::deterministic();
    let mut checked = [0, 0];
    for seed in 0..6 {
        let specs = long_case(&mut runner);
        let (history, _) = build(&Case {
            specs,
            perturb: None,
        });
        let is_sku_read = |op: &Op| op.kind() == jepsen_tests::OpKind::ReadSku && op.is_success();
        let Some(target) = (130..270).rev().find(|&i| is_sku_read(&history.ops()[i])) else {
            continue;
        };
        for (n, bad) in [BadRead::Stale, BadRead::Corrupt].into_iter().enumerate() {
            let mut ops: Vec<Op> = history.ops().to_vec();
            match bad {
                BadRead::Stale => {
                    let Some(earlier) = (target.saturating_sub(40)..target)
                        .rev()
                        .find(|&i| is_sku_read(&ops[i]) && ops[i].output != ops[target].output)
                    else {
                        continue;
                    };
                    ops[target].output = ops[earlier].output.clone();
                }
                BadRead::Corrupt => {
                    let Some(Output::Sku(view)) = &mut ops[target].output else {
                        unreachable!("ok reads carry their body")
                    };
                    view.available += 1;
                }
            }
            let mut bad_history = History::new();
            for op in ops {
                bad_history.push(op).unwrap();
            }
            let report = check(&bad_history, Duration::from_secs(60)).unwrap();
            if report.verdict() == Verdict::Pass {
                // The stale value happened to be reachable again: nothing to find.
                assert!(matches!(bad, BadRead::Stale), "{report}");
                continue;
            }
            assert_eq!(report.verdict(), Verdict::Fail, "seed {seed} {bad:?}");
            let counterexample = report.skus[0].counterexample.as_ref().unwrap();
            let culprit = counterexample.window.last().unwrap();
            assert_eq!(
                culprit.index, target as u64,
                "seed {seed} {bad:?}\n{report}"
            );
            assert!(!counterexample.could_answer.is_empty(), "{report}");
            if let BadRead::Stale = bad {
                // The window runs from the write the read missed to the read: with every op
                // overlapping about eight others, a dozen or so ops.
                assert!(counterexample.minimised, "seed {seed}\n{report}");
                assert!(counterexample.window.len() <= 20, "seed {seed}\n{report}");
            }
            checked[n] += 1;
        }
    }
    assert!(checked[0] >= 3 && checked[1] >= 3, "{checked:?}");
}
