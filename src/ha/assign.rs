//! Which instance should poll which source: rendezvous hashing with bounded load. Every
//! instance computes it from the same two lists (the sources of the shared config, the
//! instances alive in the lease bucket), so they agree without talking; the loads differ by one at
//! most, and an instance joining or leaving moves few sources
//! (those it takes or gives), not most of them as `index % n` would.

use std::collections::BTreeMap;

use crate::source::SourceSpec;

/// A stable 64-bit hash (FNV-1a: the same in every process and release, unlike std's
/// `DefaultHasher`, whose algorithm may change between Rust versions).
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// A fingerprint of a source list (order and repeats aside), to tell instances that run
/// with different lists.
pub fn fingerprint(sources: &[SourceSpec]) -> String {
    let mut names: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    names.sort();
    names.dedup();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    format!("{:016x}", fnv(&refs))
}

/// The rank of `instance` for `source`: the highest wins it (rendezvous hashing).
fn score(source: &SourceSpec, instance: &str) -> u64 {
    fnv(&[&source.to_string(), instance])
}

/// Each instance's sources. A source stays with its current holder (`holders`) while that
/// instance is alive and within its share, so a joining instance takes only what evens the
/// load out and a standby stays a standby; the others go by rendezvous hashing. `instances`
/// empty: an empty map.
pub fn assign<'a>(
    sources: &'a [SourceSpec],
    instances: &[String],
    holders: &BTreeMap<SourceSpec, String>,
) -> BTreeMap<String, Vec<&'a SourceSpec>> {
    let mut out: BTreeMap<String, Vec<&SourceSpec>> =
        instances.iter().map(|i| (i.clone(), Vec::new())).collect();
    if instances.is_empty() {
        return out;
    }
    let mut sorted: Vec<&SourceSpec> = sources.iter().collect();
    sorted.sort();
    sorted.dedup();
    // Even: `extra` instances get one more than `floor`, the others `floor`.
    let (floor, extra) = (
        sorted.len() / instances.len(),
        sorted.len() % instances.len(),
    );
    let mut at_ceiling = 0;
    let mut place =
        |out: &mut BTreeMap<String, Vec<&'a SourceSpec>>, i: &str, s: &'a SourceSpec| {
            let cap = if at_ceiling < extra { floor + 1 } else { floor };
            match out.get_mut(i) {
                Some(list) if list.len() < cap => {
                    list.push(s);
                    if list.len() == floor + 1 {
                        at_ceiling += 1;
                    }
                    true
                }
                _ => false,
            }
        };
    let mut rest = Vec::new();
    for s in sorted {
        match holders.get(s) {
            Some(h) if place(&mut out, h, s) => {}
            _ => rest.push(s),
        }
    }
    for s in rest {
        let mut ranked: Vec<&String> = instances.iter().collect();
        ranked.sort_by_key(|i| std::cmp::Reverse((score(s, i), (*i).clone())));
        // The caps add up to the number of sources, so one instance always has room.
        for i in ranked {
            if place(&mut out, i, s) {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(n: usize) -> Vec<SourceSpec> {
        (0..n)
            .map(|i| SourceSpec::org(&format!("org{i}")).unwrap())
            .collect()
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("host{i}-{}", 100 + i)).collect()
    }

    #[test]
    fn every_source_goes_to_one_instance_and_none_gets_more_than_its_share() {
        for (s, i) in [(1, 1), (7, 3), (10, 3), (12, 4), (200, 3), (3, 5)] {
            let list = sources(s);
            let a = assign(&list, &names(i), &BTreeMap::new());
            let mut all: Vec<&SourceSpec> = a.values().flatten().copied().collect();
            all.sort();
            let mut expected: Vec<&SourceSpec> = list.iter().collect();
            expected.sort();
            assert_eq!(all, expected, "{s} sources, {i} instances");
            let cap = s.div_ceil(i);
            assert!(a.values().all(|v| v.len() <= cap), "{a:?}");
            // Even: the loads differ by at most one where sources outnumber instances.
            let (min, max) = (
                a.values().map(Vec::len).min().unwrap(),
                a.values().map(Vec::len).max().unwrap(),
            );
            assert!(max - min <= 1, "{s}/{i}: {min}..{max}");
        }
        assert!(assign(&sources(3), &[], &BTreeMap::new()).is_empty());
    }

    #[test]
    fn the_same_lists_in_any_order_give_the_same_assignment() {
        let list = sources(20);
        let mut shuffled = list.clone();
        shuffled.reverse();
        let mut inst = names(3);
        let a = assign(&list, &inst, &BTreeMap::new());
        inst.reverse();
        let b = assign(&shuffled, &inst, &BTreeMap::new());
        assert_eq!(a, b);
    }

    #[test]
    fn an_instance_leaving_moves_only_its_own_sources_mostly() {
        let list = sources(60);
        let three = assign(&list, &names(3), &BTreeMap::new());
        let two = assign(&list, &names(2), &BTreeMap::new());
        let gone = &names(3)[2];
        let moved = two
            .iter()
            .flat_map(|(i, v)| v.iter().map(move |s| (i, s)))
            .filter(|(i, s)| !three[*i].contains(s))
            .count();
        // The 20 of the instance that left must move; with bounded load a few others do.
        assert!(
            moved >= three[gone].len() && moved <= three[gone].len() + 10,
            "{moved}"
        );
    }

    #[test]
    fn sources_stay_with_their_holders_while_the_load_is_even() {
        let list = sources(6);
        let two = names(2);
        let mut holders = BTreeMap::new();
        // A lopsided start: the first instance holds everything.
        for s in &list {
            holders.insert(s.clone(), two[0].clone());
        }
        let a = assign(&list, &two, &holders);
        assert_eq!((a[&two[0]].len(), a[&two[1]].len()), (3, 3), "evened out");
        let kept = a[&two[0]].iter().all(|s| holders[*s] == two[0]);
        assert!(kept, "the first keeps three of its own");
        // Balanced holders are kept as they are, whatever the hashes say.
        let now: BTreeMap<SourceSpec, String> = a
            .iter()
            .flat_map(|(i, v)| v.iter().map(move |s| ((*s).clone(), i.clone())))
            .collect();
        let three = names(3);
        let b = assign(&list, &two, &now);
        assert_eq!(b, a, "nothing moves without a change");
        // One source, a standby joining: the source stays.
        let one = sources(1);
        let held = BTreeMap::from([(one[0].clone(), three[2].clone())]);
        assert_eq!(assign(&one, &three, &held)[&three[2]].len(), 1);
    }
}
