//! `INFO commandstats` as calls per command: what the data-model tests and
//! the scale bench count (the bench includes this file by path).

use std::collections::BTreeMap;

/// `cmdstat_<name>:calls=N,…` lines: each command's N.
pub fn calls(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}
