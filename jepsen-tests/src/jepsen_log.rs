//! A reader of the op lines Jepsen logs while it runs a test, such as
//!
//! ```text
//! 2017-03-02 17:41:01,416{GMT}  INFO [jepsen worker 3] jepsen.util - 3\t:invoke\t:cas\t[3 4]
//! INFO  jepsen.util - 3\t:ok\t:cas\t[3 4]
//! INFO  jepsen.util - 0\t:info\t:write\t1\t:timed-out
//! ```
//!
//! (`\t` is a tab). After `jepsen.util - ` come tab-separated fields: process, type
//! (`:invoke`, `:ok`, `:fail`, `:info`), function, value, and an optional error. Whatever
//! precedes the marker (timestamp, level, thread) is ignored, and so are lines without it,
//! lines of named processes such as `:nemesis`, and `jepsen.util` lines that are not ops.
//!
//! The line order is the order of invocations and completions, so line numbers serve as times.
//! A process runs one op at a time; an `:info` completion leaves its op's outcome unknown (it
//! may still take effect later) and frees the process number for a new op. Ops still open
//! when the log ends are as unknown as `:info` ones.

use std::collections::HashMap;
use std::fmt;

use thiserror::Error;

const MARKER: &str = "jepsen.util - ";

/// A value of an op, in the small part of EDN that register histories use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Nil,
    Int(i64),
    List(Vec<Value>),
    /// Anything else, verbatim (maps, strings, keywords): the model decides whether it cares.
    Other(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Int(n) => write!(f, "{n}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Other(text) => f.write_str(text),
        }
    }
}

/// How an op ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `:ok` at `line`, with the completion's value (a read's result).
    Ok { line: usize, value: Value },
    /// `:fail` at `line`: the op did not happen.
    Fail { line: usize },
    /// `:info` at `line`: it may or may not have happened, now or at any later time.
    Info { line: usize },
    /// No completion before the log ended: as unknown as `Info`.
    Open,
}

/// One op: an invocation and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOp {
    pub process: u64,
    /// The function without its colon, e.g. `cas`.
    pub f: String,
    /// The invocation's value.
    pub value: Value,
    /// 1-based.
    pub invoke_line: usize,
    pub outcome: Outcome,
}

/// A log that cannot be read as a history.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct LogError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl LogError {
    pub fn new(line: usize, message: impl Into<String>) -> LogError {
        LogError {
            line,
            message: message.into(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Type {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// Reads every op of a log, in invocation order.
pub fn parse(text: &str) -> Result<Vec<LogOp>, LogError> {
    let mut ops: Vec<LogOp> = Vec::new();
    // Process -> index in `ops` of its open op.
    let mut open: HashMap<u64, usize> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let Some(at) = line.find(MARKER) else {
            continue;
        };
        let fields: Vec<&str> = line[at + MARKER.len()..]
            .split('\t')
            .map(str::trim)
            .collect();
        let [process, kind, f, rest @ ..] = &fields[..] else {
            continue;
        };
        // jepsen.util logs other messages too; an op line has a keyword type.
        if !kind.starts_with(':') {
            continue;
        }
        if process.starts_with(':') {
            continue;
        }
        let error = |message: String| LogError::new(line_no, message);
        let process: u64 = process.parse().map_err(|_| {
            error(format!(
                "process {process:?} is neither a number nor a keyword"
            ))
        })?;
        let kind = match *kind {
            ":invoke" => Type::Invoke,
            ":ok" => Type::Ok,
            ":fail" => Type::Fail,
            ":info" => Type::Info,
            other => {
                return Err(error(format!(
                    "type {other} is not :invoke, :ok, :fail or :info"
                )))
            }
        };
        let Some(f) = f.strip_prefix(':').filter(|f| !f.is_empty()) else {
            return Err(error(format!("function {f:?} is not a keyword")));
        };
        let value = parse_value(rest.first().copied().unwrap_or("nil"))
            .map_err(|why| error(format!("value: {why}")))?;
        if kind == Type::Invoke {
            if let Some(&previous) = open.get(&process) {
                return Err(error(format!(
                    "process {process} invokes :{f} while its :{} invoked at line {} has not \
                     completed",
                    ops[previous].f, ops[previous].invoke_line
                )));
            }
            open.insert(process, ops.len());
            ops.push(LogOp {
                process,
                f: f.to_owned(),
                value,
                invoke_line: line_no,
                outcome: Outcome::Open,
            });
            continue;
        }
        let Some(index) = open.remove(&process) else {
            return Err(error(format!(
                "process {process} completes :{f} but has no open invocation"
            )));
        };
        let op = &mut ops[index];
        if op.f != f {
            return Err(error(format!(
                "process {process} completes :{f} but invoked :{} at line {}",
                op.f, op.invoke_line
            )));
        }
        op.outcome = match kind {
            Type::Ok => Outcome::Ok {
                line: line_no,
                value,
            },
            Type::Fail => Outcome::Fail { line: line_no },
            Type::Info => Outcome::Info { line: line_no },
            Type::Invoke => unreachable!("handled above"),
        };
    }
    Ok(ops)
}

/// `nil`, an integer, or a vector of values (`[3 4]`; commas are whitespace, as in EDN).
fn parse_value(text: &str) -> Result<Value, String> {
    let text = text.trim();
    if !text.starts_with('[') {
        return Ok(atom(text));
    }
    let mut stack: Vec<Vec<Value>> = Vec::new();
    let mut token = String::new();
    let mut done: Option<Value> = None;
    for c in text.chars() {
        if done.is_some() {
            if c.is_whitespace() || c == ',' {
                continue;
            }
            return Err(format!("text after the closing bracket of {text:?}"));
        }
        match c {
            '[' => {
                end_token(&mut token, &mut stack);
                stack.push(Vec::new());
            }
            ']' => {
                end_token(&mut token, &mut stack);
                let Some(items) = stack.pop() else {
                    return Err(format!("unbalanced brackets in {text:?}"));
                };
                match stack.last_mut() {
                    Some(outer) => outer.push(Value::List(items)),
                    None => done = Some(Value::List(items)),
                }
            }
            c if c.is_whitespace() || c == ',' => end_token(&mut token, &mut stack),
            c => token.push(c),
        }
    }
    done.ok_or_else(|| format!("unclosed bracket in {text:?}"))
}

fn end_token(token: &mut String, stack: &mut [Vec<Value>]) {
    if token.is_empty() {
        return;
    }
    if let Some(items) = stack.last_mut() {
        items.push(atom(token));
    }
    token.clear();
}

fn atom(text: &str) -> Value {
    match text {
        "nil" => Value::Nil,
        _ => text
            .parse()
            .map_or_else(|_| Value::Other(text.to_owned()), Value::Int),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(parse_value("nil"), Ok(Value::Nil));
        assert_eq!(parse_value("-3"), Ok(Value::Int(-3)));
        assert_eq!(
            parse_value("[3 4]"),
            Ok(Value::List(vec![Value::Int(3), Value::Int(4)]))
        );
        assert_eq!(
            parse_value("[1, [2 nil]]"),
            Ok(Value::List(vec![
                Value::Int(1),
                Value::List(vec![Value::Int(2), Value::Nil])
            ]))
        );
        assert_eq!(parse_value(":x"), Ok(Value::Other(":x".into())));
        assert!(parse_value("[3 4").is_err());
        assert!(parse_value("[3 4]]").is_err());
        assert_eq!(parse_value("[3 4]").unwrap().to_string(), "[3 4]");
    }
}
