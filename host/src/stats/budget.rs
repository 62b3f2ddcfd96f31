//! `mobius stat --fail-if 'EVENT OP NUMBER'`: counter budgets for CI. After
//! the run, every condition that holds is a broken budget, printed as
//! `mobius: stat: budget exceeded: page-faults 1234 > 1000`, and `mobius`
//! exits with [`host::BUDGET_EXCEEDED`](mobius_shared::exit::host::BUDGET_EXCEEDED).
//!
//! ```
//! use mobius::stats::budget::Budget;
//!
//! let budget: Budget = "page-faults > 1000".parse().expect("an expression");
//! assert_eq!(budget.broken(Some(900.0)), None);
//! assert_eq!(
//!     budget.broken(Some(1234.0)).as_deref(),
//!     Some("mobius: stat: budget exceeded: page-faults 1234 > 1000")
//! );
//! assert!("page-faults >> 1".parse::<Budget>().is_err());
//! ```
use std::fmt;
use std::str::FromStr;

use super::events::{self, Event};
use super::format;

/// How a counter is compared with the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    /// Longest first, so that `>=` is not read as `>`.
    const ALL: [(&'static str, Op); 6] = [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">", Op::Gt),
        ("<", Op::Lt),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// Whether `value OP limit` holds.
    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Gt => value > limit,
            Op::Ge => value >= limit,
            Op::Lt => value < limit,
            Op::Le => value <= limit,
            Op::Eq => value == limit,
            Op::Ne => value != limit,
        }
    }
}

/// One `--fail-if` condition: the run fails when `event OP limit` holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub event: String,
    pub op: Op,
    pub limit: f64,
    /// The number as the user wrote it, for messages.
    limit_text: String,
}

/// Why a `--fail-if` expression is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error(
        "expected EVENT OP NUMBER with OP one of >, >=, <, <=, ==, != (e.g. 'page-faults > 1000')"
    )]
    NoOperator,
    #[error("no event before '{0}'")]
    NoEvent(String),
    #[error("unknown event '{0}' (see mobius stat --list-events)")]
    UnknownEvent(String),
    #[error("no number after '{0}'")]
    NoNumber(String),
    #[error("'{0}' is not a number")]
    NotANumber(String),
}

impl FromStr for Budget {
    type Err = BudgetError;

    fn from_str(s: &str) -> Result<Budget, BudgetError> {
        let at = s
            .find(['<', '>', '=', '!'])
            .ok_or(BudgetError::NoOperator)?;
        let (event, rest) = s.split_at(at);
        let (op_text, op) = Op::ALL
            .into_iter()
            .find(|(text, _)| rest.starts_with(text))
            .ok_or(BudgetError::NoOperator)?;
        let event = event.trim();
        if event.is_empty() {
            return Err(BudgetError::NoEvent(op_text.to_string()));
        }
        if event.contains(char::is_whitespace) || !events::is_known(event) {
            return Err(BudgetError::UnknownEvent(event.to_string()));
        }
        let number = rest[op_text.len()..].trim();
        if number.is_empty() {
            return Err(BudgetError::NoNumber(op_text.to_string()));
        }
        let limit = number
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && !number.starts_with(['+', 'i', 'I', 'n', 'N']))
            .ok_or_else(|| BudgetError::NotANumber(number.to_string()))?;
        Ok(Budget {
            event: event.to_string(),
            op,
            limit,
            limit_text: number.to_string(),
        })
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.event, self.op.as_str(), self.limit_text)
    }
}

impl Budget {
    /// The line to print when the budget is broken by `value` (the counter's
    /// value, its mean with `-r`; `None`: not counted in this run, which
    /// breaks the budget too, as it cannot be checked).
    pub fn broken(&self, value: Option<f64>) -> Option<String> {
        match value {
            Some(v) if self.op.holds(v, self.limit) => Some(format!(
                "mobius: stat: budget exceeded: {} {v} {} {}",
                self.event,
                self.op.as_str(),
                self.limit_text
            )),
            Some(_) => None,
            None => Some(format!(
                "mobius: stat: budget not checked: {} was not counted in this run ({self})",
                self.event
            )),
        }
    }
}

/// The lines for the budgets of `budgets` that `runs` (each run's events,
/// [`events::select`]ed by the budgets' names) break, in `budgets` order;
/// with several runs a counter's value is its mean, as reported.
pub fn check(budgets: &[Budget], runs: &[Vec<Event>]) -> Vec<String> {
    let means = format::aggregate(runs, &[]);
    budgets
        .iter()
        .filter_map(|b| {
            let mean = means
                .iter()
                .find(|a| a.name == b.event)
                .and_then(|a| a.mean);
            b.broken(mean)
        })
        .collect()
}

/// The names of the events `budgets` need, for [`events::select`].
pub fn names(budgets: &[Budget]) -> Vec<String> {
    budgets.iter().map(|b| b.event.clone()).collect()
}

/// clap's parser for `--fail-if`.
pub fn parse(s: &str) -> Result<Budget, String> {
    s.parse().map_err(|e: BudgetError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Budget {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_every_operator_with_or_without_spaces() {
        for (text, op) in [
            ("page-faults > 1000", Op::Gt),
            ("page-faults>=1000", Op::Ge),
            ("page-faults <1000", Op::Lt),
            ("page-faults<= 1000", Op::Le),
            ("  page-faults == 1000  ", Op::Eq),
            ("page-faults != 1000", Op::Ne),
        ] {
            let got = b(text);
            assert_eq!(
                (got.event.as_str(), got.op, got.limit),
                ("page-faults", op, 1000.0)
            );
        }
        let t = b("time.total < 2.5");
        assert_eq!((t.limit, t.to_string().as_str()), (2.5, "time.total < 2.5"));
        for name in [
            "minor-faults",
            "major-faults",
            "faults.demand-zero",
            "exits.io_out",
            "kvm.exits",
        ] {
            assert_eq!(b(&format!("{name} > 0")).event, name);
        }
    }

    #[test]
    fn refuses_what_is_not_an_expression() {
        use BudgetError::*;
        for (text, want) in [
            ("page-faults", NoOperator),
            ("", NoOperator),
            ("page-faults = 3", NoOperator),
            ("page-faults ! 3", NoOperator),
            ("> 3", NoEvent(">".into())),
            ("pagefaults > 3", UnknownEvent("pagefaults".into())),
            ("page faults > 3", UnknownEvent("page faults".into())),
            ("page-faults > lots", NotANumber("lots".into())),
            ("page-faults >", NoNumber(">".into())),
            ("page-faults > inf", NotANumber("inf".into())),
            ("page-faults > NaN", NotANumber("NaN".into())),
            ("page-faults >> 3", NotANumber("> 3".into())),
            ("page-faults > 3 < 4", NotANumber("3 < 4".into())),
        ] {
            assert_eq!(text.parse::<Budget>(), Err(want), "{text:?}");
        }
    }

    #[test]
    fn a_budget_is_broken_when_its_condition_holds() {
        let gt = b("page-faults > 1000");
        assert_eq!(gt.broken(Some(1000.0)), None);
        assert_eq!(
            gt.broken(Some(1234.0)).as_deref(),
            Some("mobius: stat: budget exceeded: page-faults 1234 > 1000")
        );
        assert!(b("faults == 100").broken(Some(100.0)).is_some());
        assert!(b("faults != 100").broken(Some(100.0)).is_none());
        assert!(b("faults >= 100").broken(Some(100.0)).is_some());
        assert!(b("faults <= 99").broken(Some(100.0)).is_none());
        assert!(b("faults < 101").broken(Some(100.5)).is_some());
        assert_eq!(
            b("kvm.nope > 1").broken(None).as_deref(),
            Some("mobius: stat: budget not checked: kvm.nope was not counted in this run (kvm.nope > 1)")
        );
    }

    #[test]
    fn runs_are_checked_on_their_mean() {
        let budgets = [b("faults > 10"), b("faults < 5"), b("kvm.nope < 1")];
        let run = |n| {
            let mut ev = vec![Event::count("faults", n)];
            ev.push(Event::unsupported("kvm.nope"));
            events::select(&ev, &names(&budgets))
        };
        // Mean 10: neither faults budget is broken; kvm.nope cannot be checked.
        let lines = check(&budgets, &[run(8), run(12)]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("budget not checked: kvm.nope"));
        let lines = check(&budgets[..2], &[run(8), run(14)]);
        assert_eq!(lines, ["mobius: stat: budget exceeded: faults 11 > 10"]);
        assert!(check(&[], &[run(1)]).is_empty());
    }
}
