//! A single compare-and-set register (read, write, cas; nil initially) as a second instance of
//! the linearizability checker, for histories other systems record in Jepsen's log format.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, Instant};

use crate::history::fmt_duration_ns;
use crate::jepsen_log::{LogError, LogOp, Outcome, Value};
use crate::linearizability::{check_part, Model, Operation, PartCheck};
use crate::Verdict;

/// An op on the register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    Read,
    Write(i64),
    /// Sets `to` only if the register holds `from`.
    Cas {
        from: i64,
        to: i64,
    },
}

impl fmt::Display for RegisterOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterOp::Read => f.write_str("read"),
            RegisterOp::Write(value) => write!(f, "write {value}"),
            RegisterOp::Cas { from, to } => write!(f, "cas [{from} {to}]"),
        }
    }
}

/// What an `ok` op answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOutput {
    /// A read's value (`None`: nil).
    Read(Option<i64>),
    /// A write, or a cas that succeeded (a cas that found another value is `:fail`, which
    /// never reaches the model).
    Done,
}

fn fmt_value(value: Option<i64>) -> String {
    value.map_or_else(|| "nil".to_owned(), |v| v.to_string())
}

/// The register's sequential specification.
#[derive(Clone, Copy, Debug, Default)]
pub struct CasRegister;

impl Model for CasRegister {
    type State = Option<i64>;
    type Input = RegisterOp;
    type Output = RegisterOutput;
    /// A failed cas answers with the value it found.
    type Answer = Result<RegisterOutput, Option<i64>>;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step<'s>(
        &self,
        state: &'s Option<i64>,
        input: &RegisterOp,
        output: Option<&RegisterOutput>,
    ) -> Option<Cow<'s, Option<i64>>> {
        let set = |value: i64| {
            if *state == Some(value) {
                Cow::Borrowed(state)
            } else {
                Cow::Owned(Some(value))
            }
        };
        match (input, output) {
            (RegisterOp::Read, None) => Some(Cow::Borrowed(state)),
            (RegisterOp::Read, Some(RegisterOutput::Read(seen))) => {
                (seen == state).then_some(Cow::Borrowed(state))
            }
            (RegisterOp::Write(value), None | Some(RegisterOutput::Done)) => Some(set(*value)),
            (RegisterOp::Cas { from, to }, Some(RegisterOutput::Done)) => {
                (*state == Some(*from)).then(|| set(*to))
            }
            // Unchecked: it succeeds or fails, whichever the register's value makes it do.
            (RegisterOp::Cas { from, to }, None) => Some(if *state == Some(*from) {
                set(*to)
            } else {
                Cow::Borrowed(state)
            }),
            // An answer of the wrong shape; `from_log` never builds one.
            (RegisterOp::Read, Some(RegisterOutput::Done))
            | (RegisterOp::Write(_) | RegisterOp::Cas { .. }, Some(RegisterOutput::Read(_))) => {
                None
            }
        }
    }

    fn is_read(&self, input: &RegisterOp) -> bool {
        *input == RegisterOp::Read
    }

    fn describe_state(&self, state: &Option<i64>) -> String {
        fmt_value(*state)
    }

    fn answer(&self, state: &Option<i64>, input: &RegisterOp) -> Self::Answer {
        match input {
            RegisterOp::Read => Ok(RegisterOutput::Read(*state)),
            RegisterOp::Write(_) => Ok(RegisterOutput::Done),
            RegisterOp::Cas { from, .. } if *state == Some(*from) => Ok(RegisterOutput::Done),
            RegisterOp::Cas { .. } => Err(*state),
        }
    }

    fn describe_answer(&self, answer: &Self::Answer) -> String {
        match answer {
            Ok(RegisterOutput::Read(value)) => fmt_value(*value),
            Ok(RegisterOutput::Done) => "ok".to_owned(),
            Err(held) => format!("fail (the register holds {})", fmt_value(*held)),
        }
    }
}

/// One op of a register history. Times are the log's line numbers (any clock would do, but
/// reports call them lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterCall {
    pub process: u64,
    pub op: RegisterOp,
    pub call: u64,
    /// When an `ok` op returned and what it answered; `None` when its outcome is unknown
    /// (`info`, or never completed).
    pub returned: Option<(u64, RegisterOutput)>,
    /// When an `info` op was given up on (for reports only: it may take effect after this).
    pub info: Option<u64>,
}

impl RegisterCall {
    /// An op that completed `ok`.
    pub fn ok(process: u64, op: RegisterOp, call: u64, ret: u64, output: RegisterOutput) -> Self {
        RegisterCall {
            process,
            op,
            call,
            returned: Some((ret, output)),
            info: None,
        }
    }

    /// An op whose outcome is unknown, given up on at `info`.
    pub fn info(process: u64, op: RegisterOp, call: u64, info: u64) -> Self {
        RegisterCall {
            process,
            op,
            call,
            returned: None,
            info: Some(info),
        }
    }
}

impl fmt::Display for RegisterCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "process {} {}: invoked line {}",
            self.process, self.op, self.call
        )?;
        match (self.returned, self.info) {
            (Some((ret, RegisterOutput::Read(value))), _) => {
                write!(f, ", ok {} line {ret}", fmt_value(value))
            }
            (Some((ret, RegisterOutput::Done)), _) => write!(f, ", ok line {ret}"),
            (None, Some(info)) => write!(f, ", info (unknown outcome) line {info}"),
            (None, None) => f.write_str(", never completed"),
        }
    }
}

/// The register ops of a Jepsen log; times are line numbers. `:fail` ops are dropped (they did
/// not happen), and so are reads of unknown outcome (they change nothing and show nothing).
pub fn from_log(ops: &[LogOp]) -> Result<Vec<RegisterCall>, LogError> {
    let mut calls = Vec::with_capacity(ops.len());
    for op in ops {
        let at = |message: String| LogError::new(op.invoke_line, message);
        let input = match (op.f.as_str(), &op.value) {
            ("read", _) => RegisterOp::Read,
            ("write", Value::Int(value)) => RegisterOp::Write(*value),
            ("cas", Value::List(pair)) => match pair[..] {
                [Value::Int(from), Value::Int(to)] => RegisterOp::Cas { from, to },
                _ => return Err(at(format!("cas needs [old new], not {}", op.value))),
            },
            ("write" | "cas", value) => {
                return Err(at(format!(":{} of {value}: not an integer op", op.f)))
            }
            (f, _) => {
                return Err(at(format!(
                    ":{f} is not an op of the cas-register model (read, write, cas)"
                )))
            }
        };
        let line = |line: usize| line as u64;
        let call = line(op.invoke_line);
        calls.push(match &op.outcome {
            Outcome::Fail { .. } => continue,
            Outcome::Info { .. } | Outcome::Open if input == RegisterOp::Read => continue,
            Outcome::Ok { line: ret, value } => {
                let output = match (input, value) {
                    (RegisterOp::Read, Value::Nil) => RegisterOutput::Read(None),
                    (RegisterOp::Read, Value::Int(v)) => RegisterOutput::Read(Some(*v)),
                    (RegisterOp::Read, other) => {
                        return Err(LogError::new(
                            *ret,
                            format!("a read of {other}: not nil or an integer"),
                        ))
                    }
                    _ => RegisterOutput::Done,
                };
                RegisterCall::ok(op.process, input, call, line(*ret), output)
            }
            Outcome::Info { line: info } => {
                RegisterCall::info(op.process, input, call, line(*info))
            }
            Outcome::Open => RegisterCall {
                process: op.process,
                op: input,
                call,
                returned: None,
                info: None,
            },
        });
    }
    Ok(calls)
}

/// The checker's answer for a register history.
#[derive(Clone, Debug)]
pub struct RegisterReport {
    pub check: PartCheck,
    pub ops: usize,
    pub info_ops: usize,
    /// The violation's ops (see [`crate::linearizability::Violation`]), the culprit last.
    pub window: Vec<RegisterCall>,
    pub context: Vec<RegisterCall>,
}

impl RegisterReport {
    pub fn verdict(&self) -> Verdict {
        self.check.verdict
    }
}

/// Checks a register history within `budget`.
pub fn check(calls: &[RegisterCall], budget: Duration) -> RegisterReport {
    let operations: Vec<Operation<RegisterOp, RegisterOutput>> = calls
        .iter()
        .map(|call| Operation {
            call: call.call,
            returned: call.returned.as_ref().map(|(ret, output)| (*ret, output)),
            input: &call.op,
        })
        .collect();
    let check = check_part(
        &CasRegister,
        &operations,
        Instant::now().checked_add(budget),
    );
    let pick = |positions: &[usize]| positions.iter().map(|&i| calls[i]).collect();
    RegisterReport {
        window: check
            .violation
            .as_ref()
            .map_or_else(Vec::new, |v| pick(&v.window)),
        context: check
            .violation
            .as_ref()
            .map_or_else(Vec::new, |v| pick(&v.context)),
        ops: calls.len(),
        info_ops: calls.iter().filter(|c| c.returned.is_none()).count(),
        check,
    }
}

impl fmt::Display for RegisterReport {
    /// The first line is the answer: `linearizable`, `not-linearizable` or `unknown: <why>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.check.verdict {
            Verdict::Pass => writeln!(f, "linearizable")?,
            Verdict::Fail => writeln!(f, "not-linearizable")?,
            Verdict::Unknown => writeln!(
                f,
                "unknown: {}",
                self.check.unknown_reason.as_deref().unwrap_or("undecided")
            )?,
        }
        writeln!(
            f,
            "  {} ops ({} of unknown outcome), checked in {}",
            self.ops,
            self.info_ops,
            fmt_duration_ns(u64::try_from(self.check.elapsed.as_nanos()).unwrap_or(u64::MAX))
        )?;
        let Some(violation) = &self.check.violation else {
            return Ok(());
        };
        if !self.context.is_empty() {
            writeln!(f, "  ops invoked just before:")?;
            for call in &self.context {
                writeln!(f, "    {call}")?;
            }
        }
        let why = match (self.window.len(), violation.minimised) {
            (1, _) => "its answer is impossible whichever earlier ops took effect".to_owned(),
            (n, true) => format!(
                "{n} ops: the last one's answer contradicts the first one's; those in between \
                 may as well not have happened"
            ),
            (n, false) => format!(
                "{n} ops: the last one's answer contradicts those before it (not minimised: \
                 the budget ran out)"
            ),
        };
        writeln!(f, "  window ({why}):")?;
        for call in &self.window {
            writeln!(f, "  > {call}")?;
        }
        if let Some(culprit) = self.window.last() {
            writeln!(
                f,
                "  where the op invoked at line {} could have taken effect, a correct register \
                 answers: {}",
                culprit.call,
                if violation.could_answer.is_empty() {
                    "(nothing: it could not take effect anywhere)".to_owned()
                } else {
                    violation.could_answer.join(" | ")
                }
            )?;
        }
        writeln!(
            f,
            "  the search linearized at most {} of {} ops; the register held {} there",
            violation.deepest_linearized, self.ops, violation.deepest_state
        )
    }
}
