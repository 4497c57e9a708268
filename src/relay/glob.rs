//! `owner/name` patterns of `[[receiver]] repos`: `*` (any run of characters) and `?` (one
//! character), each within its part, compared case-insensitively as Gitea compares owner and
//! repository names. Small on purpose: a repository name has no `/`, so the two wildcards
//! are all a pattern needs, and anything else that looks like glob syntax (`[`, `{`, `**`) is
//! refused instead of being taken literally.

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    owner: Vec<char>,
    name: Vec<char>,
}

impl Glob {
    /// Compiles `owner/name`; the error says what is wrong (without the pattern's key).
    pub fn new(pattern: &str) -> Result<Glob, String> {
        let Some((owner, name)) = pattern.split_once('/') else {
            return Err(format!("{pattern:?} is not OWNER/NAME (e.g. \"acme/*\")"));
        };
        for part in [owner, name] {
            if part.is_empty() || part.contains('/') {
                return Err(format!("{pattern:?} is not OWNER/NAME (e.g. \"acme/*\")"));
            }
            if part.contains("**") {
                return Err(format!(
                    "{pattern:?}: `**` means nothing in a name; use `*`"
                ));
            }
            if let Some(c) = part
                .chars()
                .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '*' | '?')))
            {
                return Err(format!(
                    "{pattern:?}: {c:?} is neither part of a Gitea name nor a wildcard (* or ?)"
                ));
            }
        }
        Ok(Glob {
            owner: owner.to_lowercase().chars().collect(),
            name: name.to_lowercase().chars().collect(),
        })
    }

    /// Whether `repo` (`owner/name`) matches.
    pub fn matches(&self, repo: &str) -> bool {
        let Some((owner, name)) = repo.split_once('/') else {
            return false;
        };
        let owner: Vec<char> = owner.to_lowercase().chars().collect();
        let name: Vec<char> = name.to_lowercase().chars().collect();
        wild(&self.owner, &owner) && wild(&self.name, &name)
    }
}

/// Iterative wildcard match with one backtrack point (linear in practice, no recursion).
fn wild(p: &[char], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_stay_within_their_part() {
        let g = |p: &str| Glob::new(p).unwrap();
        assert!(g("acme/*").matches("acme/web"));
        assert!(g("acme/*").matches("ACME/Web"));
        assert!(!g("acme/*").matches("acmex/web"));
        assert!(g("*/*").matches("a/b"));
        assert!(g("alice/dot.files").matches("alice/dot.files"));
        assert!(!g("alice/dot.files").matches("alice/dotxfiles"));
        assert!(g("a?me/w*b*").matches("acme/wxxbyy"));
        assert!(!g("a?me/w*b*").matches("acme/wxx"));
        assert!(g("*-team/ci-*").matches("red-team/ci-x"));
        assert!(!g("acme/web").matches("acme"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for p in [
            "acme",
            "acme/",
            "/x",
            "a/b/c",
            "acme/[ab]",
            "acme/**",
            "acme/{a,b}",
            "",
        ] {
            assert!(Glob::new(p).is_err(), "{p}");
        }
    }
}
