//! The guest's workloads: names, parameters and the exact page-fault counts
//! each must produce. Both sides use this one table: the guest to parse
//! parameters, the host for `mobius list` and to check decoded counts.

use crate::cmdline;
use crate::stats::FaultKind;

/// One numeric parameter of a workload (`key=value` on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub default: u64,
    pub min: u64,
    pub max: u64,
    pub help: &'static str,
}

/// A workload the guest offers.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub name: &'static str,
    pub description: &'static str,
    pub params: &'static [Param],
}

const fn p(name: &'static str, default: u64, min: u64, max: u64, help: &'static str) -> Param {
    Param {
        name,
        default,
        min,
        max,
        help,
    }
}

const PAGES: Param = p("pages", 1000, 1, 100_000, "pages to touch");

/// Every workload, in `mobius list` order.
pub const CATALOGUE: &[Workload] = &[
    Workload {
        name: "hello",
        description: "print a greeting and exit (no page faults)",
        params: &[],
    },
    Workload {
        name: "seq-touch",
        description: "write each page of a fresh NORMAL area once, in order",
        params: &[PAGES],
    },
    Workload {
        name: "random-touch",
        description: "write `pages` distinct pages of a `span`-page area in a seeded random order",
        params: &[
            PAGES,
            p("span", 4000, 1, 400_000, "area size in pages (>= pages)"),
            p("seed", 1, 0, u64::MAX, "order seed"),
        ],
    },
    Workload {
        name: "read-then-write",
        description: "read every page (mapped clean), then write every page (clean -> dirty)",
        params: &[PAGES],
    },
    Workload {
        name: "callback",
        description: "touch a CALLBACK area whose handler maps a fresh frame per fault",
        params: &[PAGES],
    },
    Workload {
        name: "map",
        description: "read a MAP area over a fixed physical range owned by the kernel",
        params: &[p("pages", 16, 1, 16, "pages to map (the range is 16 pages)")],
    },
    Workload {
        name: "reserve-commit",
        description: "reserve a range, allocate inside it at a fixed address and touch that",
        params: &[
            p("reserve", 1024, 2, 1 << 28, "pages reserved"),
            p("commit", 256, 1, 100_000, "pages allocated and touched inside"),
        ],
    },
    Workload {
        name: "share-map",
        description: "write an area, share it by name, map it in a second address space and read it there",
        params: &[p("pages", 256, 1, 100_000, "pages shared")],
    },
    Workload {
        name: "churn",
        description: "allocate, touch and free an area `rounds` times; frames must be conserved",
        params: &[
            p("rounds", 20, 1, 10_000, "alloc/touch/free rounds"),
            p("pages", 32, 1, 10_000, "pages per round"),
        ],
    },
    Workload {
        name: "file",
        description: "read a FILE area over a 5000-byte in-memory file (partial last page zero-filled)",
        params: &[],
    },
    Workload {
        name: "protection",
        description: "write to a read-only area: protection faults, counted, nothing allocated",
        params: &[p("count", 10, 1, 10_000, "faulting writes")],
    },
    Workload {
        name: "exhaustion",
        description: "touch pages until the guest runs out of frames: one unresolved fault, no hang",
        params: &[],
    },
    Workload {
        name: "bad-frames",
        description: "test mode: send malformed, oversized, bad-magic and unknown-version statistics frames, then a good one",
        params: &[],
    },
    Workload {
        name: "flood-stats",
        description: "test mode: a hostile guest sends statistics frames as fast as possible for ms= (the host keeps a bounded few)",
        params: FLOOD_PARAMS,
    },
    Workload {
        name: "flood-ports",
        description: "test mode: a hostile guest sends writes to 256 unknown ports for ms= (warned once, counted)",
        params: FLOOD_PARAMS,
    },
    Workload {
        name: "flood-mmio",
        description: "test mode: a hostile guest sends writes to 16,384 unknown MMIO addresses for ms= (warned once, counted)",
        params: FLOOD_PARAMS,
    },
    Workload {
        name: "flood-console",
        description: "test mode: a hostile guest sends console lines as fast as possible for ms= (printed, nothing kept)",
        params: FLOOD_PARAMS,
    },
    Workload {
        name: "flood-descriptors",
        description: "test mode: a hostile guest sends virtio descriptor chains pointing outside RAM for ms= (counted)",
        params: FLOOD_PARAMS,
    },
    Workload {
        name: "flood-disk",
        description: "test mode: a hostile guest sends the first --disk malformed virtio-blk requests and queue set-ups for ms= (counted)",
        params: FLOOD_PARAMS,
    },
    Workload {
        name: "fault-bench",
        description: "cycles per fault: demand-zero, upgrade, callback, MAP beside a bare floor handler; 10 vs many areas",
        params: &[
            p("faults", 500, 10, 100_000, "faults per case"),
            p("areas", 10_000, 10, 100_000, "areas present in the many-areas case"),
        ],
    },
];

/// The one parameter of the `flood-*` workloads.
const FLOOD_PARAMS: &[Param] = &[p("ms", 100, 1, 600_000, "milliseconds of guest time")];

/// Look a workload up by name.
pub fn find(name: &str) -> Option<&'static Workload> {
    CATALOGUE.iter().find(|w| w.name == name)
}

/// Why a workload's parameters were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamError {
    NotANumber(&'static str),
    OutOfRange(&'static Param),
    /// Two parameters that do not go together: `(what, why)`.
    Conflict(&'static str),
}

impl core::fmt::Display for ParamError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ParamError::NotANumber(name) => write!(f, "{name}= must be a number"),
            ParamError::OutOfRange(p) => {
                write!(f, "{}= must be in {}..={}", p.name, p.min, p.max)
            }
            ParamError::Conflict(why) => f.write_str(why),
        }
    }
}

impl Workload {
    /// The value of parameter `name` from command line `line` (default if absent).
    pub fn param(&'static self, line: &str, name: &str) -> Result<u64, ParamError> {
        let Some(param) = self.params.iter().find(|p| p.name == name) else {
            return Ok(0);
        };
        let value = match cmdline::get(line, param.name) {
            None => param.default,
            Some(v) => v.parse().map_err(|_| ParamError::NotANumber(param.name))?,
        };
        if value < param.min || value > param.max {
            return Err(ParamError::OutOfRange(param));
        }
        Ok(value)
    }

    /// Check every parameter of `line`.
    pub fn check(&'static self, line: &str) -> Result<(), ParamError> {
        self.params
            .iter()
            .try_for_each(|p| self.param(line, p.name).map(|_| ()))?;
        let v = |name| self.param(line, name);
        match self.name {
            "random-touch" if v("span")? < v("pages")? => {
                Err(ParamError::Conflict("span= must be at least pages="))
            }
            "reserve-commit" if v("commit")? >= v("reserve")? => Err(ParamError::Conflict(
                "commit= must be smaller than reserve=",
            )),
            _ => Ok(()),
        }
    }

    /// The exact fault counts this workload produces with the parameters in
    /// `line`, per [`FaultKind`]; `None` for a kind whose count depends on
    /// the machine (the zero-pool split, the frames available). Kinds not
    /// mentioned are exactly zero.
    pub fn expected(
        &'static self,
        line: &str,
    ) -> Result<[Option<u64>; FaultKind::COUNT], ParamError> {
        use FaultKind::*;
        let mut e = [Some(0); FaultKind::COUNT];
        // The zero-pool split depends on which frames are free: not fixed.
        e[ZeroPoolHit.index()] = None;
        e[ZeroPoolMiss.index()] = None;
        let mut set = |k: FaultKind, v: Option<u64>| e[k.index()] = v;
        let pages = || self.param(line, "pages");
        match self.name {
            "seq-touch" | "random-touch" => set(DemandZero, Some(pages()?)),
            "read-then-write" => {
                set(DemandZero, Some(pages()?));
                set(Upgrade, Some(pages()?));
            }
            "callback" => set(Callback, Some(pages()?)),
            "map" => set(Map, Some(pages()?)),
            "reserve-commit" => set(DemandZero, Some(self.param(line, "commit")?)),
            // Written in the first space (demand-zero), then faulted again
            // through the second mapping, which maps the frame already
            // there (shared).
            "share-map" => {
                set(DemandZero, Some(pages()?));
                set(Shared, Some(pages()?));
            }
            "churn" => set(
                DemandZero,
                Some(self.param(line, "rounds")? * self.param(line, "pages")?),
            ),
            // Two pages read in: 4096 bytes and the 904-byte tail.
            "file" => set(FileReadIn, Some(2)),
            // Each faulting write after one read fault that maps the page.
            "protection" => {
                set(DemandZero, Some(1));
                set(Protection, Some(self.param(line, "count")?));
            }
            // As many demand-zero faults as there were frames: machine-dependent.
            "exhaustion" => {
                set(DemandZero, None);
                set(Unresolved, Some(1));
            }
            "fault-bench" => e = [None; FaultKind::COUNT],
            _ => {}
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_default_parse_and_bound() {
        let w = find("seq-touch").expect("listed");
        assert_eq!(w.param("", "pages"), Ok(1000));
        assert_eq!(w.param("pages=7", "pages"), Ok(7));
        assert_eq!(
            w.param("pages=x", "pages"),
            Err(ParamError::NotANumber("pages"))
        );
        assert!(matches!(
            w.param("pages=0", "pages"),
            Err(ParamError::OutOfRange(_))
        ));
        assert!(w.check("pages=1000000").is_err());
    }

    /// Issue 11 item 2: parameters that do not go together are a bad
    /// command line, found before the workload runs.
    #[test]
    fn conflicting_parameters_are_refused() {
        let r = find("random-touch").expect("listed");
        assert!(matches!(
            r.check("pages=100 span=10"),
            Err(ParamError::Conflict(_))
        ));
        assert!(r.check("pages=100 span=100").is_ok());
        let c = find("reserve-commit").expect("listed");
        assert!(matches!(
            c.check("reserve=10 commit=10"),
            Err(ParamError::Conflict(_))
        ));
        assert!(c.check("reserve=10 commit=9").is_ok());
    }

    #[test]
    fn expected_counts_follow_parameters() {
        let e = find("read-then-write")
            .expect("listed")
            .expected("pages=9")
            .expect("ok");
        assert_eq!(e[FaultKind::DemandZero.index()], Some(9));
        assert_eq!(e[FaultKind::Upgrade.index()], Some(9));
        assert_eq!(e[FaultKind::Callback.index()], Some(0));
        assert_eq!(e[FaultKind::ZeroPoolHit.index()], None);
        let e = find("churn")
            .expect("listed")
            .expected("rounds=3 pages=5")
            .expect("ok");
        assert_eq!(e[FaultKind::DemandZero.index()], Some(15));
        let e = find("share-map")
            .expect("listed")
            .expected("pages=4")
            .expect("ok");
        assert_eq!(e[FaultKind::DemandZero.index()], Some(4));
        assert_eq!(e[FaultKind::Shared.index()], Some(4));
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in CATALOGUE.iter().enumerate() {
            assert!(
                CATALOGUE[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
        }
    }
}
